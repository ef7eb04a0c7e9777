//! `create`, `apply` and `replace`: read every document, check everything, then write all of it
//! in one transaction (or nothing).

use tortie_model::Kind;
use tortie_store::WriteMode;

use super::{Context, count_phrase, load_documents, locate};
use crate::error::CliError;

/// Options shared by the three writing commands.
pub struct WriteRequest<'a> {
    /// `-f`.
    pub filename: &'a str,
    /// `-R`.
    pub recursive: bool,
    /// `-n`.
    pub namespace: Option<&'a str>,
    /// `--skip-empty`.
    pub skip_empty: bool,
    /// How existing resources are treated.
    pub mode: WriteMode,
}

/// Runs a writing command and returns the success message.
pub fn run(ctx: &Context, request: &WriteRequest<'_>) -> Result<String, CliError> {
    let documents = load_documents(request.filename, request.recursive, request.namespace)?;
    let verb = match request.mode {
        WriteMode::Create | WriteMode::CreateSkipExisting => "created",
        WriteMode::Apply => "applied",
        WriteMode::Replace => "replaced",
    };
    if documents.is_empty() {
        if request.skip_empty {
            return Ok(format!("Successfully {verb} 0 resource(s)"));
        }
        return Err(CliError::Usage(format!(
            "{}: no resources specified in the input",
            request.filename
        )));
    }
    let ds = ctx.open()?;
    let store = ctx.store(ds.as_ref());
    let resources = documents.iter().map(|d| d.resource.clone()).collect();
    let outcome = store
        .write_all(resources, request.mode)
        .map_err(|e| locate(e, &documents))?;
    let kinds: Vec<Kind> = outcome.results.iter().flatten().map(|r| r.kind()).collect();
    let mut message = format!("Successfully {verb} {}", count_phrase(&kinds));
    if outcome.skipped > 0 {
        message.push_str(&format!(
            "; skipped {} that already exist(s)",
            outcome.skipped
        ));
    }
    Ok(message)
}
