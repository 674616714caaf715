//! What the command's tests share: the built binary, its output as text, a scratch folder.
#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;
use std::process::Command;

/// The built `parlinalg` binary, ready for arguments.
pub fn parlinalg_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_parlinalg"))
}

/// Output bytes as text (lossy: the command's own text is UTF-8).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An empty folder of this test process's own, named after the test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parlinalg-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
