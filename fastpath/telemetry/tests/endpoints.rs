//! The endpoints over real loopback TCP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tortie_telemetry::{Health, serve};

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

#[test]
fn metrics_readiness_liveness_and_status_are_served() {
    let mut registry = Registry::default();
    let packets = Counter::<u64>::default();
    registry.register("rx_packets", "Frames received", packets.clone());
    packets.inc_by(41);
    packets.inc();
    let health = Health::new();
    let beat = health.liveness("worker-0", Duration::from_millis(100));
    let status: tortie_telemetry::StatusFn = Arc::new(|| "{\"generation\":7}".to_string());
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(registry),
        health.clone(),
        Some(status),
    )
    .unwrap();
    let addr = server.local_addr();

    let (code, body) = get(addr, "/metrics");
    assert_eq!(code, 200);
    assert!(body.contains("rx_packets_total 42"), "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

    assert_eq!(get(addr, "/readyz"), (503, "not ready: starting\n".into()));
    health.set_ready(true, "snapshot applied");
    assert_eq!(
        get(addr, "/readyz"),
        (200, "ready: snapshot applied\n".into())
    );

    beat.beat();
    assert_eq!(get(addr, "/livez").0, 200);
    std::thread::sleep(Duration::from_millis(200));
    let (code, body) = get(addr, "/livez");
    assert_eq!(code, 503);
    assert!(body.contains("worker-0"), "{body}");

    assert_eq!(get(addr, "/status"), (200, "{\"generation\":7}".into()));
    assert_eq!(get(addr, "/nope").0, 404);
    drop(server);
    assert!(
        TcpStream::connect(addr).is_err(),
        "server still listening after drop"
    );
}

#[test]
fn a_busy_address_is_waited_for_then_refused() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(holder);
    });
    let server = serve(addr, Arc::new(Registry::default()), Health::new(), None)
        .expect("bound once the previous holder let go");
    release.join().unwrap();
    assert_eq!(get(server.local_addr(), "/livez").0, 200);
    let err = serve(addr, Arc::new(Registry::default()), Health::new(), None).unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
