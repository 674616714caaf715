//! The `parlinalg` command: `parlinalg info` (what runs and why, like
//! `python -m threadpoolctl -i`) and `parlinalg report` (the demonstration: threads, processes
//! or BLAS threads, measured on this machine).
//!
//! A library beside the binary so that the tests, which run the built binary, can read its JSON
//! output back into the same types. Its dependencies (command line, plotting) stay out of the
//! `parlinalg` library's tree.

pub mod info;
pub mod report;

use clap::{Parser, Subcommand};

/// parlinalg: how many threads your numeric Rust really runs, and what the choices cost here.
#[derive(Parser, Debug)]
#[command(name = "parlinalg", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the OpenBLAS library, its kernel (and what parlinalg did about it), the threading
    /// layer, thread counts with where each came from, and warnings.
    Info {
        /// The same as JSON.
        #[arg(long)]
        json: bool,
    },
    // Described by `report::Args`'s own doc (a doc comment here would replace the whole of it
    // in `report --help` with one line).
    Report(Box<report::Args>),
}

/// Runs the command line `argv`; returns the exit code (2 for a bad command line, printed by
/// clap with a pointer to `--help`).
pub fn run(argv: impl IntoIterator<Item = std::ffi::OsString>) -> u8 {
    // A worker or child of a report ends with it (nothing in any other process).
    report::lifecycle::die_with_the_report();
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| e.exit());
    match &cli.command {
        Command::Info { json } => info::main(*json),
        Command::Report(args) => report::main(args),
    }
}
