//! Is OpenBLAS running the right kernel for this CPU?
//!
//! A `DYNAMIC_ARCH` OpenBLAS holds kernels for many CPUs and picks one when it loads. A build
//! older than the CPU does not recognise it and falls back to a generic kernel: Debian's 0.3.21
//! on a recent Xeon runs `Prescott` (SSE3) and its dgemm is 4.6× slower than with `SkylakeX`.
//! OpenBLAS reads `OPENBLAS_CORETYPE` when it selects its kernel table: at load, and again when a
//! `DYNAMIC_ARCH` build is asked to re-select it (`gotoblas_dynamic_init`).
//!
//! [`check_kernel`] compares the running kernel with the best instruction set the CPU and the OS
//! support (from CPUID) and returns a [`KernelFinding`] with the exact fix; it never recommends
//! a kernel that needs an instruction the CPU lacks. Every program that links parlinalg applies
//! that fix in-process before `main` ([`kernel_selection`] says what happened), so a user's
//! program runs the right kernel without any variable set.
//!
//! No case is left for re-executing the program with `OPENBLAS_CORETYPE` set (what parlinalg did
//! before): every `DYNAMIC_ARCH` build has `gotoblas_dynamic_init`, and a build without
//! `DYNAMIC_ARCH` holds one CPU's kernels, which no variable can change.

use std::fmt;
use std::sync::OnceLock;

use super::ffi::{self, DynamicArch};
use super::info::BlasLibrary;
use crate::{Error, Result};

/// The environment variable OpenBLAS reads at load to force a core kernel.
pub const CORETYPE_VAR: &str = "OPENBLAS_CORETYPE";

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
    ///
    /// ```
    /// let cpu = parlinalg::kernel::CpuFeatures::detect();
    /// println!("this CPU can run {:?}", cpu.recommended_kernel());
    /// ```
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
    ///
    /// ```
    /// use parlinalg::kernel::{CpuFeatures, IsaLevel};
    /// let sse_only = CpuFeatures { x86_64: true, sse3: true, ..CpuFeatures::default() };
    /// assert_eq!(sse_only.isa_level(), Some(IsaLevel::Sse3));
    /// assert_eq!(CpuFeatures::default().isa_level(), None); // not x86-64
    /// ```
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
    ///
    /// ```
    /// use parlinalg::kernel::CpuFeatures;
    /// let avx2 = CpuFeatures {
    ///     x86_64: true, sse3: true, ssse3: true, sse4_2: true, avx: true, avx2: true, fma: true,
    ///     ..CpuFeatures::default()
    /// };
    /// assert_eq!(avx2.recommended_kernel(), Some("Haswell"));
    /// ```
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
pub(crate) fn kernel_isa_level(corename: &str) -> Option<IsaLevel> {
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
    ///
    /// ```
    /// use parlinalg::kernel::{check_kernel, CpuFeatures};
    /// let avx2 = CpuFeatures {
    ///     x86_64: true, sse3: true, ssse3: true, sse4_2: true, avx: true, avx2: true, fma: true,
    ///     ..CpuFeatures::default()
    /// };
    /// assert!(check_kernel("Prescott", true, &avx2).is_suboptimal());
    /// assert!(!check_kernel("Haswell", true, &avx2).is_suboptimal());
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
    /// use parlinalg::kernel::{check_kernel, CpuFeatures};
    /// let avx2 = CpuFeatures {
    ///     x86_64: true, sse3: true, ssse3: true, sse4_2: true, avx: true, avx2: true, fma: true,
    ///     ..CpuFeatures::default()
    /// };
    /// assert_eq!(check_kernel("Prescott", true, &avx2).recommended(), Some("Haswell"));
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

/// parlinalg's variable for the in-process kernel switch: `auto` (the default: switch away from
/// a generic fallback unless `OPENBLAS_CORETYPE` is set), `off` (never switch), or `force`
/// (switch away from a fallback even when `OPENBLAS_CORETYPE` chose it: for tests and benches
/// that start a child on a given kernel).
pub const SWITCH_VAR: &str = "PARLINALG_KERNEL_SWITCH";

/// What [`SWITCH_VAR`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SwitchMode {
    /// Switch away from a generic fallback unless the user set `OPENBLAS_CORETYPE`.
    Auto,
    /// Never switch.
    Off,
    /// Switch away from a fallback even when `OPENBLAS_CORETYPE` chose it.
    Force,
}

/// Parses a value of [`SWITCH_VAR`] (`None`: unset, which is `auto`). ASCII case and surrounding
/// ASCII spaces are ignored.
///
/// # Errors
/// [`Error::InvalidEnv`] for anything but `auto`, `off` or `force` (or a value that is not
/// UTF-8), naming the variable and the value.
///
/// ```
/// use parlinalg::kernel::{parse_switch_mode, SwitchMode};
/// use std::ffi::OsStr;
///
/// assert_eq!(parse_switch_mode(None)?, SwitchMode::Auto);
/// assert_eq!(parse_switch_mode(Some(OsStr::new(" OFF ")))?, SwitchMode::Off);
/// assert!(parse_switch_mode(Some(OsStr::new("yes"))).is_err());
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn parse_switch_mode(raw: Option<&std::ffi::OsStr>) -> Result<SwitchMode> {
    let Some(raw) = raw else {
        return Ok(SwitchMode::Auto);
    };
    let invalid = |why: &str| Error::InvalidEnv {
        name: SWITCH_VAR.into(),
        value: raw.to_string_lossy().into_owned(),
        why: why.into(),
    };
    let text = raw.to_str().ok_or_else(|| invalid("not UTF-8"))?;
    match text
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase()
        .as_str()
    {
        "auto" => Ok(SwitchMode::Auto),
        "off" => Ok(SwitchMode::Off),
        "force" => Ok(SwitchMode::Force),
        _ => Err(invalid("expected auto, off or force")),
    }
}

/// What parlinalg did about OpenBLAS's core kernel when the process loaded: see
/// [`kernel_selection`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KernelSelection {
    /// OpenBLAS picked the best kernel family for this CPU by itself; nothing to do.
    AlreadyBest {
        /// The running kernel.
        running: String,
    },
    /// OpenBLAS picked a generic fallback and parlinalg switched it in-process, before `main`.
    Switched {
        /// The kernel OpenBLAS picked at load.
        from: String,
        /// The kernel running now.
        to: String,
        /// The OpenBLAS version, for the message.
        version: Option<String>,
        /// `true` when the switch overrode an `OPENBLAS_CORETYPE` (under `force`).
        forced: bool,
    },
    /// The user set `OPENBLAS_CORETYPE`; it is kept.
    UserChoice {
        /// The value the user set.
        value: String,
        /// The running kernel.
        running: String,
        /// The check's finding for that kernel.
        finding: KernelFinding,
    },
    /// The switch is turned off (`PARLINALG_KERNEL_SWITCH=off`).
    Disabled {
        /// The check's finding for the running kernel.
        finding: KernelFinding,
    },
    /// The kernel is below what the CPU supports (or the check cannot say) and could not be
    /// switched.
    NotSwitched {
        /// The check's finding for the running kernel.
        finding: KernelFinding,
        /// Why not.
        why: String,
    },
}

impl KernelSelection {
    /// `true` when the kernel that runs now is known to be below what the CPU supports.
    ///
    /// ```
    /// let selection = parlinalg::kernel::kernel_selection();
    /// if selection.is_suboptimal() {
    ///     eprintln!("slow BLAS kernel: {selection}");
    /// }
    /// ```
    pub fn is_suboptimal(&self) -> bool {
        match self {
            KernelSelection::AlreadyBest { .. } | KernelSelection::Switched { .. } => false,
            KernelSelection::UserChoice { finding, .. }
            | KernelSelection::Disabled { finding }
            | KernelSelection::NotSwitched { finding, .. } => {
                finding.is_suboptimal() || matches!(finding, KernelFinding::AboveCpu { .. })
            }
        }
    }
}

impl fmt::Display for KernelSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelSelection::AlreadyBest { running } => {
                write!(
                    f,
                    "{running}, picked by OpenBLAS: the best family for this CPU"
                )
            }
            KernelSelection::Switched {
                from,
                to,
                version,
                forced,
            } => {
                let version = version.as_deref().unwrap_or("(unknown version)");
                if *forced {
                    write!(
                        f,
                        "{to}, switched in-process from {from}, which {CORETYPE_VAR} chose \
                         ({SWITCH_VAR}=force)"
                    )
                } else {
                    write!(
                        f,
                        "{to}, switched in-process from {from}, which OpenBLAS {version} picked \
                         for this CPU"
                    )
                }
            }
            KernelSelection::UserChoice {
                value,
                running,
                finding,
            } => write!(
                f,
                "{running} ({CORETYPE_VAR}={value} set by you, kept; check: {finding})"
            ),
            KernelSelection::Disabled { finding } => {
                write!(f, "{finding} (switch off: {SWITCH_VAR}=off)")
            }
            KernelSelection::NotSwitched { finding, why } => {
                write!(f, "{finding} (not switched: {why})")
            }
        }
    }
}

/// What parlinalg did about OpenBLAS's kernel in this process.
///
/// A `DYNAMIC_ARCH` OpenBLAS older than the CPU picks a generic kernel at load (Debian's 0.3.21
/// runs `Prescott` on recent Xeons, 4.6× slower at dgemm). parlinalg fixes this in every
/// program that links it, before `main`: when the check finds a fallback, it selects the
/// recommended kernel again inside the same process (`gotoblas_dynamic_quit`, then
/// `gotoblas_dynamic_init` with `OPENBLAS_CORETYPE` set for that call only), and never a kernel
/// that needs an instruction the CPU lacks. A user's `OPENBLAS_CORETYPE` is kept;
/// `PARLINALG_KERNEL_SWITCH=off` turns the switch off (see [`SWITCH_VAR`]).
///
/// ```
/// let selection = parlinalg::kernel::kernel_selection();
/// println!("OpenBLAS kernel: {selection}");
/// assert!(!selection.to_string().is_empty());
/// ```
pub fn kernel_selection() -> &'static KernelSelection {
    SELECTION.get_or_init(|| KernelSelection::NotSwitched {
        finding: check_loaded_kernel(),
        why: "parlinalg's load-time constructor did not run".into(),
    })
}

static SELECTION: OnceLock<KernelSelection> = OnceLock::new();

// Why a load-time constructor, not the first parlinalg call: the switch leaves OpenBLAS without a
// kernel table between its two calls, so no thread may be inside OpenBLAS then, and only before
// `main` is that known (OpenBLAS's own worker threads, started by its constructor, which runs
// before ours, sit idle until a call). At a first call, another thread could already be in
// OpenBLAS through another crate. Setting `OPENBLAS_CORETYPE` for the duration of the call is
// sound for the same reason: no other thread reads the environment yet.
#[ctor::ctor(unsafe)]
fn select_kernel_at_load() {
    SELECTION.get_or_init(select_kernel);
}

/// Checks the loaded kernel and switches it when the rules above say so. Runs before `main`.
fn select_kernel() -> KernelSelection {
    let lib = BlasLibrary::query();
    let cpu = CpuFeatures::detect();
    let finding = check_kernel(&lib.corename, lib.dynamic_arch, &cpu);
    let mode = parse_switch_mode(std::env::var_os(SWITCH_VAR).as_deref());
    let coretype = std::env::var_os(CORETYPE_VAR).map(|v| v.to_string_lossy().into_owned());
    match decide(
        finding,
        &lib.corename,
        mode,
        coretype,
        cpu.recommended_kernel(),
    ) {
        Decision::Keep(selection) => selection,
        Decision::Switch { to, forced } => switch(&lib, to, forced, &cpu),
    }
}

/// What [`select_kernel`] should do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Keep(KernelSelection),
    Switch { to: &'static str, forced: bool },
}

/// The pure part of [`select_kernel`]: from the check's finding, the running kernel, the switch
/// mode, the user's `OPENBLAS_CORETYPE` and the kernel recommended for this CPU.
fn decide(
    finding: KernelFinding,
    running: &str,
    mode: Result<SwitchMode>,
    coretype: Option<String>,
    recommended: Option<&'static str>,
) -> Decision {
    let running = running.to_owned();
    let mode = match mode {
        Ok(mode) => mode,
        Err(e) => {
            return Decision::Keep(KernelSelection::NotSwitched {
                finding,
                why: e.to_string(),
            })
        }
    };
    match (mode, coretype) {
        (SwitchMode::Off, _) => return Decision::Keep(KernelSelection::Disabled { finding }),
        (SwitchMode::Auto, Some(value)) => {
            return Decision::Keep(KernelSelection::UserChoice {
                value,
                running,
                finding,
            })
        }
        _ => {}
    }
    let forced = matches!(mode, SwitchMode::Force);
    match (&finding, recommended) {
        (KernelFinding::Best { .. }, _) => Decision::Keep(KernelSelection::AlreadyBest { running }),
        (KernelFinding::Fallback { recommended, .. }, _) => Decision::Switch {
            to: recommended,
            forced,
        },
        // Only a forced OPENBLAS_CORETYPE can put a kernel above the CPU: bring it down.
        (KernelFinding::AboveCpu { .. }, Some(to)) => Decision::Switch { to, forced },
        (KernelFinding::FixedBuild { fix, .. }, _) => {
            let why = format!("the library holds one CPU's kernels (no DYNAMIC_ARCH): {fix}");
            Decision::Keep(KernelSelection::NotSwitched { finding, why })
        }
        _ => Decision::Keep(KernelSelection::NotSwitched {
            why: "the check cannot tell which kernel this CPU should run".into(),
            finding,
        }),
    }
}

/// Selects `to` in-process and checks that OpenBLAS took it.
fn switch(lib: &BlasLibrary, to: &'static str, forced: bool, cpu: &CpuFeatures) -> KernelSelection {
    let from = lib.corename.clone();
    let before = check_kernel(&from, lib.dynamic_arch, cpu);
    let dynamic = match DynamicArch::lookup() {
        Ok(d) => d,
        Err(why) => {
            return KernelSelection::NotSwitched {
                finding: before,
                why,
            }
        }
    };
    let users_value = std::env::var_os(CORETYPE_VAR);
    std::env::set_var(CORETYPE_VAR, to);
    // SAFETY: this runs in the load-time constructor (see `select_kernel_at_load`), before
    // `main`: no thread is inside OpenBLAS or can enter it until we return.
    unsafe { dynamic.reselect() };
    match users_value {
        Some(v) => std::env::set_var(CORETYPE_VAR, v),
        None => std::env::remove_var(CORETYPE_VAR),
    }
    let now = ffi::get_corename();
    if kernel_isa_level(&now) == kernel_isa_level(to) {
        KernelSelection::Switched {
            from,
            to: now,
            version: lib.version.clone(),
            forced,
        }
    } else {
        KernelSelection::NotSwitched {
            finding: check_kernel(&now, lib.dynamic_arch, cpu),
            why: format!("OpenBLAS did not take {CORETYPE_VAR}={to} in-process: it runs {now}"),
        }
    }
}

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

    fn decide_with(
        finding: KernelFinding,
        mode: Result<SwitchMode>,
        coretype: Option<&str>,
    ) -> Decision {
        let running = match &finding {
            KernelFinding::Best { running }
            | KernelFinding::Fallback { running, .. }
            | KernelFinding::FixedBuild { running, .. }
            | KernelFinding::AboveCpu { running, .. }
            | KernelFinding::Unknown { running, .. } => running.clone(),
        };
        decide(
            finding,
            &running,
            mode,
            coretype.map(str::to_owned),
            Some("SkylakeX"),
        )
    }

    #[test]
    fn a_fallback_with_nothing_set_is_switched_to_the_recommendation() {
        let d = decide_with(fallback(), Ok(SwitchMode::Auto), None);
        assert_eq!(
            d,
            Decision::Switch {
                to: "SkylakeX",
                forced: false
            }
        );
    }

    #[test]
    fn the_users_variable_is_kept_unless_forced() {
        match decide_with(fallback(), Ok(SwitchMode::Auto), Some("Prescott")) {
            Decision::Keep(KernelSelection::UserChoice { value, finding, .. }) => {
                assert_eq!(value, "Prescott");
                assert!(finding.is_suboptimal());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide_with(fallback(), Ok(SwitchMode::Force), Some("Prescott")),
            Decision::Switch {
                to: "SkylakeX",
                forced: true
            }
        );
    }

    #[test]
    fn off_never_switches_and_junk_is_reported_not_obeyed() {
        let d = decide_with(fallback(), Ok(SwitchMode::Off), None);
        assert!(
            matches!(d, Decision::Keep(KernelSelection::Disabled { .. })),
            "{d:?}"
        );
        let junk = parse_switch_mode(Some(std::ffi::OsStr::new("maybe")));
        match decide_with(fallback(), junk, None) {
            Decision::Keep(sel @ KernelSelection::NotSwitched { .. }) => {
                assert!(sel.is_suboptimal());
                let text = sel.to_string();
                assert!(text.contains("PARLINALG_KERNEL_SWITCH"), "{text}");
                assert!(text.contains("maybe"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn switch_mode_parsing() {
        use std::ffi::OsStr;
        for (raw, want) in [
            ("auto", SwitchMode::Auto),
            ("Off", SwitchMode::Off),
            (" force\t", SwitchMode::Force),
        ] {
            assert_eq!(parse_switch_mode(Some(OsStr::new(raw))).unwrap(), want);
        }
        for junk in ["", "0", "no", "forced", "\u{a0}off"] {
            let e = parse_switch_mode(Some(OsStr::new(junk))).unwrap_err();
            assert!(matches!(e, Error::InvalidEnv { .. }), "{junk:?}: {e:?}");
        }
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = parse_switch_mode(Some(OsStr::from_bytes(b"of\xff")));
        assert!(not_utf8.unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn nothing_to_fix_or_nothing_fixable_means_no_switch() {
        let d = decide_with(best(), Ok(SwitchMode::Force), None);
        assert!(
            matches!(d, Decision::Keep(KernelSelection::AlreadyBest { .. })),
            "{d:?}"
        );
        let fixed = check_kernel("Haswell", false, &cpu(IsaLevel::Avx512));
        match decide_with(fixed, Ok(SwitchMode::Auto), None) {
            Decision::Keep(KernelSelection::NotSwitched { why, .. }) => {
                assert!(why.contains("DYNAMIC_ARCH"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let unknown = check_kernel("Haswell", true, &CpuFeatures::default());
        let d = decide_with(unknown, Ok(SwitchMode::Auto), None);
        assert!(
            matches!(d, Decision::Keep(KernelSelection::NotSwitched { .. })),
            "{d:?}"
        );
    }

    #[test]
    fn a_forced_kernel_above_the_cpu_is_brought_down() {
        let above = check_kernel("SkylakeX", true, &cpu(IsaLevel::Avx2));
        let d = decide(
            above,
            "SkylakeX",
            Ok(SwitchMode::Force),
            Some("SkylakeX".into()),
            Some("Haswell"),
        );
        assert_eq!(
            d,
            Decision::Switch {
                to: "Haswell",
                forced: true
            }
        );
    }

    #[test]
    fn the_switched_message_says_what_happened() {
        let s = KernelSelection::Switched {
            from: "Prescott".into(),
            to: "Cooperlake".into(),
            version: Some("0.3.21".into()),
            forced: false,
        };
        assert_eq!(
            s.to_string(),
            "Cooperlake, switched in-process from Prescott, which OpenBLAS 0.3.21 picked for this CPU"
        );
        assert!(!s.is_suboptimal());
    }

    #[test]
    fn this_process_ran_the_load_time_selection() {
        // The constructor ran before the test harness's main: the selection is its record, not
        // the fallback that says it did not run.
        let sel = kernel_selection();
        assert!(
            !sel.to_string().contains("did not run"),
            "the load-time constructor did not run: {sel}"
        );
    }

    #[test]
    fn this_machines_finding_agrees_with_what_was_selected() {
        let f = check_loaded_kernel();
        let lib = BlasLibrary::query();
        assert_eq!(
            f,
            check_kernel(&lib.corename, lib.dynamic_arch, &CpuFeatures::detect())
        );
        // After the load-time selection the kernel is the best family, unless the selection
        // says why not (the user's OPENBLAS_CORETYPE, the switch turned off, ...).
        match kernel_selection() {
            KernelSelection::AlreadyBest { running }
            | KernelSelection::Switched { to: running, .. } => {
                assert_eq!(running, &lib.corename);
                assert!(matches!(f, KernelFinding::Best { .. }), "{f}");
            }
            other => assert!(!other.to_string().is_empty()),
        }
    }
}
