//! The CNI error object. Errors go to stdout as JSON (libcni parses stdout), with a non-zero exit.
//!
//! CNI spec 1.1.0, "Error": `{"cniVersion", "code", "msg", "details"}`; codes 1-99 are the
//! spec's, 100 and up are the plugin's own.

use serde::Serialize;

/// Well-known error codes (CNI spec, "Well-known Error Codes"), plus Tortie's own from 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 1: incompatible CNI version.
    IncompatibleVersion = 1,
    /// 2: unsupported field in the network configuration.
    UnsupportedField = 2,
    /// 3: container unknown or does not exist.
    UnknownContainer = 3,
    /// 4: invalid necessary environment variables.
    InvalidEnvironment = 4,
    /// 5: I/O failure.
    IoFailure = 5,
    /// 6: failed to decode content.
    DecodingFailure = 6,
    /// 7: invalid network config.
    InvalidNetworkConfig = 7,
    /// 11: try again later.
    TryAgainLater = 11,
    /// 50: the plugin is not available (STATUS).
    NotAvailable = 50,
    /// 100: the datastore failed.
    Datastore = 100,
    /// 101: no address could be allocated (pool exhausted, address in use, not in a pool).
    Ipam = 101,
    /// 102: creating or checking the interface failed.
    Interface = 102,
    /// 103: CHECK found a difference.
    CheckFailed = 103,
    /// 104: the dataplane did not report the endpoint programmed in time.
    NotProgrammed = 104,
}

/// A CNI error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    /// The code.
    pub code: Code,
    /// A short message.
    pub msg: String,
    /// Longer details (the cause).
    pub details: String,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    code: u32,
    msg: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    details: &'a str,
}

impl CniError {
    /// An error with a code, message and details.
    pub fn new(code: Code, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// The JSON object written to stdout.
    pub fn to_json(&self, cni_version: &str) -> String {
        let wire = Wire {
            cni_version,
            code: self.code as u32,
            msg: &self.msg,
            details: &self.details,
        };
        serde_json::to_string(&wire)
            .unwrap_or_else(|_| format!("{{\"code\":{}}}", self.code as u32))
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code as u32)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let err = CniError::new(Code::InvalidEnvironment, "missing CNI_NETNS", "");
        let json: serde_json::Value = serde_json::from_str(&err.to_json("1.0.0")).unwrap();
        assert_eq!(json["code"], 4);
        assert_eq!(json["cniVersion"], "1.0.0");
        assert_eq!(json["msg"], "missing CNI_NETNS");
        assert!(json.get("details").is_none());
    }
}
