//! Advisory file locks (`flock` on Unix, `LockFileEx` on Windows) through
//! `std::fs::File::lock` and friends.
//!
//! std's file locks are stable since Rust 1.89, the crate's `rust-version`.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::Error;

/// How a lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Shared (readers), waiting for it.
    Shared,
    /// Exclusive (writers), waiting for it.
    Exclusive,
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct Held {
    _file: File,
}

fn open(path: &Path, create: bool) -> Result<Option<File>, Error> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(
            format!("opening lock file `{}`", path.display()),
            e,
        )),
    }
}

/// Take the lock on `path` (created if missing), waiting for it.
pub(crate) fn lock(path: &Path, mode: Mode) -> Result<Held, Error> {
    let Some(file) = open(path, true)? else {
        return Err(Error::NotFound(path.display().to_string()));
    };
    let r = match mode {
        Mode::Shared => file.lock_shared(),
        Mode::Exclusive => file.lock(),
    };
    r.map_err(|e| Error::io(format!("locking `{}`", path.display()), e))?;
    Ok(Held { _file: file })
}

/// Try to take the exclusive lock on `path` (created if missing) without
/// waiting: `Ok(None)` if someone else holds it.
pub(crate) fn try_exclusive(path: &Path) -> Result<Option<Held>, Error> {
    let Some(file) = open(path, true)? else {
        return Ok(None);
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(Held { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io(format!("locking `{}`", path.display()), e)),
    }
}

/// True if someone holds a lock on `path` (which is not created; a
/// missing file is not held). Takes and drops an exclusive lock, so it
/// changes nothing.
pub(crate) fn is_held(path: &Path) -> bool {
    let Ok(Some(file)) = open(path, false) else {
        return false;
    };
    matches!(file.try_lock(), Err(TryLockError::WouldBlock))
}
