//! The plots: speedup against threads per size, the K×N heat map, and latency percentiles.
//! Each is drawn once on a [`Canvas`] and written as SVG and PNG.

use std::path::{Path, PathBuf};

use crate::report::canvas::{bitmap_width, Anchor, Canvas, Color, PALETTE};
use crate::report::grid::GridSection;
use crate::report::latency::LatencySection;

const PANEL_W: f32 = 300.0;
const PANEL_H: f32 = 240.0;
const MARGIN_L: f32 = 50.0;
const MARGIN_T: f32 = 80.0;
const MARGIN_B: f32 = 70.0;
const GAP: f32 = 40.0;

/// Writes `name.svg` and `name.png` into `dir`; returns the files written.
///
/// # Errors
/// I/O or PNG encoding errors, as text.
pub fn write(dir: &Path, name: &str, canvas: &Canvas) -> Result<Vec<PathBuf>, String> {
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    std::fs::write(&svg, canvas.to_svg()).map_err(|e| format!("{}: {e}", svg.display()))?;
    std::fs::write(&png, canvas.to_png()?).map_err(|e| format!("{}: {e}", png.display()))?;
    Ok(vec![svg, png])
}

/// Ticks at 1, 2 or 5 × 10^k covering [0, max].
fn ticks(max: f64) -> Vec<f64> {
    let max = max.max(1e-9);
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= max * 1.0001)
        .collect()
}

fn fmt_tick(t: f64) -> String {
    if t == t.round() {
        format!("{t:.0}")
    } else if t >= 0.1 {
        format!("{t:.1}")
    } else {
        format!("{t:.2}")
    }
}

/// Speedup over serial against K·N, one panel per size, one line per K.
pub fn speedup(grid: &GridSection, title: &str) -> Canvas {
    let panels = grid.sizes.len().max(1) as f32;
    let width = MARGIN_L + panels * (PANEL_W + GAP);
    let mut c = Canvas::new(width, MARGIN_T + PANEL_H + MARGIN_B);
    c.text(width / 2.0, 24.0, title, 15.0, Anchor::Middle);
    c.text(
        width / 2.0,
        42.0,
        format!(
            "{} cores, {} OpenBLAS; dashed: ideal; ring: default policy",
            grid.cores, grid.threading
        ),
        11.0,
        Anchor::Middle,
    );
    let x_max = grid.settings.max_threads as f64;
    let y_max = grid
        .sizes
        .iter()
        .flat_map(|s| {
            s.cells
                .iter()
                .map(|c| c.speedup)
                .chain([s.policy.cell.speedup])
        })
        .fold(grid.cores as f64, f64::max)
        * 1.1;
    let mut ks: Vec<usize> = grid
        .sizes
        .iter()
        .flat_map(|s| s.cells.iter().map(|c| c.outer))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    for (p, size) in grid.sizes.iter().enumerate() {
        let x0 = MARGIN_L + p as f32 * (PANEL_W + GAP);
        let y0 = MARGIN_T;
        let px = |x: f64| x0 + ((x - 1.0) / (x_max - 1.0).max(1.0)) as f32 * PANEL_W;
        let py = |y: f64| y0 + PANEL_H - (y / y_max) as f32 * PANEL_H;
        axes(&mut c, x0, y0, &ticks(y_max), py);
        let xt: Vec<usize> = (1..=grid.settings.max_threads)
            .filter(|t| grid.settings.max_threads <= 8 || t.is_power_of_two())
            .collect();
        for t in xt {
            c.text(
                px(t as f64),
                y0 + PANEL_H + 14.0,
                t.to_string(),
                10.0,
                Anchor::Middle,
            );
        }
        c.text(
            x0 + PANEL_W / 2.0,
            y0 + PANEL_H + 30.0,
            "K·N threads",
            11.0,
            Anchor::Middle,
        );
        let name = if size.single {
            format!("one {0}×{0} product", size.n)
        } else {
            format!("n = {}, batch of {}", size.n, size.batch)
        };
        c.text(x0 + PANEL_W / 2.0, y0 - 10.0, name, 12.0, Anchor::Middle);
        let ideal: Vec<(f32, f32)> = (1..=grid.settings.max_threads)
            .map(|t| (px(t as f64), py((t.min(grid.cores)) as f64)))
            .collect();
        c.line(ideal, Color::GREY, 1.0, true);
        for (i, &k) in ks.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let mut pts: Vec<(f64, f64)> = size
                .cells
                .iter()
                .filter(|c| c.outer == k)
                .map(|c| (c.threads() as f64, c.speedup))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            c.line(
                pts.iter().map(|&(x, y)| (px(x), py(y))).collect(),
                color,
                1.8,
                false,
            );
            for &(x, y) in &pts {
                c.circle(px(x), py(y), 3.0, color);
            }
        }
        let pol = &size.policy.cell;
        let (x, y) = (px(pol.threads() as f64), py(pol.speedup));
        c.circle(x, y, 6.5, Color::BLACK);
        c.circle(x, y, 5.0, Color::WHITE);
        c.circle(x, y, 3.0, Color::BLACK);
    }
    c.vertical_text(14.0, MARGIN_T + PANEL_H / 2.0, "speedup over serial", 11.0);
    // Legend under the panels.
    let mut lx = MARGIN_L;
    let ly = MARGIN_T + PANEL_H + 52.0;
    for (i, k) in ks.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let label = format!("K = {k} outer");
        c.line(
            vec![(lx, ly - 4.0), (lx + 18.0, ly - 4.0)],
            color,
            2.0,
            false,
        );
        c.text(lx + 22.0, ly, &label, 11.0, Anchor::Start);
        lx += 34.0 + bitmap_width(&label, 11.0).max(label.len() as f32 * 6.5);
    }
    c
}

fn axes(c: &mut Canvas, x0: f32, y0: f32, yt: &[f64], py: impl Fn(f64) -> f32) {
    for &t in yt {
        let y = py(t);
        c.line(vec![(x0, y), (x0 + PANEL_W, y)], Color::LIGHT, 1.0, false);
        c.text(x0 - 5.0, y + 4.0, fmt_tick(t), 10.0, Anchor::End);
    }
    c.line(
        vec![(x0, y0), (x0, y0 + PANEL_H), (x0 + PANEL_W, y0 + PANEL_H)],
        Color::BLACK,
        1.0,
        false,
    );
}

/// White → blue by `v / max`.
fn heat(v: f64, max: f64) -> Color {
    let f = (v / max).clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    Color(lerp(247.0, 8.0), lerp(251.0, 69.0), lerp(255.0, 148.0))
}

/// The K×N heat map of speedups, one panel per size.
pub fn heatmap(grid: &GridSection, title: &str) -> Canvas {
    let panels = grid.sizes.len().max(1) as f32;
    let width = MARGIN_L + panels * (PANEL_W + GAP);
    let mut c = Canvas::new(width, MARGIN_T + PANEL_H + MARGIN_B);
    c.text(width / 2.0, 24.0, title, 15.0, Anchor::Middle);
    c.text(
        width / 2.0,
        42.0,
        format!(
            "speedup over serial; {} cores, {} OpenBLAS; * = default policy's pick",
            grid.cores, grid.threading
        ),
        11.0,
        Anchor::Middle,
    );
    let max = grid
        .sizes
        .iter()
        .flat_map(|s| s.cells.iter().map(|c| c.speedup))
        .fold(grid.cores as f64, f64::max);
    for (p, size) in grid.sizes.iter().enumerate() {
        let x0 = MARGIN_L + p as f32 * (PANEL_W + GAP);
        let y0 = MARGIN_T;
        let mut ks: Vec<usize> = size.cells.iter().map(|c| c.outer).collect();
        let mut ns: Vec<usize> = size.cells.iter().map(|c| c.blas).collect();
        ks.sort_unstable();
        ks.dedup();
        ns.sort_unstable();
        ns.dedup();
        let cw = PANEL_W / ns.len().max(1) as f32;
        let ch = (PANEL_H / ks.len().max(1) as f32).min(60.0);
        let name = if size.single {
            format!("one {0}×{0} product", size.n)
        } else {
            format!("n = {}", size.n)
        };
        c.text(x0 + PANEL_W / 2.0, y0 - 10.0, name, 12.0, Anchor::Middle);
        for cell in &size.cells {
            let i = ks.iter().position(|&k| k == cell.outer).expect("listed");
            let j = ns.iter().position(|&n| n == cell.blas).expect("listed");
            let (x, y) = (x0 + j as f32 * cw, y0 + i as f32 * ch);
            let fill = heat(cell.speedup, max);
            c.rect(x + 1.0, y + 1.0, cw - 2.0, ch - 2.0, fill);
            let ink = if cell.speedup / max > 0.55 {
                Color::WHITE
            } else {
                Color::BLACK
            };
            let policy = (size.policy.cell.outer, size.policy.cell.blas) == (cell.outer, cell.blas);
            let label = format!("{:.2}{}", cell.speedup, if policy { "*" } else { "" });
            c.colored_text(
                x + cw / 2.0,
                y + ch / 2.0 + 4.0,
                label,
                10.0,
                Anchor::Middle,
                ink,
            );
        }
        for (j, n) in ns.iter().enumerate() {
            c.text(
                x0 + (j as f32 + 0.5) * cw,
                y0 + ks.len() as f32 * ch + 14.0,
                n.to_string(),
                10.0,
                Anchor::Middle,
            );
        }
        for (i, k) in ks.iter().enumerate() {
            c.text(
                x0 - 5.0,
                y0 + (i as f32 + 0.5) * ch + 4.0,
                k.to_string(),
                10.0,
                Anchor::End,
            );
        }
        c.text(
            x0 + PANEL_W / 2.0,
            y0 + ks.len() as f32 * ch + 30.0,
            "N, BLAS threads",
            11.0,
            Anchor::Middle,
        );
    }
    c.vertical_text(20.0, MARGIN_T + PANEL_H / 2.0, "K, outer threads", 11.0);
    c
}

/// p50 / p99 / max of each latency condition, log scale.
pub fn latency(lat: &LatencySection) -> Canvas {
    let width = 820.0;
    let (x0, y0, w, h) = (70.0, 70.0, 720.0, 240.0);
    let mut c = Canvas::new(width, y0 + h + 80.0);
    c.text(
        width / 2.0,
        24.0,
        format!(
            "Latency of a {0}×{0} product, alone and beside {1}×{1} products",
            lat.settings.small, lat.settings.large
        ),
        15.0,
        Anchor::Middle,
    );
    c.text(
        width / 2.0,
        42.0,
        format!("{} cores; milliseconds, log scale", lat.cores),
        11.0,
        Anchor::Middle,
    );
    let values: Vec<f64> = lat
        .rows
        .iter()
        .flat_map(|r| [r.p50_ms, r.p99_ms, r.max_ms])
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-4);
    let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let (dlo, dhi) = (lo.log10().floor(), hi.log10().ceil());
    let py = |v: f64| y0 + h - ((v.max(1e-9).log10() - dlo) / (dhi - dlo)) as f32 * h;
    let mut d = dlo;
    while d <= dhi + 1e-9 {
        let y = py(10f64.powf(d));
        c.line(vec![(x0, y), (x0 + w, y)], Color::LIGHT, 1.0, false);
        c.text(
            x0 - 5.0,
            y + 4.0,
            fmt_tick(10f64.powf(d)),
            10.0,
            Anchor::End,
        );
        d += 1.0;
    }
    c.line(
        vec![(x0, y0), (x0, y0 + h), (x0 + w, y0 + h)],
        Color::BLACK,
        1.0,
        false,
    );
    let groups = lat.rows.len().max(1) as f32;
    let gw = w / groups;
    let bw = gw / 4.5;
    for (g, r) in lat.rows.iter().enumerate() {
        let gx = x0 + g as f32 * gw + gw * 0.1;
        for (i, v) in [r.p50_ms, r.p99_ms, r.max_ms].iter().enumerate() {
            let top = py(*v);
            c.rect(
                gx + i as f32 * bw * 1.1,
                top,
                bw,
                (y0 + h - top).max(0.5),
                PALETTE[i],
            );
        }
        let load = if r.loaded { "beside load" } else { "alone" };
        c.text(
            x0 + (g as f32 + 0.5) * gw,
            y0 + h + 16.0,
            format!("BLAS {}", r.blas),
            10.0,
            Anchor::Middle,
        );
        c.text(
            x0 + (g as f32 + 0.5) * gw,
            y0 + h + 30.0,
            load,
            10.0,
            Anchor::Middle,
        );
    }
    c.vertical_text(18.0, y0 + h / 2.0, "ms", 11.0);
    let mut lx = x0;
    for (i, name) in ["p50", "p99", "max"].iter().enumerate() {
        c.rect(lx, y0 + h + 48.0, 12.0, 12.0, PALETTE[i]);
        c.text(lx + 16.0, y0 + h + 58.0, *name, 11.0, Anchor::Start);
        lx += 70.0;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(4.4), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(ticks(10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(fmt_tick(0.5), "0.5");
        assert_eq!(fmt_tick(2.0), "2");
    }

    #[test]
    fn heat_runs_from_white_to_blue() {
        assert_eq!(heat(0.0, 2.0), Color(247, 251, 255));
        assert_eq!(heat(2.0, 2.0), Color(8, 69, 148));
    }
}
