//! The report's child roles: a command that runs this program again as a worker of the classic
//! table or as the grid under another OpenBLAS (`main` in `report/mod.rs` plays the role).

use std::process::{Command, Stdio};

/// Which part of the report a re-executed child plays.
#[derive(Debug, Clone, Copy)]
pub enum SelfRole {
    /// A worker of the classic table.
    Worker,
    /// The grid in a child (under another OpenBLAS).
    GridChild,
}

/// A command that runs this program again in `role` with `spec`: `parlinalg report --worker
/// SPEC` or `parlinalg report --grid-child SPEC` (the hidden flags of [`crate::report::Args`]).
pub fn self_command(role: SelfRole, spec: &str) -> Command {
    let exe = std::env::current_exe().expect("the running executable's path");
    let mut cmd = Command::new(exe);
    let flag = match role {
        SelfRole::Worker => "--worker",
        SelfRole::GridChild => "--grid-child",
    };
    cmd.arg("report").arg(flag).arg(spec);
    if matches!(role, SelfRole::Worker) {
        cmd.stdout(Stdio::null()).stdin(Stdio::null());
    }
    cmd
}
