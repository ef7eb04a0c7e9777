//! Any bytes as the network configuration on stdin, read the way `tortie` and `tortie-ipam`
//! read it on ADD, DEL, CHECK, STATUS and GC: a configuration that parses has a supported
//! `cniVersion` and an MTU in range, and everything derived from it (labels, requested
//! addresses, datastore settings, the readiness timeout, the owner's handle and interface names, the `prevResult`
//! rewritten for every version) is computed without a panic; one that does not parse is a CNI
//! error object that is valid JSON with its code. The VERSION command, the one command that
//! touches nothing outside the process, runs through the real driver.
//!
//! ADD, DEL and CHECK beyond the parse need a datastore and network namespaces, so the
//! IPAM and netlink halves are not reached here (the crate's integration tests cover them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tortie_cni::config::NetConf;
use tortie_cni::endpoint::{endpoint_name, host_interface_name};
use tortie_cni::ipam_ops::Owner;
use tortie_cni::run::{Plugin, run};
use tortie_cni::spec::{CniEnv, CniResult, version};

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

const ADD_ENV: &[(&str, &str)] = &[
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "c0ffee"),
    ("CNI_NETNS", "/run/netns/fuzz"),
    ("CNI_IFNAME", "eth0"),
    (
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns-a;K8S_POD_NAME=web-1",
    ),
];
const VERSION_ENV: &[(&str, &str)] = &[("CNI_COMMAND", "VERSION")];

fuzz_target!(|data: &[u8]| {
    let sniffed = version::sniff(data);
    match NetConf::parse(data) {
        Err(err) => {
            assert!(!err.msg.is_empty());
            let text = err.to_json(sniffed.as_deref().unwrap_or("1.1.0"));
            let json: serde_json::Value =
                serde_json::from_str(&text).expect("error object is JSON");
            assert_eq!(json["code"], err.code as u32);
        }
        Ok(conf) => {
            assert!(version::SUPPORTED.contains(&conf.cni_version.as_str()));
            assert!((68..=65535).contains(&conf.mtu()));
            let _ = conf.endpoint_ready_timeout();
            let _ = (conf.ipam.wants_v4(), conf.ipam.wants_v6());
            let _ = conf.labels();
            let _ = conf.requested_ips();
            let _ = conf.datastore_config();
            if let Some(prev) = &conf.prev_result {
                for v in version::SUPPORTED {
                    let rewritten = prev.clone().for_version(v);
                    let back: CniResult = serde_json::from_str(&rewritten.to_json())
                        .expect("a rewritten prevResult reads back");
                    assert_eq!(back, rewritten);
                }
            }
            let env = CniEnv::parse(env_of(ADD_ENV)).expect("fixed environment parses");
            let owner = Owner::new(&conf, &env);
            assert!(owner.handle().starts_with(&owner.network));
            let host = host_interface_name(&owner);
            assert!(host.len() == 14 && host.starts_with("tor"), "{host}");
            let _ = endpoint_name(&owner);
        }
    }
    for which in [Plugin::Main, Plugin::Ipam] {
        let out = run(which, env_of(VERSION_ENV), data);
        assert_eq!(out.code, 0);
        let json: serde_json::Value =
            serde_json::from_str(&out.stdout).expect("VERSION answer is JSON");
        assert!(json["supportedVersions"].is_array());
    }
});
