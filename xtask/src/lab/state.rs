//! The lab's state file (`state.json` in the run directory): which binaries and datastore it
//! uses, the daemons it started (PID plus the kernel's start time, so `lab down` signals exactly
//! those processes and never a later process that reused a PID), and the workloads attached.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{Result, XtaskError};

/// Where a lab keeps its datastore, rings, logs and state.
pub const RUN_DIR: &str = "/run/tortie-lab";

/// One daemon the lab started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRecord {
    /// The node it serves.
    pub node: String,
    /// `control` or `fastpath`.
    pub role: String,
    /// Its PID.
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
    /// The command line, for the record.
    pub command: String,
    /// Its log file.
    pub log: PathBuf,
}

/// One workload the lab attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRecord {
    /// The pod name.
    pub name: String,
    /// Its Kubernetes-style namespace (`ns-a`).
    pub namespace: String,
    /// Its network namespace.
    pub netns: String,
    /// The node it is attached to.
    pub node: String,
    /// Its IPv4 address.
    pub address: String,
    /// Its IPv6 address (empty without `--ipv6`).
    pub address6: String,
    /// The CNI container id.
    pub container_id: String,
}

/// Everything a later `lab status` or `lab down` needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabState {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The folder of the built binaries.
    pub bin_dir: PathBuf,
    /// The SQLite datastore file.
    pub datastore: PathBuf,
    /// Whether the lab runs tortie-control and tortie-fastpath (else the kernel forwards).
    pub daemons: bool,
    /// Whether the lab has IPv6 addresses and an IPv6 pool.
    pub ipv6: bool,
    /// Whether tortie-control routes other nodes' blocks from BGP only.
    pub routes_from_bgp: bool,
    /// The daemons started.
    pub processes: Vec<ProcessRecord>,
    /// The workloads attached.
    pub workloads: Vec<WorkloadRecord>,
}

impl LabState {
    /// The state file's path in `run_dir`.
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join("state.json")
    }

    /// Reads the state of the lab in `run_dir`; `None` when there is none.
    pub fn load(run_dir: &Path) -> Result<Option<LabState>> {
        let path = LabState::path(run_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(XtaskError::file(path, err)),
        };
        LabState::parse(&text)
            .map(Some)
            .map_err(|message| XtaskError::State { path, message })
    }

    /// Writes the state atomically (a temporary file renamed over the old one).
    pub fn save(&self) -> Result<()> {
        let path = LabState::path(&self.run_dir);
        let temporary = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        std::fs::write(&temporary, text + "\n").map_err(|err| XtaskError::file(&temporary, err))?;
        std::fs::rename(&temporary, &path).map_err(|err| XtaskError::file(&path, err))
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "run_dir": self.run_dir,
            "bin_dir": self.bin_dir,
            "datastore": self.datastore,
            "daemons": self.daemons,
            "ipv6": self.ipv6,
            "routes_from_bgp": self.routes_from_bgp,
            "processes": self.processes.iter().map(|p| json!({
                "node": p.node, "role": p.role, "pid": p.pid, "start_ticks": p.start_ticks,
                "command": p.command, "log": p.log,
            })).collect::<Vec<_>>(),
            "workloads": self.workloads.iter().map(|w| json!({
                "name": w.name, "namespace": w.namespace, "netns": w.netns, "node": w.node,
                "address": w.address, "address6": w.address6, "container_id": w.container_id,
            })).collect::<Vec<_>>(),
        })
    }

    /// Reads the JSON [`LabState::to_json`] writes; the error names the missing field.
    pub fn parse(text: &str) -> std::result::Result<LabState, String> {
        let value: Value = serde_json::from_str(text).map_err(|err| err.to_string())?;
        let processes = array(&value, "processes")?
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let at = |field| format!("processes[{i}].{field}");
                Ok(ProcessRecord {
                    node: string(p, "node").map_err(|_| at("node"))?,
                    role: string(p, "role").map_err(|_| at("role"))?,
                    pid: number(p, "pid")
                        .and_then(|n| u32::try_from(n).map_err(|e| e.to_string()))
                        .map_err(|_| at("pid"))?,
                    start_ticks: number(p, "start_ticks").map_err(|_| at("start_ticks"))?,
                    command: string(p, "command").unwrap_or_default(),
                    log: string(p, "log").unwrap_or_default().into(),
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        let workloads = array(&value, "workloads")?
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let field = |name| string(w, name).map_err(|_| format!("workloads[{i}].{name}"));
                Ok(WorkloadRecord {
                    name: field("name")?,
                    namespace: field("namespace")?,
                    netns: field("netns")?,
                    node: field("node")?,
                    address: field("address")?,
                    address6: string(w, "address6").unwrap_or_default(),
                    container_id: field("container_id")?,
                })
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(LabState {
            run_dir: string(&value, "run_dir")?.into(),
            bin_dir: string(&value, "bin_dir")?.into(),
            datastore: string(&value, "datastore")?.into(),
            daemons: value
                .get("daemons")
                .and_then(Value::as_bool)
                .ok_or("daemons: expected true or false")?,
            ipv6: value.get("ipv6").and_then(Value::as_bool).unwrap_or(false),
            routes_from_bgp: value
                .get("routes_from_bgp")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            processes,
            workloads,
        })
    }
}

fn string(value: &Value, field: &str) -> std::result::Result<String, String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{field}: expected a string"))
}

fn number(value: &Value, field: &str) -> std::result::Result<u64, String> {
    value
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{field}: expected a number"))
}

fn array<'a>(value: &'a Value, field: &str) -> std::result::Result<&'a Vec<Value>, String> {
    value
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{field}: expected a list"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LabState {
        LabState {
            run_dir: "/run/tortie-lab".into(),
            bin_dir: "/src/target/debug".into(),
            datastore: "/run/tortie-lab/datastore.db".into(),
            daemons: true,
            ipv6: true,
            routes_from_bgp: true,
            processes: vec![ProcessRecord {
                node: "node1".into(),
                role: "control".into(),
                pid: 4242,
                start_ticks: 987654,
                command: "tortie-control --node node1".into(),
                log: "/run/tortie-lab/node1/control.log".into(),
            }],
            workloads: vec![WorkloadRecord {
                name: "frontend-1".into(),
                namespace: "ns-a".into(),
                netns: "tortie-lab-wl-frontend-1".into(),
                node: "node1".into(),
                address: "198.19.0.1".into(),
                address6: "2001:db8:1::1".into(),
                container_id: "lab-frontend-1".into(),
            }],
        }
    }

    #[test]
    fn state_round_trips_through_json() {
        let state = sample();
        let text = serde_json::to_string(&state.to_json()).unwrap();
        assert_eq!(LabState::parse(&text), Ok(state));
    }

    #[test]
    fn a_damaged_state_file_names_the_field() {
        let mut value = sample().to_json();
        value["processes"][0]["pid"] = json!("not a number");
        let err = LabState::parse(&value.to_string()).unwrap_err();
        assert_eq!(err, "processes[0].pid");
        value["processes"] = json!([]);
        value["workloads"][0]
            .as_object_mut()
            .unwrap()
            .remove("node");
        assert_eq!(
            LabState::parse(&value.to_string()).unwrap_err(),
            "workloads[0].node"
        );
        assert!(LabState::parse("{").is_err());
    }

    #[test]
    fn save_then_load_in_a_directory() {
        let dir = std::env::temp_dir().join(format!("xtask-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut state = sample();
        state.run_dir = dir.clone();
        state.save().unwrap();
        let loaded = LabState::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(loaded, Some(state));
        assert_eq!(LabState::load(&dir).unwrap(), None);
    }
}
