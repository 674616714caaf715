//! Thread settings from environment variables: precedence, on parsed values. Pure.
//!
//! Nothing here reads the process environment: [`resolve`] and [`resolve_budget`] take a
//! [`Lookup`], so the precedence rules and every kind of junk are tested without touching (or
//! racing on) the real environment.

use serde::Serialize;

use super::cores::Cores;
use crate::env::{
    parse_keyword, parse_name, parse_os, Lookup, Parsed, Syntax, BLAS_THREADS_VAR,
    BUDGET_GROUP_VAR, BUDGET_VAR, DETERMINISTIC_VAR, OUTER_THREADS_VAR, RAYON_VAR,
    STANDARD_BLAS_VARS,
};
use crate::Result;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Source {
    /// Set from code (a setter, a scope, a plan).
    Code,
    /// Read from this environment variable.
    Env(String),
    /// Nothing was set: parlinalg's default, and why.
    Default(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Code => write!(f, "code"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Default(why) => write!(f, "default ({why})"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Setting<T> {
    /// The value in force.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// How many threads each BLAS call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", content = "threads", rename_all = "snake_case")]
pub enum BlasThreads {
    /// parlinalg's policy: all usable cores for a caller that is alone; while several
    /// application threads call BLAS at once, one thread per call, so that none queues behind
    /// another's multithreaded call (OpenBLAS's pthreads and OpenMP builds both make concurrent
    /// multithreaded calls queue). The cores are never oversubscribed.
    ///
    /// **The bits of a result can then depend on what other threads do** (OpenBLAS rounds
    /// differently on 1 and on several threads); [`DETERMINISTIC_VAR`] makes `auto` give every
    /// call the same count, so that they depend only on the inputs.
    Auto,
    /// Exactly this many, whatever else runs.
    Fixed(usize),
}

impl std::fmt::Display for BlasThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlasThreads::Auto => write!(f, "auto"),
            BlasThreads::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// The thread settings the environment asks for, before any code changes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvSettings {
    pub blas: Setting<BlasThreads>,
    pub outer: Setting<usize>,
    /// [`DETERMINISTIC_VAR`] is `1`.
    pub deterministic: bool,
}

/// Resolves BLAS and outer threads from the environment (through `lookup`, which returns the
/// raw OS value), with precedence `PARLINALG_*` > standard variables > default. Every variable
/// read is validated, including those a higher-precedence variable overrides: junk (non-UTF-8
/// included) is never silently ignored.
///
/// # Errors
/// The first invalid variable, as [`Error::InvalidEnv`].
pub(crate) fn resolve(
    lookup: Lookup<'_>,
    cores: &Cores,
    max_blas: usize,
    max_outer: usize,
) -> Result<EnvSettings> {
    let read = |name: &str, syntax: Syntax, max: usize| -> Result<Option<Parsed>> {
        lookup(name)
            .map(|raw| parse_os(name, &raw, syntax, max))
            .transpose()
    };

    // BLAS threads: ours, then what OpenBLAS itself reads, in its order.
    let ours = read(BLAS_THREADS_VAR, Syntax::CountOrAuto, max_blas)?;
    let mut standard = Vec::new();
    for name in STANDARD_BLAS_VARS {
        let syntax = if name == "OMP_NUM_THREADS" {
            Syntax::OmpList
        } else {
            Syntax::CountOrZeroDefault
        };
        if let Some(p) = read(name, syntax, max_blas)? {
            standard.push((name, p));
        }
    }
    let blas = match (ours, standard.first()) {
        (Some(p), _) => Setting {
            value: blas_value(p),
            source: Source::Env(BLAS_THREADS_VAR.into()),
        },
        (None, Some(&(name, p))) => Setting {
            value: blas_value(p),
            source: Source::Env(name.into()),
        },
        (None, None) => Setting {
            value: BlasThreads::Auto,
            source: Source::Default("no variable set".into()),
        },
    };

    // Outer threads: ours, then rayon's.
    let ours = read(OUTER_THREADS_VAR, Syntax::CountOrAuto, max_outer)?;
    let rayon = read(RAYON_VAR, Syntax::CountOrZeroDefault, max_outer)?;
    let default = || Setting {
        value: cores.count,
        source: Source::Default(format!("cores available: {}", cores.why)),
    };
    let outer = match (ours, rayon) {
        (Some(Parsed::Count(n)), _) => Setting {
            value: n,
            source: Source::Env(OUTER_THREADS_VAR.into()),
        },
        (Some(Parsed::Auto), _) => Setting {
            source: Source::Env(OUTER_THREADS_VAR.into()),
            ..default()
        },
        (None, Some(Parsed::Count(n))) => Setting {
            value: n,
            source: Source::Env(RAYON_VAR.into()),
        },
        (None, Some(Parsed::Auto)) => Setting {
            source: Source::Env(RAYON_VAR.into()),
            ..default()
        },
        (None, None) => default(),
    };
    let deterministic = lookup(DETERMINISTIC_VAR)
        .map(|raw| {
            parse_keyword(
                DETERMINISTIC_VAR,
                &raw,
                &[("1", true), ("0", false)],
                "1 (on) or 0 (off)",
            )
        })
        .transpose()?
        .unwrap_or(false);
    Ok(EnvSettings {
        blas,
        outer,
        deterministic,
    })
}

fn blas_value(p: Parsed) -> BlasThreads {
    match p {
        Parsed::Count(n) => BlasThreads::Fixed(n),
        Parsed::Auto => BlasThreads::Auto,
    }
}

/// The budget's settings from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BudgetEnv {
    pub enabled: Setting<bool>,
    pub group: Setting<String>,
}

/// Reads [`BUDGET_VAR`] and [`BUDGET_GROUP_VAR`] through `lookup`. Pure.
///
/// # Errors
/// [`crate::Error::InvalidEnv`] for a switch other than on/off/1/0, or a group name that is
/// empty, too long, starts with `.` or holds a character outside `A-Z a-z 0-9 _ - .`.
pub(crate) fn resolve_budget(lookup: Lookup<'_>) -> Result<BudgetEnv> {
    let enabled = match lookup(BUDGET_VAR) {
        None => Setting {
            value: true,
            source: Source::Default("on unless PARLINALG_BUDGET=off".into()),
        },
        Some(raw) => Setting {
            value: parse_keyword(
                BUDGET_VAR,
                &raw,
                &[("on", true), ("1", true), ("off", false), ("0", false)],
                "on or off (or 1 or 0)",
            )?,
            source: Source::Env(BUDGET_VAR.into()),
        },
    };
    let group = match lookup(BUDGET_GROUP_VAR) {
        None => Setting {
            value: "default".to_owned(),
            source: Source::Default("no group set".into()),
        },
        Some(raw) => Setting {
            value: parse_name(BUDGET_GROUP_VAR, &raw)?,
            source: Source::Env(BUDGET_GROUP_VAR.into()),
        },
    };
    Ok(BudgetEnv { enabled, group })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn cores(n: usize) -> Cores {
        Cores {
            count: n,
            affinity: Some(n),
            quota: None,
            online: Some(n),
            launcher: None,
            bound_to_one_core: false,
            why: format!("{n} in the affinity mask"),
            ignored_hints: Vec::new(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn resolve_with(pairs: &[(&str, &str)]) -> Result<EnvSettings> {
        resolve(&env(pairs), &cores(4), 64, 4096)
    }

    #[test]
    fn the_junk_catalogue_is_refused_with_name_value_and_reason() {
        let cases: &[(&str, &str, &str)] = &[
            (BLAS_THREADS_VAR, "abc", "not an integer"),
            (BLAS_THREADS_VAR, "-1", "negative"),
            (BLAS_THREADS_VAR, "0", "zero"),
            (BLAS_THREADS_VAR, "1e9", "not an integer"),
            (BLAS_THREADS_VAR, "", "empty"),
            (BLAS_THREADS_VAR, "   ", "empty"),
            (BLAS_THREADS_VAR, "2.5", "not an integer"),
            (BLAS_THREADS_VAR, "+3", "not an integer"),
            (BLAS_THREADS_VAR, "0x10", "not an integer"),
            (BLAS_THREADS_VAR, "65", "too large"),
            (BLAS_THREADS_VAR, "99999999999999999999999", "too large"),
            (OUTER_THREADS_VAR, "many", "not an integer"),
            (OUTER_THREADS_VAR, "5000", "too large"),
            ("OPENBLAS_NUM_THREADS", "-4", "negative"),
            ("OPENBLAS_NUM_THREADS", "two", "not an integer"),
            ("GOTO_NUM_THREADS", "", "empty"),
            ("OMP_NUM_THREADS", "0", "zero"),
            ("OMP_NUM_THREADS", ",4", "not an integer"),
            ("OMP_NUM_THREADS", "auto", "not an integer"),
            (RAYON_VAR, "-2", "negative"),
            (RAYON_VAR, "1.0", "not an integer"),
        ];
        for &(name, value, why) in cases {
            let err = resolve_with(&[(name, value)]).unwrap_err();
            match &err {
                Error::InvalidEnv {
                    name: n,
                    value: v,
                    why: w,
                } => {
                    assert_eq!(n, name);
                    assert_eq!(v, value);
                    assert!(w.contains(why), "{name}={value:?}: {w}");
                }
                other => panic!("{name}={value:?}: {other:?}"),
            }
            let msg = err.to_string();
            assert!(
                msg.contains(name) && msg.contains(&format!("{value:?}")),
                "{msg}"
            );
        }
    }

    #[test]
    fn precedence_ours_then_openblas_then_goto_then_omp() {
        let all = [
            (BLAS_THREADS_VAR, "1"),
            ("OPENBLAS_NUM_THREADS", "2"),
            ("GOTO_NUM_THREADS", "3"),
            ("OMP_NUM_THREADS", "4"),
        ];
        for skip in 0..4 {
            let r = resolve_with(&all[skip..]).unwrap();
            assert_eq!(r.blas.value, BlasThreads::Fixed(skip + 1));
            assert_eq!(r.blas.source, Source::Env(all[skip].0.into()));
        }
        let r = resolve_with(&[]).unwrap();
        assert_eq!(r.blas.value, BlasThreads::Auto);
        assert!(matches!(r.blas.source, Source::Default(_)));
    }

    #[test]
    fn auto_and_zero_defaults_keep_their_source() {
        let r = resolve_with(&[(BLAS_THREADS_VAR, "auto"), ("OPENBLAS_NUM_THREADS", "2")]).unwrap();
        assert_eq!(r.blas.value, BlasThreads::Auto);
        assert_eq!(r.blas.source, Source::Env(BLAS_THREADS_VAR.into()));
        let r = resolve_with(&[("OPENBLAS_NUM_THREADS", "0")]).unwrap();
        assert_eq!(r.blas.value, BlasThreads::Auto);
        let r = resolve_with(&[(RAYON_VAR, "0")]).unwrap();
        assert_eq!(r.outer.value, 4);
        assert_eq!(r.outer.source, Source::Env(RAYON_VAR.into()));
    }

    #[test]
    fn outer_threads_ours_then_rayon_then_cores() {
        let r = resolve_with(&[(OUTER_THREADS_VAR, "3"), (RAYON_VAR, "5")]).unwrap();
        assert_eq!(
            (r.outer.value, r.outer.source),
            (3, Source::Env(OUTER_THREADS_VAR.into()))
        );
        let r = resolve_with(&[(RAYON_VAR, "5")]).unwrap();
        assert_eq!(
            (r.outer.value, r.outer.source),
            (5, Source::Env(RAYON_VAR.into()))
        );
        let r = resolve_with(&[]).unwrap();
        assert_eq!(r.outer.value, 4);
        assert!(matches!(&r.outer.source, Source::Default(why) if why.contains("affinity")));
    }

    #[test]
    fn non_utf8_values_are_an_error_naming_the_variable() {
        use std::os::unix::ffi::OsStringExt;
        let raw = OsString::from_vec(vec![b'2', 0xff]);
        for name in [
            BLAS_THREADS_VAR,
            "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS",
            RAYON_VAR,
        ] {
            let err = parse_os(name, &raw, Syntax::CountOrAuto, 64).unwrap_err();
            match &err {
                Error::InvalidEnv {
                    name: n,
                    value,
                    why,
                } => {
                    assert_eq!(n, name);
                    assert_eq!(value, "2\u{fffd}");
                    assert!(why.contains("UTF-8"), "{why}");
                }
                other => panic!("{other:?}"),
            }
            // Through the precedence rules too: not treated as unset.
            let lookup = |k: &str| (k == name).then(|| raw.clone());
            let err = resolve(&lookup, &cores(4), 64, 4096).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn deterministic_is_one_or_zero() {
        assert!(!resolve_with(&[]).unwrap().deterministic);
        assert!(
            resolve_with(&[(DETERMINISTIC_VAR, "1")])
                .unwrap()
                .deterministic
        );
        assert!(
            !resolve_with(&[(DETERMINISTIC_VAR, " 0 ")])
                .unwrap()
                .deterministic
        );
        for junk in ["yes", "", "2", "true"] {
            let e = resolve_with(&[(DETERMINISTIC_VAR, junk)]).unwrap_err();
            assert!(e.to_string().contains(DETERMINISTIC_VAR), "{e}");
        }
    }

    #[test]
    fn junk_in_an_overridden_variable_is_still_an_error() {
        let err =
            resolve_with(&[(BLAS_THREADS_VAR, "2"), ("OMP_NUM_THREADS", "lots")]).unwrap_err();
        assert!(err.to_string().contains("OMP_NUM_THREADS"), "{err}");
    }

    fn budget(pairs: &[(&str, &str)]) -> Result<BudgetEnv> {
        resolve_budget(&env(pairs))
    }

    #[test]
    fn budget_switch_and_group_parse_and_junk_is_refused() {
        let d = budget(&[]).unwrap();
        assert!(d.enabled.value);
        assert_eq!(d.group.value, "default");
        for (v, on) in [("on", true), ("OFF", false), (" 0 ", false), ("1", true)] {
            assert_eq!(
                budget(&[(BUDGET_VAR, v)]).unwrap().enabled.value,
                on,
                "{v:?}"
            );
        }
        for junk in ["", "yes", "2", "of"] {
            let e = budget(&[(BUDGET_VAR, junk)]).unwrap_err();
            assert!(e.to_string().contains(BUDGET_VAR), "{e}");
        }
        assert_eq!(
            budget(&[(BUDGET_GROUP_VAR, "job-42.a_b")])
                .unwrap()
                .group
                .value,
            "job-42.a_b"
        );
        let long = "x".repeat(65);
        for junk in [
            "",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "é",
            long.as_str(),
            "a\0b",
        ] {
            let e = budget(&[(BUDGET_GROUP_VAR, junk)]).unwrap_err();
            assert!(e.to_string().contains(BUDGET_GROUP_VAR), "{junk:?}: {e}");
        }
    }
}
