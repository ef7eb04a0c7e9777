//! The etcd v3 backend: the same trait over a real etcd cluster (and so over a datastore an
//! existing Calico installation already uses).
//!
//! - Compare-and-swap is an etcd txn comparing `mod_revision` (or `version == 0` for
//!   "absent"); on failure the txn's else-branch reads the conditioned keys, so the error
//!   names the key and its actual revision exactly as the SQLite backend does.
//! - Lists are paged ([`ETCD_LIST_PAGE_SIZE`] keys per request) at the revision of the first page,
//!   so 100,000 keys come back as one consistent snapshot without a huge gRPC message.
//! - Every request has a deadline ([`ETCD_REQUEST_TIMEOUT`]); connecting has a shorter one
//!   ([`ETCD_CONNECT_TIMEOUT`]) and fails with `Unavailable` naming the endpoints.
//! - Transactions above [`ETCD_DEFAULT_MAX_TXN_OPS`] operations are refused locally with
//!   `TxnTooLarge`, before etcd would refuse them.

mod convert;
mod runtime;
mod watch;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, KvClient, TlsOptions,
};

use crate::Datastore;
use crate::config::{DatastoreConfig, DatastoreKind};
use crate::error::{DatastoreError, Operation, Result};
use crate::types::{KeyValue, Revision, Snapshot, TxnOp, TxnOutcome, prefix_end, validate_txn};
use crate::watch::Watcher;
use convert::{kv_from_etcd, kv_into_record, map_error, outcome_from_etcd, txn_to_etcd};
use runtime::{RunError, RuntimeThread};

/// etcd's default `--max-txn-ops`: the most operations one txn may hold.
pub const ETCD_DEFAULT_MAX_TXN_OPS: usize = 128;
/// Deadline for connecting and for the first round trip.
pub const ETCD_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Deadline for each request.
pub const ETCD_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Keys per page of a list. Large pages matter: etcd 3.4 counts the whole remaining range
/// on every limited read, so a list costs O(keys x pages). 100,000 keys of 1 KiB list in
/// about 0.5 s with pages of 10,000 and 1.7 s with pages of 2,000 (docs/perf/datastore.md).
pub const ETCD_LIST_PAGE_SIZE: i64 = 10_000;
/// Largest gRPC response accepted: a guard, far above a page of Calico resources (a few KiB
/// each, so tens of MB per page).
const MAX_RESPONSE_BYTES: usize = 512 << 20;
/// How many times a paged list restarts when a compaction overtakes it.
const LIST_RESTARTS: usize = 3;

/// The etcd v3 datastore. Every method blocks the calling thread.
pub struct EtcdStore {
    client: Client,
    kv: KvClient,
    endpoints: String,
    max_txn_ops: usize,
    runtime: RuntimeThread,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

fn read_pem(variable: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DatastoreError::Config {
        variable,
        reason: format!("reading {}: {e}", path.display()),
    })
}

/// TLS settings for `https://` endpoints; `None` for plain `http://` ones.
fn tls_options(
    endpoints: &[String],
    ca_cert: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<TlsOptions>> {
    let https = endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    if https == 0 {
        if ca_cert.is_some() || cert.is_some() {
            return Err(DatastoreError::Config {
                variable: "ETCD_ENDPOINTS",
                reason: "TLS files are set but no endpoint is https://".into(),
            });
        }
        return Ok(None);
    }
    if https != endpoints.len() {
        return Err(DatastoreError::Config {
            variable: "ETCD_ENDPOINTS",
            reason: "mixes http:// and https:// endpoints".into(),
        });
    }
    // No system roots are compiled in: etcd clusters run their own CA, as Calico's do.
    let ca = ca_cert.ok_or(DatastoreError::Config {
        variable: "ETCD_CA_CERT_FILE",
        reason: "required for https:// endpoints (the CA that signed the etcd servers)".into(),
    })?;
    let mut tls =
        TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem("ETCD_CA_CERT_FILE", ca)?));
    if let (Some(cert), Some(key)) = (cert, key) {
        tls = tls.identity(Identity::from_pem(
            read_pem("ETCD_CERT_FILE", cert)?,
            read_pem("ETCD_KEY_FILE", key)?,
        ));
    }
    Ok(Some(tls))
}

impl EtcdStore {
    /// Connects to the endpoints of an [`DatastoreKind::EtcdV3`] configuration and checks
    /// that the cluster answers within [`ETCD_CONNECT_TIMEOUT`].
    pub fn connect(config: &DatastoreConfig) -> Result<Self> {
        let DatastoreKind::EtcdV3 {
            endpoints,
            ca_cert,
            cert,
            key,
        } = &config.kind
        else {
            return Err(DatastoreError::Config {
                variable: "DATASTORE_TYPE",
                reason: "EtcdStore::connect needs an etcdv3 configuration".into(),
            });
        };
        let joined = endpoints.join(",");
        let unavailable = |cause: String| DatastoreError::Unavailable {
            operation: Operation::Open,
            endpoint: joined.clone(),
            cause,
        };
        let mut options = ConnectOptions::new()
            .with_connect_timeout(ETCD_CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if let Some(tls) = tls_options(
            endpoints,
            ca_cert.as_deref(),
            cert.as_deref(),
            key.as_deref(),
        )? {
            options = options.with_tls(tls);
        }
        let runtime = RuntimeThread::start()
            .map_err(|e| unavailable(format!("starting the client runtime: {e}")))?;
        let eps = endpoints.clone();
        let connected = runtime.run(ETCD_CONNECT_TIMEOUT, async move {
            let mut client = Client::connect(eps, Some(options)).await?;
            // Connecting is lazy; a status call proves a member answers.
            client.status().await?;
            Ok::<_, etcd_client::Error>(client)
        });
        let client = match connected {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(map_error(Operation::Open, "", &joined, 0, e)),
            Err(RunError::TimedOut) => {
                return Err(unavailable(format!(
                    "no answer within {ETCD_CONNECT_TIMEOUT:?}"
                )));
            }
            Err(RunError::Stopped) => return Err(unavailable("client runtime stopped".into())),
        };
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(EtcdStore {
            client,
            kv,
            endpoints: joined,
            max_txn_ops: ETCD_DEFAULT_MAX_TXN_OPS,
            runtime,
        })
    }

    /// Sets the txn size limit to match a cluster started with a non-default
    /// `--max-txn-ops`.
    pub fn with_max_txn_ops(mut self, max_txn_ops: usize) -> Self {
        self.max_txn_ops = max_txn_ops.max(1);
        self
    }

    /// The endpoints, comma-separated.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// Runs one request on the runtime thread with [`ETCD_REQUEST_TIMEOUT`], mapping errors.
    fn call<T, F>(
        &self,
        operation: Operation,
        key: &str,
        requested: Revision,
        future: F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        match self.runtime.run(ETCD_REQUEST_TIMEOUT, future) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(map_error(operation, key, &self.endpoints, requested, e)),
            Err(RunError::TimedOut) => Err(DatastoreError::Unavailable {
                operation,
                endpoint: self.endpoints.clone(),
                cause: format!("no answer within {ETCD_REQUEST_TIMEOUT:?}"),
            }),
            Err(RunError::Stopped) => Err(DatastoreError::Unavailable {
                operation,
                endpoint: self.endpoints.clone(),
                cause: "client runtime stopped".into(),
            }),
        }
    }

    fn list_once(&self, prefix: &str) -> Result<Snapshot> {
        // etcd ranges: [start, end); an end of "\0" means "every key from start on".
        let start = if prefix.is_empty() {
            vec![0]
        } else {
            prefix.as_bytes().to_vec()
        };
        let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);
        let mut kvs = Vec::new();
        let mut revision: Revision = 0;
        let mut from = start;
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(ETCD_LIST_PAGE_SIZE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let mut kv = self.kv.clone();
            let page_from = from.clone();
            let mut response = self.call(Operation::List, prefix, revision, async move {
                kv.get(page_from, Some(options)).await
            })?;
            if revision == 0 {
                revision = response.header().map_or(0, |h| h.revision());
            }
            let more = response.more();
            for record in response.take_kvs() {
                kvs.push(kv_into_record(Operation::List, record)?);
            }
            match (more, kvs.last()) {
                (true, Some(last)) => {
                    from = last.key.as_bytes().to_vec();
                    from.push(0);
                }
                _ => return Ok(Snapshot { kvs, revision }),
            }
        }
    }
}

impl Datastore for EtcdStore {
    fn describe(&self) -> String {
        format!("etcdv3:{}", self.endpoints)
    }

    fn max_txn_ops(&self) -> Option<usize> {
        Some(self.max_txn_ops)
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut kv = self.kv.clone();
        let k = key.to_owned();
        let response = self.call(Operation::Get, key, 0, async move { kv.get(k, None).await })?;
        response
            .kvs()
            .first()
            .map(|r| kv_from_etcd(Operation::Get, r))
            .transpose()
    }

    fn list(&self, prefix: &str) -> Result<Snapshot> {
        let mut attempt = 0;
        loop {
            match self.list_once(prefix) {
                // A compaction overtook the paged read: start again at the new revision.
                Err(DatastoreError::Compacted { .. }) if attempt < LIST_RESTARTS => attempt += 1,
                other => return other,
            }
        }
    }

    fn txn(&self, ops: &[TxnOp]) -> Result<TxnOutcome> {
        validate_txn(ops, self.max_txn_ops())?;
        let txn = txn_to_etcd(ops);
        let mut kv = self.kv.clone();
        let key = ops.first().map_or("", TxnOp::key);
        let response = self.call(Operation::Txn, key, 0, async move { kv.txn(txn).await })?;
        outcome_from_etcd(ops, &response)
    }

    fn watch(&self, prefix: &str, from_revision: Revision) -> Result<Watcher> {
        watch::start(self, prefix, from_revision)
    }

    fn compact(&self, revision: Revision) -> Result<()> {
        let mut kv = self.kv.clone();
        self.call(Operation::Compact, "", revision, async move {
            kv.compact(revision, None).await
        })?;
        Ok(())
    }

    fn current_revision(&self) -> Result<Revision> {
        let mut kv = self.kv.clone();
        // A count-only read of one key: the cheapest request that returns a header.
        let response = self.call(Operation::Revision, "", 0, async move {
            kv.get(vec![0u8], Some(GetOptions::new().with_count_only()))
                .await
        })?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }
}
