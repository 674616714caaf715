//! Thread counts from environment variables: pure parsing and precedence.
//!
//! Nothing here reads the process environment: [`resolve`] takes a lookup function, so the
//! precedence rules and every kind of junk are tested without touching (or racing on) the real
//! environment. The process reads its environment once, in [`super::control`].

use serde::Serialize;

use super::cores::Cores;
use crate::{Error, Result};

/// parlinalg's own variable for BLAS threads (a count, or `auto`).
pub const BLAS_THREADS_VAR: &str = "PARLINALG_BLAS_THREADS";
/// parlinalg's own variable for outer threads (a count, or `auto`).
pub const OUTER_THREADS_VAR: &str = "PARLINALG_OUTER_THREADS";
/// The standard variables OpenBLAS reads at load, highest precedence first.
pub const STANDARD_BLAS_VARS: [&str; 3] = [
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
];
/// rayon's variable for its global pool.
pub const RAYON_VAR: &str = "RAYON_NUM_THREADS";

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
    /// parlinalg's policy: all usable cores for a caller that is alone, one thread per call
    /// while several application threads call BLAS at once (so none queues behind another's
    /// multithreaded call, and the cores are never oversubscribed).
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

/// What one variable may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// A positive count, or `auto` (parlinalg's variables).
    CountOrAuto,
    /// A positive count, or 0 meaning "the library's default" (OpenBLAS and rayon read 0 so).
    CountOrZeroDefault,
    /// A positive count, or an OpenMP list `4,2` whose first entry counts (OMP_NUM_THREADS).
    OmpList,
}

/// A parsed thread-count variable: a count, or "use the default".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    Count(usize),
    Auto,
}

/// Parses the raw value of thread-count variable `name`. Pure.
///
/// # Errors
/// [`Error::InvalidEnv`] naming the variable, its value and why: empty, not an integer
/// (`abc`, `1e9`, `2.5`), negative, zero where zero means nothing, above `max`.
pub(crate) fn parse_count(name: &str, raw: &str, syntax: Syntax, max: usize) -> Result<Parsed> {
    let bad = |why: String| Error::InvalidEnv {
        name: name.to_owned(),
        value: raw.to_owned(),
        why,
    };
    let text = raw.trim();
    if text.is_empty() {
        return Err(bad("empty; unset it or give a positive integer".into()));
    }
    if syntax == Syntax::CountOrAuto && text.eq_ignore_ascii_case("auto") {
        return Ok(Parsed::Auto);
    }
    let first = match syntax {
        Syntax::OmpList => text.split(',').next().unwrap_or("").trim(),
        _ => text,
    };
    let expected = match syntax {
        Syntax::CountOrAuto => "a positive integer or \"auto\"",
        Syntax::CountOrZeroDefault => "a positive integer (or 0 for the default)",
        Syntax::OmpList => "a positive integer or a list like \"4,2\"",
    };
    if first.starts_with('-') && first[1..].chars().all(|c| c.is_ascii_digit()) && first.len() > 1 {
        return Err(bad(format!("negative; expected {expected}")));
    }
    if first.is_empty() || !first.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(format!("not an integer; expected {expected}")));
    }
    let n: usize = match first.parse() {
        Ok(n) => n,
        Err(_) => return Err(bad(format!("too large; the maximum is {max}"))),
    };
    match (n, syntax) {
        (0, Syntax::CountOrZeroDefault) => Ok(Parsed::Auto),
        (0, Syntax::CountOrAuto) => Err(bad("zero; use \"auto\" for the default".into())),
        (0, Syntax::OmpList) => Err(bad("zero; OpenMP needs at least 1".into())),
        (n, _) if n > max => Err(bad(format!("too large; the maximum is {max}"))),
        (n, _) => Ok(Parsed::Count(n)),
    }
}

/// The thread settings the environment asks for, before any code changes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvSettings {
    pub blas: Setting<BlasThreads>,
    pub outer: Setting<usize>,
}

/// Resolves BLAS and outer threads from the environment (through `lookup`), with precedence
/// `PARLINALG_*` > standard variables > default. Every variable read is validated, including
/// those a higher-precedence variable overrides: junk is never silently ignored.
///
/// # Errors
/// The first invalid variable, as [`Error::InvalidEnv`].
pub(crate) fn resolve(
    lookup: &dyn Fn(&str) -> Option<String>,
    cores: &Cores,
    max_blas: usize,
    max_outer: usize,
) -> Result<EnvSettings> {
    let read = |name: &str, syntax: Syntax, max: usize| -> Result<Option<Parsed>> {
        lookup(name)
            .map(|raw| parse_count(name, &raw, syntax, max))
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
    Ok(EnvSettings { blas, outer })
}

fn blas_value(p: Parsed) -> BlasThreads {
    match p {
        Parsed::Count(n) => BlasThreads::Fixed(n),
        Parsed::Auto => BlasThreads::Auto,
    }
}

/// The raw values of every variable parlinalg reads, for the report.
pub(crate) fn relevant_vars() -> impl Iterator<Item = &'static str> {
    [BLAS_THREADS_VAR, OUTER_THREADS_VAR]
        .into_iter()
        .chain(STANDARD_BLAS_VARS)
        .chain([RAYON_VAR, crate::kernel::CORETYPE_VAR])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cores(n: usize) -> Cores {
        Cores {
            count: n,
            affinity: Some(n),
            quota: None,
            why: format!("{n} in the affinity mask"),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
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
    fn valid_values_parse() {
        let p = |name, raw, syntax| parse_count(name, raw, syntax, 64).unwrap();
        assert_eq!(p("X", " 3 ", Syntax::CountOrAuto), Parsed::Count(3));
        assert_eq!(p("X", "AUTO", Syntax::CountOrAuto), Parsed::Auto);
        assert_eq!(p("X", "0", Syntax::CountOrZeroDefault), Parsed::Auto);
        assert_eq!(p("X", "4,2", Syntax::OmpList), Parsed::Count(4));
        assert_eq!(p("X", "64", Syntax::CountOrAuto), Parsed::Count(64));
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
    fn junk_in_an_overridden_variable_is_still_an_error() {
        let err =
            resolve_with(&[(BLAS_THREADS_VAR, "2"), ("OMP_NUM_THREADS", "lots")]).unwrap_err();
        assert!(err.to_string().contains("OMP_NUM_THREADS"), "{err}");
    }
}
