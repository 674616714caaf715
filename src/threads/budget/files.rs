//! The budget's files: the per-user, per-group directory and its slot files, created and
//! opened so that no other user can create, take or corrupt them (`0700` directories opened
//! with `O_NOFOLLOW`, every descriptor checked with `fstat`: owner, mode, kind).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// The group's directory, opened and checked.
#[derive(Debug)]
pub(super) struct Dir {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// This process's effective user id.
fn euid() -> libc::uid_t {
    // SAFETY: geteuid cannot fail and takes no argument.
    unsafe { libc::geteuid() }
}

/// Checks an open descriptor: ours, no access for others, of the expected kind.
fn check_fd(fd: RawFd, dir: bool) -> std::result::Result<(), String> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat writes a `stat` into the zeroed buffer we own.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return Err(format!("fstat failed: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fstat succeeded, so the struct is initialised (it was zeroed anyway).
    let st = unsafe { st.assume_init() };
    let kind = st.st_mode & libc::S_IFMT;
    let want = if dir { libc::S_IFDIR } else { libc::S_IFREG };
    if kind != want {
        return Err(format!(
            "not a {} (mode {:o})",
            if dir { "directory" } else { "regular file" },
            st.st_mode
        ));
    }
    if st.st_uid != euid() {
        return Err(format!("owned by uid {}, not {}", st.st_uid, euid()));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(format!(
            "mode {:o} lets other users in (expected no group or other access)",
            st.st_mode & 0o777
        ));
    }
    Ok(())
}

fn cstr(name: &str) -> std::result::Result<CString, String> {
    CString::new(name).map_err(|_| format!("{name:?} holds a NUL byte"))
}

/// `openat(dirfd, name)` with `flags`, as an owned descriptor.
fn openat(
    dirfd: RawFd,
    name: &str,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> std::result::Result<OwnedFd, String> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated; openat returns a new descriptor or -1.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags, libc::c_uint::from(mode)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdirat(dirfd, name, 0700)` (an existing entry is fine: it is checked when opened), then
/// opens it without following a symlink, and checks it.
fn open_dir_at(dirfd: RawFd, name: &str) -> std::result::Result<OwnedFd, String> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated; mkdirat only creates a directory entry.
    let rc = unsafe { libc::mkdirat(dirfd, c.as_ptr(), 0o700) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(format!("cannot create {name}: {e}"));
        }
    }
    let fd = openat(
        dirfd,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    )
    .map_err(|e| format!("cannot open {name}: {e}"))?;
    check_fd(fd.as_raw_fd(), true).map_err(|e| format!("{name}: {e}"))?;
    Ok(fd)
}

/// A slot (or the `want`) file in the group's directory: created `0600` if missing, never
/// through a symlink, never blocking (a FIFO), checked to be a regular file of ours.
pub(super) fn open_file(dirfd: RawFd, name: &str) -> std::result::Result<OwnedFd, String> {
    let fd = openat(
        dirfd,
        name,
        libc::O_RDWR
            | libc::O_CREAT
            | libc::O_NOFOLLOW
            | libc::O_CLOEXEC
            | libc::O_NONBLOCK
            | libc::O_NOCTTY,
        0o600,
    )?;
    check_fd(fd.as_raw_fd(), false)?;
    Ok(fd)
}

/// Where the per-user directories live: `/dev/shm`, else `$XDG_RUNTIME_DIR`, else `/tmp`.
fn base_dir() -> PathBuf {
    if Path::new("/dev/shm").is_dir() {
        return PathBuf::from("/dev/shm");
    }
    match crate::env::read(crate::env::RUNTIME_DIR_VAR).map(PathBuf::from) {
        Some(p) if p.is_absolute() && p.is_dir() => p,
        _ => PathBuf::from("/tmp"),
    }
}

/// `<base>/parlinalg-<uid>/<group>`: where the budget of `group` lives.
pub(super) fn group_path(group: &str) -> PathBuf {
    base_dir().join(format!("parlinalg-{}", euid())).join(group)
}

/// Opens (creating them `0700` if needed) and checks `<base>/parlinalg-<uid>/<group>`.
pub(super) fn open_group_dir(group: &str) -> std::result::Result<Dir, String> {
    let base = base_dir();
    let user = format!("parlinalg-{}", euid());
    let path = group_path(group);
    let fail = |why: String| format!("budget directory {}: {why}", path.display());
    let basefd = openat(
        libc::AT_FDCWD,
        &base.to_string_lossy(),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .map_err(|e| fail(format!("cannot open {}: {e}", base.display())))?;
    let userfd = open_dir_at(basefd.as_raw_fd(), &user).map_err(fail)?;
    let fd = open_dir_at(userfd.as_raw_fd(), group).map_err(fail)?;
    Ok(Dir { fd, path })
}
