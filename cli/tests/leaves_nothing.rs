//! A report never leaves a mess or loses a run, tested through the built binary: a path that is
//! not UTF-8, SIGTERM while children run, an output folder it cannot write, a size that does not
//! fit in memory, and the budget directory of its processes section.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{parlinalg_command as parlinalg, scratch, text};

/// A grid of one tiny size: a whole run in well under a second.
#[rustfmt::skip]
const TINY_GRID: [&str; 14] = [
    "--only", "grid", "--sizes", "8", "--large", "0", "--max-threads", "2",
    "--sample-seconds", "0.001", "--size-seconds", "0.01", "--rounds", "3",
];

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run the parlinalg binary")
}

fn uid() -> u32 {
    // SAFETY: geteuid only reads the process's user id.
    unsafe { libc::geteuid() }
}

/// The budget directory of the report's processes section (pid `pid`), where the library puts
/// it when /dev/shm exists.
fn group_dir(pid: u32) -> PathBuf {
    Path::new("/dev/shm").join(format!("parlinalg-{}/report-{pid}", uid()))
}

#[test]
fn a_path_that_is_not_utf8_is_used_not_a_panic() {
    let dir = scratch("non-utf8");
    let out_dir = OsStr::from_bytes(b"x\xff");
    let out = run(parlinalg()
        .args(["report", "--no-progress", "--out"])
        .arg(out_dir)
        .args(TINY_GRID)
        .current_dir(&dir));
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
    assert!(dir.join(out_dir).join("report.json").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_output_folder_that_cannot_be_written_is_refused_before_measuring() {
    // /proc exists, so it can be "created", but nobody, root included, can write into it.
    let out = run(parlinalg()
        .args(["report", "--no-progress", "--out", "/proc"])
        .args(TINY_GRID));
    let err = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write into the output folder /proc"),
        "{err}"
    );
    assert!(!stdout.contains("## 2."), "it measured first:\n{stdout}");
}

#[test]
fn a_size_that_does_not_fit_in_memory_is_refused_up_front() {
    // 1 GiB of address space: the grid at n = 8192 needs several.
    let mut cmd = parlinalg();
    cmd.args(["report", "--no-progress", "--out"])
        .arg(scratch("too-large").join("out"))
        .args(["--only", "grid", "--sizes", "8192", "--large", "0"]);
    // SAFETY: setrlimit is async-signal-safe and only lowers this child's own limit.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(&mut cmd);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--sizes 8192 needs"), "{err}");
    assert!(
        err.contains("GiB") && err.contains("bytes) is available (the address-space limit"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("## 2."));
}

#[test]
fn a_run_leaves_no_budget_directory_and_no_rank_files() {
    let dir = scratch("no-mess");
    #[rustfmt::skip]
    let child = parlinalg()
        .args([
            "report", "--quick", "--no-progress", "--only", "processes", "--processes", "1,2",
            "--process-products", "20", "--mpi-ranks", "2",
        ])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    assert!(
        md.contains(&format!("group report-{pid}")) || !md.contains("As an MPI job"),
        "{md}"
    );
    assert!(
        !group_dir(pid).exists(),
        "{} left behind",
        group_dir(pid).display()
    );
    let prefix = format!("parlinalg-mpi-{pid}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The processes whose environment holds `marker` (the report's children carry its budget
/// group), with their command names.
fn marked(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == marker.as_bytes()) {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_owned()));
        }
    }
    found
}

/// The inodes of the slot files in `dir`.
fn inodes(dir: &Path) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.ino())
                .collect()
        })
        .unwrap_or_default()
}

/// Locks in /proc/locks on any of `inodes` (its fields: `1: FLOCK ADVISORY WRITE pid
/// maj:min:inode start end`).
fn locks_on(inodes: &[u64]) -> Vec<String> {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .find(|f| f.matches(':').count() == 2)
                .and_then(|f| f.rsplit(':').next()?.parse::<u64>().ok())
                .is_some_and(|ino| inodes.contains(&ino))
        })
        .map(str::to_owned)
        .collect()
}

/// Kills the report and what its children left if the test fails before its SIGTERM.
struct KillOnDrop(u32, String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (p, _) in marked(&self.1) {
            // SAFETY: kill sends SIGKILL to a child of this test's report.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        // SAFETY: kill sends SIGKILL to this test's report (gone already when it passed).
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

#[test]
fn sigterm_ends_every_child_and_frees_every_slot_within_a_second() {
    let dir = scratch("sigterm");
    #[rustfmt::skip]
    let mut report = parlinalg()
        .args([
            "report", "--quick", "--no-progress", "--only", "processes", "--processes", "2",
            "--process-products", "3000",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = report.id();
    let marker = format!("PARLINALG_BUDGET_GROUP=report-{pid}");
    let _guard = KillOnDrop(pid, marker.clone());
    let started = Instant::now();
    // The rows come in random order, and only some take slots (the budget's; a fixed count
    // of the cores): wait until children run and one of them holds a slot, so that ending
    // them and freeing the slots are both tested. On one core no row takes a slot (a call
    // on one thread needs none): there the children alone are waited for.
    let one_core = std::thread::available_parallelism().map_or(true, |c| c.get() == 1);
    let (children, slots) = loop {
        let found = marked(&marker);
        let slots = inodes(&group_dir(pid));
        if found.len() >= 2 && (one_core || !locks_on(&slots).is_empty()) {
            break (found, slots);
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no child of the report held a slot: {found:?}, {slots:?}"
        );
        assert!(
            report.try_wait().unwrap().is_none(),
            "the report ended first"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    // SAFETY: kill sends SIGTERM to the report this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let signalled = Instant::now();
    let status = report.wait().unwrap();
    let (mut left, mut locked) = (marked(&marker), locks_on(&slots));
    while (!left.is_empty() || !locked.is_empty()) && signalled.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(10));
        (left, locked) = (marked(&marker), locks_on(&slots));
    }
    let mut err = String::new();
    if let Some(mut e) = report.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        left.is_empty(),
        "children {children:?}: still running after 1 s: {left:?}"
    );
    assert!(
        locked.is_empty(),
        "slots still locked after 1 s: {locked:?}"
    );
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status}: {err}");
    assert!(
        !group_dir(pid).exists(),
        "{} left behind",
        group_dir(pid).display()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
