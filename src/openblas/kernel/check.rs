//! Is the running kernel the best this CPU can run? [`check_kernel`] compares them and says the
//! exact fix; it never recommends a kernel that needs an instruction the CPU lacks.

use std::fmt;

use super::cpu::{kernel_isa_level, CpuFeatures, IsaLevel};
use crate::env::CORETYPE_VAR;
use crate::openblas::info::BlasLibrary;

/// What the kernel check ([`check_loaded_kernel`]) found.
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
    ///
    /// ```
    /// let finding = parlinalg::kernel::check_loaded_kernel();
    /// if finding.is_suboptimal() {
    ///     eprintln!("slower than this CPU allows: {finding}");
    /// }
    /// ```
    pub fn is_suboptimal(&self) -> bool {
        matches!(
            self,
            KernelFinding::Fallback { .. } | KernelFinding::FixedBuild { .. }
        )
    }

    /// The `OPENBLAS_CORETYPE` value that fixes a [`KernelFinding::Fallback`].
    ///
    /// ```
    /// let finding = parlinalg::kernel::check_loaded_kernel();
    /// // A recommendation exactly when the kernel is a fixable fallback.
    /// assert_eq!(
    ///     finding.recommended().is_some(),
    ///     matches!(finding, parlinalg::kernel::KernelFinding::Fallback { .. })
    /// );
    /// ```
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
/// against the CPU's features. Pure: tests pass made-up CPUs (an AVX-512 Xeon that Debian's
/// OpenBLAS 0.3.21 does not recognise runs `Prescott`: a [`KernelFinding::Fallback`] whose fix
/// is `OPENBLAS_CORETYPE=SkylakeX`).
pub(crate) fn check_kernel(corename: &str, dynamic_arch: bool, cpu: &CpuFeatures) -> KernelFinding {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(level: IsaLevel) -> CpuFeatures {
        CpuFeatures::with_level(level)
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
}
