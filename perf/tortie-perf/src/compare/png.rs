//! The comparison's plots as PNG: throughput against rule count (one line per system with
//! rules, a dashed level for each system without) and the one-way latency CDF per scenario.
//!
//! Drawn with plotters into an RGB buffer (its bitmap backend; text through ab_glyph with the
//! Noto Sans face that the `ttf-noto-sans` crate ships, so no system font or fontconfig is
//! needed) and encoded with the `png` crate. The SVG plots ([`super::svg`]) stay beside them.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::stats::Summary;

/// Image width, pixels.
pub const WIDTH: u32 = 960;
/// Image height, pixels.
pub const HEIGHT: u32 = 560;

/// Why a plot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed while drawing.
    #[error("drawing the {plot} plot: {reason}")]
    Draw {
        /// Which plot.
        plot: &'static str,
        /// What plotters said.
        reason: String,
    },
    /// The PNG encoder failed.
    #[error("encoding the {plot} plot as PNG: {reason}")]
    Encode {
        /// Which plot.
        plot: &'static str,
        /// What the encoder said.
        reason: String,
    },
}

const PALETTE: [RGBColor; 12] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x39, 0x3b, 0x79),
    RGBColor(0xad, 0x49, 0x4a),
];

fn fonts() {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        // The bundled face parses (checked by the tests); a failure would only leave text out.
        let _ = register_font("sans-serif", FontStyle::Normal, ttf_noto_sans::REGULAR);
    });
}

fn draw_err(plot: &'static str) -> impl Fn(String) -> PlotError {
    move |reason| PlotError::Draw { plot, reason }
}

/// One system's line: its name and `(rules, mpps)` points.
pub type Line = (&'static str, Vec<(f64, f64)>);

/// A system's points `(rules, mpps)` sorted by rules, for every system measured with rules;
/// and `(system, mpps)` for each system without rules (drawn as a level).
pub fn rule_series(runs: &[Summary]) -> (Vec<Line>, Vec<(&'static str, f64)>) {
    let mut lines: Vec<Line> = Vec::new();
    let mut levels = Vec::new();
    for r in runs {
        if r.rules == 0 {
            levels.push((r.system, r.mpps));
            continue;
        }
        match lines.iter_mut().find(|(s, _)| *s == r.system) {
            Some((_, p)) => p.push((r.rules as f64, r.mpps)),
            None => lines.push((r.system, vec![(r.rules as f64, r.mpps)])),
        }
    }
    for (_, p) in &mut lines {
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    (lines, levels)
}

/// Decades `[10^a, 10^b]` that hold every positive value (at least one decade wide).
pub fn decade_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (1.0, 10.0);
    }
    let a = lo.log10().floor();
    let b = hi.log10().ceil().max(a + 1.0);
    (10f64.powf(a), 10f64.powf(b))
}

fn encode(plot: &'static str, rgb: &[u8]) -> Result<Vec<u8>, PlotError> {
    let enc_err = |e: png::EncodingError| PlotError::Encode {
        plot,
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(enc_err)?;
    w.write_image_data(rgb).map_err(enc_err)?;
    w.finish().map_err(enc_err)?;
    Ok(out)
}

/// Median forwarded Mpps against rule count (log axis) per system, as PNG bytes.
pub fn rules_chart(title: &str, runs: &[Summary]) -> Result<Vec<u8>, PlotError> {
    const PLOT: &str = "rules";
    fonts();
    let (lines, levels) = rule_series(runs);
    let (x0, x1) = decade_range(lines.iter().flat_map(|(_, p)| p.iter().map(|x| x.0)));
    let y_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .chain(levels.iter().map(|l| l.1))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let e = draw_err(PLOT);
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d((x0..x1).log_scale(), 0.0..y_max)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("rules (log scale)")
            .y_desc("forwarded Mpps (median)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        let mut colour = 0;
        for (system, points) in &lines {
            let c = PALETTE[colour % PALETTE.len()];
            colour += 1;
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(3)))
                .map_err(|x| e(x.to_string()))?
                .label(*system)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(3)));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 5, c.filled())))
                .map_err(|x| e(x.to_string()))?;
        }
        for (system, mpps) in &levels {
            let c = PALETTE[colour % PALETTE.len()];
            colour += 1;
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, *mpps), (x1, *mpps)],
                    10,
                    6,
                    c.stroke_width(2),
                ))
                .map_err(|x| e(x.to_string()))?
                .label(format!("{system} (no rules)"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    encode(PLOT, &rgb)
}

/// One-way latency CDF per scenario (its median-rate trial), time on a log axis, as PNG bytes.
pub fn latency_cdf(title: &str, runs: &[Summary]) -> Result<Vec<u8>, PlotError> {
    const PLOT: &str = "latency";
    fonts();
    let with: Vec<&Summary> = runs.iter().filter(|r| !r.cdf_us.is_empty()).collect();
    let (x0, x1) = decade_range(with.iter().flat_map(|r| r.cdf_us.iter().map(|p| p.1)));
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let e = draw_err(PLOT);
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d((x0..x1).log_scale(), 0.0..1.0)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("one-way latency, µs (log scale)")
            .y_desc("fraction of frames")
            .x_label_formatter(&|v| format!("{v}"))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        for (i, r) in with.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            let label = if r.rules > 0 {
                format!("{}@{}", r.system, r.rules)
            } else {
                r.system.to_string()
            };
            chart
                .draw_series(LineSeries::new(
                    r.cdf_us.iter().map(|&(q, us)| (us.max(x0), q)),
                    c.stroke_width(3),
                ))
                .map_err(|x| e(x.to_string()))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    encode(PLOT, &rgb)
}

/// Median forwarded Mpps against worker count, one line per system, as PNG bytes (the
/// `scaling` report's plot).
pub fn workers_chart(title: &str, lines: &[Line]) -> Result<Vec<u8>, PlotError> {
    const PLOT: &str = "workers";
    fonts();
    let x_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(1.0f64, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let e = draw_err(PLOT);
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0.5..x_max + 0.5, 0.0..y_max)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("workers (queues per veth, generator threads)")
            .y_desc("forwarded Mpps (median)")
            .x_labels(2 * x_max as usize + 2)
            // Only whole worker counts are labelled.
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-6 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        for (i, (system, points)) in lines.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(3)))
                .map_err(|x| e(x.to_string()))?
                .label(*system)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(3)));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 5, c.filled())))
                .map_err(|x| e(x.to_string()))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    encode(PLOT, &rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(system: &'static str, rules: usize, mpps: f64) -> Summary {
        Summary {
            system,
            rules,
            frame_bytes: 64,
            trials: 1,
            mpps,
            mpps_min: mpps,
            mpps_max: mpps,
            tx_mpps: mpps,
            loss: 0.0,
            p50_us: Some(10.0),
            p99_us: Some(20.0),
            cdf_us: vec![(0.0, 5.0), (0.5, 10.0), (0.99, 20.0), (1.0, 40.0)],
        }
    }

    fn is_png(bytes: &[u8]) -> bool {
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 2000
    }

    /// Pixels of the decoded image that are neither white nor near-grey (the coloured series).
    fn coloured_pixels(bytes: &[u8]) -> usize {
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().expect("png header");
        let mut buf = vec![0u8; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        buf[..info.buffer_size()]
            .chunks(3)
            .filter(|p| {
                let (mx, mn) = (p.iter().max().unwrap_or(&0), p.iter().min().unwrap_or(&0));
                mx - mn > 60
            })
            .count()
    }

    #[test]
    fn series_group_by_system_and_sort_by_rules() {
        let runs = [
            run("tortie", 1000, 2.0),
            run("kernel", 0, 1.0),
            run("tortie", 10, 2.1),
            run("kernel-iptables", 1000, 0.1),
        ];
        let (lines, levels) = rule_series(&runs);
        assert_eq!(lines[0], ("tortie", vec![(10.0, 2.1), (1000.0, 2.0)]));
        assert_eq!(lines[1], ("kernel-iptables", vec![(1000.0, 0.1)]));
        assert_eq!(levels, [("kernel", 1.0)]);
        assert_eq!(decade_range([12.0, 900.0].into_iter()), (10.0, 1000.0));
        assert_eq!(decade_range([100.0].into_iter()), (100.0, 1000.0));
        assert_eq!(decade_range(std::iter::empty()), (1.0, 10.0));
    }

    #[test]
    fn plots_are_pngs_with_coloured_series() {
        let runs = [
            run("tortie", 10, 2.1),
            run("tortie", 1000, 2.0),
            run("kernel", 0, 1.0),
            run("kernel-iptables", 1000, 0.1),
        ];
        let rules = rules_chart("Throughput against rule count", &runs).expect("rules plot");
        assert!(is_png(&rules));
        assert!(coloured_pixels(&rules) > 500, "series drawn");
        let lat = latency_cdf("Latency CDF", &runs).expect("latency plot");
        assert!(is_png(&lat));
        assert!(coloured_pixels(&lat) > 500, "curves drawn");
        let workers = workers_chart(
            "Scaling",
            &[
                ("tortie", vec![(1.0, 0.2), (2.0, 0.4)]),
                ("kernel", vec![(1.0, 0.3)]),
            ],
        )
        .expect("workers plot");
        assert!(is_png(&workers));
        assert!(coloured_pixels(&workers) > 300, "lines drawn");
        // No data still gives an image (axes only), not an error.
        let empty = latency_cdf("none", &[]).expect("empty plot");
        assert!(is_png(&empty));
        assert!(coloured_pixels(&empty) < 50);
    }

    #[test]
    fn the_bundled_font_parses() {
        assert!(ab_glyph_parses(ttf_noto_sans::REGULAR));
    }

    fn ab_glyph_parses(bytes: &'static [u8]) -> bool {
        register_font("tortie-perf-test", FontStyle::Normal, bytes).is_ok()
    }
}
