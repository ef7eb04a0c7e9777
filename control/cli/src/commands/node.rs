//! `node status` and `node routes`: what tortie-control published for each node (its own
//! state, the fastpath's status file, the routes in force with their origin) under
//! `/tortie/status/v1/nodes/<node>`.
//!
//! The published document is read as plain JSON (the CLI does not link the daemon): fields
//! it does not know are ignored, fields that are missing print as `-`.

use std::fmt::Write;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::Context;
use crate::error::CliError;

/// Prefix of the node status keys tortie-control writes.
pub const NODE_STATUS_PREFIX: &str = "/tortie/status/v1/nodes/";
/// A status not rewritten for this long means tortie-control is not running (it publishes
/// every 5 seconds).
pub const STALE_AFTER_S: u64 = 15;

/// `node` subcommands.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Both daemons of a node (or of every node): up or stale, ready, generations, workers
    /// and interfaces.
    Status(NodeArgs),
    /// The routes a node's tortie-control has in force: prefix, next hop, interface,
    /// encapsulation and origin.
    Routes(NodeArgs),
}

/// Options of `node status` / `node routes`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node; `status` without it shows every node, `routes` this host's node
    /// (`NODENAME`, else the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// Output: text (default) or json (the published document).
    #[arg(short = 'o', long, default_value = "text")]
    pub output: String,
}

/// Runs a `node` subcommand and returns what to print.
pub fn run(ctx: &Context, command: &NodeCommand) -> Result<String, CliError> {
    let (args, routes) = match command {
        NodeCommand::Status(a) => (a, false),
        NodeCommand::Routes(a) => (a, true),
    };
    let json = match args.output.as_str() {
        "json" => true,
        "text" | "" => false,
        other => {
            return Err(CliError::Usage(format!(
                "unknown output format {other:?} (text or json)"
            )));
        }
    };
    let node = match (&args.node, routes) {
        (Some(n), _) => Some(n.clone()),
        (None, true) => Some(local_node()?),
        (None, false) => None,
    };
    let docs = load(ctx, node.as_deref())?;
    let now = now_unix();
    if json {
        let value = if routes {
            docs.first()
                .map(|d| d["routes"].clone())
                .unwrap_or(Value::Null)
        } else if node.is_some() {
            docs.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(docs)
        };
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ));
    }
    if routes {
        return Ok(docs.first().map(routes_text).unwrap_or_default());
    }
    Ok(docs
        .iter()
        .map(|d| status_text(d, now))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This host's node name: `NODENAME`, else the kernel's host name.
fn local_node() -> Result<String, CliError> {
    if let Ok(n) = std::env::var("NODENAME")
        && !n.trim().is_empty()
    {
        return Ok(n.trim().to_string());
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .map_err(|e| CliError::Usage(format!("cannot read the host name ({e}); give --node")))
}

fn load(ctx: &Context, node: Option<&str>) -> Result<Vec<Value>, CliError> {
    let ds = ctx.open()?;
    let kvs = match node {
        Some(n) => {
            let key = format!("{NODE_STATUS_PREFIX}{n}");
            match ds.get(&key)? {
                Some(kv) => vec![kv],
                None => {
                    return Err(CliError::Usage(format!(
                        "no status published for node {n:?} (is tortie-control running there?)"
                    )));
                }
            }
        }
        None => ds.list(NODE_STATUS_PREFIX)?.kvs,
    };
    kvs.iter()
        .map(|kv| {
            serde_json::from_slice(&kv.value).map_err(|e| {
                CliError::Usage(format!("{}: not a node status document: {e}", kv.key))
            })
        })
        .collect()
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn age(now: u64, then: &Value) -> String {
    match then.as_u64() {
        Some(t) => format!("{}s ago", now.saturating_sub(t)),
        None => "-".into(),
    }
}

/// The text form of one node's status.
pub fn status_text(doc: &Value, now: u64) -> String {
    let mut out = String::new();
    let c = &doc["control"];
    let f = &doc["fastpath"];
    let fs = &f["status"];
    let updated = doc["updated_unix"].as_u64().unwrap_or(0);
    let control_up = if c["stopped"] == true {
        "stopped"
    } else if updated + STALE_AFTER_S >= now {
        "up"
    } else {
        "stale"
    };
    let _ = writeln!(
        out,
        "Node {} (status written {})",
        s(&doc["node"]),
        age(now, &doc["updated_unix"])
    );
    let _ = writeln!(
        out,
        "  tortie-control   pid {}  {}  {}  node {} {}  uplink {}",
        s(&c["pid"]),
        control_up,
        if c["ready"] == true {
            "ready"
        } else {
            "not ready"
        },
        s(&c["node_v4"]),
        if c["node_v6"].is_null() {
            String::new()
        } else {
            s(&c["node_v6"])
        },
        s(&c["uplink"]),
    );
    let _ = writeln!(
        out,
        "    generation sent {} (snapshots {}, deltas {}), datastore revision {}, resyncs {}, ring lag {}",
        s(&c["generation_sent"]),
        s(&c["snapshots_sent"]),
        s(&c["deltas_sent"]),
        s(&c["datastore_revision"]),
        s(&c["resyncs"]),
        s(&c["ring"]["lag"]),
    );
    let lat = &c["apply_latency"];
    if lat["count"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            out,
            "    change-to-ring latency p50 {:.2} ms, p99 {:.2} ms over {} bursts",
            lat["p50_ms"].as_f64().unwrap_or(0.0),
            lat["p99_ms"].as_f64().unwrap_or(0.0),
            s(&lat["count"]),
        );
    }
    let _ = writeln!(
        out,
        "    endpoints {}, waiting for an interface {}, unresolved nodes {}, failed closed {}",
        s(&c["endpoints"]),
        c["pending_endpoints"].as_array().map_or(0, Vec::len),
        c["unresolved_nodes"].as_array().map_or(0, Vec::len),
        c["failed_closed"].as_array().map_or(0, Vec::len),
    );
    for fc in c["failed_closed"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "      failed closed: {}: {}",
            s(&fc["endpoint"]),
            s(&fc["reason"])
        );
    }
    out.push_str(&bgp_text(&doc["bgp"], now));
    let state = f["state"].as_str().unwrap_or("missing");
    let fp_state = match state {
        "fresh" => "up",
        "stale" => "stale",
        _ => "missing",
    };
    if fs.is_null() {
        let _ = writeln!(out, "  tortie-fastpath  {fp_state} (no status file)");
        return out;
    }
    let _ = writeln!(
        out,
        "  tortie-fastpath  pid {}  {}  {}  mode {}  (status {})",
        s(&fs["pid"]),
        fp_state,
        if fs["ready"] == true {
            "ready"
        } else {
            "not ready"
        },
        s(&fs["mode"]),
        match f["age_s"].as_u64() {
            Some(a) => format!("{a}s old"),
            None => "-".into(),
        },
    );
    let sent = c["generation_sent"].as_u64();
    let applied = fs["generation"].as_u64();
    let sync = match (sent, applied) {
        (Some(a), Some(b)) if a == b => "in sync".to_string(),
        (Some(a), Some(b)) if a > b => format!("{} behind", a - b),
        (Some(_), Some(_)) => "ahead of control (control restarted?)".to_string(),
        _ => "-".to_string(),
    };
    let _ = writeln!(
        out,
        "    generation applied {} ({sync}){}",
        s(&fs["generation"]),
        if fs["awaiting_snapshot"] == true {
            ", awaiting a snapshot"
        } else {
            ""
        },
    );
    let workers = fs["workers"].as_array().cloned().unwrap_or_default();
    if !workers.is_empty() {
        let _ = writeln!(
            out,
            "    {:<6} {:<5} {:>12} {:>12} {:>10}  INTERFACES",
            "WORKER", "CORE", "RX", "TX", "DROPS"
        );
        for w in &workers {
            let ifaces: Vec<String> = w["interfaces"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            let _ = writeln!(
                out,
                "    {:<6} {:<5} {:>12} {:>12} {:>10}  {}",
                s(&w["id"]),
                s(&w["core"]),
                s(&w["rx_packets"]),
                s(&w["tx_packets"]),
                s(&w["drops"]),
                ifaces.join(",")
            );
        }
    }
    let ifaces = fs["interfaces"].as_array().cloned().unwrap_or_default();
    if !ifaces.is_empty() {
        let _ = writeln!(
            out,
            "    {:<16} {:>6} {:<9} {:<12} {:>6}",
            "INTERFACE", "INDEX", "ROLE", "BIND", "QUEUES"
        );
        for i in &ifaces {
            let _ = writeln!(
                out,
                "    {:<16} {:>6} {:<9} {:<12} {:>6}",
                s(&i["name"]),
                s(&i["if_index"]),
                s(&i["role"]),
                s(&i["bind_mode"]),
                s(&i["queues"])
            );
        }
    }
    out
}

/// The BGP part of `node status`: the speaker, then its sessions as `calicoctl node
/// status` lists them (PEER ADDRESS, PEER TYPE, STATE, SINCE, INFO). Empty for a status
/// published before BGP was reported.
pub fn bgp_text(bgp: &Value, now: u64) -> String {
    let mut out = String::new();
    if bgp.is_null() {
        return out;
    }
    if bgp["enabled"] != true {
        let _ = writeln!(out, "  BGP              off");
        return out;
    }
    let _ = writeln!(
        out,
        "  BGP              {}  AS {}  router id {}{}",
        if bgp["running"] == true {
            "running"
        } else {
            "not running"
        },
        s(&bgp["as_number"]),
        s(&bgp["router_id"]),
        match bgp["error"].as_str() {
            Some(e) => format!("  error: {e}"),
            None => String::new(),
        }
    );
    let mut rows = vec![[
        "PEER ADDRESS".to_string(),
        "PEER TYPE".to_string(),
        "STATE".to_string(),
        "SINCE".to_string(),
        "INFO".to_string(),
    ]];
    for p in bgp["peers"].as_array().into_iter().flatten() {
        let mut info = s(&p["info"]);
        if p["state"] == "up" {
            let _ = write!(
                info,
                ", {} received, {} advertised",
                s(&p["prefixes_received"]),
                s(&p["prefixes_advertised"])
            );
        }
        rows.push([
            s(&p["address"]),
            s(&p["type"]),
            s(&p["state"]),
            p["since_unix"]
                .as_u64()
                .map_or_else(|| "-".into(), |t| since(now, t)),
            info,
        ]);
    }
    if rows.len() == 1 {
        let _ = writeln!(out, "    no BGP peers");
        return out;
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    let rule = format!("    +{}+", rule.join("+"));
    let _ = writeln!(out, "{rule}");
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!(" {cell:<w$} "))
            .collect();
        let _ = writeln!(out, "    |{}|", cells.join("|"));
        if i == 0 {
            let _ = writeln!(out, "{rule}");
        }
    }
    let _ = writeln!(out, "{rule}");
    out
}

/// calicoctl's SINCE column: the UTC time of day within the last day, else the date.
fn since(now: u64, then: u64) -> String {
    let secs = then % 86_400;
    if now.saturating_sub(then) < 86_400 {
        return format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    }
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = (then / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The text form of a node's routes.
pub fn routes_text(doc: &Value) -> String {
    let mut rows = vec![[
        "PREFIX".to_string(),
        "NEXT HOP".to_string(),
        "INTERFACE".to_string(),
        "ENCAP".to_string(),
        "ORIGIN".to_string(),
    ]];
    for r in doc["routes"].as_array().into_iter().flatten() {
        let next_hop = match r["target"].as_str().unwrap_or("-") {
            "node" => format!("{} ({})", s(&r["node"]), s(&r["next_hop"])),
            "uplink" => format!("gateway {}", s(&r["next_hop"])),
            "router" => format!("router {}", s(&r["next_hop"])),
            "local" => "local workload".into(),
            "host" => "this host".into(),
            "blackhole" => format!("blackhole ({})", s(&r["reason"])),
            other => other.to_string(),
        };
        rows.push([
            s(&r["prefix"]),
            next_hop,
            s(&r["interface"]),
            s(&r["encap"]),
            s(&r["origin"]),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("   ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_json::json!({
            "node": "n1", "updated_unix": 1000,
            "control": {"pid": 7, "ready": true, "node_v4": "198.18.1.11/24", "node_v6": null,
                "uplink": "eth0", "generation_sent": 42, "snapshots_sent": 1, "deltas_sent": 3,
                "datastore_revision": 9, "resyncs": 0, "ring": {"lag": 0}, "endpoints": 1,
                "pending_endpoints": [], "unresolved_nodes": [], "failed_closed": [],
                "apply_latency": {"count": 3, "p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 2.0}},
            "fastpath": {"state": "fresh", "age_s": 1, "status": {"pid": 8, "ready": true,
                "generation": 41, "mode": "adaptive",
                "workers": [{"id": 0, "core": 1, "rx_packets": 10, "tx_packets": 9, "drops": 1,
                    "interfaces": ["eth0", "tortie-host"]}],
                "interfaces": [{"name": "eth0", "if_index": 2, "role": "uplink",
                    "bind_mode": "DriverCopy", "queues": 1}]}},
            "routes": [
                {"prefix": "198.19.0.64/26", "target": "node", "node": "n2",
                 "next_hop": "198.18.1.12", "interface": "eth0", "encap": "ipip-cross-subnet",
                 "origin": "ipam-block", "reason": null},
                {"prefix": "198.19.0.0/26", "target": "blackhole", "node": null,
                 "next_hop": null, "interface": null, "encap": null, "origin": "ipam-block",
                 "reason": "own block"}]
        })
    }

    #[test]
    fn status_text_shows_both_daemons_and_the_generation_gap() {
        let text = status_text(&doc(), 1003);
        assert!(text.contains("tortie-control   pid 7  up  ready"), "{text}");
        assert!(text.contains("generation sent 42"), "{text}");
        assert!(
            text.contains("tortie-fastpath  pid 8  up  ready  mode adaptive"),
            "{text}"
        );
        assert!(text.contains("generation applied 41 (1 behind)"), "{text}");
        assert!(text.contains("tortie-host"), "{text}");
        assert!(text.contains("DriverCopy"), "{text}");
        // Not rewritten for a minute: stale.
        assert!(status_text(&doc(), 1060).contains("pid 7  stale"));
        let mut stopped = doc();
        stopped["control"]["stopped"] = true.into();
        stopped["control"]["ready"] = false.into();
        assert!(status_text(&stopped, 1003).contains("pid 7  stopped  not ready"));
    }

    #[test]
    fn bgp_peers_print_like_calicoctl() {
        let mut d = doc();
        d["bgp"] = serde_json::json!({"enabled": true, "running": true, "as_number": 64512,
            "router_id": "198.18.1.11", "error": null,
            "peers": [
                {"address": "198.18.1.12", "port": 179, "type": "node-to-node mesh",
                 "node": "n2", "remote_as": 64512, "state": "up", "info": "Established",
                 "since_unix": 3661, "prefixes_received": 1, "prefixes_advertised": 2},
                {"address": "198.18.1.1", "port": 179, "type": "global", "node": null,
                 "remote_as": 64513, "state": "start", "info": "Active (connection refused)",
                 "since_unix": 0, "prefixes_received": 0, "prefixes_advertised": 0}]});
        let text = status_text(&d, 3700);
        assert!(
            text.contains("BGP              running  AS 64512  router id 198.18.1.11"),
            "{text}"
        );
        let header = text.lines().find(|l| l.contains("PEER ADDRESS")).unwrap();
        for col in ["PEER TYPE", "STATE", "SINCE", "INFO"] {
            assert!(header.contains(col), "{header}");
        }
        let mesh = text.lines().find(|l| l.contains("198.18.1.12")).unwrap();
        assert!(mesh.contains("| node-to-node mesh |"), "{mesh}");
        assert!(mesh.contains("| up "), "{mesh}");
        assert!(mesh.contains("01:01:01"), "{mesh}");
        assert!(
            mesh.contains("Established, 1 received, 2 advertised"),
            "{mesh}"
        );
        let global = text.lines().find(|l| l.contains("198.18.1.1 ")).unwrap();
        assert!(global.contains("| start "), "{global}");
        assert!(global.contains("Active (connection refused)"), "{global}");
        assert_eq!(since(200_000, 0), "1970-01-01");
        assert_eq!(since(2_000_000_000, 1_700_000_000), "2023-11-14");
        d["bgp"] = serde_json::json!({"enabled": false, "peers": []});
        assert!(status_text(&d, 3700).contains("BGP              off"));
        // A status without the part prints no BGP line.
        assert!(!status_text(&doc(), 1003).contains("BGP"));
    }

    #[test]
    fn routes_text_has_one_row_per_route() {
        let text = routes_text(&doc());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("PREFIX"));
        assert!(lines[1].contains("n2 (198.18.1.12)") && lines[1].contains("ipip-cross-subnet"));
        assert!(lines[2].contains("blackhole (own block)"));
    }
}
