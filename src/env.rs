//! Every environment variable parlinalg reads: their names, the one place the process
//! environment is read, and the parsers.
//!
//! The layers above never call `std::env`: the thread layer resolves its settings from a
//! [`Lookup`] (the process's, from [`process`], or a map in tests), and the kernel switch reads
//! its two variables through [`read`]. Every parser is pure, takes `(name, raw)`, refuses junk
//! with an [`Error::InvalidEnv`] built by [`invalid`] (the variable, its value, why), and trims
//! ASCII whitespace only: a Unicode space such as U+00A0 is junk, as it is to OpenBLAS. A value
//! that is not UTF-8 is junk too, never treated as unset.

use std::ffi::{OsStr, OsString};

use crate::{Error, Result};

/// parlinalg's variable for BLAS threads (a count, or `auto`).
pub const BLAS_THREADS_VAR: &str = "PARLINALG_BLAS_THREADS";
/// parlinalg's variable for outer threads (a count, or `auto`).
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

/// parlinalg's switch for the machine-wide budget: `on` (the default) or `off` (also `1`/`0`).
///
/// ```
/// assert_eq!(parlinalg::threads::BUDGET_VAR, "PARLINALG_BUDGET");
/// ```
pub const BUDGET_VAR: &str = "PARLINALG_BUDGET";

/// The budget's group: processes share slots only with processes of the same group (and
/// user). 1 to 64 characters from `A-Z a-z 0-9 _ - .`, not starting with `.`; `default` when
/// unset.
///
/// ```
/// assert_eq!(parlinalg::threads::BUDGET_GROUP_VAR, "PARLINALG_BUDGET_GROUP");
/// ```
pub const BUDGET_GROUP_VAR: &str = "PARLINALG_BUDGET_GROUP";

/// The variables that give the number of ranks on this node, highest precedence first: Open
/// MPI, MPICH and Intel MPI, Cray PMI, MVAPICH2, then Slurm (`SLURM_NTASKS_PER_NODE`, or
/// `SLURM_TASKS_PER_NODE` read at this node's `SLURM_NODEID`).
///
/// ```
/// use parlinalg::threads::LOCAL_SIZE_VARS;
/// assert_eq!(LOCAL_SIZE_VARS[0], "OMPI_COMM_WORLD_LOCAL_SIZE");
/// ```
pub const LOCAL_SIZE_VARS: [&str; 6] = [
    "OMPI_COMM_WORLD_LOCAL_SIZE",
    "MPI_LOCALNRANKS",
    "PMI_LOCAL_SIZE",
    "MV2_COMM_WORLD_LOCAL_SIZE",
    "SLURM_NTASKS_PER_NODE",
    "SLURM_TASKS_PER_NODE",
];

/// The variables that give a rank's own CPU count (Slurm's `--cpus-per-task`), highest first.
///
/// ```
/// assert!(parlinalg::threads::CPUS_PER_TASK_VARS.contains(&"SLURM_CPUS_PER_TASK"));
/// ```
pub const CPUS_PER_TASK_VARS: [&str; 2] = ["SLURM_CPUS_PER_TASK", "SRUN_CPUS_PER_TASK"];

/// Slurm's index of this node in the job, for `SLURM_TASKS_PER_NODE`.
pub(crate) const NODE_ID_VAR: &str = "SLURM_NODEID";

/// OpenBLAS's variable that picks its core kernel at load.
pub const CORETYPE_VAR: &str = "OPENBLAS_CORETYPE";

/// parlinalg's variable for the in-process kernel switch: `auto` (the default: switch away from
/// a generic fallback unless `OPENBLAS_CORETYPE` is set), `off` (never switch), or `force`
/// (switch away from a fallback even when `OPENBLAS_CORETYPE` chose it: for tests and benches
/// that start a child on a given kernel).
pub const SWITCH_VAR: &str = "PARLINALG_KERNEL_SWITCH";

/// Where the budget puts its directory when there is no `/dev/shm`.
pub(crate) const RUNTIME_DIR_VAR: &str = "XDG_RUNTIME_DIR";

/// Every variable that decides how parlinalg threads, in the order the report lists them
/// (the kernel switch and the budget's fallback directory change where, not how many).
pub(crate) fn reported_vars() -> impl Iterator<Item = &'static str> {
    [
        BLAS_THREADS_VAR,
        OUTER_THREADS_VAR,
        DETERMINISTIC_VAR,
        BUDGET_VAR,
        BUDGET_GROUP_VAR,
    ]
    .into_iter()
    .chain(STANDARD_BLAS_VARS)
    .chain([RAYON_VAR, CORETYPE_VAR])
    .chain(LOCAL_SIZE_VARS)
    .chain(CPUS_PER_TASK_VARS)
    .chain([NODE_ID_VAR])
}

/// How a variable is looked up: its raw OS value, or `None` when unset.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process environment, as a [`Lookup`]: the only reader of `std::env` in parlinalg.
pub(crate) fn process(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// One variable of the process environment, as its raw OS value.
pub(crate) fn read(name: &str) -> Option<OsString> {
    process(name)
}

/// Sets `name` to `value` while `f` runs, then puts back what was there (unset if nothing).
///
/// # Safety
/// No other thread may read or write the environment meanwhile (the kernel switch calls it in
/// its load-time constructor, before `main`).
pub(crate) unsafe fn with_var<R>(name: &str, value: &str, f: impl FnOnce() -> R) -> R {
    let before = std::env::var_os(name);
    std::env::set_var(name, value);
    let r = f();
    match before {
        Some(v) => std::env::set_var(name, v),
        None => std::env::remove_var(name),
    }
    r
}

/// The error for variable `name` holding `raw`, with why: the one builder of
/// [`Error::InvalidEnv`].
pub(crate) fn invalid(name: &str, raw: impl AsRef<OsStr>, why: impl Into<String>) -> Error {
    Error::InvalidEnv {
        name: name.to_owned(),
        value: raw.as_ref().to_string_lossy().into_owned(),
        why: why.into(),
    }
}

/// What a count variable may hold.
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
    /// A positive count (launcher variables).
    Positive,
    /// An index: 0, 1, ... (Slurm's node id).
    Index,
}

/// A parsed count variable: a count, or "use the default".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    Count(usize),
    Auto,
}

/// Parses the raw value of count variable `name` as the OS gives it. Pure.
///
/// # Errors
/// As [`parse_count`], and [`Error::InvalidEnv`] for a value that is not valid UTF-8 (the
/// message shows it with U+FFFD for the invalid bytes).
pub(crate) fn parse_os(name: &str, raw: &OsStr, syntax: Syntax, max: usize) -> Result<Parsed> {
    match raw.to_str() {
        Some(text) => parse_count(name, text, syntax, max),
        None => Err(invalid(
            name,
            raw,
            "not valid UTF-8; expected a positive integer in ASCII digits",
        )),
    }
}

/// Parses the raw value of count variable `name`. Pure.
///
/// Only ASCII whitespace around the value (and around each entry of an OpenMP list) is
/// trimmed.
///
/// # Errors
/// [`Error::InvalidEnv`] naming the variable, its value and why: empty, not an integer
/// (`abc`, `1e9`, `2.5`, `\u{a0}2`), negative, zero where zero means nothing, above `max`; for
/// an OpenMP list, any entry that is not a positive integer (`2,abc`, `2,0`, `2,`).
pub(crate) fn parse_count(name: &str, raw: &str, syntax: Syntax, max: usize) -> Result<Parsed> {
    let bad = |why: String| invalid(name, raw, why);
    let text = trim_ascii(raw);
    if text.is_empty() {
        return Err(bad(match syntax {
            Syntax::Index => "empty; expected a node index (0, 1, ...)".into(),
            _ => "empty; unset it or give a positive integer".into(),
        }));
    }
    if syntax == Syntax::CountOrAuto && text.eq_ignore_ascii_case("auto") {
        return Ok(Parsed::Auto);
    }
    let expected = match syntax {
        Syntax::CountOrAuto => "a positive integer or \"auto\"",
        Syntax::CountOrZeroDefault => "a positive integer (or 0 for the default)",
        Syntax::OmpList => "a positive integer or a list like \"4,2\"",
        Syntax::Positive => "a positive integer",
        Syntax::Index => "a node index (0, 1, ...)",
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
        (0, Syntax::Positive) => Err(bad(format!("zero; expected {expected}"))),
        (n, _) if n > max => Err(bad(format!("too large; the maximum is {max}"))),
        (n, _) => Ok(Parsed::Count(n)),
    }
}

/// Parses a keyword variable: the value of the first `(word, value)` of `choices` that the
/// raw value matches, ignoring ASCII case and surrounding ASCII whitespace. Pure.
///
/// # Errors
/// [`Error::InvalidEnv`] naming the variable, its value and `expected` for anything else (and
/// for a value that is not UTF-8).
pub(crate) fn parse_keyword<T: Copy>(
    name: &str,
    raw: &OsStr,
    choices: &[(&str, T)],
    expected: &str,
) -> Result<T> {
    let Some(text) = raw.to_str() else {
        return Err(invalid(
            name,
            raw,
            format!("not valid UTF-8; expected {expected}"),
        ));
    };
    let text = trim_ascii(text);
    choices
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(text))
        .map(|&(_, value)| value)
        .ok_or_else(|| invalid(name, raw, format!("expected {expected}")))
}

/// Parses a name variable: 1 to 64 characters from `A-Z a-z 0-9 _ - .`, not starting with
/// `.` (so it is one path component, never `.` or `..`), taken as it is. Pure.
///
/// # Errors
/// [`Error::InvalidEnv`] naming the variable and its value for anything else.
pub(crate) fn parse_name(name: &str, raw: &OsStr) -> Result<String> {
    raw.to_str()
        .filter(|s| {
            (1..=64).contains(&s.len())
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            invalid(
                name,
                raw,
                "expected 1 to 64 characters from A-Z a-z 0-9 _ - . (not starting with .)",
            )
        })
}

/// `s` without leading and trailing ASCII whitespace (and nothing else).
pub(crate) fn trim_ascii(s: &str) -> &str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_parse() {
        let p = |name, raw, syntax| parse_count(name, raw, syntax, 64).unwrap();
        assert_eq!(p("X", " 3 ", Syntax::CountOrAuto), Parsed::Count(3));
        assert_eq!(p("X", "AUTO", Syntax::CountOrAuto), Parsed::Auto);
        assert_eq!(p("X", "0", Syntax::CountOrZeroDefault), Parsed::Auto);
        assert_eq!(p("X", "4,2", Syntax::OmpList), Parsed::Count(4));
        assert_eq!(p("X", "64", Syntax::CountOrAuto), Parsed::Count(64));
        assert_eq!(p("X", "7", Syntax::Positive), Parsed::Count(7));
        assert_eq!(p("X", " 0 ", Syntax::Index), Parsed::Count(0));
        for syntax in [Syntax::Positive, Syntax::Index] {
            assert!(parse_count("X", "auto", syntax, 64).is_err());
            assert!(parse_count("X", "-1", syntax, 64).is_err());
        }
        assert!(parse_count("X", "0", Syntax::Positive, 64).is_err());
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
                Syntax::Positive,
            ] {
                let err = parse_count("X", raw, syntax, 64).unwrap_err();
                assert!(err.to_string().contains("not an integer"), "{raw:?}: {err}");
            }
        }
        assert_eq!(
            parse_count("X", "\t 2\n", Syntax::CountOrAuto, 64).unwrap(),
            Parsed::Count(2)
        );
        let on = [("on", true), ("off", false)];
        assert!(parse_keyword("X", OsStr::new("\u{a0}on"), &on, "on or off").is_err());
        assert!(parse_keyword("X", OsStr::new(" ON\t"), &on, "on or off").unwrap());
    }

    #[test]
    fn keywords_and_names_refuse_junk_with_the_variable_and_value() {
        use std::os::unix::ffi::OsStrExt;
        let modes = [("auto", 0), ("off", 1), ("force", 2)];
        assert_eq!(
            parse_keyword("V", OsStr::new("Force"), &modes, "auto, off or force").unwrap(),
            2
        );
        for junk in ["yes", "", "of f"] {
            let e = parse_keyword("V", OsStr::new(junk), &modes, "auto, off or force").unwrap_err();
            assert!(matches!(&e, Error::InvalidEnv { name, value, why }
                if name == "V" && value == junk && why.contains("auto, off or force")));
        }
        let not_utf8 = OsStr::from_bytes(b"of\xff");
        let e = parse_keyword("V", not_utf8, &modes, "auto, off or force").unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        assert_eq!(parse_name("G", OsStr::new("a-b_c.1")).unwrap(), "a-b_c.1");
        for junk in ["", ".hidden", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(parse_name("G", OsStr::new(junk)).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn the_report_lists_every_variable_once() {
        let all: Vec<_> = reported_vars().collect();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        for v in LOCAL_SIZE_VARS
            .into_iter()
            .chain(CPUS_PER_TASK_VARS)
            .chain(STANDARD_BLAS_VARS)
            .chain([NODE_ID_VAR, BUDGET_VAR, BUDGET_GROUP_VAR, CORETYPE_VAR])
        {
            assert!(all.contains(&v), "{v}");
        }
    }
}
