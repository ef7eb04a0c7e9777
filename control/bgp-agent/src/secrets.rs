//! BGP passwords: where `secretKeyRef`s are looked up.
//!
//! Calico reads `BGPPeer.spec.password.secretKeyRef` and `BGPConfiguration.spec.nodeMeshPassword`
//! from Kubernetes secrets in calico-node's namespace. Tortie has no Kubernetes client, so the
//! caller supplies a [`SecretSource`]: [`SecretDir`] reads `<dir>/<secret name>/<key>` files
//! (the layout of a Kubernetes secret mounted as a volume, one folder per secret), and a
//! `BTreeMap<(name, key), value>` serves tests and in-memory stores.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Looks up one key of one secret.
pub trait SecretSource: Send + Sync {
    /// The value of `key` in the secret `name`, if it exists.
    fn get(&self, name: &str, key: &str) -> Option<String>;
}

/// No secrets: every password reference is reported missing (sessions run without TCP-MD5).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn get(&self, _name: &str, _key: &str) -> Option<String> {
        None
    }
}

/// Secrets as files: `<root>/<name>/<key>`, one trailing newline stripped.
#[derive(Debug, Clone)]
pub struct SecretDir {
    root: PathBuf,
}

impl SecretDir {
    /// Secrets under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SecretDir { root: root.into() }
    }
}

impl SecretSource for SecretDir {
    fn get(&self, name: &str, key: &str) -> Option<String> {
        // Names come from resources: never let them leave the directory.
        let safe =
            |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']);
        if !safe(name) || !safe(key) {
            return None;
        }
        let text = std::fs::read_to_string(self.root.join(name).join(key)).ok()?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        Some(text.strip_suffix('\r').unwrap_or(text).to_string())
    }
}

impl SecretSource for BTreeMap<(String, String), String> {
    fn get(&self, name: &str, key: &str) -> Option<String> {
        self.get(&(name.to_string(), key.to_string())).cloned()
    }
}

/// Resolves a password reference to a TCP-MD5 key, or says why not (a warning).
pub(crate) fn resolve(
    secrets: &dyn SecretSource,
    password: &tortie_model::types::BgpPassword,
    what: &str,
) -> Result<Option<String>, String> {
    let Some(r) = &password.secret_key_ref else {
        return Ok(None);
    };
    match secrets.get(&r.name, &r.key) {
        Some(v) if (1..=80).contains(&v.len()) => Ok(Some(v)),
        Some(_) => Err(format!(
            "{what}: secret {:?} key {:?} must be 1..=80 bytes (TCP-MD5); the session runs without a password",
            r.name, r.key
        )),
        None => Err(format!(
            "{what}: secret {:?} key {:?} not found; the session runs without a password",
            r.name, r.key
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_dir_reads_files_and_refuses_escapes() {
        let dir = std::env::temp_dir().join(format!("tortie-bgp-secrets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bgp")).unwrap();
        std::fs::write(dir.join("bgp").join("tor"), "s3cret\n").unwrap();
        std::fs::write(dir.join("top"), "x").unwrap();
        let s = SecretDir::new(&dir);
        assert_eq!(s.get("bgp", "tor"), Some("s3cret".to_string()));
        assert_eq!(s.get("bgp", "missing"), None);
        assert_eq!(s.get("..", "top"), None);
        assert_eq!(s.get("bgp/../", "top"), None);
        assert_eq!(s.get("", "top"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
