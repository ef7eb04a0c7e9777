//! Any bytes as the `CNI_*` environment a runtime hands the plugins: NUL-separated values for
//! `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS` and `CNI_PATH` (a
//! missing value is an unset variable). The environment parses or is a CNI error object that
//! is valid JSON; a parsed one yields the IPAM handle, the WorkloadEndpoint name and the
//! host-side interface name without a panic. The real driver runs whenever it cannot reach
//! the datastore or the kernel: on VERSION, and when the environment is rejected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tortie_cni::config::NetConf;
use tortie_cni::endpoint::{endpoint_name, host_interface_name};
use tortie_cni::ipam_ops::Owner;
use tortie_cni::run::{Plugin, run};
use tortie_cni::spec::{CniEnv, Command};

const NAMES: [&str; 6] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

const STDIN: &[u8] =
    br#"{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"tortie","nodename":"node-a"}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let values: Vec<&str> = text.split('\0').collect();
    let get = |name: &str| {
        let i = NAMES.iter().position(|n| *n == name)?;
        values.get(i).map(|v| v.to_string())
    };
    match CniEnv::parse(get) {
        Err(err) => {
            let json: serde_json::Value =
                serde_json::from_str(&err.to_json("1.1.0")).expect("error object is JSON");
            assert_eq!(json["code"], err.code as u32);
            let out = run(Plugin::Main, get, STDIN);
            assert_eq!(out.code, 1);
            let json: serde_json::Value =
                serde_json::from_str(&out.stdout).expect("driver error is JSON");
            assert_eq!(json["code"], err.code as u32);
        }
        Ok(env) => {
            let conf = NetConf::parse(STDIN).expect("fixed configuration parses");
            let owner = Owner::new(&conf, &env);
            let _ = owner.handle();
            let _ = endpoint_name(&owner);
            let host = host_interface_name(&owner);
            assert!(host.len() == 14 && host.starts_with("tor"), "{host}");
            if env.command == Command::Version {
                let out = run(Plugin::Ipam, get, STDIN);
                assert_eq!(out.code, 0, "{}", out.stdout);
            }
        }
    }
});
