//! The loss-curve plot of a run as a small, self-contained SVG: training loss per step (thin)
//! and validation loss (thick, with points) against steps, with labelled axes.
//!
//! Written by hand instead of with `plotters`: one line chart needs ~100 lines, no font or
//! image dependencies, and the output is byte-for-byte deterministic.

use crate::metrics::Record;
use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 45.0;
/// Training curves longer than this are averaged into this many points (keeps files small).
const MAX_POINTS: usize = 400;

/// "Nice" tick spacing (1, 2 or 5 × 10ⁿ) for about `n` ticks over `span`.
fn tick_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    }
}

fn downsample(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let per = points.len().div_ceil(MAX_POINTS);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// The SVG document for `records` (an empty chart with a note when there is nothing finite).
pub fn loss_svg(records: &[Record], title: &str) -> String {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for r in records {
        match *r {
            Record::Train { step, loss, .. } if loss.is_finite() => train.push((step as f64, loss)),
            Record::Eval { step, loss, .. } if loss.is_finite() => val.push((step as f64, loss)),
            _ => {}
        }
    }
    let train = downsample(&train);
    let all = || train.iter().chain(&val);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let empty = x0 > x1;
    if empty {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    x0 = x0.min(0.0);
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let (y0, y1) = ((y0 - pad).max(0.0), y1 + pad);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + (1.0 - (y - y0) / (y1 - y0)) * ph;

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // Grid and tick labels.
    let xs = tick_step(x1 - x0, 6.0);
    let mut t = (x0 / xs).ceil() * xs;
    while t <= x1 + 1e-9 {
        let x = sx(t);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/>"##,
            TOP + ph
        );
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{t}</text>"#,
            TOP + ph + 16.0
        );
        t += xs;
    }
    let ys = tick_step(y1 - y0, 6.0);
    let mut t = (y0 / ys).ceil() * ys;
    while t <= y1 + 1e-9 {
        let y = sy(t);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/>"##,
            LEFT + pw
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            fmt_tick(t, ys)
        );
        t += ys;
    }
    let _ = write!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">step</text>"#,
        LEFT + pw / 2.0,
        H - 8.0
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">loss (nats/token)</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    let path = |pts: &[(f64, f64)]| -> String {
        let mut d = String::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                sx(x),
                sy(y)
            );
        }
        d
    };
    if !train.is_empty() {
        let _ = write!(
            s,
            r##"<path d="{}" fill="none" stroke="#7aa6d8" stroke-width="1"/>"##,
            path(&train)
        );
    }
    if !val.is_empty() {
        let _ = write!(
            s,
            r##"<path d="{}" fill="none" stroke="#d2572a" stroke-width="2"/>"##,
            path(&val)
        );
        for &(x, y) in &val {
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#d2572a"/>"##,
                sx(x),
                sy(y)
            );
        }
    }
    // Legend.
    let lx = LEFT + pw - 130.0;
    let _ = write!(
        s,
        r##"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="#7aa6d8"/><text x="{}" y="{}">train</text>"##,
        TOP + 15.0,
        lx + 20.0,
        TOP + 15.0,
        lx + 26.0,
        TOP + 19.0
    );
    let _ = write!(
        s,
        r##"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="#d2572a" stroke-width="2"/><text x="{}" y="{}">validation</text>"##,
        TOP + 32.0,
        lx + 20.0,
        TOP + 32.0,
        lx + 26.0,
        TOP + 36.0
    );
    if empty {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">no data yet</text>"#,
            W / 2.0,
            H / 2.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_has_both_curves_within_the_frame() {
        let mut recs = Vec::new();
        for step in 1..=1000u64 {
            let loss = 6.0 / (1.0 + step as f64 / 100.0);
            recs.push(Record::Train {
                step,
                loss,
                lr: 1e-3,
                grad_norm: 1.0,
                tok_per_s: 1.0,
            });
            if step % 100 == 0 {
                recs.push(Record::Eval {
                    step,
                    loss: loss + 0.1,
                    bits_per_byte: None,
                });
            }
        }
        let svg = loss_svg(&recs, "run <1>");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 10);
        assert!(svg.contains("run &lt;1&gt;"));
        // Every path coordinate lies inside the plot area.
        for d in svg
            .split("d=\"")
            .skip(1)
            .map(|p| p.split('"').next().unwrap_or(""))
        {
            for pt in d.split(['M', 'L', ' ']).filter(|p| !p.is_empty()) {
                let (x, y) = pt.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(
                    (LEFT..=W - RIGHT).contains(&x) && (TOP..=H - BOTTOM).contains(&y),
                    "{pt}"
                );
            }
        }
        assert!(svg.len() < 40_000, "downsampled: {} bytes", svg.len());
    }

    #[test]
    fn an_empty_log_still_gives_a_valid_chart() {
        let svg = loss_svg(&[], "empty");
        assert!(svg.contains("no data yet") && !svg.contains("<path"));
    }
}
