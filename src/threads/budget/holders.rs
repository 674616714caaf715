//! Who holds a slot, from the kernel's table of file locks: the slots whose holder is stopped
//! (SIGSTOP, Ctrl-Z, a debugger), which cannot run the threads they stand for.
//!
//! A stopped process keeps its locks, and nothing in `flock` lets another process take them.
//! So a process that finds no free slot asks `/proc/locks` which processes hold the slot files
//! it could not lock, and `/proc/PID/stat` whether each is stopped (`T`, or `t` when stopped
//! by a tracer): those cores are idle, and it may run threads on them without their slots
//! ("borrowed"). When the holder runs again it gives back what others want at its next check
//! (every [`CHECK_EVERY`](super::CHECK_EVERY) of calls), and the borrower sees it running at
//! its next look ([`LOOK_EVERY`]).

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// How long a look at the holders is reused: reading `/proc/locks` costs tens of µs and a
/// stop is a human-time event.
pub(super) const LOOK_EVERY: Duration = Duration::from_millis(50);

/// A slot file's identity as `/proc/locks` prints it: device major, minor and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    major: u32,
    minor: u32,
    inode: u64,
}

impl FileId {
    /// The identity of an open file (`None` when `fstat` fails).
    pub(super) fn of(fd: &OwnedFd) -> Option<FileId> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat on a descriptor we own writes one `stat` into `st`, read only when it
        // succeeded.
        let st = unsafe {
            if libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) != 0 {
                return None;
            }
            st.assume_init()
        };
        Some(FileId {
            major: libc::major(st.st_dev),
            minor: libc::minor(st.st_dev),
            inode: st.st_ino,
        })
    }
}

/// How many of `files` are locked (`flock`, exclusive) by a process that is stopped now.
pub(super) fn held_by_stopped(files: &[FileId]) -> usize {
    if files.is_empty() {
        return 0;
    }
    // One read of the whole table: small reads make the kernel produce one record per read,
    // and a lock that moves between two reads would be seen twice.
    let Ok(table) = std::fs::read_to_string("/proc/locks") else {
        return 0;
    };
    let mut counted: Vec<FileId> = Vec::new();
    for (pid, file) in table.lines().filter_map(exclusive_flock) {
        if files.contains(&file) && !counted.contains(&file) && stopped(pid) {
            counted.push(file);
        }
    }
    counted.len()
}

/// `(pid, file)` of a line of `/proc/locks` that is a granted exclusive `flock`:
/// `1: FLOCK  ADVISORY  WRITE 4242 00:1a:1234 0 EOF`. Waiting requests (`1: -> FLOCK ...`),
/// shared locks and other kinds are `None`.
pub(super) fn exclusive_flock(line: &str) -> Option<(u32, FileId)> {
    let mut fields = line.split_whitespace().skip(1);
    let (kind, _, mode) = (fields.next()?, fields.next()?, fields.next()?);
    if kind != "FLOCK" || mode != "WRITE" {
        return None;
    }
    let pid = fields.next()?.parse().ok()?;
    let mut id = fields.next()?.split(':');
    let major = u32::from_str_radix(id.next()?, 16).ok()?;
    let minor = u32::from_str_radix(id.next()?, 16).ok()?;
    let inode = id.next()?.parse().ok()?;
    Some((
        pid,
        FileId {
            major,
            minor,
            inode,
        },
    ))
}

/// Whether process `pid` is stopped (state `T` or `t` in `/proc/PID/stat`). A process not
/// visible here (another PID namespace: pid 0) counts as running.
fn stopped(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .as_deref()
        .and_then(state_of)
        .is_some_and(|s| s == 'T' || s == 't')
}

/// The state letter of a `/proc/PID/stat` line: the first field after the command name, which
/// is in parentheses and may itself hold spaces and parentheses.
pub(super) fn state_of(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_lines_and_states_are_read_as_the_kernel_writes_them() {
        let id = FileId {
            major: 0,
            minor: 0x1a,
            inode: 1234,
        };
        assert_eq!(
            exclusive_flock("1: FLOCK  ADVISORY  WRITE 4242 00:1a:1234 0 EOF"),
            Some((4242, id))
        );
        assert_eq!(
            exclusive_flock("2: FLOCK  ADVISORY  READ 4242 00:1a:1234 0 EOF"),
            None
        );
        assert_eq!(
            exclusive_flock("3: -> FLOCK  ADVISORY  WRITE 9 00:1a:1234 0 EOF"),
            None
        );
        assert_eq!(
            exclusive_flock("4: POSIX  ADVISORY  WRITE 9 00:1a:1234 0 EOF"),
            None
        );
        assert_eq!(exclusive_flock("junk"), None);
        assert_eq!(state_of("42 (a (b) c) T 1 2 3"), Some('T'));
        assert_eq!(state_of("42 (x) R 1"), Some('R'));
        assert_eq!(state_of("no parenthesis"), None);
        // This process runs, and is seen running.
        assert!(!stopped(std::process::id()));
    }
}
