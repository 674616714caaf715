//! How many cores this process may really use: its CPU affinity mask and its cgroup CPU quota.
//!
//! OpenBLAS counts the processors it sees at load and starts that many threads, ignoring a
//! container's CPU quota: on a 64-core host with a 2-CPU quota it would oversubscribe 32-fold.
//! parlinalg's defaults start from the smaller of the two limits below, and under an MPI or
//! Slurm launcher take this rank's share of them (`launcher.rs`).

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The cores this process may use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Cores {
    /// The usable core count (≥ 1).
    pub count: usize,
    /// CPUs in the affinity mask (`sched_getaffinity`), when known.
    pub affinity: Option<usize>,
    /// The cgroup CPU quota in whole CPUs (rounded up), when one is set.
    pub quota: Option<usize>,
    /// CPUs online on the machine (`sysconf(_SC_NPROCESSORS_ONLN)`), when known: an affinity
    /// mask narrower than this is the process's own (a launcher or `taskset` bound it).
    pub online: Option<usize>,
    /// The launcher variable that decided the count, as `NAME=value` (e.g.
    /// `OMPI_COMM_WORLD_LOCAL_SIZE=8`), when one did.
    pub launcher: Option<String>,
    /// The process is bound to a single core (its affinity mask holds one CPU of several).
    pub bound_to_one_core: bool,
    /// One line saying where `count` comes from.
    pub why: String,
    /// Launcher variables that were set but could not be used (junk, or a Slurm node list
    /// without its node id), one line each with the variable, its value and why: launcher
    /// variables only hint, so they are ignored, never an error (the report warns).
    pub ignored_hints: Vec<String>,
}

impl Cores {
    /// The usable count from the two limits. Pure.
    pub(crate) fn combine(affinity: Option<usize>, quota: Option<usize>) -> Cores {
        let fallback = || {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        };
        let (count, why) = match (affinity, quota) {
            (Some(a), Some(q)) if q < a => {
                (q, format!("cgroup CPU quota {q} (affinity mask has {a})"))
            }
            (Some(a), Some(q)) => (a, format!("{a} in the affinity mask (cgroup quota {q})")),
            (Some(a), None) => (a, format!("{a} in the affinity mask, no cgroup quota")),
            (None, Some(q)) => (q, format!("cgroup CPU quota {q}")),
            (None, None) => {
                let n = fallback();
                (n, format!("{n} reported by the OS"))
            }
        };
        Cores {
            count: count.max(1),
            affinity,
            quota,
            online: None,
            launcher: None,
            bound_to_one_core: false,
            why,
            ignored_hints: Vec::new(),
        }
    }
}

/// This process's limits, read once: its affinity mask, its cgroup quota, the CPUs online.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// The CPUs of the affinity mask, when it can be read.
    pub cpus: Option<Vec<usize>>,
    pub quota: Option<usize>,
    pub online: Option<usize>,
}

impl Limits {
    pub(crate) fn read() -> Limits {
        Limits {
            cpus: affinity_cpus(),
            quota: cgroup_quota(Path::new("/proc/self/cgroup"), Path::new("/sys/fs/cgroup")),
            online: online_count(),
        }
    }

    /// The cores these limits allow (affinity mask ∩ cgroup quota), without the launcher rule.
    pub(crate) fn cores(&self) -> Cores {
        let mut c = Cores::combine(self.cpus.as_ref().map(Vec::len), self.quota);
        c.online = self.online;
        c
    }

    /// The CPUs the machine-wide budget may try: the affinity mask, or every CPU the OS
    /// reports when the mask cannot be read; under a cgroup CPU quota smaller than that, only
    /// its first `quota` CPUs. The processes of one cgroup (a container, a systemd slice) share
    /// its quota, not its mask: with a slot for every CPU of the mask, four processes under a
    /// 4-CPU quota on a 16-CPU host could each take 4 threads, 16 on 4 CPUs' worth of time.
    /// Every process of the cgroup has the same mask and quota, so the same slots.
    pub(crate) fn budget_cpus(&self) -> Vec<usize> {
        let mut cpus = self.cpus.clone().unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        });
        if let Some(quota) = self.quota {
            cpus.truncate(quota.max(1));
        }
        cpus
    }
}

/// CPUs online on the machine.
fn online_count() -> Option<usize> {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0)
}

/// The CPUs in this process's affinity mask (`sched_getaffinity`): the one place it is read.
#[cfg(target_os = "linux")]
fn affinity_cpus() -> Option<Vec<usize>> {
    let mut set = std::mem::MaybeUninit::<libc::cpu_set_t>::zeroed();
    // SAFETY: `set` is a zeroed cpu_set_t we own; sched_getaffinity writes at most
    // size_of::<cpu_set_t>() bytes into it. pid 0 means the calling thread.
    let rc = unsafe {
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set.as_mut_ptr())
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so the set is initialised (it was zeroed before anyway).
    let set = unsafe { set.assume_init() };
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET only reads the set; every index is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(not(target_os = "linux"))]
fn affinity_cpus() -> Option<Vec<usize>> {
    None
}

/// The tightest CPU quota among this process's cgroup and its ancestors (cgroup v2 `cpu.max`,
/// or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), in whole CPUs rounded up.
fn cgroup_quota(proc_cgroup: &Path, root: &Path) -> Option<usize> {
    let membership = std::fs::read_to_string(proc_cgroup).ok()?;
    let mut best: Option<usize> = None;
    let mut consider = |q: Option<usize>| {
        if let Some(q) = q {
            best = Some(best.map_or(q, |b| b.min(q)));
        }
    };
    for line in membership.lines() {
        // "0::/user.slice" (v2) or "4:cpu,cpuacct:/docker/abc" (v1)
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            for dir in ancestors(&root.join(rel), root) {
                consider(
                    std::fs::read_to_string(dir.join("cpu.max"))
                        .ok()
                        .and_then(|s| parse_cpu_max(&s)),
                );
            }
        } else if controllers.split(',').any(|c| c == "cpu") {
            for base in ["cpu,cpuacct", "cpu", "cpuacct,cpu"] {
                for dir in ancestors(&root.join(base).join(rel), &root.join(base)) {
                    let quota = std::fs::read_to_string(dir.join("cpu.cfs_quota_us")).ok();
                    let period = std::fs::read_to_string(dir.join("cpu.cfs_period_us")).ok();
                    if let (Some(q), Some(p)) = (quota, period) {
                        consider(parse_cfs(&q, &p));
                    }
                }
            }
        }
    }
    best
}

/// `dir` and its parents up to and including `root`.
fn ancestors(dir: &Path, root: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| d.starts_with(root))
        .map(Path::to_path_buf)
        .collect()
}

/// cgroup v2 `cpu.max`: `"max 100000"` (no quota) or `"150000 100000"` (1.5 CPUs → 2).
pub(crate) fn parse_cpu_max(text: &str) -> Option<usize> {
    let mut it = text.split_whitespace();
    let quota = it.next()?;
    let period: u64 = it.next().and_then(|p| p.parse().ok()).unwrap_or(100_000);
    if quota == "max" {
        return None;
    }
    cpus(quota.parse().ok()?, period)
}

/// cgroup v1: quota `-1` means none.
pub(crate) fn parse_cfs(quota: &str, period: &str) -> Option<usize> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: u64 = period.trim().parse().ok()?;
    cpus(u64::try_from(quota).ok()?, period)
}

fn cpus(quota: u64, period: u64) -> Option<usize> {
    if quota == 0 || period == 0 {
        return None;
    }
    usize::try_from(quota.div_ceil(period)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_parsing() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("200000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("150000 100000"), Some(2));
        assert_eq!(parse_cpu_max("50000 100000"), Some(1));
        assert_eq!(parse_cpu_max("garbage"), None);
        assert_eq!(parse_cpu_max(""), None);
    }

    #[test]
    fn cfs_parsing() {
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("400000", "100000"), Some(4));
        assert_eq!(parse_cfs("x", "100000"), None);
        assert_eq!(parse_cfs("100000", "0"), None);
    }

    #[test]
    fn the_smaller_limit_wins_and_says_so() {
        let c = Cores::combine(Some(64), Some(2));
        assert_eq!(c.count, 2);
        assert!(c.why.contains("quota 2"), "{}", c.why);
        let c = Cores::combine(Some(2), Some(8));
        assert_eq!(c.count, 2);
        assert!(c.why.contains("affinity"), "{}", c.why);
        assert!(Cores::combine(None, None).count >= 1);
    }

    #[test]
    fn cgroup_v2_tree_is_walked_to_the_tightest_quota() {
        let tmp = std::env::temp_dir().join(format!("parlinalg-cg-{}", std::process::id()));
        let leaf = tmp.join("sys/fs/cgroup/a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(tmp.join("proc_cgroup"), "0::/a/b\n").unwrap();
        std::fs::write(leaf.join("cpu.max"), "max 100000\n").unwrap();
        std::fs::write(tmp.join("sys/fs/cgroup/a/cpu.max"), "300000 100000\n").unwrap();
        let q = cgroup_quota(&tmp.join("proc_cgroup"), &tmp.join("sys/fs/cgroup"));
        assert_eq!(q, Some(3));
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn cgroup_v1_quota_is_read() {
        let tmp = std::env::temp_dir().join(format!("parlinalg-cg1-{}", std::process::id()));
        let dir = tmp.join("sys/fs/cgroup/cpu,cpuacct/docker/x");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(tmp.join("proc_cgroup"), "4:cpu,cpuacct:/docker/x\n").unwrap();
        std::fs::write(dir.join("cpu.cfs_quota_us"), "150000\n").unwrap();
        std::fs::write(dir.join("cpu.cfs_period_us"), "100000\n").unwrap();
        let q = cgroup_quota(&tmp.join("proc_cgroup"), &tmp.join("sys/fs/cgroup"));
        assert_eq!(q, Some(2));
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    /// A quota smaller than the mask leaves the budget its first `quota` CPUs (the cgroup's
    /// processes share the quota); a larger quota, or none, the whole mask.
    #[test]
    fn a_quota_below_the_mask_limits_the_budgets_cpus() {
        let limits = |cpus: Option<Vec<usize>>, quota: Option<usize>| Limits {
            cpus,
            quota,
            online: Some(16),
        };
        let mask: Vec<usize> = (4..12).collect();
        assert_eq!(
            limits(Some(mask.clone()), Some(2)).budget_cpus(),
            vec![4, 5]
        );
        assert_eq!(limits(Some(mask.clone()), Some(8)).budget_cpus(), mask);
        assert_eq!(limits(Some(mask.clone()), Some(64)).budget_cpus(), mask);
        assert_eq!(limits(Some(mask.clone()), None).budget_cpus(), mask);
        assert_eq!(limits(Some(mask), Some(0)).budget_cpus(), vec![4]);
        let unreadable = limits(None, Some(1)).budget_cpus();
        assert_eq!(unreadable, vec![0]);
    }

    #[test]
    fn this_process_has_at_least_one_core_and_one_budget_cpu() {
        let limits = Limits::read();
        let c = limits.cores();
        assert!(c.count >= 1);
        assert!(!c.why.is_empty());
        let cpus = limits.budget_cpus();
        assert!(!cpus.is_empty());
        if let Some(mask) = &limits.cpus {
            assert_eq!(c.affinity, Some(mask.len()));
        }
    }
}
