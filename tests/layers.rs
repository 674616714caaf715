//! The layers import one way: the operations (BLAS facade, LAPACK, elementwise, reductions)
//! sit on the thread layer, which sits on the OpenBLAS layer, and all of them on `env.rs` (the
//! variables) and `error.rs`. Checked over the source: every `crate::` path in code (not in
//! comments) of `src/openblas/` and `src/threads/` must name a layer below it, and neither
//! layer may name ndarray; no file of `src/` or `cli/src/` is in an import circle; only
//! `src/env.rs` reads or writes the process environment.

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
    let n = check_layer("openblas", &["openblas", "env", "Error", "Result", "error"]);
    assert!(n > 0, "no crate:: path checked");
}

#[test]
fn the_thread_layer_sits_on_openblas_only() {
    let n = check_layer(
        "threads",
        &["openblas", "threads", "env", "Error", "Result", "error"],
    );
    assert!(n > 5, "only {n} crate:: paths checked");
}

/// The files of the crate rooted at `src` and the files each one uses: file A uses file B when
/// A names a path (`use crate::x::y`, `super::y`, `self::y`, an inline `crate::x::y::f`, or an
/// item of a braced group) that resolves to B's module. Test modules (from a `#[cfg(test)]`
/// line followed by `mod`) are left out; doc links count, as they do for a reader.
fn use_graph(src: &Path) -> Vec<(PathBuf, Vec<usize>)> {
    let files = rust_files(src);
    let module = |p: &Path| -> Vec<String> {
        let rel = p.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        parts
    };
    let modules: Vec<Vec<String>> = files.iter().map(|f| module(f)).collect();
    let mut graph = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let end = (0..lines.len())
            .find(|&l| {
                lines[l].trim() == "#[cfg(test)]"
                    && lines[l + 1..]
                        .iter()
                        .find(|n| !n.trim().is_empty())
                        .is_some_and(|n| n.trim_start().starts_with("mod "))
            })
            .unwrap_or(lines.len());
        let body = lines[..end].join("\n");
        let me = &modules[i];
        let base_of = |head: &str| -> Vec<String> {
            match head {
                "crate" => Vec::new(),
                "super" => me[..me.len().saturating_sub(1)].to_vec(),
                _ => me.clone(),
            }
        };
        let mut uses = Vec::new();
        let add = |full: Vec<String>, prefix_len: usize, uses: &mut Vec<usize>| {
            let Some(t) = (1..=full.len()).rev().find_map(|k| {
                modules
                    .iter()
                    .position(|m| m[..] == full[..k])
                    .map(|t| (t, k))
            }) else {
                return;
            };
            if t.0 != i && t.1 > prefix_len && !uses.contains(&t.0) {
                uses.push(t.0);
            }
        };
        let bytes = body.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        for head in ["crate", "super", "self"] {
            let mut from = 0;
            while let Some(at) = body[from..].find(head) {
                let start = from + at;
                from = start + head.len();
                if start > 0 && word(bytes[start - 1]) {
                    continue;
                }
                // `head::a::b` (then maybe `::{...}`)
                let mut rest = &body[from..];
                let mut path = base_of(head);
                let mut segments = 0;
                while let Some(r) = rest.strip_prefix("::") {
                    let seg: String = r
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if seg.is_empty() {
                        rest = r;
                        break;
                    }
                    path.push(seg.clone());
                    segments += 1;
                    rest = &r[seg.len()..];
                }
                if segments > 0 {
                    add(path.clone(), 0, &mut uses);
                }
                if rest.starts_with('{') {
                    // A braced group: each item resolves from the group's prefix.
                    let group_end = rest.find("};").map_or(rest.len(), |e| e + 1);
                    let items = &rest[1..group_end.saturating_sub(1)];
                    let prefix = path.len();
                    for item in
                        items.split(|c: char| c == ',' || c.is_whitespace() || c == '{' || c == '}')
                    {
                        let parts: Vec<String> = item
                            .split("::")
                            .filter(|s| !s.is_empty() && *s != "self")
                            .map(str::to_owned)
                            .collect();
                        if parts.is_empty() {
                            continue;
                        }
                        let mut full = path.clone();
                        full.extend(parts);
                        add(full, prefix, &mut uses);
                    }
                }
            }
        }
        graph.push((file.clone(), uses));
    }
    graph
}

/// Every set of two or more files that use one another, directly or through others.
fn circles(graph: &[(PathBuf, Vec<usize>)]) -> Vec<Vec<PathBuf>> {
    let n = graph.len();
    let reach = |from: usize| -> Vec<bool> {
        let mut seen = vec![false; n];
        let mut stack = vec![from];
        while let Some(v) = stack.pop() {
            for &w in &graph[v].1 {
                if !seen[w] {
                    seen[w] = true;
                    stack.push(w);
                }
            }
        }
        seen
    };
    let reachable: Vec<Vec<bool>> = (0..n).map(reach).collect();
    let mut done = vec![false; n];
    let mut out = Vec::new();
    for v in 0..n {
        if done[v] || !reachable[v][v] {
            continue;
        }
        let members: Vec<usize> = (0..n)
            .filter(|&w| reachable[v][w] && reachable[w][v])
            .collect();
        for &w in &members {
            done[w] = true;
        }
        out.push(members.iter().map(|&w| graph[w].0.clone()).collect());
    }
    out
}

#[test]
fn no_file_of_the_library_or_the_command_is_in_an_import_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in [root.join("src"), root.join("cli/src")] {
        let graph = use_graph(&src);
        let edges: usize = graph.iter().map(|(_, u)| u.len()).sum();
        assert!(edges > 20, "only {edges} uses found in {}", src.display());
        let found = circles(&graph);
        assert!(
            found.is_empty(),
            "import circles in {}: {found:#?}",
            src.display()
        );
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let dir = std::env::temp_dir().join(format!("parlinalg-layers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("m")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod m;\n").unwrap();
    std::fs::write(dir.join("m/mod.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(dir.join("m/a.rs"), "use super::b::B;\npub struct A;\n").unwrap();
    std::fs::write(
        dir.join("m/b.rs"),
        "use crate::m::{a::A};\npub struct B;\n#[cfg(test)]\nmod tests {\n    use super::super::c;\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("m/c.rs"), "use super::a::A;\n").unwrap();
    let found = circles(&use_graph(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let mut names: Vec<String> = found[0]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["a.rs", "b.rs"],
        "c.rs is only used from a test module"
    );
}

#[test]
fn only_the_env_module_touches_the_process_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for f in rust_files(&root) {
        if f.ends_with("env.rs") && f.parent() == Some(root.as_path()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let body = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for (i, line) in body.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["env::var", "env::set_var", "env::remove_var", "env::vars"]
                .iter()
                .any(|call| code.contains(&format!("std::{call}")))
            {
                offenders.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
