//! The report's renderings are a pure function of its data, locked byte for byte. Each fixture
//! folder holds a report.json read back into `ReportData`; report.md, report.json, every CSV
//! file and every SVG plot it renders must equal the folder's files, every PNG must have the
//! hash in `png.fnv1a64`, and the files must come in the order of `files.txt`.
//!
//! - `tiny/`: a tiny run of every section (`parlinalg report --quick` with the small sizes of
//!   `report.rs`'s `tiny`, numpy and `mpirun` present, no OpenMP build); its files are the ones
//!   that run wrote.
//! - `tiny_openmp/`: the same data without the classic, numpy and processes sections and with
//!   the OpenMP section set to `ran`, holding the pthreads grid's first size
//!   (`threading` = `openmp`), so that the OpenMP renderings (and grid.csv holding both grids, and the plots'
//!   order) are locked too; its files were rendered from that JSON by the code of the commit
//!   that added this test (`PARLINALG_BLESS=1 cargo test --test render` rewrites every fixture's
//!   expected files: only for a deliberate change).

mod common;

use std::path::{Path, PathBuf};

use parlinalg_cli::report::{self, output, ReportData};

use common::scratch;

/// The fixture folder `name`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The fixture's data, read back from its report.json.
fn data(name: &str) -> ReportData {
    let json = std::fs::read_to_string(fixture(name).join("report.json")).unwrap();
    serde_json::from_str(&json).expect("the fixture's report.json reads back")
}

/// 64-bit FNV-1a: enough to tell one PNG from another without storing it.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Byte-equality of `got` with `want`, naming the first differing line when they differ.
fn assert_same_bytes(name: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let (g, w) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    let line = g
        .lines()
        .zip(w.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("line {}:\n  got:  {a}\n  want: {b}", i + 1));
    panic!(
        "{name} differs from the fixture ({} bytes, want {}); {}",
        got.len(),
        want.len(),
        line.unwrap_or_else(|| "no line differs: a trailing difference".into())
    );
}

/// Renders fixture `name` into a scratch folder and compares (or, with `PARLINALG_BLESS=1`,
/// rewrites the fixture's expected files).
fn check(name: &str) {
    let dir = scratch(&format!("render-{name}"));
    let d = data(name);
    let mut files = output::write_files(&dir, &d).unwrap();
    files.extend(report::write_plots(&dir, &d).unwrap());
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut listing = String::new();
    let mut hashes = String::new();
    for (f, n) in files.iter().zip(&names) {
        listing.push_str(&format!("{n}\n"));
        if n.ends_with(".png") {
            hashes.push_str(&format!(
                "{n} {:016x}\n",
                fnv1a64(&std::fs::read(f).unwrap())
            ));
        }
    }
    let here = fixture(name);
    if std::env::var_os("PARLINALG_BLESS").is_some_and(|v| v == "1") {
        for (f, n) in files.iter().zip(&names) {
            if !n.ends_with(".png") {
                std::fs::copy(f, here.join(n)).unwrap();
            }
        }
        std::fs::write(here.join("files.txt"), &listing).unwrap();
        std::fs::write(here.join("png.fnv1a64"), &hashes).unwrap();
    }
    let want = std::fs::read_to_string(here.join("files.txt")).unwrap();
    assert_same_bytes(
        "files.txt (the files and their order)",
        listing.as_bytes(),
        want.as_bytes(),
    );
    for (f, n) in files.iter().zip(&names) {
        if !n.ends_with(".png") {
            let want = std::fs::read(here.join(n)).unwrap();
            assert_same_bytes(n, &std::fs::read(f).unwrap(), &want);
        }
    }
    let want = std::fs::read_to_string(here.join("png.fnv1a64")).unwrap();
    assert_same_bytes(
        "png.fnv1a64 (the PNGs' hashes)",
        hashes.as_bytes(),
        want.as_bytes(),
    );
    // The Markdown as a function, beside the file written from it.
    let md = std::fs::read_to_string(here.join("report.md")).unwrap();
    assert_same_bytes("markdown()", output::markdown(&d).as_bytes(), md.as_bytes());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tiny_run_renders_byte_identical() {
    check("tiny");
}

#[test]
fn the_openmp_section_renders_byte_identical() {
    check("tiny_openmp");
}

#[test]
fn the_fixtures_hold_what_they_say() {
    let run = data("tiny");
    assert!(run.classic.is_some() && run.versus.is_some() && run.grid.is_some());
    assert!(run.latency.is_some() && run.openmp.is_some() && run.sharing.is_some());
    let openmp = data("tiny_openmp");
    assert!(openmp.grid.is_some() && openmp.latency.is_some());
    let json = std::fs::read_to_string(fixture("tiny_openmp").join("report.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["openmp"]["outcome"], "ran");
    assert_eq!(v["openmp"]["grid"]["threading"], "openmp");
}
