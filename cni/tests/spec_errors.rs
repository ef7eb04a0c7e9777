//! The CNI protocol without a network: VERSION, and bad input answered with the spec's error
//! JSON on stdout, a non-zero exit, and nothing created.

mod common;

use common::{TestStore, ipam_conf, run_plugin, stdout_json, tortie_conf};
use tortie_ipam::Ipam;

const TORTIE: &str = env!("CARGO_BIN_EXE_tortie");
const TORTIE_IPAM: &str = env!("CARGO_BIN_EXE_tortie-ipam");

#[test]
fn version_lists_supported_versions() {
    for binary in [TORTIE, TORTIE_IPAM] {
        let out = run_plugin(
            binary,
            &[("CNI_COMMAND", "VERSION")],
            r#"{"cniVersion":"0.4.0"}"#,
            None,
        );
        assert!(out.status.success());
        let json = stdout_json(&out);
        assert_eq!(json["cniVersion"], "0.4.0");
        let versions: Vec<&str> = json["supportedVersions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(versions, ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
    }
}

#[test]
fn malformed_stdin_is_error_6() {
    let out = run_plugin(
        TORTIE,
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/proc/self/ns/net"),
            ("CNI_IFNAME", "eth0"),
        ],
        "{this is not json",
        None,
    );
    assert!(!out.status.success());
    let json = stdout_json(&out);
    assert_eq!(json["code"], 6);
    assert!(json["msg"].as_str().unwrap().contains("not JSON"));
}

#[test]
fn unknown_cni_version_is_error_1() {
    let store = TestStore::new();
    let conf = tortie_conf(&store, "9.0.0", "node-a", "");
    let out = run_plugin(
        TORTIE,
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/proc/self/ns/net"),
            ("CNI_IFNAME", "eth0"),
        ],
        &conf,
        None,
    );
    assert!(!out.status.success());
    let json = stdout_json(&out);
    assert_eq!(json["code"], 1);
    assert!(json["details"].as_str().unwrap().contains("1.1.0"));
}

#[test]
fn missing_variables_are_error_4_naming_them() {
    let store = TestStore::new();
    let conf = tortie_conf(&store, "1.0.0", "node-a", "");
    let out = run_plugin(
        TORTIE,
        &[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")],
        &conf,
        None,
    );
    assert!(!out.status.success());
    let json = stdout_json(&out);
    assert_eq!(json["code"], 4);
    let msg = json["msg"].as_str().unwrap();
    assert!(
        msg.contains("CNI_CONTAINERID") && msg.contains("CNI_NETNS"),
        "{msg}"
    );
    assert_eq!(json["cniVersion"], "1.0.0");
}

#[test]
fn exhausted_pool_leaves_nothing_behind() {
    let store = TestStore::new();
    store.add_pool("tiny", "198.18.40.0/31", 31);
    let env = |id: &'static str| {
        vec![
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", id),
            ("CNI_NETNS", "/nonexistent"),
            ("CNI_IFNAME", "eth0"),
        ]
    };
    let conf = ipam_conf(&store, "node-a");
    assert!(
        run_plugin(TORTIE_IPAM, &env("c1"), &conf, None)
            .status
            .success()
    );
    assert!(
        run_plugin(TORTIE_IPAM, &env("c2"), &conf, None)
            .status
            .success()
    );
    let out = run_plugin(TORTIE_IPAM, &env("c3"), &conf, None);
    assert!(!out.status.success());
    let json = stdout_json(&out);
    assert_eq!(json["code"], 101, "{json}");
    assert!(
        json["details"]
            .as_str()
            .unwrap()
            .contains("no free IPv4 address"),
        "{json}"
    );
    let ds = store.open();
    let report = Ipam::new(&ds).check(None).unwrap();
    assert_eq!(report.allocations, 2, "{report}");
    assert!(report.is_clean(), "{report}");
}

#[test]
fn requested_address_outside_pools_or_in_use_is_refused() {
    let store = TestStore::new();
    store.add_pool("p", "198.18.41.0/24", 26);
    let conf = ipam_conf(&store, "node-a");
    let env = |id: &'static str, args: &'static str| {
        vec![
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", id),
            ("CNI_NETNS", "/nonexistent"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", args),
        ]
    };
    let out = run_plugin(
        TORTIE_IPAM,
        &env("c1", "IgnoreUnknown=1;IP=198.18.41.7"),
        &conf,
        None,
    );
    assert!(
        out.status.success(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stdout_json(&out)["ips"][0]["address"], "198.18.41.7/32");
    let out = run_plugin(TORTIE_IPAM, &env("c2", "IP=198.18.41.7"), &conf, None);
    assert!(!out.status.success());
    assert!(
        stdout_json(&out)["details"]
            .as_str()
            .unwrap()
            .contains("already in use")
    );
    let out = run_plugin(TORTIE_IPAM, &env("c3", "IP=198.19.0.1"), &conf, None);
    assert!(!out.status.success());
    assert!(
        stdout_json(&out)["details"]
            .as_str()
            .unwrap()
            .contains("not in any enabled IP pool")
    );
    let ds = store.open();
    assert_eq!(Ipam::new(&ds).check(None).unwrap().allocations, 1);
}

#[test]
fn ipam_plugin_add_check_del_and_versions() {
    let store = TestStore::new();
    store.add_pool("p", "198.18.42.0/24", 26);
    let conf = ipam_conf(&store, "node-a");
    let env = |cmd: &'static str| {
        vec![
            ("CNI_COMMAND", cmd),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/nonexistent"),
            ("CNI_IFNAME", "eth0"),
        ]
    };
    let out = run_plugin(TORTIE_IPAM, &env("ADD"), &conf, None);
    assert!(out.status.success());
    let result = stdout_json(&out);
    assert!(
        result.get("interfaces").is_none(),
        "an IPAM result has no interfaces"
    );
    let address = result["ips"][0]["address"].as_str().unwrap().to_string();
    // A retried ADD returns the same address instead of allocating another.
    let again = stdout_json(&run_plugin(TORTIE_IPAM, &env("ADD"), &conf, None));
    assert_eq!(again["ips"][0]["address"], address.as_str());

    let mut with_prev: serde_json::Value = serde_json::from_str(&conf).unwrap();
    with_prev["prevResult"] = result.clone();
    let with_prev = with_prev.to_string();
    assert!(
        run_plugin(TORTIE_IPAM, &env("CHECK"), &with_prev, None)
            .status
            .success()
    );
    assert!(
        run_plugin(TORTIE_IPAM, &env("DEL"), &conf, None)
            .status
            .success()
    );
    assert!(
        run_plugin(TORTIE_IPAM, &env("DEL"), &conf, None)
            .status
            .success(),
        "DEL is idempotent"
    );
    let out = run_plugin(TORTIE_IPAM, &env("CHECK"), &with_prev, None);
    assert!(!out.status.success(), "CHECK after DEL fails");

    // A 0.3.1 caller gets IPs with the version field.
    let old = conf.replace("\"1.0.0\"", "\"0.3.1\"");
    let out = stdout_json(&run_plugin(TORTIE_IPAM, &env("ADD"), &old, None));
    assert_eq!(out["cniVersion"], "0.3.1");
    assert_eq!(out["ips"][0]["version"], "4");
}

#[test]
fn status_reports_pool_health() {
    let store = TestStore::new();
    let conf = ipam_conf(&store, "node-a").replace("\"1.0.0\"", "\"1.1.0\"");
    let out = run_plugin(TORTIE_IPAM, &[("CNI_COMMAND", "STATUS")], &conf, None);
    assert!(!out.status.success());
    assert_eq!(stdout_json(&out)["code"], 50);
    store.add_pool("p", "198.18.43.0/24", 26);
    let out = run_plugin(TORTIE_IPAM, &[("CNI_COMMAND", "STATUS")], &conf, None);
    assert!(
        out.status.success(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}
