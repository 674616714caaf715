//! Precedence of thread settings, tested in child processes (each child reads its own
//! environment once): code > PARLINALG_* > standard variables > defaults, and junk is an error
//! that names the variable, from the report and from every BLAS call.

mod common;

use common::child::TestChild;
use serde_json::Value;

const CHILD_VAR: &str = "PARLINALG_TEST_ENV_CHILD";

/// The child's side: reports what it resolved as one JSON line. Does nothing in the parent.
#[test]
#[ignore = "run by the harness in a child process (tests/common/child.rs)"]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_VAR) else {
        return;
    };
    if mode == "code" {
        parlinalg::threads::set_blas_threads(1).unwrap();
        parlinalg::threads::set_outer_threads(1).unwrap();
    }
    let a = parlinalg::ndarray::Array2::<f64>::eye(300);
    let matmul = parlinalg::matmul(&a, &a)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let out = match parlinalg::threads::report() {
        Ok(r) => serde_json::json!({
            "ok": true,
            "report": r,
            "matmul": matmul.err(),
        }),
        Err(e) => serde_json::json!({
            "ok": false,
            "error": e.to_string(),
            "matmul": matmul.err(),
        }),
    };
    println!("CHILD-RESULT {out}");
}

fn child(mode: &str, vars: &[(&str, &str)]) -> Value {
    TestChild::entry()
        .remove(common::THREAD_VARS)
        .env(CHILD_VAR, mode)
        .envs(vars.iter().copied())
        .result()
}

/// The BLAS threads `auto` gives a caller alone in a process of `cores` cores: every core, up
/// to the loaded OpenBLAS's compiled maximum (Debian's: 64), which it cannot run more than.
fn usable(cores: u64) -> u64 {
    cores.min(parlinalg::threads::blas_max_threads() as u64)
}

fn blas(v: &Value) -> (&Value, &Value) {
    let s = &v["report"]["blas_threads"];
    (&s["value"], &s["source"])
}

/// Removes a budget group's directory when the test ends (also when it fails).
struct Clean(std::path::PathBuf);

impl Drop for Clean {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn defaults_when_nothing_is_set() {
    // A budget group of its own (only the group, not a thread setting): in the default group
    // shared by every parlinalg process of this user, another one's `auto` product (this
    // file's other children included) could hold slots and lower the count checked below.
    let group = format!("test-env-defaults-{}", std::process::id());
    let _clean = Clean(parlinalg::threads::budget_dir(&group));
    let v = child("env", &[("PARLINALG_BUDGET_GROUP", &group)]);
    assert_eq!(v["ok"], true, "{v}");
    let (value, source) = blas(&v);
    assert_eq!(value["mode"], "auto");
    assert_eq!(source["kind"], "default");
    let cores = v["report"]["cores"]["count"].as_u64().unwrap();
    assert_eq!(
        v["report"]["outer_threads"]["value"].as_u64().unwrap(),
        cores
    );
    assert_eq!(v["report"]["outer_threads"]["source"]["kind"], "default");
    // auto applies every usable core for a caller alone.
    assert_eq!(
        v["report"]["blas_threads_now"].as_u64().unwrap(),
        usable(cores)
    );
}

#[test]
fn parlinalg_variables_beat_the_standard_ones() {
    let v = child(
        "env",
        &[
            ("PARLINALG_BLAS_THREADS", "1"),
            ("OPENBLAS_NUM_THREADS", "2"),
            ("OMP_NUM_THREADS", "2"),
        ],
    );
    let (value, source) = blas(&v);
    assert_eq!(value["threads"], 1);
    assert_eq!(source["detail"], "PARLINALG_BLAS_THREADS");
    assert_eq!(v["report"]["blas_threads_now"], 1);
}

#[test]
fn openblas_then_goto_then_omp() {
    let v = child(
        "env",
        &[("GOTO_NUM_THREADS", "1"), ("OMP_NUM_THREADS", "2")],
    );
    let (value, source) = blas(&v);
    assert_eq!(
        (value["threads"].as_u64(), source["detail"].as_str()),
        (Some(1), Some("GOTO_NUM_THREADS"))
    );
    let v = child("env", &[("OMP_NUM_THREADS", "1,1")]);
    let (value, source) = blas(&v);
    assert_eq!(
        (value["threads"].as_u64(), source["detail"].as_str()),
        (Some(1), Some("OMP_NUM_THREADS"))
    );
    assert_eq!(v["report"]["blas_threads_now"], 1);
    let v = child(
        "env",
        &[("OPENBLAS_NUM_THREADS", "1"), ("GOTO_NUM_THREADS", "2")],
    );
    assert_eq!(blas(&v).1["detail"], "OPENBLAS_NUM_THREADS");
}

#[test]
fn outer_threads_from_our_variable_then_rayons() {
    let v = child(
        "env",
        &[("PARLINALG_OUTER_THREADS", "5"), ("RAYON_NUM_THREADS", "3")],
    );
    assert_eq!(v["report"]["outer_threads"]["value"], 5);
    assert_eq!(
        v["report"]["outer_threads"]["source"]["detail"],
        "PARLINALG_OUTER_THREADS"
    );
    let v = child("env", &[("RAYON_NUM_THREADS", "3")]);
    assert_eq!(v["report"]["outer_threads"]["value"], 3);
    assert_eq!(
        v["report"]["outer_threads"]["source"]["detail"],
        "RAYON_NUM_THREADS"
    );
}

#[test]
fn code_beats_every_variable() {
    let v = child(
        "code",
        &[
            ("PARLINALG_BLAS_THREADS", "2"),
            ("PARLINALG_OUTER_THREADS", "4"),
        ],
    );
    let (value, source) = blas(&v);
    assert_eq!(value["threads"], 1);
    assert_eq!(source["kind"], "code");
    assert_eq!(v["report"]["outer_threads"]["value"], 1);
    assert_eq!(v["report"]["outer_threads"]["source"]["kind"], "code");
}

#[test]
fn junk_is_an_error_from_the_report_and_from_blas_calls() {
    for (name, value) in [
        ("PARLINALG_BLAS_THREADS", "abc"),
        ("OPENBLAS_NUM_THREADS", "-1"),
        ("PARLINALG_OUTER_THREADS", "0"),
        ("OMP_NUM_THREADS", "1e9"),
        ("RAYON_NUM_THREADS", ""),
        ("GOTO_NUM_THREADS", "100000"),
    ] {
        let v = child("env", &[(name, value)]);
        assert_eq!(v["ok"], false, "{name}={value:?}: {v}");
        let err = v["error"].as_str().unwrap();
        assert!(
            err.contains(name) && err.contains(&format!("{value:?}")),
            "{err}"
        );
        assert_eq!(
            v["matmul"].as_str(),
            Some(err),
            "matmul must fail with the same error"
        );
    }
}
