//! Mount points of FUSE file systems (`sft::mount`, and the client store,
//! which must clear a stale one before it removes a package's folder):
//! whether a folder is one, unmounting, and clearing a stale mount left by
//! a killed process. Unmounting runs `fusermount3` (or `umount`).

use std::path::Path;

use crate::error::Error;

/// `ENOTCONN`: what the kernel answers for a FUSE mount whose process is
/// gone.
const ENOTCONN: i32 = 107;

/// Make `dir` ready to mount on: it must be a directory and not a mount
/// point already; a stale FUSE mount on it (its process was killed: every
/// access fails with "transport endpoint is not connected") is detached
/// first. Returns whether one was.
///
/// # Errors
/// [`Error::Io`] naming `dir`: missing, not a directory, already mounted
/// (by a live process), or a stale mount that cannot be detached.
pub fn prepare_mountpoint(dir: &Path) -> Result<bool, Error> {
    let shown = dir.display();
    let mut cleared = false;
    let meta = match std::fs::metadata(dir) {
        Err(e) if e.raw_os_error() == Some(ENOTCONN) => {
            unmount(dir, true)?;
            cleared = true;
            std::fs::metadata(dir)
        }
        other => other,
    }
    .map_err(|e| Error::io(format!("cannot mount on `{shown}`"), e))?;
    if !meta.is_dir() {
        return Err(Error::io(
            format!("cannot mount on `{shown}`"),
            std::io::Error::from(std::io::ErrorKind::NotADirectory),
        ));
    }
    // The kernel may answer `stat` of a dead mount from its attribute
    // cache; opening the folder always reaches the server.
    if is_mount_point(dir)
        && !cleared
        && std::fs::read_dir(dir).is_err_and(|e| e.raw_os_error() == Some(ENOTCONN))
    {
        unmount(dir, true)?;
        cleared = true;
    }
    if is_mount_point(dir) {
        return Err(Error::io(
            format!(
                "cannot mount on `{shown}`: something is mounted there (`sft unmount` it first)"
            ),
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ));
    }
    Ok(cleared)
}

/// Whether `dir` is a mount point (Linux: `/proc/self/mountinfo`;
/// elsewhere `false`).
pub fn is_mount_point(dir: &Path) -> bool {
    let Ok(dir) = std::path::absolute(dir) else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(&unescape_mount_path(m)) == dir)
}

/// A mount table path: space, tab, newline and backslash are octal
/// escapes (`\040`).
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) if b[i] == b'\\' => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmount the FUSE mount on `dir` with `fusermount3 -u` (what a user may
/// run; `umount` without it, which needs root); `lazy` detaches a busy or
/// stale mount (`-z`, `umount -l`).
///
/// # Errors
/// [`Error::Io`] naming `dir` when neither tool is there or the unmount
/// fails (busy, not mounted).
pub fn unmount(dir: &Path, lazy: bool) -> Result<(), Error> {
    use std::process::{Command, Stdio};
    let run = |tool: &str, flags: &[&str]| {
        Command::new(tool)
            .args(flags)
            .arg(dir)
            .stdin(Stdio::null())
            .output()
    };
    let fuse_flags: &[&str] = if lazy { &["-u", "-z"] } else { &["-u"] };
    let umount_flags: &[&str] = if lazy { &["-l"] } else { &[] };
    let out = match run("fusermount3", fuse_flags) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => run("umount", umount_flags),
        other => other,
    }
    .map_err(|e| {
        Error::io(
            format!("unmounting `{}` (fusermount3, umount)", dir.display()),
            e,
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    Err(Error::io(
        format!("cannot unmount `{}`: {}", dir.display(), why.trim()),
        std::io::Error::other(out.status.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table_escapes() {
        assert_eq!(unescape_mount_path("/mnt/a\\040b\\011c"), "/mnt/a b\tc");
        assert_eq!(unescape_mount_path("/x\\"), "/x\\");
        assert_eq!(unescape_mount_path("/x\\08"), "/x\\08");
        assert!(is_mount_point(Path::new("/")) || !Path::new("/proc/self/mountinfo").exists());
        assert!(!is_mount_point(Path::new("/definitely/not/mounted")));
    }
}
