//! The layers import one way: the operations (BLAS facade, LAPACK, elementwise, reductions)
//! sit on the thread layer, which sits on the OpenBLAS layer. Checked over the source: every
//! `crate::` path in code (not in comments) of `src/openblas/` and `src/threads/` must name a
//! layer below it, and neither layer may name ndarray.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The first path segment after each `crate::` in the code of `file` (comments removed), with
/// its line number; `{` for a grouped import (`use crate::{Error, Result}`).
fn crate_paths(file: &Path) -> Vec<(usize, String, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let segment: String = if rest.starts_with('{') {
                "{".into()
            } else {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            };
            found.push((i + 1, segment, line.trim().to_owned()));
        }
    }
    found
}

fn check_layer(dir: &str, allowed: &[&str]) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let files = rust_files(&root);
    assert!(!files.is_empty(), "no sources in {}", root.display());
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !code.contains("ndarray"),
                "{}:{}: the {dir} layer names ndarray: {line}",
                f.display(),
                i + 1
            );
        }
        for (line_no, segment, line) in crate_paths(f) {
            checked += 1;
            let grouped_ok = segment == "{"
                && line
                    .split_once("crate::{")
                    .map(|(_, items)| items.split('}').next().unwrap_or(""))
                    .is_some_and(|items| {
                        items
                            .split(',')
                            .map(str::trim)
                            .all(|item| allowed.iter().any(|a| item.starts_with(a)))
                    });
            assert!(
                grouped_ok || allowed.contains(&segment.as_str()),
                "{}:{line_no}: the {dir} layer reaches up to crate::{segment}: {line}",
                f.display()
            );
        }
    }
    checked
}

#[test]
fn the_openblas_layer_knows_neither_threads_nor_operations() {
    let n = check_layer("openblas", &["openblas", "Error", "Result", "error"]);
    assert!(n > 0, "no crate:: path checked");
}

#[test]
fn the_thread_layer_sits_on_openblas_only() {
    let n = check_layer(
        "threads",
        &["openblas", "threads", "Error", "Result", "error"],
    );
    assert!(n > 5, "only {n} crate:: paths checked");
}
