//! Atomic file writes: a temporary file in the same folder, `fsync`,
//! `rename` over the name, `fsync` of the folder. A crash or a kill leaves
//! the old file or the new one under the name, never a part of either;
//! at worst a `.NAME.tmp-PID-N` file is left beside it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Write `bytes` to `path` atomically (see the [module docs](self)).
///
/// # Errors
/// [`Error::Io`] naming the file that could not be created, written,
/// synced or renamed (the temporary file is removed).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_with(path, bytes, &|_| {})
}

/// As [`write`], calling `before_rename` with the temporary file's path
/// once it is synced (a test hook).
pub(crate) fn write_with(
    path: &Path,
    bytes: &[u8],
    before_rename: &dyn Fn(&Path),
) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // Unique within the process too: two threads writing one path each
    // have their own temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let io = |what: &str, p: &Path| {
        let c = format!("{what} `{}`", p.display());
        move |e| Error::io(c, e)
    };
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("creating", &tmp))?;
        f.write_all(bytes).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    before_rename(&tmp);
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io("renaming", &tmp)(e));
    }
    sync_dir(dir)
}

/// `fsync` a folder so a rename in it is durable (a no-op where folders
/// cannot be opened).
///
/// # Errors
/// [`Error::Io`] naming the folder.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(format!("syncing `{}`", dir.display()), e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.txt");
        std::fs::write(&p, b"old").unwrap();
        super::write(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        // A folder that does not exist: an error naming the file.
        let e = super::write(&d.path().join("no/x.txt"), b"a").unwrap_err();
        assert!(e.to_string().contains("x.txt"), "{e}");
    }
}
