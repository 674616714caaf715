//! The machine's own state while a section ran, from `/proc`: the hypervisor's steal, the load
//! average and the other processes that were busy. A figure measured beside a busy process is
//! not the idle machine's, and the report says so.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Others' CPU above this share of one core, or steal above this share of the machine, and the
/// section is flagged as measured on a busy machine.
const BUSY: f64 = 0.10;

/// Processes listed by name: those that used more than this share of one core.
const LISTED: f64 = 0.05;

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
        let warning = if self.busy() {
            " **Busy machine: these figures are not those of an idle machine; run again when it \
             is quiet.**"
        } else {
            ""
        };
        format!(
            "Machine during this section ({:.0} s): {steal}{load}; {others}.{warning}",
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
    MachineState {
        seconds,
        steal,
        load,
        busy,
        others,
    }
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
            s.describe().contains("100% of a core (cargo 80%)"),
            "{}",
            s.describe()
        );
        let quiet = state(&a, &a, 9, None);
        assert!(!quiet.busy() && quiet.busy.is_empty());
        assert!(
            quiet.describe().contains("used 0% of a core."),
            "{}",
            quiet.describe()
        );
    }
}
