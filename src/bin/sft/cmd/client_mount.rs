//! `sft client run` on a mount and `sft client mount`: a store's package
//! mounted on its mount point under the store (or a folder given), FB1
//! resident before anything runs, the rest streamed into the store's
//! cache as it is read (feature `mount`).
//!
//! One process serves a package's mount: the one holding the package's
//! stream lease (`Store::lease_stream`: its load lock). A second `client
//! run` of the package while it is mounted runs its command on the same
//! mount; the serving process unmounts only once no command holds the
//! package in use.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use sft::client::{Store, StreamLease};

use super::client::{ensure_fb1, load_options, loads_on_launch, print_load};
use super::mount::{MountPlan, Mounted, moved, run_with};
use crate::args::{Background, LoadFlags};
use crate::escape::Safe;

/// Mount the leased package on `dir`.
fn mount_lease(
    store: &Store,
    lease: &StreamLease,
    dir: &Path,
    flags: &LoadFlags,
    background: bool,
) -> anyhow::Result<Mounted> {
    MountPlan {
        source: lease.source(),
        mountpoint: dir,
        // None when the store holds the package complete: streamed from
        // that file into a temporary cache as it is read.
        cache: lease.cache().cloned(),
        session: flags
            .source
            .session()
            .launch_only(!background || lease.cache().is_none()),
        sources: store.source_options_for(lease.source(), flags.source.options()),
        trace: None,
        announce: None,
    }
    .mount()
}

/// `sft client run NAME -- CMD…` on a mount.
pub(crate) fn run(
    store: &Store,
    name: &str,
    flags: &LoadFlags,
    cwd: Option<&Path>,
    command: &[String],
) -> anyhow::Result<()> {
    let command: Vec<std::ffi::OsString> = command.iter().map(Into::into).collect();
    ensure_fb1(store, name, flags)?;
    let launch = super::client::begin_launch(store, name, flags)?;
    let background = loads_on_launch(store, name)?;
    let run_cmd = |mp: &Path, sft_file: &Path| {
        run_with(
            &command,
            cwd.unwrap_or(mp),
            mp,
            &[("SFT_CLIENT_PACKAGE", sft_file.as_os_str())],
        )
    };
    let mut waited = false;
    let status = loop {
        if let Some(mut lease) = store.lease_stream(name)? {
            let mp = lease.mount_point().to_path_buf();
            let mounted = mount_lease(store, &lease, &mp, flags, background)?;
            let status = run_cmd(&mp, lease.sft_path());
            // Other commands may run from this mount: serve until they end.
            lease.wait_sole_user()?;
            let report = mounted.finish(&mp)?;
            eprintln!("sft client: {}", moved(&report));
            drop(lease);
            break status?;
        }
        // Another process serves the package's mount, or loads it.
        let held = store.use_package(name)?;
        let mp = store.mount_point(name)?;
        if sft::mount::is_mount_point(&mp) && std::fs::metadata(&mp).is_ok() {
            let status = run_cmd(&mp, held.sft_path());
            drop(held);
            break status?;
        }
        drop(held);
        if !waited {
            eprintln!(
                "sft client: waiting for another process's load of {}",
                Safe(name)
            );
            waited = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    launch.end();
    if background && !store.cache_state(name)?.complete {
        // The `launch` trigger loads the rest: what the mount did not
        // stream, and the finished file. A warning at worst: the exit
        // status is CMD's. Not while another process loads the package
        // or serves its mount (it may be a `client mount`).
        match store.try_load_package(name, load_options(name, flags, None, false)) {
            Ok(Some(r)) => print_load(name, &r)?,
            Ok(None) => {}
            Err(e) => eprintln!(
                "sft: warning: background load of `{}`: {}",
                Safe(name),
                crate::escape::safe(&e.to_string())
            ),
        }
    }
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// `sft client mount NAME DIR`: serve until SIGINT/SIGTERM or an outside
/// unmount.
pub(crate) fn mount(
    store: &Store,
    name: &str,
    dir: &Path,
    background: Background,
    flags: &LoadFlags,
) -> anyhow::Result<()> {
    ensure_fb1(store, name, flags)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("registering the unmount signal handlers")?;
    }
    let mut lease = store.lease_stream(name)?.with_context(|| {
        format!(
            "package `{name}` is being loaded or mounted by another process; try again when it ends"
        )
    })?;
    lease.mount_at(dir)?;
    let mounted = mount_lease(store, &lease, dir, flags, background == Background::All)?;
    eprintln!(
        "sft client: {} mounted on {}",
        Safe(name),
        Safe(&dir.display().to_string())
    );
    while !stop.load(Ordering::Relaxed) && !mounted.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    lease.wait_sole_user()?;
    let report = mounted.finish(dir)?;
    eprintln!(
        "sft client: unmounted {}; {}",
        Safe(&dir.display().to_string()),
        moved(&report)
    );
    Ok(())
}
