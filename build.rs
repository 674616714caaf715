//! Finds the system OpenBLAS before anything links against it.
//!
//! `openblas-src` (feature `system`) asks pkg-config too, but when the library is missing it
//! lets the build go on to a raw linker error about `cblas_dgemm`. We stop earlier, with the
//! package to install and the variables that override the search.

use std::env;

const LIB_DIR_VAR: &str = "PARLINALG_OPENBLAS_LIB_DIR";

fn main() {
    println!("cargo:rerun-if-env-changed={LIB_DIR_VAR}");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("DOCS_RS").is_some() {
        return;
    }
    if let Some(dir) = env::var_os(LIB_DIR_VAR) {
        let dir = std::path::PathBuf::from(dir);
        if !dir.join("libopenblas.so").exists() && !dir.join("libopenblas.a").exists() {
            fail(&format!(
                "{LIB_DIR_VAR}={} holds no libopenblas.so or libopenblas.a",
                dir.display()
            ));
        }
        println!("cargo:rustc-link-search=native={}", dir.display());
        return;
    }
    match pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("openblas")
    {
        Ok(lib) => {
            let version = lib.version;
            println!("cargo:rustc-env=PARLINALG_BUILT_WITH_OPENBLAS={version}");
        }
        Err(e) => {
            let e = e.to_string();
            let first = e
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("");
            fail(&format!("pkg-config could not find openblas ({first})"))
        }
    }
}

fn fail(why: &str) -> ! {
    eprintln!();
    eprintln!("error: parlinalg needs the system OpenBLAS and could not find it.");
    eprintln!("  {why}");
    eprintln!("  On Debian/Ubuntu install it with:");
    eprintln!("      sudo apt-get install libopenblas-dev pkg-config");
    eprintln!("  (Fedora: openblas-devel pkgconf; Arch: openblas pkgconf.)");
    eprintln!("  To use an OpenBLAS elsewhere, point PKG_CONFIG_PATH at its openblas.pc, or set");
    eprintln!("  {LIB_DIR_VAR} to the directory holding libopenblas.so.");
    eprintln!();
    std::process::exit(1);
}
