//! Running the built `tortiectl` against a temporary SQLite file.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary working directory with a config file pointing at a fresh SQLite store.
pub struct Session {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db: PathBuf,
}

/// What a run printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Session {
    pub fn new() -> Session {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tortie.db");
        let config = dir.path().join("tortiectl.cfg");
        std::fs::write(
            &config,
            format!(
                "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: sqlite\n  sqlitePath: {}\n",
                db.display()
            ),
        )
        .unwrap();
        Session { dir, config, db }
    }

    /// Writes `text` to `name` in the session directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// Runs tortiectl with the session's config (and a clean datastore environment).
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs tortiectl with extra environment variables and optional stdin.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tortiectl"));
        command.arg("-c").arg(&self.config).args(args);
        for var in [
            "DATASTORE_TYPE",
            "SQLITE_PATH",
            "ETCD_ENDPOINTS",
            "ETCD_CA_CERT_FILE",
            "ETCD_CERT_FILE",
            "ETCD_KEY_FILE",
            "TORTIECTL_CONFIG",
        ] {
            command.env_remove(var);
        }
        command.envs(env.iter().copied());
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Every key and mod revision in the store: the "nothing was written" witness.
    pub fn snapshot(&self) -> Vec<(String, i64)> {
        if !self.db.exists() {
            return Vec::new();
        }
        let ds =
            tortie_datastore::open(&tortie_datastore::DatastoreConfig::sqlite(&self.db)).unwrap();
        ds.list("/calico/")
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| (kv.key, kv.mod_revision))
            .collect()
    }
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts failure with exit status 1 and returns stderr.
    pub fn fails(self) -> String {
        assert_eq!(
            self.code, 1,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.starts_with("Failed to "), "{}", self.stderr);
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "one line: {}",
            self.stderr
        );
        self.stderr
    }
}

/// The directory of the example manifests.
pub fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

/// A NetworkPolicy manifest.
pub fn policy(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  selector: app == \"web\"\n  ingress:\n    - action: Allow\n"
    )
}

/// An IPPool manifest.
pub fn pool(name: &str, cidr: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n  cidr: {cidr}\n"
    )
}

/// A throwaway etcd (Debian `etcd-server`) on free loopback ports, killed by PID on drop. A
/// missing binary fails the test naming the package (the installer provides it).
pub struct Etcd {
    _server: tortie_testkit::etcd::EtcdServer,
    /// The client URL.
    pub endpoint: String,
}

impl Etcd {
    /// Starts etcd. Always `Some`: kept an `Option` so callers read as before.
    pub fn start() -> Option<Etcd> {
        let server = tortie_testkit::etcd::EtcdServer::start();
        let endpoint = server.endpoint.clone();
        Some(Etcd {
            _server: server,
            endpoint,
        })
    }

    /// The environment that points tortiectl at this etcd.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", self.endpoint.as_str()),
        ]
    }
}
