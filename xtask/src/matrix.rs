//! A connectivity matrix: a real TCP connection from every workload to every other one, all at
//! once (each cell waits at most [`CELL_TIMEOUT`]), optionally beside what
//! `tortiectl policy explain` says about the same pair.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Result, XtaskError};
use crate::lab::datastore::Tortiectl;
use crate::lab::state::WorkloadRecord;
use crate::probe;

/// How long one cell waits for an answer: far above a working round trip in a namespace lab,
/// far below a human's patience.
pub const CELL_TIMEOUT: Duration = Duration::from_millis(500);

/// One cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// Whether the connection was answered.
    pub reached: bool,
    /// What policy explain says (`Some(true)` = Allow), when asked.
    pub allowed: Option<bool>,
}

/// Sources in rows, destinations in columns; `None` on the diagonal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    /// Workload names, in row and column order.
    pub names: Vec<String>,
    /// The cells.
    pub cells: Vec<Vec<Option<Cell>>>,
    /// The TCP port probed.
    pub port: u16,
}

impl Matrix {
    /// Probes every ordered pair of `workloads` concurrently (a responder must listen on
    /// `port` in each). With `explain`, also asks `tortiectl policy explain` for each pair.
    pub fn measure(
        workloads: &[WorkloadRecord],
        port: u16,
        explain: Option<&Tortiectl>,
    ) -> Result<Matrix> {
        let mut probes = Vec::new();
        for (i, from) in workloads.iter().enumerate() {
            for (j, to) in workloads.iter().enumerate() {
                if i == j {
                    continue;
                }
                let addr: IpAddr = to.address.parse().map_err(|_| {
                    XtaskError::Lab(format!(
                        "{} has no usable address ({:?})",
                        to.name, to.address
                    ))
                })?;
                let ns = from.netns.clone();
                let thread = std::thread::spawn(move || probe::tcp(&ns, addr, port, CELL_TIMEOUT));
                probes.push((i, j, thread));
            }
        }
        let n = workloads.len();
        let mut cells = vec![vec![None; n]; n];
        for (i, j, thread) in probes {
            let reached = thread
                .join()
                .map_err(|_| XtaskError::Lab("a probe thread panicked".into()))??
                .is_some();
            let allowed = match explain {
                Some(tool) => Some(explain_allows(
                    tool,
                    &workloads[i],
                    &workloads[j],
                    "TCP",
                    Some(port),
                )?),
                None => None,
            };
            cells[i][j] = Some(Cell { reached, allowed });
        }
        Ok(Matrix {
            names: workloads.iter().map(|w| w.name.clone()).collect(),
            cells,
            port,
        })
    }

    /// The pairs where the traffic disagrees with policy explain.
    pub fn disagreements(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, row) in self.cells.iter().enumerate() {
            for (j, cell) in row.iter().enumerate() {
                if let Some(Cell {
                    reached,
                    allowed: Some(allowed),
                }) = cell
                    && reached != allowed
                {
                    out.push((self.names[i].clone(), self.names[j].clone()));
                }
            }
        }
        out
    }

    /// The matrix as a table: `ok` / `blocked`, with `(!)` where policy explain disagrees.
    pub fn render(&self) -> String {
        let width = self
            .names
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(4)
            .max(12);
        let mut out = format!("{:width$}  ", format!("TCP {}", self.port));
        for name in &self.names {
            out.push_str(&format!("{name:>width$}"));
        }
        out.push('\n');
        for (i, row) in self.cells.iter().enumerate() {
            out.push_str(&format!("{:width$}  ", self.names[i]));
            for cell in row {
                let text = match cell {
                    None => "-".to_string(),
                    Some(cell) => {
                        let word = if cell.reached { "ok" } else { "blocked" };
                        match cell.allowed {
                            Some(allowed) if allowed != cell.reached => format!("{word}(!)"),
                            _ => word.to_string(),
                        }
                    }
                };
                out.push_str(&format!("{text:>width$}"));
            }
            out.push('\n');
        }
        out
    }
}

/// Whether `tortiectl policy explain -o json` allows `from` -> `to`.
pub fn explain_allows(
    tool: &Tortiectl,
    from: &WorkloadRecord,
    to: &WorkloadRecord,
    protocol: &str,
    port: Option<u16>,
) -> Result<bool> {
    let from_arg = format!("{}/{}", from.namespace, from.name);
    let to_arg = format!("{}/{}", to.namespace, to.name);
    let port_text = port.map(|p| p.to_string());
    let mut args = vec![
        "policy",
        "explain",
        "--from",
        &from_arg,
        "--to",
        &to_arg,
        "--protocol",
        protocol,
        "-o",
        "json",
    ];
    if let Some(port) = &port_text {
        args.extend(["--port", port]);
    }
    let text = tool.run(&args)?;
    verdict_allows(&text).ok_or_else(|| {
        XtaskError::Lab(format!(
            "policy explain {from_arg} -> {to_arg}: no verdict in {text}"
        ))
    })
}

/// Reads `{"verdict":"Allow"|"Deny",...}`.
pub fn verdict_allows(json: &str) -> Option<bool> {
    let value: Value = serde_json::from_str(json).ok()?;
    match value.get("verdict")?.as_str()? {
        "Allow" => Some(true),
        "Deny" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_explain_verdicts() {
        assert_eq!(
            verdict_allows(r#"{"verdict":"Allow","egress":{}}"#),
            Some(true)
        );
        assert_eq!(verdict_allows(r#"{"verdict":"Deny"}"#), Some(false));
        assert_eq!(verdict_allows(r#"{"verdict":"Maybe"}"#), None);
        assert_eq!(verdict_allows("nope"), None);
    }

    #[test]
    fn renders_and_flags_disagreements() {
        let matrix = Matrix {
            names: vec!["a".into(), "b".into()],
            cells: vec![
                vec![
                    None,
                    Some(Cell {
                        reached: true,
                        allowed: Some(false),
                    }),
                ],
                vec![
                    Some(Cell {
                        reached: false,
                        allowed: Some(false),
                    }),
                    None,
                ],
            ],
            port: 8080,
        };
        let text = matrix.render();
        assert!(text.contains("ok(!)"), "{text}");
        assert!(text.contains("blocked"), "{text}");
        assert_eq!(matrix.disagreements(), vec![("a".into(), "b".into())]);
    }
}
