//! `parlinalg info`: what parlinalg knows about threads in this process, like
//! `python -m threadpoolctl -i numpy`: the OpenBLAS library, what happened to its kernel, the
//! threading layer, thread counts with their sources, and warnings.

/// Prints [`parlinalg::threads::report`] as a table, or as JSON with `json`. Returns the exit
/// code: 1 when the report cannot be made (junk in a thread variable, named in the message).
pub fn main(json: bool) -> u8 {
    match parlinalg::threads::report() {
        Ok(report) if json => match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                println!("{text}");
                0
            }
            Err(e) => {
                eprintln!("parlinalg info: cannot write JSON: {e}");
                1
            }
        },
        Ok(report) => {
            print!("{report}");
            0
        }
        Err(e) => {
            eprintln!("parlinalg info: {e}");
            1
        }
    }
}
