//! What the loaded OpenBLAS says about itself: path, version, build configuration, running
//! core kernel, threading layer and thread counts.

use std::fmt;
use std::path::PathBuf;

use super::ffi;

/// How the loaded OpenBLAS runs its own threads (`openblas_get_parallel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum ThreadingLayer {
    /// Built without threading: every call runs on the calling thread.
    Sequential,
    /// Built with OpenBLAS's own pthreads pool: one process-wide count and pool, and
    /// concurrent multithreaded calls from several application threads queue on one lock.
    Pthreads,
    /// Built with OpenMP: the count is the calling thread's, but the threads' buffers are
    /// process-wide, so concurrent multithreaded calls queue, and calls at different counts
    /// corrupt each other unless kept apart (parlinalg keeps them apart).
    OpenMp,
    /// A value this version of parlinalg does not know.
    Unknown(i32),
}

impl ThreadingLayer {
    /// From `openblas_get_parallel()`'s return value.
    pub(crate) fn from_code(code: i32) -> Self {
        match code {
            0 => ThreadingLayer::Sequential,
            1 => ThreadingLayer::Pthreads,
            2 => ThreadingLayer::OpenMp,
            other => ThreadingLayer::Unknown(other),
        }
    }
}

impl fmt::Display for ThreadingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadingLayer::Sequential => write!(f, "sequential"),
            ThreadingLayer::Pthreads => write!(f, "pthreads"),
            ThreadingLayer::OpenMp => write!(f, "openmp"),
            ThreadingLayer::Unknown(code) => write!(f, "unknown ({code})"),
        }
    }
}

/// The OpenBLAS this process runs, as it reports itself.
///
/// ```
/// let lib = parlinalg::blas_library();
/// assert!(lib.config.contains("OpenBLAS"));
/// println!("{lib}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BlasLibrary {
    /// File the OpenBLAS symbols were loaded from (via `dladdr`), when the loader can say.
    pub path: Option<PathBuf>,
    /// `openblas_get_config()`, e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY
    /// Cooperlake MAX_THREADS=64`.
    pub config: String,
    /// Version parsed from the config string (`0.3.21`), when present.
    pub version: Option<String>,
    /// The running core kernel (`openblas_get_corename()`), e.g. `Cooperlake`, `Haswell`, or
    /// `Prescott` (the generic fallback of x86-64 `DYNAMIC_ARCH` builds).
    pub corename: String,
    /// Whether the library holds kernels for many CPUs and picks one at load (`DYNAMIC_ARCH`),
    /// which is what makes `OPENBLAS_CORETYPE` work.
    pub dynamic_arch: bool,
    /// Threading layer (`openblas_get_parallel()`).
    pub threading: ThreadingLayer,
    /// The compiled thread limit (`MAX_THREADS=` in the config string), when present.
    pub max_threads: Option<usize>,
    /// Current BLAS thread count (`openblas_get_num_threads()`).
    pub num_threads: usize,
    /// Processors OpenBLAS detected when it loaded (`openblas_get_num_procs()`).
    pub num_procs: usize,
}

impl BlasLibrary {
    /// Reads every field from the loaded library.
    pub(crate) fn query() -> Self {
        let config = ffi::get_config();
        BlasLibrary {
            path: library_path(),
            version: parse_version(&config),
            dynamic_arch: config.split_whitespace().any(|w| w == "DYNAMIC_ARCH"),
            max_threads: parse_max_threads(&config),
            corename: ffi::get_corename(),
            threading: ThreadingLayer::from_code(ffi::get_parallel()),
            num_threads: usize::try_from(ffi::get_num_threads()).unwrap_or(0),
            num_procs: usize::try_from(ffi::get_num_procs()).unwrap_or(0),
            config,
        }
    }

    /// The version as `(major, minor, patch)`, when it parses.
    ///
    /// ```
    /// let (major, minor, _) = parlinalg::blas_library().version_triple().expect("a version");
    /// assert!((major, minor) >= (0, 3));
    /// ```
    pub fn version_triple(&self) -> Option<(u32, u32, u32)> {
        let mut parts = self.version.as_deref()?.split('.');
        let mut next = || parts.next()?.parse::<u32>().ok();
        Some((next()?, next()?, next().unwrap_or(0)))
    }
}

impl fmt::Display for BlasLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self
            .path
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |p| p.display().to_string());
        writeln!(f, "library     {path}")?;
        writeln!(
            f,
            "version     {}",
            self.version.as_deref().unwrap_or("unknown")
        )?;
        writeln!(f, "config      {}", self.config)?;
        writeln!(f, "kernel      {}", self.corename)?;
        writeln!(f, "threading   {}", self.threading)?;
        let max = self
            .max_threads
            .map_or_else(|| "unknown".to_owned(), |m| m.to_string());
        write!(
            f,
            "threads     {} (compiled max {max}, {} processors seen)",
            self.num_threads, self.num_procs
        )
    }
}

/// The BLAS library of this process, as it describes itself: see [`BlasLibrary`].
///
/// ```
/// let lib = parlinalg::blas_library();
/// println!("{} on kernel {} ({} threading)", lib.config, lib.corename, lib.threading);
/// ```
pub fn blas_library() -> BlasLibrary {
    BlasLibrary::query()
}

/// `0.3.21` from `OpenBLAS 0.3.21 NO_LAPACKE ...`.
fn parse_version(config: &str) -> Option<String> {
    let mut words = config.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("openblas"))?;
    let v = words.next()?;
    v.starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_owned())
}

/// `64` from `... MAX_THREADS=64`.
fn parse_max_threads(config: &str) -> Option<usize> {
    config
        .split_whitespace()
        .find_map(|w| w.strip_prefix("MAX_THREADS="))
        .and_then(|v| v.parse().ok())
}

/// The file that holds the OpenBLAS symbols, from the dynamic loader, with the alternatives
/// symlinks Debian uses resolved, so the report names the real file.
fn library_path() -> Option<PathBuf> {
    let path = ffi::loaded_from()?;
    Some(std::fs::canonicalize(&path).unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str =
        "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64";

    #[test]
    fn parses_version_and_max_threads() {
        assert_eq!(parse_version(DEBIAN).as_deref(), Some("0.3.21"));
        assert_eq!(parse_max_threads(DEBIAN), Some(64));
        assert_eq!(
            parse_version("OpenBLAS 0.3.31.188.0  USE64BITINT DYNAMIC_ARCH").as_deref(),
            Some("0.3.31.188.0")
        );
        assert_eq!(parse_version("something else"), None);
        assert_eq!(parse_max_threads("OpenBLAS 0.3.5"), None);
    }

    #[test]
    fn threading_layer_codes() {
        assert_eq!(ThreadingLayer::from_code(0), ThreadingLayer::Sequential);
        assert_eq!(ThreadingLayer::from_code(1), ThreadingLayer::Pthreads);
        assert_eq!(ThreadingLayer::from_code(2), ThreadingLayer::OpenMp);
        assert_eq!(ThreadingLayer::from_code(7), ThreadingLayer::Unknown(7));
    }

    #[test]
    fn the_loaded_library_describes_itself() {
        let lib = blas_library();
        assert!(lib.config.contains("OpenBLAS"), "{}", lib.config);
        assert!(lib.version_triple().is_some(), "{:?}", lib.version);
        assert!(!lib.corename.is_empty());
        assert!(lib.num_threads >= 1);
        let path = lib.path.expect("dladdr finds libopenblas");
        assert!(path.to_string_lossy().contains("openblas"), "{path:?}");
    }
}
