//! Publishing servers (App-V's `SFTMIME ADD SERVER` / `REFRESH SERVER`):
//! a Management Server the store refreshes its packages from.
//!
//! The servers are kept in `servers.json` beside the records, under the
//! same lock; a server's bearer token is in `servers/NAME.token`,
//! readable by its owner only, never in a record and never printed.
//!
//! A refresh ([`Store::refresh_server`], with the `http` feature) reads
//! the user's [`PublishingAnswer`] and every new or upgraded package's
//! publishing bundle first; only when all of that arrived and checked
//! does it add, upgrade and remove packages, exactly as the answer says.
//! A server that is down, refuses, or sends a bad answer or bundle
//! changes nothing.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::install::InstallOptions;
use super::lock::{self, Mode};
use super::records;
use super::store::Store;
use crate::error::{Error, StoreProblem};
use crate::publish::{PublishingAnswer, RefreshPolicy};

const SERVERS: &str = "servers.json";
const SERVERS_LOCK: &str = "servers.lock";
const TOKENS: &str = "servers";
/// Largest refresh answer and bundle read from a server.
pub const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// A publishing server the store refreshes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// Its name in the store (`SERVER:name`).
    pub name: String,
    /// Its base URL (`https://apps.example.com`); the refresh is
    /// `URL/publishing`.
    pub url: String,
    /// The user it logs in as, if one was given.
    #[serde(default)]
    pub user: Option<String>,
    /// Refresh at login (App-V's `/REFRESH ON`).
    pub refresh_on_login: bool,
    /// When the last refresh succeeded (ms since the epoch; 0: never).
    #[serde(default)]
    pub last_refresh_ms: u64,
    /// The last answer's `ETag` (an unchanged refresh is a 304).
    #[serde(default)]
    pub etag: Option<String>,
    /// The policy of the last answer.
    #[serde(default)]
    pub reporting: bool,
    /// From the last answer: a cached package may launch while the
    /// server cannot be reached only when this is false.
    #[serde(default = "yes")]
    pub require_authorization_if_cached: bool,
    /// The last answer's refresh period in minutes (0: none).
    #[serde(default)]
    pub refresh_minutes: u32,
    /// The packages this server published: (name in the store, GUID,
    /// version GUID).
    #[serde(default)]
    pub packages: Vec<(String, String, String)>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ServerFile {
    #[serde(default)]
    servers: Vec<ServerRecord>,
}

/// What a refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// The answer was unchanged (304): nothing was done.
    pub unchanged: bool,
    /// Packages added and published.
    pub added: Vec<String>,
    /// Packages moved to a new version (used at their next launch).
    pub upgraded: Vec<String>,
    /// Packages removed (no longer entitled).
    pub removed: Vec<String>,
    /// Packages that could not be removed yet (in use): tried again at
    /// the next refresh.
    pub kept: Vec<String>,
}

impl Store {
    fn servers_path(&self) -> PathBuf {
        self.dir().join(SERVERS)
    }

    fn token_path(&self, name: &str) -> PathBuf {
        self.dir().join(TOKENS).join(format!("{name}.token"))
    }

    fn read_servers(&self) -> Result<ServerFile, Error> {
        match fs::read(self.servers_path()) {
            Ok(b) if b.len() as u64 <= records::MAX_RECORDS_BYTES => serde_json::from_slice(&b)
                .map_err(|e| {
                    Error::store(
                        StoreProblem::Damaged,
                        format!("`{}`: {e}", self.servers_path().display()),
                    )
                }),
            Ok(_) => Err(Error::store(
                StoreProblem::Damaged,
                format!("`{}` is too large", self.servers_path().display()),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ServerFile::default()),
            Err(e) => Err(Error::io(
                format!("reading `{}`", self.servers_path().display()),
                e,
            )),
        }
    }

    fn update_servers<T>(
        &self,
        f: impl FnOnce(&mut Vec<ServerRecord>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _l = lock::lock(&self.dir().join(SERVERS_LOCK), Mode::Exclusive)?;
        let mut s = self.read_servers()?;
        let before = s.servers.clone();
        let out = f(&mut s.servers)?;
        if s.servers != before {
            let json = serde_json::to_vec_pretty(&s)
                .map_err(|e| Error::invalid(format!("encoding the server records: {e}")))?;
            records::write_atomic(&self.servers_path(), &json, true)?;
        }
        Ok(out)
    }

    /// The publishing servers, in the order they were added.
    ///
    /// # Errors
    /// A damaged `servers.json`.
    pub fn servers(&self) -> Result<Vec<ServerRecord>, Error> {
        let _l = lock::lock(&self.dir().join(SERVERS_LOCK), Mode::Shared)?;
        Ok(self.read_servers()?.servers)
    }

    /// `SFTMIME ADD SERVER`: record a publishing server (or change the
    /// URL, user and login refresh of one of that name).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name or a URL that is not
    /// `http://` or `https://`.
    pub fn add_server(
        &self,
        name: &str,
        url: &str,
        user: Option<&str>,
        refresh_on_login: bool,
    ) -> Result<(), Error> {
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !name.starts_with('.');
        if !ok_name {
            return Err(Error::invalid(format!(
                "server name `{}`: use 1 to 64 letters, digits, `-`, `_` or `.`",
                name.escape_debug()
            )));
        }
        let url = url.trim().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(['?', '#'])
        {
            return Err(Error::invalid(format!(
                "server URL `{}`: give http://HOST[:PORT][/PATH] or https://…",
                crate::redact_url(url)
            )));
        }
        if url
            .split("://")
            .nth(1)
            .is_some_and(|r| r.split('/').next().is_some_and(|a| a.contains('@')))
        {
            return Err(Error::invalid(
                "give the server's credentials with --user and --password-stdin, not in the URL",
            ));
        }
        self.update_servers(|s| {
            match s.iter_mut().find(|r| r.name == name) {
                Some(r) => {
                    r.url = url.to_owned();
                    r.user = user.map(str::to_owned);
                    r.refresh_on_login = refresh_on_login;
                    r.etag = None;
                }
                None => s.push(ServerRecord {
                    name: name.to_owned(),
                    url: url.to_owned(),
                    user: user.map(str::to_owned),
                    refresh_on_login,
                    last_refresh_ms: 0,
                    etag: None,
                    reporting: false,
                    require_authorization_if_cached: true,
                    refresh_minutes: 0,
                    packages: Vec::new(),
                }),
            }
            Ok(())
        })
    }

    /// Keep `token` as server `name`'s bearer token (owner-only file).
    ///
    /// # Errors
    /// An unknown server; I/O.
    pub fn set_server_token(&self, name: &str, token: &str) -> Result<(), Error> {
        self.server(name)?;
        let dir = self.dir().join(TOKENS);
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating `{}`", dir.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        }
        records::write_atomic(&self.token_path(name), token.as_bytes(), true)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(self.token_path(name), fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("protecting the token file", e))?;
        }
        Ok(())
    }

    /// Server `name`'s bearer token, if it has one.
    pub fn server_token(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.token_path(name))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// One server.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown server.
    pub fn server(&self, name: &str) -> Result<ServerRecord, Error> {
        self.servers()?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                Error::NotFound(format!("no publishing server `{}`", name.escape_debug()))
            })
    }

    /// `SFTMIME DELETE SERVER`: forget a server and its token. The
    /// packages it published stay (delete them with `delete-package`).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown server.
    pub fn delete_server(&self, name: &str) -> Result<(), Error> {
        self.update_servers(|s| {
            let before = s.len();
            s.retain(|r| r.name != name);
            if s.len() == before {
                return Err(Error::NotFound(format!(
                    "no publishing server `{}`",
                    name.escape_debug()
                )));
            }
            Ok(())
        })?;
        let _ = fs::remove_file(self.token_path(name));
        Ok(())
    }

    /// Apply a refresh answer from server `name`: install every package
    /// whose bundle is in `bundles` (new ones, and new versions of ones
    /// this server published), remove this server's packages the answer
    /// no longer lists, record the answer's policy and `etag`. Removal of
    /// a package in use is left for the next refresh.
    ///
    /// # Errors
    /// As [`Store::install_bundle`]; a package in the answer whose bundle
    /// is missing from `bundles`.
    pub fn apply_refresh(
        &self,
        name: &str,
        answer: &PublishingAnswer,
        bundles: &[(String, PathBuf)],
        etag: Option<&str>,
    ) -> Result<RefreshReport, Error> {
        let server = self.server(name)?;
        let mut report = RefreshReport::default();
        let mut now_published = Vec::new();
        // Conflicts with the store are found before anything changes.
        let records = self.records()?;
        for p in &answer.packages {
            let had = server
                .packages
                .iter()
                .find(|(_, g, _)| g.eq_ignore_ascii_case(&p.package_id));
            let local = had.map_or(p.name.as_str(), |(n, _, _)| n.as_str());
            super::store::check_name(local)?;
            if let Some(rec) = records.find(local)
                && !rec
                    .guid
                    .eq_ignore_ascii_case(p.package_id.trim_matches(['{', '}']))
            {
                return Err(Error::store(
                    StoreProblem::Exists,
                    format!(
                        "server `{name}` publishes `{local}`, but the store has another package of that name ({}); nothing changed",
                        rec.guid
                    ),
                ));
            }
            if had.is_none()
                && let Some(rec) = records.find(p.package_id.trim_matches(['{', '}']))
                && rec.name != local
            {
                return Err(Error::store(
                    StoreProblem::Exists,
                    format!(
                        "server `{name}` publishes package {} as `{local}`, but the store has it as `{}`; nothing changed",
                        p.package_id, rec.name
                    ),
                ));
            }
        }
        for p in &answer.packages {
            let had = server
                .packages
                .iter()
                .find(|(_, g, _)| g.eq_ignore_ascii_case(&p.package_id));
            let current = had.is_some_and(|(n, _, v)| {
                v.eq_ignore_ascii_case(&p.version_id)
                    && self.records().is_ok_and(|r| r.find(n).is_some())
            });
            if current {
                if let Some(h) = had {
                    now_published.push(h.clone());
                }
                continue;
            }
            let bundle = bundles
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, b)| b)
                .ok_or_else(|| Error::invalid(format!("no publishing bundle for `{}`", p.name)))?;
            let local = had
                .map(|(n, _, _)| n.clone())
                .unwrap_or_else(|| p.name.clone());
            let (installed, _) = self.install_bundle(
                bundle,
                &InstallOptions {
                    name: Some(local),
                    ..InstallOptions::default()
                },
                None,
            )?;
            if had.is_some() {
                report.upgraded.push(installed.clone());
            } else {
                report.added.push(installed.clone());
            }
            let entry = (installed, p.package_id.clone(), p.version_id.clone());
            // Recorded at once: a later failure leaves this one known as
            // the server's (removed when the server stops listing it).
            self.update_servers(|s| {
                if let Some(r) = s.iter_mut().find(|r| r.name == name) {
                    r.packages
                        .retain(|(_, g, _)| !g.eq_ignore_ascii_case(&entry.1));
                    r.packages.push(entry.clone());
                }
                Ok(())
            })?;
            now_published.push(entry);
        }
        for (n, g, v) in &server.packages {
            if answer
                .packages
                .iter()
                .any(|p| p.package_id.eq_ignore_ascii_case(g))
            {
                continue;
            }
            match self.delete_package(n) {
                Ok(()) => report.removed.push(n.clone()),
                Err(e)
                    if matches!(
                        e.store_problem(),
                        Some(StoreProblem::InUse | StoreProblem::Locked)
                    ) =>
                {
                    report.kept.push(n.clone());
                    now_published.push((n.clone(), g.clone(), v.clone()));
                }
                Err(e) if e.kind() == crate::ErrorKind::NotFound => report.removed.push(n.clone()),
                Err(e) => return Err(e),
            }
        }
        let policy: &RefreshPolicy = &answer.policy;
        self.update_servers(|s| {
            if let Some(r) = s.iter_mut().find(|r| r.name == name) {
                r.packages = now_published;
                r.etag = etag.map(str::to_owned);
                r.reporting = policy.reporting;
                r.require_authorization_if_cached = policy.require_authorization_if_cached;
                r.refresh_minutes = policy.period_minutes;
                r.last_refresh_ms = super::store::now_ms();
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// The server that published package `package` (by store name), if
    /// any.
    pub fn server_of(&self, package: &str) -> Option<ServerRecord> {
        self.servers()
            .ok()?
            .into_iter()
            .find(|s| s.packages.iter().any(|(n, _, _)| n == package))
    }
}

#[cfg(feature = "http")]
mod net {
    use super::*;
    use crate::net::http::{HttpOptions, exchange};

    fn status_error(what: &str, url: &str, status: u16, body: &[u8]) -> Error {
        let text: String = String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
            .trim()
            .to_owned();
        Error::Transport(crate::stream::TransportError::new(
            match status {
                401 | 403 | 429 => crate::stream::TransportErrorKind::Authentication,
                404 => crate::stream::TransportErrorKind::NotFound,
                _ => crate::stream::TransportErrorKind::Protocol,
            },
            format!("{what} {}: HTTP {status}: {text}", crate::redact_url(url)),
        ))
    }

    /// Log in to a Management Server at `url` as `user`: a bearer token
    /// (`POST URL/token` with HTTP Basic).
    ///
    /// # Errors
    /// [`Error::Transport`] if the server is down or refuses the login
    /// (its reason in the message; never the password).
    pub fn login(
        url: &str,
        user: &str,
        password: &str,
        options: &HttpOptions,
    ) -> Result<String, Error> {
        if url.trim().to_ascii_lowercase().starts_with("http://") && !is_loopback_url(url) {
            return Err(Error::invalid(format!(
                "refusing to send a password to {} over plain HTTP: use https://",
                crate::redact_url(url)
            )));
        }
        let o = options.clone().basic_auth(user, password);
        let target = format!("{}/token", url.trim_end_matches('/'));
        let r = exchange("POST", &target, &o, &[], Some(b""), 64 << 10)?;
        if r.status != 200 {
            return Err(status_error("logging in to", &target, r.status, &r.body));
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| {
            Error::invalid(format!(
                "the token answer of {}: {e}",
                crate::redact_url(&target)
            ))
        })?;
        v.get("token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty() && t.len() < 4096 && t.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "the token answer of {} has no token",
                    crate::redact_url(&target)
                ))
            })
    }

    impl Store {
        /// HTTP options carrying server `name`'s token.
        ///
        /// # Errors
        /// An unknown server, or one without a token (run `add-server`
        /// with a user).
        pub fn server_options(
            &self,
            name: &str,
            options: &HttpOptions,
        ) -> Result<HttpOptions, Error> {
            let token = self.server_token(name).ok_or_else(|| {
                Error::store(
                    StoreProblem::State,
                    format!("server `{name}` has no login; add it again with --user and --password-stdin"),
                )
            })?;
            Ok(options.clone().bearer_token(token))
        }

        /// `SFTMIME REFRESH SERVER`: a publishing refresh from server
        /// `name` (see the module docs): nothing changes unless the
        /// answer and every bundle it needs arrived and checked.
        ///
        /// # Errors
        /// [`Error::Transport`] if the server is down or refuses;
        /// [`Error::InvalidInput`] for a bad answer; [`Error::Bundle`] for
        /// a bad bundle; as [`Store::apply_refresh`].
        pub fn refresh_server(
            &self,
            name: &str,
            options: &HttpOptions,
        ) -> Result<RefreshReport, Error> {
            let server = self.server(name)?;
            let o = self.server_options(name, options)?;
            let url = format!("{}/publishing", server.url);
            let mut headers = vec![("AppV-Op", "Refresh")];
            // A 304 only helps if every package it lists is still here.
            let intact = server
                .packages
                .iter()
                .all(|(n, _, _)| self.records().is_ok_and(|r| r.find(n).is_some()));
            if let Some(e) = server.etag.as_deref().filter(|_| intact) {
                headers.push(("If-None-Match", e));
            }
            let r = exchange("GET", &url, &o, &headers, None, MAX_ANSWER_BYTES)?;
            if r.status == 304 {
                return Ok(RefreshReport {
                    unchanged: true,
                    ..RefreshReport::default()
                });
            }
            if r.status != 200 {
                return Err(status_error("refreshing from", &url, r.status, &r.body));
            }
            let answer = PublishingAnswer::parse(&r.body).map_err(|e| {
                Error::invalid(format!("the answer of {}: {e}", crate::redact_url(&url)))
            })?;
            // Every bundle needed, downloaded and checked, before any change.
            let tmp =
                tempfile::tempdir().map_err(|e| Error::io("creating a temporary folder", e))?;
            let mut bundles = Vec::new();
            for (i, p) in answer.packages.iter().enumerate() {
                let current = server.packages.iter().any(|(n, g, v)| {
                    g.eq_ignore_ascii_case(&p.package_id)
                        && v.eq_ignore_ascii_case(&p.version_id)
                        && self.records().is_ok_and(|r| r.find(n).is_some())
                });
                if current {
                    continue;
                }
                if !super::same_origin(&server.url, &p.publishing_url) {
                    return Err(Error::invalid(format!(
                        "the answer of {} sends package `{}`'s descriptors to another server; refused",
                        crate::redact_url(&url),
                        p.name
                    )));
                }
                let b = exchange("GET", &p.publishing_url, &o, &[], None, MAX_ANSWER_BYTES)?;
                if b.status != 200 {
                    return Err(status_error(
                        "fetching",
                        &p.publishing_url,
                        b.status,
                        &b.body,
                    ));
                }
                let path = tmp.path().join(format!("{i}.sftb"));
                fs::write(&path, &b.body)
                    .map_err(|e| Error::io(format!("writing `{}`", path.display()), e))?;
                crate::bundle::Bundle::open(&path)?;
                bundles.push((p.name.clone(), path));
            }
            self.apply_refresh(name, &answer, &bundles, r.etag.as_deref())
        }
    }

    /// A launch the publishing server authorised (or, offline, the
    /// policy allowed).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Launch {
        /// The server's name in the store.
        pub server: String,
        /// The package.
        pub package: String,
        /// The licence lease, if the server gave one.
        pub lease: Option<String>,
        /// When the lease ends unless renewed (ms since the epoch).
        pub expires_ms: i64,
        /// When the launch began (ms since the epoch).
        pub launched_ms: i64,
        /// The server could not be reached and the policy allows cached
        /// launches.
        pub offline: bool,
    }

    fn query_encode(s: &str) -> String {
        crate::publish::percent_encode(s, b"-._~")
    }

    fn host_name() -> String {
        fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    }

    fn lease_of(body: &[u8]) -> Option<(String, i64)> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let id = v.get("lease")?.as_str()?.to_owned();
        let exp = v.get("expires_ms")?.as_i64()?;
        (id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some((id, exp))
    }

    impl Store {
        /// Ask the server that published `package` for a licence to
        /// launch it. `None` for a package no server published. A server
        /// that cannot be reached allows the launch only if its last
        /// policy allows cached launches and the package can launch from
        /// the cache.
        ///
        /// # Errors
        /// [`Error::Transport`] with the server's reason when it refuses
        /// (no licence free, not entitled), or when it cannot be reached
        /// and the policy requires its authorisation.
        pub fn begin_launch(
            &self,
            package: &str,
            options: &HttpOptions,
        ) -> Result<Option<Launch>, Error> {
            let Some(server) = self.server_of(package) else {
                return Ok(None);
            };
            let o = self.server_options(&server.name, options)?;
            let url = format!(
                "{}/licence/acquire?package={}&client={}",
                server.url,
                query_encode(package),
                query_encode(&host_name())
            );
            let now = i64::try_from(super::super::store::now_ms()).unwrap_or(i64::MAX);
            match exchange("POST", &url, &o, &[], Some(b""), 64 << 10) {
                Ok(r) if r.status == 200 => {
                    let (lease, expires_ms) = lease_of(&r.body).ok_or_else(|| {
                        Error::invalid(format!("the lease answer of {}", crate::redact_url(&url)))
                    })?;
                    Ok(Some(Launch {
                        server: server.name,
                        package: package.to_owned(),
                        lease: Some(lease),
                        expires_ms,
                        launched_ms: now,
                        offline: false,
                    }))
                }
                Ok(r) => Err(status_error("launch refused by", &url, r.status, &r.body)),
                Err(e) => {
                    let cached = self.cache_state(package).is_ok_and(|c| c.launch_ready());
                    if !server.require_authorization_if_cached && cached {
                        Ok(Some(Launch {
                            server: server.name,
                            package: package.to_owned(),
                            lease: None,
                            expires_ms: 0,
                            launched_ms: now,
                            offline: true,
                        }))
                    } else {
                        Err(Error::Transport(crate::stream::TransportError::new(
                            crate::stream::TransportErrorKind::ConnectionLost,
                            format!(
                                "publishing server `{}` cannot authorise the launch ({e}), and its policy requires authorisation for cached packages",
                                server.name
                            ),
                        )))
                    }
                }
            }
        }

        /// Keep `launch`'s lease alive.
        ///
        /// # Errors
        /// The server refused or cannot be reached.
        pub fn renew_launch(
            &self,
            launch: &mut Launch,
            options: &HttpOptions,
        ) -> Result<(), Error> {
            let Some(lease) = &launch.lease else {
                return Ok(());
            };
            let server = self.server(&launch.server)?;
            let o = self.server_options(&server.name, options)?;
            let url = format!("{}/licence/renew?lease={lease}", server.url);
            let r = exchange("POST", &url, &o, &[], Some(b""), 64 << 10)?;
            if r.status != 200 {
                return Err(status_error(
                    "renewing a lease with",
                    &url,
                    r.status,
                    &r.body,
                ));
            }
            if let Some((_, exp)) = lease_of(&r.body) {
                launch.expires_ms = exp;
            }
            Ok(())
        }

        /// The launch ended: give the lease back and, if the server asks
        /// for reports, send the run's usage.
        ///
        /// # Errors
        /// The server refused or cannot be reached (the licence then comes
        /// back when its lease expires).
        pub fn end_launch(&self, launch: &Launch, options: &HttpOptions) -> Result<(), Error> {
            let server = self.server(&launch.server)?;
            let o = self.server_options(&server.name, options)?;
            if let Some(lease) = &launch.lease {
                let url = format!("{}/licence/release?lease={lease}", server.url);
                let r = exchange("POST", &url, &o, &[], Some(b""), 64 << 10)?;
                if r.status != 204 && r.status != 200 {
                    return Err(status_error(
                        "releasing a lease with",
                        &url,
                        r.status,
                        &r.body,
                    ));
                }
            }
            if server.reporting {
                let rec = self.records()?.find(&launch.package).cloned();
                let state = self.cache_state(&launch.package).ok();
                let pct = state
                    .as_ref()
                    .and_then(|c| {
                        c.total
                            .filter(|t| *t > 0)
                            .map(|t| (c.cached.min(t) * 100 / t) as u8)
                    })
                    .unwrap_or(0);
                let (version, vguid, guid) = rec
                    .as_ref()
                    .map(|r| {
                        (
                            r.version.clone().unwrap_or_default(),
                            r.version_guid.clone().unwrap_or_default(),
                            r.guid.clone(),
                        )
                    })
                    .unwrap_or_default();
                let app = rec
                    .as_ref()
                    .and_then(|r| r.apps.first().map(|a| a.name.clone()))
                    .unwrap_or_else(|| launch.package.clone());
                let report = crate::publish::UsageReport {
                    client_version: env!("CARGO_PKG_VERSION").to_owned(),
                    host: host_name(),
                    cache_size: 0,
                    cache_used: state.as_ref().map_or(0, |c| c.cached),
                    packages: vec![crate::publish::ReportedPackage {
                        name: launch.package.clone(),
                        guid,
                        version: version.clone(),
                        version_guid: vguid,
                        source: server.url.clone(),
                        pct_cached: pct,
                    }],
                    apps: vec![crate::publish::AppRecord {
                        name: app,
                        version,
                        server: server.name.clone(),
                        user: self.user().to_owned(),
                        launched_ms: launch.launched_ms,
                        shutdown_ms: Some(
                            i64::try_from(super::super::store::now_ms()).unwrap_or(i64::MAX),
                        ),
                    }],
                };
                let url = format!("{}/report", server.url);
                let r = exchange(
                    "POST",
                    &url,
                    &o,
                    &[("AppV-Op", "Report"), ("Content-Type", "text/xml")],
                    Some(report.to_xml().as_bytes()),
                    64 << 10,
                )?;
                if r.status != 204 && r.status != 200 {
                    return Err(status_error("reporting to", &url, r.status, &r.body));
                }
            }
            Ok(())
        }
    }
}

/// Whether `url` is on the same scheme, host and port as `base`.
pub(crate) fn same_origin(base: &str, url: &str) -> bool {
    let origin = |u: &str| {
        let (scheme, rest) = u.split_once("://")?;
        let host = rest.split(['/', '?', '#']).next()?;
        Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
    };
    origin(base).is_some() && origin(base) == origin(url)
}

/// Whether `url`'s host is this machine (`localhost`, 127.0.0.0/8, ::1).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `url` is an `rtsp://` or `rtsps://` URL on `base`'s host (a
/// Management Server's streaming listener, on its own port).
pub(crate) fn same_host_rtsp(base: &str, url: &str) -> bool {
    let host = |u: &str| {
        let (scheme, rest) = u.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        if authority.contains('@') {
            return None;
        }
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next()?,
            None => authority.split(':').next()?,
        };
        Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
    };
    match (host(base), host(url)) {
        (Some((_, a)), Some((s, b))) => (s == "rtsp" || s == "rtsps") && a == b,
        _ => false,
    }
}

#[cfg(feature = "http")]
pub use net::{Launch, login};

impl Store {
    /// `base` with the bearer token of the publishing server `source` is
    /// on (the same scheme, host and port; or an `rtsp(s)://` URL on its
    /// host), if the store has one; `base` otherwise. Loads and mounts use
    /// it, so a package a Management Server published streams with that
    /// server's login.
    pub fn source_options_for(
        &self,
        source: &str,
        base: crate::fetch::SourceOptions,
    ) -> crate::fetch::SourceOptions {
        let server = self.servers().ok().and_then(|s| {
            s.into_iter()
                .find(|r| same_origin(&r.url, source) || same_host_rtsp(&r.url, source))
        });
        let Some(token) = server.and_then(|r| self.server_token(&r.name)) else {
            return base;
        };
        #[cfg(feature = "http")]
        let base = {
            let http = base.http_options().clone().bearer_token(&token);
            base.http(http)
        };
        #[cfg(feature = "rtsp")]
        let base = {
            let rtsp = base.rtsp_options().clone().bearer_token(&token);
            base.rtsp(rtsp)
        };
        let _ = token;
        base
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins() {
        use super::{same_host_rtsp, same_origin};
        assert!(same_host_rtsp("http://a:8080", "rtsp://A:554/x.sft"));
        assert!(!same_host_rtsp("http://a:8080", "http://a:81/x.sft"));
        assert!(!same_host_rtsp("http://a", "rtsp://b/x.sft"));
        assert!(super::is_loopback_url("http://127.0.0.1:8080/x"));
        assert!(super::is_loopback_url("http://[::1]/"));
        assert!(!super::is_loopback_url("http://apps.example.com/"));
        assert!(!super::is_loopback_url("http://127.0.0.1@evil/"));
        assert!(same_origin("http://a:1/x", "http://A:1/packages/p"));
        assert!(!same_origin("http://a:1", "http://a:2/p"));
        assert!(!same_origin("http://a", "https://a/p"));
        assert!(!same_origin("http://a", "http://a@evil/p"));
    }

    #[cfg(feature = "http")]
    #[test]
    fn passwords_never_go_over_plain_http_to_another_machine() {
        let e = super::login(
            "http://apps.example.com",
            "u",
            "secret-pw",
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("over plain HTTP"), "{e}");
        assert!(!e.to_string().contains("secret-pw"));
    }

    #[test]
    fn token_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let s = super::Store::open(dir.path()).unwrap();
        s.add_server("hq", "http://127.0.0.1:1/", None, true)
            .unwrap();
        assert!(s.add_server("bad/name", "http://x", None, true).is_err());
        assert!(s.add_server("x", "ftp://x", None, true).is_err());
        assert!(s.add_server("x", "http://u:p@x", None, true).is_err());
        s.set_server_token("hq", "sft_abc").unwrap();
        assert_eq!(s.server_token("hq").as_deref(), Some("sft_abc"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("servers/hq.token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
        let json = std::fs::read_to_string(dir.path().join("servers.json")).unwrap();
        assert!(!json.contains("sft_abc"));
        assert_eq!(s.server("hq").unwrap().url, "http://127.0.0.1:1");
        s.delete_server("hq").unwrap();
        assert_eq!(s.server_token("hq"), None);
        assert!(s.servers().unwrap().is_empty());
    }
}
