//! A read-only FUSE file system over a [`StreamingPackage`] (feature
//! `mount`): the package's tree is there as soon as the prologue is known,
//! and a read of a block not yet present is a demand fetch that the
//! stream's scheduler serves before FB1 and FB2 (App-V's out-of-sequence
//! request); it returns once the block is verified. A block that fails its
//! check is never returned: the read gets `EIO` once the stream gives up.
//!
//! Built on [`fuser`] (0.18): maintained, pure Rust down to `mount(2)`
//! (no libfuse to link; `fusermount3` only for non-root mounts), a safe
//! API (no `unsafe` here) and a multi-threaded session, so several readers
//! wait for their blocks at once.
//!
//! Inodes: 1 is the root, entry `i` of the package (path order) is
//! `i + 2`. Attributes and data never change under a mount, so the kernel
//! keeps both cached (long TTLs, `FOPEN_KEEP_CACHE`): a page is read from
//! the package once.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEntry, ReplyOpen, Request,
};

use crate::error::Error;
use crate::fetch::streaming::StreamingPackage;

mod trace;
pub use trace::Trace;

/// How long the kernel may keep names and attributes (they never change
/// while mounted).
const TTL: Duration = Duration::from_secs(3600);
/// Most bytes one read hands the kernel (its own limit is lower).
const MAX_READ: u32 = 1 << 20;

/// One file or directory of the mounted tree.
#[derive(Debug)]
struct Node {
    /// The entry's path in the package (`""` for the root).
    path: String,
    /// The entry's number in the package (path order; the root has none).
    entry: u64,
    dir: bool,
    size: u64,
    mtime: SystemTime,
    executable: bool,
    /// Children of a directory: name → inode.
    children: HashMap<String, u64>,
    /// Children in package order, for `readdir` offsets.
    order: Vec<u64>,
    parent: u64,
}

/// The read-only file system of one streaming package; see the
/// [module docs](self).
#[derive(Debug)]
pub struct PackageFs {
    pkg: Arc<StreamingPackage>,
    /// Index `ino - 1`.
    nodes: Vec<Node>,
    uid: u32,
    gid: u32,
    trace: Option<Arc<Trace>>,
}

impl PackageFs {
    /// The tree of `pkg`'s entries, owned by `uid`:`gid`.
    ///
    /// # Errors
    /// A damaged entry table (as [`StreamingPackage::entries`]).
    pub fn new(pkg: Arc<StreamingPackage>, uid: u32, gid: u32) -> Result<Self, Error> {
        let mut nodes = vec![Node {
            path: String::new(),
            entry: u64::MAX,
            dir: true,
            size: 0,
            mtime: SystemTime::UNIX_EPOCH,
            executable: true,
            children: HashMap::new(),
            order: Vec::new(),
            parent: 1,
        }];
        let mut by_path: HashMap<String, u64> = HashMap::new();
        by_path.insert(String::new(), 1);
        for (number, e) in pkg.entries()?.enumerate() {
            let e = e?;
            let ino = nodes.len() as u64 + 1;
            let parent = *by_path.get(e.parent()).ok_or_else(|| {
                Error::invalid(format!(
                    "`{}`: its directory is not in the package",
                    e.path()
                ))
            })?;
            by_path.insert(e.path().to_owned(), ino);
            if let Some(p) = nodes.get_mut(parent as usize - 1) {
                p.children.insert(e.name().to_owned(), ino);
                p.order.push(ino);
            }
            nodes.push(Node {
                path: e.path().to_owned(),
                entry: number as u64,
                dir: e.is_dir(),
                size: if e.is_dir() { 0 } else { e.size() },
                mtime: e.modified_time(),
                executable: e.attributes().executable,
                children: HashMap::new(),
                order: Vec::new(),
                parent,
            });
        }
        Ok(PackageFs {
            pkg,
            nodes,
            uid,
            gid,
            trace: None,
        })
    }

    /// Record every read into `trace` (launch recording; see [`Trace`]).
    #[must_use]
    pub fn record(mut self, trace: Arc<Trace>) -> Self {
        self.trace = Some(trace);
        self
    }

    fn node(&self, ino: INodeNo) -> Option<&Node> {
        usize::try_from(ino.0)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.nodes.get(i))
    }

    fn attr(&self, ino: u64, n: &Node) -> FileAttr {
        let (kind, perm, nlink) = if n.dir {
            (FileType::Directory, 0o555, 2)
        } else if n.executable {
            (FileType::RegularFile, 0o555, 1)
        } else {
            (FileType::RegularFile, 0o444, 1)
        };
        FileAttr {
            ino: INodeNo(ino),
            size: n.size,
            blocks: n.size.div_ceil(512),
            atime: n.mtime,
            mtime: n.mtime,
            ctime: n.mtime,
            crtime: n.mtime,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 64 * 1024,
            flags: 0,
        }
    }

    /// Read `size` bytes of file `n` at `offset`, waiting for (and
    /// demanding) the blocks they lie in.
    fn read_bytes(&self, n: &Node, offset: u64, size: u32) -> Result<Vec<u8>, Error> {
        let entry = self.pkg.prologue()?.entry_at(n.entry)?;
        let want = u64::from(size.min(MAX_READ)).min(n.size.saturating_sub(offset));
        // Recorded as the request arrives: with several session threads,
        // the order reads finish in is not the order of first touch.
        if let Some(t) = &self.trace {
            t.record(&n.path, n.size, offset, want);
        }
        let mut buf = vec![0u8; want as usize];
        let got = self.pkg.read_at(&entry, offset, &mut buf)?;
        buf.truncate(got);
        Ok(buf)
    }
}

impl Filesystem for PackageFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self
            .node(parent)
            .and_then(|p| p.children.get(name.to_str()?))
            .and_then(|&ino| Some((ino, self.node(INodeNo(ino))?)));
        match found {
            Some((ino, n)) => reply.entry(&TTL, &self.attr(ino, n), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino) {
            Some(n) => reply.attr(&TTL, &self.attr(ino.0, n)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.node(ino) {
            None => reply.error(Errno::ENOENT),
            Some(n) if n.dir => reply.error(Errno::EISDIR),
            Some(_) if !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY) => {
                reply.error(Errno::EROFS);
            }
            // The data never changes: the kernel keeps what it read.
            Some(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.node(ino) {
            None => reply.error(Errno::ENOENT),
            Some(n) if n.dir => reply.error(Errno::EISDIR),
            Some(n) => match self.read_bytes(n, offset, size) {
                Ok(data) => reply.data(&data),
                // Never bytes a check rejected: the reader gets EIO.
                Err(_) => reply.error(Errno::EIO),
            },
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(dir) = self.node(ino) else {
            reply.error(Errno::ENOENT);
            return;
        };
        if !dir.dir {
            reply.error(Errno::ENOTDIR);
            return;
        }
        let dots = [(ino.0, "."), (dir.parent, "..")];
        let listed = dots
            .into_iter()
            .map(|(i, name)| (i, FileType::Directory, name))
            .chain(dir.order.iter().filter_map(|&i| {
                let n = self.node(INodeNo(i))?;
                let kind = if n.dir {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                };
                Some((i, kind, n.path.rsplit('/').next().unwrap_or(&n.path)))
            }));
        for (k, (i, kind, name)) in listed.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(i), k as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// Mount options for a package at `mountpoint`: read-only, no devices or
/// set-uid, named after `source` in the mount table (credentials and
/// signatures in a URL removed: the mount table is world-readable).
pub fn config(source: &str) -> Config {
    let mut c = Config::default();
    c.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::FSName(crate::redact_url(source).replace([',', ' '], "_")),
        MountOption::Subtype("sft".into()),
        MountOption::DefaultPermissions,
    ];
    c.n_threads = Some(4);
    c
}

/// A mounted package; dropping it unmounts (as [`Mount::unmount`], with
/// the error ignored).
#[derive(Debug)]
pub struct Mount {
    session: fuser::BackgroundSession,
}

impl Mount {
    /// Whether the file system stopped serving (unmounted from outside,
    /// `umount` or `fusermount3 -u`).
    pub fn is_finished(&self) -> bool {
        self.session.guard.is_finished()
    }

    /// Wait for a file system that [`Mount::is_finished`] says stopped
    /// serving; the error it stopped with, if any.
    ///
    /// # Errors
    /// [`Error::Io`]: the session's failure (the FUSE device, the kernel).
    pub fn join(self) -> Result<(), Error> {
        self.session
            .join()
            .map_err(|e| Error::io("serving the mount", e))
    }

    /// Unmount and wait for the file system's threads to end.
    ///
    /// # Errors
    /// [`Error::Io`] when the kernel refuses the unmount (busy).
    pub fn unmount(self) -> Result<(), Error> {
        self.session
            .umount_and_join()
            .map_err(|e| Error::io("unmounting", e))
    }
}

/// Mount `fs` at `mountpoint`, served by background threads.
///
/// # Errors
/// [`Error::Io`] when the kernel refuses the mount (no `/dev/fuse`, not
/// permitted, not a directory).
pub fn spawn(fs: PackageFs, mountpoint: &Path, source: &str) -> Result<Mount, Error> {
    let session = fuser::spawn_mount(fs, mountpoint, &config(source))
        .map_err(|e| Error::io(format!("mounting at {}", mountpoint.display()), e))?;
    Ok(Mount { session })
}

pub use crate::io::mountpoint::{is_mount_point, prepare_mountpoint, unmount};
