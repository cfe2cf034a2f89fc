//! `sft mount` / `sft unmount`: a package as a read-only FUSE file system
//! while it streams (`sft::mount`), and launch recording
//! (`--record-trace`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use sft::fetch::cache::CachePaths;
use sft::fetch::streaming::{StreamingOptions, StreamingPackage};
use sft::mount::{Mount, PackageFs, Trace};
use sft::stream::{Event, SessionConfig};

use crate::args::{Background, MountArgs, UnmountArgs};
use crate::escape::Safe;
use crate::util::short;

/// What a mount is asked to do, from `sft mount`, `sft trace` or `sft
/// client`.
pub(crate) struct MountPlan<'a> {
    /// The package (a path or URL, descriptors already resolved).
    pub source: &'a str,
    pub mountpoint: &'a Path,
    /// Where to keep the blocks; `None`: a temporary cache, removed with
    /// the mount.
    pub cache: Option<CachePaths>,
    pub session: SessionConfig,
    pub sources: sft::fetch::SourceOptions,
    pub trace: Option<Arc<Trace>>,
    /// Print this line once mounted, then "FB1 resident" once it is
    /// (`sft mount`).
    pub announce: Option<String>,
}

/// A live mount: the file system, the stream under it, and its temporary
/// cache (removed when this is dropped).
pub(crate) struct Mounted {
    mount: Mount,
    pkg: Arc<StreamingPackage>,
    _temp: Option<tempfile::TempDir>,
}

impl MountPlan<'_> {
    /// Open the stream and mount it.
    pub(crate) fn mount(self) -> anyhow::Result<Mounted> {
        let shown = sft::redact_url(self.source);
        let dir = self.mountpoint;
        if sft::mount::prepare_mountpoint(dir)? {
            eprintln!(
                "sft mount: cleared a stale mount on {} (the process that served it was gone)",
                Safe(&dir.display().to_string())
            );
        }
        let meta = std::fs::metadata(dir)
            .with_context(|| format!("cannot mount on `{}`", dir.display()))?;
        let source = sft::fetch::open_source_with(self.source, &self.sources)
            .with_context(|| format!("cannot open `{shown}`"))?;
        // The cache: the one asked for (resumable), else a temporary one.
        let (paths, temp) = match self.cache {
            Some(paths) => (paths, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix(".sft-mount-")
                    .tempdir()
                    .context("cannot create a temporary cache directory")?;
                let paths = CachePaths::for_output(Path::new("package.sft"), Some(temp.path()));
                (paths, Some(temp))
            }
        };
        // (mounted, FB1 resident): the lines come in that order.
        let said = Arc::new(std::sync::Mutex::new((false, false)));
        let seen = Arc::clone(&said);
        let announce = self.announce.is_some();
        let options = StreamingOptions::default()
            .session(self.session)
            .on_event(move |e| {
                if announce && matches!(e, Event::LaunchReady) {
                    let mut s = seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    s.1 = true;
                    if s.0 {
                        eprintln!("sft mount: FB1 resident");
                    }
                }
            });
        let pkg = Arc::new(
            StreamingPackage::open(Arc::from(source), paths, options)
                .with_context(|| format!("cannot stream `{shown}`"))?,
        );
        let mut fs = PackageFs::new(Arc::clone(&pkg), meta.uid(), meta.gid())
            .with_context(|| format!("cannot read the tree of `{shown}`"))?;
        if let Some(t) = self.trace {
            fs = fs.record(t);
        }
        let mount = sft::mount::spawn(fs, dir, self.source).with_context(|| {
            format!(
                "the kernel refused the FUSE mount on {} (it needs /dev/fuse, and root or fusermount3)",
                Safe(&dir.display().to_string())
            )
        })?;
        if let Some(line) = &self.announce {
            let mut s = said
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.0 = true;
            eprintln!("{line}");
            if s.1 {
                eprintln!("sft mount: FB1 resident");
            }
        }
        Ok(Mounted {
            mount,
            pkg,
            _temp: temp,
        })
    }
}

impl Mounted {
    /// Whether the file system stopped serving (an outside unmount).
    pub(crate) fn is_finished(&self) -> bool {
        self.mount.is_finished()
    }

    /// Unmount (or, after an outside unmount, collect how it ended), stop
    /// the stream, and say what moved.
    pub(crate) fn finish(self, dir: &Path) -> anyhow::Result<sft::io::drive::DriveReport> {
        let Mounted {
            mount, pkg, _temp, ..
        } = self;
        if mount.is_finished() {
            // Unmounted from outside, or the session failed: Ok only for
            // the first.
            mount
                .join()
                .with_context(|| format!("the mount on {} failed", dir.display()))?;
        } else {
            mount
                .unmount()
                .with_context(|| format!("cannot unmount {}", dir.display()))?;
        }
        // The file system held the other reference; it is gone with the
        // session.
        let pkg = Arc::try_unwrap(pkg)
            .map_err(|_| anyhow::anyhow!("the package is still in use after the unmount"))?;
        match pkg.close() {
            Ok(r) => Ok(r),
            // Demands the stream could not serve were EIO to their
            // readers; the mount itself ended.
            Err(e) => Err(anyhow::Error::new(e).context("the stream under the mount failed")),
        }
    }
}

/// "moved 1234567 bytes (1.2 MiB) in 7 requests, 2 on demand (65536
/// bytes)": exact figures for scripts, with the short form.
pub(crate) fn moved(r: &sft::io::drive::DriveReport) -> String {
    format!(
        "moved {} bytes ({}) in {} requests, {} on demand ({} bytes)",
        r.bytes,
        short(r.bytes),
        r.requests,
        r.demand_requests,
        r.demand_bytes
    )
}

/// The cache name of a source: its file name if it names a `.sft`.
pub(crate) fn cache_name(source: &str) -> &str {
    source
        .rsplit(['/', '\\'])
        .next()
        .filter(|n| n.ends_with(".sft"))
        .unwrap_or("package.sft")
}

/// Write a recorded trace atomically.
pub(crate) fn write_trace(trace: &Trace, path: &Path) -> anyhow::Result<()> {
    let text = trace.to_launch_list();
    // A name the launch-list grammar cannot carry (a leading `#` or
    // space) would drop out of FB1 unseen: refuse instead.
    let items = trace.items();
    let read = sft::write::parse_launch_list(&text).unwrap_or_default();
    if let Some(i) = (0..items.len()).find(|&i| read.get(i) != items.get(i)) {
        anyhow::bail!(
            "cannot write the trace `{}`: `{}` cannot be written in a launch list",
            Safe(&path.display().to_string()),
            Safe(&items[i].path)
        );
    }
    sft::io::atomic::write(path, text.as_bytes())
        .with_context(|| format!("cannot write the trace `{}`", path.display()))?;
    eprintln!(
        "sft: wrote the launch trace `{}`: {} items, {}",
        Safe(&path.display().to_string()),
        trace.items().len(),
        short(trace.bytes())
    );
    Ok(())
}

/// Mount, serve until SIGINT/SIGTERM or an outside unmount, unmount.
pub(crate) fn run(a: &MountArgs) -> anyhow::Result<()> {
    let resolved = super::fetch::resolve_source(&a.source, &a.descriptor)?;
    let source = resolved.as_deref().unwrap_or(&a.source);
    let shown = sft::redact_url(source);
    let dir = &a.mountpoint;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("registering the unmount signal handlers")?;
    }
    let trace = a.record_trace.as_ref().map(|_| Arc::new(Trace::new()));
    let mounted = MountPlan {
        source,
        mountpoint: dir,
        // `<name>.partial` in --cache-dir: where `sft fetch SOURCE -o
        // <name> --cache-dir DIR` keeps its cache, so either resumes the
        // other.
        cache: a
            .cache_dir
            .as_deref()
            .map(|d| CachePaths::for_output(Path::new(cache_name(source)), Some(d))),
        session: a
            .remote
            .session()
            .launch_only(a.background == Background::None)
            .background_rate(a.background_rate),
        sources: a.remote.options(),
        trace: trace.clone(),
        announce: Some(format!(
            "sft mount: `{}` mounted on {}",
            Safe(&shown),
            Safe(&dir.display().to_string())
        )),
    }
    .mount()?;
    while !stop.load(Ordering::Relaxed) && !mounted.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let outside = mounted.is_finished();
    let report = mounted.finish(dir)?;
    if outside {
        eprintln!(
            "sft mount: {} was unmounted",
            Safe(&dir.display().to_string())
        );
    } else {
        eprintln!("sft mount: unmounted {}", Safe(&dir.display().to_string()));
    }
    eprintln!("sft mount: {}", moved(&report));
    if let (Some(t), Some(path)) = (&trace, &a.record_trace) {
        write_trace(t, path)?;
    }
    Ok(())
}

/// `fusermount3 -u DIR` (or `umount DIR` without it).
pub(crate) fn unmount(a: &UnmountArgs) -> anyhow::Result<()> {
    sft::mount::unmount(&a.mountpoint, false)?;
    Ok(())
}

/// Run `cmd` (its first word the program) in `dir` with `SFT_MOUNT=dir`;
/// its exit status.
pub(crate) fn run_in(
    cmd: &[std::ffi::OsString],
    dir: &Path,
) -> anyhow::Result<std::process::ExitStatus> {
    run_with(cmd, dir, dir, &[])
}

/// Run `cmd` in `cwd` with `SFT_MOUNT=mount` and `env`; its exit status.
pub(crate) fn run_with(
    cmd: &[std::ffi::OsString],
    cwd: &Path,
    mount: &Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> anyhow::Result<std::process::ExitStatus> {
    let dir = cwd;
    let (program, args) = cmd
        .split_first()
        .ok_or_else(|| crate::util::UsageError("a command to run is needed after --".into()))?;
    std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("SFT_MOUNT", mount)
        .envs(env.iter().copied())
        .status()
        .with_context(|| {
            format!(
                "cannot run `{}` from {}",
                Safe(&program.to_string_lossy()),
                Safe(&dir.display().to_string())
            )
        })
}

/// `sft trace DIR -o FILE -- CMD…`: pack DIR (stored, no FB1) into a
/// temporary package, mount it with a trace, run CMD from the mount,
/// unmount, write the trace; no trace unless CMD succeeds.
pub(crate) fn trace(a: &crate::args::TraceArgs) -> anyhow::Result<()> {
    let work = tempfile::Builder::new()
        .prefix(".sft-trace-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let package = work.path().join("trace.sft");
    let mut b = sft::write::PackageBuilder::new(
        sft::WriteOptions::default().compression(sft::write::Compression::None),
    );
    let tree = a.dir.display().to_string();
    b.add_tree(&a.dir)
        .with_context(|| format!("cannot pack `{tree}`"))?;
    b.write_to_path(&package)
        .with_context(|| format!("cannot pack `{tree}`"))?;
    let mountpoint = work.path().join("mnt");
    std::fs::create_dir(&mountpoint).context("cannot create the mount point")?;
    let trace = Arc::new(Trace::new());
    let source = package.to_string_lossy().into_owned();
    let mounted = MountPlan {
        source: &source,
        mountpoint: &mountpoint,
        cache: Some(CachePaths::for_output(&work.path().join("cache.sft"), None)),
        session: SessionConfig::default().launch_only(true),
        sources: sft::fetch::SourceOptions::default(),
        trace: Some(Arc::clone(&trace)),
        announce: None,
    }
    .mount()?;
    let status = run_in(&a.command, &mountpoint);
    mounted.finish(&mountpoint)?;
    let status = status?;
    if !status.success() {
        anyhow::bail!(
            "`{}` {status} when run from the mount; no trace written",
            Safe(&a.command[0].to_string_lossy())
        );
    }
    write_trace(&trace, &a.output)
}
