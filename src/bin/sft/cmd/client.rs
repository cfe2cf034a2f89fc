//! `sft client`: the client package store, with verbs modelled on App-V's
//! SFTMIME (see docs/CLIENT.md).

#[allow(unused_imports)]
use crate::args::*;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use sft::client::{AutoLoad, AutoLoadTarget, LoadOptions, LoadReport, PackageOptions, Store};
use sft::redact_url;
use sft::stream::Event;

use crate::escape::Safe;
use crate::util::{UsageError, name_once, progress_bar, short};

fn open_store(args: &ClientArgs) -> anyhow::Result<Store> {
    let dir = match &args.store {
        Some(d) => d.clone(),
        None => Store::default_dir().ok_or_else(|| {
            UsageError("no store folder: pass --store DIR or set SFT_CLIENT_STORE".into())
        })?,
    };
    Store::open(&dir).with_context(|| format!("cannot open the client store `{}`", dir.display()))
}

fn package_options(f: &PackageFlags) -> PackageOptions {
    let autoload = f.autoload.as_ref().map(|v| {
        v.iter()
            .filter_map(|a| match a {
                AutoLoadArg::Never => None,
                AutoLoadArg::Launch => Some(AutoLoad::Launch),
                AutoLoadArg::Refresh => Some(AutoLoad::Refresh),
                AutoLoadArg::Login => Some(AutoLoad::Login),
            })
            .collect()
    });
    PackageOptions {
        override_url: f.override_url.clone(),
        global: f.global,
        autoload,
        autoload_target: f.autoload_target.map(|t| match t {
            TargetArg::None => AutoLoadTarget::None,
            TargetArg::Used => AutoLoadTarget::Used,
            TargetArg::All => AutoLoadTarget::All,
        }),
    }
}

fn check_autoload(f: &PackageFlags) -> anyhow::Result<()> {
    if let Some(v) = &f.autoload
        && v.contains(&AutoLoadArg::Never)
        && v.len() > 1
    {
        return Err(
            UsageError("--autoload never cannot be combined with other triggers".into()).into(),
        );
    }
    Ok(())
}

/// Load options with a progress display: a bar on a terminal, else a
/// line per 10 %.
pub(crate) fn load_options(
    name: &str,
    flags: &LoadFlags,
    sft_path: Option<String>,
    launch_only: bool,
) -> LoadOptions {
    let bar = Arc::new(Mutex::new(None));
    let tty = std::io::stderr().is_terminal();
    let label = name.to_owned();
    let mut last_step = None;
    LoadOptions {
        sft_path,
        launch_only,
        // The sources carry --limit-rate.
        limit_rate: 0,
        retry_for: flags.source.retry_for,
        sources: flags.source.options(),
        on_event: Some(Box::new(move |e: &Event| {
            if let Some(line) = crate::util::warning_for(e) {
                eprintln!("{line}");
            }
            if let Event::Progress(p) = e {
                if tty {
                    let Ok(mut slot) = bar.lock() else { return };
                    let b = slot.get_or_insert_with(|| progress_bar(p.total_bytes, "loading"));
                    if let Some(b) = b {
                        b.set_length(p.total_bytes);
                        b.set_position(p.bytes);
                    }
                } else if let Some(step) =
                    (p.bytes.min(p.total_bytes).saturating_mul(10)).checked_div(p.total_bytes)
                    && last_step.is_none_or(|l| step > l)
                {
                    last_step = Some(step);
                    eprintln!(
                        "loading {label}: {}% ({} of {} bytes)",
                        step * 10,
                        p.bytes,
                        p.total_bytes
                    );
                }
            } else if matches!(e, Event::Complete | Event::Failed(_))
                && let Ok(mut slot) = bar.lock()
                && let Some(Some(b)) = slot.take()
            {
                b.finish_and_clear();
            }
        })),
    }
}

pub(crate) fn print_load(name: &str, r: &LoadReport) -> std::io::Result<()> {
    for e in &r.evicted {
        out!("unloaded {} to make room", Safe(e))?;
    }
    match &r.fetch {
        None => out!(
            "{}: already cached ({}%), source {}",
            Safe(name),
            r.state.percent(),
            Safe(&redact_url(&r.source))
        ),
        Some(f) => out!(
            "loaded {}: fetched {} bytes ({} blocks), resumed {} blocks ({} bytes), reused {} blocks ({} bytes) of an earlier version, {}% cached, from {}",
            Safe(name),
            f.bytes_transferred,
            f.blocks_fetched,
            f.blocks_resumed,
            f.bytes_resumed,
            f.blocks_reused,
            f.bytes_reused,
            r.state.percent(),
            Safe(&redact_url(&r.source))
        ),
    }
}

pub(crate) fn run(args: &ClientArgs) -> anyhow::Result<()> {
    let store = open_store(args)?;
    match &args.command {
        ClientCommand::AddPackage {
            name,
            manifest,
            flags,
        } => {
            check_autoload(flags)?;
            let o = store
                .add_package(name, manifest, &package_options(flags))
                .map_err(|e| name_once(e, name, || format!("cannot add package `{name}`")))?;
            out!(
                "{} package {name}",
                match o {
                    sft::client::AddOutcome::Added => "added",
                    sft::client::AddOutcome::Updated => "updated",
                }
            )?;
        }
        ClientCommand::ConfigurePackage {
            name,
            manifest,
            flags,
        } => {
            check_autoload(flags)?;
            store
                .configure_package(name, manifest.as_deref(), &package_options(flags))
                .map_err(|e| name_once(e, name, || format!("cannot configure package `{name}`")))?;
            out!("configured package {name}")?;
        }
        ClientCommand::PublishPackage {
            name,
            manifest,
            global,
        } => {
            store
                .publish_package(name, manifest, *global)
                .map_err(|e| name_once(e, name, || format!("cannot publish package `{name}`")))?;
            out!(
                "published package {name} for {}",
                if *global {
                    "all users".to_owned()
                } else {
                    store.user().to_owned()
                }
            )?;
        }
        ClientCommand::UnpublishPackage { name, global } => {
            let was = store
                .unpublish_package(name, *global)
                .map_err(|e| name_once(e, name, || format!("cannot unpublish package `{name}`")))?;
            let whom = if *global {
                "all users".to_owned()
            } else {
                store.user().to_owned()
            };
            if was {
                out!("unpublished package {name} for {whom}")?;
            } else {
                out!("package {name} was not published for {whom}")?;
            }
        }
        ClientCommand::LoadPackage {
            name,
            sft_path,
            launch_only,
            dry_run,
            load,
        } => {
            let sft_path = sft_path.as_ref().map(|p| absolute_if_path(p));
            if *dry_run {
                let p = store
                    .plan_load(name, load_options(name, load, sft_path, false))
                    .map_err(|e| name_once(e, name, || format!("cannot plan loading `{name}`")))?;
                out!(
                    "{}: {} blocks; cached {} ({} bytes); from an earlier version {} ({} bytes); to fetch {} blocks: {} bytes with the prologue",
                    Safe(name),
                    p.total_blocks,
                    p.resumed_blocks,
                    p.resumed_bytes,
                    p.reused_blocks,
                    p.reused_bytes,
                    p.fetch_blocks,
                    p.transfer_bytes
                )?;
                return Ok(());
            }
            let r = store
                .load_package(name, load_options(name, load, sft_path, *launch_only))
                .map_err(|e| name_once(e, name, || format!("cannot load package `{name}`")))?;
            print_load(name, &r)?;
        }
        ClientCommand::UnloadPackage { name } => {
            report(name, "unload", "unloaded", store.unload_package(name))?;
        }
        ClientCommand::DeletePackage { name } => {
            report(name, "delete", "deleted", store.delete_package(name))?;
        }
        ClientCommand::Lock { name } => {
            report(name, "lock", "locked", store.lock_package(name))?;
        }
        ClientCommand::Unlock { name } => {
            report(name, "unlock", "unlocked", store.unlock_package(name))?;
        }
        ClientCommand::Query { what, json } => query(&store, *what, *json)?,
        ClientCommand::ConfigureStore {
            cache_limit,
            app_source_root,
            trusted_key,
            no_trusted_keys,
        } => {
            if !trusted_key.is_empty() || *no_trusted_keys {
                let keys = trusted_key
                    .iter()
                    .map(sft::sign::TrustedKey::from_file)
                    .collect::<Result<Vec<_>, _>>()?;
                store
                    .set_trusted_keys(&keys)
                    .context("cannot configure the store")?;
            }
            let limit = match cache_limit.as_deref() {
                None => None,
                Some(s) if s.eq_ignore_ascii_case("none") => Some(None),
                Some(s) => Some(Some(crate::units::parse_size(s).map_err(UsageError)?)),
            };
            let asr = match app_source_root.as_deref() {
                None => None,
                Some(s) if s.eq_ignore_ascii_case("none") || s.trim().is_empty() => Some(None),
                Some(s) => Some(Some(s.to_owned())),
            };
            let s = store
                .configure_store(limit, asr)
                .context("cannot configure the store")?;
            out!(
                "cache limit: {}",
                s.cache_limit
                    .map_or("none".to_owned(), |l| format!("{} ({l} bytes)", short(l)))
            )?;
            out!(
                "application source root: {}",
                Safe(&redact_url(
                    s.application_source_root.as_deref().unwrap_or("none")
                ))
            )?;
            let ids: Vec<String> = s
                .trusted_keys
                .iter()
                .filter_map(|k| sft::sign::TrustedKey::from_text(k).ok())
                .map(|k| k.id())
                .collect();
            out!(
                "trusted keys: {}",
                if ids.is_empty() {
                    "none (signatures not required)".to_owned()
                } else {
                    ids.join(", ")
                }
            )?;
        }
        ClientCommand::Run {
            name,
            load,
            cwd,
            no_mount,
            command,
        } => {
            #[cfg(feature = "mount")]
            if !no_mount {
                return super::client_mount::run(&store, name, load, cwd.as_deref(), command);
            }
            let _ = (cwd, no_mount);
            return run_command(&store, name, load, command);
        }
        #[cfg(feature = "mount")]
        ClientCommand::Mount {
            name,
            dir,
            background,
            load,
        } => return super::client_mount::mount(&store, name, dir, *background, load),
        #[cfg(feature = "mount")]
        ClientCommand::Unmount { dir } => {
            sft::mount::unmount(dir, false)?;
        }
        ClientCommand::AddServer {
            name,
            url,
            user,
            password_stdin,
            refresh_on_login,
            ca_file,
        } => {
            store.add_server(name, url, user.as_deref(), refresh_on_login == "on")?;
            if let (Some(u), true) = (user, password_stdin) {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                let pw = line.trim_end_matches(['\n', '\r']);
                let token = sft::client::login(url, u, pw, &http_options(ca_file.as_deref()))
                    .with_context(|| {
                        format!("cannot log in to `{}` as `{}`", redact_url(url), Safe(u))
                    })?;
                store.set_server_token(name, &token)?;
                out!(
                    "added server {} ({}), logged in as {}",
                    Safe(name),
                    Safe(&redact_url(url)),
                    Safe(u)
                )?;
            } else {
                out!("added server {} ({})", Safe(name), Safe(&redact_url(url)))?;
            }
        }
        ClientCommand::RefreshServer { name, ca_file } => {
            let r = store
                .refresh_server(name, &http_options(ca_file.as_deref()))
                .with_context(|| {
                    format!(
                        "refresh from server `{}` failed; nothing changed",
                        Safe(name)
                    )
                })?;
            if r.unchanged {
                out!("refreshed {}: unchanged", Safe(name))?;
            } else {
                let list = |v: &[String]| {
                    if v.is_empty() {
                        "-".to_owned()
                    } else {
                        v.iter()
                            .map(|n| Safe(n).to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                };
                out!(
                    "refreshed {}: added {}; upgraded {}; removed {}",
                    Safe(name),
                    list(&r.added),
                    list(&r.upgraded),
                    list(&r.removed)
                )?;
                if !r.kept.is_empty() {
                    eprintln!(
                        "sft: warning: still in use, removed at a later refresh: {}",
                        list(&r.kept)
                    );
                }
            }
        }
        ClientCommand::DeleteServer { name } => {
            store.delete_server(name)?;
            out!("deleted server {}", Safe(name))?;
        }
        ClientCommand::Install {
            bundle,
            properties,
            override_url,
            load,
            no_load,
            global,
            name,
            keep_rollback,
            rollback,
            commit,
            flags,
        } => {
            if *rollback || *commit {
                if !properties.is_empty() {
                    return Err(UsageError(
                        "--rollback and --commit take no PROPERTY=VALUE".into(),
                    )
                    .into());
                }
                let shown = Safe(&bundle.display().to_string());
                if *rollback {
                    match store
                        .rollback_install(bundle)
                        .with_context(|| format!("cannot roll back `{}`", bundle.display()))?
                    {
                        Some(g) => out!(
                            "rolled back the install of {shown}: package {g} is as it was before"
                        )?,
                        None => out!("nothing to roll back for {shown}")?,
                    }
                } else if store
                    .commit_install(bundle)
                    .with_context(|| format!("cannot commit `{}`", bundle.display()))?
                {
                    out!("committed the install of {shown}")?;
                } else {
                    out!("nothing to commit for {shown}")?;
                }
                return Ok(());
            }
            let mut opts = sft::client::InstallOptions {
                name: name.clone(),
                override_url: override_url.clone(),
                global: *global,
                load: if *load {
                    Some(true)
                } else if *no_load {
                    Some(false)
                } else {
                    None
                },
                keep_rollback: *keep_rollback,
                ..Default::default()
            };
            for p in properties {
                let Some((k, v)) = p.split_once('=') else {
                    return Err(UsageError(format!(
                        "`{}` is not PROPERTY=VALUE (MODE, OVERRIDEURL, LOAD)",
                        Safe(p)
                    ))
                    .into());
                };
                let twice = |flag: &str| UsageError(format!("{k} and {flag} both given; use one"));
                match k.trim().to_ascii_uppercase().as_str() {
                    "MODE" => {
                        opts.mode = if v.trim().is_empty() {
                            None
                        } else {
                            Some(
                                sft::bundle::msi::Mode::parse(v)
                                    .map_err(|e| UsageError(e.to_string()))?,
                            )
                        };
                    }
                    "OVERRIDEURL" => {
                        if override_url.is_some() {
                            return Err(twice("--override-url").into());
                        }
                        // Empty: no OverrideURL, whatever the MSI says.
                        opts.override_url = Some(v.to_owned());
                    }
                    "LOAD" => {
                        if *load || *no_load {
                            return Err(twice("--load/--no-load").into());
                        }
                        opts.load = Some(
                            sft::bundle::msi::parse_load(v)
                                .map_err(|e| UsageError(e.to_string()))?,
                        );
                    }
                    _ => {
                        return Err(UsageError(format!(
                            "unknown property `{}`: sft client install takes MODE, OVERRIDEURL and LOAD",
                            Safe(k)
                        ))
                        .into());
                    }
                }
            }
            let label = name.clone().unwrap_or_else(|| "package".into());
            let lo = load_options(&label, flags, None, false);
            let (name, report) = store
                .install_bundle(bundle, &opts, Some(lo))
                .with_context(|| format!("cannot install `{}`", bundle.display()))?;
            out!(
                "installed package {} from {}",
                Safe(&name),
                Safe(&bundle.display().to_string())
            )?;
            if let Some(r) = report {
                print_load(&name, &r)?;
            } else if let Ok(s) = store.cache_state(&name)
                && s.complete
            {
                out!("{}: 100% cached (stand-alone)", Safe(&name))?;
            }
        }
    }
    Ok(())
}

/// A relative local path made absolute (App-V asks for full paths);
/// URLs as they are.
fn absolute_if_path(p: &str) -> String {
    if p.contains("://") {
        return p.to_owned();
    }
    std::path::absolute(Path::new(p))
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|_| p.to_owned())
}

/// Prints the outcome of a one-package action: `DONE package NAME`, or
/// the error in context (`cannot VERB package `NAME``).
fn report(name: &str, verb: &str, done: &str, r: sft::Result<()>) -> anyhow::Result<()> {
    r.map_err(|e| name_once(e, name, || format!("cannot {verb} package `{name}`")))?;
    out!("{done} package {name}")?;
    Ok(())
}

/// `value` as pretty JSON and a newline.
fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}",
        crate::escape::json(&serde_json::to_value(value)?)?
    )?;
    Ok(())
}

/// HTTP options for a publishing server's requests.
fn http_options(ca_file: Option<&Path>) -> sft::net::http::HttpOptions {
    let o = sft::net::http::HttpOptions::default();
    match ca_file {
        Some(c) => o.ca_file(c),
        None => o,
    }
}

fn query(store: &Store, what: QueryWhat, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match what {
        QueryWhat::Packages => {
            let list = store.query_packages()?;
            if json {
                return write_json(&mut out, &list);
            }
            writeln!(
                out,
                "GUID\tNAME\tVERSION\tSOURCE\tTOTALSIZE\tCACHEDSIZE\tCACHED%\tLAUNCHSIZE\tCACHEDLAUNCHSIZE\tLOCKED\tINUSE\tPUBLISHED"
            )?;
            let opt = |v: Option<u64>| v.map_or("-".to_owned(), |n| n.to_string());
            for p in list {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    Safe(&p.guid),
                    Safe(&p.name),
                    Safe(p.version.as_deref().unwrap_or("-")),
                    Safe(p.source.as_deref().unwrap_or("-")),
                    opt(p.total_size),
                    p.cached_size,
                    p.cached_percent,
                    opt(p.launch_size),
                    p.cached_launch_size,
                    u8::from(p.locked),
                    u8::from(p.in_use),
                    u8::from(p.published),
                )?;
            }
        }
        QueryWhat::Servers => {
            let list = store.servers()?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "url": redact_url(&s.url), "user": s.user,
                            "refresh_on_login": s.refresh_on_login, "last_refresh_ms": s.last_refresh_ms,
                            "logged_in": store.server_token(&s.name).is_some(),
                            "reporting": s.reporting, "refresh_minutes": s.refresh_minutes,
                            "require_authorization_if_cached": s.require_authorization_if_cached,
                            "packages": s.packages.iter().map(|(n, _, _)| n).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                return write_json(&mut out, &v);
            }
            writeln!(out, "NAME\tURL\tUSER\tREFRESHONLOGIN\tLOGGEDIN\tPACKAGES")?;
            for s in list {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    Safe(&s.name),
                    Safe(&redact_url(&s.url)),
                    Safe(s.user.as_deref().unwrap_or("-")),
                    u8::from(s.refresh_on_login),
                    u8::from(store.server_token(&s.name).is_some()),
                    s.packages.len()
                )?;
            }
        }
        QueryWhat::Apps => {
            let list = store.query_apps()?;
            if json {
                return write_json(&mut out, &list);
            }
            writeln!(
                out,
                "NAME\tVERSION\tPACKAGE\tPACKAGEGUID\tLAUNCHREADY\tPUBLISHED"
            )?;
            for a in list {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    Safe(&a.name),
                    Safe(a.version.as_deref().unwrap_or("-")),
                    Safe(&a.package),
                    Safe(&a.package_guid),
                    u8::from(a.launch_ready),
                    u8::from(a.published),
                )?;
            }
        }
    }
    Ok(())
}

/// Load FB1 into the store unless it is there (App-V: an application
/// starts once FB1 is resident).
pub(crate) fn ensure_fb1(store: &Store, name: &str, flags: &LoadFlags) -> anyhow::Result<()> {
    if store.cache_state(name)?.launch_ready() {
        return Ok(());
    }
    let r = store
        .load_package(name, load_options(name, flags, None, true))
        .map_err(|e| {
            name_once(e, name, || {
                format!("cannot load package `{name}` for launch")
            })
        })?;
    print_load(name, &r).map_err(Into::into)
}

/// Whether the package's `launch` autoload trigger asks for the rest of it
/// after a launch.
pub(crate) fn loads_on_launch(store: &Store, name: &str) -> anyhow::Result<bool> {
    let rec = store
        .records()?
        .find(name)
        .cloned()
        .with_context(|| format!("package `{name}` was deleted"))?;
    Ok(rec.autoload.contains(&AutoLoad::Launch) && rec.autoload_target != AutoLoadTarget::None)
}

/// `sft client run NAME -- CMD…`: hold the package in use, make sure it
/// can launch, run CMD (with `SFT_CLIENT_PACKAGE` naming the package
/// file), and with the `launch` autoload trigger load the rest meanwhile.
pub(crate) fn run_command(
    store: &Store,
    name: &str,
    flags: &LoadFlags,
    command: &[String],
) -> anyhow::Result<()> {
    let guard = store
        .use_package(name)
        .map_err(|e| name_once(e, name, || format!("cannot use package `{name}`")))?;
    ensure_fb1(store, name, flags)?;
    let launch = begin_launch(store, name, flags)?;
    let background =
        (loads_on_launch(store, name)? && !store.cache_state(name)?.complete).then(|| {
            let store = store.clone();
            let name = name.to_owned();
            std::thread::spawn(move || {
                let o = LoadOptions::default();
                // Never wait for the load lock while holding the package
                // in use: a mount's server may be waiting for us to let go.
                match store.try_load_package(&name, o) {
                    Ok(_) => {}
                    Err(e) => eprintln!("sft: warning: background load of `{name}`: {e}"),
                }
            })
        });
    let (cmd, rest) = command
        .split_first()
        .ok_or_else(|| UsageError("no command after --".into()))?;
    let status = std::process::Command::new(cmd)
        .args(rest)
        .env("SFT_CLIENT_PACKAGE", guard.sft_path())
        .status()
        .with_context(|| format!("cannot run `{cmd}`"))?;
    launch.end();
    if let Some(t) = background {
        let _ = t.join();
    }
    drop(guard);
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// A launch a publishing server authorised: its lease is renewed while
/// CMD runs, released (and the run reported) at [`LaunchGuard::end`].
pub(crate) struct LaunchGuard {
    stop: Option<std::sync::mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<sft::client::Launch>>,
    store: Store,
    options: sft::net::http::HttpOptions,
}

/// Ask the package's publishing server, if a server published it, for a
/// licence to launch it (App-V's launch authorisation). Refused: an error
/// naming the server's reason.
pub(crate) fn begin_launch(
    store: &Store,
    name: &str,
    flags: &LoadFlags,
) -> anyhow::Result<LaunchGuard> {
    let options = flags.source.options().http_options().clone();
    let launch = store
        .begin_launch(name, &options)
        .with_context(|| format!("cannot launch `{}`", Safe(name)))?;
    if let Some(l) = &launch
        && l.offline
    {
        eprintln!(
            "sft client: server `{}` cannot be reached; launching the cached package (its policy allows it)",
            Safe(&l.server)
        );
    }
    let (stop, renewer) = match launch {
        Some(mut l) => {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let s = store.clone();
            let o = options.clone();
            let t = std::thread::spawn(move || {
                loop {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64);
                    let wait = ((l.expires_ms - now) / 2).clamp(1000, 3_600_000) as u64;
                    match rx.recv_timeout(std::time::Duration::from_millis(wait)) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) if l.lease.is_some() => {
                            if let Err(e) = s.renew_launch(&mut l, &o) {
                                eprintln!(
                                    "sft: warning: renewing the licence lease: {}",
                                    crate::escape::safe(&e.to_string())
                                );
                                let now = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0, |d| d.as_millis() as i64);
                                if now >= l.expires_ms {
                                    // It has expired: nothing left to keep.
                                    l.lease = None;
                                }
                            }
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
                l
            });
            (Some(tx), Some(t))
        }
        None => (None, None),
    };
    Ok(LaunchGuard {
        stop,
        renewer,
        store: store.clone(),
        options,
    })
}

impl Drop for LaunchGuard {
    /// Dropped without `end` (an early error): stop renewing; the lease
    /// then ends by itself at its expiry.
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}

impl LaunchGuard {
    /// CMD ended: release the lease and report the run (a warning at
    /// worst; the lease also ends by itself).
    pub(crate) fn end(mut self) {
        drop(self.stop.take());
        if let Some(t) = self.renewer.take()
            && let Ok(l) = t.join()
            && let Err(e) = self.store.end_launch(&l, &self.options)
        {
            eprintln!(
                "sft: warning: telling server `{}` the launch ended: {}",
                Safe(&l.server),
                crate::escape::safe(&e.to_string())
            );
        }
    }
}
