//! `get KIND [NAME...]` or `get -f FILE`, in any `-o` format.

use std::collections::BTreeMap;

use tortie_model::{Kind, Resource};
use tortie_store::{ResourceId, Scope};

use super::{Context, kind_arg, load_documents};
use crate::cli::GetArgs;
use crate::error::CliError;
use crate::output::{Listing, OutputFormat, render};

/// Runs `get` and returns what to print.
pub fn run(ctx: &Context, args: &GetArgs) -> Result<String, CliError> {
    let format = OutputFormat::parse(&args.output)?;
    let namespace = args.namespace.as_deref();
    let ds = ctx.open()?;
    let store = ctx.store(ds.as_ref());

    // (kind, resources, whether exactly one named resource was asked for)
    let mut groups: BTreeMap<Kind, Vec<Resource>> = BTreeMap::new();
    let single;
    match &args.filename {
        Some(path) => {
            let documents = load_documents(path, args.recursive, namespace)?;
            single = documents.len() == 1;
            for doc in &documents {
                let id = ResourceId::of(&doc.resource);
                let found = store.get(&id).map_err(|e| CliError::Located {
                    origin: doc.origin.to_string(),
                    detail: e.to_string(),
                    partial: false,
                })?;
                groups.entry(id.kind).or_default().push(found);
            }
        }
        None => {
            let [kind, names @ ..] = args.args.as_slice() else {
                return Err(CliError::Usage(
                    "get needs KIND [NAME...] or -f FILE".into(),
                ));
            };
            let kind = kind_arg(kind)?;
            single = names.len() == 1;
            let items = groups.entry(kind).or_default();
            if names.is_empty() {
                let scope = match (args.all_namespaces, namespace) {
                    (true, _) => Scope::AllNamespaces,
                    (false, ns) => Scope::Namespace(ns.unwrap_or(tortie_store::DEFAULT_NAMESPACE)),
                };
                items.extend(store.list(kind, scope)?.items);
            } else {
                for name in names {
                    items.push(store.get(&ResourceId::new(kind, namespace, name))?);
                }
            }
        }
    }

    let mut out = String::new();
    for (kind, mut items) in groups {
        if args.export {
            items.iter_mut().for_each(strip_cluster_metadata);
        }
        if !out.is_empty()
            && matches!(
                format,
                OutputFormat::Ps | OutputFormat::Wide | OutputFormat::CustomColumns(_)
            )
        {
            out.push('\n');
        }
        out.push_str(&render(
            &format,
            &Listing {
                kind: kind.name(),
                namespaced: kind.is_namespaced(),
                all_namespaces: args.all_namespaces,
                single,
                items: &items,
            },
        )?);
    }
    Ok(out)
}

/// `--export`: drops what belongs to this cluster's datastore, so the output can be applied to
/// another one.
fn strip_cluster_metadata(resource: &mut Resource) {
    let meta = resource.metadata_mut();
    meta.resource_version.clear();
    meta.uid.clear();
    meta.creation_timestamp = None;
    meta.generation = None;
}
