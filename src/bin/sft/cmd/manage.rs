//! `sft manage …`: the Management Server and its administration, on one
//! store (`--db sqlite:PATH` or `postgres://…`). See `docs/MANAGE.md`.
//!
//! `sft manage serve` prints `listening on http://ADDR` (and
//! `https://ADDR`) with the ports actually bound, then serves until
//! SIGINT or SIGTERM.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use sft::manage::{ImportOptions, LicenceKind, ManageServer, Manager, ServerOptions};
use sft::serve::http::{AccessLog, Server, ServerConfig, tls_config_from_pem};

use crate::args::{
    GroupCommand, LicenceCommand, ManageArgs, ManageCommand, ManageServeArgs, PackageCommand,
    PolicyCommand, ReportCommand, UserCommand,
};
use crate::escape::safe;
use crate::util::UsageError;

pub(crate) fn run(a: &ManageArgs) -> anyhow::Result<()> {
    let url = match (&a.db, &a.content) {
        (Some(u), _) => u.clone(),
        (None, Some(c)) => Manager::default_db_url(c),
        (None, None) => {
            return Err(UsageError(
                "sft manage: give --db sqlite:PATH|postgres://… (or --content DIR for a SQLite file beside it)"
                    .into(),
            )
            .into());
        }
    };
    let shown = sft::redact_url(&url);
    let needs_content = matches!(
        a.command,
        ManageCommand::Serve(_) | ManageCommand::Package(PackageCommand::Import { .. })
    );
    let m = match (&a.content, needs_content) {
        (Some(c), _) => Manager::open(&url, c),
        (None, false) => Manager::open_db(&url),
        (None, true) => {
            return Err(UsageError("sft manage: this needs --content DIR".into()).into());
        }
    }
    .with_context(|| format!("opening the management store `{shown}`"))?;
    match &a.command {
        ManageCommand::Serve(s) => serve(Arc::new(m), s),
        ManageCommand::User(c) => user(&m, c),
        ManageCommand::Group(c) => group(&m, c),
        ManageCommand::Package(c) => package(&m, c),
        ManageCommand::Grant { group, package } => {
            m.grant(group, package)?;
            out!("granted {} to group {}", safe(package), safe(group))?;
            Ok(())
        }
        ManageCommand::Revoke { group, package } => {
            m.revoke(group, package)?;
            out!("revoked {} from group {}", safe(package), safe(group))?;
            Ok(())
        }
        ManageCommand::Licence(c) => licence(&m, c),
        ManageCommand::Policy(c) => policy(&m, c),
        ManageCommand::Report(c) => report(&m, c),
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let p = line.strip_suffix('\n').unwrap_or(&line);
    let p = p.strip_suffix('\r').unwrap_or(p);
    if p.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(p.to_owned())
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    out!("{}", crate::escape::json(v)?)?;
    Ok(())
}

fn user(m: &Manager, c: &UserCommand) -> anyhow::Result<()> {
    match c {
        UserCommand::Add { name, admin, .. } => {
            m.add_user(name, &read_password()?, *admin)?;
            out!(
                "added user {}{}",
                safe(name),
                if *admin { " (administrator)" } else { "" }
            )?;
        }
        UserCommand::Passwd { name, .. } => {
            m.set_password(name, &read_password()?)?;
            out!("password of {} set; its tokens ended", safe(name))?;
        }
        UserCommand::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading `{}`", file.display()))?
            };
            let mut users = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let line = line.trim_end_matches('\r');
                if line.trim().is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, hash) = line.rsplit_once(':').ok_or_else(|| {
                    anyhow::anyhow!("`{}` line {}: expected NAME:HASH", file.display(), i + 1)
                })?;
                users.push((name.to_owned(), hash.to_owned()));
            }
            let n = m.import_users(&users)?;
            out!("imported {n} users")?;
        }
        UserCommand::Hash { .. } => {
            out!("{}", sft::manage::password_hash(&read_password()?)?)?;
        }
        UserCommand::Delete { name } => {
            m.delete_user(name)?;
            out!("deleted user {}", safe(name))?;
        }
        UserCommand::List { json } => {
            let users = m.users()?;
            if *json {
                let v: Vec<_> = users
                    .iter()
                    .map(|u| serde_json::json!({ "name": u.name, "admin": u.admin, "groups": u.groups }))
                    .collect();
                return print_json(&serde_json::Value::Array(v));
            }
            for u in users {
                out!(
                    "{}{}\t{}",
                    safe(&u.name),
                    if u.admin { " (admin)" } else { "" },
                    safe(&u.groups.join(", "))
                )?;
            }
        }
    }
    Ok(())
}

fn group(m: &Manager, c: &GroupCommand) -> anyhow::Result<()> {
    match c {
        GroupCommand::Add { group } => {
            m.add_group(group)?;
            out!("added group {}", safe(group))?;
        }
        GroupCommand::Delete { group } => {
            m.delete_group(group)?;
            out!("deleted group {}", safe(group))?;
        }
        GroupCommand::AddMember { group, user } => {
            m.add_member(group, user)?;
            out!("{} is in group {}", safe(user), safe(group))?;
        }
        GroupCommand::RemoveMember { group, user } => {
            m.remove_member(group, user)?;
            out!("{} left group {}", safe(user), safe(group))?;
        }
        GroupCommand::List { json } => {
            let groups = m.groups()?;
            if *json {
                let v: Vec<_> = groups
                    .iter()
                    .map(|g| serde_json::json!({ "name": g.name, "members": g.members, "packages": g.packages }))
                    .collect();
                return print_json(&serde_json::Value::Array(v));
            }
            for g in groups {
                out!(
                    "{}\tmembers: {}\tpackages: {}",
                    safe(&g.name),
                    safe(&g.members.join(", ")),
                    safe(&g.packages.join(", "))
                )?;
            }
        }
    }
    Ok(())
}

fn package(m: &Manager, c: &PackageCommand) -> anyhow::Result<()> {
    match c {
        PackageCommand::Import {
            manifest,
            sft,
            name,
        } => {
            let p = m
                .import_package(
                    manifest,
                    &ImportOptions {
                        name: name.clone(),
                        sft: sft.clone(),
                    },
                )
                .with_context(|| format!("importing `{}`", manifest.display()))?;
            out!(
                "imported {} version {} ({}), {} bytes, apps: {}",
                safe(&p.name),
                safe(&p.version),
                p.version_guid,
                p.size,
                safe(&p.apps.join(", "))
            )?;
        }
        PackageCommand::List { json } => {
            let packages = m.packages()?;
            if *json {
                let v: Vec<_> = packages
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "name": p.name, "guid": p.guid, "version_guid": p.version_guid,
                            "version": p.version, "sft_file": p.sft_file, "size": p.size,
                            "licence": p.licence.to_string(), "groups": p.groups, "apps": p.apps,
                        })
                    })
                    .collect();
                return print_json(&serde_json::Value::Array(v));
            }
            for p in packages {
                out!(
                    "{}\tversion {}\t{}\tlicence {}\tgroups: {}",
                    safe(&p.name),
                    safe(&p.version),
                    p.guid,
                    p.licence,
                    safe(&p.groups.join(", "))
                )?;
            }
        }
        PackageCommand::Delete { name } => {
            m.delete_package(name)?;
            out!("deleted package {}", safe(name))?;
        }
    }
    Ok(())
}

fn licence(m: &Manager, c: &LicenceCommand) -> anyhow::Result<()> {
    match c {
        LicenceCommand::Set {
            package,
            kind,
            count,
        } => {
            let k = match (kind.as_str(), count) {
                ("unlimited", None) => LicenceKind::Unlimited,
                ("named", None) => LicenceKind::Named,
                ("concurrent", Some(n)) => LicenceKind::Concurrent(*n),
                _ => {
                    return Err(UsageError(
                        "sft manage licence set PACKAGE unlimited|concurrent N|named".into(),
                    )
                    .into());
                }
            };
            m.set_licence(package, k)?;
            out!("licence of {}: {k}", safe(package))?;
        }
        LicenceCommand::Assign { package, user } => {
            m.assign_licence(package, user)?;
            out!("{} holds a named licence of {}", safe(user), safe(package))?;
        }
        LicenceCommand::Unassign { package, user } => {
            m.unassign_licence(package, user)?;
            out!(
                "{} no longer holds a named licence of {}",
                safe(user),
                safe(package)
            )?;
        }
    }
    Ok(())
}

fn policy(m: &Manager, c: &PolicyCommand) -> anyhow::Result<()> {
    match c {
        PolicyCommand::Show => {
            for (k, v) in m.settings()? {
                out!("{k} = {}", safe(&v))?;
            }
        }
        PolicyCommand::Set { key, value } => {
            m.set_setting(key, value)?;
            out!("{} = {}", safe(key), safe(value))?;
        }
    }
    Ok(())
}

/// Rows as JSON, CSV or tab-separated text.
fn table(
    json: bool,
    csv: bool,
    header: &[&str],
    rows: Vec<Vec<String>>,
    v: serde_json::Value,
) -> anyhow::Result<()> {
    if json {
        return print_json(&v);
    }
    if csv {
        out!("{}", header.join(","))?;
        for r in rows {
            let line: Vec<String> = r.iter().map(|f| sft::manage::csv_field(f)).collect();
            out!("{}", safe(&line.join(",")))?;
        }
        return Ok(());
    }
    out!("{}", header.join("\t"))?;
    for r in rows {
        out!("{}", safe(&r.join("\t")))?;
    }
    Ok(())
}

fn report(m: &Manager, c: &ReportCommand) -> anyhow::Result<()> {
    use sft::publish::rfc3339;
    match c {
        ReportCommand::Usage { json, csv } => {
            let rows = m.usage()?;
            let v = serde_json::to_value(&rows)?;
            let t = rows
                .iter()
                .map(|r| {
                    vec![
                        rfc3339(r.received_ms),
                        r.host.clone(),
                        r.user.clone(),
                        r.app.clone(),
                        r.app_version.clone(),
                        r.server.clone(),
                        rfc3339(r.launched_ms),
                        r.shutdown_ms.map(rfc3339).unwrap_or_default(),
                    ]
                })
                .collect();
            table(
                *json,
                *csv,
                &[
                    "received",
                    "host",
                    "user",
                    "app",
                    "app_version",
                    "server",
                    "launched",
                    "shutdown",
                ],
                t,
                v,
            )
        }
        ReportCommand::Utilisation { json, csv } => {
            let rows = m.utilisation()?;
            let v = serde_json::to_value(&rows)?;
            let t = rows
                .iter()
                .map(|r| {
                    vec![
                        r.app.clone(),
                        r.launches.to_string(),
                        r.users.to_string(),
                        r.seconds.to_string(),
                    ]
                })
                .collect();
            table(*json, *csv, &["app", "launches", "users", "seconds"], t, v)
        }
        ReportCommand::Audit { json, csv } => {
            let rows = m.software_audit()?;
            let v = serde_json::Value::Array(
                rows.iter()
                    .map(|(h, p, g, pct)| serde_json::json!({ "host": h, "package": p, "version_guid": g, "pct_cached": pct }))
                    .collect(),
            );
            let t = rows
                .into_iter()
                .map(|(h, p, g, pct)| vec![h, p, g, pct.to_string()])
                .collect();
            table(
                *json,
                *csv,
                &["host", "package", "version_guid", "pct_cached"],
                t,
                v,
            )
        }
        ReportCommand::Errors { json, csv } => {
            let rows = m.errors(10_000)?;
            let v = serde_json::to_value(&rows)?;
            let t = rows
                .iter()
                .map(|r| {
                    vec![
                        rfc3339(r.at_ms),
                        r.kind.clone(),
                        r.user.clone(),
                        r.detail.clone(),
                    ]
                })
                .collect();
            table(*json, *csv, &["at", "kind", "user", "detail"], t, v)
        }
    }
}

fn serve(m: Arc<Manager>, a: &ManageServeArgs) -> anyhow::Result<()> {
    if a.http.is_none() && a.https.is_none() {
        return Err(
            UsageError("sft manage serve: give --http ADDR and/or --https ADDR".into()).into(),
        );
    }
    let content = m
        .content_dir()
        .map(std::path::Path::to_path_buf)
        .context("no content folder")?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(tls_config_from_pem(c, k)?),
        _ => None,
    };
    if a.https.is_some() && tls.is_none() {
        return Err(
            UsageError("sft manage serve: --https needs --tls-cert and --tls-key".into()).into(),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("registering the shutdown signal handlers")?;
    }
    // The streaming listeners first: answers name their port. Their gate
    // is the handler, made once the ports are known.
    let gate: Arc<LateGate> = Arc::new(LateGate(std::sync::OnceLock::new()));
    let mut rtsp_handles = Vec::new();
    let mut lines = Vec::new();
    let mut content_at = None;
    for (addr, secure) in [(&a.rtsp, false), (&a.rtsps, true)] {
        let Some(addr) = addr else { continue };
        let mut config = sft::serve::rtsp::ServerConfig::new(&content)
            .max_connections(a.max_connections)
            .gate(Arc::clone(&gate) as Arc<dyn sft::serve::Gate>);
        if secure && let Some(t) = &tls {
            config = config.tls(Arc::clone(t));
        }
        let server = sft::serve::rtsp::Server::bind(addr.as_str(), config)
            .with_context(|| format!("sft manage serve on {addr}"))?;
        let scheme = if secure { "rtsps" } else { "rtsp" };
        lines.push(format!("listening on {scheme}://{}", server.local_addr()));
        if secure || content_at.is_none() {
            content_at = Some((scheme.to_owned(), server.local_addr().port()));
        }
        rtsp_handles.push(server.spawn()?);
    }
    if a.rtsps.is_some() && tls.is_none() {
        return Err(
            UsageError("sft manage serve: --rtsps needs --tls-cert and --tls-key".into()).into(),
        );
    }
    let handler = Arc::new(ManageServer::new(
        Arc::clone(&m),
        ServerOptions {
            public_url: a.public_url.clone(),
            insecure_basic: a.insecure_basic,
            rtsp: content_at,
            ..ServerOptions::default()
        },
    ));
    let _ = gate.0.set(Arc::clone(&handler));
    let log = if a.no_access_log {
        None
    } else {
        Some(match &a.access_log {
            Some(p) => AccessLog::file(p)?,
            None => AccessLog::stderr(),
        })
    };
    let mut handles = Vec::new();
    let mut http_lines = Vec::new();
    for (addr, secure) in [(&a.http, false), (&a.https, true)] {
        let Some(addr) = addr else { continue };
        let mut config = ServerConfig::new(&content)
            .max_connections(a.max_connections)
            .handler(Arc::clone(&handler) as Arc<dyn sft::serve::handler::Handler>);
        if secure && let Some(t) = &tls {
            config = config.tls(Arc::clone(t));
        }
        if let Some(l) = &log {
            config = config.access_log(l.clone());
        }
        let server = Server::bind(addr.as_str(), config)
            .with_context(|| format!("sft manage serve on {addr}"))?;
        http_lines.push(format!(
            "listening on {}://{}",
            if secure { "https" } else { "http" },
            server.local_addr()
        ));
        handles.push(server.spawn()?);
    }
    http_lines.extend(lines);
    let lines = http_lines;
    {
        let mut out = std::io::stdout().lock();
        for l in &lines {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
    }
    while !stop.load(Ordering::Relaxed)
        && !handles.iter().any(|h| h.is_finished())
        && !rtsp_handles.iter().any(|h| h.is_finished())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!("sft manage serve: shutting down");
    }
    for h in &rtsp_handles {
        h.shutdown_handle().shutdown();
    }
    for h in handles {
        h.shutdown()?;
    }
    for h in rtsp_handles {
        h.shutdown()?;
    }
    Ok(())
}

/// The streaming listeners' gate: the handler, once it exists (it needs
/// their ports); until then every request is refused (503).
struct LateGate(std::sync::OnceLock<Arc<ManageServer>>);

impl sft::serve::Gate for LateGate {
    fn check(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
        peer: std::net::SocketAddr,
        tls: bool,
    ) -> Result<(), u16> {
        match self.0.get() {
            Some(h) => h.check(path, authorization, peer, tls),
            None => Err(503),
        }
    }
}
