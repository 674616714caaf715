//! `parlinalg info` and `parlinalg report`: see the crate's library docs and `--help`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(parlinalg_cli::run(std::env::args_os()))
}
