//! Version negotiation: the versions this plugin speaks and how results change between them.

use serde::Deserialize;

use super::error::{CniError, Code};

/// Every version the plugins accept and can answer in.
pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Checks that `version` is supported (error code 1 otherwise).
pub fn check(version: &str) -> Result<(), CniError> {
    if SUPPORTED.contains(&version) {
        Ok(())
    } else {
        Err(CniError::new(
            Code::IncompatibleVersion,
            format!("unsupported cniVersion {version:?}"),
            format!("supported: {}", SUPPORTED.join(", ")),
        ))
    }
}

/// Whether results in this version carry the pre-1.0 `version` field on each IP.
pub fn ips_carry_version(version: &str) -> bool {
    version.starts_with("0.")
}

/// Whether the version has CHECK (0.4.0 and later).
pub fn has_check(version: &str) -> bool {
    version != "0.3.0" && version != "0.3.1"
}

/// Whether the version has STATUS and GC (1.1.0).
pub fn has_status_and_gc(version: &str) -> bool {
    version == "1.1.0"
}

#[derive(Deserialize)]
struct VersionOnly {
    #[serde(rename = "cniVersion", default)]
    cni_version: Option<String>,
}

/// The `cniVersion` of a stdin document, if it has one (read leniently, for error objects).
pub fn sniff(stdin: &[u8]) -> Option<String> {
    serde_json::from_slice::<VersionOnly>(stdin)
        .ok()?
        .cni_version
}

/// The VERSION command's answer.
pub fn version_answer(requested: &str) -> String {
    serde_json::json!({"cniVersion": requested, "supportedVersions": SUPPORTED}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_versions() {
        assert!(check("1.1.0").is_ok());
        assert!(check("0.3.1").is_ok());
        let err = check("2.0.0").unwrap_err();
        assert_eq!(err.code, Code::IncompatibleVersion);
        assert!(ips_carry_version("0.4.0") && !ips_carry_version("1.0.0"));
        assert!(!has_check("0.3.1") && has_check("0.4.0"));
        assert_eq!(
            sniff(br#"{"cniVersion":"0.4.0","x":1}"#).as_deref(),
            Some("0.4.0")
        );
        assert_eq!(sniff(b"not json"), None);
    }
}
