//! A throwaway etcd server for tests: loopback only, free ports, a temporary data dir,
//! killed by PID when dropped (also when the test panics).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to become healthy (about 0.2 s with the fast election flags).
const HEALTHY_WITHIN: Duration = Duration::from_secs(20);
/// Attempts, in case another process grabbed one of the chosen ports in between.
const START_ATTEMPTS: usize = 3;

/// Certificates for a TLS etcd, made with the openssl command-line tool.
pub struct TlsFiles {
    /// The CA that signed both certificates.
    pub ca: PathBuf,
    /// Server certificate (SAN IP 127.0.0.1) and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Client certificate (clientAuth) and key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("running openssl (Debian package openssl): {e}"));
    assert!(status.success(), "openssl {args:?} failed: {status}");
}

impl TlsFiles {
    /// Makes a throwaway CA and an EC P-256 server and client certificate in `dir`.
    pub fn generate(dir: &std::path::Path) -> TlsFiles {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=tortie-test-ca",
        ]);
        openssl(dir, &ca);
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            std::fs::write(
                dir.join(&ext),
                format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
            )
            .unwrap();
            let mut req = vec!["req"];
            req.extend(ec);
            req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
            openssl(dir, &req);
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        TlsFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

/// A running etcd; dropping it kills the process and removes its data.
pub struct EtcdServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

/// Finds the etcd binary, failing loudly: the etcd tests must not pass without etcd.
fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ETCD_BIN") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the etcd binary was not found on PATH (or in $ETCD_BIN): install Debian's \
                 etcd-server package (apt-get install etcd-server); the etcd backend tests \
                 need a real etcd and do not skip"
            )
        })
}

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

impl EtcdServer {
    /// Starts etcd and waits (bounded) until `/health` says true.
    pub fn start() -> EtcdServer {
        Self::start_with(None, &[])
    }

    /// Starts etcd serving clients over TLS and requiring client certificates; waits
    /// (bounded) until its client port accepts connections.
    pub fn start_tls(tls: &TlsFiles) -> EtcdServer {
        Self::start_with(Some(tls), &[])
    }

    /// Starts etcd with extra command-line flags (for example a larger
    /// `--quota-backend-bytes` for bulk benchmarks).
    pub fn start_with_flags(flags: &[&str]) -> EtcdServer {
        Self::start_with(None, flags)
    }

    fn start_with(tls: Option<&TlsFiles>, flags: &[&str]) -> EtcdServer {
        let binary = etcd_binary();
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&binary, tls, flags) {
                Ok(server) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("etcd did not start: {last_failure}");
    }

    fn try_start(
        binary: &PathBuf,
        tls: Option<&TlsFiles>,
        flags: &[&str],
    ) -> Result<EtcdServer, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (client, peer) = (free_port(), free_port());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new(binary);
        if let Some(tls) = tls {
            command
                .arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .args(["--name", "test", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .args(["--log-level", "error"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let mut server = EtcdServer {
            child,
            endpoint: client_url,
            _dir: dir,
        };
        let deadline = Instant::now() + HEALTHY_WITHIN;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server._dir.path().join("etcd.log"))
                    .unwrap_or_default();
                return Err(format!("etcd exited with {status}: {log}"));
            }
            let up = if tls.is_some() {
                TcpStream::connect(("127.0.0.1", client)).is_ok()
            } else {
                healthy(client)
            };
            if up {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("etcd not healthy within {HEALTHY_WITHIN:?}"))
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
