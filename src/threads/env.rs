//! Thread counts from environment variables: pure parsing and precedence.
//!
//! Nothing here reads the process environment: [`resolve`] takes a lookup function, so the
//! precedence rules and every kind of junk are tested without touching (or racing on) the real
//! environment. The process reads its environment once, in [`super::control`].

use std::ffi::{OsStr, OsString};

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
/// parlinalg's switch for deterministic BLAS results under `auto`: `1` (on) or `0` (off).
///
/// Under `auto` the thread count of a call depends on what other threads do (all cores for a
/// caller alone, one thread while callers overlap), and OpenBLAS rounds differently on 1 and
/// on several threads, so the bits of a product can depend on concurrency. With this set to
/// `1`, `auto` gives every call the same count (the usable cores, capped at OpenBLAS's
/// maximum) whatever other threads do, so each result depends only on its inputs; concurrent
/// multithreaded calls then queue on pthreads OpenBLAS's lock instead of running side by side.
/// A fixed count (code or environment) is deterministic in the same way.
pub const DETERMINISTIC_VAR: &str = "PARLINALG_DETERMINISTIC";
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

/// What one variable may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// A positive count, or `auto` (parlinalg's variables).
    CountOrAuto,
    /// A positive count, or 0 meaning "the library's default" (OpenBLAS and rayon read 0 so).
    CountOrZeroDefault,
    /// A positive count, or an OpenMP nested list `4,2` (OMP_NUM_THREADS): every entry must be
    /// a positive count, or the whole value is refused; the first entry (the team size of the
    /// outermost parallel level, which is what OpenBLAS gets) is the BLAS thread count, and
    /// only it is held to the BLAS maximum.
    OmpList,
}

/// A parsed thread-count variable: a count, or "use the default".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    Count(usize),
    Auto,
}

/// Parses the raw value of thread-count variable `name` as the OS gives it: a value that is
/// not UTF-8 is refused (not treated as unset). Pure.
///
/// # Errors
/// As [`parse_count`], and [`Error::InvalidEnv`] for a value that is not valid UTF-8 (the
/// message shows it with U+FFFD for the invalid bytes).
pub(crate) fn parse_os(name: &str, raw: &OsStr, syntax: Syntax, max: usize) -> Result<Parsed> {
    match raw.to_str() {
        Some(text) => parse_count(name, text, syntax, max),
        None => Err(Error::InvalidEnv {
            name: name.to_owned(),
            value: raw.to_string_lossy().into_owned(),
            why: "not valid UTF-8; expected a positive integer in ASCII digits".into(),
        }),
    }
}

/// Parses the raw value of thread-count variable `name`. Pure.
///
/// Only ASCII whitespace around the value (and around each entry of an OpenMP list) is
/// trimmed: a Unicode space such as U+00A0 is junk, as it is to OpenBLAS (whose own parse
/// reads 0 there).
///
/// # Errors
/// [`Error::InvalidEnv`] naming the variable, its value and why: empty, not an integer
/// (`abc`, `1e9`, `2.5`, `\u{a0}2`), negative, zero where zero means nothing, above `max`; for
/// an OpenMP list, any entry that is not a positive integer (`2,abc`, `2,0`, `2,`).
pub(crate) fn parse_count(name: &str, raw: &str, syntax: Syntax, max: usize) -> Result<Parsed> {
    let bad = |why: String| Error::InvalidEnv {
        name: name.to_owned(),
        value: raw.to_owned(),
        why,
    };
    let text = trim_ascii(raw);
    if text.is_empty() {
        return Err(bad("empty; unset it or give a positive integer".into()));
    }
    if syntax == Syntax::CountOrAuto && text.eq_ignore_ascii_case("auto") {
        return Ok(Parsed::Auto);
    }
    let expected = match syntax {
        Syntax::CountOrAuto => "a positive integer or \"auto\"",
        Syntax::CountOrZeroDefault => "a positive integer (or 0 for the default)",
        Syntax::OmpList => "a positive integer or a list like \"4,2\"",
    };
    let first = match syntax {
        Syntax::OmpList => {
            let mut entries = text.split(',').map(trim_ascii);
            let first = entries.next().unwrap_or("");
            for (i, entry) in entries.enumerate() {
                // Nested levels: positive counts, no upper bound of ours (they are not BLAS
                // threads), but they must fit a usize.
                let why = match digits(entry) {
                    Err(kind) => kind,
                    Ok(None) => "too large",
                    Ok(Some(0)) => "zero",
                    Ok(Some(_)) => continue,
                };
                return Err(bad(format!(
                    "entry {} of the list ({entry:?}) is {why}; every entry must be a positive \
                     integer, expected {expected}",
                    i + 2
                )));
            }
            first
        }
        _ => text,
    };
    let n = match digits(first) {
        Err(kind) => return Err(bad(format!("{kind}; expected {expected}"))),
        Ok(None) => return Err(bad(format!("too large; the maximum is {max}"))),
        Ok(Some(n)) => n,
    };
    match (n, syntax) {
        (0, Syntax::CountOrZeroDefault) => Ok(Parsed::Auto),
        (0, Syntax::CountOrAuto) => Err(bad("zero; use \"auto\" for the default".into())),
        (0, Syntax::OmpList) => Err(bad("zero; OpenMP needs at least 1".into())),
        (n, _) if n > max => Err(bad(format!("too large; the maximum is {max}"))),
        (n, _) => Ok(Parsed::Count(n)),
    }
}

/// `s` without leading and trailing ASCII whitespace (and nothing else).
fn trim_ascii(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// `Ok(Some(n))` for ASCII digits, `Ok(None)` for digits that overflow a usize, else what the
/// text is (`"negative"`, `"not an integer"`).
fn digits(s: &str) -> std::result::Result<Option<usize>, &'static str> {
    if s.len() > 1 && s.starts_with('-') && s[1..].bytes().all(|c| c.is_ascii_digit()) {
        return Err("negative");
    }
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err("not an integer");
    }
    Ok(s.parse().ok())
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
    lookup: &dyn Fn(&str) -> Option<OsString>,
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
    let deterministic = match lookup(DETERMINISTIC_VAR) {
        None => false,
        Some(raw) => match raw.to_str().map(trim_ascii) {
            Some("1") => true,
            Some("0") => false,
            _ => {
                return Err(Error::InvalidEnv {
                    name: DETERMINISTIC_VAR.to_owned(),
                    value: raw.to_string_lossy().into_owned(),
                    why: "expected 1 (on) or 0 (off)".into(),
                })
            }
        },
    };
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

/// The raw values of every variable parlinalg reads, for the report.
pub(crate) fn relevant_vars() -> impl Iterator<Item = &'static str> {
    [
        BLAS_THREADS_VAR,
        OUTER_THREADS_VAR,
        DETERMINISTIC_VAR,
        super::budget::BUDGET_VAR,
        super::budget::BUDGET_GROUP_VAR,
    ]
    .into_iter()
    .chain(STANDARD_BLAS_VARS)
    .chain([RAYON_VAR, crate::openblas::kernel::CORETYPE_VAR])
    .chain(super::launcher::launcher_vars())
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn every_entry_of_an_omp_list_must_be_a_positive_count() {
        let p = |raw| parse_count("OMP_NUM_THREADS", raw, Syntax::OmpList, 64);
        for (raw, why) in [
            ("2,abc", "entry 2"),
            ("2,0", "entry 2"),
            ("2,", "entry 2"),
            ("2,,3", "entry 2"),
            ("2,-1", "entry 2"),
            ("4,2,x", "entry 3"),
            ("0,2", "zero"),
            ("65,1", "too large"),
        ] {
            let err = p(raw).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("OMP_NUM_THREADS") && msg.contains(why),
                "{raw:?}: {msg}"
            );
        }
        // The first entry (the outermost level's team, which OpenBLAS gets) is the count;
        // nested levels may be larger than the BLAS maximum.
        assert_eq!(p("4,2").unwrap(), Parsed::Count(4));
        assert_eq!(p("3, 1000").unwrap(), Parsed::Count(3));
        assert_eq!(p(" 2 , 2 ").unwrap(), Parsed::Count(2));
    }

    #[test]
    fn only_ascii_whitespace_is_trimmed() {
        for raw in ["\u{a0}2", "2\u{a0}", "\u{2003}2", "2\u{3000}", "\u{feff}2"] {
            for syntax in [
                Syntax::CountOrAuto,
                Syntax::CountOrZeroDefault,
                Syntax::OmpList,
            ] {
                let err = parse_count("X", raw, syntax, 64).unwrap_err();
                assert!(err.to_string().contains("not an integer"), "{raw:?}: {err}");
            }
        }
        assert_eq!(
            parse_count("X", "\t 2\n", Syntax::CountOrAuto, 64).unwrap(),
            Parsed::Count(2)
        );
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
}
