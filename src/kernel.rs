//! Is OpenBLAS running the right kernel for this CPU?
//!
//! A `DYNAMIC_ARCH` OpenBLAS holds kernels for many CPUs and picks one when it loads. A build
//! older than the CPU does not recognise it and falls back to a generic kernel: Debian's 0.3.21
//! on a recent Xeon runs `Prescott` (SSE3) and its dgemm is 4.6× slower than with `SkylakeX`.
//! OpenBLAS reads `OPENBLAS_CORETYPE` only at load, before `main`, so the fix is an environment
//! variable set before the process starts.
//!
//! [`check_kernel`] compares the running kernel with the best instruction set the CPU and the OS
//! support (from CPUID) and returns a [`KernelFinding`] with the exact fix; it never recommends
//! a kernel that needs an instruction the CPU lacks. [`ensure_best_kernel`] is the opt-in
//! helper that re-executes the current program once with the variable set.

use std::fmt;

use crate::blas::info::BlasLibrary;

/// The environment variable OpenBLAS reads at load to force a core kernel.
pub const CORETYPE_VAR: &str = "OPENBLAS_CORETYPE";

/// Set by [`ensure_best_kernel`] in the re-executed child, so that it does not loop and can say
/// what happened. Holds the kernel name that was forced.
pub const REEXEC_MARKER_VAR: &str = "PARLINALG_KERNEL_REEXEC";

/// Instruction-set families of OpenBLAS x86-64 kernels, lowest to highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum IsaLevel {
    /// SSE3 at most: the generic `Prescott` kernel and older ones.
    Sse3,
    /// SSSE3: `Core2`, `Penryn`, `Atom`.
    Ssse3,
    /// SSE4.2: `Nehalem`.
    Sse42,
    /// AVX: `Sandybridge`, `Bulldozer`.
    Avx,
    /// AVX2 + FMA: `Haswell`, `Zen`.
    Avx2,
    /// AVX-512 F/BW/DQ/VL/CD: `SkylakeX`, `Cooperlake`, `SapphireRapids`.
    Avx512,
}

impl fmt::Display for IsaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            IsaLevel::Sse3 => "SSE3",
            IsaLevel::Ssse3 => "SSSE3",
            IsaLevel::Sse42 => "SSE4.2",
            IsaLevel::Avx => "AVX",
            IsaLevel::Avx2 => "AVX2+FMA",
            IsaLevel::Avx512 => "AVX-512",
        };
        f.write_str(name)
    }
}

/// The CPU features that decide which OpenBLAS kernel can run. Fields are public so that
/// tests (and curious users) can describe any CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)] // each field is the CPUID feature of the same name
pub struct CpuFeatures {
    /// `true` on x86-64; on other architectures the check says "unknown".
    pub x86_64: bool,
    pub sse3: bool,
    pub ssse3: bool,
    pub sse4_2: bool,
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512dq: bool,
    pub avx512vl: bool,
    pub avx512cd: bool,
    pub avx512bf16: bool,
}

impl CpuFeatures {
    /// Features of the CPU this process runs on, as the OS lets it use them (CPUID and XCR0,
    /// through `is_x86_feature_detected!`).
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            CpuFeatures {
                x86_64: true,
                sse3: has!("sse3"),
                ssse3: has!("ssse3"),
                sse4_2: has!("sse4.2"),
                avx: has!("avx"),
                avx2: has!("avx2"),
                fma: has!("fma"),
                avx512f: has!("avx512f"),
                avx512bw: has!("avx512bw"),
                avx512dq: has!("avx512dq"),
                avx512vl: has!("avx512vl"),
                avx512cd: has!("avx512cd"),
                avx512bf16: has!("avx512bf16"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            CpuFeatures::default()
        }
    }

    /// The highest kernel family this CPU can run, or `None` off x86-64.
    pub fn isa_level(&self) -> Option<IsaLevel> {
        if !self.x86_64 {
            return None;
        }
        let level =
            if self.avx512f && self.avx512bw && self.avx512dq && self.avx512vl && self.avx512cd {
                IsaLevel::Avx512
            } else if self.avx2 && self.fma {
                IsaLevel::Avx2
            } else if self.avx {
                IsaLevel::Avx
            } else if self.sse4_2 {
                IsaLevel::Sse42
            } else if self.ssse3 {
                IsaLevel::Ssse3
            } else {
                IsaLevel::Sse3
            };
        Some(level)
    }

    /// The `OPENBLAS_CORETYPE` value to recommend: the best kernel of OpenBLAS 0.3.x this CPU
    /// can run (`Cooperlake` needs AVX-512 BF16 as well), or `None` off x86-64.
    pub fn recommended_kernel(&self) -> Option<&'static str> {
        Some(match self.isa_level()? {
            IsaLevel::Avx512 if self.avx512bf16 => "Cooperlake",
            IsaLevel::Avx512 => "SkylakeX",
            IsaLevel::Avx2 => "Haswell",
            IsaLevel::Avx => "Sandybridge",
            IsaLevel::Sse42 => "Nehalem",
            IsaLevel::Ssse3 => "Core2",
            IsaLevel::Sse3 => "Prescott",
        })
    }
}

/// The instruction-set family of an OpenBLAS x86-64 core name (as `openblas_get_corename`
/// prints it, any case), or `None` for a name this table does not know.
pub fn kernel_isa_level(corename: &str) -> Option<IsaLevel> {
    let name = corename.trim().to_ascii_lowercase();
    let level = match name.as_str() {
        "katmai" | "coppermine" | "northwood" | "prescott" | "banias" | "athlon" | "opteron"
        | "opteron_sse3" | "generic" => IsaLevel::Sse3,
        "atom" | "core2" | "penryn" | "dunnington" | "nano" => IsaLevel::Ssse3,
        "nehalem" | "barcelona" | "bobcat" => IsaLevel::Sse42,
        "sandybridge" | "bulldozer" | "piledriver" => IsaLevel::Avx,
        "haswell" | "zen" | "steamroller" | "excavator" => IsaLevel::Avx2,
        "skylakex" | "cooperlake" | "sapphirerapids" => IsaLevel::Avx512,
        _ => return None,
    };
    Some(level)
}

/// What [`check_kernel`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum KernelFinding {
    /// The running kernel uses the best instruction set the CPU supports.
    Best {
        /// The running kernel.
        running: String,
    },
    /// The running kernel is below what the CPU supports (e.g. the generic `Prescott`
    /// fallback on a CPU that OpenBLAS does not recognise).
    Fallback {
        /// The running kernel.
        running: String,
        /// Its instruction-set family.
        running_level: IsaLevel,
        /// What the CPU supports.
        cpu_level: IsaLevel,
        /// The kernel to force; the CPU can run it.
        recommended: &'static str,
        /// The exact fix, ready to paste.
        fix: String,
    },
    /// The library is built for a single CPU (no `DYNAMIC_ARCH`) below what this CPU supports:
    /// `OPENBLAS_CORETYPE` cannot help.
    FixedBuild {
        /// The running kernel.
        running: String,
        /// What the CPU supports.
        cpu_level: IsaLevel,
        /// What to do.
        fix: String,
    },
    /// The running kernel needs instructions the CPU (or OS) does not offer, usually because
    /// `OPENBLAS_CORETYPE` forced it: expect crashes on illegal instructions.
    AboveCpu {
        /// The running kernel.
        running: String,
        /// Its instruction-set family.
        running_level: IsaLevel,
        /// What the CPU supports.
        cpu_level: IsaLevel,
    },
    /// The check cannot say (not x86-64, or a core name this version does not know).
    Unknown {
        /// The running kernel.
        running: String,
        /// Why the check cannot say.
        why: String,
    },
}

impl KernelFinding {
    /// `true` when the kernel is known to be worse than the CPU allows (a fallback or a fixed
    /// build below the CPU).
    pub fn is_suboptimal(&self) -> bool {
        matches!(
            self,
            KernelFinding::Fallback { .. } | KernelFinding::FixedBuild { .. }
        )
    }

    /// The `OPENBLAS_CORETYPE` value that fixes a [`KernelFinding::Fallback`].
    pub fn recommended(&self) -> Option<&'static str> {
        match self {
            KernelFinding::Fallback { recommended, .. } => Some(recommended),
            _ => None,
        }
    }
}

impl fmt::Display for KernelFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelFinding::Best { running } => {
                write!(f, "{running}: the best kernel family this CPU supports")
            }
            KernelFinding::Fallback {
                running,
                running_level,
                cpu_level,
                fix,
                ..
            } => write!(
                f,
                "{running} ({running_level}) is a fallback: this CPU supports {cpu_level}. Fix: {fix}"
            ),
            KernelFinding::FixedBuild {
                running,
                cpu_level,
                fix,
            } => write!(
                f,
                "{running} is below this CPU's {cpu_level} and the library has no DYNAMIC_ARCH. Fix: {fix}"
            ),
            KernelFinding::AboveCpu {
                running,
                running_level,
                cpu_level,
            } => write!(
                f,
                "{running} needs {running_level} but this CPU offers only {cpu_level}: unset {CORETYPE_VAR}"
            ),
            KernelFinding::Unknown { running, why } => write!(f, "{running}: cannot check ({why})"),
        }
    }
}

/// Compares the running kernel `corename` of a library built with or without `DYNAMIC_ARCH`
/// against the CPU's features. Pure: tests pass made-up CPUs.
///
/// ```
/// use parlinalg::kernel::{check_kernel, CpuFeatures, KernelFinding};
///
/// // An AVX-512 Xeon that Debian's OpenBLAS 0.3.21 does not recognise.
/// let xeon = CpuFeatures {
///     x86_64: true, sse3: true, ssse3: true, sse4_2: true, avx: true, avx2: true, fma: true,
///     avx512f: true, avx512bw: true, avx512dq: true, avx512vl: true, avx512cd: true,
///     avx512bf16: false,
/// };
/// let finding = check_kernel("Prescott", true, &xeon);
/// assert_eq!(finding.recommended(), Some("SkylakeX"));
/// assert!(finding.to_string().contains("OPENBLAS_CORETYPE=SkylakeX"));
/// ```
pub fn check_kernel(corename: &str, dynamic_arch: bool, cpu: &CpuFeatures) -> KernelFinding {
    let running = corename.to_owned();
    let Some(cpu_level) = cpu.isa_level() else {
        return KernelFinding::Unknown {
            running,
            why: "not an x86-64 CPU".into(),
        };
    };
    let Some(running_level) = kernel_isa_level(corename) else {
        return KernelFinding::Unknown {
            running,
            why: "core name not in parlinalg's table".into(),
        };
    };
    if running_level > cpu_level {
        return KernelFinding::AboveCpu {
            running,
            running_level,
            cpu_level,
        };
    }
    if running_level == cpu_level {
        return KernelFinding::Best { running };
    }
    let recommended = cpu
        .recommended_kernel()
        .expect("an x86-64 CPU always has a recommendation");
    if !dynamic_arch {
        return KernelFinding::FixedBuild {
            running,
            cpu_level,
            fix: format!(
                "install a DYNAMIC_ARCH OpenBLAS (Debian/Ubuntu: libopenblas-dev) or rebuild with TARGET={}",
                recommended.to_ascii_uppercase()
            ),
        };
    }
    KernelFinding::Fallback {
        running,
        running_level,
        cpu_level,
        recommended,
        fix: format!("export {CORETYPE_VAR}={recommended} before the program starts"),
    }
}

/// Checks the loaded OpenBLAS against this CPU.
///
/// ```
/// let finding = parlinalg::kernel::check_loaded_kernel();
/// println!("{finding}");
/// ```
pub fn check_loaded_kernel() -> KernelFinding {
    let lib = BlasLibrary::query();
    check_kernel(&lib.corename, lib.dynamic_arch, &CpuFeatures::detect())
}

/// What [`ensure_best_kernel`] did, for the program to print.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelSelection {
    /// OpenBLAS picked a good kernel by itself; nothing to do.
    AlreadyBest {
        /// The running kernel.
        running: String,
    },
    /// The user set `OPENBLAS_CORETYPE`; it is kept as it is.
    UserChoice {
        /// The value the user set.
        value: String,
        /// The running kernel.
        running: String,
        /// The check's finding for that kernel.
        finding: KernelFinding,
    },
    /// This process was re-executed with `OPENBLAS_CORETYPE` set by [`ensure_best_kernel`].
    Reexecuted {
        /// The value that was set.
        value: String,
        /// The running kernel.
        running: String,
    },
    /// The kernel is not the best, but re-executing cannot fix it (fixed build, unknown CPU, or
    /// the re-execution itself did not take).
    CannotFix {
        /// The check's finding.
        finding: KernelFinding,
    },
}

impl fmt::Display for KernelSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelSelection::AlreadyBest { running } => {
                write!(f, "OpenBLAS kernel {running} (picked by OpenBLAS, best for this CPU)")
            }
            KernelSelection::UserChoice {
                value,
                running,
                finding,
            } => write!(
                f,
                "OpenBLAS kernel {running} ({CORETYPE_VAR}={value} set by you, kept; check: {finding})"
            ),
            KernelSelection::Reexecuted { value, running } => write!(
                f,
                "OpenBLAS kernel {running} (OpenBLAS picked a generic fallback; parlinalg re-executed this program with {CORETYPE_VAR}={value})"
            ),
            KernelSelection::CannotFix { finding } => {
                write!(f, "OpenBLAS kernel: {finding}")
            }
        }
    }
}

/// Opt-in helper for programs: makes sure OpenBLAS runs the best kernel for this CPU.
///
/// When `OPENBLAS_CORETYPE` is unset and OpenBLAS fell back to a lesser kernel than the CPU
/// supports, this replaces the current process (`exec`, same executable, arguments and
/// environment) with one that has `OPENBLAS_CORETYPE` set to the recommended kernel, once: the
/// child carries [`REEXEC_MARKER_VAR`] and never re-executes again. A variable the user set is
/// kept. Call it first thing in `main`, before any work and before printing (output before the
/// `exec` would appear twice).
///
/// Returns, in the process that goes on, what happened, for the program to print.
///
/// # Errors
/// Never fails in the process that goes on: a failed `exec` is reported as
/// [`KernelSelection::CannotFix`].
///
/// ```no_run
/// // First thing in main:
/// let selection = parlinalg::kernel::ensure_best_kernel();
/// println!("{selection}");
/// // ... the program, now on the right kernel
/// ```
pub fn ensure_best_kernel() -> KernelSelection {
    let lib = BlasLibrary::query();
    let finding = check_kernel(&lib.corename, lib.dynamic_arch, &CpuFeatures::detect());
    let decision = decide(
        finding,
        lib.corename,
        std::env::var(CORETYPE_VAR).ok(),
        std::env::var(REEXEC_MARKER_VAR).ok(),
    );
    match decision {
        Decision::Keep(selection) => selection,
        Decision::Reexec { value, finding } => {
            reexec_with(value);
            // Only reached when exec failed.
            KernelSelection::CannotFix { finding }
        }
    }
}

/// What [`ensure_best_kernel`] should do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Keep(KernelSelection),
    Reexec {
        value: &'static str,
        finding: KernelFinding,
    },
}

/// The pure part of [`ensure_best_kernel`]: from the finding, the running kernel, and the values
/// of `OPENBLAS_CORETYPE` and of our marker variable.
fn decide(
    finding: KernelFinding,
    running: String,
    coretype: Option<String>,
    marker: Option<String>,
) -> Decision {
    let keep = Decision::Keep;
    match (coretype, marker) {
        // We set it in a previous exec: say so, unless it did not help.
        (Some(value), Some(marker)) if value == marker => {
            if finding.is_suboptimal() {
                keep(KernelSelection::CannotFix { finding })
            } else {
                keep(KernelSelection::Reexecuted { value, running })
            }
        }
        // The user's own choice is kept, with the check's opinion of it.
        (Some(value), _) => keep(KernelSelection::UserChoice {
            value,
            running,
            finding,
        }),
        // The variable vanished after our exec: never loop.
        (None, Some(_)) => keep(KernelSelection::CannotFix { finding }),
        (None, None) => match (&finding, finding.recommended()) {
            (_, Some(value)) => Decision::Reexec { value, finding },
            (KernelFinding::Best { .. }, None) => keep(KernelSelection::AlreadyBest { running }),
            (_, None) => keep(KernelSelection::CannotFix { finding }),
        },
    }
}

/// Replaces this process with the same program and `OPENBLAS_CORETYPE=value`. Returns only if
/// `exec` failed.
#[cfg(unix)]
fn reexec_with(value: &str) {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    let _exec_error = cmd
        .args(args)
        .env(CORETYPE_VAR, value)
        .env(REEXEC_MARKER_VAR, value)
        .exec();
}

#[cfg(not(unix))]
fn reexec_with(_value: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(level: IsaLevel) -> CpuFeatures {
        let mut c = CpuFeatures {
            x86_64: true,
            sse3: true,
            ..CpuFeatures::default()
        };
        if level >= IsaLevel::Ssse3 {
            c.ssse3 = true;
        }
        if level >= IsaLevel::Sse42 {
            c.sse4_2 = true;
        }
        if level >= IsaLevel::Avx {
            c.avx = true;
        }
        if level >= IsaLevel::Avx2 {
            c.avx2 = true;
            c.fma = true;
        }
        if level >= IsaLevel::Avx512 {
            c.avx512f = true;
            c.avx512bw = true;
            c.avx512dq = true;
            c.avx512vl = true;
            c.avx512cd = true;
        }
        c
    }

    #[test]
    fn prescott_on_an_avx512_xeon_is_a_fallback_with_the_fix() {
        let f = check_kernel("Prescott", true, &cpu(IsaLevel::Avx512));
        match &f {
            KernelFinding::Fallback {
                recommended,
                fix,
                running_level,
                cpu_level,
                ..
            } => {
                assert_eq!(*recommended, "SkylakeX");
                assert_eq!(
                    fix,
                    "export OPENBLAS_CORETYPE=SkylakeX before the program starts"
                );
                assert_eq!(*running_level, IsaLevel::Sse3);
                assert_eq!(*cpu_level, IsaLevel::Avx512);
            }
            other => panic!("{other:?}"),
        }
        assert!(f.is_suboptimal());
    }

    #[test]
    fn cooperlake_is_recommended_only_with_bf16() {
        let mut c = cpu(IsaLevel::Avx512);
        assert_eq!(c.recommended_kernel(), Some("SkylakeX"));
        c.avx512bf16 = true;
        assert_eq!(c.recommended_kernel(), Some("Cooperlake"));
        // bf16 without the AVX-512 base set does not make an AVX-512 CPU.
        let mut d = cpu(IsaLevel::Avx2);
        d.avx512bf16 = true;
        assert_eq!(d.recommended_kernel(), Some("Haswell"));
    }

    #[test]
    fn partial_avx512_is_treated_as_avx2() {
        // Knights Landing style: F and CD but no BW/DQ/VL: SkylakeX kernels would fault.
        let mut c = cpu(IsaLevel::Avx2);
        c.avx512f = true;
        c.avx512cd = true;
        assert_eq!(c.isa_level(), Some(IsaLevel::Avx2));
        assert_eq!(c.recommended_kernel(), Some("Haswell"));
        assert_eq!(
            check_kernel("Haswell", true, &c),
            KernelFinding::Best {
                running: "Haswell".into()
            }
        );
    }

    #[test]
    fn avx2_without_fma_is_avx() {
        let mut c = cpu(IsaLevel::Avx);
        c.avx2 = true;
        assert_eq!(c.isa_level(), Some(IsaLevel::Avx));
        assert_eq!(c.recommended_kernel(), Some("Sandybridge"));
    }

    #[test]
    fn never_recommends_a_kernel_the_cpu_cannot_run() {
        let levels = [
            IsaLevel::Sse3,
            IsaLevel::Ssse3,
            IsaLevel::Sse42,
            IsaLevel::Avx,
            IsaLevel::Avx2,
            IsaLevel::Avx512,
        ];
        for cpu_level in levels {
            for bf16 in [false, true] {
                let mut c = cpu(cpu_level);
                c.avx512bf16 = bf16;
                let rec = c.recommended_kernel().unwrap();
                let rec_level = kernel_isa_level(rec).unwrap();
                assert!(rec_level <= cpu_level, "{rec} on {cpu_level}");
                assert_eq!(rec_level, cpu_level, "best kernel for {cpu_level} is {rec}");
                if rec == "Cooperlake" {
                    assert!(c.avx512bf16);
                }
                for running in [
                    "Prescott",
                    "Core2",
                    "Nehalem",
                    "Sandybridge",
                    "Haswell",
                    "Zen",
                    "SkylakeX",
                ] {
                    if let KernelFinding::Fallback { recommended, .. } =
                        check_kernel(running, true, &c)
                    {
                        assert!(kernel_isa_level(recommended).unwrap() <= cpu_level);
                    }
                }
            }
        }
    }

    #[test]
    fn matching_families_are_best_whatever_the_name() {
        // OpenBLAS names AMD Zen "Zen" but it runs the Haswell kernels.
        assert!(matches!(
            check_kernel("Zen", true, &cpu(IsaLevel::Avx2)),
            KernelFinding::Best { .. }
        ));
        assert!(matches!(
            check_kernel("COOPERLAKE", true, &cpu(IsaLevel::Avx512)),
            KernelFinding::Best { .. }
        ));
    }

    #[test]
    fn a_kernel_above_the_cpu_is_flagged() {
        let f = check_kernel("SkylakeX", true, &cpu(IsaLevel::Avx2));
        assert!(matches!(f, KernelFinding::AboveCpu { .. }), "{f:?}");
        assert!(f.to_string().contains("unset OPENBLAS_CORETYPE"));
        assert_eq!(f.recommended(), None);
    }

    #[test]
    fn a_fixed_build_cannot_be_fixed_by_the_variable() {
        let f = check_kernel("Haswell", false, &cpu(IsaLevel::Avx512));
        assert!(matches!(f, KernelFinding::FixedBuild { .. }), "{f:?}");
        assert!(f.is_suboptimal());
        assert_eq!(f.recommended(), None);
        assert!(f.to_string().contains("TARGET=SKYLAKEX"), "{f}");
    }

    #[test]
    fn unknown_names_and_architectures_are_unknown_not_errors() {
        assert!(matches!(
            check_kernel("Neoverse-V2", true, &cpu(IsaLevel::Avx512)),
            KernelFinding::Unknown { .. }
        ));
        assert!(matches!(
            check_kernel("Haswell", true, &CpuFeatures::default()),
            KernelFinding::Unknown { .. }
        ));
    }

    fn fallback() -> KernelFinding {
        check_kernel("Prescott", true, &cpu(IsaLevel::Avx512))
    }

    fn best() -> KernelFinding {
        check_kernel("SkylakeX", true, &cpu(IsaLevel::Avx512))
    }

    #[test]
    fn a_fallback_with_nothing_set_re_executes_with_the_recommendation() {
        let d = decide(fallback(), "Prescott".into(), None, None);
        assert!(
            matches!(
                d,
                Decision::Reexec {
                    value: "SkylakeX",
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn the_users_variable_is_kept() {
        let d = decide(fallback(), "Prescott".into(), Some("Prescott".into()), None);
        match d {
            Decision::Keep(KernelSelection::UserChoice { value, finding, .. }) => {
                assert_eq!(value, "Prescott");
                assert!(finding.is_suboptimal());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_re_executed_child_reports_and_never_loops() {
        let v = Some("SkylakeX".to_owned());
        let d = decide(best(), "SkylakeX".into(), v.clone(), v.clone());
        assert!(
            matches!(d, Decision::Keep(KernelSelection::Reexecuted { .. })),
            "{d:?}"
        );
        // The exec did not help (e.g. the library ignored the variable): report, do not loop.
        let d = decide(fallback(), "Prescott".into(), v.clone(), v.clone());
        assert!(
            matches!(d, Decision::Keep(KernelSelection::CannotFix { .. })),
            "{d:?}"
        );
        // The variable was removed between execs: do not loop either.
        let d = decide(fallback(), "Prescott".into(), None, v);
        assert!(
            matches!(d, Decision::Keep(KernelSelection::CannotFix { .. })),
            "{d:?}"
        );
    }

    #[test]
    fn nothing_to_fix_or_nothing_fixable_means_no_exec() {
        let d = decide(best(), "SkylakeX".into(), None, None);
        assert!(
            matches!(d, Decision::Keep(KernelSelection::AlreadyBest { .. })),
            "{d:?}"
        );
        let fixed = check_kernel("Haswell", false, &cpu(IsaLevel::Avx512));
        let d = decide(fixed, "Haswell".into(), None, None);
        assert!(
            matches!(d, Decision::Keep(KernelSelection::CannotFix { .. })),
            "{d:?}"
        );
        let unknown = check_kernel("Haswell", true, &CpuFeatures::default());
        let d = decide(unknown, "Haswell".into(), None, None);
        assert!(
            matches!(d, Decision::Keep(KernelSelection::CannotFix { .. })),
            "{d:?}"
        );
    }

    #[test]
    fn this_machine_checks_without_panicking() {
        let f = check_loaded_kernel();
        assert!(!f.to_string().is_empty());
    }
}
