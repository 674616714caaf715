//! Launchers: under MPI and Slurm, several ranks of one job share a node, and each must take
//! its share of the cores, not all of them.
//!
//! The rule, stated once (in [`apply`]), starting from the process's own limits (affinity mask ∩
//! cgroup quota, [`Cores::combine`]):
//!
//! 1. **The rank has its own mask** (its affinity mask holds fewer CPUs than are online: the
//!    launcher, or the user with `taskset`, bound it): the mask is its share, and it is not
//!    divided again. A rank bound to one core is said to be (`bound to one core`).
//! 2. **A per-task CPU count** (`SLURM_CPUS_PER_TASK`, `SRUN_CPUS_PER_TASK`): that many, at most
//!    the process's limits.
//! 3. **A local rank count** (the first set of [`LOCAL_SIZE_VARS`]): the limits divided by it
//!    (at least 1): `2 = 16 cores ÷ 8 local ranks (OMPI_COMM_WORLD_LOCAL_SIZE=8)`.
//! 4. Otherwise the limits as they are.
//!
//! A count is never divided twice: a mask or a per-task count already is the rank's share.
//! The one that decided is kept in [`Cores::launcher`].
//!
//! **Launcher variables only hint.** The user sets them for the launcher, not for parlinalg,
//! and parlinalg only uses them to divide the node: one that cannot be used (junk, or
//! `SLURM_TASKS_PER_NODE` that needs a `SLURM_NODEID` which is missing or junk) is ignored, the
//! next one in precedence order is used, and [`Cores::ignored_hints`] says what was ignored and
//! why (the report turns each into a warning). Every launcher variable present is checked, also
//! those a higher one overrides and a `SLURM_NODEID` nothing needed. The variables the user
//! sets for parlinalg (thread counts, the budget) stay strict: junk there is an
//! [`Error::InvalidEnv`].

use super::cores::Cores;
use crate::env::{
    invalid, parse_count, Lookup, Parsed, Syntax, CPUS_PER_TASK_VARS, LOCAL_SIZE_VARS, NODE_ID_VAR,
};
use crate::{Error, Result};

/// Counts above this are junk (no node has a million ranks).
const MAX_COUNT: usize = 1 << 20;

/// A positive count (ASCII digits, ASCII whitespace around).
fn positive(name: &str, raw: &str) -> Result<usize> {
    match parse_count(name, raw, Syntax::Positive, MAX_COUNT)? {
        Parsed::Count(n) => Ok(n),
        Parsed::Auto => unreachable!("a positive count has no default"),
    }
}

/// Slurm's compressed per-node list, `"2(x3),1"` (nodes 0–2 run 2 tasks, node 3 runs 1): the
/// count of node `node`, or of every node when they all run the same number (then no node id
/// is needed). Pure.
///
/// # Errors
/// [`Error::InvalidEnv`] naming `SLURM_TASKS_PER_NODE` (or `SLURM_NODEID`) when the list is
/// malformed, the node id is missing while counts differ, or it is past the list's end.
pub(crate) fn slurm_tasks_on_node(raw: &str, node: Option<&str>) -> Result<usize> {
    const NAME: &str = "SLURM_TASKS_PER_NODE";
    let bad = |why: &str| {
        invalid(
            NAME,
            raw,
            format!("{why}; expected a list like \"2(x3),1\""),
        )
    };
    let mut groups = Vec::new();
    for part in raw.trim().split(',') {
        let (count, repeat) = match part.split_once('(') {
            None => (part, 1),
            Some((count, rest)) => {
                let times = rest
                    .strip_prefix('x')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad("a repeat is not \"(xN)\""))?;
                (count, positive(NAME, times).map_err(|_| bad("bad repeat"))?)
            }
        };
        let count = positive(NAME, count).map_err(|_| bad("an entry is not a positive integer"))?;
        groups.push((count, repeat));
    }
    let first = groups[0].0;
    if groups.iter().all(|&(c, _)| c == first) {
        return Ok(first);
    }
    let node_raw =
        node.ok_or_else(|| bad("nodes run different counts and SLURM_NODEID is not set"))?;
    let mut node = node_index(node_raw)?;
    for (count, repeat) in groups {
        if node < repeat {
            return Ok(count);
        }
        node -= repeat;
    }
    Err(invalid(
        NODE_ID_VAR,
        node_raw,
        format!("past the end of SLURM_TASKS_PER_NODE={raw:?}"),
    ))
}

/// Applies the launcher rule (module docs) to the process's limits `base`, with `online` CPUs
/// online, reading variables through `lookup`. Pure; a variable that cannot be used is
/// ignored and listed in [`Cores::ignored_hints`].
pub(crate) fn apply(base: Cores, online: Option<usize>, lookup: Lookup<'_>) -> Cores {
    let (local, per_task, ignored) = read_launcher(lookup);
    let mut cores = apply_read(base, online, local, per_task);
    cores.ignored_hints = ignored;
    cores
}

/// The rule itself, on the launcher counts read.
fn apply_read(base: Cores, online: Option<usize>, local: Launcher, per_task: Launcher) -> Cores {
    let own_mask = match (base.affinity, online) {
        (Some(a), Some(o)) => a < o,
        _ => false,
    };
    let mut cores = base;
    cores.online = online;
    cores.bound_to_one_core = own_mask && cores.affinity == Some(1);
    if own_mask {
        return within_own_mask(cores, local, per_task);
    }
    if let Some((var, n)) = per_task {
        let count = n.min(cores.count);
        cores.why = format!("{count} = {n} CPUs per task ({var}), within {}", cores.why);
        cores.count = count;
        cores.launcher = Some(var);
        return cores;
    }
    if let Some((var, ranks)) = local {
        let all = cores.count;
        let count = (all / ranks).max(1);
        let rounded = if all < ranks {
            " (fewer cores than ranks: at least 1 each)"
        } else {
            ""
        };
        cores.why = format!(
            "{count} = {all} cores ÷ {ranks} local ranks ({var}){rounded}; the node: {}",
            cores.why
        );
        cores.count = count;
        cores.launcher = Some(var);
    }
    cores
}

/// A launcher variable that decided, as `NAME=value`, and its count.
type Launcher = Option<(String, usize)>;

/// The first usable local-rank-count variable and the first usable CPUs-per-task variable, in
/// precedence order, and what was ignored (one line each, naming the variable, its value and
/// why). Every variable present is checked, also those a higher one overrides.
fn read_launcher(lookup: Lookup<'_>) -> (Launcher, Launcher, Vec<String>) {
    let mut ignored = Vec::new();
    let mut ignore = |e: Error| {
        let line = format!("{e}; ignored");
        if !ignored.contains(&line) {
            ignored.push(line);
        }
    };
    let mut text = |name: &str| -> Option<String> {
        match lookup(name)?.into_string() {
            Ok(raw) => Some(raw),
            Err(raw) => {
                ignore(invalid(name, &raw, "not valid UTF-8"));
                None
            }
        }
    };
    let node = text(NODE_ID_VAR);
    let mut found = Vec::new();
    for name in LOCAL_SIZE_VARS.into_iter().chain(CPUS_PER_TASK_VARS) {
        if let Some(raw) = text(name) {
            found.push((name, raw));
        }
    }
    let (mut local, mut per_task): (Launcher, Launcher) = (None, None);
    if let Some(raw) = &node {
        if let Err(e) = node_index(raw) {
            ignore(e);
        }
    }
    for (name, raw) in found {
        let n = if name == "SLURM_TASKS_PER_NODE" {
            slurm_tasks_on_node(&raw, node.as_deref())
        } else {
            positive(name, &raw)
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                ignore(e);
                continue;
            }
        };
        let slot = if CPUS_PER_TASK_VARS.contains(&name) {
            &mut per_task
        } else {
            &mut local
        };
        slot.get_or_insert((format!("{name}={}", raw.trim()), n));
    }
    (local, per_task, ignored)
}

/// `SLURM_NODEID`: a node index (0, 1, ...).
fn node_index(raw: &str) -> Result<usize> {
    match parse_count(NODE_ID_VAR, raw, Syntax::Index, usize::MAX)? {
        Parsed::Count(n) => Ok(n),
        Parsed::Auto => unreachable!("an index has no default"),
    }
}

/// A rank with its own affinity mask: the mask already is its share (never divided again),
/// capped by a per-task CPU count below it; the launcher is named, not applied.
fn within_own_mask(mut cores: Cores, local: Launcher, per_task: Launcher) -> Cores {
    let (a, o) = (cores.affinity.unwrap_or(1), cores.online.unwrap_or(1));
    let decided = per_task.clone().or(local);
    let note = decided
        .as_ref()
        .map_or(String::new(), |(var, _)| format!(", launcher {var}"));
    let capped = per_task
        .as_ref()
        .map(|(_, n)| *n)
        .filter(|&n| n < cores.count);
    if let Some(n) = capped {
        cores.count = n;
    }
    cores.why = if cores.bound_to_one_core {
        format!("bound to one core: its affinity mask holds 1 of the {o} CPUs online{note}")
    } else {
        format!(
            "{}; its own affinity mask ({a} of {o} CPUs online), not divided again{note}",
            cores.why
        )
    };
    if let Some(n) = capped {
        cores.why = format!(
            "{n} CPUs per task ({}), within {}",
            decided_var(&per_task),
            cores.why
        );
    }
    cores.launcher = decided.map(|(v, _)| v);
    cores
}

fn decided_var(v: &Launcher) -> &str {
    v.as_ref().map_or("", |(var, _)| var.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn run(
        affinity: Option<usize>,
        online: Option<usize>,
        quota: Option<usize>,
        vars: &[(&str, &str)],
    ) -> Cores {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        apply(Cores::combine(affinity, quota), online, &move |k| {
            map.get(k).cloned()
        })
    }

    #[test]
    fn the_table_of_launcher_combinations() {
        // (affinity, online, quota, variables, count, launcher, words in why)
        #[allow(clippy::type_complexity)]
        let table: &[(
            Option<usize>,
            Option<usize>,
            Option<usize>,
            &[(&str, &str)],
            usize,
            Option<&str>,
            &[&str],
        )] = &[
            // No launcher: the limits.
            (
                Some(16),
                Some(16),
                None,
                &[],
                16,
                None,
                &["16 in the affinity mask"],
            ),
            (Some(16), Some(16), Some(4), &[], 4, None, &["quota 4"]),
            // Open MPI, unbound ranks: divided, with the wording.
            (
                Some(16),
                Some(16),
                None,
                &[("OMPI_COMM_WORLD_LOCAL_SIZE", "8")],
                2,
                Some("OMPI_COMM_WORLD_LOCAL_SIZE=8"),
                &["2 = 16 cores ÷ 8 local ranks (OMPI_COMM_WORLD_LOCAL_SIZE=8)"],
            ),
            // Each MPI's variable.
            (
                Some(16),
                Some(16),
                None,
                &[("MPI_LOCALNRANKS", "4")],
                4,
                Some("MPI_LOCALNRANKS=4"),
                &["÷ 4 local ranks"],
            ),
            (
                Some(16),
                Some(16),
                None,
                &[("PMI_LOCAL_SIZE", "2")],
                8,
                Some("PMI_LOCAL_SIZE=2"),
                &["÷ 2"],
            ),
            (
                Some(16),
                Some(16),
                None,
                &[("MV2_COMM_WORLD_LOCAL_SIZE", "16")],
                1,
                Some("MV2_COMM_WORLD_LOCAL_SIZE=16"),
                &["÷ 16"],
            ),
            (
                Some(16),
                Some(16),
                None,
                &[("SLURM_NTASKS_PER_NODE", "3")],
                5,
                Some("SLURM_NTASKS_PER_NODE=3"),
                &["÷ 3"],
            ),
            // Slurm's compressed list, at this node.
            (
                Some(16),
                Some(16),
                None,
                &[("SLURM_TASKS_PER_NODE", "4(x2),2"), ("SLURM_NODEID", "2")],
                8,
                Some("SLURM_TASKS_PER_NODE=4(x2),2"),
                &["÷ 2 local ranks"],
            ),
            (
                Some(16),
                Some(16),
                None,
                &[("SLURM_TASKS_PER_NODE", "4(x2),2"), ("SLURM_NODEID", "1")],
                4,
                Some("SLURM_TASKS_PER_NODE=4(x2),2"),
                &["÷ 4"],
            ),
            (
                Some(16),
                Some(16),
                None,
                &[("SLURM_TASKS_PER_NODE", "8(x3)")],
                2,
                Some("SLURM_TASKS_PER_NODE=8(x3)"),
                &["÷ 8"],
            ),
            // Precedence: the MPI variable over Slurm's.
            (
                Some(16),
                Some(16),
                None,
                &[
                    ("SLURM_NTASKS_PER_NODE", "2"),
                    ("OMPI_COMM_WORLD_LOCAL_SIZE", "4"),
                ],
                4,
                Some("OMPI_COMM_WORLD_LOCAL_SIZE=4"),
                &["÷ 4"],
            ),
            // More ranks than cores: at least 1 each, and said.
            (
                Some(2),
                Some(2),
                None,
                &[("OMPI_COMM_WORLD_LOCAL_SIZE", "4")],
                1,
                Some("OMPI_COMM_WORLD_LOCAL_SIZE=4"),
                &["at least 1"],
            ),
            // The quota is divided, not the mask.
            (
                Some(64),
                Some(64),
                Some(8),
                &[("PMI_LOCAL_SIZE", "4")],
                2,
                Some("PMI_LOCAL_SIZE=4"),
                &["8 cores ÷ 4", "quota 8"],
            ),
            // A per-task count: used, not divided by the rank count (never twice).
            (
                Some(16),
                Some(16),
                None,
                &[("SLURM_CPUS_PER_TASK", "4"), ("SLURM_NTASKS_PER_NODE", "4")],
                4,
                Some("SLURM_CPUS_PER_TASK=4"),
                &["4 CPUs per task"],
            ),
            (
                Some(16),
                Some(16),
                None,
                &[("SRUN_CPUS_PER_TASK", "3")],
                3,
                Some("SRUN_CPUS_PER_TASK=3"),
                &["3 CPUs per task"],
            ),
            (
                Some(16),
                Some(16),
                Some(2),
                &[("SLURM_CPUS_PER_TASK", "4")],
                2,
                Some("SLURM_CPUS_PER_TASK=4"),
                &["2 = 4 CPUs per task"],
            ),
            // Its own mask: not divided again.
            (
                Some(4),
                Some(16),
                None,
                &[("OMPI_COMM_WORLD_LOCAL_SIZE", "4")],
                4,
                Some("OMPI_COMM_WORLD_LOCAL_SIZE=4"),
                &["own affinity mask (4 of 16", "not divided"],
            ),
            // Bound to one core, and said.
            (
                Some(1),
                Some(2),
                None,
                &[("OMPI_COMM_WORLD_LOCAL_SIZE", "2")],
                1,
                Some("OMPI_COMM_WORLD_LOCAL_SIZE=2"),
                &["bound to one core", "OMPI_COMM_WORLD_LOCAL_SIZE=2"],
            ),
            (
                Some(1),
                Some(8),
                None,
                &[],
                1,
                None,
                &["bound to one core", "1 of the 8 CPUs"],
            ),
            // A mask and a smaller per-task count: the smaller (a cap, not a division).
            (
                Some(8),
                Some(16),
                None,
                &[("SLURM_CPUS_PER_TASK", "2"), ("SLURM_NTASKS_PER_NODE", "2")],
                2,
                Some("SLURM_CPUS_PER_TASK=2"),
                &["2 CPUs per task", "own affinity mask"],
            ),
            // Online unknown: no mask judgement, the rank count divides.
            (
                Some(8),
                None,
                None,
                &[("MPI_LOCALNRANKS", "2")],
                4,
                Some("MPI_LOCALNRANKS=2"),
                &["÷ 2"],
            ),
        ];
        for (i, &(aff, online, quota, vars, count, launcher, words)) in table.iter().enumerate() {
            let c = run(aff, online, quota, vars);
            assert!(c.ignored_hints.is_empty(), "row {i}: {c:?}");
            assert_eq!(c.count, count, "row {i} {vars:?}: {}", c.why);
            assert_eq!(c.launcher.as_deref(), launcher, "row {i}: {}", c.why);
            for w in words {
                assert!(c.why.contains(w), "row {i}: {w:?} not in {:?}", c.why);
            }
            assert_eq!(
                c.bound_to_one_core,
                c.why.contains("bound to one core"),
                "row {i}"
            );
        }
    }

    #[test]
    fn junk_in_a_launcher_variable_is_ignored_with_a_line_naming_it() {
        for (name, value) in [
            ("OMPI_COMM_WORLD_LOCAL_SIZE", "two"),
            ("OMPI_COMM_WORLD_LOCAL_SIZE", "0"),
            ("MPI_LOCALNRANKS", ""),
            ("PMI_LOCAL_SIZE", "-1"),
            ("MV2_COMM_WORLD_LOCAL_SIZE", "99999999999"),
            ("SLURM_CPUS_PER_TASK", "1.5"),
            ("SLURM_TASKS_PER_NODE", "2(3)"),
            ("SLURM_TASKS_PER_NODE", "2(x0)"),
            ("SLURM_TASKS_PER_NODE", ",2"),
        ] {
            // Alone: the limits as they are.
            let alone = run(Some(4), Some(4), None, &[(name, value)]);
            assert_eq!(
                (alone.count, alone.launcher.as_deref()),
                (4, None),
                "{name}={value:?}"
            );
            assert_eq!(alone.ignored_hints.len(), 1, "{name}={value:?}: {alone:?}");
            assert!(alone.ignored_hints[0].contains(name), "{alone:?}");
            // Beside a usable variable: that one decides, and the junk is still reported,
            // also where it has the higher precedence.
            let other = if name == "OMPI_COMM_WORLD_LOCAL_SIZE" {
                ("SLURM_NTASKS_PER_NODE", "2")
            } else {
                ("OMPI_COMM_WORLD_LOCAL_SIZE", "2")
            };
            let c = run(Some(4), Some(4), None, &[(name, value), other]);
            assert_eq!(c.count, 2, "{name}={value:?}: {c:?}");
            assert_eq!(c.launcher, Some(format!("{}={}", other.0, other.1)));
            assert!(c.ignored_hints.iter().any(|h| h.contains(name)), "{c:?}");
        }
        // Counts differ and no node id: Slurm's list is ignored, and says why.
        let c = run(
            Some(4),
            Some(4),
            None,
            &[("SLURM_TASKS_PER_NODE", "2(x3),1")],
        );
        assert_eq!((c.count, c.launcher.as_deref()), (4, None));
        assert!(
            c.ignored_hints[0].contains("SLURM_NODEID is not set"),
            "{c:?}"
        );
        // A node past the end, and a junk node id where nothing needs one.
        let c = run(
            Some(4),
            Some(4),
            None,
            &[("SLURM_TASKS_PER_NODE", "2,1"), ("SLURM_NODEID", "2")],
        );
        assert_eq!(c.count, 4);
        assert!(c.ignored_hints[0].contains("SLURM_NODEID"), "{c:?}");
        let c = run(Some(4), Some(4), None, &[("SLURM_NODEID", "abc")]);
        assert_eq!(c.count, 4);
        assert_eq!(c.ignored_hints.len(), 1, "{c:?}");
        assert!(c.ignored_hints[0].contains("SLURM_NODEID"), "{c:?}");
        // A junk node id is said once, also when Slurm's list needed it.
        let c = run(
            Some(4),
            Some(4),
            None,
            &[("SLURM_TASKS_PER_NODE", "2,1"), ("SLURM_NODEID", "x")],
        );
        assert_eq!(c.ignored_hints.len(), 1, "{c:?}");
        // Nothing set, or only usable values: nothing ignored.
        assert!(run(Some(4), Some(4), None, &[]).ignored_hints.is_empty());
        let c = run(
            Some(4),
            Some(4),
            None,
            &[("SLURM_TASKS_PER_NODE", "2(x3),1"), ("SLURM_NODEID", "3")],
        );
        assert_eq!((c.count, c.ignored_hints.len()), (4, 0), "{c:?}");
    }

    #[test]
    fn slurm_lists() {
        assert_eq!(slurm_tasks_on_node("4", None).unwrap(), 4);
        assert_eq!(slurm_tasks_on_node("2(x3),1", Some("0")).unwrap(), 2);
        assert_eq!(slurm_tasks_on_node("2(x3),1", Some("2")).unwrap(), 2);
        assert_eq!(slurm_tasks_on_node("2(x3),1", Some("3")).unwrap(), 1);
        assert!(slurm_tasks_on_node("2(x3),1", Some("4")).is_err());
        assert!(slurm_tasks_on_node("2(x3),1", Some("x")).is_err());
    }
}
