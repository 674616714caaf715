//! The one way a test runs a copy of its own binary as a child process: for process-global
//! scenarios, where each child reads its own environment once and loads OpenBLAS afresh.
//!
//! ```ignore
//! let v = TestChild::entry().remove(common::THREAD_VARS).env("MY_CHILD_VAR", "1").result();
//! ```
//!
//! A libtest binary runs its `child_entry` test in the child ([`TestChild::entry`]); that test
//! is `#[ignore]`d, so a normal run does not report it as a pass, and the child runs it with
//! `--ignored`. A `harness = false` binary runs its own `main` ([`TestChild::main`]), which
//! tells the child by a variable the parent sets.
//!
//! The child prints its result as one line, `CHILD-RESULT ` and JSON
//! ([`ChildOutput::result`]). It has a machine-wide budget group of its own (unless the test
//! sets `PARLINALG_BUDGET_GROUP`), removed when the child is done: what `auto` gives it must not
//! depend on other processes of the machine.

use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const GROUP_VAR: &str = "PARLINALG_BUDGET_GROUP";
const RESULT: &str = "CHILD-RESULT ";

/// How to start a copy of this test binary: which entry, its environment, a wrapper command,
/// a watchdog.
#[derive(Debug, Clone)]
#[must_use]
pub struct TestChild {
    args: Vec<OsString>,
    wrapper: Vec<OsString>,
    remove: Vec<OsString>,
    set: Vec<(OsString, OsString)>,
    timeout: Option<Duration>,
    process_group: bool,
}

impl TestChild {
    fn new(args: &[&str]) -> TestChild {
        TestChild {
            args: args.iter().map(OsString::from).collect(),
            wrapper: Vec::new(),
            remove: Vec::new(),
            set: Vec::new(),
            timeout: None,
            process_group: false,
        }
    }

    /// The binary's `#[ignore]`d `child_entry` test, alone, on one test thread, its output
    /// not captured.
    pub fn entry() -> TestChild {
        TestChild::new(&[
            "--ignored",
            "--exact",
            "child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
    }

    /// The binary's own `main` (a `harness = false` test), without arguments.
    pub fn main() -> TestChild {
        TestChild::new(&[])
    }

    /// Takes `names` out of the child's environment (before [`env`](Self::env) adds any).
    pub fn remove<S: AsRef<OsStr>>(mut self, names: &[S]) -> TestChild {
        self.remove
            .extend(names.iter().map(|n| n.as_ref().to_owned()));
        self
    }

    /// Sets `name` to `value` in the child's environment.
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> TestChild {
        self.set
            .push((name.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets every `(name, value)` of `vars`.
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> TestChild {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Starts the binary through `command` (`taskset -c 0`, `mpirun -np 2`).
    pub fn wrapper(mut self, command: &[&str]) -> TestChild {
        self.wrapper = command.iter().map(OsString::from).collect();
        self
    }

    /// Kills the child (`SIGKILL`) and fails the test when it has not finished `limit` after
    /// it started: a hang fails the test instead of hanging the suite.
    pub fn timeout(mut self, limit: Duration) -> TestChild {
        self.timeout = Some(limit);
        self
    }

    /// Starts the child in a process group of its own, which the watchdog kills whole: for a
    /// child that forks (a forked child that hangs would hold the output pipes open).
    pub fn own_process_group(mut self) -> TestChild {
        self.process_group = true;
        self
    }

    /// What the failure messages call this child: the variables it sets, its wrapper.
    fn label(&self) -> String {
        let mut parts: Vec<String> = self
            .set
            .iter()
            .map(|(k, v)| format!("{}={v:?}", k.to_string_lossy()))
            .collect();
        if !self.wrapper.is_empty() {
            let w: Vec<_> = self.wrapper.iter().map(|w| w.to_string_lossy()).collect();
            parts.push(format!("under `{}`", w.join(" ")));
        }
        format!("[{}]", parts.join(" "))
    }

    /// Starts the child; its stdout and stderr are read when it is waited for.
    pub fn spawn(self) -> RunningChild {
        static CHILDREN: AtomicUsize = AtomicUsize::new(0);
        let exe = std::env::current_exe().expect("this test binary's path");
        let mut cmd = match self.wrapper.split_first() {
            None => Command::new(&exe),
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(&exe);
                c
            }
        };
        cmd.args(&self.args);
        for v in &self.remove {
            cmd.env_remove(v);
        }
        let group = (!self.set.iter().any(|(k, _)| k == GROUP_VAR)).then(|| {
            format!(
                "test-child-{}-{}",
                std::process::id(),
                CHILDREN.fetch_add(1, Ordering::Relaxed)
            )
        });
        if let Some(g) = &group {
            cmd.env(GROUP_VAR, g);
        }
        cmd.envs(self.set.iter().map(|(k, v)| (k, v)));
        if self.process_group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let label = self.label();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the child {label}: {e}"));
        RunningChild {
            child: Some(child),
            started: Instant::now(),
            timeout: self.timeout,
            process_group: self.process_group,
            group,
            label,
        }
    }

    /// Runs the child to its end.
    pub fn output(self) -> ChildOutput {
        self.spawn().wait()
    }

    /// Runs the child to its end; the JSON it printed after `CHILD-RESULT `.
    pub fn result(self) -> serde_json::Value {
        self.output().result()
    }
}

/// A started child. Dropping it removes its budget group (not the child).
#[derive(Debug)]
pub struct RunningChild {
    child: Option<std::process::Child>,
    started: Instant,
    timeout: Option<Duration>,
    process_group: bool,
    group: Option<String>,
    label: String,
}

impl RunningChild {
    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("not yet waited for").id()
    }

    /// Kills the child (`SIGKILL`) and reaps it.
    pub fn kill(mut self) {
        let child = self.child.as_mut().expect("not yet waited for");
        child.kill().expect("kill the child");
        child.wait().expect("reap the child");
    }

    /// Waits for the child's end and its output, under the watchdog when there is one.
    pub fn wait(mut self) -> ChildOutput {
        let child = self.child.take().expect("not yet waited for");
        let pid = i32::try_from(child.id()).expect("a pid fits an i32");
        // A thread waits, reading both pipes as the child writes (a full pipe would stall it).
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let waited = match self.timeout {
            None => rx.recv().expect("the waiting thread answers"),
            Some(limit) => match rx.recv_timeout(limit.saturating_sub(self.started.elapsed())) {
                Ok(waited) => waited,
                Err(_) => {
                    let target = if self.process_group { -pid } else { pid };
                    // SAFETY: signals the child this harness started (or its own process
                    // group), not reaped yet: the waiting thread has not returned.
                    unsafe { libc::kill(target, libc::SIGKILL) };
                    let (stdout, stderr) = match rx.recv_timeout(Duration::from_secs(10)) {
                        Ok(Ok(out)) => (lossy(&out.stdout), lossy(&out.stderr)),
                        _ => (String::new(), "(its output pipes stayed open)".to_owned()),
                    };
                    panic!(
                        "the child {} did not finish within {limit:?}: killed (a hang)\n\
                         {stdout}\n{stderr}",
                        self.label
                    );
                }
            },
        };
        let out = waited.expect("wait for the child");
        ChildOutput {
            status: out.status,
            stdout: lossy(&out.stdout),
            stderr: lossy(&out.stderr),
            label: std::mem::take(&mut self.label),
        }
    }

    /// Waits for the child's end; the JSON it printed after `CHILD-RESULT `.
    pub fn result(self) -> serde_json::Value {
        self.wait().result()
    }
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        if let Some(group) = &self.group {
            // SAFETY: geteuid cannot fail.
            let uid = unsafe { libc::geteuid() };
            for base in ["/dev/shm", "/tmp"] {
                let _ = std::fs::remove_dir_all(format!("{base}/parlinalg-{uid}/{group}"));
            }
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a finished child left: its exit status and its output.
#[derive(Debug)]
pub struct ChildOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    label: String,
}

impl ChildOutput {
    /// Fails the test, with the child's output, unless the child exited with status 0.
    pub fn assert_success(&self) -> &ChildOutput {
        assert!(
            self.status.success(),
            "the child {} failed ({}):\n{}\n{}",
            self.label,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Every `CHILD-RESULT` line's JSON, in order (one per MPI rank under `mpirun`). Fails the
    /// test, with the child's output, when there is none.
    pub fn results(&self) -> Vec<serde_json::Value> {
        let found: Vec<serde_json::Value> = self
            .stdout
            .lines()
            .filter_map(|l| l.split_once(RESULT).map(|(_, json)| json))
            .map(|json| {
                serde_json::from_str(json).unwrap_or_else(|e| {
                    panic!(
                        "the child {}'s result is not JSON ({e}): {json}",
                        self.label
                    )
                })
            })
            .collect();
        assert!(
            !found.is_empty(),
            "the child {} printed no result (status {}):\n{}\n{}",
            self.label,
            self.status,
            self.stdout,
            self.stderr
        );
        found
    }

    /// The first `CHILD-RESULT` line's JSON.
    pub fn result(&self) -> serde_json::Value {
        self.results().remove(0)
    }
}
