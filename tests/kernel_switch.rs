//! The in-process kernel switch, for real, in child processes (OpenBLAS selects its kernel when
//! the process loads, so every scenario needs its own process): a child started on the generic
//! `Prescott` kernel with the switch forced runs the CPU's recommended kernel and computes the
//! same bits as a child started on that kernel; a user's `OPENBLAS_CORETYPE` is kept; `off`
//! keeps the fallback and the report warns; junk in the switch variable is reported, not obeyed.
//! Runs on any x86-64 machine, also where OpenBLAS picks the right kernel by itself.

mod common;

use common::child::TestChild;
use common::{naive_matmul, Rng};
use parlinalg::kernel::CpuFeatures;
use serde_json::Value;

const CHILD_VAR: &str = "PARLINALG_TEST_KERNEL_CHILD";

/// The child's side: one JSON line with the selection, the running kernel, the environment as
/// the program sees it after the switch, and the bits of a product. Does nothing in the parent.
#[test]
#[ignore = "run by the harness in a child process (tests/common/child.rs)"]
fn child_entry() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let mut rng = Rng::new(20261202);
    let a = rng.matrix::<f64>(300, 257);
    let b = rng.matrix::<f64>(257, 311);
    let c = parlinalg::matmul(&a, &b).unwrap();
    let a32 = rng.matrix::<f32>(129, 65);
    let b32 = rng.matrix::<f32>(65, 77);
    let c32 = parlinalg::matmul(&a32, &b32).unwrap();
    // Error relative to Σ|a_ik·b_kj|, which bounds a k-term sum's rounding by k·eps (Higham,
    // ch. 3): at most 257·eps64 ≈ 2.9e-14 and 65·eps32 ≈ 3.9e-6; the parent allows twice that.
    let rel_err = |got: Vec<f64>,
                   (want, bound): (
        parlinalg::ndarray::Array2<f64>,
        parlinalg::ndarray::Array2<f64>,
    )| {
        got.iter()
            .zip(want.iter().zip(&bound))
            .map(|(g, (w, b))| (g - w).abs() / b.max(f64::MIN_POSITIVE))
            .fold(0.0, f64::max)
    };
    let err64 = rel_err(
        c.iter().copied().collect(),
        naive_matmul(&a.view(), &b.view()),
    );
    let err32 = rel_err(
        c32.iter().map(|&x| f64::from(x)).collect(),
        naive_matmul(&a32.view(), &b32.view()),
    );
    let report = parlinalg::threads::report().unwrap();
    let out = serde_json::json!({
        "selection": serde_json::to_value(parlinalg::kernel::kernel_selection()).unwrap(),
        "selection_text": parlinalg::kernel::kernel_selection().to_string(),
        "corename": parlinalg::blas_library().corename,
        "coretype_after": std::env::var("OPENBLAS_CORETYPE").ok(),
        "bits": fingerprint(c.iter().map(|x| x.to_bits())),
        "bits32": fingerprint(c32.iter().map(|x| u64::from(x.to_bits()))),
        "err64": err64,
        "err32": err32,
        "warnings": report.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        "report_kernel": report.to_string().lines().find(|l| l.starts_with("kernel")).unwrap_or(""),
    });
    println!("CHILD-RESULT {out}");
}

/// FNV-1a over every element's bits, as a hex string: equal exactly when all bits are equal
/// (up to a 2⁻⁶⁴ chance), and short enough to print.
fn fingerprint(bits: impl Iterator<Item = u64>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bits {
        for byte in b.to_le_bytes() {
            h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn child(vars: &[(&str, &str)]) -> Value {
    let v = TestChild::entry()
        .remove(&["OPENBLAS_CORETYPE", "PARLINALG_KERNEL_SWITCH"])
        .env(CHILD_VAR, "1")
        .envs(vars.iter().copied())
        .result();
    assert!(
        v["err64"].as_f64().unwrap() < 2.0 * 257.0 * f64::EPSILON,
        "{vars:?}: {}",
        v["err64"]
    );
    assert!(
        v["err32"].as_f64().unwrap() < 2.0 * 65.0 * f64::from(f32::EPSILON),
        "{vars:?}: {}",
        v["err32"]
    );
    v
}

/// The kernel this CPU should run, or `None` where the check cannot say (not x86-64): then
/// these tests have nothing to switch to.
fn recommended() -> Option<&'static str> {
    let r = CpuFeatures::detect().recommended_kernel();
    if r.is_none() {
        eprintln!("kernel_switch: not an x86-64 CPU, nothing to switch (skipped, not passed)");
    }
    r
}

fn outcome(v: &Value) -> &str {
    v["selection"]["outcome"].as_str().unwrap()
}

#[test]
fn a_child_started_on_prescott_switches_to_the_recommended_kernel_when_forced() {
    let Some(best) = recommended() else { return };
    if best == "Prescott" {
        return; // an SSE3-only CPU: Prescott is its best kernel
    }
    let v = child(&[
        ("OPENBLAS_CORETYPE", "Prescott"),
        ("PARLINALG_KERNEL_SWITCH", "force"),
    ]);
    assert_eq!(outcome(&v), "switched", "{}", v["selection_text"]);
    assert_eq!(v["selection"]["from"], "Prescott");
    assert_eq!(v["selection"]["forced"], true);
    assert!(
        v["corename"].as_str().unwrap().eq_ignore_ascii_case(best),
        "running {} after switching to {best}",
        v["corename"]
    );
    // The program still sees the user's variable as it was set.
    assert_eq!(v["coretype_after"], "Prescott");
    // The report says what happened and does not warn about the kernel any more.
    let line = v["report_kernel"].as_str().unwrap();
    assert!(line.contains("switched in-process from Prescott"), "{line}");
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        !warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("kernel")),
        "{warnings:?}"
    );
}

#[test]
fn after_the_switch_results_are_the_bits_of_a_process_started_on_that_kernel() {
    let Some(best) = recommended() else { return };
    let switched = child(&[
        ("OPENBLAS_CORETYPE", "Prescott"),
        ("PARLINALG_KERNEL_SWITCH", "force"),
    ]);
    let native = child(&[("OPENBLAS_CORETYPE", best)]);
    assert_eq!(
        outcome(&native),
        "user_choice",
        "{}",
        native["selection_text"]
    );
    assert_eq!(switched["corename"], native["corename"]);
    assert_eq!(switched["bits"], native["bits"], "f64 products differ");
    assert_eq!(switched["bits32"], native["bits32"], "f32 products differ");
}

#[test]
fn a_users_coretype_is_kept_and_off_keeps_the_fallback_with_a_warning() {
    let Some(best) = recommended() else { return };
    if best == "Prescott" {
        return;
    }
    let kept = child(&[("OPENBLAS_CORETYPE", "Prescott")]);
    assert_eq!(outcome(&kept), "user_choice", "{}", kept["selection_text"]);
    assert_eq!(kept["corename"], "Prescott");
    let off = child(&[
        ("OPENBLAS_CORETYPE", "Prescott"),
        ("PARLINALG_KERNEL_SWITCH", "off"),
    ]);
    assert_eq!(outcome(&off), "disabled", "{}", off["selection_text"]);
    assert_eq!(off["corename"], "Prescott");
    for v in [&kept, &off] {
        let warnings = v["warnings"].as_array().unwrap();
        let kernel = warnings
            .iter()
            .filter_map(|w| w.as_str())
            .find(|w| w.starts_with("kernel"))
            .unwrap_or_else(|| panic!("no kernel warning in {warnings:?}"));
        assert!(kernel.contains("Prescott"), "{kernel}");
        assert!(
            kernel.contains(&format!("OPENBLAS_CORETYPE={best}")),
            "{kernel}"
        );
    }
    assert!(off["warnings"]
        .to_string()
        .contains("PARLINALG_KERNEL_SWITCH=off"));
}

#[test]
fn junk_in_the_switch_variable_is_reported_and_nothing_is_switched() {
    let Some(best) = recommended() else { return };
    let v = child(&[
        ("OPENBLAS_CORETYPE", "Prescott"),
        ("PARLINALG_KERNEL_SWITCH", "sometimes"),
    ]);
    assert_eq!(outcome(&v), "not_switched", "{}", v["selection_text"]);
    let why = v["selection"]["why"].as_str().unwrap();
    assert!(
        why.contains("PARLINALG_KERNEL_SWITCH") && why.contains("sometimes"),
        "{why}"
    );
    assert_eq!(v["corename"], "Prescott");
    if best != "Prescott" {
        assert!(v["warnings"].to_string().contains("sometimes"));
    }
}

#[test]
fn with_nothing_set_the_program_runs_the_best_kernel_and_leaves_the_environment_alone() {
    let Some(best) = recommended() else { return };
    let v = child(&[]);
    let o = outcome(&v);
    assert!(
        o == "already_best" || o == "switched",
        "{}",
        v["selection_text"]
    );
    if o == "switched" {
        assert!(v["corename"].as_str().unwrap().eq_ignore_ascii_case(best));
    }
    assert_eq!(
        v["coretype_after"],
        Value::Null,
        "the switch leaked OPENBLAS_CORETYPE"
    );
}
