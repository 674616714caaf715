//! What is checked before anything is measured, so that a run does not fail after minutes:
//! the output folder can be written, and every size asked for fits in the memory this process
//! may use (the least of `MemAvailable`, the address-space limit of `ulimit -v` and the cgroup's
//! `memory.max`, each less what is already used).

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::report::cli::{Section, Settings};
use crate::report::{classic, grid, latency, versus};

/// Why a run was refused before it measured anything.
#[derive(Debug)]
#[non_exhaustive]
pub enum PreflightError {
    /// The output folder cannot be made or written into.
    Output { dir: PathBuf, why: std::io::Error },
    /// Sizes that need more memory than this process may use.
    Memory {
        too_large: Vec<Need>,
        available: Available,
    },
}

/// The memory one size of one section holds at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The flag that set the size (`--sizes`, `--large`, ...).
    pub flag: &'static str,
    /// The size as given.
    pub size: usize,
    /// What holds the memory.
    pub what: String,
    pub bytes: u128,
}

/// The memory this process may still use, and the bound that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    pub bytes: u128,
    pub from: String,
}

impl fmt::Display for PreflightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreflightError::Output { dir, why } => write!(
                f,
                "cannot write into the output folder {} ({why}); choose another with --out",
                dir.display()
            ),
            PreflightError::Memory {
                too_large,
                available,
            } => {
                write!(f, "refused before measuring: ")?;
                for (i, n) in too_large.iter().enumerate() {
                    if i > 0 {
                        write!(f, "; ")?;
                    }
                    write!(
                        f,
                        "{} {} needs {} ({})",
                        n.flag,
                        n.size,
                        bytes(n.bytes),
                        n.what
                    )?;
                }
                write!(
                    f,
                    ", but {} is available ({}); choose smaller sizes",
                    bytes(available.bytes),
                    available.from
                )
            }
        }
    }
}

impl std::error::Error for PreflightError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PreflightError::Output { why, .. } => Some(why),
            PreflightError::Memory { .. } => None,
        }
    }
}

/// Bytes as GiB or MiB, with the exact count.
fn bytes(b: u128) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let x = b as f64;
    if x >= GIB {
        format!("{:.1} GiB ({b} bytes)", x / GIB)
    } else {
        format!("{:.0} MiB ({b} bytes)", x / MIB)
    }
}

/// Both checks, the folder first.
///
/// # Errors
/// The first check that failed.
pub fn check(settings: &Settings) -> Result<(), PreflightError> {
    check_output(&settings.out)?;
    let too_large = over(needs(settings), &available());
    if let Some((too_large, available)) = too_large {
        return Err(PreflightError::Memory {
            too_large,
            available,
        });
    }
    Ok(())
}

/// Makes `dir` and writes, then removes, a probe file in it.
///
/// # Errors
/// [`PreflightError::Output`] with the I/O error.
pub fn check_output(dir: &Path) -> Result<(), PreflightError> {
    let fail = |why| PreflightError::Output {
        dir: dir.to_owned(),
        why,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".parlinalg-probe-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"probe").and_then(|()| f.sync_all()));
    let removed = std::fs::remove_file(&probe);
    written.map_err(fail)?;
    removed.map_err(fail)
}

/// The memory every size of every section that runs holds at once.
pub fn needs(s: &Settings) -> Vec<Need> {
    let mut v = Vec::new();
    if s.runs(Section::Classic) {
        let c = &s.classic;
        v.push(Need {
            flag: "--h-size",
            size: c.h_size,
            what: format!(
                "the classic table: {} elements of exp input and {} outputs, {} products of {2}×{2} f64 for h, and a process row's copy of the larger",
                c.elements, c.workers, c.h_size
            ),
            bytes: classic::bytes_needed(c),
        });
    }
    if s.runs(Section::Grid) || s.runs(Section::Openmp) {
        for &n in &s.grid.sizes {
            v.push(Need {
                flag: "--sizes",
                size: n,
                what: format!("the grid's batch of {n}×{n} f64 products: a, b and c"),
                bytes: grid::bytes_needed(n, s.cores, false),
            });
        }
        if let Some(n) = s.grid.small_batch {
            v.push(Need {
                flag: "--small-batch",
                size: n,
                what: format!("the grid's small batch of {n}×{n} f64 products: a, b and c"),
                bytes: grid::bytes_needed_small_batch(n, s.cores),
            });
        }
        if let Some(n) = s.grid.large {
            v.push(Need {
                flag: "--large",
                size: n,
                what: format!("the grid's single {n}×{n} f64 product and its calibration"),
                bytes: grid::bytes_needed(n, s.cores, true),
            });
        }
    }
    if s.runs(Section::Latency) {
        v.push(Need {
            flag: "--latency-large",
            size: s.latency.large,
            what: format!(
                "the latency's {0}×{0} and {1}×{1} f64 matrices and their products",
                s.latency.small, s.latency.large
            ),
            bytes: latency::bytes_needed(&s.latency),
        });
    }
    if s.runs(Section::Numpy) {
        for &n in &s.versus.sizes {
            v.push(Need {
                flag: "--numpy-sizes",
                size: n,
                what: format!("matmul vs numpy's {n}×{n} f64 a, b and c"),
                bytes: versus::bytes_needed(n),
            });
        }
    }
    v
}

/// The needs over `available`, with it; `None` when all fit.
pub fn over(needs: Vec<Need>, available: &Available) -> Option<(Vec<Need>, Available)> {
    let too_large: Vec<Need> = needs
        .into_iter()
        .filter(|n| n.bytes > available.bytes)
        .collect();
    (!too_large.is_empty()).then(|| (too_large, available.clone()))
}

/// The least of the bounds that apply to this process.
pub fn available() -> Available {
    let mut bounds: Vec<Available> = Vec::new();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if let Some(kib) = meminfo_kib(&meminfo, "MemAvailable") {
        bounds.push(Available {
            bytes: kib * 1024,
            from: "MemAvailable in /proc/meminfo".into(),
        });
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY
    {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mapped = meminfo_kib(&status, "VmSize").unwrap_or(0) * 1024;
        bounds.push(Available {
            bytes: u128::from(limit.rlim_cur).saturating_sub(mapped),
            from: "the address-space limit (ulimit -v) less what this process maps".into(),
        });
    }
    if let Some(b) = cgroup_left() {
        bounds.push(b);
    }
    bounds
        .into_iter()
        .min_by_key(|b| b.bytes)
        .unwrap_or(Available {
            bytes: u128::MAX,
            from: "no bound known".into(),
        })
}

/// The cgroup v2 limit of this process, less what the cgroup uses.
fn cgroup_left() -> Option<Available> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let max: u128 = std::fs::read_to_string(dir.join("memory.max"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let current: u128 = std::fs::read_to_string(dir.join("memory.current"))
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0);
    Some(Available {
        bytes: max.saturating_sub(current),
        from: format!("the cgroup's memory.max in {}", dir.display()),
    })
}

/// A `Key:   123 kB` line's number, in /proc/meminfo or /proc/self/status.
fn meminfo_kib(text: &str, key: &str) -> Option<u128> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_lines_parse() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   1234 kB\n";
        assert_eq!(meminfo_kib(text, "MemAvailable"), Some(1234));
        assert_eq!(meminfo_kib(text, "MemFree"), None);
        assert_eq!(meminfo_kib("VmSize:\t  77 kB", "VmSize"), Some(77));
    }

    #[test]
    fn sizes_over_the_memory_are_named_with_their_bytes() {
        let grid8192 = grid::bytes_needed(8192, 2, false);
        // 4 products per call on 2 cores: a, b and c, plus the calibration's 2 matrices.
        assert_eq!(grid8192, 14 * 8 * 8192 * 8192);
        let needs = vec![
            Need {
                flag: "--sizes",
                size: 64,
                what: "small".into(),
                bytes: grid::bytes_needed(64, 2, false),
            },
            Need {
                flag: "--sizes",
                size: 8192,
                what: "large".into(),
                bytes: grid8192,
            },
        ];
        let available = Available {
            bytes: 1 << 30,
            from: "a test".into(),
        };
        let (too_large, _) = over(needs.clone(), &available).expect("8192 is over 1 GiB");
        assert_eq!(too_large, needs[1..]);
        let text = PreflightError::Memory {
            too_large,
            available,
        }
        .to_string();
        assert!(
            text.contains("--sizes 8192 needs 7.0 GiB (7516192768 bytes)"),
            "{text}"
        );
        assert!(text.contains("1.0 GiB (1073741824 bytes) is available (a test)"));
        let plenty = Available {
            bytes: u128::MAX,
            from: "a test".into(),
        };
        assert!(over(needs, &plenty).is_none());
    }
}
