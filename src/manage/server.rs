//! The Management Server's HTTP front: a [`Handler`] on the crate's HTTP
//! server, which keeps its limits, TLS, keep-alive and access log. The
//! protocol is in `docs/MANAGE.md`; in short:
//!
//! | request | answer |
//! |---|---|
//! | `GET /publishing` | the user's packages ([`PublishingAnswer`]), `ETag`, 304 |
//! | `GET /desktopconfig` | App-V 4.x's `DESKTOPCONFIG`, `ETag`, 304 |
//! | `POST /report` (or any path with `AppV-Op: Report`) | usage report, 204 |
//! | `POST /token` | a bearer token for the user (JSON) |
//! | `POST /licence/acquire?package=P&client=C`, `/licence/renew?lease=L`, `/licence/release?lease=L` | leases (JSON); 409 when no licence is free |
//! | `GET /packages/NAME/publishing.sftb` | the package's manifest, OSDs and icons as a bundle |
//! | `GET /packages/NAME/PATH` | one OSD or icon |
//! | `GET /api/…`, `POST /api/…` | the admin API (administrators only) |
//! | `GET /healthz` | `ok` (no login), for load balancers |
//! | anything else | package content: `/FOLDER/VERSION.sft`, served by the file server once the user is entitled (404 otherwise) |

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::admin::text;
use super::auth::hex;
use super::db::Val;
use super::policy::{Credentials, Pipeline, User};
use super::{Manager, report::csv_field};
use crate::error::{Error, ManageProblem};
use crate::publish::{
    Limits, Manifest, PublishedPackage, PublishingAnswer, UsageReport, desktop_config,
};
use crate::serve::handler::{Handler, Request, Response, percent_decode_path};

/// How a [`ManageServer`] answers.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The URL clients reach this server at (`https://apps.example.com`),
    /// used in answers; `None`: from each request's `Host` and scheme.
    pub public_url: Option<String>,
    /// Accept HTTP Basic over plain HTTP from any address (default: only
    /// over TLS or from loopback, so passwords never cross a network in
    /// the clear).
    pub insecure_basic: bool,
    /// Lifetime of tokens from `POST /token`.
    pub token_ttl: Duration,
    /// Largest usage report taken.
    pub max_report: usize,
    /// Send clients to this streaming listener for content: the scheme
    /// (`rtsp` or `rtsps`) and port of `sft manage serve --rtsp`/`--rtsps`,
    /// on the host they reached this server at. `None`: content over
    /// HTTP(S) from this server.
    pub rtsp: Option<(String, u16)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            public_url: None,
            insecure_basic: false,
            token_ttl: Duration::from_secs(30 * 86_400),
            max_report: 1 << 20,
            rtsp: None,
        }
    }
}

/// A cached answer: the generation it was built at, its tag and body.
struct Answer {
    generation: i64,
    etag: String,
    body: Arc<Vec<u8>>,
}

/// The generation a content decision was made at, and the package's
/// name if the user is entitled to it.
type FolderDecision = (i64, Option<String>);

/// A cached answer's key: user id and name, form, base URL.
type AnswerKey = (i64, String, u8, String);

/// A cached bundle's key: (package name and version GUID, base URL).
type BundleKey = (String, String);

/// Most cached answers and logins (each cache is cleared when full).
const CACHE_MAX: usize = 50_000;
/// Most bytes of cached answers, and of cached bundles (each cache is
/// cleared when full): a flood of distinct `Host` headers cannot grow
/// the server's memory without bound.
const CACHE_BYTES: usize = 64 << 20;

/// The Management Server's request handler. Put it in front of the
/// content folder with
/// [`ServerConfig::handler`](crate::serve::http::ServerConfig::handler).
pub struct ManageServer {
    manager: Arc<Manager>,
    pipeline: Pipeline,
    options: ServerOptions,
    answers: Mutex<Sized<AnswerKey, Answer>>,
    bundles: Mutex<Sized<BundleKey, Arc<Vec<u8>>>>,
    /// Entitlement to a content folder: (user, folder) → (generation,
    /// the package's name if entitled).
    folders: Mutex<HashMap<(i64, String), FolderDecision>>,
    /// Verified `Authorization` values (by a keyed hash, never the value),
    /// with the user, the generation and when.
    logins: Mutex<HashMap<[u8; 32], (User, i64, std::time::Instant)>>,
    login_key: [u8; 32],
}

/// How long a verified `Authorization` value is trusted without asking
/// the pipeline again (while the store's generation is unchanged: a
/// password change, a revoked token or a deleted user end it at once).
const LOGIN_TTL: Duration = Duration::from_secs(300);

impl std::fmt::Debug for ManageServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManageServer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A map with a bound on its entries' bytes.
struct Sized<K, V> {
    map: HashMap<K, V>,
    bytes: usize,
}

impl<K, V> Default for Sized<K, V> {
    fn default() -> Self {
        Sized {
            map: HashMap::new(),
            bytes: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq, V> Sized<K, V> {
    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    /// Insert `v` of `len` bytes, first clearing the map if the bounds
    /// would be passed.
    fn insert(&mut self, k: K, v: V, len: usize) {
        if self.map.len() >= CACHE_MAX || self.bytes + len > CACHE_BYTES {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += len;
        self.map.insert(k, v);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a browser says `req` comes from another site: `Sec-Fetch-Site`
/// other than `same-origin` or `none`, or an `Origin` whose host is not
/// the request's `Host`. Clients that are not browsers send neither.
pub(crate) fn cross_site(req: &Request<'_>) -> bool {
    if let Some(site) = req.header_str("sec-fetch-site")
        && !site.eq_ignore_ascii_case("same-origin")
        && !site.eq_ignore_ascii_case("none")
    {
        return true;
    }
    match req.header_str("origin") {
        None => false,
        Some(origin) => {
            let host = req.header_str("host").unwrap_or_default();
            !origin
                .split_once("://")
                .is_some_and(|(_, h)| h.eq_ignore_ascii_case(host))
        }
    }
}

/// An error as an HTTP answer. Its text names what and why, never a
/// secret; database trouble is a bare 500 (the details go to the log).
fn error_response(e: &Error) -> Response {
    let status = match e.manage_problem() {
        Some(ManageProblem::Unauthenticated) => {
            if e.to_string().contains("too many") {
                return Response::text(429, format!("{e}\n")).header("Retry-After", "60");
            }
            return Response::text(401, format!("{e}\n"))
                .header("WWW-Authenticate", "Basic realm=\"sft\", charset=\"UTF-8\"");
        }
        Some(ManageProblem::Denied) => 403,
        Some(ManageProblem::NoLicence) => 409,
        Some(ManageProblem::Exists) => 409,
        Some(ManageProblem::Unknown) => 404,
        Some(ManageProblem::Database) => 500,
        _ => match e.kind() {
            crate::ErrorKind::InvalidInput => 400,
            crate::ErrorKind::NotFound => 404,
            _ => 500,
        },
    };
    if status == 500 {
        eprintln!("sft manage: {e}");
        return Response::text(500, "internal error; see the server's log\n");
    }
    Response::text(status, format!("{e}\n"))
}

fn json(status: u16, v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec_pretty(v) {
        Ok(b) => Response::new(status).body("application/json", b),
        Err(_) => Response::text(500, "internal error\n"),
    }
}

/// Percent-encode a path (each segment; `/` kept).
fn encode_path(p: &str) -> String {
    crate::publish::percent_encode(p, b"-._~/")
}

impl ManageServer {
    /// A handler for `manager` with the default [`Pipeline`].
    pub fn new(manager: Arc<Manager>, options: ServerOptions) -> ManageServer {
        ManageServer::with_pipeline(manager, Pipeline::default(), options)
    }

    /// A handler with its own provider policy.
    pub fn with_pipeline(
        manager: Arc<Manager>,
        pipeline: Pipeline,
        options: ServerOptions,
    ) -> ManageServer {
        ManageServer {
            manager,
            pipeline,
            options,
            answers: Mutex::new(Sized::default()),
            bundles: Mutex::new(Sized::default()),
            folders: Mutex::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
            login_key: {
                let mut k = [0u8; 32];
                argon2::password_hash::rand_core::RngCore::fill_bytes(
                    &mut argon2::password_hash::rand_core::OsRng,
                    &mut k,
                );
                k
            },
        }
    }

    /// The store this server answers from.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Its provider policy.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Where answers send clients for package content: the streaming
    /// listener ([`ServerOptions::rtsp`]) on the answer's host, or `base`.
    fn content_base(&self, base: &str) -> String {
        let Some((scheme, port)) = &self.options.rtsp else {
            return base.to_owned();
        };
        let authority = base.split_once("://").map_or(base, |(_, a)| a);
        let host = match authority.strip_prefix('[') {
            Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
            None => authority.split(':').next().unwrap_or_default().to_owned(),
        };
        format!("{scheme}://{host}:{port}")
    }

    /// The base URL for answers to `req`.
    fn base_url(&self, req: &Request<'_>) -> Result<String, Response> {
        if let Some(u) = &self.options.public_url {
            return Ok(u.trim_end_matches('/').to_owned());
        }
        let host = req.header_str("host").unwrap_or_default();
        let ok = !host.is_empty()
            && host.len() <= 255
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !ok {
            return Err(Response::text(400, "bad Host header\n"));
        }
        let scheme = if req.is_tls() { "https" } else { "http" };
        Ok(format!("{scheme}://{host}"))
    }

    fn user(&self, req: &Request<'_>) -> Result<User, Response> {
        let generation = self.manager.generation().map_err(|e| error_response(&e))?;
        self.user_at(req, generation)
    }

    /// The request's user, with the store at `generation`.
    fn user_at(&self, req: &Request<'_>, generation: i64) -> Result<User, Response> {
        self.login(
            req.header("authorization"),
            req.peer(),
            req.is_tls(),
            generation,
        )
    }

    /// The user an `Authorization` value proves, with the store at
    /// `generation` (a cached verdict, or the pipeline's).
    fn login(
        &self,
        value: Option<&[u8]>,
        peer_addr: std::net::SocketAddr,
        tls: bool,
        generation: i64,
    ) -> Result<User, Response> {
        let peer = peer_addr.ip().to_string();
        let Some(value) = value else {
            return Err(
                Response::text(401, "log in: HTTP Basic or a bearer token\n")
                    .header("WWW-Authenticate", "Basic realm=\"sft\", charset=\"UTF-8\""),
            );
        };
        let Some(c) = Credentials::from_header(value) else {
            return Err(Response::text(401, "unreadable Authorization header\n")
                .header("WWW-Authenticate", "Basic realm=\"sft\", charset=\"UTF-8\""));
        };
        if matches!(c, Credentials::Basic { .. })
            && !tls
            && !peer_addr.ip().is_loopback()
            && !self.options.insecure_basic
        {
            return Err(Response::text(
                403,
                "HTTP Basic is accepted over HTTPS only; use https:// or a bearer token\n",
            ));
        }
        let key: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(self.login_key);
            h.update(value);
            h.finalize().into()
        };
        if let Some((u, g, at)) = lock(&self.logins).get(&key)
            && *g == generation
            && at.elapsed() < LOGIN_TTL
        {
            return Ok(u.clone());
        }
        let u = self
            .pipeline
            .authenticate(&self.manager, &c, &peer)
            .map_err(|e| error_response(&e))?;
        let mut cache = lock(&self.logins);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (u.clone(), generation, std::time::Instant::now()));
        Ok(u)
    }

    fn route(&self, req: &Request<'_>) -> Option<Response> {
        let path = req.path();
        let method = req.method();
        // A browser that holds an administrator's Basic login would send
        // it with a cross-site form too: a change requested from another
        // site is refused (the console checks its own forms the same way,
        // and its CSRF token besides).
        if !matches!(method, "GET" | "HEAD") && cross_site(req) {
            return Some(Response::text(403, "cross-site request refused\n"));
        }
        if req
            .header_str("appv-op")
            .is_some_and(|op| op.eq_ignore_ascii_case("report"))
            && method == "POST"
        {
            return Some(self.with_user(req, |u| self.report(req, u)));
        }
        match (method, path) {
            ("GET" | "HEAD", "/healthz") => Some(Response::text(200, "ok\n")),
            ("GET" | "HEAD", "/publishing") => Some(self.refresh(req, 0)),
            ("GET" | "HEAD", "/desktopconfig") => Some(self.refresh(req, 1)),
            ("POST", "/report") => Some(self.with_user(req, |u| self.report(req, u))),
            ("POST", "/token") => Some(self.with_user(req, |u| self.token(u))),
            ("POST", "/licence/acquire" | "/licence/renew" | "/licence/release") => {
                Some(self.with_user(req, |u| self.licence(req, u, path)))
            }
            (_, p) if p == "/console" || p.starts_with("/console/") => Some(
                super::console::handle(self, req, self.options.insecure_basic),
            ),
            (_, p) if p.starts_with("/api/") => {
                Some(self.with_user(req, |u| self.api(req, u, method, p)))
            }
            ("GET" | "HEAD", p) if p.starts_with("/packages/") => {
                Some(self.with_user(req, |u| self.package_file(req, u, p)))
            }
            ("GET" | "HEAD", p) => self.content(req, p),
            (_, "/publishing" | "/desktopconfig" | "/healthz") => {
                Some(Response::text(405, "use GET\n").header("Allow", "GET, HEAD"))
            }
            _ => Some(Response::text(404, "not found\n")),
        }
    }

    fn with_user(&self, req: &Request<'_>, f: impl FnOnce(&User) -> Response) -> Response {
        match self.user(req) {
            Ok(u) => f(&u),
            Err(r) => r,
        }
    }

    /// The user's packages, in one query (grants only) or through every
    /// authorisation step.
    fn entitled(&self, user: &User) -> Result<Vec<Vec<Val>>, Error> {
        let cols = "p.name, p.guid, p.version_guid, p.version, p.sft_file, p.manifest";
        let rows = if self.pipeline.grants_only() {
            self.manager.db.read(|t| {
                t.query(
                    &format!("SELECT {cols} FROM packages p WHERE p.enabled = 1 AND p.id IN (SELECT gr.package_id FROM grants gr JOIN members m ON m.group_id = gr.group_id WHERE m.user_id = $1) ORDER BY p.name"),
                    &[user.id.into()],
                )
            })?
        } else {
            let all = self.manager.db.read(|t| {
                t.query(
                    &format!("SELECT {cols} FROM packages p WHERE p.enabled = 1 ORDER BY p.name"),
                    &[],
                )
            })?;
            let mut out = Vec::new();
            for r in all {
                if self
                    .pipeline
                    .authorise(&self.manager, user, &text(&r, 0))
                    .is_ok()
                {
                    out.push(r);
                }
            }
            out
        };
        Ok(rows)
    }

    fn refresh(&self, req: &Request<'_>, form: u8) -> Response {
        // One read of the generation serves the login and the answer.
        let generation = match self.manager.generation() {
            Ok(g) => g,
            Err(e) => return error_response(&e),
        };
        let user = match self.user_at(req, generation) {
            Ok(u) => u,
            Err(r) => return r,
        };
        let user = &user;
        let base = match self.base_url(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let key = (user.id, user.name.clone(), form, base.clone());
        let cacheable = self.pipeline.grants_only();
        let cached = cacheable
            .then(|| {
                lock(&self.answers)
                    .get(&key)
                    .filter(|a| a.generation == generation)
                    .map(|a| (a.etag.clone(), Arc::clone(&a.body)))
            })
            .flatten();
        let (etag, body) = match cached {
            Some(x) => x,
            None => match self.build_answer(user, form, &base) {
                Ok(body) => {
                    let etag = format!("\"{}\"", &hex(&Sha256::digest(&body))[..32]);
                    let body = Arc::new(body);
                    let len = body.len() + key.1.len() + key.3.len() + 64;
                    if cacheable {
                        lock(&self.answers).insert(
                            key,
                            Answer {
                                generation,
                                etag: etag.clone(),
                                body: Arc::clone(&body),
                            },
                            len,
                        );
                    }
                    (etag, body)
                }
                Err(e) => return error_response(&e),
            },
        };
        let unchanged = req.header("if-none-match").is_some_and(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii() == etag.as_bytes() || t.trim_ascii() == b"*")
        });
        let r = if unchanged {
            Response::new(304)
        } else {
            Response::new(200).body("text/xml; charset=utf-8", body.to_vec())
        };
        r.header("ETag", etag)
            .header("Cache-Control", "private, no-cache")
            .header("Vary", "Authorization")
    }

    fn build_answer(&self, user: &User, form: u8, base: &str) -> Result<Vec<u8>, Error> {
        let policy = self.manager.policy()?;
        let rows = self.entitled(user)?;
        if form == 1 {
            let manifests: Vec<(Manifest, String)> = rows
                .iter()
                .filter_map(|r| {
                    let m = Manifest::parse(text(r, 5).as_bytes()).ok()?;
                    Some((m, format!("{base}/packages/{}", encode_path(&text(r, 0)))))
                })
                .collect();
            return Ok(desktop_config(&policy, &manifests).into_bytes());
        }
        let packages = rows
            .iter()
            .map(|r| {
                let name = text(r, 0);
                PublishedPackage {
                    package_url: format!(
                        "{}/{}",
                        self.content_base(base),
                        encode_path(&text(r, 4))
                    ),
                    publishing_url: format!(
                        "{base}/packages/{}/publishing.sftb",
                        encode_path(&name)
                    ),
                    name,
                    package_id: text(r, 1),
                    version_id: text(r, 2),
                    version: text(r, 3),
                }
            })
            .collect();
        Ok(PublishingAnswer { policy, packages }.to_xml().into_bytes())
    }

    fn report(&self, req: &Request<'_>, user: &User) -> Response {
        if req.body().len() > self.options.max_report {
            return Response::text(413, "report too large\n");
        }
        let limits = Limits {
            max_input: self.options.max_report,
            ..Limits::default()
        };
        match UsageReport::parse_with(req.body(), &limits) {
            Ok(r) => match self.pipeline.report(&self.manager, user, &r) {
                Ok(()) => Response::new(204),
                Err(e) => error_response(&e),
            },
            Err(e) => {
                self.manager
                    .log_event("bad-report", &user.name, &e.to_string());
                Response::text(400, format!("{e}\n"))
            }
        }
    }

    fn token(&self, user: &User) -> Response {
        match self.manager.issue_token(&user.name, self.options.token_ttl) {
            Ok(t) => json(
                200,
                &serde_json::json!({ "token": t, "expires_in": self.options.token_ttl.as_secs(), "user": user.name }),
            )
            .header("Cache-Control", "no-store"),
            Err(e) => error_response(&e),
        }
    }

    fn licence(&self, req: &Request<'_>, user: &User, path: &str) -> Response {
        let param = |n: &str| {
            req.query_param(n).or_else(|| {
                std::str::from_utf8(req.body())
                    .ok()
                    .and_then(|b| crate::serve::handler::form_param(b, n))
            })
        };
        let lease_json = |l: super::Lease| {
            json(
                200,
                &serde_json::json!({ "lease": l.id, "package": l.package, "expires_ms": l.expires_ms }),
            )
        };
        let r = match path {
            "/licence/acquire" => {
                let Some(package) = param("package") else {
                    return Response::text(400, "name the package: ?package=NAME\n");
                };
                let client = param("client").unwrap_or_default();
                self.pipeline
                    .authorise(&self.manager, user, &package)
                    .and_then(|()| {
                        self.pipeline
                            .licensing
                            .acquire(&self.manager, user, &package, &client)
                    })
                    .map(lease_json)
            }
            _ => {
                let Some(lease) = param("lease") else {
                    return Response::text(400, "name the lease: ?lease=ID\n");
                };
                if path == "/licence/renew" {
                    // Still entitled? A revoked grant ends the lease at its
                    // next renewal.
                    self.pipeline
                        .licensing
                        .renew(&self.manager, user, &lease)
                        .and_then(|l| {
                            match self.pipeline.authorise(&self.manager, user, &l.package) {
                                Ok(()) => Ok(l),
                                Err(e) => {
                                    let _ =
                                        self.pipeline.licensing.release(&self.manager, user, &l.id);
                                    Err(e)
                                }
                            }
                        })
                        .map(lease_json)
                } else {
                    self.pipeline
                        .licensing
                        .release(&self.manager, user, &lease)
                        .map(|()| Response::new(204))
                }
            }
        };
        r.unwrap_or_else(|e| error_response(&e))
    }

    /// `/packages/NAME/publishing.sftb` or `/packages/NAME/PATH`.
    fn package_file(&self, req: &Request<'_>, user: &User, path: &str) -> Response {
        let rest = path.trim_start_matches("/packages/");
        let (name, file) = rest.split_once('/').unwrap_or((rest, ""));
        let (Some(name), Some(file)) = (percent_decode_path(name), percent_decode_path(file))
        else {
            return Response::text(400, "bad path\n");
        };
        // Not entitled and unknown look the same: no hint that it exists.
        if self.pipeline.authorise(&self.manager, user, &name).is_err() {
            return Response::text(404, "not found\n");
        }
        if file == "publishing.sftb" {
            let base = match self.base_url(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            return match self.bundle(&name, &base) {
                Ok((vguid, b)) => Response::new(200)
                    .body("application/octet-stream", b.to_vec())
                    .header("X-Content-Type-Options", "nosniff")
                    .header("Content-Disposition", "attachment")
                    .header("ETag", format!("\"{}\"", vguid.trim_matches(['{', '}']))),
                Err(e) => error_response(&e),
            };
        }
        let data = self.manager.db.read(|t| {
            t.query_opt(
                "SELECT f.data FROM package_files f JOIN packages p ON p.id = f.package_id WHERE p.name = $1 AND f.path = $2",
                &[name.as_str().into(), file.as_str().into()],
            )
        });
        match data {
            Ok(Some(r)) => {
                let ctype = if file.to_ascii_lowercase().ends_with(".ico") {
                    "image/x-icon"
                } else {
                    "text/xml"
                };
                let bytes = r
                    .into_iter()
                    .next()
                    .and_then(Val::into_bytes)
                    .unwrap_or_default();
                // Imported from a vendor: never a document of this origin.
                Response::new(200)
                    .body(ctype, bytes)
                    .header("Content-Security-Policy", "sandbox; default-src 'none'")
                    .header("X-Content-Type-Options", "nosniff")
                    .header("Content-Disposition", "attachment")
            }
            Ok(None) => Response::text(404, "not found\n"),
            Err(e) => error_response(&e),
        }
    }

    /// The package's publishing bundle (manifest with its `HREF` set to
    /// the content URL, OSDs, icons; no SFT), built once per version.
    fn bundle(&self, name: &str, base: &str) -> Result<(String, Arc<Vec<u8>>), Error> {
        let row = self
            .manager
            .db
            .read(|t| {
                t.query_opt(
                    "SELECT id, version_guid, sft_file, manifest, size FROM packages WHERE name = $1",
                    &[name.into()],
                )
            })?
            .ok_or_else(|| super::unknown("package", name))?;
        let vguid = text(&row, 1);
        // The generation too: a package imported again under the same
        // version GUID (a fixed OSD) gets a new bundle.
        let generation = self.manager.generation()?;
        let key = (format!("{name}\0{vguid}\0{generation}"), base.to_owned());
        if let Some(b) = lock(&self.bundles).get(&key) {
            return Ok((vguid, Arc::clone(b)));
        }
        let id = row.first().and_then(Val::int).unwrap_or(0);
        let files = self.manager.db.read(|t| {
            t.query(
                "SELECT path, data FROM package_files WHERE package_id = $1",
                &[id.into()],
            )
        })?;
        let mut m = Manifest::parse(text(&row, 3).as_bytes())?;
        let pkg = m.package.get_or_insert_with(Default::default);
        pkg.href = Some(format!(
            "{}/{}",
            self.content_base(base),
            encode_path(&text(&row, 2))
        ));
        pkg.size = row.get(4).and_then(Val::int).map(|s| s.max(0) as u64);
        let dir = tempfile::tempdir().map_err(|e| Error::io("creating a temporary folder", e))?;
        for f in files {
            let mut f = f.into_iter();
            let (Some(p), Some(d)) = (
                f.next().and_then(Val::into_text),
                f.next().and_then(Val::into_bytes),
            ) else {
                continue;
            };
            let path = dir.path().join(&p);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io("writing a bundle", e))?;
            }
            std::fs::write(&path, d).map_err(|e| Error::io("writing a bundle", e))?;
        }
        let manifest = dir.path().join("manifest.xml");
        std::fs::write(&manifest, m.to_xml()).map_err(|e| Error::io("writing a bundle", e))?;
        let out = dir.path().join("publishing.sftb");
        crate::bundle::write_bundle(&manifest, &crate::bundle::BundleOptions::default(), &out)?;
        let bytes = Arc::new(std::fs::read(&out).map_err(|e| Error::io("reading a bundle", e))?);
        let len = bytes.len() + key.0.len() + key.1.len();
        lock(&self.bundles).insert(key, Arc::clone(&bytes), len);
        Ok((vguid, bytes))
    }

    /// Package content: the first path segment is the package's folder.
    fn content(&self, req: &Request<'_>, path: &str) -> Option<Response> {
        self.content_decision(path, req.header("authorization"), req.peer(), req.is_tls())
            .err()
    }

    /// May the client presenting `authorization` have content `path`?
    fn content_decision(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
        peer: std::net::SocketAddr,
        tls: bool,
    ) -> Result<(), Response> {
        let not_found = || Response::text(404, "not found\n");
        let folder = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        // Real folders are a package name's safe form and 8 hex digits.
        if folder.len() > 200 {
            return Err(not_found());
        }
        let folder = percent_decode_path(folder).ok_or_else(not_found)?;
        let generation = self.manager.generation().map_err(|e| error_response(&e))?;
        let user = self.login(authorization, peer, tls, generation)?;
        // A stream is many range requests: the decision is kept per user
        // and folder while the store is unchanged.
        let key = (user.id, folder);
        if let Some((g, d)) = lock(&self.folders).get(&key)
            && *g == generation
        {
            return if d.is_some() {
                Ok(())
            } else {
                Err(not_found())
            };
        }
        let prefix = format!("{}/", key.1);
        let name = self
            .manager
            .db
            .read(|t| {
                Ok(t.query_opt(
                    "SELECT name FROM packages WHERE substr(sft_file, 1, length($1)) = $1",
                    &[prefix.as_str().into()],
                )?
                .map(|r| text(&r, 0)))
            })
            .map_err(|e| error_response(&e))?;
        let Some(name) = name else {
            // No package has this folder: nothing to remember.
            return Err(not_found());
        };
        let decision = self
            .pipeline
            .authorise(&self.manager, &user, &name)
            .is_ok()
            .then_some(name);
        let allowed = decision.is_some();
        // Decisions of steps other than the store's own may change without
        // the store changing: those are never kept.
        if self.pipeline.grants_only() {
            let mut cache = lock(&self.folders);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, (generation, decision));
        }
        if allowed { Ok(()) } else { Err(not_found()) }
    }

    fn api(&self, req: &Request<'_>, user: &User, method: &str, path: &str) -> Response {
        if !user.admin {
            return Response::text(403, "administrators only\n");
        }
        let m = &self.manager;
        let param = |n: &str| {
            req.query_param(n).or_else(|| {
                std::str::from_utf8(req.body())
                    .ok()
                    .and_then(|b| crate::serve::handler::form_param(b, n))
            })
        };
        let r: Result<Response, Error> = (|| {
            Ok(match (method, path) {
                ("GET", "/api/packages") => {
                    let p: Vec<_> = m
                        .packages()?
                        .into_iter()
                        .map(|p| {
                            serde_json::json!({
                                "name": p.name, "guid": p.guid, "version_guid": p.version_guid,
                                "version": p.version, "size": p.size, "licence": p.licence.to_string(),
                                "groups": p.groups, "apps": p.apps,
                            })
                        })
                        .collect();
                    json(200, &p)
                }
                ("GET", "/api/users") => {
                    let u: Vec<_> = m
                        .users()?
                        .into_iter()
                        .map(|u| serde_json::json!({ "name": u.name, "admin": u.admin, "groups": u.groups }))
                        .collect();
                    json(200, &u)
                }
                ("GET", "/api/groups") => {
                    let g: Vec<_> = m
                        .groups()?
                        .into_iter()
                        .map(|g| serde_json::json!({ "name": g.name, "members": g.members, "packages": g.packages }))
                        .collect();
                    json(200, &g)
                }
                ("GET", "/api/reports/usage") => {
                    if req.query_param("format").as_deref() == Some("csv") {
                        Response::new(200).body(
                            "text/csv; charset=utf-8",
                            usage_csv(&m.usage()?).into_bytes(),
                        )
                    } else {
                        json(200, &m.usage()?)
                    }
                }
                ("GET", "/api/reports/utilisation") => json(200, &m.utilisation()?),
                ("GET", "/api/reports/errors") => json(200, &m.errors(1000)?),
                ("GET", "/api/settings") => {
                    let s: serde_json::Map<_, _> = m
                        .settings()?
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::String(v)))
                        .collect();
                    json(200, &s)
                }
                ("POST", "/api/grant" | "/api/revoke") => {
                    let (Some(g), Some(p)) = (param("group"), param("package")) else {
                        return Ok(Response::text(400, "give group and package\n"));
                    };
                    if path == "/api/grant" {
                        m.grant(&g, &p)?;
                    } else {
                        m.revoke(&g, &p)?;
                    }
                    Response::new(204)
                }
                _ => Response::text(404, "no such API\n"),
            })
        })();
        r.unwrap_or_else(|e| error_response(&e))
    }
}

/// The usage report as CSV, with a header line.
pub fn usage_csv(rows: &[super::UsageRow]) -> String {
    let mut out = String::from("received,host,user,app,app_version,server,launched,shutdown\n");
    for r in rows {
        let fields = [
            crate::publish::rfc3339(r.received_ms),
            r.host.clone(),
            r.user.clone(),
            r.app.clone(),
            r.app_version.clone(),
            r.server.clone(),
            crate::publish::rfc3339(r.launched_ms),
            r.shutdown_ms
                .map(crate::publish::rfc3339)
                .unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// The RTSP/RTSPS streaming server's entitlement check
/// ([`rtsp::ServerConfig::gate`](crate::serve::rtsp::ServerConfig::gate)):
/// the same logins and decisions as HTTP content.
#[cfg(feature = "rtsp-server")]
impl crate::serve::Gate for ManageServer {
    fn check(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
        peer: std::net::SocketAddr,
        tls: bool,
    ) -> Result<(), u16> {
        self.content_decision(path, authorization, peer, tls)
            .map_err(|r| r.status())
    }
}

impl Handler for ManageServer {
    fn handle(&self, req: &Request<'_>) -> Option<Response> {
        self.route(req)
    }
}
