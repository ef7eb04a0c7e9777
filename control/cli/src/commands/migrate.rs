//! `datastore migrate export|import`: move a whole datastore (every v3 resource and every IPAM
//! record) to another backend, e.g. from the embedded SQLite file to etcd and back.

use std::io::Read;
use std::path::Path;

use tortie_store::migrate::{self, Export};

use super::Context;
use crate::error::CliError;

/// Exports to `output` (stdout when `None`); returns a summary for stderr.
pub fn export(ctx: &Context, output: Option<&Path>) -> Result<(String, Option<String>), CliError> {
    let ds = ctx.open()?;
    let store = ctx.store(ds.as_ref());
    let export = migrate::export(&store)?;
    let mut text = serde_json::to_string_pretty(&export).unwrap_or_default();
    text.push('\n');
    let summary = format!(
        "Exported {} resources and {} IPAM records from {} at revision {}",
        export.resources.len(),
        export.ipam.len(),
        export.source,
        export.revision
    );
    match output {
        Some(path) => {
            std::fs::write(path, text).map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?;
            Ok((String::new(), Some(summary)))
        }
        None => Ok((text, Some(summary))),
    }
}

/// Imports the export in `filename` (`-` for stdin) into an empty datastore.
pub fn import(ctx: &Context, filename: &str) -> Result<String, CliError> {
    let text = if filename == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| CliError::Io {
                path: "stdin".into(),
                source,
            })?;
        text
    } else {
        std::fs::read_to_string(filename).map_err(|source| CliError::Io {
            path: filename.to_string(),
            source,
        })?
    };
    let export: Export = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{filename}: line {} column {}: not a datastore export: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let ds = ctx.open()?;
    let store = ctx.store(ds.as_ref());
    let written = migrate::import(&store, &export)?;
    Ok(format!(
        "Imported {} resources and {} IPAM records ({written} keys) into {}",
        export.resources.len(),
        export.ipam.len(),
        ds.describe()
    ))
}
