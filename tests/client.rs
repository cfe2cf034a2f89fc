//! The client package store (`sft::client`, `sft client`): every verb end
//! to end against packages served by the built-in HTTP server and from
//! files, LRU eviction with locked and in-use packages, kill -9 during a
//! load and during a records update, concurrent commands, bad input that
//! changes nothing, bundle installs, and a records round trip.
#![cfg(all(feature = "client", feature = "http-server", feature = "cli"))]

mod common;
#[path = "client/msi.rs"]
mod msi;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;
use sft::StoreProblem;
use sft::client::{
    AppRecord, AutoLoad, AutoLoadTarget, LoadOptions, PackageOptions, PackageRecord, Records,
    Settings, Store,
};
use sft::serve::http::{Server, ServerConfig, ServerHandle};

use common::noise64;

const SFT: &str = env!("CARGO_BIN_EXE_sft");

/// `sft client --store STORE`, for more arguments.
fn client_cmd(store: &Path) -> Command {
    let mut cmd = Command::new(SFT);
    cmd.args(["client", "--store"]).arg(store);
    cmd
}

/// Run `sft client --store STORE ARGS`.
fn client(store: &Path, args: &[&str]) -> Output {
    client_cmd(store)
        .args(args)
        .env_remove(sft::client::TEST_PAUSE_ENV)
        .output()
        .unwrap()
}

/// Run `sft client --store STORE VERB NAME --manifest MANIFEST`.
fn with_manifest(store: &Path, verb: &str, name: &str, manifest: &Path) -> Output {
    client(
        store,
        &[verb, name, "--manifest", manifest.to_str().unwrap()],
    )
}

/// Run `sft bundle --manifest MANIFEST EXTRA… -o OUT`, which must
/// succeed.
fn bundle(manifest: &Path, extra: &[&str], out: &Path) {
    ok(Command::new(SFT)
        .args(["bundle", "--manifest"])
        .arg(manifest)
        .args(extra)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap());
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure, got stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A packed and published package.
struct Pkg {
    name: String,
    sft: PathBuf,
    manifest: PathBuf,
    guid: String,
}

/// Pack a tree with `big` bytes of noise plus the sample app's launch
/// list into `dir/NAME.sft`, publishing into `dir` (OSD, manifest, icon);
/// `href`: the CODEBASE/PACKAGE HREF (a value ending in `/` gets the file
/// name).
fn make_pkg(dir: &Path, name: &str, big: usize, href: Option<&str>) -> Pkg {
    make_pkg_with(dir, name, big, href, &[])
}

/// [`make_pkg`] with more `sft pack` arguments (`--version 2`, say).
fn make_pkg_with(dir: &Path, name: &str, big: usize, href: Option<&str>, extra: &[&str]) -> Pkg {
    let tree = dir.join(format!("{name}-tree"));
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(
        tree.join("bin/app.exe"),
        noise64(40_000, name.len() as u64 + 1),
    )
    .unwrap();
    std::fs::write(tree.join("data.bin"), noise64(big, 99 + name.len() as u64)).unwrap();
    let list = dir.join(format!("{name}.launch"));
    std::fs::write(&list, "bin/app.exe\n").unwrap();
    let icon = dir.join(format!("{name}.ico"));
    std::fs::write(&icon, sft::publish::tiny_icon()).unwrap();
    let sft_path = dir.join(format!("{name}.sft"));
    let mut cmd = Command::new(SFT);
    cmd.arg("pack")
        .arg(&tree)
        .arg("-o")
        .arg(&sft_path)
        .args(["--name", name, "--compression", "none", "--launch-list"])
        .arg(&list)
        .arg("--publish")
        .arg(dir)
        .arg("--app")
        .arg(format!("{name} App=bin/app.exe,{}", icon.display()));
    if let Some(h) = href {
        cmd.args(["--href", h]);
    }
    cmd.args(extra);
    ok(cmd.output().unwrap());
    let manifest = dir.join(format!("{name}_manifest.xml"));
    let m = sft::publish::Manifest::parse(&std::fs::read(&manifest).unwrap()).unwrap();
    Pkg {
        name: name.to_owned(),
        sft: sft_path,
        manifest,
        guid: m.package.unwrap().guid.unwrap(),
    }
}

fn serve(root: &Path) -> (ServerHandle, String) {
    let h = Server::bind("127.0.0.1:0", ServerConfig::new(root))
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("http://{}", h.local_addr());
    (h, url)
}

fn query(store: &Path) -> Vec<Value> {
    let out = ok(client(store, &["query", "packages", "--json"]));
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn pkg_json(store: &Path, name: &str) -> Value {
    query(store)
        .into_iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the query"))
}

/// Every file under `dir` with its bytes (lock files included; they are
/// empty).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.insert(p.clone(), Vec::new());
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_verb_end_to_end_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let (server, url) = serve(&content);
    let p = make_pkg(&content, "Editor", 600_000, Some(&format!("{url}/")));
    let store = dir.path().join("store");
    let m = p.manifest.to_str().unwrap();

    let out = ok(client(
        &store,
        &[
            "add-package",
            "Editor",
            "--manifest",
            m,
            "--autoload",
            "launch",
            "login",
            "--autoload-target",
            "all",
        ],
    ));
    assert!(out.contains("added package Editor"), "{out}");
    // A second add updates the configuration.
    let out = ok(client(
        &store,
        &[
            "add-package",
            "Editor",
            "--manifest",
            m,
            "--autoload",
            "refresh",
        ],
    ));
    assert!(out.contains("updated package Editor"), "{out}");
    let q = pkg_json(&store, "Editor");
    assert_eq!(q["guid"], p.guid.as_str());
    assert_eq!(q["autoload"], serde_json::json!(["refresh"]));
    assert_eq!(q["autoload_target"], "all");
    assert_eq!(q["published"], false);
    assert_eq!(q["cached_size"], 0);
    assert_eq!(q["source"], format!("{url}/Editor.sft"));

    ok(client(
        &store,
        &["publish-package", "Editor", "--manifest", m],
    ));
    let apps: Value =
        serde_json::from_str(&ok(client(&store, &["query", "apps", "--json"]))).unwrap();
    let app = &apps[0];
    assert_eq!(app["name"], "Editor App");
    assert_eq!(app["published"], true);
    assert_eq!(app["launch_ready"], false);
    let osd = PathBuf::from(app["osd"].as_str().unwrap());
    assert!(osd.starts_with(&store), "{osd:?}");
    sft::publish::Osd::parse(&std::fs::read(&osd).unwrap()).unwrap();
    let icon = PathBuf::from(app["icon"].as_str().unwrap());
    assert_eq!(std::fs::read(&icon).unwrap(), sft::publish::tiny_icon());
    assert_eq!(app["shortcuts"][0]["display"], "Editor App");

    // FB1 only, then the rest: sizes from the streaming core's cache.
    ok(client(&store, &["load-package", "Editor", "--launch-only"]));
    let q = pkg_json(&store, "Editor");
    let total = std::fs::metadata(&p.sft).unwrap().len();
    assert_eq!(q["total_size"], total);
    assert_eq!(q["launch_size"], q["cached_launch_size"]);
    assert!(q["cached_size"].as_u64().unwrap() < total);
    assert!(q["cached_percent"].as_u64().unwrap() < 100);
    assert_eq!(q["loaded"], false);
    let out = ok(client(&store, &["load-package", "Editor"]));
    assert!(out.contains("100% cached"), "{out}");
    assert!(out.contains("resumed"), "{out}");
    let q = pkg_json(&store, "Editor");
    assert_eq!(q["cached_percent"], 100);
    assert_eq!(q["cached_size"], total);
    assert_eq!(q["loaded"], true);
    let stored = store.join("packages").join(&p.guid);
    let sft_file = std::fs::read_dir(&stored)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "sft"))
        .unwrap();
    assert_eq!(
        std::fs::read(&sft_file).unwrap(),
        std::fs::read(&p.sft).unwrap()
    );

    // Lock: unload and delete refuse; unlock: unload keeps the records.
    ok(client(&store, &["lock", "Editor"]));
    assert_eq!(pkg_json(&store, "Editor")["locked"], true);
    let e = fails(client(&store, &["unload-package", "Editor"]));
    assert!(
        e.contains("locked") && e.contains("sft client unlock Editor"),
        "{e}"
    );
    let e = fails(client(&store, &["delete-package", "Editor"]));
    assert!(e.contains("locked"), "{e}");
    ok(client(&store, &["unlock", "Editor"]));
    ok(client(&store, &["unload-package", "Editor"]));
    let q = pkg_json(&store, "Editor");
    assert_eq!(q["cached_size"], 0);
    assert_eq!(q["published"], true);
    assert!(!sft_file.exists());

    // configure-package --override-url: the next load comes from there
    // (a file source), by name or GUID.
    let copy = dir.path().join("elsewhere.sft");
    std::fs::copy(&p.sft, &copy).unwrap();
    ok(client(
        &store,
        &[
            "configure-package",
            &p.guid,
            "--override-url",
            copy.to_str().unwrap(),
        ],
    ));
    let out = ok(client(&store, &["load-package", "editor"]));
    assert!(out.contains(copy.to_str().unwrap()), "{out}");
    assert_eq!(pkg_json(&store, "Editor")["source"], copy.to_str().unwrap());
    assert_eq!(
        pkg_json(&store, "Editor")["override_url"],
        copy.to_str().unwrap()
    );

    // Unpublish, then delete: data, folder and records go.
    let out = ok(client(&store, &["unpublish-package", "Editor"]));
    assert!(out.contains("unpublished"), "{out}");
    assert_eq!(pkg_json(&store, "Editor")["published"], false);
    ok(client(&store, &["delete-package", "Editor"]));
    assert!(query(&store).is_empty());
    assert!(!stored.exists());
    let e = fails(client(&store, &["load-package", "Editor"]));
    assert!(
        e.contains("not in the store") && e.contains("add-package"),
        "{e}"
    );
    server.shutdown().unwrap();
}

#[test]
fn load_from_sft_path_and_store_source_root() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pkg(
        dir.path(),
        "Calc",
        100_000,
        Some("rtsp://nowhere.invalid:554/apps/"),
    );
    let store = dir.path().join("store");
    ok(with_manifest(&store, "add-package", "Calc", &p.manifest));
    // The HREF is an unreachable RTSP server: --sft-path wins over it.
    let out = ok(client(
        &store,
        &[
            "load-package",
            "Calc",
            "--sft-path",
            p.sft.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("100% cached"), "{out}");
    ok(client(&store, &["unload-package", "Calc"]));
    // ApplicationSourceRoot rewrites the HREF's server: served over HTTP.
    let content = dir.path().join("content");
    std::fs::create_dir_all(content.join("apps")).unwrap();
    std::fs::copy(&p.sft, content.join("apps/Calc.sft")).unwrap();
    let (server, url) = serve(&content);
    let out = ok(client(
        &store,
        &["configure-store", "--app-source-root", &url],
    ));
    assert!(out.contains(&url), "{out}");
    let out = ok(client(&store, &["load-package", "Calc"]));
    assert!(out.contains(&format!("{url}/apps/Calc.sft")), "{out}");
    assert_eq!(pkg_json(&store, "Calc")["cached_percent"], 100);
    server.shutdown().unwrap();
}

#[test]
fn load_from_an_empty_or_broken_sft_path_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pkg(dir.path(), "Calc", 100_000, None);
    let store = dir.path().join("store");
    ok(with_manifest(&store, "add-package", "Calc", &p.manifest));
    let good = std::fs::read(&p.sft).unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(content.join("sub.sft")).unwrap();
    let cases: [(&str, &[u8]); 3] = [
        ("empty.sft", b""),
        ("short.sft", &good[..good.len() / 2]),
        ("junk.sft", &[0x5a; 4096]),
    ];
    for (name, bytes) in cases {
        std::fs::write(content.join(name), bytes).unwrap();
    }
    let (server, url) = serve(&content);
    // The records and any package data (lock files and folders aside).
    let data = |store: &Path| {
        let mut s = snapshot(store);
        s.retain(|p, _| p.is_file() && p.extension().is_none_or(|e| e != "lock"));
        s
    };
    let before = data(&store);
    let mut sources: Vec<(String, &str)> = Vec::new();
    for (name, _) in cases {
        sources.push((content.join(name).display().to_string(), name));
        sources.push((format!("{url}/{name}"), name));
    }
    sources.push((content.join("sub.sft").display().to_string(), "sub.sft"));
    for (src, name) in &sources {
        for extra in [&[][..], &["--launch-only"][..]] {
            let mut args = vec!["load-package", "Calc", "--sft-path", src.as_str()];
            args.extend(extra);
            let out = client(&store, &args);
            let err = fails(out);
            assert_eq!(err.matches(*name).count(), 1, "{src}: {err}");
            assert!(!err.contains("cached"), "{src}: {err}");
            assert!(data(&store) == before, "{src}: the store changed");
        }
    }
    assert!(
        pkg_json(&store, "Calc")["source"]
            .as_str()
            .is_none_or(|s| !s.contains("content"))
    );
    server.shutdown().unwrap();
}

/// A password and presigned-URL parameters planted in every source kind
/// never reach any output: stdout and stderr of failing and succeeding
/// commands, `--json`, the server's access log, the store's records as
/// `query` shows them.
#[test]
fn a_planted_secret_never_reaches_any_output() {
    const SECRET: &str = "S3cr3tPlanted";
    let dir = tempfile::tempdir().unwrap();
    let p = make_pkg(dir.path(), "Calc", 100_000, None);
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::copy(&p.sft, content.join("Calc.sft")).unwrap();
    let log = dir.path().join("access.log");
    let mut serve = Command::new(SFT)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--rtsp",
            "127.0.0.1:0",
            "--content",
        ])
        .arg(&content)
        .arg("--access-log")
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let mut base = |scheme: &str| {
        let l = lines.next().unwrap().unwrap();
        l.strip_prefix(&format!("listening on {scheme}://"))
            .unwrap_or_else(|| panic!("{l}"))
            .to_owned()
    };
    let http = base("http");
    let rtsp = base("rtsp");
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA{SECRET}&X-Amz-Security-Token=tok{SECRET}&X-Amz-Signature=sig{SECRET}&sig={SECRET}&signature={SECRET}&token={SECRET}"
    );
    let specs = [
        // Served: succeed.
        format!("http://user:{SECRET}@{http}/Calc.sft?{query}"),
        format!("rtsp://user:{SECRET}@{rtsp}/Calc.sft"),
        // Missing: fail.
        format!("http://user:{SECRET}@{http}/nope.sft?{query}"),
        format!("rtsp://user:{SECRET}@{rtsp}/nope.sft?{query}"),
        format!("https://user:{SECRET}@127.0.0.1:1/x.sft?{query}"),
        format!("file://user:{SECRET}@elsewhere/x.sft"),
        format!("smb://DOM;user:{SECRET}@127.0.0.1:1/share/x.sft"),
        format!("gopher://user:{SECRET}@h/x.sft?{query}"),
    ];
    let mut seen = String::new();
    let mut record = |o: &Output| {
        seen.push_str(&String::from_utf8_lossy(&o.stdout));
        seen.push_str(&String::from_utf8_lossy(&o.stderr));
        o.status.success()
    };
    let store = dir.path().join("store");
    ok(with_manifest(&store, "add-package", "Calc", &p.manifest));
    let mut successes = 0;
    for (i, spec) in specs.iter().enumerate() {
        let out = dir.path().join(format!("out{i}.sft"));
        let mut runs = vec![
            // No retry window: the refused ones fail at once.
            Command::new(SFT)
                .args(["fetch", "--retry-for", "0", spec, "-o"])
                .arg(&out)
                .output()
                .unwrap(),
            Command::new(SFT).args(["info", spec]).output().unwrap(),
            Command::new(SFT)
                .args(["info", "--json", spec])
                .output()
                .unwrap(),
            Command::new(SFT).args(["ls", spec]).output().unwrap(),
            Command::new(SFT)
                .args(["verify", "--retry-for", "0", spec])
                .output()
                .unwrap(),
            client(&store, &["unload-package", "Calc"]),
            client(
                &store,
                &[
                    "load-package",
                    "Calc",
                    "--retry-for",
                    "0",
                    "--sft-path",
                    spec,
                ],
            ),
        ];
        runs.push(client(&store, &["query", "packages"]));
        runs.push(client(&store, &["query", "packages", "--json"]));
        let ok: Vec<bool> = runs.iter().map(&mut record).collect();
        if i < 2 {
            // The served ones succeed (so success output is checked too):
            // fetch, info, ls, verify, load.
            assert!(ok.iter().all(|&o| o), "{spec}: {ok:?}");
            successes += 1;
        } else {
            assert!(!ok[0] && !ok[6], "{spec}: {ok:?}");
        }
    }
    assert_eq!(successes, 2);
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
    let mut server_err = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut server_err).unwrap();
    seen.push_str(&server_err);
    let access = std::fs::read_to_string(&log).unwrap();
    assert!(access.contains("GET /Calc.sft"), "{access}");
    seen.push_str(&access);
    for needle in [SECRET, "user:"] {
        assert!(!seen.contains(needle), "`{needle}` leaked:\n{seen}");
    }
    assert!(seen.contains("***@"), "{seen}");
}

#[test]
fn per_user_and_global_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pkg(dir.path(), "Viewer", 10_000, None);
    let store_dir = dir.path().join("store");
    let alice = Store::open(&store_dir).unwrap().with_user("alice");
    let bob = Store::open(&store_dir).unwrap().with_user("bob");
    // Publishing needs an add first.
    let e = alice
        .publish_package("Viewer", &p.manifest, false)
        .unwrap_err();
    assert_eq!(e.store_problem(), Some(StoreProblem::State));
    alice
        .add_package("Viewer", &p.manifest, &PackageOptions::default())
        .unwrap();
    alice.publish_package("Viewer", &p.manifest, false).unwrap();
    assert!(alice.query_packages().unwrap()[0].published);
    assert!(!bob.query_packages().unwrap()[0].published);
    bob.publish_package("Viewer", &p.manifest, true).unwrap();
    assert!(bob.query_packages().unwrap()[0].published);
    assert!(alice.unpublish_package("Viewer", false).unwrap());
    assert!(alice.query_packages().unwrap()[0].published, "still global");
    assert!(bob.unpublish_package("Viewer", true).unwrap());
    assert!(!alice.query_packages().unwrap()[0].published);
    assert!(!bob.unpublish_package("Viewer", true).unwrap());
    // A second name for the same package GUID is refused.
    let e = bob
        .add_package("Viewer2", &p.manifest, &PackageOptions::default())
        .unwrap_err();
    assert_eq!(e.store_problem(), Some(StoreProblem::Exists));
    assert!(e.to_string().contains("as `Viewer`"), "{e}");
}

#[test]
fn lru_eviction_skips_locked_and_in_use_packages() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let pkgs: Vec<Pkg> = ["A", "B", "C", "D"]
        .iter()
        .map(|n| make_pkg(dir.path(), n, 200_000, None))
        .collect();
    let size = pkgs
        .iter()
        .map(|p| std::fs::metadata(&p.sft).unwrap().len())
        .max()
        .unwrap();
    for p in &pkgs {
        store
            .add_package(&p.name, &p.manifest, &PackageOptions::default())
            .unwrap();
    }
    // Room for three (and locking three would pass 90%).
    store
        .configure_store(Some(Some(size * 3 + size / 5)), None)
        .unwrap();
    for n in ["A", "B", "C"] {
        let r = store.load_package(n, LoadOptions::default()).unwrap();
        assert!(r.evicted.is_empty());
    }
    store.lock_package("A").unwrap(); // oldest, but locked
    let in_use = store.use_package("B").unwrap(); // in use (and now most recent)
    // C is older than B now, A is locked: D evicts C.
    let r = store.load_package("D", LoadOptions::default()).unwrap();
    assert_eq!(r.evicted, ["C"]);
    let pct = |n: &str| {
        store
            .query_packages()
            .unwrap()
            .into_iter()
            .find(|p| p.name == n)
            .unwrap()
    };
    assert_eq!(pct("A").cached_percent, 100);
    assert!(pct("B").in_use);
    assert_eq!(pct("C").cached_size, 0);
    assert_eq!(pct("D").cached_percent, 100);

    // Now nothing can be evicted for C: A and D locked, B in use.
    store.lock_package("D").unwrap();
    let before = snapshot(&store_dir);
    let e = store.load_package("C", LoadOptions::default()).unwrap_err();
    assert_eq!(e.store_problem(), Some(StoreProblem::Full), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("locked: A, D"), "{msg}");
    assert!(msg.contains("in use: B"), "{msg}");
    assert!(
        msg.contains(&format!(
            "needs {}",
            std::fs::metadata(&pkgs[2].sft).unwrap().len()
        )),
        "{msg}"
    );
    // Nothing was unloaded by the failed attempt (the package folder of C
    // and its load lock may be created; the data of the others stays).
    for n in ["A", "B", "D"] {
        assert_eq!(pct(n).cached_percent, 100, "{n}");
    }
    let after = snapshot(&store_dir);
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k:?} changed");
    }
    // Unload and delete refuse a package in use; once released, they work.
    assert_eq!(
        store.unload_package("B").unwrap_err().store_problem(),
        Some(StoreProblem::InUse)
    );
    assert_eq!(
        store.delete_package("B").unwrap_err().store_problem(),
        Some(StoreProblem::InUse)
    );
    drop(in_use);
    let r = store.load_package("C", LoadOptions::default()).unwrap();
    assert_eq!(r.evicted, ["B"]);
    // Locking past 90% of the limit is refused.
    let e = store.lock_package("C").unwrap_err();
    assert_eq!(e.store_problem(), Some(StoreProblem::Full), "{e}");
    assert!(e.to_string().contains("90%"), "{e}");
}

#[test]
fn in_use_by_another_process_blocks_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let a = make_pkg(dir.path(), "Alpha", 200_000, None);
    let b = make_pkg(dir.path(), "Beta", 200_000, None);
    let size = std::fs::metadata(&a.sft)
        .unwrap()
        .len()
        .max(std::fs::metadata(&b.sft).unwrap().len());
    for p in [&a, &b] {
        ok(client(
            &store,
            &[
                "add-package",
                &p.name,
                "--manifest",
                p.manifest.to_str().unwrap(),
                "--autoload",
                "never",
            ],
        ));
    }
    ok(client(
        &store,
        &[
            "configure-store",
            "--cache-limit",
            &(size + size / 2).to_string(),
        ],
    ));
    // `run` loads FB1, holds the package in use while the command runs.
    let mut child = client_cmd(&store)
        .args(["run", "Alpha", "--", "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("Alpha in use and launch-ready", || {
        let q = pkg_json(&store, "Alpha");
        q["in_use"] == true
            && q["launch_size"].is_u64()
            && q["launch_size"] == q["cached_launch_size"]
    });
    let q = pkg_json(&store, "Alpha");
    assert_eq!(q["launch_size"], q["cached_launch_size"]);
    assert_eq!(q["loaded"], false, "autoload never: FB1 only");
    let e = fails(client(&store, &["load-package", "Beta"]));
    assert!(
        e.contains("cache full") && e.contains("in use: Alpha"),
        "{e}"
    );
    let e = fails(client(&store, &["unload-package", "Alpha"]));
    assert!(e.contains("in use"), "{e}");
    kill9(&mut child);
    // The lock died with the process: Alpha is evicted for Beta.
    assert_eq!(pkg_json(&store, "Alpha")["in_use"], false);
    let out = ok(client(&store, &["load-package", "Beta"]));
    assert!(out.contains("unloaded Alpha to make room"), "{out}");
    // `run` passes the command's exit status on.
    let out = client(
        &store,
        &[
            "run",
            "Beta",
            "--",
            "sh",
            "-c",
            "test -f \"$SFT_CLIENT_PACKAGE\" && exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7));
    // The killed `run` may have left its mount stale (built with `mount`):
    // deleting the package clears it and removes the folder.
    let mnt = pkg_dir(&store, "Alpha").join("mnt");
    ok(client(&store, &["delete-package", "Alpha"]));
    assert!(!mnt.exists() && !is_mounted(&mnt));
}

/// The folder of package `name` in the store.
fn pkg_dir(store: &Path, name: &str) -> PathBuf {
    let guid = pkg_json(store, name)["guid"].as_str().unwrap().to_owned();
    store.join("packages").join(guid)
}

/// Whether `dir` is in the mount table.
fn is_mounted(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == dir.to_str())
}

/// Whether this process may mount FUSE file systems (skips loudly; a
/// failure under `SFT_REQUIRE_SERVERS=1`).
fn can_mount() -> bool {
    let ok = cfg!(feature = "mount")
        && Path::new("/dev/fuse").exists()
        && std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        });
    if !ok {
        assert!(
            std::env::var("SFT_REQUIRE_SERVERS").as_deref() != Ok("1") || !cfg!(feature = "mount"),
            "FUSE is required (SFT_REQUIRE_SERVERS=1): no /dev/fuse or not root"
        );
        eprintln!("SKIPPED: client mount tests need the mount feature, /dev/fuse and root");
    }
    ok
}

/// `client run` on a mount: FB1 loaded first, CMD runs in the package's
/// mount under the store (`SFT_MOUNT`, the working directory) and reads
/// its files as they stream; a second `run` while the first runs uses the
/// same mount; the first unmounts only once the second has ended. `client
/// mount`/`unmount` for long-lived use hold the package in use.
#[test]
fn run_and_mount_serve_the_package_from_a_mount() {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let (server, url) = serve(&content);
    let p = make_pkg(&content, "Gamma", 3 << 20, Some(&format!("{url}/")));
    let store = dir.path().join("store");
    ok(with_manifest(&store, "add-package", "Gamma", &p.manifest));
    ok(client(
        &store,
        &["configure-package", "Gamma", "--autoload", "never"],
    ));
    let bytes = std::fs::read(&p.sft).unwrap();
    let local = sft::Package::parse(&bytes).unwrap();
    let big = local
        .entries()
        .map(|e| e.unwrap())
        .filter(|e| !e.is_dir())
        .max_by_key(|e| e.size())
        .unwrap();
    let (big_path, big_size) = (big.path().to_owned(), big.size());
    // The first `run` holds the mount (a FIFO keeps it running); a second
    // runs on the same mount meanwhile.
    let fifo = dir.path().join("go");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let first = client_cmd(&store)
        .args(["run", "Gamma", "--", "sh", "-c"])
        .arg(format!(
            "pwd > {0}/pwd; echo \"$SFT_MOUNT\" > {0}/env; cat {1} > /dev/null",
            dir.path().display(),
            fifo.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mnt = pkg_dir(&store, "Gamma").join("mnt");
    wait_until("the first run's mount", || {
        is_mounted(&mnt) && dir.path().join("env").exists()
    });
    let out = ok(client(
        &store,
        &[
            "run",
            "Gamma",
            "--",
            "sh",
            "-c",
            &format!("cat '{big_path}' | wc -c"),
        ],
    ));
    assert_eq!(out.trim(), big_size.to_string());
    std::fs::write(&fifo, b"go\n").unwrap();
    let done = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    let pwd = std::fs::read_to_string(dir.path().join("pwd")).unwrap();
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    assert_eq!(pwd.trim(), mnt.to_str().unwrap());
    assert_eq!(env.trim(), mnt.to_str().unwrap());
    assert!(!is_mounted(&mnt), "still mounted after the last command");
    // The blocks the commands read stayed in the store's cache.
    let q = pkg_json(&store, "Gamma");
    assert!(q["cached_size"].as_u64().unwrap() >= big_size / 2, "{q}");
    // `client mount` for long-lived use: in use while mounted.
    let long = dir.path().join("long");
    std::fs::create_dir(&long).unwrap();
    let mut child = client_cmd(&store)
        .args(["mount", "Gamma"])
        .arg(&long)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("client mount", || is_mounted(&long));
    assert_eq!(pkg_json(&store, "Gamma")["in_use"], true);
    assert_eq!(
        std::fs::read(long.join(&big_path)).unwrap(),
        local.read_file(&local.entry(&big_path).unwrap()).unwrap()
    );
    let e = fails(client(&store, &["unload-package", "Gamma"]));
    assert!(e.contains("Gamma"), "{e}");
    ok(client(&store, &["unmount", long.to_str().unwrap()]));
    assert!(child.wait().unwrap().success());
    assert!(!is_mounted(&long));
    assert_eq!(pkg_json(&store, "Gamma")["in_use"], false);
    drop(server);
}

#[test]
fn kill_during_load_then_resume_fetches_only_missing_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let (server, url) = serve(&content);
    let p = make_pkg(&content, "Big", 6 << 20, Some(&format!("{url}/")));
    let total = std::fs::metadata(&p.sft).unwrap().len();
    let store = dir.path().join("store");
    ok(with_manifest(&store, "add-package", "Big", &p.manifest));
    let mut child = client_cmd(&store)
        .args(["load-package", "Big", "--limit-rate", "1M"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some blocks are durable (a bitmap checkpoint), then kill.
    wait_until("a checkpoint", || {
        pkg_json(&store, "Big")["cached_size"].as_u64().unwrap() > 1 << 20
    });
    kill9(&mut child);
    let q = pkg_json(&store, "Big");
    let cached = q["cached_size"].as_u64().unwrap();
    assert!(cached > 0 && cached < total, "{q}");
    assert_eq!(q["loaded"], false);
    assert_eq!(q["loading"], false);
    assert!(q["cached_percent"].as_u64().unwrap() < 100);
    let out = ok(client(&store, &["load-package", "Big"]));
    // "fetched N bytes (B blocks), resumed R blocks (X bytes)"
    let num_after = |key: &str| -> u64 {
        let i = out.find(key).unwrap_or_else(|| panic!("{key} in {out}")) + key.len();
        out[i..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_matches('(')
            .parse()
            .unwrap()
    };
    let fetched = num_after("fetched ");
    let resumed_blocks = num_after("resumed ");
    assert!(resumed_blocks > 0, "{out}");
    assert!(fetched < total, "fetched {fetched} of {total}: {out}");
    assert!(
        fetched + cached >= total - 4096,
        "fetched {fetched} + cached {cached} < {total}"
    );
    let q = pkg_json(&store, "Big");
    assert_eq!(q["cached_percent"], 100);
    let stored = store.join("packages").join(&p.guid);
    let file = std::fs::read_dir(&stored)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "sft"))
        .unwrap();
    assert_eq!(std::fs::read(file).unwrap(), std::fs::read(&p.sft).unwrap());
    server.shutdown().unwrap();
}

#[test]
fn kill_during_records_update_keeps_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let a = make_pkg(dir.path(), "One", 1000, None);
    let b = make_pkg(dir.path(), "Two", 1000, None);
    ok(with_manifest(&store, "add-package", "One", &a.manifest));
    let before = std::fs::read(store.join("records.json")).unwrap();
    let mut child = client_cmd(&store)
        .args([
            "add-package",
            "Two",
            "--manifest",
            b.manifest.to_str().unwrap(),
        ])
        .env(sft::client::TEST_PAUSE_ENV, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("test pause before rename"), "{line}");
    // The new records are written and synced, not yet renamed: kill.
    let temps: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".records.json.tmp-")
        })
        .collect();
    assert_eq!(temps.len(), 1);
    kill9(&mut child);
    assert_eq!(std::fs::read(store.join("records.json")).unwrap(), before);
    let names: Vec<Value> = query(&store).iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, ["One"]);
    // The lock died with the writer; the next update works and sweeps the
    // stray temporary file.
    ok(with_manifest(&store, "add-package", "Two", &b.manifest));
    let names: Vec<Value> = query(&store).iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, ["One", "Two"]);
    assert!(!temps[0].path().exists());
}

#[test]
fn concurrent_adds_are_all_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let n = 8;
    let pkgs: Vec<Pkg> = (0..n)
        .map(|i| make_pkg(dir.path(), &format!("P{i}"), 100, None))
        .collect();
    let children: Vec<Child> = pkgs
        .iter()
        .map(|p| {
            client_cmd(&store)
                .args([
                    "add-package",
                    &p.name,
                    "--manifest",
                    p.manifest.to_str().unwrap(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut names: Vec<String> = query(&store)
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = pkgs.iter().map(|p| p.name.clone()).collect();
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn bad_manifests_and_bundles_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let good = make_pkg(dir.path(), "Good", 1000, None);
    ok(with_manifest(&store, "add-package", "Good", &good.manifest));
    ok(with_manifest(
        &store,
        "publish-package",
        "Good",
        &good.manifest,
    ));
    let before = snapshot(&store);
    let w = |name: &str, body: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let guid = good.guid.as_str();
    let cases: Vec<(PathBuf, &str)> = vec![
        (w("broken.xml", b"<MANIFEST><APPLIST>"), "broken.xml"),
        (w("notmanifest.xml", b"<SOFTPKG/>"), "not a manifest"),
        (
            w(
                "noguid.xml",
                b"<MANIFEST><APPLIST><APP NAME='x'/></APPLIST></MANIFEST>",
            ),
            "names no package GUID",
        ),
        (
            w(
                "badguid.xml",
                b"<MANIFEST><PACKAGE GUID='nope'/></MANIFEST>",
            ),
            "not a GUID",
        ),
        (dir.path().join("missing.xml"), "missing.xml"),
    ];
    for (m, want) in &cases {
        let e = fails(with_manifest(&store, "add-package", "X", m));
        assert!(e.contains(want), "{m:?}: {e}");
        let e = fails(with_manifest(&store, "publish-package", "Good", m));
        assert!(e.contains(want), "{m:?}: {e}");
    }
    // A manifest whose OSD or icon is missing or bad fails publish.
    let osd_missing = w(
        "osdmissing.xml",
        format!("<MANIFEST><PACKAGE GUID='{guid}'/><APPLIST><APP NAME='a' OSD='%SFT_MIME_SOURCE%/gone.osd'/></APPLIST></MANIFEST>").as_bytes(),
    );
    let e = fails(with_manifest(
        &store,
        "publish-package",
        "Good",
        &osd_missing,
    ));
    assert!(e.contains("gone.osd"), "{e}");
    w("bad.ico", b"not an icon");
    let bad_icon = w(
        "badicon.xml",
        format!("<MANIFEST><PACKAGE GUID='{guid}'/><APPLIST><APP NAME='a' ICON='%SFT_MIME_SOURCE%/bad.ico'/></APPLIST></MANIFEST>").as_bytes(),
    );
    let e = fails(with_manifest(&store, "publish-package", "Good", &bad_icon));
    assert!(e.contains("bad.ico") && e.contains("icon"), "{e}");
    // A manifest of another package for an existing name.
    let other = make_pkg(dir.path(), "Other", 1000, None);
    let e = fails(with_manifest(
        &store,
        "add-package",
        "Good",
        &other.manifest,
    ));
    assert!(
        e.contains("already exists") || e.contains("delete-package"),
        "{e}"
    );
    // Bad bundles: garbage, and a real one with a flipped byte.
    let garbage = w("garbage.sftb", b"definitely not a bundle");
    let e = fails(client(&store, &["install", garbage.to_str().unwrap()]));
    assert!(e.contains("garbage.sftb"), "{e}");
    let sftb = dir.path().join("other.sftb");
    bundle(&other.manifest, &["--with-sft"], &sftb);
    let mut bytes = std::fs::read(&sftb).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let flipped = w("flipped.sftb", &bytes);
    let e = fails(client(&store, &["install", flipped.to_str().unwrap()]));
    assert!(e.contains("bundle"), "{e}");
    // A sound bundle of another package under an existing name.
    let e = fails(client(
        &store,
        &["install", sftb.to_str().unwrap(), "--name", "Good"],
    ));
    assert!(e.contains("another package") && e.contains("--name"), "{e}");
    assert_eq!(snapshot(&store), before);
}

#[test]
fn newer_or_damaged_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join("records.json"),
        br#"{"format": 2, "packages": []}"#,
    )
    .unwrap();
    let e = fails(client(&store, &["query", "packages"]));
    assert!(e.contains("newer sft"), "{e}");
    let err = Store::open(&store).unwrap_err();
    assert_eq!(err.store_problem(), Some(StoreProblem::Damaged));
    std::fs::write(
        store.join("records.json"),
        b"{\"format\": 1, \"packages\": [",
    )
    .unwrap();
    let e = fails(client(&store, &["query", "packages"]));
    assert!(e.contains("records") && e.contains("not valid"), "{e}");
}

#[test]
fn install_standalone_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pkg(dir.path(), "Solo", 300_000, Some("rtsp://nowhere.invalid/"));
    let sftb = dir.path().join("Solo.sftb");
    bundle(&p.manifest, &["--sft", p.sft.to_str().unwrap()], &sftb);
    let store = dir.path().join("store");
    let out = ok(client(&store, &["install", sftb.to_str().unwrap()]));
    assert!(out.contains("installed package Solo"), "{out}");
    let q = pkg_json(&store, "Solo");
    assert_eq!(q["cached_percent"], 100);
    assert_eq!(q["loaded"], true);
    assert_eq!(q["published"], true);
    let apps: Value =
        serde_json::from_str(&ok(client(&store, &["query", "apps", "--json"]))).unwrap();
    assert_eq!(apps[0]["launch_ready"], true);
    assert!(Path::new(apps[0]["osd"].as_str().unwrap()).exists());
    // Installing again is idempotent.
    ok(client(&store, &["install", sftb.to_str().unwrap()]));
    assert_eq!(query(&store).len(), 1);
}

#[test]
fn install_streaming_bundle_with_override_url_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let p = make_pkg(dir.path(), "Net", 300_000, Some("rtsp://nowhere.invalid/"));
    std::fs::copy(&p.sft, content.join("net.sft")).unwrap();
    let (server, url) = serve(&content);
    let sftb = dir.path().join("Net.sftb");
    bundle(&p.manifest, &[], &sftb);
    let store = dir.path().join("store");
    let over = format!("{url}/net.sft");
    let out = ok(client(
        &store,
        &[
            "install",
            sftb.to_str().unwrap(),
            "--override-url",
            &over,
            "--load",
        ],
    ));
    assert!(out.contains("installed package Net"), "{out}");
    assert!(out.contains(&over), "{out}");
    let q = pkg_json(&store, "Net");
    assert_eq!(q["cached_percent"], 100);
    assert_eq!(q["override_url"], over.as_str());
    assert_eq!(q["source"], over.as_str());
    server.shutdown().unwrap();
}

#[test]
fn fuzz_entry_point_survives_junk() {
    for s in [
        &b""[..],
        b"{}",
        b"{\"format\":1,\"packages\":[{\"name\":\"a\"}]}",
        b"{\"format\":1,\"packages\":[{\"name\":\"a\",\"guid\":\"x\",\"manifest\":\"m\"}]}",
        b"{\"format\":18446744073709551616}",
        b"[1,2,3]",
        b"\xff\xfe",
    ] {
        sft::fuzzing::client_records(s);
    }
}

fn guid_string() -> impl Strategy<Value = String> {
    any::<[u8; 16]>().prop_map(|b| sft::Guid(b).to_string())
}

fn record() -> impl Strategy<Value = PackageRecord> {
    (
        "[A-Za-z][A-Za-z0-9 ._-]{0,20}",
        guid_string(),
        proptest::option::of(guid_string()),
        proptest::option::of("[ -~]{0,12}"),
        any::<(bool, bool, bool)>(),
        proptest::option::of(any::<u64>()),
        any::<(u64, u64)>(),
        proptest::collection::vec("[a-z]{1,8}", 0..3),
        proptest::collection::vec(("[ -~]{1,10}", proptest::option::of("[a-z]{1,8}")), 0..3),
    )
        .prop_map(
            |(name, guid, vguid, version, (global, pg, locked), size, (lu, ms), users, apps)| {
                PackageRecord {
                    name,
                    guid,
                    version_guid: vguid,
                    version,
                    manifest: "/m/x_manifest.xml".into(),
                    href: Some("rtsp://srv/x.sft?a=%20b".into()),
                    mime_source: "/m".into(),
                    size,
                    content_id: None,
                    source_validator: Some("etag \"1-2\"".into()),
                    override_url: None,
                    global,
                    autoload: vec![AutoLoad::Launch, AutoLoad::Refresh],
                    autoload_target: AutoLoadTarget::All,
                    published_global: pg,
                    published_users: users,
                    locked,
                    source: Some("\u{e9}\u{1F600}\"\\".into()),
                    last_used: lu,
                    last_used_ms: ms,
                    added_ms: 1,
                    apps: apps
                        .into_iter()
                        .map(|(n, osd)| AppRecord {
                            name: n,
                            osd: osd.map(|o| format!("publish/osd/{o}.osd")),
                            ..AppRecord::default()
                        })
                        .collect(),
                }
            },
        )
}

proptest! {
    #[test]
    fn records_round_trip(
        recs in proptest::collection::vec(record(), 0..5),
        limit in proptest::option::of(any::<u64>()),
        clock in any::<u64>(),
    ) {
        // Names and GUIDs must be unique: keep the first of each.
        let mut seen_n = std::collections::HashSet::new();
        let mut seen_g = std::collections::HashSet::new();
        let packages: Vec<PackageRecord> = recs
            .into_iter()
            .filter(|r| seen_n.insert(r.name.to_lowercase()) && seen_g.insert(r.guid.clone()))
            .filter(|r| !r.name.trim().is_empty())
            .collect();
        let r = Records {
            format: sft::client::FORMAT_VERSION,
            settings: Settings {
                cache_limit: limit,
                application_source_root: None,
                trusted_keys: Vec::new(),
            },
            clock,
            packages,
        };
        let json = r.to_json().unwrap();
        prop_assert_eq!(Records::parse(&json).unwrap(), r);
        sft::fuzzing::client_records(&json);
    }

    #[test]
    fn records_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        sft::fuzzing::client_records(&bytes);
    }
}

#[test]
fn concurrent_loads_of_one_package_fetch_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = make_pkg(dir.path(), "Shared", 2 << 20, None);
    ok(with_manifest(&store, "add-package", "Shared", &p.manifest));
    let children: Vec<Child> = (0..3)
        .map(|_| {
            client_cmd(&store)
                .args(["load-package", "Shared"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<String> = children
        .into_iter()
        .map(|c| ok(c.wait_with_output().unwrap()))
        .collect();
    let fetched = outs
        .iter()
        .filter(|o| o.contains("loaded Shared: fetched"))
        .count();
    let cached = outs
        .iter()
        .filter(|o| o.contains("already cached (100%)"))
        .count();
    assert_eq!((fetched, cached), (1, 2), "{outs:?}");
    assert_eq!(pkg_json(&store, "Shared")["cached_percent"], 100);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let p = make_pkg(dir.path(), "U", 100, None);
    let m = p.manifest.to_str().unwrap();
    let out = client(
        &store,
        &[
            "add-package",
            "U",
            "--manifest",
            m,
            "--autoload",
            "never",
            "launch",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--autoload never"));
    let out = client(&store, &["configure-store", "--cache-limit", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lots"));
    let out = ok(client(
        &store,
        &["configure-store", "--cache-limit", "1.5G"],
    ));
    assert!(out.contains("1610612736 bytes"), "{out}");
    let e = fails(client(
        &store,
        &["configure-store", "--app-source-root", "gopher://x"],
    ));
    assert!(e.contains("gopher://x"), "{e}");
    // A name that is a GUID would be ambiguous.
    let e = fails(client(&store, &["add-package", &p.guid, "--manifest", m]));
    assert!(e.contains("looks like a GUID"), "{e}");
}

/// Run `sft ARGS`, which must succeed.
fn sft_ok(args: &[&str]) -> String {
    ok(Command::new(SFT).args(args).output().unwrap())
}

/// The store-wide trust policy: with a trusted key, an unsigned package
/// does not load (and nothing of it is stored); signed, it loads.
#[test]
fn trust_policy_refuses_unsigned_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, store) = (tmp.path().join("pub"), tmp.path().join("store"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = make_pkg(&dir, "Signed", 300_000, None);
    let key = tmp.path().join("k");
    sft_ok(&["keygen", "-o", key.to_str().unwrap()]);
    let public = tmp.path().join("k.pub");
    ok(client(
        &store,
        &["configure-store", "--trusted-key", public.to_str().unwrap()],
    ));
    ok(with_manifest(&store, "add-package", &p.name, &p.manifest));
    let e = fails(client(&store, &["load-package", &p.name]));
    assert!(e.contains("unsigned"), "{e}");
    assert!(
        !pkg_dir(&store, &p.name)
            .read_dir()
            .map(|mut d| d.any(|e| e.unwrap().path().extension().is_some_and(|x| x == "sft")))
            .unwrap_or(false)
    );
    sft_ok(&[
        "sign",
        p.sft.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    ok(client(&store, &["load-package", &p.name]));
    assert_eq!(pkg_json(&store, &p.name)["loaded"], true);
    // Another key's signature is refused.
    let other = tmp.path().join("o");
    sft_ok(&["keygen", "-o", other.to_str().unwrap()]);
    ok(client(&store, &["unload-package", &p.name]));
    sft_ok(&[
        "sign",
        p.sft.to_str().unwrap(),
        "--key",
        other.to_str().unwrap(),
        "-o",
        &format!("{}.minisig", p.sft.display()),
    ]);
    let e = fails(client(&store, &["load-package", &p.name]));
    assert!(e.contains("bad signature"), "{e}");
}

/// HTTP active upgrade: a new version put where the package's URL points
/// is found by its ETag at the next load (a launch loads through the same
/// path), fetched as a delta from the cached version, and replaces it;
/// the record names the new version.
#[test]
fn http_active_upgrade_moves_to_a_new_signed_version() {
    let tmp = tempfile::tempdir().unwrap();
    let (content, store) = (tmp.path().join("content"), tmp.path().join("store"));
    std::fs::create_dir_all(&content).unwrap();
    let (server, url) = serve(&content);
    let href = format!("{url}/");
    let p = make_pkg(&content, "Up", 600_000, Some(&href));
    let key = tmp.path().join("k");
    sft_ok(&["keygen", "-o", key.to_str().unwrap()]);
    sft_ok(&[
        "sign",
        p.sft.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    ok(client(
        &store,
        &[
            "configure-store",
            "--trusted-key",
            &format!("{}.pub", key.display()),
        ],
    ));
    ok(with_manifest(&store, "add-package", &p.name, &p.manifest));
    ok(client(&store, &["load-package", &p.name]));
    let v1 = pkg_json(&store, &p.name)["version_guid"].clone();

    // Version 2: the same tree with one file changed, packed like v1.
    let tree = content.join("Up-tree");
    let mut app = std::fs::read(tree.join("bin/app.exe")).unwrap();
    app[100] ^= 1;
    std::fs::write(tree.join("bin/app.exe"), app).unwrap();
    let next = tmp.path().join("next.sft");
    sft_ok(&[
        "pack",
        tree.to_str().unwrap(),
        "-o",
        next.to_str().unwrap(),
        "--name",
        "Up",
        "--version",
        "2",
        "--like",
        p.sft.to_str().unwrap(),
    ]);
    sft_ok(&[
        "sign",
        next.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    std::fs::rename(
        format!("{}.minisig", next.display()),
        format!("{}.minisig", p.sft.display()),
    )
    .unwrap();
    std::fs::rename(&next, &p.sft).unwrap();

    let plan = ok(client(&store, &["load-package", &p.name, "--dry-run"]));
    let announced: u64 = plan
        .rsplit_once("blocks: ")
        .and_then(|(_, r)| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{plan}"));
    let out = ok(client(&store, &["load-package", &p.name]));
    let moved: u64 = out
        .split_once("fetched ")
        .and_then(|(_, r)| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(moved, announced, "dry run: {plan}\nload: {out}");
    // Most of v2 comes from the cached v1: only the changed file's block moves.
    assert!(
        out.contains(" reused ") && !out.contains(" reused 0 blocks"),
        "{out}"
    );
    let after = pkg_json(&store, &p.name);
    assert_ne!(after["version_guid"], v1, "{after}");
    assert_eq!(after["loaded"], true);
    let files: Vec<PathBuf> = pkg_dir(&store, &p.name)
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "sft"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        std::fs::read(&p.sft).unwrap()
    );
    // Unchanged since: the next load changes nothing.
    let again = ok(client(&store, &["load-package", &p.name]));
    assert_eq!(
        pkg_json(&store, &p.name)["version_guid"],
        after["version_guid"],
        "{again}"
    );
    server.shutdown().unwrap();
}
