//! Unit tests of the loader: the embedded object, and (as root) its maps' layouts.

use super::*;

#[test]
fn steering_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Steering>();
}

#[test]
fn embedded_object_is_a_bpf_elf() {
    assert_eq!(&OBJECT[..4], b"\x7fELF");
    assert_eq!(OBJECT[18], 247, "e_machine EM_BPF (247)");
}

/// Loading goes through the verifier; needs root (CAP_BPF).
#[test]
fn embedded_object_loads_and_its_maps_take_our_layouts() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: loading a BPF program needs root");
        return;
    }
    let s = Steering::load().expect("the embedded program must pass the verifier");
    assert!(s.program_id() > 0);
    assert_eq!(s.stats(), SteerStats::default(), "fresh counters are zero");
    // Every key and value size the Rust side writes must match the object's maps
    // (`Map::update` refuses a size mismatch).
    let owned = OwnedTraffic {
        v4_prefixes: vec![(std::net::Ipv4Addr::new(198, 19, 0, 0), 26)],
        v6_prefixes: vec![("2001:db8:1::".parse().expect("addr"), 112)],
        tunnel_sources: vec![std::net::Ipv4Addr::new(198, 18, 1, 12)],
        node_v4: Some(std::net::Ipv4Addr::new(198, 18, 1, 11)),
        node_v6: None,
        snat_ports: (61000, 65535),
    };
    s.set_owned(&owned)
        .expect("map sizes agree with the program's");
    s.set_owned(&OwnedTraffic::default())
        .expect("emptying the set");
    assert!(s.lock().owned.v4.is_empty() && s.lock().owned.tunnels.is_empty());
    s.ifaces
        .update(&7u32.to_ne_bytes(), &iface_value(64, SteerMode::All))
        .expect("ifaces layout");
    s.xsks
        .delete(&0u32.to_ne_bytes())
        .expect("xsks key layout (missing entry is fine)");
    let mut state = s.lock();
    assert!(matches!(
        attached(&mut state, 7, 0),
        Err(XskError::NotAttached { if_index: 7 })
    ));
    assert!(matches!(
        attached(&mut state, 7, QUEUES_PER_INTERFACE),
        Err(XskError::Config { field: "queue", .. })
    ));
    drop(state);
    s.detach(7)
        .expect("detaching an interface never attached is a no-op");
}
