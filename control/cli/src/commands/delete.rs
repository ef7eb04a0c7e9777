//! `delete KIND NAME...` or `delete -f FILE`: all or nothing.

use tortie_model::Kind;
use tortie_store::ResourceId;

use super::{Context, count_phrase, kind_arg, load_documents, locate};
use crate::cli::DeleteArgs;
use crate::error::CliError;

/// Runs `delete` and returns the success message.
pub fn run(ctx: &Context, args: &DeleteArgs) -> Result<String, CliError> {
    let namespace = args.namespace.as_deref();
    let (targets, documents) = match &args.filename {
        Some(path) => {
            if !args.args.is_empty() {
                return Err(CliError::Usage(
                    "give either -f or KIND NAME..., not both".into(),
                ));
            }
            let documents = load_documents(path, args.recursive, namespace)?;
            let targets: Vec<(ResourceId, Option<String>)> = documents
                .iter()
                .map(|d| {
                    let version = Some(d.resource.metadata().resource_version.clone())
                        .filter(|v| !v.is_empty());
                    (ResourceId::of(&d.resource), version)
                })
                .collect();
            (targets, documents)
        }
        None => {
            let [kind, names @ ..] = args.args.as_slice() else {
                return Err(CliError::Usage(
                    "delete needs KIND NAME... or -f FILE".into(),
                ));
            };
            if names.is_empty() {
                return Err(CliError::Usage(format!(
                    "delete {kind}: name the resource(s) to delete"
                )));
            }
            let kind = kind_arg(kind)?;
            let targets = names
                .iter()
                .map(|name| (ResourceId::new(kind, namespace, name), None))
                .collect();
            (targets, Vec::new())
        }
    };
    if targets.is_empty() {
        return Err(CliError::Usage("no resources specified".into()));
    }
    let ds = ctx.open()?;
    let store = ctx.store(ds.as_ref());
    let outcome = store
        .delete_all(&targets, args.skip_not_exists)
        .map_err(|e| locate(e, &documents))?;
    let kinds: Vec<Kind> = outcome.deleted.iter().flatten().map(|r| r.kind()).collect();
    let skipped = targets.len() - kinds.len();
    let mut message = format!("Successfully deleted {}", count_phrase(&kinds));
    if skipped > 0 {
        message.push_str(&format!("; {skipped} did not exist"));
    }
    Ok(message)
}
