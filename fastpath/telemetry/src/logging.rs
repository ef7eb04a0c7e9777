//! Structured logging through `tracing`: stderr always, plus an optional append-only file and
//! an optional syslog stream, as text or JSON, filtered by level.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::TelemetryError;

/// Where the local syslog daemon listens.
const SYSLOG_SOCKET: &str = "/dev/log";

/// The logging choices a daemon's command line offers; both daemons flatten it into their
/// arguments (`--log-level`, `--log-file`, `--syslog`, `--json-logs`).
#[derive(Clone, Debug, clap::Args)]
pub struct LogOptions {
    /// Log level (`info`) or a filter directive (`info,tortie_ring=debug`).
    #[arg(long = "log-level", env = "LOG_LEVEL", default_value = "info")]
    pub level: String,
    /// Also append logs to this file.
    #[arg(long = "log-file")]
    pub file: Option<PathBuf>,
    /// Also send logs to the local syslog (`/dev/log`, facility daemon).
    #[arg(long)]
    pub syslog: bool,
    /// JSON lines instead of text (for stderr and the file).
    #[arg(long = "json-logs")]
    pub json: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            level: "info".into(),
            file: None,
            syslog: false,
            json: false,
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn fmt_layer<W>(writer: W, json: bool, ansi: bool) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(true);
    if json {
        base.json().boxed()
    } else {
        base.boxed()
    }
}

/// Parses the level or filter directive, naming the bad value.
pub(crate) fn filter(level: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::builder()
        .parse(level)
        .map_err(|e| TelemetryError::LogLevel {
            value: level.into(),
            reason: e.to_string(),
        })
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init_logging(opts: &LogOptions) -> Result<(), TelemetryError> {
    let filter = filter(&opts.level)?;
    let mut layers: Vec<BoxedLayer> = vec![fmt_layer(std::io::stderr, opts.json, false)];
    if let Some(path) = &opts.file {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| TelemetryError::LogFile {
                path: path.clone(),
                source,
            })?;
        layers.push(fmt_layer(Mutex::new(file), opts.json, false));
    }
    if opts.syslog {
        let writer = SyslogWriter::connect(Path::new(SYSLOG_SOCKET))?;
        // Syslog adds its own timestamp; RFC 3164 messages are one line of text.
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .boxed();
        layers.push(layer);
    }
    Registry::default()
        .with(layers)
        .with(filter)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInitialised)
}

/// Sends each formatted event as one datagram to the local syslog socket (RFC 3164 framing:
/// `<PRI>tag[pid]: message`, facility daemon, severity notice).
struct SyslogWriter {
    socket: UnixDatagram,
    prefix: String,
}

impl SyslogWriter {
    fn connect(path: &Path) -> Result<Mutex<SyslogWriter>, TelemetryError> {
        let socket = UnixDatagram::unbound().map_err(|source| TelemetryError::Syslog {
            path: path.into(),
            source,
        })?;
        socket
            .connect(path)
            .map_err(|source| TelemetryError::Syslog {
                path: path.into(),
                source,
            })?;
        let tag = std::env::args()
            .next()
            .and_then(|a| {
                Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "tortie".into());
        // Facility daemon (3) * 8 + severity notice (5) = 29 (RFC 3164 section 4.1.1).
        let prefix = format!("<29>{tag}[{}]: ", std::process::id());
        Ok(Mutex::new(SyslogWriter { socket, prefix }))
    }
}

impl Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let msg = format!("{}{}", self.prefix, line.trim_end());
        // A lost log line must not take the daemon down: syslog being away is not fatal.
        let _ = self.socket.send(msg.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_parse_and_bad_ones_are_named() {
        assert!(filter("debug").is_ok());
        assert!(filter("info,tortie_ring=trace").is_ok());
        let err = filter("info,tortie_ring=loud").unwrap_err();
        assert!(
            err.to_string().contains("\"info,tortie_ring=loud\""),
            "{err}"
        );
    }

    #[test]
    fn syslog_writer_sends_one_framed_datagram_per_event() {
        let dir = std::env::temp_dir().join(format!("tortie-telemetry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let writer = SyslogWriter::connect(&path).unwrap();
        writer.lock().unwrap().write_all(b"INFO started\n").unwrap();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(
            got.starts_with("<29>") && got.ends_with("INFO started"),
            "{got}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
