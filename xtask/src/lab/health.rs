//! Asking a daemon's health endpoint (`GET /readyz`, `/status`) inside its node's namespace,
//! where it listens on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::{Result, XtaskError};
use crate::netns;

/// tortie-control's metrics and health address inside a node.
pub const CONTROL_METRICS: &str = "127.0.0.1:9099";
/// tortie-fastpath's metrics and health address inside a node.
pub const FASTPATH_METRICS: &str = "127.0.0.1:9098";

/// An HTTP answer: the status code and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub code: u16,
    /// The body.
    pub body: String,
}

/// `GET path` from `addr` inside `namespace`, within about a second.
pub fn get(namespace: &str, addr: &str, path: &str) -> Result<Answer> {
    let target: SocketAddr = addr
        .parse()
        .map_err(|err| XtaskError::Usage(format!("{addr}: {err}")))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let answer = netns::run_in(namespace, move || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(request.as_bytes())?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    })?
    .map_err(|err| XtaskError::Command {
        command: format!("GET http://{addr}{path} in {namespace}"),
        status: "no answer".into(),
        output: err.to_string(),
    })?;
    parse(&answer).ok_or_else(|| XtaskError::Command {
        command: format!("GET http://{addr}{path} in {namespace}"),
        status: "bad answer".into(),
        output: answer.chars().take(200).collect(),
    })
}

/// Reads `HTTP/1.x CODE ...\r\n...\r\n\r\nBODY`.
fn parse(text: &str) -> Option<Answer> {
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Some(Answer { code, body })
}

/// Waits until `GET /readyz` answers 200, at most `bound`; `alive` is asked between tries and
/// ends the wait early (with its message) when the daemon died.
pub fn wait_ready(
    namespace: &str,
    addr: &str,
    bound: Duration,
    mut alive: impl FnMut() -> std::result::Result<(), String>,
) -> Result<()> {
    let deadline = Instant::now() + bound;
    loop {
        alive().map_err(XtaskError::Lab)?;
        let last = match get(namespace, addr, "/readyz") {
            Ok(answer) if answer.code == 200 => return Ok(()),
            Ok(answer) => format!("{} {}", answer.code, answer.body.trim()),
            Err(err) => err.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(XtaskError::Timeout {
                what: format!("{namespace}: http://{addr}/readyz answering 200"),
                seconds: bound.as_secs_f64(),
                detail: format!("; last answer: {last}"),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let answer =
            parse("HTTP/1.1 503 Service Unavailable\r\nA: b\r\n\r\nnot ready: ring").unwrap();
        assert_eq!(answer.code, 503);
        assert_eq!(answer.body, "not ready: ring");
        assert_eq!(parse("garbage"), None);
    }
}
