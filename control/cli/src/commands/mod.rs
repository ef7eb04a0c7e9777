//! The commands, and what they share: opening the datastore, reading manifests, resolving
//! kind names.

pub mod delete;
pub mod get;
pub mod ipam;
pub mod migrate;
pub mod modify;
pub mod node;
pub mod policy;
pub mod write;

use std::sync::Arc;

use tortie_datastore::Datastore;
use tortie_model::{Kind, ParsedDocument, parse_documents_with_origin};
use tortie_store::{Store, StoreError, TxnPolicy};

use crate::config::ClientConfig;
use crate::error::CliError;
use crate::input::read_manifests;

/// What every command gets: the merged configuration and global flags.
pub struct Context {
    /// The client configuration.
    pub config: ClientConfig,
    /// `--single-txn`.
    pub single_txn: bool,
}

impl Context {
    /// Opens the configured datastore (for etcd, this checks it answers).
    pub fn open(&self) -> Result<Arc<dyn Datastore>, CliError> {
        let config = self.config.datastore_config()?;
        Ok(tortie_datastore::open(&config)?)
    }

    /// A store over `ds` with the chunking policy from the flags.
    pub fn store<'a>(&self, ds: &'a dyn Datastore) -> Store<'a> {
        let policy = if self.single_txn {
            TxnPolicy::Refuse
        } else {
            TxnPolicy::Chunked
        };
        Store::new(ds).with_txn_policy(policy)
    }
}

/// Reads and parses every document of `-f`, applying `-n`: a namespaced resource without a
/// namespace gets it; one naming another namespace is an error (as in calicoctl).
pub fn load_documents(
    path: &str,
    recursive: bool,
    namespace: Option<&str>,
) -> Result<Vec<ParsedDocument>, CliError> {
    let mut documents = Vec::new();
    for manifest in read_manifests(path, recursive)? {
        documents.extend(parse_documents_with_origin(
            &manifest.text,
            &manifest.source,
        )?);
    }
    for doc in &mut documents {
        if !doc.resource.kind().is_namespaced() {
            continue;
        }
        let meta = doc.resource.metadata_mut();
        match namespace {
            Some(ns) if meta.namespace.is_empty() => meta.namespace = ns.to_string(),
            Some(ns) if meta.namespace != ns => {
                return Err(CliError::Located {
                    origin: doc.origin.to_string(),
                    detail: format!(
                        "metadata.namespace: resource namespace {:?} does not match the namespace {ns:?} given with -n",
                        meta.namespace
                    ),
                    partial: false,
                });
            }
            _ if meta.namespace.is_empty() => {
                meta.namespace = tortie_store::DEFAULT_NAMESPACE.to_string();
            }
            _ => {}
        }
    }
    Ok(documents)
}

/// Places a batch error on the document of the resource it is about.
pub fn locate(error: StoreError, documents: &[ParsedDocument]) -> CliError {
    let Some(doc) = error.batch_index().and_then(|i| documents.get(i)) else {
        return CliError::Store(error);
    };
    let partial = matches!(error, StoreError::PartiallyWritten { .. });
    let leaf = leaf(&error);
    let detail = match leaf {
        // The model's field path is relative to the resource; prefix it with the resource's
        // place in its document (items[i] in a List).
        StoreError::Invalid { resource, source } => {
            let located = doc.locate((**source).clone()).to_string();
            let origin = doc.origin.to_string();
            let rest = located
                .strip_prefix(&format!("{origin}: "))
                .unwrap_or(&located);
            format!("{resource}: {rest}")
        }
        other => other.to_string(),
    };
    let detail = match &error {
        StoreError::ChunkFailed { chunk, chunks, .. } => format!(
            "{detail} (written in {chunks} transactions; transaction {chunk} failed and the earlier ones were rolled back)"
        ),
        StoreError::PartiallyWritten {
            chunk,
            chunks,
            unrestored,
            first_key,
            ..
        } => format!(
            "{detail} (written in {chunks} transactions; transaction {chunk} failed and the rollback did not complete: {unrestored} keys keep the new values, first {first_key})"
        ),
        _ => detail,
    };
    CliError::Located {
        origin: doc.origin.to_string(),
        detail,
        partial,
    }
}

/// The error a batch failure is about, inside batch and chunk wrappers.
fn leaf(error: &StoreError) -> &StoreError {
    match error {
        StoreError::InBatch { source, .. }
        | StoreError::ChunkFailed { source, .. }
        | StoreError::PartiallyWritten { source, .. } => leaf(source),
        other => other,
    }
}

/// Resolves a kind typed on the command line (name, plural or alias, any case).
pub fn kind_arg(text: &str) -> Result<Kind, CliError> {
    Kind::from_user_str(text).ok_or_else(|| {
        CliError::Usage(format!(
            "resource type {text:?} is not supported (known: {})",
            Kind::ALL
                .iter()
                .map(|k| k.plural())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// `"3 'NetworkPolicy' resource(s)"`, or `"3 resource(s)"` when kinds are mixed.
pub fn count_phrase(kinds: &[Kind]) -> String {
    let n = kinds.len();
    match kinds.first() {
        Some(first) if kinds.iter().all(|k| k == first) => {
            format!("{n} '{}' resource(s)", first.name())
        }
        _ => format!("{n} resource(s)"),
    }
}
