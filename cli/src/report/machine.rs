//! The machine's own state while a section ran, from `/proc`: the hypervisor's steal, the load
//! average and the other processes that were busy. A figure measured beside a busy process is
//! not the idle machine's, and the report says so. Also how far apart two usable CPUs are (a
//! cache line's one-way trip between threads pinned to each, at the start and at the end): a
//! VM's host may place two vCPUs in one core complex or in two and move them while the report
//! runs, and threads that share one product's data (several BLAS threads) feel it. And how
//! many BLAS threads "all the cores" can be here ([`all_cores_blas`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Others' CPU above this share of one core, or steal above this share of the machine, and the
/// section is flagged as measured on a busy machine.
const BUSY: f64 = 0.10;

/// Processes listed by name: those that used more than this share of one core.
const LISTED: f64 = 0.05;

/// A cache line's one-way trip above this (ns): the two CPUs are in different core complexes.
const FAR_NS: f64 = 100.0;

/// BLAS threads for "all the cores" (`cores` of them): the cores, or the most the loaded
/// OpenBLAS runs where that is fewer (its `MAX_THREADS`, 64 in Debian's builds), since a larger
/// count is refused. What every section that fixes BLAS threads at the cores asks for.
pub fn all_cores_blas(cores: usize) -> usize {
    cores.min(parlinalg::threads::blas_max_threads()).max(1)
}

/// A reading of `/proc` at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: std::time::Instant,
    /// Jiffies of every CPU: (all, steal, busy = not idle, not waiting, not stolen).
    cpu: Option<(u64, u64, u64)>,
    /// CPU seconds of this process and its waited-for children.
    own: f64,
    /// Per process: (name, parent, user + system jiffies).
    procs: HashMap<u32, (String, u32, u64)>,
    /// The first two usable CPUs and a cache line's one-way trip between them, ns.
    distance: Option<((usize, usize), f64)>,
}

/// What the machine did between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineState {
    pub seconds: f64,
    /// Share of the machine's CPU time the hypervisor gave to others.
    pub steal: Option<f64>,
    /// The one-minute load average at the end.
    pub load: Option<f64>,
    /// Other processes (not this one or its children) still running at the end that used more
    /// than 5% of a core, with their share of one core, busiest first.
    pub busy: Vec<(String, f64)>,
    /// Everything else's share of one core: the machine's busy time less this process's and
    /// its children's (so processes that started and ended inside the section count too).
    pub others: f64,
    /// Two usable CPUs and a cache line's one-way trip between them (ns) at the start and at
    /// the end; `None` with one usable CPU.
    #[serde(default)]
    pub core_to_core: Option<CoreToCore>,
}

/// How far apart two CPUs were: a cache line's one-way trip between them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CoreToCore {
    pub cpus: (usize, usize),
    pub start_ns: f64,
    pub end_ns: f64,
}

impl Snapshot {
    /// Reads `/proc` now (what it cannot read stays empty).
    pub fn take() -> Snapshot {
        Snapshot {
            at: std::time::Instant::now(),
            cpu: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|t| parse_cpu(&t)),
            procs: processes(),
            own: own_cpu_seconds(),
            distance: core_to_core_ns(),
        }
    }

    /// The state between this snapshot and now.
    pub fn until_now(&self) -> MachineState {
        let end = Snapshot::take();
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok());
        state(self, &end, std::process::id(), load)
    }
}

impl MachineState {
    /// Whether the section ran on a busy machine.
    pub fn busy(&self) -> bool {
        self.steal.is_some_and(|s| s > BUSY) || self.others > BUSY
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        let steal = self.steal.map_or("steal unknown".to_owned(), |s| {
            format!("steal {:.1}%", 100.0 * s)
        });
        let load = self
            .load
            .map_or(String::new(), |l| format!(", load average {l:.2}"));
        let names: Vec<String> = self
            .busy
            .iter()
            .map(|(n, s)| format!("{n} {:.0}%", 100.0 * s))
            .collect();
        let named = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        let others = format!(
            "other processes used {:.0}% of a core{named}",
            100.0 * self.others
        );
        let distance = self.core_to_core.map_or(String::new(), |d| {
            let far = if d.start_ns.max(d.end_ns) > FAR_NS {
                format!(
                    " (over {FAR_NS:.0} ns: the host placed them in different core complexes for \
                     part of the section, where threads that share one product, such as several \
                     BLAS threads, gain less than within one)"
                )
            } else {
                String::new()
            };
            format!(
                "; a cache line from CPU {} to CPU {} took {:.0} ns at the start, {:.0} ns at \
                 the end{far}",
                d.cpus.0, d.cpus.1, d.start_ns, d.end_ns
            )
        });
        let warning = if self.busy() {
            " **Busy machine: these figures are not those of an idle machine; run again when it \
             is quiet.**"
        } else {
            ""
        };
        format!(
            "Machine during this section ({:.0} s): {steal}{load}; {others}{distance}.{warning}",
            self.seconds
        )
    }
}

fn state(a: &Snapshot, b: &Snapshot, me: u32, load: Option<f64>) -> MachineState {
    let seconds = b.at.duration_since(a.at).as_secs_f64();
    // SAFETY: sysconf only reads a configuration value.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    };
    let (steal, others) = match (a.cpu, b.cpu) {
        (Some((ta, sa, ba)), Some((tb, sb, bb))) if tb > ta => {
            let busy = bb.saturating_sub(ba) as f64 / hz;
            let others = (busy - (b.own - a.own)).max(0.0) / seconds.max(1e-3);
            (
                Some(sb.saturating_sub(sa) as f64 / (tb - ta) as f64),
                others,
            )
        }
        _ => (None, 0.0),
    };
    let mut busy: Vec<(String, f64)> = b
        .procs
        .iter()
        .filter(|(pid, (_, parent, _))| **pid != me && *parent != me)
        .filter_map(|(pid, (name, _, end))| {
            let start = a.procs.get(pid).map_or(0, |p| p.2);
            let share = end.saturating_sub(start) as f64 / hz / seconds.max(1e-3);
            (share > 0.0).then(|| (name.clone(), share))
        })
        .collect();
    busy.retain(|b| b.1 > LISTED);
    busy.sort_by(|x, y| y.1.total_cmp(&x.1));
    let core_to_core = a
        .distance
        .zip(b.distance)
        .and_then(|((cpus, start), (at_end, end))| {
            (cpus == at_end).then_some(CoreToCore {
                cpus,
                start_ns: start,
                end_ns: end,
            })
        });
    MachineState {
        seconds,
        steal,
        load,
        busy,
        others,
        core_to_core,
    }
}

/// The first two CPUs of this process's affinity mask and the median one-way latency (ns) of a
/// cache line passed back and forth between two threads pinned to them; `None` with one CPU
/// or when a thread cannot be pinned.
fn core_to_core_ns() -> Option<((usize, usize), f64)> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set for sched_getaffinity to fill.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size is the set's own.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut mask) } != 0
    {
        return None;
    }
    // SAFETY: CPU_ISSET reads inside the set for every cpu below its 1024 bits.
    let mut cpus = (0..1024).filter(|&c| unsafe { libc::CPU_ISSET(c, &mask) });
    let pair = (cpus.next()?, cpus.next()?);
    let mut runs: Vec<f64> = (0..3).map(|_| ping_pong(pair)).collect::<Option<_>>()?;
    runs.sort_by(f64::total_cmp);
    Some((pair, runs[1]))
}

/// One run: up to 20 000 round trips of a counter between a thread on each CPU, for at most
/// 20 ms (on a busy machine a trip may wait for a time slice); ns one way. `None` when a thread
/// cannot be pinned or fewer than 100 trips fit in the time.
fn ping_pong((a, b): (usize, usize)) -> Option<f64> {
    use std::sync::atomic::{
        AtomicBool, AtomicU64,
        Ordering::{Acquire, Release},
    };
    const TRIPS: u64 = 20_000;
    const LIMIT: std::time::Duration = std::time::Duration::from_millis(20);
    let pin = |cpu: usize| {
        // SAFETY: as above; CPU_SET writes inside the set (cpu < 1024, from CPU_ISSET's range),
        // and sched_setaffinity(0, ..) pins only the calling thread, one the report spawned.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    };
    // The sender writes the odd values and waits for the even ones the answerer writes back;
    // either side raises `stop` to end the other's wait (cannot pin, or out of time).
    let (flag, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let wait_for = |value: u64| {
        while flag.load(Acquire) != value {
            if stop.load(Acquire) {
                return false;
            }
            std::hint::spin_loop();
        }
        true
    };
    let answer = || {
        if !pin(b) {
            stop.store(true, Release);
            return;
        }
        for i in 0..TRIPS {
            if !wait_for(2 * i + 1) {
                return;
            }
            flag.store(2 * i + 2, Release);
        }
    };
    let send = || -> Option<f64> {
        if !pin(a) {
            stop.store(true, Release);
            return None;
        }
        let start = std::time::Instant::now();
        let mut trips = 0;
        while trips < TRIPS && (trips % 256 != 0 || start.elapsed() < LIMIT) {
            flag.store(2 * trips + 1, Release);
            if !wait_for(2 * trips + 2) {
                return None;
            }
            trips += 1;
        }
        let ns = start.elapsed().as_secs_f64() * 1e9 / (2 * trips) as f64;
        stop.store(true, Release);
        (trips >= 100).then_some(ns)
    };
    std::thread::scope(|s| {
        s.spawn(answer);
        s.spawn(send).join().ok().flatten()
    })
}

/// CPU seconds (user + system) of this process and of its children that were waited for.
fn own_cpu_seconds() -> f64 {
    let of = |who| {
        // SAFETY: getrusage writes one rusage into `u`, which is valid for writes.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut u) } != 0 {
            return 0.0;
        }
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

/// `(all, steal, busy)` jiffies from the `cpu` line of `/proc/stat`.
fn parse_cpu(stat: &str) -> Option<(u64, u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let all = v.iter().take(8).sum();
    let (idle, iowait, steal) = (*v.get(3)?, *v.get(4)?, *v.get(7)?);
    Some((all, steal, all - idle - iowait - steal))
}

/// `(name, parent, user + system jiffies)` from a `/proc/<pid>/stat` line.
fn parse_proc_stat(text: &str) -> Option<(String, u32, u64)> {
    // The name is in parentheses and may hold spaces or parentheses: the last ')' ends it.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let parent = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((name, parent, utime + stime))
}

fn processes() -> HashMap<u32, (String, u32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read_to_string(e.path().join("stat")).ok()?;
            Some((pid, parse_proc_stat(&text)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cpus_are_measured_apart_and_one_is_not() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        // A run gives up when the machine is too busy for 100 trips in its time: a few tries.
        let measured = (0..5).find_map(|_| {
            core_to_core_ns().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                None
            })
        });
        match measured {
            Some(((a, b), ns)) => {
                assert!(a < b, "two CPUs of the mask, in order: {a}, {b}");
                assert!(ns.is_finite() && ns > 0.0 && ns < 1e6, "{ns} ns");
            }
            None => assert!(cpus < 2, "{cpus} CPUs usable but no distance measured"),
        }
    }

    #[test]
    fn proc_lines_parse() {
        let stat = "cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_cpu(stat), Some((1000, 35, 1000 - 800 - 10 - 35)));
        let line = "4242 (my (odd) name) S 17 4242 4242 0 -1 4194304 100 0 0 0 250 30 0 0 20 0 1";
        assert_eq!(
            parse_proc_stat(line),
            Some(("my (odd) name".to_owned(), 17, 280))
        );
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    #[test]
    fn a_busy_neighbour_and_steal_are_flagged_but_our_children_are_not() {
        let at = std::time::Instant::now();
        let snap = |cpu, own, procs: &[(u32, &str, u32, u64)], secs: u64| Snapshot {
            at: at + std::time::Duration::from_secs(secs),
            cpu: Some(cpu),
            own,
            procs: procs
                .iter()
                .map(|&(pid, n, p, j)| (pid, (n.to_owned(), p, j)))
                .collect(),
            distance: Some(((0, 1), if secs == 0 { 45.0 } else { 180.0 })),
        };
        // 10 s on 2 CPUs at USER_HZ = 100: 2000 jiffies, 120 stolen. Busy: cargo 800, this
        // process 600 and its child 300 (9 s of its own), and 200 of a process that started and
        // ended in between (not in either listing).
        let a = snap(
            (0, 0, 0),
            0.0,
            &[(1, "cargo", 0, 0), (2, "child", 9, 0), (9, "me", 1, 0)],
            0,
        );
        let b = snap(
            (2000, 120, 1900),
            9.0,
            &[
                (1, "cargo", 0, 800),
                (2, "child", 9, 300),
                (9, "me", 1, 600),
                (5, "new", 0, 1),
            ],
            10,
        );
        let s = state(&a, &b, 9, Some(2.5));
        assert!((s.steal.unwrap() - 0.06).abs() < 1e-9);
        assert_eq!(s.busy.len(), 1, "{s:?}");
        assert_eq!(s.busy[0].0, "cargo");
        assert!((s.busy[0].1 - 0.8).abs() < 0.01);
        assert!(
            (s.others - 1.0).abs() < 1e-9,
            "cargo and the one that left: {s:?}"
        );
        assert!(s.busy(), "{s:?}");
        assert!(s.describe().contains("Busy machine"), "{}", s.describe());
        assert!(
            s.describe().contains(
                "a cache line from CPU 0 to CPU 1 took 45 ns at the start, 180 ns at the end \
                 (over 100 ns: the host placed them in different core complexes"
            ),
            "{}",
            s.describe()
        );
        assert!(
            s.describe().contains("100% of a core (cargo 80%)"),
            "{}",
            s.describe()
        );
        let quiet = state(&a, &a, 9, None);
        assert!(!quiet.busy() && quiet.busy.is_empty());
        assert!(
            quiet.describe().contains(
                "used 0% of a core; a cache line from CPU 0 to CPU 1 took 45 ns at the start, \
                 45 ns at the end."
            ),
            "{}",
            quiet.describe()
        );
    }
}
