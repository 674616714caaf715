//! The plots, drawn with `plotters`: speedup against threads per size, the K×N heat map, and
//! latency percentiles. Each is drawn twice from the same code, as SVG and as PNG.
//!
//! The PNG needs a font to rasterise text: DejaVu Sans, which the `dejavu` crate ships inside
//! the binary (no system font, no fontconfig), registered with plotters' `ab_glyph` backend.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::classic::ClassicSection;
use crate::report::classic_rows::{self, ClassicRow, How};
use crate::report::grid::{GridSection, GridSize};
use crate::report::latency::LatencySection;
use crate::report::workloads::Workload;

/// Line colours, one per outer-thread count (Tableau 10).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const PANEL_W: u32 = 340;
const HEIGHT: u32 = 400;
const FONT: &str = "sans-serif";

/// A plot of the report, ready to be drawn on any plotters backend.
#[derive(Debug, Clone, Copy)]
pub enum Plot<'a> {
    /// Speedup over serial against K·N, one panel per size, one line per K.
    Speedup(&'a GridSection, &'a str),
    /// The K×N heat map of speedups, one panel per size.
    Heatmap(&'a GridSection, &'a str),
    /// p50 / p99 / max of each latency condition, log scale.
    Latency(&'a LatencySection),
    /// The classic table's speedups over serial (threads, processes), with their intervals.
    Classic(&'a ClassicSection),
}

type DrawResult = anyhow::Result<()>;

impl Plot<'_> {
    fn size(&self) -> (u32, u32) {
        match self {
            Plot::Speedup(g, _) | Plot::Heatmap(g, _) => {
                (60 + PANEL_W * g.sizes.len().max(1) as u32, HEIGHT)
            }
            Plot::Latency(_) | Plot::Classic(_) => (820, HEIGHT),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        match *self {
            Plot::Speedup(g, title) => speedup(root, g, title),
            Plot::Heatmap(g, title) => heatmap(root, g, title),
            Plot::Latency(l) => latency(root, l),
            Plot::Classic(c) => classic(root, c),
        }?;
        Ok(root.present()?)
    }
}

/// Writes `name.svg` and `name.png` into `dir`; returns the files written.
///
/// # Errors
/// Drawing, I/O or PNG encoding errors, as text.
pub fn write(dir: &Path, name: &str, plot: &Plot<'_>) -> anyhow::Result<Vec<PathBuf>> {
    register_font()?;
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    let size = plot.size();
    plot.draw(&SVGBackend::new(&svg, size).into_drawing_area())
        .map_err(|e| anyhow::anyhow!("{}: {e}", svg.display()))?;
    plot.draw(&BitMapBackend::new(&png, size).into_drawing_area())
        .map_err(|e| anyhow::anyhow!("{}: {e}", png.display()))?;
    Ok(vec![svg, png])
}

fn register_font() -> DrawResult {
    static ONCE: Once = Once::new();
    let mut loaded = true;
    ONCE.call_once(|| {
        loaded = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .is_ok();
    });
    anyhow::ensure!(loaded, "the built-in DejaVu Sans font does not load");
    Ok(())
}

/// The title and subtitle; returns the area below them.
fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> anyhow::Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    let area = root.titled(title, (FONT, 18))?;
    let (w, _) = area.dim_in_pixel();
    area.draw(&Text::new(
        subtitle.to_owned(),
        (w as i32 / 2, 0),
        (FONT, 12)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    Ok(area.margin(22, 0, 0, 0))
}

/// The legend of the series that have labels, in a corner of the chart.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 11))
        .background_style(WHITE.mix(0.8))
        .border_style(RGBColor(200, 200, 200))
        .draw()?;
    Ok(())
}

/// A grey dashed line: the ideal a plot measures against.
fn dashed<I>(points: I) -> DashedLineSeries<I::IntoIter, i32>
where
    I: IntoIterator<Item = (f64, f64)>,
    I::IntoIter: Clone,
{
    DashedLineSeries::new(points, 4, 4, RGBColor(150, 150, 150).into())
}

/// The item whose band `v` is the middle of (bands 0–1, 1–2, …), for axis labels that sit in
/// the middle of a band and nowhere else.
fn at_band_middle<T>(items: &[T], v: f64) -> Option<&T> {
    let i = v.floor() as usize;
    ((v - i as f64 - 0.5).abs() < 1e-6)
        .then(|| items.get(i))
        .flatten()
}

/// One size's panel: its name above, room for the axes' labels (more on the first panel, the
/// only one with a y caption).
fn panel_chart<'a, 'b, DB: DrawingBackend>(
    panel: &'a DrawingArea<DB, Shift>,
    size: &GridSize,
    first: bool,
) -> ChartBuilder<'a, 'b, DB> {
    let name = if size.single {
        format!("one {0}×{0} product", size.n)
    } else {
        format!("n = {}, batch of {}", size.n, size.batch)
    };
    let mut chart = ChartBuilder::on(panel);
    chart
        .caption(name, (FONT, 13))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(if first { 44 } else { 30 });
    chart
}

fn speedup<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    grid: &GridSection,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let subtitle = format!(
        "{} cores, {} OpenBLAS; bars: 95% intervals; dashed: ideal; ring: default policy",
        grid.cores, grid.threading
    );
    let area = titled(root, title, &subtitle)?;
    let x_max = grid.settings.max_threads.max(2) as f64;
    let y_max = grid
        .sizes
        .iter()
        .flat_map(|s| s.cells.iter().chain([&s.policy.cell]))
        .map(|c| c.speedup_interval.map_or(c.speedup, |iv| iv.hi))
        .fold(grid.cores as f64, f64::max)
        * 1.1;
    let mut ks: Vec<usize> = grid
        .sizes
        .iter()
        .flat_map(|s| s.cells.iter().map(|c| c.outer))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    let panels = area.split_evenly((1, grid.sizes.len().max(1)));
    for (p, (panel, size)) in panels.iter().zip(&grid.sizes).enumerate() {
        let mut chart =
            panel_chart(panel, size, p == 0).build_cartesian_2d(1.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("K·N threads")
            .x_labels(grid.settings.max_threads.min(16))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(if p == 0 { "speedup over serial" } else { "" })
            .label_style((FONT, 11))
            .light_line_style(WHITE)
            .draw()?;
        let ideal = (1..=grid.settings.max_threads).map(|t| (t as f64, t.min(grid.cores) as f64));
        chart.draw_series(dashed(ideal))?;
        for (i, &k) in ks.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let mut pts: Vec<(f64, f64)> = size
                .cells
                .iter()
                .filter(|c| c.outer == k)
                .map(|c| (c.threads() as f64, c.speedup))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let line = chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
            if p == 0 {
                line.label(format!("K = {k} outer")).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            }
            chart.draw_series(pts.iter().map(|&xy| Circle::new(xy, 3, color.filled())))?;
            let bars = size.cells.iter().filter(|c| c.outer == k).filter_map(|c| {
                let iv = c.speedup_interval?;
                let x = c.threads() as f64;
                Some(ErrorBar::new_vertical(
                    x,
                    iv.lo,
                    c.speedup,
                    iv.hi,
                    color.stroke_width(1),
                    6,
                ))
            });
            chart.draw_series(bars)?;
        }
        let pol = (size.policy.cell.threads() as f64, size.policy.cell.speedup);
        chart.draw_series([
            Circle::new(pol, 7, BLACK.stroke_width(2)),
            Circle::new(pol, 3, BLACK.filled()),
        ])?;
        if p == 0 {
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
    }
    Ok(())
}

/// White → blue by `v / max`.
fn heat(v: f64, max: f64) -> RGBColor {
    let f = (v / max).clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 69.0), lerp(255.0, 148.0))
}

fn heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    grid: &GridSection,
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let subtitle = format!(
        "speedup over serial; {} cores, {} OpenBLAS; * = default policy's pick; orange frame: tied with the best",
        grid.cores, grid.threading
    );
    let area = titled(root, title, &subtitle)?;
    let max = grid
        .sizes
        .iter()
        .flat_map(|s| s.cells.iter().map(|c| c.speedup))
        .fold(grid.cores as f64, f64::max);
    let panels = area.split_evenly((1, grid.sizes.len().max(1)));
    for (p, (panel, size)) in panels.iter().zip(&grid.sizes).enumerate() {
        let (ks, ns) = size.axes();
        let mut chart = panel_chart(panel, size, p == 0)
            .build_cartesian_2d(0.0..ns.len() as f64, ks.len() as f64..0.0)?;
        let label_of = |list: &[usize], v: f64| {
            at_band_middle(list, v).map_or(String::new(), usize::to_string)
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("N, BLAS threads")
            .y_desc(if p == 0 { "K, outer threads" } else { "" })
            .x_labels(2 * ns.len() + 1)
            .y_labels(2 * ks.len() + 1)
            .x_label_formatter(&|v| label_of(&ns, *v))
            .y_label_formatter(&|v| label_of(&ks, *v))
            .label_style((FONT, 11))
            .draw()?;
        let policy = (size.policy.cell.outer, size.policy.cell.blas);
        for cell in &size.cells {
            let i = ks.iter().position(|&k| k == cell.outer).unwrap_or(0) as f64;
            let j = ns.iter().position(|&n| n == cell.blas).unwrap_or(0) as f64;
            chart.draw_series([Rectangle::new(
                [(j + 0.03, i + 0.03), (j + 0.97, i + 0.97)],
                heat(cell.speedup, max).filled(),
            )])?;
            if cell.within_noise_of_best {
                chart.draw_series([Rectangle::new(
                    [(j + 0.06, i + 0.06), (j + 0.94, i + 0.94)],
                    PALETTE[1].stroke_width(3),
                )])?;
            }
            let ink = if cell.speedup / max > 0.55 {
                WHITE
            } else {
                BLACK
            };
            let star = if policy == (cell.outer, cell.blas) {
                "*"
            } else {
                ""
            };
            let style = (FONT, 11)
                .into_font()
                .color(&ink)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series([Text::new(
                format!("{:.2}{star}", cell.speedup),
                (j + 0.5, i + 0.5),
                style,
            )])?;
        }
    }
    Ok(())
}

fn latency<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, lat: &LatencySection) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let title = format!(
        "Latency of a {0}×{0} product, alone and beside {1}×{1} products",
        lat.settings.small, lat.settings.large
    );
    let subtitle = format!("{} cores; milliseconds, log scale", lat.cores);
    let area = titled(root, &title, &subtitle)?;
    let values = lat.rows.iter().flat_map(|r| [r.p50_ms, r.p99_ms, r.max_ms]);
    let positive: Vec<f64> = values.filter(|v| *v > 0.0).collect();
    let lo = positive
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-4);
    let hi = positive.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let (lo, hi) = (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()),
    );
    let groups = lat.rows.len().max(1);
    let mut chart = ChartBuilder::on(&area)
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..groups as f64, (lo..hi).log_scale())?;
    let group_label = |v: f64| {
        at_band_middle(&lat.rows, v).map_or(String::new(), |r| {
            let load = if r.loaded { "beside load" } else { "alone" };
            format!("BLAS {}, {load}", r.blas)
        })
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * groups + 1)
        .x_label_formatter(&|v| group_label(*v))
        .y_desc("ms")
        .label_style((FONT, 11))
        .draw()?;
    for (i, name) in ["p50", "p99", "max"].into_iter().enumerate() {
        let color = PALETTE[i];
        let bars = lat.rows.iter().enumerate().map(|(g, r)| {
            let v = [r.p50_ms, r.p99_ms, r.max_ms][i].max(lo);
            let x = g as f64 + 0.12 + 0.26 * i as f64;
            Rectangle::new([(x, lo), (x + 0.24, v)], color.filled())
        });
        chart
            .draw_series(bars)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// Speedup bars of the classic table: g, f and h (every BLAS count), threads and processes side
/// by side, with their intervals and the workers as the ideal.
fn classic<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &ClassicSection) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let workers = c.settings.workers;
    let title = format!("The classic table: {workers} threads or {workers} processes?");
    let subtitle = format!(
        "speedup over serial, {} rounds; bars: 95% intervals; dashed: {workers} workers",
        c.settings.rounds
    );
    let area = titled(root, &title, &subtitle)?;
    let groups: Vec<(Workload, usize)> = [(Workload::G, 1), (Workload::F, 1)]
        .into_iter()
        .chain(c.settings.h_blas.iter().map(|&b| (Workload::H, b)))
        .collect();
    let y_max = c
        .rust
        .iter()
        .map(|r| r.speedup_interval.map_or(r.speedup, |iv| iv.hi))
        .fold(workers as f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&area)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..groups.len() as f64, 0.0..y_max)?;
    let label = |v: f64| {
        at_band_middle(&groups, v).map_or(String::new(), |(w, b)| match w {
            Workload::H => format!("h, {b} BLAS"),
            _ => w.name().to_owned(),
        })
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * groups.len() + 1)
        .x_label_formatter(&|v| label(*v))
        .y_desc("speedup over serial")
        .label_style((FONT, 11))
        .draw()?;
    let ideal = [(0.0, workers as f64), (groups.len() as f64, workers as f64)];
    chart.draw_series(dashed(ideal))?;
    for (i, how) in [How::Threads, How::Processes].into_iter().enumerate() {
        let color = PALETTE[i];
        let rows: Vec<(f64, &ClassicRow)> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, &(w, b))| {
                Some((
                    g as f64 + 0.15 + 0.36 * i as f64,
                    classic_rows::find(&c.rust, w, how, b)?,
                ))
            })
            .collect();
        chart
            .draw_series(
                rows.iter().map(|&(x, r)| {
                    Rectangle::new([(x, 0.0), (x + 0.32, r.speedup)], color.filled())
                }),
            )?
            .label(format!("{workers} {}", how.name()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart.draw_series(rows.iter().filter_map(|&(x, r)| {
            let iv = r.speedup_interval?;
            Some(ErrorBar::new_vertical(
                x + 0.16,
                iv.lo,
                r.speedup,
                iv.hi,
                BLACK.stroke_width(1),
                8,
            ))
        }))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_runs_from_white_to_blue() {
        assert_eq!(heat(0.0, 2.0), RGBColor(247, 251, 255));
        assert_eq!(heat(2.0, 2.0), RGBColor(8, 69, 148));
        assert_eq!(
            heat(9.0, 2.0),
            RGBColor(8, 69, 148),
            "clamped above the maximum"
        );
    }
}
