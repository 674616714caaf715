//! The fork rule (issue 15, item 12). pthreads OpenBLAS registers a `pthread_atfork` handler
//! that shuts its thread pool down (`pthread_join` inside `fork()`); while another thread is
//! inside a threaded BLAS call, that join never returns and the parent hangs in `fork()`.
//! `std::process::Command` forks only when asked to run code in the child (`pre_exec`);
//! otherwise it uses `posix_spawn` (`clone(CLONE_VFORK)`), which runs no fork handler.
//!
//! So parlinalg's own process spawning never uses `pre_exec` (checked here over `src/`,
//! `examples/` and the `parlinalg` command's `cli/src/`), and spawning a process while other threads make threaded BLAS calls must
//! finish (checked in a child process under a watchdog, so that a hang fails the test instead
//! of hanging the suite).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::child::TestChild;

const CHILD_VAR: &str = "PARLINALG_TEST_FORK_CHILD";

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn parlinalg_never_forks_with_pre_exec() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("examples"), &mut files);
    rust_files(&root.join("cli/src"), &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("cli/src/report/classic_workers.rs")),
        "the report's process spawning is not scanned: {files:?}"
    );
    // Spelled in two halves so that this file does not match itself if it is ever scanned.
    let needle = ["pre_", "exec"].concat();
    let forks = ["libc::", "fork("].concat();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !code.contains(&needle) && !code.contains(&forks),
                "{}:{}: forks in the process (the parent can hang in OpenBLAS's fork handler): {line}",
                f.display(),
                i + 1
            );
        }
    }
}

/// The child's side: two threads make threaded products while this thread spawns processes
/// (`spawn`) or calls `fork()` itself (`fork`; each forked child exits at once).
#[test]
#[ignore = "run by the harness in a child process (tests/common/child.rs)"]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_VAR) else {
        return;
    };
    parlinalg::threads::set_blas_threads(parlinalg::threads::blas_max_threads().min(2)).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for w in 0..2 {
            let stop = &stop;
            s.spawn(move || {
                let a = parlinalg::ndarray::Array2::from_shape_fn((256, 256), |(i, j)| {
                    ((i * 31 + j * 17 + w) % 13) as f64
                });
                while !stop.load(Ordering::Relaxed) {
                    parlinalg::matmul(&a, &a).unwrap();
                }
            });
        }
        for _ in 0..30 {
            if mode == "fork" {
                // SAFETY: the child only calls `_exit`, which is async-signal-safe; the parent
                // reaps it with `waitpid` on the pid fork returned.
                let pid = unsafe { libc::fork() };
                assert!(pid >= 0, "fork failed");
                if pid == 0 {
                    // SAFETY: `_exit` ends the forked child without running anything else.
                    unsafe { libc::_exit(0) };
                }
                let mut status = 0;
                // SAFETY: `status` is a valid out-pointer; `pid` is our own child.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            } else {
                let status = Command::new("true").status().expect("spawn true");
                assert!(status.success());
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    println!(
        "CHILD-RESULT {}",
        serde_json::json!({ "mode": mode, "done": 30 })
    );
}

/// Runs `child_entry` in `mode` in a child process of the test, and fails if it takes longer
/// than two minutes (a hang fails the test instead of hanging the suite).
fn run_beside_threaded_calls(mode: &str) {
    let out = TestChild::entry()
        .env(CHILD_VAR, mode)
        .timeout(Duration::from_secs(120))
        .output();
    let r = out.assert_success().result();
    assert_eq!(
        r,
        serde_json::json!({ "mode": mode, "done": 30 }),
        "{out:?}"
    );
}

#[test]
fn spawning_beside_threaded_blas_calls_does_not_hang() {
    run_beside_threaded_calls("spawn");
}

/// Issue 15, item 12: `fork()` while other threads are inside threaded BLAS calls hung the
/// parent in OpenBLAS's fork handler (it joins its workers). parlinalg's own fork handler now
/// runs first and waits for the calls in flight, holding new ones back until the fork is done.
#[test]
fn forking_beside_threaded_blas_calls_does_not_hang_the_parent() {
    run_beside_threaded_calls("fork");
}
