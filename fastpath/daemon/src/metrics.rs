//! The `/metrics` collector: reads worker counters and the config thread's view on each
//! scrape (nothing is registered per interface or rule ahead of time, since both come and
//! go with generations).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::stats::KERNEL_COUNTERS;
use crate::view::Shared;

/// Scrape-time collector over [`Shared`].
#[derive(Debug)]
pub struct FastpathCollector {
    shared: Arc<Shared>,
}

/// A registry holding the fastpath's collector.
pub fn registry(shared: Arc<Shared>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(FastpathCollector { shared }));
    r
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, String)>, u64)],
) -> Result<(), std::fmt::Error> {
    let proto = ConstCounter::new(0u64);
    let mut m = enc.encode_descriptor(name, help, None, proto.metric_type())?;
    for (labels, v) in rows {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter1(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for FastpathCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let view = self.shared.view();
        let snaps: Vec<_> = self.shared.workers.iter().map(|w| w.snapshot()).collect();
        let names: std::collections::BTreeMap<u32, &str> = view
            .interfaces
            .iter()
            .map(|i| (i.if_index, i.name.as_str()))
            .collect();
        let mut rx_p = Vec::new();
        let mut rx_b = Vec::new();
        let mut tx_p = Vec::new();
        let mut tx_b = Vec::new();
        let mut drops = Vec::new();
        let mut sock = Vec::new();
        let mut passes = Vec::new();
        let mut free = Vec::new();
        let mut busy = Vec::new();
        let mut rule_hits: std::collections::BTreeMap<u32, u64> = Default::default();
        for s in &snaps {
            let w = s.id.to_string();
            for p in &s.ports {
                let ifname = names
                    .get(&p.if_index)
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| p.if_index.to_string());
                let l = vec![("worker", w.clone()), ("interface", ifname)];
                rx_p.push((l.clone(), p.rx_packets));
                rx_b.push((l.clone(), p.rx_bytes));
                tx_p.push((l.clone(), p.tx_packets));
                for (kind, v) in KERNEL_COUNTERS.iter().zip(p.kernel) {
                    let mut l = l.clone();
                    l.push(("kind", kind.to_string()));
                    sock.push((l, v));
                }
                tx_b.push((l, p.tx_bytes));
            }
            for (reason, n) in &s.drops {
                drops.push((
                    vec![("worker", w.clone()), ("reason", reason.to_string())],
                    *n,
                ));
            }
            passes.push((vec![("worker", w.clone())], s.passes));
            free.push((w.clone(), s.free_frames));
            busy.push((vec![("worker", w.clone())], s.busy_ns / 1_000_000));
            if s.rule_generation == view.generation {
                for (slot, hits) in s.rule_hits.iter().enumerate() {
                    if let Some(Some(rule)) = view.rule_ids.get(slot) {
                        *rule_hits.entry(*rule).or_default() += hits;
                    }
                }
            }
        }
        let rules: Vec<_> = rule_hits
            .into_iter()
            .map(|(r, n)| (vec![("rule_id", r.to_string())], n))
            .collect();
        counter(
            &mut enc,
            "tortie_fastpath_rx_packets",
            "Frames received per worker and interface.",
            &rx_p,
        )?;
        counter(
            &mut enc,
            "tortie_fastpath_rx_bytes",
            "Bytes received per worker and interface.",
            &rx_b,
        )?;
        counter(
            &mut enc,
            "tortie_fastpath_tx_packets",
            "Frames queued for transmission per worker and interface.",
            &tx_p,
        )?;
        counter(
            &mut enc,
            "tortie_fastpath_tx_bytes",
            "Bytes queued for transmission per worker and interface.",
            &tx_b,
        )?;
        counter(
            &mut enc,
            "tortie_fastpath_drops",
            "Frames dropped per worker and reason.",
            &drops,
        )?;
        counter(
            &mut enc,
            "tortie_fastpath_socket_drops",
            "The kernel's AF_XDP socket counters (XDP_STATISTICS), read once a second.",
            &sock,
        )?;
        let steer: Vec<_> = view
            .steer
            .iter()
            .flat_map(|s| {
                ["redirected", "passed", "redirect_failed"]
                    .into_iter()
                    .zip(*s)
                    .map(|(k, v)| (vec![("result", k.to_string())], v))
            })
            .collect();
        counter(
            &mut enc,
            "tortie_fastpath_steer_frames",
            "Frames the XDP steering program redirected to the sockets, passed to the kernel, or could not redirect (no socket for the queue).",
            &steer,
        )?;
        counter(
            &mut enc,
            "tortie_fastpath_rule_hits",
            "Policy rule hits in the generation in force (restart with each generation).",
            &rules,
        )?;
        counter(
            &mut enc,
            "tortie_fastpath_worker_busy_milliseconds",
            "Time workers spent in loop passes that moved frames (idle polling excluded).",
            &busy,
        )?;
        counter(
            &mut enc,
            "tortie_fastpath_worker_passes",
            "Worker loop passes.",
            &passes,
        )?;
        counter1(
            &mut enc,
            "tortie_fastpath_ring_received_messages",
            "Ring messages received.",
            view.ring.received_messages,
        )?;
        counter1(
            &mut enc,
            "tortie_fastpath_ring_corrupt_records",
            "Corrupt ring records (resynchronised).",
            view.ring.corrupt_records,
        )?;
        counter1(
            &mut enc,
            "tortie_fastpath_ring_skipped_records",
            "Ring deltas skipped while awaiting a snapshot.",
            view.ring.skipped_records,
        )?;
        counter1(
            &mut enc,
            "tortie_fastpath_ring_decode_errors",
            "Ring messages whose table payload did not decode.",
            view.decode_errors,
        )?;
        counter1(
            &mut enc,
            "tortie_fastpath_skipped_deltas",
            "Deltas whose base generation was not in force.",
            view.skipped_deltas,
        )?;
        counter1(
            &mut enc,
            "tortie_fastpath_compile_errors",
            "Table sets that did not compile.",
            view.compile_errors,
        )?;
        gauge(
            &mut enc,
            "tortie_fastpath_generation",
            "Table generation in force.",
            view.generation as f64,
        )?;
        let age = view
            .applied_at
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(-1.0);
        gauge(
            &mut enc,
            "tortie_fastpath_generation_age_seconds",
            "Seconds since the generation in force was applied (-1: none yet).",
            age,
        )?;
        gauge(
            &mut enc,
            "tortie_fastpath_ready",
            "1 when ready.",
            if view.ready { 1.0 } else { 0.0 },
        )?;
        {
            let g = ConstGauge::new(0i64);
            let mut m = enc.encode_descriptor(
                "tortie_fastpath_free_frames",
                "UMEM frames free in each worker's pool (frames posted to a closed socket are not recovered).",
                None,
                g.metric_type(),
            )?;
            for (w, n) in &free {
                ConstGauge::new(*n as i64).encode(m.encode_family(&[("worker", w.as_str())])?)?;
            }
        }
        gauge(
            &mut enc,
            "tortie_fastpath_interfaces",
            "Interfaces served.",
            view.interfaces.len() as f64,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{LocalPort, WorkerStats};
    use crate::view::{IfaceView, View};
    use std::sync::Mutex;
    use tortie_pipeline::{Counters, DropReason};

    #[test]
    fn scrape_names_workers_interfaces_reasons_and_ring() {
        let w = Arc::new(WorkerStats::new(0, 1));
        let mut base = [0u64; DropReason::COUNT];
        base[DropReason::Spoofed.index()] = 3;
        let port = LocalPort {
            if_index: 5,
            rx_packets: 9,
            rx_bytes: 900,
            tx_packets: 8,
            tx_bytes: 800,
            kernel: [0, 6, 0, 0, 0],
        };
        w.publish(&[port], &Counters::default(), &base, &[0, 0, 0], 4, 1);
        let shared = Arc::new(Shared {
            workers: vec![w],
            view: Mutex::new(View {
                generation: 4,
                steer: Some([10, 20, 0]),
                interfaces: vec![IfaceView {
                    name: "cali1".into(),
                    if_index: 5,
                    role: "workload",
                    bind_mode: None,
                    queues: 1,
                    error: None,
                }],
                ..View::default()
            }),
            pid: 1,
            started_unix: 0,
            mode: "adaptive",
        });
        let reg = registry(shared);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(
            out.contains(r#"tortie_fastpath_rx_packets_total{worker="0",interface="cali1"} 9"#),
            "{out}"
        );
        assert!(
            out.contains(r#"tortie_fastpath_drops_total{worker="0",reason="spoofed-source"} 3"#),
            "{out}"
        );
        assert!(out.contains("tortie_fastpath_generation 4"), "{out}");
        assert!(
            out.contains(r#"tortie_fastpath_steer_frames_total{result="passed"} 20"#),
            "{out}"
        );
        assert!(
            out.contains(r#"tortie_fastpath_socket_drops_total{worker="0",interface="cali1",kind="rx_ring_full"} 6"#),
            "{out}"
        );
        assert!(
            out.contains("tortie_fastpath_ring_corrupt_records_total 0"),
            "{out}"
        );
    }
}
