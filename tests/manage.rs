//! The Management Server (feature `manage`) on SQLite and on a real
//! PostgreSQL (a private cluster started by the test through
//! `scripts/pg.sh`, skipped loudly when PostgreSQL is not installed, a
//! failure under `SFT_REQUIRE_SERVERS=1`): one suite, run on both.
//!
//! The suite drives the real HTTP server and the real client store:
//! entitlement (user A never sees user B's packages, not even their
//! content), ETag/304, concurrent licences, hostile input (SQL
//! metacharacters in every name, oversized and malformed bodies,
//! brute-force logins), secrets kept out of the log, and the client end
//! to end: add-server, refresh, load with the server's token, launch
//! authorisation and its report, upgrade to a new version, removal.
#![cfg(all(feature = "manage", feature = "cli"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sft::client::Store;
use sft::manage::{ImportOptions, LicenceKind, ManageServer, Manager, ServerOptions};
use sft::net::http::{Exchanged, HttpOptions, exchange};
use sft::publish::PublishingAnswer;
use sft::serve::http::{AccessLog, Server, ServerConfig, ServerHandle};

/// A private PostgreSQL cluster, stopped on drop.
struct Pg {
    dir: tempfile::TempDir,
    url: String,
}

impl Pg {
    /// Start one, or `None` (skipped loudly) without PostgreSQL.
    fn start() -> Option<Pg> {
        let have = std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|mut d| d.next().is_some());
        if !have {
            assert!(
                std::env::var("SFT_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "PostgreSQL is required (SFT_REQUIRE_SERVERS=1) but not installed"
            );
            eprintln!("SKIPPED: PostgreSQL not installed (/usr/lib/postgresql)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg.sh"))
            .args(["start", dir.path().to_str().unwrap(), &port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Some(Pg { dir, url })
    }

    /// A new empty database on the cluster.
    fn database(&self, name: &str) -> String {
        let port = self
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                port,
                "-U",
                "sft",
                "-d",
                "postgres",
                "-c",
            ])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url.replace("/postgres", &format!("/{name}"))
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg.sh"))
            .args(["stop", self.dir.path().to_str().unwrap()])
            .status();
    }
}

/// A running server on the store, with its access log in a file.
struct Running {
    url: String,
    handle: Option<ServerHandle>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.shutdown();
        }
    }
}

fn serve(m: &Arc<Manager>, content: &Path, log: PathBuf) -> Running {
    let handler = Arc::new(ManageServer::new(Arc::clone(m), ServerOptions::default()));
    let config = ServerConfig::new(content)
        .handler(handler)
        .max_body(256 * 1024)
        .access_log(AccessLog::file(&log).unwrap());
    let server = Server::bind("127.0.0.1:0", config).unwrap();
    let url = format!("http://{}", server.local_addr());
    Running {
        url,
        handle: Some(server.spawn().unwrap()),
    }
}

enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

fn call(
    method: &str,
    url: &str,
    auth: Auth<'_>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Exchanged {
    let o = match auth {
        Auth::None => HttpOptions::default(),
        Auth::Basic(u, p) => HttpOptions::default().basic_auth(u, p),
        Auth::Bearer(t) => HttpOptions::default().bearer_token(t),
    };
    exchange(method, url, &o, headers, body, 64 << 20).unwrap()
}

fn names(a: &Exchanged) -> Vec<String> {
    PublishingAnswer::parse(&a.body)
        .unwrap()
        .packages
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// `sft pack` the sample as package `name` version `version` with its
/// publishing files in `dir`; returns the manifest.
fn pack(dir: &Path, name: &str, version: &str) -> PathBuf {
    let icon = dir.join("app.ico");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&icon, sft::publish::tiny_icon()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args([
            "pack",
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sample-app"),
            "-o",
        ])
        .arg(dir.join(format!("{name}.sft")))
        .args(["--name", name, "--version", version, "--publish"])
        .arg(dir)
        .arg("--app")
        .arg(format!("{name} App=bin/app.exe,{}", icon.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("{name}_manifest.xml"))
}

/// The whole suite on one database.
fn suite(db_url: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("content");
    let m = Arc::new(Manager::open(db_url, &content).unwrap());

    // --- administration, with hostile names everywhere
    let evil_user = "bob'); DROP TABLE users; --";
    let evil_group = "g\"; DELETE FROM grants; --";
    m.add_user("alice", "alice-pw", false).unwrap();
    m.add_user(evil_user, "bob-pw", false).unwrap();
    m.add_user("root", "root-pw", true).unwrap();
    m.add_group("staff").unwrap();
    m.add_group(evil_group).unwrap();
    m.add_member("staff", "alice").unwrap();
    m.add_member(evil_group, evil_user).unwrap();
    assert_eq!(
        m.add_user("alice", "x", false)
            .unwrap_err()
            .manage_problem(),
        Some(sft::ManageProblem::Exists)
    );
    assert!(
        m.add_user("a\nb", "x", false).is_err(),
        "control characters in a name"
    );
    let editor = pack(&tmp.path().join("editor1"), "Editor", "1");
    let viewer = pack(&tmp.path().join("viewer1"), "Viewer' OR 1;--", "1");
    let e = m
        .import_package(&editor, &ImportOptions::default())
        .unwrap();
    assert_eq!(e.name, "Editor");
    let v = m
        .import_package(&viewer, &ImportOptions::default())
        .unwrap();
    m.grant("staff", "Editor").unwrap();
    m.grant(evil_group, &v.name).unwrap();
    assert_eq!(m.users().unwrap().len(), 3, "the users table is intact");
    assert_eq!(m.groups_of(evil_user).unwrap(), [evil_group]);
    assert_eq!(m.package(&v.name).unwrap().groups, [evil_group]);

    let srv = serve(&m, &content, tmp.path().join("access.log"));
    let publishing = format!("{}/publishing", srv.url);

    // --- user A never sees user B's applications, nor their content
    let a = call(
        "GET",
        &publishing,
        Auth::Basic("alice", "alice-pw"),
        &[],
        None,
    );
    assert_eq!(a.status, 200);
    assert_eq!(names(&a), ["Editor"]);
    let b = call(
        "GET",
        &publishing,
        Auth::Basic(evil_user, "bob-pw"),
        &[],
        None,
    );
    assert_eq!(names(&b), [v.name.as_str()]);
    let b_pkg = PublishingAnswer::parse(&b.body).unwrap().packages[0].clone();
    let a_pkg = PublishingAnswer::parse(&a.body).unwrap().packages[0].clone();
    assert_eq!(
        call(
            "GET",
            &b_pkg.package_url,
            Auth::Basic("alice", "alice-pw"),
            &[],
            None
        )
        .status,
        404
    );
    assert_eq!(
        call(
            "GET",
            &b_pkg.publishing_url,
            Auth::Basic("alice", "alice-pw"),
            &[],
            None
        )
        .status,
        404
    );
    let got = call(
        "GET",
        &a_pkg.package_url,
        Auth::Basic("alice", "alice-pw"),
        &[],
        None,
    );
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body,
        std::fs::read(editor.with_file_name("Editor.sft")).unwrap(),
        "the SFT byte for byte"
    );
    assert_eq!(
        call("GET", &a_pkg.package_url, Auth::None, &[], None).status,
        401
    );
    assert_eq!(
        call("GET", &publishing, Auth::Basic("alice", "wrong"), &[], None).status,
        401
    );
    let dc = call(
        "GET",
        &format!("{}/desktopconfig", srv.url),
        Auth::Basic("alice", "alice-pw"),
        &[],
        None,
    );
    let dc = String::from_utf8(dc.body).unwrap();
    assert!(
        dc.contains("<DESKTOPCONFIG>") && dc.contains("Editor App") && !dc.contains("Viewer"),
        "{dc}"
    );
    // Its OSD and icon URLs work (a name with a space, percent-encoded).
    for attr in ["OSD=\"", "ICON=\""] {
        let at = dc.find(attr).unwrap_or_else(|| panic!("no {attr} in {dc}")) + attr.len();
        let url = &dc[at..at + dc[at..].find('"').unwrap()];
        let got = call("GET", url, Auth::Basic("alice", "alice-pw"), &[], None);
        assert_eq!(got.status, 200, "{url}");
        assert!(!got.body.is_empty());
    }

    // --- an unchanged refresh is a 304; a change is a new answer
    let etag = a.etag.clone().unwrap();
    let same = call(
        "GET",
        &publishing,
        Auth::Basic("alice", "alice-pw"),
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!((same.status, same.body.len()), (304, 0));
    m.grant("staff", &v.name).unwrap();
    let changed = call(
        "GET",
        &publishing,
        Auth::Basic("alice", "alice-pw"),
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(changed.status, 200);
    assert_eq!(names(&changed), ["Editor", v.name.as_str()]);
    m.revoke("staff", &v.name).unwrap();
    assert_eq!(
        names(&call(
            "GET",
            &publishing,
            Auth::Basic("alice", "alice-pw"),
            &[],
            None
        )),
        ["Editor"]
    );

    // --- tokens; admin API for administrators only
    let t = call(
        "POST",
        &format!("{}/token", srv.url),
        Auth::Basic("alice", "alice-pw"),
        &[],
        Some(b""),
    );
    let token: serde_json::Value = serde_json::from_slice(&t.body).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    assert_eq!(
        names(&call("GET", &publishing, Auth::Bearer(&token), &[], None)),
        ["Editor"]
    );
    assert_eq!(
        call("GET", &publishing, Auth::Bearer("sft_forged"), &[], None).status,
        401
    );
    assert_eq!(
        call(
            "GET",
            &format!("{}/api/users", srv.url),
            Auth::Bearer(&token),
            &[],
            None
        )
        .status,
        403
    );
    let users = call(
        "GET",
        &format!("{}/api/users", srv.url),
        Auth::Basic("root", "root-pw"),
        &[],
        None,
    );
    assert_eq!(users.status, 200);
    assert!(
        !String::from_utf8_lossy(&users.body).contains("argon2"),
        "no password hashes in the API"
    );

    // --- concurrent licence of 2: the third launch fails, clearly
    m.set_licence("Editor", LicenceKind::Concurrent(2)).unwrap();
    let acquire = format!("{}/licence/acquire?package=Editor&client=h", srv.url);
    let l1 = call("POST", &acquire, Auth::Bearer(&token), &[], Some(b""));
    let l2 = call("POST", &acquire, Auth::Bearer(&token), &[], Some(b""));
    assert_eq!((l1.status, l2.status), (200, 200));
    let l3 = call("POST", &acquire, Auth::Bearer(&token), &[], Some(b""));
    assert_eq!(l3.status, 409);
    let why = String::from_utf8_lossy(&l3.body);
    assert!(
        why.contains("all 2 concurrent licences of `Editor` are in use"),
        "{why}"
    );
    let lease: serde_json::Value = serde_json::from_slice(&l1.body).unwrap();
    let release = format!(
        "{}/licence/release?lease={}",
        srv.url,
        lease["lease"].as_str().unwrap()
    );
    assert_eq!(
        call("POST", &release, Auth::Bearer(&token), &[], Some(b"")).status,
        204
    );
    assert_eq!(
        call("POST", &acquire, Auth::Bearer(&token), &[], Some(b"")).status,
        200,
        "a released licence is free again"
    );
    let not_entitled = format!("{}/licence/acquire?package=Editor", srv.url);
    assert_eq!(
        call(
            "POST",
            &not_entitled,
            Auth::Basic(evil_user, "bob-pw"),
            &[],
            Some(b"")
        )
        .status,
        403
    );
    // A lease ends at its renewal once the grant is gone.
    let lease: serde_json::Value = serde_json::from_slice(&l2.body).unwrap();
    let renew = format!(
        "{}/licence/renew?lease={}",
        srv.url,
        lease["lease"].as_str().unwrap()
    );
    assert_eq!(
        call("POST", &renew, Auth::Bearer(&token), &[], Some(b"")).status,
        200
    );
    m.revoke("staff", "Editor").unwrap();
    assert_eq!(
        call("POST", &renew, Auth::Bearer(&token), &[], Some(b"")).status,
        403
    );
    m.grant("staff", "Editor").unwrap();

    // A browser's cross-site request never changes anything, even with a
    // cached Basic login.
    let grant_url = format!(
        "{}/api/grant?group=staff&package={}",
        srv.url,
        enc_query(&v.name)
    );
    for h in [
        ("Origin", "https://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = call(
            "POST",
            &grant_url,
            Auth::Basic("root", "root-pw"),
            &[h],
            Some(b""),
        );
        assert_eq!(r.status, 403, "{h:?}");
    }
    assert!(
        !m.package(&v.name)
            .unwrap()
            .groups
            .contains(&"staff".to_owned())
    );
    // Descriptors are served as attachments in a sandbox.
    let addr = srv.url.trim_start_matches("http://");
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")
    };
    let osd = raw(
        addr,
        &format!(
            "GET /packages/Editor/Editor%20App.osd HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(osd.starts_with("HTTP/1.1 200"), "{osd}");
    assert!(
        osd.contains("Content-Security-Policy: sandbox") && osd.contains("nosniff"),
        "{osd}"
    );
    // A long path segment is not a folder: 404, nothing kept.
    let long = format!("{}/{}/x.sft", srv.url, "a".repeat(5000));
    assert_eq!(
        call("GET", &long, Auth::Bearer(&token), &[], None).status,
        404
    );

    // Named: only users holding one.
    m.set_licence("Editor", LicenceKind::Named).unwrap();
    let named = call("POST", &acquire, Auth::Bearer(&token), &[], Some(b""));
    assert_eq!(
        named.status,
        409,
        "{}",
        String::from_utf8_lossy(&named.body)
    );
    assert!(String::from_utf8_lossy(&named.body).contains("holds no named licence"));
    m.assign_licence("Editor", "alice").unwrap();
    assert_eq!(
        call("POST", &acquire, Auth::Bearer(&token), &[], Some(b"")).status,
        200
    );
    m.set_licence("Editor", LicenceKind::Unlimited).unwrap();

    // --- hostile bodies change nothing
    let report_url = format!("{}/report", srv.url);
    let before = m.usage().unwrap().len();
    let big = vec![b'<'; 300 * 1024];
    // 413, or the connection closed while the body was still going out.
    let o = HttpOptions::default().bearer_token(&token);
    if let Ok(r) = exchange("POST", &report_url, &o, &[], Some(&big), 1 << 20) {
        assert_eq!(r.status, 413);
    }
    for bad in [&b"<CLIENT_DATA"[..], b"<NOT_A_REPORT/>", b"<!DOCTYPE x [<!ENTITY a \"b\">]><CLIENT_DATA/>",
        b"<CLIENT_DATA><APP_RECORDS><APP_RECORD Name=\"x\" Launched=\"yesterday\"/></APP_RECORDS></CLIENT_DATA>"] {
        assert_eq!(call("POST", &report_url, Auth::Bearer(&token), &[("AppV-Op", "Report")], Some(bad)).status, 400);
    }
    assert_eq!(
        m.usage().unwrap().len(),
        before,
        "bad reports store nothing"
    );
    assert!(
        m.errors(100)
            .unwrap()
            .iter()
            .any(|e| e.kind == "bad-report")
    );

    // --- brute force: throttled, and the right password does not help then
    for _ in 0..10 {
        assert_eq!(
            call("GET", &publishing, Auth::Basic("root", "guess"), &[], None).status,
            401
        );
    }
    let throttled = call(
        "GET",
        &publishing,
        Auth::Basic("root", "root-pw"),
        &[],
        None,
    );
    assert_eq!(
        throttled.status,
        429,
        "{}",
        String::from_utf8_lossy(&throttled.body)
    );

    // --- the client end to end
    let store = Store::open(tmp.path().join("store")).unwrap();
    store
        .add_server("hq", &srv.url, Some("alice"), true)
        .unwrap();
    let tok = sft::client::login(&srv.url, "alice", "alice-pw", &HttpOptions::default()).unwrap();
    store.set_server_token("hq", &tok).unwrap();
    let http = HttpOptions::default();
    let r = store.refresh_server("hq", &http).unwrap();
    assert_eq!(r.added, ["Editor"]);
    assert!(store.refresh_server("hq", &http).unwrap().unchanged);
    store
        .load_package("Editor", sft::client::LoadOptions::default())
        .unwrap();
    assert!(
        store.cache_state("Editor").unwrap().complete,
        "loaded with the server's token"
    );
    let launch = store.begin_launch("Editor", &http).unwrap().unwrap();
    assert!(launch.lease.is_some() && !launch.offline);
    store.end_launch(&launch, &http).unwrap();
    let usage = m.usage().unwrap();
    let last = usage.last().unwrap();
    assert_eq!(
        (last.user.as_str(), last.app.as_str()),
        ("alice", "Editor App"),
        "the report is stored under the authenticated user"
    );
    assert!(
        m.software_audit()
            .unwrap()
            .iter()
            .any(|(_, p, _, pct)| p == "Editor" && *pct == 100)
    );

    // A bad answer or a dead server changes nothing.
    let records = std::fs::read(tmp.path().join("store/records.json")).unwrap();
    store
        .add_server("dead", "http://127.0.0.1:9", None, true)
        .unwrap();
    store.set_server_token("dead", "sft_x").unwrap();
    assert!(store.refresh_server("dead", &http).is_err());
    assert_eq!(
        std::fs::read(tmp.path().join("store/records.json")).unwrap(),
        records
    );

    // A new version: upgraded at the next refresh, streamed at the next load.
    let editor2 = pack(&tmp.path().join("editor2"), "Editor", "2");
    let e2 = m
        .import_package(&editor2, &ImportOptions::default())
        .unwrap();
    assert_ne!(e2.version_guid, e.version_guid);
    let r = store.refresh_server("hq", &http).unwrap();
    assert_eq!(r.upgraded, ["Editor"]);
    let rec = store.records().unwrap().find("Editor").cloned().unwrap();
    assert_eq!(rec.version_guid.as_deref(), Some(e2.version_guid.as_str()));
    assert!(
        !store.cache_state("Editor").unwrap().complete,
        "the new version is not cached yet"
    );
    store
        .load_package("Editor", sft::client::LoadOptions::default())
        .unwrap();
    assert!(store.cache_state("Editor").unwrap().complete);

    // A removed entitlement removes the package at the next refresh.
    m.revoke("staff", "Editor").unwrap();
    let r = store.refresh_server("hq", &http).unwrap();
    assert_eq!(r.removed, ["Editor"]);
    assert!(store.records().unwrap().find("Editor").is_none());

    // --- a second server on the same database answers the same
    let m2 = Arc::new(Manager::open(db_url, &content).unwrap());
    let srv2 = serve(&m2, &content, tmp.path().join("access2.log"));
    m.grant("staff", "Editor").unwrap();
    let one = call("GET", &publishing, Auth::Bearer(&token), &[], None);
    let two = call(
        "GET",
        &format!("{}/publishing", srv2.url),
        Auth::Bearer(&token),
        &[],
        None,
    );
    assert_eq!(names(&one), names(&two));
    assert_eq!(names(&two), ["Editor"]);
    m2.revoke("staff", "Editor").unwrap();
    assert!(
        names(&call("GET", &publishing, Auth::Bearer(&token), &[], None)).is_empty(),
        "a change on one server shows on the other"
    );

    // --- offline launches follow the server's last policy
    m2.grant("staff", "Editor").unwrap();
    assert_eq!(store.refresh_server("hq", &http).unwrap().added, ["Editor"]);
    store
        .load_package("Editor", sft::client::LoadOptions::default())
        .unwrap();
    drop(srv2);
    drop(srv);
    let refused = store.begin_launch("Editor", &http).unwrap_err();
    assert!(
        refused.to_string().contains("requires authorisation"),
        "{refused}"
    );
    m.set_setting("require_authorization_if_cached", "false")
        .unwrap();
    let srv = serve(&m, &content, tmp.path().join("access3.log"));
    store
        .add_server("hq", &srv.url, Some("alice"), true)
        .unwrap();
    let r = store.refresh_server("hq", &http).unwrap();
    assert!(!r.unchanged && r.removed.is_empty(), "{r:?}");
    assert!(!store.server("hq").unwrap().require_authorization_if_cached);
    drop(srv);
    let offline = store.begin_launch("Editor", &http).unwrap().unwrap();
    assert!(offline.offline && offline.lease.is_none());

    // --- secrets never in the log
    let log = std::fs::read_to_string(tmp.path().join("access.log")).unwrap();
    assert!(log.contains("GET /publishing"), "{log}");
    for secret in [
        "alice-pw",
        "root-pw",
        "bob-pw",
        token.as_str(),
        tok.as_str(),
        "lease=",
    ] {
        assert!(!log.contains(secret), "`{secret}` in the access log");
    }
}

#[test]
fn sqlite_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite(&format!(
        "sqlite:{}",
        dir.path().join("manage.db").display()
    ));
}

#[test]
fn postgres_suite() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.database("suite");
    suite(&url);
    // App-V's server group: two `sft manage serve` processes on the one
    // database answer the same, and a change shows on both at once.
    let tmp = tempfile::tempdir().unwrap();
    let serve_process = || start_manage(&url, tmp.path());
    let (mut one, a) = serve_process();
    let (mut two, b) = serve_process();
    let ask = |base: &str| {
        names(&call(
            "GET",
            &format!("{base}/publishing"),
            Auth::Basic("alice", "alice-pw"),
            &[],
            None,
        ))
    };
    assert_eq!(ask(&a), ["Editor"]);
    assert_eq!(ask(&a), ask(&b));
    let m = Manager::open_db(&url).unwrap();
    m.revoke("staff", "Editor").unwrap();
    assert!(
        ask(&a).is_empty() && ask(&b).is_empty(),
        "both see the change"
    );
    for c in [&mut one, &mut two] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn migrations_run_once_and_newer_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("m.db").display());
    let m = Manager::open_db(&url).unwrap();
    m.add_user("u", "p", false).unwrap();
    drop(m);
    // Reopening keeps the data (the migrations do not run again).
    let m = Manager::open_db(&url).unwrap();
    assert_eq!(m.users().unwrap().len(), 1);
    drop(m);
    rusqlite::Connection::open(dir.path().join("m.db"))
        .unwrap()
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    let e = Manager::open_db(&url).unwrap_err();
    assert!(e.to_string().contains("newer than this sft knows"), "{e}");
    assert_eq!(
        e.manage_problem(),
        Some(sft::ManageProblem::Database),
        "{e:?}"
    );
}

#[test]
fn the_cli_administers_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("m.db").display());
    let content = tmp.path().join("content");
    let prefix = [
        "manage",
        "--db",
        &db,
        "--content",
        content.to_str().unwrap(),
    ];
    let sft = |args: &[&str], stdin: Option<&str>| sft_with(&prefix, args, stdin.unwrap_or(""));
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    ok(sft(
        &["user", "add", "alice", "--password-stdin"],
        Some("s3cret\n"),
    ));
    ok(sft(&["group", "add", "staff"], None));
    // The store from $SFT_MANAGE_DB (no password in the process list).
    let env = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(["manage", "group", "list", "--json"])
        .env("SFT_MANAGE_DB", &db)
        .output()
        .unwrap();
    assert!(
        env.status.success(),
        "{}",
        String::from_utf8_lossy(&env.stderr)
    );
    assert!(String::from_utf8_lossy(&env.stdout).contains("\"staff\""));
    ok(sft(&["group", "add-member", "staff", "alice"], None));
    let manifest = pack(&tmp.path().join("pub"), "Editor", "1");
    ok(sft(
        &["package", "import", manifest.to_str().unwrap()],
        None,
    ));
    let list: serde_json::Value =
        serde_json::from_str(&ok(sft(&["package", "list", "--json"], None))).unwrap();
    assert_eq!(list[0]["name"], "Editor");
    ok(sft(&["grant", "staff", "Editor"], None));
    ok(sft(&["licence", "set", "Editor", "concurrent", "3"], None));
    assert!(ok(sft(&["package", "list"], None)).contains("licence concurrent 3"));
    // Wrong input: a clear error and exit 1, never 0.
    let bad = sft(&["grant", "nogroup", "Editor"], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no group `nogroup`"));
    let bad = sft(&["user", "add", "bob", "--password-stdin"], Some(""));
    assert_eq!(bad.status.code(), Some(1), "an empty password is refused");
    assert_eq!(
        sft(&["licence", "set", "Editor", "sometimes"], None)
            .status
            .code(),
        Some(2)
    );
    let csv = ok(sft(&["report", "usage", "--csv"], None));
    assert_eq!(
        csv.lines().next(),
        Some("received,host,user,app,app_version,server,launched,shutdown")
    );
    // The user database is never in output.
    let users = ok(sft(&["user", "list", "--json"], None));
    assert!(
        !users.contains("s3cret") && !users.contains("argon2"),
        "{users}"
    );
}

/// A minimal WebDriver client (W3C protocol, JSON over HTTP) for
/// Debian's chromedriver driving headless Chromium.
struct Browser {
    driver: std::process::Child,
    base: String,
    session: String,
}

impl Browser {
    fn start() -> Option<Browser> {
        let have =
            Path::new("/usr/bin/chromedriver").exists() && Path::new("/usr/bin/chromium").exists();
        if !have {
            assert!(
                std::env::var("SFT_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "chromium and chromedriver are required (SFT_REQUIRE_SERVERS=1) but not installed"
            );
            eprintln!("SKIPPED: chromium/chromedriver not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // chromedriver prints a line once it listens.
        {
            use std::io::BufRead as _;
            let out = driver.stdout.take().unwrap();
            let mut lines = std::io::BufReader::new(out).lines();
            while let Some(Ok(l)) = lines.next() {
                if l.contains("started successfully") {
                    break;
                }
            }
            std::thread::spawn(move || for _ in lines {});
        }
        let base = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.display())]}
        }}});
        let r = wd("POST", &format!("{base}/session"), Some(&caps));
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        Some(Browser {
            driver,
            base,
            session,
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/session/{}{tail}", self.base, self.session)
    }

    fn go(&self, url: &str) {
        wd(
            "POST",
            &self.url("/url"),
            Some(&serde_json::json!({ "url": url })),
        );
    }

    fn find(&self, css: &str) -> String {
        let query = serde_json::json!({"using": "css selector", "value": css}).to_string();
        let got = exchange(
            "POST",
            &self.url("/element"),
            &HttpOptions::default(),
            &[("Content-Type", "application/json")],
            Some(query.as_bytes()),
            64 << 20,
        )
        .unwrap();
        if got.status != 200 {
            let at = wd("GET", &self.url("/url"), None);
            let src = wd("GET", &self.url("/source"), None);
            panic!("no element `{css}` at {}: {}", at["value"], src["value"]);
        }
        let r: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        r["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no element `{css}`: {r}"))
            .to_owned()
    }

    fn type_in(&self, css: &str, text: &str) {
        let e = self.find(css);
        wd(
            "POST",
            &self.url(&format!("/element/{e}/value")),
            Some(&serde_json::json!({ "text": text })),
        );
    }

    /// Click `css`, a button that submits a form, and wait until the
    /// browser has left the page (its root element has gone stale;
    /// chromedriver then waits for the new page's load before the next
    /// command). Bounded: 20 s.
    fn submit(&self, css: &str) {
        let root = self.find("html");
        self.click(css);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let r = exchange(
                "GET",
                &self.url(&format!("/element/{root}/name")),
                &HttpOptions::default(),
                &[],
                None,
                1 << 20,
            )
            .unwrap();
            if r.status != 200 {
                // The old document is gone ("stale element reference", or
                // a frame detached mid-navigation): the next command waits
                // for the new one to load.
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the form at `{css}` never left the page"
            );
            std::thread::yield_now();
        }
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        wd(
            "POST",
            &self.url(&format!("/element/{e}/click")),
            Some(&serde_json::json!({})),
        );
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        wd("GET", &self.url(&format!("/element/{e}/text")), None)["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG of the page; kept in docs/ when `SFT_BLESS_SCREENSHOTS=1`.
    fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let r = wd("GET", &self.url("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["value"].as_str().unwrap())
            .unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5000,
            "a rendered page"
        );
        if std::env::var("SFT_BLESS_SCREENSHOTS").as_deref() == Ok("1") {
            std::fs::write(
                format!("{}/docs/console-{name}.png", env!("CARGO_MANIFEST_DIR")),
                png,
            )
            .unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = exchange(
            "DELETE",
            &self.url(""),
            &HttpOptions::default(),
            &[],
            None,
            1 << 20,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn wd(method: &str, url: &str, body: Option<&serde_json::Value>) -> serde_json::Value {
    let b = body.map(|v| v.to_string().into_bytes());
    let r = exchange(
        method,
        url,
        &HttpOptions::default().read_timeout(std::time::Duration::from_secs(60)),
        &[("Content-Type", "application/json")],
        b.as_deref(),
        64 << 20,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert!(
        r.status == 200,
        "WebDriver {method} {url}: {} {v}",
        r.status
    );
    v
}

/// The web console in a real headless Chromium: log in, import a
/// package, entitle a group, see the user's refresh change, see a usage
/// report; and what it refuses (a user who is not an administrator, a
/// form without its token).
#[test]
fn console_in_chromium() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("content");
    let m = Arc::new(
        Manager::open(
            &format!("sqlite:{}", tmp.path().join("m.db").display()),
            &content,
        )
        .unwrap(),
    );
    m.add_user("root", "root-pw", true).unwrap();
    m.add_user("alice", "alice-pw", false).unwrap();
    m.add_group("staff").unwrap();
    m.add_member("staff", "alice").unwrap();
    let manifest = pack(&tmp.path().join("pub"), "Editor", "1");
    let srv = serve(&m, &content, tmp.path().join("access.log"));
    let publishing = format!("{}/publishing", srv.url);

    // Not an administrator: refused.
    browser.go(&format!("{}/console", srv.url));
    browser.type_in("#user", "alice");
    browser.type_in("#password", "alice-pw");
    browser.submit("#submit");
    assert!(browser.text("#flash").contains("Administrators only"));
    browser.screenshot("login");

    browser.type_in("#user", "root");
    browser.type_in("#password", "root-pw");
    browser.submit("#submit");
    assert!(browser.text("h1").contains("Packages"));

    // Import a package.
    browser.type_in("#source", manifest.to_str().unwrap());
    browser.submit("#import-submit");
    assert!(
        browser.text("#flash").contains("Imported Editor version 1"),
        "{}",
        browser.text("#flash")
    );
    assert!(browser.text("#packages").contains("Editor App"));
    browser.screenshot("packages");
    assert!(
        names(&call(
            "GET",
            &publishing,
            Auth::Basic("alice", "alice-pw"),
            &[],
            None
        ))
        .is_empty()
    );

    // Entitle a group: the user's refresh changes.
    browser.go(&format!("{}/console/groups", srv.url));
    browser.type_in("#grant-group", "staff");
    browser.type_in("#grant-package", "Editor");
    browser.submit("#grant-submit");
    assert!(browser.text("#flash").contains("Granted Editor to staff"));
    assert!(browser.text("#groups").contains("Editor"));
    browser.screenshot("groups");
    assert_eq!(
        names(&call(
            "GET",
            &publishing,
            Auth::Basic("alice", "alice-pw"),
            &[],
            None
        )),
        ["Editor"]
    );

    // A usage report shows.
    let report = sft::publish::UsageReport {
        client_version: "1".into(),
        host: "pc-<script>".into(),
        apps: vec![sft::publish::AppRecord {
            name: "Editor App".into(),
            version: "1".into(),
            server: "hq".into(),
            user: "alice".into(),
            launched_ms: 1_796_000_000_000,
            shutdown_ms: Some(1_796_000_060_000),
        }],
        ..Default::default()
    };
    let r = call(
        "POST",
        &format!("{}/report", srv.url),
        Auth::Basic("alice", "alice-pw"),
        &[("AppV-Op", "Report")],
        Some(report.to_xml().as_bytes()),
    );
    assert_eq!(r.status, 204);
    browser.go(&format!("{}/console/reports", srv.url));
    let usage = browser.text("#usage");
    assert!(
        usage.contains("Editor App") && usage.contains("pc-<script>"),
        "{usage}"
    );
    assert!(
        browser.text("#utilisation").contains("60"),
        "60 seconds run"
    );
    browser.screenshot("reports");
    for view in ["applications", "licences", "policies", "administrators"] {
        browser.go(&format!("{}/console/{view}", srv.url));
        assert!(!browser.text("h1").is_empty());
    }

    // A form without the session's token is refused, even with the cookie.
    let cookie_less = call(
        "POST",
        &format!("{}/console/grant", srv.url),
        Auth::None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b"group=staff&package=Editor&revoke=1"),
    );
    assert_eq!(cookie_less.status, 303, "no session: back to the login");
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let login = raw(
        &addr,
        "POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 30\r\nConnection: close\r\n\r\nuser=root&password=root-pw&x=1",
    );
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("{login}"))
        .to_owned();
    assert!(
        login.contains("HttpOnly") && login.contains("SameSite=Strict"),
        "{login}"
    );
    let forged = raw(
        &addr,
        &format!(
            "POST /console/grant HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 46\r\nConnection: close\r\n\r\ngroup=staff&package=Editor&revoke=1&csrf=00000"
        ),
    );
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    let page = raw(
        &addr,
        &format!(
            "GET /console/groups HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(
        page.contains("Content-Security-Policy: default-src 'none'") && !page.contains("<script"),
        "no inline code"
    );
    assert_eq!(
        names(&call(
            "GET",
            &publishing,
            Auth::Basic("alice", "alice-pw"),
            &[],
            None
        )),
        ["Editor"]
    );
}

/// Percent-encode a query value.
fn enc_query(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Run `sft PREFIX… ARGS…` with `stdin` on its standard input; its output.
fn sft_with(prefix: &[&str], args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut c = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(prefix)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

/// Start `sft manage --db DB --content DIR serve --http 127.0.0.1:0` and
/// read the address it prints first.
fn start_manage(db: &str, content: &Path) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut c = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(["manage", "--db", db, "--content", content.to_str().unwrap()])
        .args(["serve", "--http", "127.0.0.1:0", "--no-access-log"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let at = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (c, at)
}

/// One raw HTTP exchange (the answer's head and body as text).
fn raw(addr: &str, request: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Content over RTSP has the same entitlement check as over HTTP: the
/// answer sends clients to the streaming listener, a token opens the
/// package there, and other users get nothing of it.
#[test]
fn rtsp_content_is_gated() {
    use sft::io::RangeSource as _;
    use sft::net::rtsp::{RtspOptions, RtspSource};
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("content");
    let m = Arc::new(
        Manager::open(
            &format!("sqlite:{}", tmp.path().join("m.db").display()),
            &content,
        )
        .unwrap(),
    );
    m.add_user("alice", "alice-pw", false).unwrap();
    m.add_user("bob", "bob-pw", false).unwrap();
    m.add_group("staff").unwrap();
    m.add_member("staff", "alice").unwrap();
    let manifest = pack(&tmp.path().join("pub"), "Editor", "1");
    m.import_package(&manifest, &ImportOptions::default())
        .unwrap();
    m.grant("staff", "Editor").unwrap();

    // The streaming listener first (answers name its port), gated by the
    // handler.
    let rtsp_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rtsp_port = rtsp_listener.local_addr().unwrap().port();
    drop(rtsp_listener);
    let handler = Arc::new(ManageServer::new(
        Arc::clone(&m),
        ServerOptions {
            rtsp: Some(("rtsp".into(), rtsp_port)),
            ..ServerOptions::default()
        },
    ));
    let rtsp = sft::serve::rtsp::Server::bind(
        ("127.0.0.1", rtsp_port),
        sft::serve::rtsp::ServerConfig::new(&content)
            .gate(Arc::clone(&handler) as Arc<dyn sft::serve::Gate>),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let http = Server::bind("127.0.0.1:0", ServerConfig::new(&content).handler(handler)).unwrap();
    let url = format!("http://{}", http.local_addr());
    let http = http.spawn().unwrap();

    let a = call(
        "GET",
        &format!("{url}/publishing"),
        Auth::Basic("alice", "alice-pw"),
        &[],
        None,
    );
    let pkg = PublishingAnswer::parse(&a.body).unwrap().packages.remove(0);
    assert!(
        pkg.package_url
            .starts_with(&format!("rtsp://127.0.0.1:{rtsp_port}/")),
        "{}",
        pkg.package_url
    );
    let token = |u: &str, p: &str| {
        let t = call(
            "POST",
            &format!("{url}/token"),
            Auth::Basic(u, p),
            &[],
            Some(b""),
        );
        serde_json::from_slice::<serde_json::Value>(&t.body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let alice = token("alice", "alice-pw");
    let bob = token("bob", "bob-pw");

    let src = RtspSource::open(
        &pkg.package_url,
        &RtspOptions::default().bearer_token(&alice),
    )
    .unwrap();
    let len = src.len().unwrap();
    let mut got = vec![0u8; usize::try_from(len).unwrap()];
    src.read_exact_at(0, &mut got).unwrap();
    assert_eq!(
        got,
        std::fs::read(manifest.with_file_name("Editor.sft")).unwrap(),
        "the SFT over RTSP, byte for byte"
    );

    let e =
        RtspSource::open(&pkg.package_url, &RtspOptions::default().bearer_token(&bob)).unwrap_err();
    assert_eq!(e.kind(), sft::stream::TransportErrorKind::NotFound, "{e}");
    let e = RtspSource::open(&pkg.package_url, &RtspOptions::default()).unwrap_err();
    assert_eq!(
        e.kind(),
        sft::stream::TransportErrorKind::Authentication,
        "{e}"
    );

    // The client store streams it over RTSP with the server's token.
    let store = Store::open(tmp.path().join("store")).unwrap();
    store.add_server("hq", &url, Some("alice"), true).unwrap();
    store.set_server_token("hq", &alice).unwrap();
    assert_eq!(
        store
            .refresh_server("hq", &HttpOptions::default())
            .unwrap()
            .added,
        ["Editor"]
    );
    store
        .load_package("Editor", sft::client::LoadOptions::default())
        .unwrap();
    assert!(store.cache_state("Editor").unwrap().complete);
    http.shutdown().unwrap();
    rtsp.shutdown().unwrap();
}

/// The whole round trip through the command line: `sft manage serve` as
/// a process, a `.sftb` imported, `sft client add-server`,
/// `refresh-server`, `query servers`, `run` (a licence, then a report),
/// and the report in `sft manage report usage --json`.
#[test]
fn cli_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", tmp.path().join("m.db").display());
    let content = tmp.path().join("content");
    let prefix = [
        "manage",
        "--db",
        &db,
        "--content",
        content.to_str().unwrap(),
    ];
    let manage = |args: &[&str], stdin: &str| {
        let o = sft_with(&prefix, args, stdin);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    manage(&["user", "add", "alice", "--password-stdin"], "pw\n");
    manage(&["group", "add", "staff"], "");
    manage(&["group", "add-member", "staff", "alice"], "");
    // A stand-alone bundle: the manifest, OSD, icon and SFT in one file.
    let manifest = pack(&tmp.path().join("pub"), "Editor", "1");
    let sftb = tmp.path().join("Editor.sftb");
    let out = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args([
            "bundle",
            "--manifest",
            manifest.to_str().unwrap(),
            "--with-sft",
            "-o",
            sftb.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(manage(&["package", "import", sftb.to_str().unwrap()], "").contains("imported Editor"));
    manage(&["grant", "staff", "Editor"], "");

    let (mut server, url) = start_manage(&db, &content);

    let store = tmp.path().join("store");
    let store_prefix = ["client", "--store", store.to_str().unwrap()];
    let client = |args: &[&str], stdin: &str| sft_with(&store_prefix, args, stdin);
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let wrong = client(
        &[
            "add-server",
            "hq",
            "--url",
            &url,
            "--user",
            "alice",
            "--password-stdin",
        ],
        "nope\n",
    );
    assert_eq!(wrong.status.code(), Some(1), "a wrong password is an error");
    assert!(!String::from_utf8_lossy(&wrong.stderr).contains("nope"));
    ok(client(
        &[
            "add-server",
            "hq",
            "--url",
            &url,
            "--user",
            "alice",
            "--password-stdin",
        ],
        "pw\n",
    ));
    assert!(ok(client(&["refresh-server", "hq"], "")).contains("added Editor"));
    let servers: serde_json::Value =
        serde_json::from_str(&ok(client(&["query", "servers", "--json"], ""))).unwrap();
    assert_eq!(servers[0]["name"], "hq");
    assert_eq!(servers[0]["logged_in"], true);
    assert_eq!(servers[0]["packages"][0], "Editor");
    assert!(
        !serde_json::to_string(&servers).unwrap().contains("sft_"),
        "no token in output"
    );
    ok(client(&["run", "Editor", "--no-mount", "--", "true"], ""));
    let usage: serde_json::Value =
        serde_json::from_str(&manage(&["report", "usage", "--json"], "")).unwrap();
    assert_eq!(usage[0]["user"], "alice");
    assert_eq!(usage[0]["app"], "Editor App");
    assert!(usage[0]["shutdown_ms"].as_i64().unwrap() >= usage[0]["launched_ms"].as_i64().unwrap());
    // A revoked grant: the next refresh removes the package.
    manage(&["revoke", "staff", "Editor"], "");
    assert!(ok(client(&["refresh-server", "hq"], "")).contains("removed Editor"));
    let _ = server.kill();
    let _ = server.wait();
    // The server is gone: a refresh fails and changes nothing.
    let down = client(&["refresh-server", "hq"], "");
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("nothing changed"));
}
