//! Prints parlinalg's thread report, like `python -m threadpoolctl -i numpy`.
//!
//! ```text
//! cargo run --example info            # a readable table
//! cargo run --example info -- --json  # the same as JSON
//! PARLINALG_BLAS_THREADS=1 cargo run --example info
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let json = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--json") => true,
        Some("-h" | "--help") => {
            println!("usage: info [--json]\n\nPrints the OpenBLAS library, kernel, threading layer, thread counts with their sources, and warnings.");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("info: unknown argument {other:?} (try --help)");
            return ExitCode::from(2);
        }
    };
    match parlinalg::threads::report() {
        Ok(report) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("the report serialises")
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("info: {e}");
            ExitCode::FAILURE
        }
    }
}
