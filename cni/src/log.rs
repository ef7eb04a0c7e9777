//! Logging for the plugins: stdout belongs to the CNI protocol, so logs go to `log_file_path`
//! (appended) or to stderr, at `log_level`.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::config::NetConf;

/// Installs the logger; repeated calls are harmless.
pub fn init(conf: &NetConf) {
    let level = match conf
        .log_level
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("debug") => "debug",
        Some("info") => "info",
        Some("warning") | Some("warn") => "warn",
        Some("error") | Some("fatal") | Some("panic") => "error",
        Some("none") => "off",
        _ => "warn",
    };
    let filter = EnvFilter::new(level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let file = conf
        .log_file_path
        .as_ref()
        .filter(|p| !p.is_empty())
        .and_then(|path| {
            if let Some(parent) = std::path::Path::new(path).parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            OpenOptions::new().create(true).append(true).open(path).ok()
        });
    let _ = match file {
        Some(file) => builder.with_writer(Mutex::new(file)).try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
}
