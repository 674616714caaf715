//! What every section's Markdown and CSV are made of: a Markdown table, figures in words
//! (seconds, megabytes, a figure with its interval), and a CSV file from serde rows.

use serde::Serialize;

use crate::report::stats::Interval;

/// `1.23 s`, `45.6 ms`, `0.81 ms`.
pub fn fmt_s(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

pub fn mb(bytes: usize) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// A Markdown table: a header row, then the rows; the first column left-aligned, the others
/// right-aligned.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    // An empty first cell (the classic table's corner) reads `| |`.
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | ").trim_start());
    let mut md = line(header);
    md.push_str(&format!(
        "|---|{}\n",
        "---:|".repeat(header.len().saturating_sub(1))
    ));
    for r in rows {
        md.push_str(&line(r));
    }
    md
}

/// Owned strings from string literals (a table's header).
pub fn strings<const N: usize>(v: [&str; N]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// `1.93× (1.88–1.97)`: a speedup or ratio with its interval, when it has one.
pub fn with_interval(x: f64, iv: Option<Interval>, unit: &str) -> String {
    match iv {
        Some(iv) => format!("{x:.2}{unit} ({:.2}–{:.2})", iv.lo, iv.hi),
        None => format!("{x:.2}{unit}"),
    }
}

/// One CSV file from serde rows (the header from the field names), or `None` without rows.
pub fn csv_text<R: Serialize>(rows: impl IntoIterator<Item = R>) -> anyhow::Result<Option<String>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut any = false;
    for r in rows {
        w.serialize(r)?;
        any = true;
    }
    let bytes = w.into_inner()?;
    Ok(any.then(|| String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_well() {
        assert_eq!(fmt_s(12.34), "12.3 s");
        assert_eq!(fmt_s(1.234), "1.23 s");
        assert_eq!(fmt_s(0.1234), "123 ms");
        assert_eq!(fmt_s(0.001234), "1.23 ms");
    }
}
