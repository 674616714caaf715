//! The machine-wide budget with real processes: children of this test binary make threadable
//! products at once while the parent samples who holds which slot (from `/proc/locks`, which
//! takes no lock); `kill -9` of a holder; disjoint masks; broken and foreign files in the
//! budget directory; the variables' precedence; and one real `mpirun -np 2` job.
//!
//! Each test uses its own budget group, so tests (and other programs on the machine) do not
//! share slots with each other.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::child::{RunningChild, TestChild};
use serde_json::Value;

const MODE_VAR: &str = "PARLINALG_TEST_BUDGET_CHILD";
const SECS_VAR: &str = "PARLINALG_TEST_BUDGET_SECS";

/// In a child: `products` multiplies 256×256 matrices for the given seconds, checking after
/// each that OpenBLAS runs no more threads than the slots the process holds (at least 1), then
/// prints its report; `report` makes one threadable product and prints the report.
#[test]
#[ignore = "run by the harness in a child process (tests/common/child.rs)"]
fn child_entry() {
    let Ok(mode) = std::env::var(MODE_VAR) else {
        return;
    };
    let a = parlinalg::ndarray::Array2::<f64>::from_elem((256, 256), 0.5);
    let first = parlinalg::matmul(&a, &a)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let mut calls = 0u64;
    let mut over = 0u64;
    let mut max_threads = parlinalg::threads::blas_threads();
    if mode == "products" && first.is_ok() {
        let secs: f64 = std::env::var(SECS_VAR).unwrap().parse().unwrap();
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end {
            calls += 1;
            if calls.is_multiple_of(64) {
                if let Some((threads, held)) = sample_after_call(&a) {
                    max_threads = max_threads.max(threads);
                    if threads > held.max(1) {
                        over += 1;
                    }
                }
                continue;
            }
            parlinalg::matmul(&a, &a).unwrap();
            max_threads = max_threads.max(parlinalg::threads::blas_threads());
        }
    }
    // The slots held right after a call, for the tests that compare them with the cores.
    let held_after_call = first
        .is_ok()
        .then(|| {
            (0..200)
                .find_map(|_| sample_after_call(&a))
                .map(|(_, held)| held)
        })
        .flatten();
    let mut forked = serde_json::Value::Null;
    if mode == "fork" && first.is_ok() {
        forked = fork_while_holding(&a);
    }
    let out = match parlinalg::threads::report() {
        // The parts the tests read, in one short line (MPI ranks share one stdout: a line
        // longer than a pipe's atomic write could interleave with another rank's).
        Ok(r) => serde_json::json!({
            "ok": true,
            "report": {
                "cores": r.cores, "budget": r.budget, "warnings": r.warnings,
                "blas_threads_now": r.blas_threads_now,
            },
            "first": first.err(), "calls": calls,
            "over": over, "max_threads": max_threads, "pid": std::process::id(),
            "held_after_call": held_after_call,
            "forked": forked,
        }),
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string(), "first": first.err() }),
    };
    println!("CHILD-RESULT {out}");
}

/// Shorter than the budget's idle release (10 ms after the last call ends): a report taken
/// within this of the end of the call before it shows the slots that call ran on. Under load
/// a thread can be descheduled for longer, and the release thread then rightly gives the
/// slots back before the report looks: such a sample says nothing and is not taken.
const SAMPLE_WINDOW: Duration = Duration::from_millis(8);

/// `(BLAS threads, slots held)` right after a threadable call, or `None` when the report did
/// not land within [`SAMPLE_WINDOW`] of the call's end.
fn sample_after_call(a: &parlinalg::ndarray::Array2<f64>) -> Option<(usize, usize)> {
    parlinalg::matmul(a, a).unwrap();
    let end = Instant::now();
    let threads = parlinalg::threads::blas_threads();
    let held = parlinalg::threads::report().unwrap().budget.held;
    (end.elapsed() < SAMPLE_WINDOW).then_some((threads, held))
}

/// In a child that holds every slot (a thread keeps making products): forks twice; the first
/// forked child must hold nothing (it closed its copies of the descriptors without unlocking),
/// and after it exits this process must still hold its slots; the second makes a call, which
/// must run no more threads than the slots it holds.
fn fork_while_holding(a: &parlinalg::ndarray::Array2<f64>) -> Value {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                parlinalg::matmul(&a, &a).unwrap();
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let dir = parlinalg::threads::report().unwrap().budget.dir.unwrap();
    let before = parlinalg::threads::report().unwrap().budget.held;
    // First child: holds nothing of what it inherited, makes no call (a call that finds no
    // slot free says it wants one, and the parent then rightly gives its extra slots back), and
    // its exit, which closes its copies of the descriptors, must leave the parent's locks held.
    // SAFETY: fork in a test child; the forked child only calls parlinalg and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let held_in_child = parlinalg::threads::report().unwrap().budget.held;
        // SAFETY: ends the forked child without running the parent's destructors.
        unsafe { libc::_exit(if held_in_child == 0 { 0 } else { 10 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked just above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    // The slots this process believes it holds against the locks the kernel shows for it: a
    // child whose exit released the parent's locks leaves the kernel showing fewer, while the
    // parent still believes it holds them. (A parent descheduled for longer than the idle
    // release under load gives its slots back on purpose, and then believes so too: retried.)
    let (mut own, mut after) = (0, 0);
    for _ in 0..50 {
        own = parlinalg::threads::report().unwrap().budget.held;
        after = holders(&dir)
            .0
            .get(&std::process::id())
            .copied()
            .unwrap_or(0);
        if after >= own {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Second child: a call runs no more BLAS threads than the slots it holds (at least 1).
    // SAFETY: as above.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        parlinalg::matmul(a, a).unwrap();
        let threads = parlinalg::threads::blas_threads();
        let held = parlinalg::threads::report().unwrap().budget.held;
        // SAFETY: as above.
        unsafe { libc::_exit(if threads <= held.max(1) { 0 } else { 20 }) };
    }
    let mut call_status = 0;
    // SAFETY: waits for the child forked just above.
    unsafe { libc::waitpid(pid, &mut call_status, 0) };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    serde_json::json!({
        "before": before, "after": after, "own": own,
        "child_exit": libc::WEXITSTATUS(status), "child_exited": libc::WIFEXITED(status),
        "call_child_exit": libc::WEXITSTATUS(call_status),
    })
}

/// This binary as a child in `mode`, with a clean thread environment plus `vars`, optionally
/// under a wrapper command (`taskset -c 0`, `mpirun ...`); a child that has not finished a
/// minute after it started is killed, and the test fails (a hang).
fn child(wrapper: &[&str], mode: &str, vars: &[(&str, &str)]) -> TestChild {
    let cleared: Vec<&str> = common::THREAD_VARS
        .iter()
        .chain(parlinalg::threads::LOCAL_SIZE_VARS.iter())
        .chain(parlinalg::threads::CPUS_PER_TASK_VARS.iter())
        .chain(["PARLINALG_BUDGET", "PARLINALG_BUDGET_GROUP", "SLURM_NODEID"].iter())
        .copied()
        .collect();
    TestChild::entry()
        .wrapper(wrapper)
        .remove(&cleared)
        .env(MODE_VAR, mode)
        .envs(vars.iter().copied())
        .timeout(Duration::from_secs(60))
}

/// Runs a child to its end; its result.
fn run(wrapper: &[&str], mode: &str, vars: &[(&str, &str)]) -> Value {
    child(wrapper, mode, vars).result()
}

/// Removes a test group's directory when the test ends (also when it fails).
struct Clean(PathBuf);

impl Drop for Clean {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn group(name: &str) -> String {
    format!("test-{name}-{}", std::process::id())
}

/// `mkdir -p` with mode 0700 (what the budget itself creates; a 0755 directory turns it off).
fn mkdir700(dir: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .unwrap();
}

/// The raw core count (affinity mask, quota, launcher): what the slot files stand for and
/// what the launcher rules divide.
fn cores() -> usize {
    parlinalg::threads::Cores::detect().count
}

/// The most slots one process holds and the most BLAS threads it runs, under `auto` or an
/// explicit count: the cores capped at the loaded OpenBLAS's compiled maximum (Debian's: 64),
/// as the budget caps each process (`src/threads/control.rs`). Below [`cores`] on machines
/// with more CPUs than that maximum.
fn usable() -> usize {
    cores().min(parlinalg::threads::blas_max_threads())
}

/// The CPUs of this process's affinity mask (`Cpus_allowed_list` of `/proc/self/status`, which
/// has no size limit), in order; `None` when it cannot be read.
fn mask_cpus() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(lo.parse::<usize>().ok()?..=hi.parse::<usize>().ok()?);
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// The slot file of the `i`-th CPU of this process's mask (`cpu<id>`): a container's mask
/// need not start at CPU 0 (`docker --cpuset-cpus 4-7`), and the budget uses only its own.
fn mask_slot(i: usize) -> String {
    let cpu = mask_cpus().and_then(|m| m.get(i).copied()).unwrap_or(i);
    format!("cpu{cpu}")
}

/// A wrapper that confines children to the first [`usable`] CPUs of this process's mask, for
/// the tests that need one process to hold every slot: where the mask holds more CPUs than
/// OpenBLAS's maximum, one process stops at [`usable`] slots and the others stay free. Empty
/// where nothing needs confining; `None`, after printing why the test is skipped, where it
/// does but cannot be done.
fn confined_to_usable() -> Option<Vec<String>> {
    let mask = mask_cpus();
    let slots = mask.as_ref().map_or(cores(), Vec::len);
    if slots <= usable() {
        return Some(Vec::new());
    }
    let Some(mask) = mask.filter(|_| have("taskset")) else {
        println!(
            "SKIPPED: one process holds at most {} of the {slots} slots, and taskset or the \
             affinity mask, needed to confine the children to that many CPUs, is missing",
            usable()
        );
        return None;
    };
    let list: Vec<String> = mask[..usable()].iter().map(usize::to_string).collect();
    Some(vec!["taskset".into(), "-c".into(), list.join(",")])
}

/// The budget directory of `group` (as the children compute it).
fn group_dir(group: &str) -> PathBuf {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
    };
    base.join(format!("parlinalg-{uid}")).join(group)
}

/// `/proc/locks` in reads as large as the kernel gives. The file is made a record per `read`
/// call when the reader asks for little (as `read_to_string`'s first reads do), so locks taken
/// and released between the calls would show twice; one large read is made at once.
fn proc_locks() -> String {
    use std::io::Read as _;
    let mut text = Vec::new();
    let Ok(mut f) = std::fs::File::open("/proc/locks") else {
        return String::new();
    };
    let mut buf = vec![0u8; 1 << 20];
    while let Ok(n @ 1..) = f.read(&mut buf) {
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Who holds which slot of `dir` now: pid → slots, read from `/proc/locks` (takes no lock).
/// A lock counts once per (process, file), on `dir`'s own device: the same inode number on
/// another file system is another file, and a process cannot hold one file twice.
fn holders(dir: &Path) -> (HashMap<u32, usize>, usize) {
    let mut inode_kind = HashMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(m) = e.metadata() {
                inode_kind.insert(m.ino(), e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let dev = std::fs::metadata(dir).map(|m| m.dev()).unwrap_or(0);
    let device = format!("{:02x}:{:02x}", libc::major(dev), libc::minor(dev));
    let mut seen = std::collections::HashSet::new();
    let (mut held, mut wanting) = (HashMap::new(), 0);
    for line in proc_locks().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 24408 00:1b:6 0 EOF"
        if f.len() < 6 || f[1] != "FLOCK" || f[1..].contains(&"->") {
            continue;
        }
        let Ok(pid) = f[4].parse::<u32>() else {
            continue;
        };
        let Some((lock_device, ino)) = f[5].rsplit_once(':') else {
            continue;
        };
        let Ok(ino) = ino.parse::<u64>() else {
            continue;
        };
        let Some(name) = inode_kind.get(&ino) else {
            continue;
        };
        if lock_device != device || !seen.insert((pid, ino)) {
            continue;
        }
        if name.starts_with("cpu") && f[3] == "WRITE" {
            *held.entry(pid).or_insert(0) += 1;
        } else if name == "want" && f[3] == "READ" {
            wanting += 1;
        }
    }
    (held, wanting)
}

#[test]
fn concurrent_processes_never_hold_more_slots_than_cores_and_share_them() {
    let g = group("concurrent");
    let _clean = Clean(group_dir(&g));
    let dir = group_dir(&g);
    let kids: Vec<RunningChild> = (0..4)
        .map(|_| {
            child(
                &[],
                "products",
                &[("PARLINALG_BUDGET_GROUP", &g), (SECS_VAR, "2.5")],
            )
            .spawn()
        })
        .collect();
    let pids: Vec<u32> = kids.iter().map(RunningChild::id).collect();
    let start = Instant::now();
    let (mut samples, mut unfair, mut max_total) = (0, 0, 0);
    while start.elapsed() < Duration::from_secs(2) {
        let (held, wanting) = holders(&dir);
        let total: usize = held.values().sum();
        max_total = max_total.max(total);
        assert!(
            total <= cores(),
            "{total} slots held on {} cores: {held:?}",
            cores()
        );
        // After a warm-up: a process keeping an extra slot while another wants one is a
        // transient (until its next check), not a state.
        if start.elapsed() > Duration::from_millis(300) {
            samples += 1;
            if wanting > 0 && held.values().any(|&n| n > 1) {
                unfair += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out: Vec<Value> = kids.into_iter().map(RunningChild::result).collect();
    for r in &out {
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["calls"].as_u64().unwrap() > 10, "{r}");
        assert_eq!(r["over"], 0, "more BLAS threads than slots held: {r}");
        assert!(pids.contains(&(r["pid"].as_u64().unwrap() as u32)));
    }
    if usable() >= 2 {
        assert!(max_total >= 1, "no slot was ever held");
        assert!(
            unfair * 5 <= samples,
            "{unfair} of {samples} samples had a process keep extra slots while another wanted"
        );
    }
}

#[test]
fn kill_9_of_a_holder_returns_its_slots_at_once() {
    if usable() < 2 {
        println!("SKIPPED: one usable core, the budget is never used");
        return;
    }
    let g = group("kill");
    let _clean = Clean(group_dir(&g));
    let dir = group_dir(&g);
    let kid = child(
        &[],
        "products",
        &[("PARLINALG_BUDGET_GROUP", &g), (SECS_VAR, "30")],
    )
    .spawn();
    let pid = kid.id();
    let start = Instant::now();
    loop {
        let (held, _) = holders(&dir);
        if held.get(&pid).copied().unwrap_or(0) == usable() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the child never held every slot: {held:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    kid.kill(); // SIGKILL
    let (held, wanting) = holders(&dir);
    assert!(
        held.is_empty() && wanting == 0,
        "after kill -9: {held:?}, {wanting} wanting"
    );
    // And a new process takes them straight away.
    let r = run(&[], "report", &[("PARLINALG_BUDGET_GROUP", &g)]);
    assert_eq!(r["held_after_call"], usable(), "{r}");
}

#[test]
fn a_stopped_holder_does_not_keep_its_cores_from_others() {
    // SIGSTOP (Ctrl-Z, a debugger) leaves a process's locks in place; the cores they stand
    // for are idle. Another process runs on them, and stops doing so once the holder runs.
    if usable() < 2 {
        println!("SKIPPED: one usable core, the budget is never used");
        return;
    }
    // Every slot held by the stopped holder, so that the other must borrow.
    let Some(wrap) = confined_to_usable() else {
        return;
    };
    let wrap: Vec<&str> = wrap.iter().map(String::as_str).collect();
    let g = group("stopped");
    let _clean = Clean(group_dir(&g));
    let dir = group_dir(&g);
    let vars = [("PARLINALG_BUDGET_GROUP", g.as_str()), (SECS_VAR, "1.5")];
    let holder = child(
        &wrap,
        "products",
        &[("PARLINALG_BUDGET_GROUP", &g), (SECS_VAR, "60")],
    )
    .spawn();
    let pid = holder.id();
    // A failed assertion must not leave a stopped child behind, holding the group's slots.
    struct KillIfPanicking(u32);
    impl Drop for KillIfPanicking {
        fn drop(&mut self) {
            if std::thread::panicking() {
                // SAFETY: SIGKILL to our own child, not yet reaped (the test failed before
                // `holder.kill()`).
                unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
            }
        }
    }
    let _kill = KillIfPanicking(pid);
    let signal = |sig| {
        // SAFETY: kill sends a signal to our own child, which is not yet reaped.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
    };
    let held_by_holder = || holders(&dir).0.get(&pid).copied().unwrap_or(0);
    // Stopped while it holds slots. Under load the holder may be kept off the CPU long enough
    // to give its slots back just before the stop (its idle release): then again.
    let start = Instant::now();
    let held_at_stop = loop {
        while held_by_holder() < usable() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the holder never held every slot: {:?}",
                holders(&dir)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(libc::SIGSTOP);
        // A stopped process's locks do not change: read them once it is stopped.
        std::thread::sleep(Duration::from_millis(20));
        match held_by_holder() {
            0 => signal(libc::SIGCONT),
            held => break held,
        }
    };
    let stopped = run(&wrap, "products", &vars);
    assert_eq!(
        stopped["max_threads"],
        usable(),
        "beside a stopped holder of {held_at_stop} slots: {stopped}"
    );
    assert_eq!(
        held_by_holder(),
        held_at_stop,
        "the stopped holder's locks stay (nothing takes a flock from a process)"
    );
    assert!(
        stopped["over"].as_u64().unwrap() > 0,
        "it ran on cores whose slots it did not hold (borrowed): {stopped}"
    );
    signal(libc::SIGCONT);
    // Once the holder runs, nothing is borrowed: every thread stands for a slot held. (It
    // may still get every core: a holder kept off the CPU by the load around it for the idle
    // time gives its slots back, by design.)
    let running = run(&wrap, "products", &vars);
    assert_eq!(
        running["over"], 0,
        "beside the same holder running again, it ran more threads than slots: {running}"
    );
    holder.kill();
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn disjoint_affinity_masks_do_not_block_each_other() {
    // Two processes each on half of the CPUs: each takes all of its half, whatever the other
    // holds. A mask of one CPU never uses the budget, so this needs 4 CPUs.
    // The halves of this process's own mask (a container's need not start at CPU 0).
    let mask = mask_cpus().unwrap_or_default();
    let online = mask.len();
    if !have("taskset") || online < 4 || cores() < 4 {
        println!(
            "SKIPPED: needs taskset and 4 CPUs (have taskset: {}, {online} CPUs in the mask); \
             the slot choice by mask is also checked in-process (src/threads/budget.rs)",
            have("taskset")
        );
        return;
    }
    let g = group("disjoint");
    let _clean = Clean(group_dir(&g));
    let half = online / 2;
    let list = |cpus: &[usize]| {
        cpus.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let low = list(&mask[..half]);
    let high = list(&mask[half..2 * half]);
    let vars = [("PARLINALG_BUDGET_GROUP", g.as_str()), (SECS_VAR, "1.5")];
    let a = child(&["taskset", "-c", &low], "products", &vars).spawn();
    let b = child(&["taskset", "-c", &high], "products", &vars).spawn();
    // Each takes its half, up to OpenBLAS's maximum (above 128 CPUs a half holds more).
    let each = half.min(parlinalg::threads::blas_max_threads());
    for r in [a.result(), b.result()] {
        assert_eq!(r["max_threads"], each, "{r}");
    }
}

/// A `products` child whose budget turned off: the calls ran, the report says why (`why` in
/// its reason) and warns, and `auto` gave a lone caller every core, never one thread.
fn assert_budget_off(r: &Value, why: &str) {
    assert_eq!(r["ok"], true, "{r}");
    let b = &r["report"]["budget"];
    assert_eq!(b["enabled"], false, "{b}");
    assert!(b["why"].as_str().unwrap().contains(why), "{b}");
    assert!(
        r["report"]["warnings"]
            .to_string()
            .contains("budget_unavailable"),
        "{r}"
    );
    assert_eq!(
        r["max_threads"].as_u64().unwrap() as usize,
        usable(),
        "no budget: auto's own rule: {r}"
    );
}

#[test]
fn broken_or_foreign_files_are_ignored_or_turn_the_budget_off_never_a_hang() {
    if usable() < 2 {
        println!("SKIPPED: one usable core, the budget is never used");
        return;
    }
    let g = group("broken");
    let _clean = Clean(group_dir(&g));
    let dir = group_dir(&g);
    mkdir700(&dir);
    // The mask's first CPU's slot: a directory; its second's: a symlink; want: a FIFO; others
    // untouched.
    let (first, second) = (mask_slot(0), mask_slot(1));
    mkdir700(&dir.join(&first));
    std::os::unix::fs::symlink("/etc/hostname", dir.join(&second)).unwrap();
    let fifo = std::ffi::CString::new(dir.join("want").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let r = run(
        &[],
        "products",
        &[("PARLINALG_BUDGET_GROUP", &g), (SECS_VAR, "0.3")],
    );
    assert_eq!(r["ok"], true, "{r}");
    let b = &r["report"]["budget"];
    let ignored = b["ignored"].to_string();
    for name in [first.as_str(), second.as_str(), "want"] {
        assert!(ignored.contains(name), "{name} not ignored: {b}");
    }
    // The slots left, up to what one process holds.
    assert_eq!(
        r["held_after_call"].as_u64().unwrap() as usize,
        cores().saturating_sub(2).min(usable()),
        "{r}"
    );
    let warnings = r["report"]["warnings"].to_string();
    if cores() > 2 {
        // Partly usable: reported with what it costs.
        let w = r["report"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["kind"] == "budget_slots_ignored")
            .unwrap_or_else(|| panic!("no budget_slots_ignored warning: {r}"));
        assert_eq!(w["usable"], cores() - 2, "{r}");
    } else {
        // Both slots of 2 cores broken: no usable slot, so the budget is off (next block).
        assert!(warnings.contains("budget_unavailable"), "{r}");
    }

    // No usable slot at all (every CPU's slot file is a directory): the budget turns off and
    // says why, and a lone process gets every core from auto's own rule instead of one thread
    // for its whole life.
    let g = group("none-usable");
    let _clean = Clean(group_dir(&g));
    let dir = group_dir(&g);
    mkdir700(&dir);
    // SAFETY: sysconf only reads a system value.
    let configured = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.max(1) as usize;
    for cpu in 0..configured.max(cores()) {
        mkdir700(&dir.join(format!("cpu{cpu}")));
    }
    let r = run(
        &[],
        "products",
        &[("PARLINALG_BUDGET_GROUP", &g), (SECS_VAR, "0.3")],
    );
    assert_budget_off(&r, "slot files can be used");
    assert!(
        r["report"]["budget"]["unavailable"]
            .as_str()
            .unwrap()
            .contains(&mask_slot(0)),
        "the reason names the files: {r}"
    );

    // As root: a slot file owned by another user is ignored too.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let g = group("foreign");
        let _clean = Clean(group_dir(&g));
        let dir = group_dir(&g);
        mkdir700(&dir);
        let f = dir.join(mask_slot(0));
        std::fs::write(&f, b"").unwrap();
        std::os::unix::fs::chown(&f, Some(12345), Some(12345)).unwrap();
        let r = run(&[], "report", &[("PARLINALG_BUDGET_GROUP", &g)]);
        let b = &r["report"]["budget"];
        assert!(
            b["ignored"].to_string().contains("owned by uid 12345"),
            "{b}"
        );
    }

    // A group directory others may enter: the budget is off, said, and the call still runs.
    let g = group("mode");
    let _clean = Clean(group_dir(&g));
    let dir = group_dir(&g);
    mkdir700(&dir);
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = run(
        &[],
        "products",
        &[("PARLINALG_BUDGET_GROUP", &g), (SECS_VAR, "0.2")],
    );
    assert_budget_off(&r, "lets other users in");

    // The group directory is a symlink to another directory: refused (O_NOFOLLOW).
    let g = group("link");
    let _clean = Clean(group_dir(&g));
    let target = group_dir(&group("link-target"));
    let _clean_target = Clean(target.clone());
    mkdir700(&target);
    std::os::unix::fs::symlink(&target, group_dir(&g)).unwrap();
    let r = run(&[], "report", &[("PARLINALG_BUDGET_GROUP", &g)]);
    assert_eq!(r["report"]["budget"]["enabled"], false, "{r}");
}

#[test]
fn an_explicit_count_shows_other_processes_the_cores_it_uses() {
    if usable() < 2 {
        println!("SKIPPED: one usable core, the budget is never used");
        return;
    }
    // A's explicit count covers every slot, so that `auto` beside it finds none free.
    let Some(wrap) = confined_to_usable() else {
        return;
    };
    let wrap: Vec<&str> = wrap.iter().map(String::as_str).collect();
    let g = group("explicit");
    let _clean = Clean(group_dir(&g));
    let dir = group_dir(&g);
    // A: every usable core by an explicit count (OpenBLAS refuses more), for a while.
    let all = usable().to_string();
    let a = child(
        &wrap,
        "products",
        &[
            ("PARLINALG_BLAS_THREADS", &all),
            ("PARLINALG_BUDGET_GROUP", &g),
            (SECS_VAR, "3"),
        ],
    )
    .spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while holders(&dir).0.values().sum::<usize>() == 0 {
        assert!(
            Instant::now() < deadline,
            "the explicit count never took a slot"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // B: `auto` beside it sees cores in use and does not run every core on top of them.
    let b = run(
        &wrap,
        "products",
        &[("PARLINALG_BUDGET_GROUP", &g), (SECS_VAR, "0.5")],
    );
    let a = a.result();
    assert_eq!(
        a["max_threads"].as_u64().unwrap() as usize,
        usable(),
        "A runs as asked: {a}"
    );
    assert!(
        (b["max_threads"].as_u64().unwrap() as usize) < usable(),
        "auto ran every core beside an explicit count of {}: {b}",
        usable()
    );
}

#[test]
fn variables_precedence_in_children() {
    // Off: said, with the variable; nothing held.
    let g = group("vars");
    let _clean = Clean(group_dir(&g));
    let r = run(
        &[],
        "report",
        &[("PARLINALG_BUDGET", "off"), ("PARLINALG_BUDGET_GROUP", &g)],
    );
    let b = &r["report"]["budget"];
    assert_eq!(b["enabled"], false, "{b}");
    assert!(
        b["why"].as_str().unwrap().contains("PARLINALG_BUDGET"),
        "{b}"
    );
    assert_eq!(b["held"], 0);
    // Junk: a typed error from every operation.
    for (k, v) in [
        ("PARLINALG_BUDGET", "maybe"),
        ("PARLINALG_BUDGET_GROUP", "../x"),
    ] {
        let r = run(&[], "report", &[(k, v)]);
        assert_eq!(r["ok"], false, "{r}");
        assert!(r["first"].as_str().unwrap().contains(k), "{r}");
    }
    // A fixed count is the user's choice: it runs as asked, and shows the slots it uses.
    let r = run(
        &[],
        "products",
        &[
            ("PARLINALG_BLAS_THREADS", "2"),
            ("PARLINALG_BUDGET_GROUP", &g),
            (SECS_VAR, "0.2"),
        ],
    );
    assert_eq!(r["max_threads"], 2, "{r}");
    if usable() >= 2 {
        assert_eq!(r["over"], 0, "the slots it ran on were held: {r}");
    }
    // Launchers: divided by the local ranks; a per-task count wins over the rank count.
    let r = run(&[], "report", &[("OMPI_COMM_WORLD_LOCAL_SIZE", "2")]);
    let c = &r["report"]["cores"];
    assert_eq!(
        c["count"].as_u64().unwrap() as usize,
        (cores() / 2).max(1),
        "{c}"
    );
    assert_eq!(c["launcher"], "OMPI_COMM_WORLD_LOCAL_SIZE=2", "{c}");
    // On one core the binding decides (1 either way), and the reason says so instead.
    if cores() >= 2 {
        assert!(
            c["why"]
                .as_str()
                .unwrap()
                .contains("local ranks (OMPI_COMM_WORLD_LOCAL_SIZE=2)"),
            "{c}"
        );
    }
    let r = run(
        &[],
        "report",
        &[("SLURM_CPUS_PER_TASK", "1"), ("SLURM_NTASKS_PER_NODE", "1")],
    );
    let c = &r["report"]["cores"];
    assert_eq!(c["count"], 1, "{c}");
    assert_eq!(c["launcher"], "SLURM_CPUS_PER_TASK=1", "{c}");
    assert_eq!(r["report"]["blas_threads_now"], 1, "{r}");
    // Launcher variables only hint: one that cannot be used is ignored, every call works,
    // and the report's warning names it. Slurm's list for nodes running different counts
    // without SLURM_NODEID, and a junk SLURM_NODEID that nothing needed, are said too.
    for (vars, named) in [
        (&[("PMI_LOCAL_SIZE", "lots")][..], "PMI_LOCAL_SIZE"),
        (
            &[("SLURM_TASKS_PER_NODE", "2(x3),1")][..],
            "SLURM_NODEID is not set",
        ),
        (&[("SLURM_NODEID", "abc")][..], "SLURM_NODEID"),
    ] {
        let r = run(&[], "report", vars);
        assert_eq!(r["ok"], true, "{vars:?}: {r}");
        assert!(r["first"].is_null(), "{vars:?}: the first call failed: {r}");
        assert_eq!(r["report"]["cores"]["count"], cores(), "{vars:?}: {r}");
        let warnings = r["report"]["warnings"].to_string();
        assert!(
            warnings.contains("launcher_hint_ignored") && warnings.contains(named),
            "{vars:?}: {warnings}"
        );
    }
    // Its own mask: not divided again, and a rank bound to one core is said to be.
    if have("taskset") && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        let cpu = mask_cpus().map_or(0, |m| m[0]).to_string();
        let r = run(
            &["taskset", "-c", &cpu],
            "report",
            &[("OMPI_COMM_WORLD_LOCAL_SIZE", "2")],
        );
        let c = &r["report"]["cores"];
        assert_eq!(c["count"], 1, "{c}");
        assert_eq!(c["bound_to_one_core"], true, "{c}");
        assert!(
            c["why"].as_str().unwrap().contains("bound to one core"),
            "{c}"
        );
    } else {
        println!("SKIPPED (part): taskset or a second CPU missing");
    }
}

#[test]
fn mpirun_np_2_gives_each_rank_one_blas_thread_and_says_why() {
    if !have("mpirun") {
        println!(
            "SKIPPED: mpirun not found (scripts/ensure-deps.sh installs openmpi-bin where it can)"
        );
        return;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) != 2 {
        println!("SKIPPED: this check is for 2 CPUs");
        return;
    }
    // Root needs Open MPI's consent; both are harmless otherwise.
    let vars = [
        ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
        ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
    ];
    let ranks = child(&["mpirun", "-np", "2"], "report", &vars)
        .output()
        .results();
    assert_eq!(ranks.len(), 2, "{ranks:?}");
    for r in &ranks {
        let rep = &r["report"];
        assert_eq!(rep["blas_threads_now"], 1, "{rep}");
        let why = rep["cores"]["why"].as_str().unwrap();
        assert!(
            why.contains("OMPI_COMM_WORLD_LOCAL_SIZE=2"),
            "the source names the launcher: {why}"
        );
        println!("rank: {} BLAS thread ({why})", rep["blas_threads_now"]);
    }
}

#[test]
fn a_forked_child_holds_nothing_and_leaves_the_parents_slots_held() {
    if usable() < 2 {
        println!("SKIPPED: one usable core, the budget is never used");
        return;
    }
    let g = group("fork");
    let _clean = Clean(group_dir(&g));
    let r = run(&[], "fork", &[("PARLINALG_BUDGET_GROUP", &g)]);
    let f = &r["forked"];
    assert_eq!(f["before"], usable(), "{r}");
    assert_eq!(f["child_exited"], true, "{f}");
    assert_eq!(f["child_exit"], 0, "the forked child held slots: {f}");
    assert_eq!(
        f["call_child_exit"], 0,
        "a forked child ran more BLAS threads than slots it held: {f}"
    );
    assert!(
        f["after"].as_u64() >= f["own"].as_u64(),
        "the child's exit released slots the parent still believed it held: {f}"
    );
}

/// A silent pass proves nothing: the sampling sees a real holder.
#[test]
fn the_sampler_sees_a_lock_held_here() {
    let dir = std::env::temp_dir().join(format!("parlinalg-sampler-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join("cpu0")).unwrap();
    // SAFETY: flock on a file we own, non-blocking.
    assert_eq!(
        unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        },
        0
    );
    let (held, _) = holders(&dir);
    assert_eq!(held.get(&std::process::id()), Some(&1), "{held:?}");
    drop(f);
    // Another test's `Command` may have forked between the open and the close: its child
    // shares the descriptor (and so the lock) until it execs, which closes it (O_CLOEXEC).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !holders(&dir).0.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the lock outlived its only descriptor"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
