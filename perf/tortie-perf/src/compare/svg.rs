//! Plots written directly as SVG text: a bar chart of median throughput per scenario (with
//! min–max whiskers), a line chart of throughput against rule count (logarithmic axis), one
//! line per system, and the one-way latency CDF per scenario (logarithmic time axis). No
//! plotting library: a few rectangles, lines and labels.

use std::fmt::Write as _;

use super::stats::Summary;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 90.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// Escape text for an SVG text node or attribute.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" axis maximum at or above `v` (1, 2 or 5 times a power of ten).
pub fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&c| c >= v * 0.999_999)
        .unwrap_or(10.0 * p)
}

fn header(out: &mut String, title: &str, y_max: f64, y_label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
        W / 2.0,
        esc(title)
    );
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let y = TOP + plot_h * (1.0 - f64::from(i) / 5.0);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            trim(v)
        );
    }
    let _ = writeln!(
        out,
        r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        esc(y_label)
    );
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn label(s: &Summary) -> String {
    if s.rules > 0 {
        format!("{}@{}", s.system, s.rules)
    } else {
        s.system.to_string()
    }
}

/// Bars of median Mpps per scenario, whiskers from the slowest to the fastest trial.
pub fn bar_chart(title: &str, runs: &[Summary]) -> String {
    let y_max = nice_max(
        runs.iter()
            .map(|r| r.mpps_max.max(r.mpps))
            .fold(0.0, f64::max),
    );
    let mut out = String::new();
    header(&mut out, title, y_max, "forwarded Mpps (median, min–max)");
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / runs.len().max(1) as f64;
    let y = |v: f64| TOP + plot_h * (1.0 - (v / y_max).clamp(0.0, 1.0));
    for (i, r) in runs.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let w = slot * 0.7;
        let c = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{c}"><title>{}: {:.4} Mpps</title></rect>"#,
            y(r.mpps),
            (TOP + plot_h - y(r.mpps)).max(0.0),
            esc(&label(r)),
            r.mpps
        );
        let cx = x + w / 2.0;
        let _ = writeln!(
            out,
            r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="black"/>"#,
            y(r.mpps_min),
            y(r.mpps_max)
        );
        let _ = writeln!(
            out,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            y(r.mpps_max) - 4.0,
            trim(r.mpps)
        );
        let _ = writeln!(
            out,
            r#"<text transform="translate({cx:.1},{:.1}) rotate(-30)" text-anchor="end" font-size="11">{}</text>"#,
            TOP + plot_h + 14.0,
            esc(&label(r))
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Median Mpps against rule count (log scale), one line per system with more than one count.
pub fn rules_chart(title: &str, runs: &[Summary]) -> String {
    let mut systems: Vec<&str> = Vec::new();
    for r in runs.iter().filter(|r| r.rules > 0) {
        if !systems.contains(&r.system) {
            systems.push(r.system);
        }
    }
    let points: Vec<(&str, Vec<(usize, f64)>)> = systems
        .iter()
        .map(|s| {
            let mut p: Vec<(usize, f64)> = runs
                .iter()
                .filter(|r| r.system == *s && r.rules > 0)
                .map(|r| (r.rules, r.mpps))
                .collect();
            p.sort_by_key(|x| x.0);
            (*s, p)
        })
        .filter(|(_, p)| p.len() > 1)
        .collect();
    let y_max = nice_max(
        points
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.1))
            .fold(0.0, f64::max),
    );
    let (lo, hi) = points
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold((usize::MAX, 0), |(a, b), r| (a.min(r), b.max(r)));
    let (lx0, lx1) = if lo < hi {
        ((lo as f64).log10().floor(), (hi as f64).log10().ceil())
    } else {
        (0.0, 1.0)
    };
    let mut out = String::new();
    header(&mut out, title, y_max, "forwarded Mpps (median)");
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |r: usize| {
        LEFT + plot_w * (((r as f64).log10() - lx0) / (lx1 - lx0).max(1e-9)).clamp(0.0, 1.0)
    };
    let y = |v: f64| TOP + plot_h * (1.0 - (v / y_max).clamp(0.0, 1.0));
    let mut decade = lx0;
    while decade <= lx1 {
        let px = x(10f64.powf(decade).round() as usize);
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h + 16.0,
            10f64.powf(decade).round()
        );
        decade += 1.0;
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">rules (log scale)</text>"#,
        LEFT + plot_w / 2.0,
        TOP + plot_h + 36.0
    );
    if points.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no system was measured at two or more rule counts</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    for (i, (system, p)) in points.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = p
            .iter()
            .map(|&(r, v)| format!("{:.1},{:.1}", x(r), y(v)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for &(r, v) in p {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{c}"><title>{}@{r}: {v:.4} Mpps</title></circle>"#,
                x(r),
                y(v),
                esc(system)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" fill="{c}">{}</text>"#,
            LEFT + 10.0,
            TOP + 16.0 * (i as f64 + 1.0),
            esc(system)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// One-way latency CDF per scenario (its median-rate trial), time on a log axis.
pub fn latency_cdf(title: &str, runs: &[Summary]) -> String {
    let with: Vec<&Summary> = runs.iter().filter(|r| !r.cdf_us.is_empty()).collect();
    let (lo, hi) = with
        .iter()
        .flat_map(|r| r.cdf_us.iter().map(|p| p.1))
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (lx0, lx1) = if lo < hi {
        (lo.log10().floor(), hi.log10().ceil())
    } else {
        (0.0, 1.0)
    };
    let mut out = String::new();
    header(&mut out, title, 1.0, "fraction of frames");
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |us: f64| {
        LEFT + plot_w * ((us.max(1e-3).log10() - lx0) / (lx1 - lx0).max(1e-9)).clamp(0.0, 1.0)
    };
    let y = |q: f64| TOP + plot_h * (1.0 - q.clamp(0.0, 1.0));
    let mut decade = lx0;
    while decade <= lx1 {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(10f64.powf(decade)),
            TOP + plot_h + 16.0,
            trim(10f64.powf(decade))
        );
        decade += 1.0;
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">one-way latency, µs (log scale)</text>"#,
        LEFT + plot_w / 2.0,
        TOP + plot_h + 36.0
    );
    if with.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no latency samples</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    for (i, r) in with.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = r
            .cdf_us
            .iter()
            .map(|&(q, us)| format!("{:.1},{:.1}", x(us), y(q)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" fill="{c}">{}</text>"#,
            LEFT + 10.0,
            TOP + 16.0 * (i as f64 + 1.0),
            esc(&label(r))
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(system: &'static str, rules: usize, mpps: f64) -> Summary {
        Summary {
            system,
            rules,
            frame_bytes: 64,
            trials: 3,
            mpps,
            mpps_min: mpps * 0.9,
            mpps_max: mpps * 1.1,
            tx_mpps: 0.3,
            loss: 0.0,
            p50_us: None,
            p99_us: None,
            cdf_us: vec![
                (0.01, mpps * 10.0),
                (0.5, mpps * 100.0),
                (0.99, mpps * 1000.0),
            ],
        }
    }

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0.33), 0.5);
        assert_eq!(nice_max(0.035), 0.05);
        assert_eq!(nice_max(1.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(0.0), 1.0);
    }

    #[test]
    fn bars_one_per_run_and_escaped() {
        let runs = [
            s("kernel", 0, 0.3),
            s("kernel-iptables", 1000, 0.035),
            s("a<b", 0, 0.1),
        ];
        let svg = bar_chart("t & u", &runs);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<rect x=").count(), 3);
        assert!(svg.contains("kernel-iptables@1000"));
        assert!(svg.contains("t &amp; u") && svg.contains("a&lt;b"));
        assert!(!svg.contains("NaN"));
        // The tallest bar reaches the axis maximum's share: 0.33 of 0.5.
        assert!(svg.contains(">0.5</text>"));
    }

    #[test]
    fn rule_lines_per_system_on_a_log_axis() {
        let runs = [
            s("tortie", 10, 0.2),
            s("tortie", 10000, 0.18),
            s("tortie", 1000, 0.19),
            s("kernel", 0, 0.3),
        ];
        let svg = rules_chart("r", &runs);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 3);
        for d in [">10</text>", ">100</text>", ">1000</text>", ">10000</text>"] {
            assert!(svg.contains(d), "{d}");
        }
        // Points are ordered by rule count along the line.
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        let xs: Vec<f64> = line
            .split('"')
            .nth(1)
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        let empty = rules_chart("r", &[s("kernel", 0, 0.3)]);
        assert!(empty.contains("no system was measured"));
    }

    #[test]
    fn cdf_one_curve_per_scenario_rising_left_to_right() {
        let runs = [s("kernel", 0, 0.3), s("tortie", 1000, 0.2)];
        let svg = latency_cdf("l", &runs);
        assert_eq!(svg.matches("<polyline").count(), 2);
        // 0.2 * 10 = 2 µs up to 0.3 * 1000 = 300 µs: decades 1 to 1000.
        for d in [">1</text>", ">10</text>", ">100</text>", ">1000</text>"] {
            assert!(svg.contains(d), "{d}");
        }
        for line in svg.lines().filter(|l| l.starts_with("<polyline")) {
            let pts: Vec<(f64, f64)> = line
                .split('"')
                .nth(1)
                .unwrap()
                .split(' ')
                .map(|p| {
                    let (a, b) = p.split_once(',').unwrap();
                    (a.parse().unwrap(), b.parse().unwrap())
                })
                .collect();
            // Later quantiles: further right and higher up (smaller y).
            assert!(
                pts.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 > w[1].1),
                "{pts:?}"
            );
        }
        let mut none = s("kernel", 0, 0.3);
        none.cdf_us.clear();
        assert!(latency_cdf("l", &[none]).contains("no latency samples"));
    }
}
