//! The report's files: report.md (the header, then every section's Markdown), report.json, and
//! the CSV files of the sections that ran, each rendered from [`ReportData`] alone.

use anyhow::Context as _;
use std::path::{Path, PathBuf};

use crate::report::cli::Settings;
use crate::report::data::{ReportData, ReportHeader};
use crate::report::section::SECTIONS;

/// The header section.
pub fn header_md(h: &ReportHeader, settings: &Settings) -> String {
    format!(
        "# parlinalg report: threads, processes or BLAS threads?\n\n\
         Every figure below was measured in this run ({:?} workload, {} cores usable).\n\n\
         {}\n\n```text\n{}```\n\n",
        settings.mode, h.cores, h.kernel, h.thread_report
    )
}

/// The whole report as Markdown: the header, then every section the data holds.
pub fn markdown(d: &ReportData) -> String {
    let mut md = header_md(&d.header, &d.settings);
    for s in &SECTIONS {
        if let Some(text) = s.markdown(d) {
            md.push_str(&text);
        }
    }
    md
}

/// The CSV files: (file name, contents), one per table that ran, in section order; rows that two
/// sections give to one file (grid.csv: the pthreads grid, then OpenMP's) share its header.
///
/// # Errors
/// A row the CSV writer refuses, as text.
pub fn csv_files(d: &ReportData) -> anyhow::Result<Vec<(String, String)>> {
    let mut files: Vec<(String, String)> = Vec::new();
    for s in &SECTIONS {
        for (name, text) in s.csv_files(d)? {
            match files.iter_mut().find(|(n, _)| *n == name) {
                Some((_, earlier)) => {
                    // The same rows under the same header: append all but the header line.
                    let rows = text.split_once('\n').map_or("", |(_, rows)| rows);
                    earlier.push_str(rows);
                }
                None => files.push((name, text)),
            }
        }
    }
    Ok(files)
}

/// Writes report.md, report.json and the CSV files into `dir`; returns the paths.
///
/// # Errors
/// I/O errors, as text.
pub fn write_files(dir: &Path, d: &ReportData) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |name: &str, contents: &str| -> anyhow::Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, contents).with_context(|| format!("{}", p.display()))?;
        written.push(p);
        Ok(())
    };
    put("report.md", &markdown(d))?;
    put("report.json", &serde_json::to_string_pretty(d)?)?;
    for (name, contents) in csv_files(d)? {
        put(&name, &contents)?;
    }
    Ok(written)
}
