//! `sft mount` / `sft unmount`: a package as a read-only FUSE file system
//! while it streams (`sft::mount`).

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use sft::fetch::cache::CachePaths;
use sft::fetch::streaming::{StreamingOptions, StreamingPackage};
use sft::mount::PackageFs;

use crate::args::{Background, MountArgs, UnmountArgs};

/// Mount, serve until SIGINT/SIGTERM or an outside unmount, unmount.
pub(crate) fn run(a: &MountArgs) -> anyhow::Result<()> {
    let shown = sft::redact_url(&a.source);
    let dir = &a.mountpoint;
    let meta =
        std::fs::metadata(dir).with_context(|| format!("cannot mount on `{}`", dir.display()))?;
    if !meta.is_dir() {
        bail!("cannot mount on `{}`: not a directory", dir.display());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("registering the unmount signal handlers")?;
    }
    let source = sft::fetch::open_source_with(&a.source, &a.remote.options())
        .with_context(|| format!("cannot open `{shown}`"))?;
    // The cache: kept in --cache-dir (resumable), else a temporary one.
    let temp;
    let cache_dir = match &a.cache_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix(".sft-mount-")
                .tempdir()
                .context("cannot create a temporary cache directory")?;
            temp.path().to_path_buf()
        }
    };
    let name = a
        .source
        .rsplit(['/', '\\'])
        .next()
        .filter(|n| n.ends_with(".sft"))
        .unwrap_or("package.sft");
    // `<name>.partial` in the cache directory: where `sft fetch SOURCE -o
    // <name> --cache-dir DIR` keeps its cache, so either resumes the other.
    let paths = CachePaths::for_output(std::path::Path::new(name), Some(&cache_dir));
    let launch_only = a.background == Background::None;
    let options = StreamingOptions::default().session(a.remote.session().launch_only(launch_only));
    let pkg = StreamingPackage::open(Arc::from(source), paths, options)
        .with_context(|| format!("cannot stream `{shown}`"))?;
    let fs = PackageFs::new(Arc::new(pkg), meta.uid(), meta.gid())
        .with_context(|| format!("cannot read the tree of `{shown}`"))?;
    let mount = sft::mount::spawn(fs, dir, &a.source)?;
    eprintln!("sft mount: `{shown}` mounted on {}", dir.display());
    while !stop.load(Ordering::Relaxed) && !mount.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    if mount.is_finished() {
        // Unmounted from outside, or the session failed: exit 0 only for
        // the first.
        mount
            .join()
            .with_context(|| format!("the mount on {} failed", dir.display()))?;
        eprintln!("sft mount: {} was unmounted", dir.display());
        return Ok(());
    }
    mount
        .unmount()
        .with_context(|| format!("cannot unmount {}", dir.display()))?;
    eprintln!("sft mount: unmounted {}", dir.display());
    Ok(())
}

/// `fusermount3 -u DIR` (or `umount DIR` without it).
pub(crate) fn unmount(a: &UnmountArgs) -> anyhow::Result<()> {
    let dir = &a.mountpoint;
    let run = |tool: &str, args: &[&std::ffi::OsStr]| {
        std::process::Command::new(tool)
            .args(args)
            .status()
            .map(|s| s.success())
    };
    let ok = match run("fusermount3", &["-u".as_ref(), dir.as_os_str()]) {
        Ok(ok) => ok,
        Err(_) => run("umount", &[dir.as_os_str()]).with_context(|| {
            format!("cannot unmount {}: no fusermount3 or umount", dir.display())
        })?,
    };
    if !ok {
        bail!("cannot unmount {}", dir.display());
    }
    Ok(())
}
