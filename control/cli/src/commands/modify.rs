//! `patch` and `label`: read-modify-write of one resource, conditioned on the revision read.

use tortie_store::{Patch, ResourceId};

use super::{Context, kind_arg};
use crate::cli::{LabelArgs, PatchArgs, PatchType};
use crate::error::CliError;

/// Runs `patch` and returns the success message.
pub fn patch(ctx: &Context, args: &PatchArgs) -> Result<String, CliError> {
    let kind = kind_arg(&args.kind)?;
    let value: serde_json::Value = match serde_json::from_str(&args.patch) {
        Ok(v) => v,
        Err(json_err) => serde_yaml::from_str(&args.patch)
            .map_err(|_| CliError::Usage(format!("-p: the patch is not valid JSON: {json_err}")))?,
    };
    let patch = match args.patch_type {
        PatchType::Json => Patch::Json(value),
        PatchType::Merge | PatchType::Strategic => Patch::Merge(value),
    };
    let id = ResourceId::new(kind, args.namespace.as_deref(), &args.name);
    let ds = ctx.open()?;
    ctx.store(ds.as_ref()).patch(&id, &patch)?;
    Ok(format!("Successfully patched 1 '{}' resource", kind.name()))
}

/// Runs `label` and returns the success message.
pub fn label(ctx: &Context, args: &LabelArgs) -> Result<String, CliError> {
    let kind = kind_arg(&args.kind)?;
    let id = ResourceId::new(kind, args.namespace.as_deref(), &args.name);
    let (key, value) = match (args.remove, args.label.split_once('=')) {
        (true, None) => (args.label.as_str(), None),
        (true, Some(_)) => {
            return Err(CliError::Usage(
                "--remove takes a label key, not key=value".into(),
            ));
        }
        (false, Some((k, v))) => (k, Some(v)),
        (false, None) => {
            return Err(CliError::Usage(format!(
                "label {:?}: expected key=value (or a key with --remove)",
                args.label
            )));
        }
    };
    if key.is_empty() {
        return Err(CliError::Usage("the label key is empty".into()));
    }
    let ds = ctx.open()?;
    let store = ctx.store(ds.as_ref());
    // The resource keeps the resourceVersion it was read with, so the replace below is a
    // compare-and-swap: a concurrent change makes it fail rather than be lost.
    let mut resource = store.get(&id)?;
    let shown = id.display();
    let labels = &mut resource.metadata_mut().labels;
    let message = match value {
        None => {
            if labels.remove(key).is_none() {
                return Err(CliError::Usage(format!(
                    "{shown}: cannot remove label {key:?}: it is not set"
                )));
            }
            format!("Successfully removed label {key} from {shown}")
        }
        Some(value) => {
            match labels.get(key) {
                Some(old) if old == value => {
                    return Ok(format!("{shown}: label {key}={value} is already set"));
                }
                Some(old) if !args.overwrite => {
                    return Err(CliError::Usage(format!(
                        "{shown}: label {key} is already set to {old:?}; use --overwrite to change it"
                    )));
                }
                _ => {}
            }
            labels.insert(key.to_string(), value.to_string());
            format!("Successfully set label {key}={value} on {shown}")
        }
    };
    store.replace(resource)?;
    Ok(message)
}
