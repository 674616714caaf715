//! The in-process switch: away from a generic fallback kernel, before `main`.

use std::fmt;
use std::sync::OnceLock;

use super::check::{check_kernel, check_loaded_kernel, KernelFinding};
use super::cpu::{kernel_isa_level, CpuFeatures};
use crate::env::{parse_keyword, CORETYPE_VAR, SWITCH_VAR};
use crate::openblas::ffi::{self, DynamicArch};
use crate::openblas::info::BlasLibrary;
use crate::Result;

/// What [`SWITCH_VAR`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SwitchMode {
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
/// [`crate::Error::InvalidEnv`] for anything but `auto`, `off` or `force` (or a value that is
/// not UTF-8), naming the variable and the value.
fn parse_switch_mode(raw: Option<&std::ffi::OsStr>) -> Result<SwitchMode> {
    raw.map_or(Ok(SwitchMode::Auto), |raw| {
        parse_keyword(
            SWITCH_VAR,
            raw,
            &[
                ("auto", SwitchMode::Auto),
                ("off", SwitchMode::Off),
                ("force", SwitchMode::Force),
            ],
            "auto, off or force",
        )
    })
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
    let mode = parse_switch_mode(crate::env::read(SWITCH_VAR).as_deref());
    let coretype = crate::env::read(CORETYPE_VAR).map(|v| v.to_string_lossy().into_owned());
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
    // SAFETY: (both calls) this runs in the load-time constructor (see `select_kernel_at_load`),
    // before `main`: no other thread reads the environment, and none is inside OpenBLAS or can
    // enter it until we return. The user's value (or its absence) is put back afterwards.
    unsafe { crate::env::with_var(CORETYPE_VAR, to, || dynamic.reselect()) };
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
    use crate::openblas::kernel::cpu::IsaLevel;
    use crate::Error;

    fn cpu(level: IsaLevel) -> CpuFeatures {
        CpuFeatures::with_level(level)
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
