//! A minimal HTTP/1.1 endpoint for metrics and health, on one std thread.
//!
//! Requests are served one at a time with short timeouts: the clients are Prometheus, a
//! kubelet-style probe and `tortiectl`, a handful of requests a second at most. Anything
//! but `GET` of a known path gets a 4xx; a request head larger than 8 KiB is refused.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::registry::Registry;

use crate::{Health, TelemetryError};

/// Produces the JSON body of `GET /status`.
pub type StatusFn = Arc<dyn Fn() -> String + Send + Sync>;

const MAX_HEAD: usize = 8 << 10;
const IO_TIMEOUT: Duration = Duration::from_secs(2);
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// The running endpoint; dropping it stops the thread.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Endpoints {
    registry: Arc<Registry>,
    health: Health,
    status: Option<StatusFn>,
}

/// Binds `addr` and serves `/metrics`, `/readyz`, `/livez` and `/status` until dropped.
pub fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    health: Health,
    status: Option<StatusFn>,
) -> Result<Server, TelemetryError> {
    let listener = bind_with_retry(addr)?;
    let bound = listener
        .local_addr()
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let stop = Arc::new(AtomicBool::new(false));
    let endpoints = Endpoints {
        registry,
        health,
        status,
    };
    let stop_flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("telemetry-http".into())
        .spawn(move || accept_loop(&listener, &endpoints, &stop_flag))
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    Ok(Server {
        addr: bound,
        stop,
        thread: Some(thread),
    })
}

/// How long a bind waits for an address still held by a previous instance (a daemon
/// restarted right after `kill -9`: the dead process's sockets close a few tens of
/// milliseconds later).
const BIND_PATIENCE: Duration = Duration::from_secs(3);

fn bind_with_retry(addr: SocketAddr) -> Result<TcpListener, TelemetryError> {
    let start = std::time::Instant::now();
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse && start.elapsed() < BIND_PATIENCE =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => return Err(TelemetryError::Bind { addr, source }),
        }
    }
}

fn accept_loop(listener: &TcpListener, endpoints: &Endpoints, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = handle(stream, endpoints) {
                    tracing::debug!(error = %e, "telemetry request failed");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                tracing::warn!(error = %e, "telemetry accept failed");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

fn handle(stream: TcpStream, endpoints: &Endpoints) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the header lines (bounded) so the client sees a clean response.
    let mut head = request_line.len();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        head += n;
        if n == 0 || line == "\r\n" || line == "\n" || head > MAX_HEAD {
            break;
        }
    }
    let (status, content_type, body) = if head > MAX_HEAD {
        (431, "text/plain", "request header too large\n".to_string())
    } else {
        route(&request_line, endpoints)
    };
    respond(stream, status, content_type, &body)
}

fn route(request_line: &str, endpoints: &Endpoints) -> (u16, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return (405, "text/plain", format!("method {method} not allowed\n"));
    }
    match path {
        "/metrics" => {
            let mut text = String::new();
            match prometheus_client::encoding::text::encode(&mut text, &endpoints.registry) {
                Ok(()) => (
                    200,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                ),
                Err(e) => (500, "text/plain", format!("encoding metrics failed: {e}\n")),
            }
        }
        "/readyz" => match endpoints.health.ready() {
            (true, reason) => (200, "text/plain", format!("ready: {reason}\n")),
            (false, reason) => (503, "text/plain", format!("not ready: {reason}\n")),
        },
        "/livez" | "/healthz" => match endpoints.health.live() {
            Ok(()) => (200, "text/plain", "live\n".into()),
            Err(why) => (503, "text/plain", format!("not live: {why}\n")),
        },
        "/status" => match &endpoints.status {
            Some(f) => (200, "application/json", f()),
            None => (404, "text/plain", "no status here\n".into()),
        },
        _ => (
            404,
            "text/plain",
            format!("unknown path {path:?}: try /metrics, /readyz, /livez, /status\n"),
        ),
    }
}

fn respond(
    mut stream: TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
