//! Windows Installer files (`sft msi`, `sft client install APP.msi`)
//! against the real msitools (`msiinfo`, `msiextract`) and `wixl`: our MSI
//! read table by table and extracted byte-identical, a `wixl` MSI of the
//! same files installed, pack → msi → install → load → run for both
//! modes, upgrades, the rollback journal, and hostile MSIs that change
//! nothing.

use super::*;

use sft::bundle::msi::{MsiPackage, product_code, upgrade_code};

/// msitools are here (or, under `SFT_REQUIRE_SERVERS=1`, a failure).
fn msitools() -> bool {
    let ok = common::have("msiinfo", "--version") && common::have("msiextract", "--version");
    if !ok {
        eprintln!("SKIPPED: msitools (msiinfo, msiextract) are not installed");
    }
    ok
}

fn wixl() -> bool {
    let ok = common::have("wixl", "--version");
    if !ok {
        eprintln!("SKIPPED: wixl is not installed");
    }
    ok
}

/// Run a tool, which must succeed; its stdout.
fn tool(cmd: &str, args: &[&str]) -> String {
    ok(Command::new(cmd).args(args).output().unwrap())
}

/// `sft msi --manifest M EXTRA… -o OUT`, which must succeed.
fn sft_msi(manifest: &Path, extra: &[&str], out: &Path) -> String {
    ok(Command::new(SFT)
        .args(["msi", "--manifest"])
        .arg(manifest)
        .args(extra)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap())
}

/// The rows of `msiinfo export MSI TABLE` (the three header lines
/// dropped), split at tabs.
fn export(msi: &Path, table: &str) -> Vec<Vec<String>> {
    tool("msiinfo", &["export", msi.to_str().unwrap(), table])
        .lines()
        .skip(3)
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn property(msi: &Path, name: &str) -> Option<String> {
    export(msi, "Property")
        .into_iter()
        .find(|r| r[0] == name)
        .map(|r| r[1].clone())
}

/// The standard tables every sft MSI has.
const TABLES: [&str; 17] = [
    "Property",
    "Directory",
    "Component",
    "Feature",
    "FeatureComponents",
    "File",
    "Media",
    "CustomAction",
    "Upgrade",
    "LaunchCondition",
    "InstallExecuteSequence",
    "InstallUISequence",
    "AdminExecuteSequence",
    "AdminUISequence",
    "AdvtExecuteSequence",
    "SftFileHash",
    "_Validation",
];

/// Where msiextract puts the package's files: `Program Files/sft/NAME/`.
fn extracted(root: &Path, name: &str) -> PathBuf {
    root.join("Program Files").join("sft").join(name)
}

#[test]
fn msitools_read_our_msi_in_both_modes() {
    if !msitools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = make_pkg(
        dir.path(),
        "Tools",
        200_000,
        Some("rtsp://nowhere.invalid/"),
    );
    let guid: sft::Guid = p.guid.parse().unwrap();
    let url = "http://content.invalid/Tools.sft";
    for (mode, extra) in [
        ("STANDALONE", vec!["--sft", p.sft.to_str().unwrap()]),
        ("STREAMING", vec!["--sft-url", url]),
    ] {
        let out = dir.path().join(format!("{mode}.msi"));
        let said = sft_msi(&p.manifest, &extra, &out);
        assert!(said.contains(&format!("MODE={mode}")), "{said}");
        let o = out.to_str().unwrap();
        let si = tool("msiinfo", &["suminfo", o]);
        for want in [
            "Title: Installation Database",
            "Subject: Tools",
            "Template: Intel;1033",
            "Revision number (UUID): {",
            "Version: 200",
            "Security: 2",
        ] {
            assert!(si.contains(want), "{want} not in\n{si}");
        }
        let tables = tool("msiinfo", &["tables", o]);
        for t in TABLES {
            assert!(tables.lines().any(|l| l == t), "{t} not in\n{tables}");
        }
        // Every table exports.
        for t in tables.lines().filter(|t| !t.is_empty()) {
            assert!(!tool("msiinfo", &["export", o, t]).is_empty(), "{t}");
        }
        assert_eq!(property(&out, "MODE").as_deref(), Some(mode));
        assert_eq!(property(&out, "LOAD").as_deref(), Some("FALSE"));
        assert_eq!(property(&out, "ProductVersion").as_deref(), Some("0.0.1"));
        assert_eq!(
            property(&out, "ProductCode"),
            Some(product_code(&guid, "0.0.1"))
        );
        assert_eq!(property(&out, "UpgradeCode"), Some(upgrade_code(&guid)));
        assert_eq!(
            property(&out, "OVERRIDEURL").as_deref(),
            (mode == "STREAMING").then_some(url)
        );
        // The install action runs the client's install verb, with a
        // rollback action before it and a commit action after it.
        let ca = export(&out, "CustomAction");
        let row = |a: &str| ca.iter().find(|r| r[0] == a).cloned().unwrap();
        assert_eq!(row("SftInstall")[1], "3122");
        assert!(row("SftInstall")[3].starts_with("client install \"[OriginalDatabase]\""));
        assert_eq!(row("SftInstallRollback")[1], "3378");
        assert_eq!(row("SftInstallCommit")[1], "3634");
        let seq = export(&out, "InstallExecuteSequence");
        let at = |a: &str| -> i32 { seq.iter().find(|r| r[0] == a).unwrap()[2].parse().unwrap() };
        assert!(at("SftInstallRollback") < at("SftInstall"));
        assert!(at("SftInstall") < at("SftInstallCommit"));
        assert!(at("SftInstallCommit") < at("InstallFinalize"));
        assert!(at("RemoveExistingProducts") > at("InstallInitialize"));
        // The files: listed and extracted byte-identical.
        let m = MsiPackage::open(&out).unwrap();
        let kinds: Vec<String> = m.entries().iter().map(|e| e.kind.to_string()).collect();
        let want_kinds: &[&str] = if mode == "STANDALONE" {
            &["manifest", "osd", "icon", "sft"]
        } else {
            &["manifest", "osd", "icon"]
        };
        assert_eq!(kinds, want_kinds);
        let listed = tool("msiextract", &["-l", o]);
        let x = dir.path().join(format!("x-{mode}"));
        tool("msiextract", &["-C", x.to_str().unwrap(), o]);
        for e in m.entries() {
            let path = format!("Program Files/sft/Tools/{}", e.name);
            assert!(listed.lines().any(|l| l == path), "{path} not in\n{listed}");
            let got = std::fs::read(extracted(&x, "Tools").join(&e.name)).unwrap();
            let src = dir.path().join(&e.name);
            assert_eq!(got, std::fs::read(&src).unwrap(), "{}", e.name);
        }
        assert_eq!(listed.lines().count(), m.entries().len(), "{listed}");
        assert_eq!(export(&out, "File").len(), m.entries().len());
        assert_eq!(export(&out, "SftFileHash").len(), m.entries().len());
        // The same inputs give the same bytes.
        let again = dir.path().join(format!("{mode}-again.msi"));
        sft_msi(&p.manifest, &extra, &again);
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
        // `sft msi --list` agrees.
        let list = ok(Command::new(SFT)
            .args(["msi", "--list", o])
            .output()
            .unwrap());
        assert!(list.contains(&format!("MODE           {mode}")), "{list}");
    }
}

/// A WiX source with the files of `entries` (names relative to the folder
/// [`wixl`] runs in,
/// `/`-separated, one folder level at most) under `Program
/// Files/NAME`, and `extra` inside `Product`.
fn wxs(name: &str, entries: &[String], extra: &str) -> String {
    let mut top = String::new();
    let mut sub: BTreeMap<String, String> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let (folder, leaf) = match e.split_once('/') {
            Some((f, l)) => (Some(f.to_owned()), l.to_owned()),
            None => (None, e.clone()),
        };
        // wixl takes Source relative to the folder it runs in (`src`).
        let file = format!("<File Id=\"F{i}\" Source=\"{e}\" Name=\"{leaf}\"/>");
        match folder {
            Some(f) => sub.entry(f).or_default().push_str(&file),
            None => top.push_str(&file),
        }
    }
    let mut dirs = String::new();
    let mut refs = String::from("<ComponentRef Id=\"C0\"/>");
    for (i, (f, files)) in sub.iter().enumerate() {
        dirs.push_str(&format!(
            "<Directory Id=\"D{i}\" Name=\"{f}\"><Component Id=\"C{n}\" Guid=\"11111111-2222-3333-4444-{n:012}\">{files}</Component></Directory>",
            n = i + 1
        ));
        refs.push_str(&format!("<ComponentRef Id=\"C{}\"/>", i + 1));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="{name}" Language="1033" Version="1.0.0" Manufacturer="test" UpgradeCode="12345678-1234-1234-1234-123456789012">
    <Package InstallerVersion="200" Compressed="yes" InstallScope="perMachine"/>
    <Media Id="1" Cabinet="w.cab" EmbedCab="yes"/>
    {extra}
    <Directory Id="TARGETDIR" Name="SourceDir"><Directory Id="ProgramFilesFolder"><Directory Id="INSTALLDIR" Name="{name}">
      <Component Id="C0" Guid="11111111-2222-3333-4444-000000000000">{top}</Component>
      {dirs}
    </Directory></Directory></Directory>
    <Feature Id="Main" Level="1">{refs}</Feature>
  </Product>
</Wix>
"#
    )
}

/// `wixl -o OUT WXS` in `src`, which must succeed.
fn run_wixl(src: &Path, wxs: &Path, out: &Path) {
    ok(Command::new("wixl")
        .current_dir(src)
        .arg("-o")
        .arg(out)
        .arg(wxs)
        .output()
        .unwrap());
}

#[test]
fn a_wixl_msi_of_the_same_files_installs() {
    if !(msitools() && wixl()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let (server, url) = serve(&content);
    let p = make_pkg(&content, "Wix", 300_000, Some("rtsp://nowhere.invalid/"));
    // The package's files, as our MSI names them.
    let ours = dir.path().join("ours.msi");
    sft_msi(&p.manifest, &["--sft", p.sft.to_str().unwrap()], &ours);
    let names: Vec<String> = MsiPackage::open(&ours)
        .unwrap()
        .entries()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    // Stand-alone: the SFT inside, no MODE: installed from the MSI alone.
    let wxs_path = dir.path().join("w.wxs");
    std::fs::write(&wxs_path, wxs("Wix", &names, "")).unwrap();
    let w = dir.path().join("w.msi");
    run_wixl(&content, &wxs_path, &w);
    let store = dir.path().join("store");
    let out = ok(client(&store, &["install", w.to_str().unwrap()]));
    assert!(out.contains("installed package Wix"), "{out}");
    let q = pkg_json(&store, "Wix");
    assert_eq!(q["cached_percent"], 100);
    assert_eq!(q["published"], true);
    // Streaming, MODE and LOAD in its Property table, OVERRIDEURL on the
    // command line, as msiexec takes it.
    let streaming: Vec<String> = names
        .iter()
        .filter(|n| !n.ends_with(".sft"))
        .cloned()
        .collect();
    let props = r#"<Property Id="MODE" Value="STREAMING"/><Property Id="LOAD" Value="TRUE"/>"#;
    std::fs::write(&wxs_path, wxs("Wix", &streaming, props)).unwrap();
    let w2 = dir.path().join("w2.msi");
    run_wixl(&content, &wxs_path, &w2);
    let store2 = dir.path().join("store2");
    let over = format!("OVERRIDEURL={url}/Wix.sft");
    let out = ok(client(&store2, &["install", w2.to_str().unwrap(), &over]));
    assert!(out.contains("installed package Wix"), "{out}");
    let q = pkg_json(&store2, "Wix");
    assert_eq!(q["cached_percent"], 100);
    assert_eq!(q["override_url"], format!("{url}/Wix.sft").as_str());
    server.shutdown().unwrap();
}

/// `client run NAME --no-mount -- sft cat $SFT_CLIENT_PACKAGE bin/app.exe`:
/// the application's bytes as a launch from the store reads them.
fn run_app(store: &Path, name: &str) -> Vec<u8> {
    let out = client(
        store,
        &[
            "run",
            name,
            "--no-mount",
            "--",
            "sh",
            "-c",
            &format!("exec '{SFT}' cat \"$SFT_CLIENT_PACKAGE\" bin/app.exe"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn round_trip_pack_msi_install_load_run_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let (server, url) = serve(&content);
    let p = make_pkg(&content, "Trip", 2 << 20, Some(&format!("{url}/")));
    let app = std::fs::read(content.join("Trip-tree/bin/app.exe")).unwrap();

    // Stand-alone: no server involved once installed.
    let sa = dir.path().join("sa.msi");
    sft_msi(&p.manifest, &["--sft", p.sft.to_str().unwrap()], &sa);
    let store = dir.path().join("store-sa");
    ok(client(&store, &["install", sa.to_str().unwrap()]));
    assert_eq!(pkg_json(&store, "Trip")["cached_percent"], 100);
    assert_eq!(run_app(&store, "Trip"), app);

    // Streaming: installed (published, nothing loaded), then loaded from
    // the MSI's OVERRIDEURL, then run.
    let st = dir.path().join("st.msi");
    let sft_url = format!("{url}/Trip.sft");
    sft_msi(&p.manifest, &["--sft-url", &sft_url], &st);
    let store = dir.path().join("store-st");
    ok(client(&store, &["install", st.to_str().unwrap()]));
    let q = pkg_json(&store, "Trip");
    assert_eq!(q["published"], true);
    assert_eq!(q["cached_percent"], 0);
    assert_eq!(q["override_url"], sft_url.as_str());
    let out = ok(client(&store, &["load-package", "Trip"]));
    assert!(out.contains(&sft_url), "{out}");
    assert_eq!(pkg_json(&store, "Trip")["cached_percent"], 100);
    assert_eq!(run_app(&store, "Trip"), app);

    // `sft msi --load` makes LOAD=TRUE the default: loaded at install.
    let stl = dir.path().join("stl.msi");
    sft_msi(&p.manifest, &["--sft-url", &sft_url, "--load"], &stl);
    let store = dir.path().join("store-stl");
    let out = ok(client(&store, &["install", stl.to_str().unwrap()]));
    assert!(out.contains("100%") || out.contains("loaded"), "{out}");
    assert_eq!(pkg_json(&store, "Trip")["cached_percent"], 100);
    // ... unless the command line says LOAD=FALSE.
    let store = dir.path().join("store-nl");
    ok(client(
        &store,
        &["install", stl.to_str().unwrap(), "LOAD=FALSE"],
    ));
    assert_eq!(pkg_json(&store, "Trip")["cached_percent"], 0);
    server.shutdown().unwrap();
}

#[test]
fn a_new_version_upgrades_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let v1dir = dir.path().join("v1");
    let v2dir = dir.path().join("v2");
    std::fs::create_dir_all(&v1dir).unwrap();
    std::fs::create_dir_all(&v2dir).unwrap();
    let p1 = make_pkg_with(&v1dir, "Up", 100_000, None, &["--version", "1"]);
    let p2 = make_pkg_with(&v2dir, "Up", 150_000, None, &["--version", "2"]);
    assert_eq!(p1.guid, p2.guid);
    let (m1, m2) = (dir.path().join("up.msi"), dir.path().join("up_2.msi"));
    sft_msi(&p1.manifest, &["--sft", p1.sft.to_str().unwrap()], &m1);
    sft_msi(&p2.manifest, &["--sft", p2.sft.to_str().unwrap()], &m2);
    let (a, b) = (
        MsiPackage::open(&m1).unwrap(),
        MsiPackage::open(&m2).unwrap(),
    );
    let (a, b) = (a.properties(), b.properties());
    assert_eq!(a.upgrade_code, b.upgrade_code);
    assert_ne!(a.product_code, b.product_code);
    assert_eq!(a.product_version.as_deref(), Some("0.0.1"));
    assert_eq!(b.product_version.as_deref(), Some("0.0.2"));
    if msitools() {
        // Version 2's Upgrade table removes every earlier version.
        let up = export(&m2, "Upgrade");
        assert!(
            up.iter()
                .any(|r| r[2] == "0.0.2" && r[4] == "1" && r[6] == "SFTUPGRADEFOUND"),
            "{up:?}"
        );
    }
    let store = dir.path().join("store");
    ok(client(&store, &["install", m1.to_str().unwrap()]));
    let v1 = pkg_json(&store, "Up");
    ok(client(&store, &["install", m2.to_str().unwrap()]));
    let v2 = pkg_json(&store, "Up");
    assert_eq!(query(&store).len(), 1);
    assert_ne!(v1["version_guid"], v2["version_guid"]);
    assert_eq!(v2["cached_percent"], 100);
    let store_guid = Store::open(&store).unwrap();
    let rec = store_guid.records().unwrap().find("Up").cloned().unwrap();
    assert_eq!(rec.version.as_deref(), Some("2"));
}

#[test]
fn a_failed_install_leaves_the_store_as_it_was_and_the_journal_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let v1dir = dir.path().join("v1");
    let v2dir = dir.path().join("v2");
    std::fs::create_dir_all(&v1dir).unwrap();
    std::fs::create_dir_all(&v2dir).unwrap();
    let p1 = make_pkg_with(&v1dir, "Back", 100_000, None, &["--version", "1"]);
    let p2 = make_pkg_with(&v2dir, "Back", 120_000, None, &["--version", "2"]);
    let m1 = dir.path().join("back.msi");
    sft_msi(&p1.manifest, &["--sft", p1.sft.to_str().unwrap()], &m1);
    // Version 2 streams from a port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let m2 = dir.path().join("back_2.msi");
    sft_msi(
        &p2.manifest,
        &["--sft-url", &format!("http://{dead}/Back.sft"), "--load"],
        &m2,
    );
    let m2s = dir.path().join("back_2s.msi");
    sft_msi(&p2.manifest, &["--sft", p2.sft.to_str().unwrap()], &m2s);
    let store = dir.path().join("store");
    init_store(&store, &m1);
    let fail = |m: &Path| {
        fails(client(
            &store,
            &["install", m.to_str().unwrap(), "--retry-for", "0"],
        ))
    };

    // A first install whose load fails: nothing is left.
    let empty = state(&store);
    let e = fail(&m2);
    assert!(e.contains("cannot install"), "{e}");
    assert_eq!(state(&store), empty);

    // Over an installed version 1: version 1 exactly as it was.
    ok(client(&store, &["install", m1.to_str().unwrap()]));
    let v1 = state(&store);
    fail(&m2);
    assert_eq!(state(&store), v1);
    assert_eq!(
        run_app(&store, "Back"),
        std::fs::read(v1dir.join("Back-tree/bin/app.exe")).unwrap()
    );
    let v1 = state(&store); // `run` recorded a use

    // A kept journal: --rollback puts version 1 back, files and records.
    let out = ok(client(
        &store,
        &["install", m2s.to_str().unwrap(), "--keep-rollback"],
    ));
    assert!(out.contains("installed package Back"), "{out}");
    assert_eq!(
        pkg_json(&store, "Back")["version_guid"].as_str(),
        Some(
            sft::publish::Manifest::parse(&std::fs::read(&p2.manifest).unwrap())
                .unwrap()
                .package
                .unwrap()
                .version_guid
                .unwrap()
                .as_str()
        )
    );
    assert!(store.join("rollback").exists());
    let out = ok(client(
        &store,
        &["install", m2s.to_str().unwrap(), "--rollback"],
    ));
    assert!(out.contains("rolled back"), "{out}");
    assert_eq!(state(&store), v1);
    let out = ok(client(
        &store,
        &["install", m2s.to_str().unwrap(), "--rollback"],
    ));
    assert!(out.contains("nothing to roll back"), "{out}");

    // --commit keeps the install and drops the journal.
    ok(client(
        &store,
        &["install", m2s.to_str().unwrap(), "--keep-rollback"],
    ));
    let out = ok(client(
        &store,
        &["install", m2s.to_str().unwrap(), "--commit"],
    ));
    assert!(out.contains("committed"), "{out}");
    assert!(!store.join("rollback").exists());
    let out = ok(client(
        &store,
        &["install", m2s.to_str().unwrap(), "--rollback"],
    ));
    assert!(out.contains("nothing to roll back"), "{out}");
    assert_eq!(pkg_json(&store, "Back")["cached_percent"], 100);
}

/// An upgrade that streams the new version (whose load removes the old
/// version's data), then rolled back: the old version comes back whole,
/// its data included. And a journal an install left unfinished (a crash)
/// is put back before the next install journals anything.
#[test]
fn a_rolled_back_upgrade_gets_its_old_data_back_and_a_crashed_journal_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let (server, url) = serve(&content);
    let v1dir = dir.path().join("v1");
    std::fs::create_dir_all(&v1dir).unwrap();
    let p1 = make_pkg_with(&v1dir, "Up2", 100_000, None, &["--version", "1"]);
    let p2 = make_pkg_with(&content, "Up2", 120_000, None, &["--version", "2"]);
    let (m1, m2) = (dir.path().join("up2.msi"), dir.path().join("up2_2.msi"));
    sft_msi(&p1.manifest, &["--sft", p1.sft.to_str().unwrap()], &m1);
    sft_msi(
        &p2.manifest,
        &["--sft-url", &format!("{url}/Up2.sft"), "--load"],
        &m2,
    );
    let store = dir.path().join("store");
    init_store(&store, &m1);
    ok(client(&store, &["install", m1.to_str().unwrap()]));
    let v1 = state(&store);
    let v1_data: Vec<PathBuf> = v1
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "sft"))
        .cloned()
        .collect();
    assert_eq!(v1_data.len(), 1, "{v1_data:?}");
    ok(client(
        &store,
        &["install", m2.to_str().unwrap(), "--keep-rollback"],
    ));
    assert_eq!(pkg_json(&store, "Up2")["cached_percent"], 100);
    assert!(
        !v1_data[0].exists(),
        "the load of version 2 removed version 1's data"
    );
    let out = ok(client(
        &store,
        &["install", m2.to_str().unwrap(), "--rollback"],
    ));
    assert!(out.contains("rolled back"), "{out}");
    assert_eq!(state(&store), v1);

    // A crash after the steps: the journal is there, unfinished.
    ok(client(
        &store,
        &["install", m2.to_str().unwrap(), "--keep-rollback"],
    ));
    let guid: sft::Guid = p1.guid.parse().unwrap();
    let journal = store
        .join("rollback")
        .join(guid.to_string())
        .join("state.json");
    let mut j: Value = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert_eq!(j["done"], true);
    j["done"] = Value::Bool(false);
    std::fs::write(&journal, serde_json::to_vec(&j).unwrap()).unwrap();
    // The next install of the package is version 1 again, with a source
    // nothing listens on and LOAD=TRUE. It succeeds only because the
    // unfinished journal was put back first: version 1's data returned
    // (the load finds it cached); otherwise the load would fail.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let m1s = dir.path().join("up2_dead.msi");
    sft_msi(
        &p1.manifest,
        &["--sft-url", &format!("http://{dead}/Up2.sft"), "--load"],
        &m1s,
    );
    let out = ok(client(
        &store,
        &["install", m1s.to_str().unwrap(), "--retry-for", "0"],
    ));
    assert!(out.contains("already cached"), "{out}");
    assert!(v1_data[0].exists());
    let now = state(&store);
    let sfts: Vec<&PathBuf> = now
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "sft"))
        .collect();
    assert_eq!(
        sfts,
        [&v1_data[0]],
        "version 2's data went with the journal"
    );
    assert!(!store.join("rollback").exists());
    server.shutdown().unwrap();
}

/// The store's state: every file and folder with its bytes, but for the
/// empty lock files any verb creates on first use (they hold nothing).
fn state(store: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut s = snapshot(store);
    s.retain(|p, b| !(b.is_empty() && p.extension().is_some_and(|e| e == "lock")));
    s
}

/// A store that has been used (records and lock files exist): `msi`
/// installed and deleted.
fn init_store(store: &Path, msi: &Path) {
    let name = MsiPackage::open(msi)
        .unwrap()
        .properties()
        .product_name
        .clone()
        .unwrap();
    ok(client(store, &["install", msi.to_str().unwrap()]));
    ok(client(store, &["delete-package", &name]));
}

/// Rewrite rows of an MSI in place with the `msi` crate.
fn patch_msi(path: &Path, f: impl FnOnce(&mut ::msi::Package<std::fs::File>)) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut db = ::msi::Package::open(file).unwrap();
    f(&mut db);
    db.flush().unwrap();
}

fn set(
    db: &mut ::msi::Package<std::fs::File>,
    table: &str,
    col: &str,
    value: ::msi::Value,
    key: (&str, &str),
) {
    db.update_rows(
        ::msi::Update::table(table)
            .set(col, value)
            .with(::msi::Expr::col(key.0).eq(::msi::Expr::string(key.1))),
    )
    .unwrap();
}

#[test]
fn damaged_foreign_and_hostile_msis_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = make_pkg(dir.path(), "Bad", 100_000, None);
    let good = dir.path().join("good.msi");
    sft_msi(&p.manifest, &["--sft", p.sft.to_str().unwrap()], &good);
    let bytes = std::fs::read(&good).unwrap();
    let store = dir.path().join("store");
    init_store(&store, &good);
    let before = state(&store);
    let refused = |m: &Path, want: &str| {
        let e = fails(client(&store, &["install", m.to_str().unwrap()]));
        assert!(e.contains(want), "`{want}` not in: {e}");
        assert!(
            e.contains(m.to_str().unwrap()),
            "the error names the file: {e}"
        );
        assert_eq!(state(&store), before, "{}", m.display());
    };
    // Truncated.
    for cut in [0, 7, 8, 512, 4096, bytes.len() / 2, bytes.len() - 1] {
        let m = dir.path().join(format!("cut-{cut}.msi"));
        std::fs::write(&m, &bytes[..cut]).unwrap();
        refused(
            &m,
            if cut < 8 {
                "neither a bundle"
            } else {
                "Windows Installer"
            },
        );
    }
    // Damaged CFB sectors: the header's sector shift, the FAT's first
    // entry, the directory's first entry name.
    for (at, v) in [(0x1e, 0x20u8), (0x200, 0xfe), (0x4c, 0x7f)] {
        let mut b = bytes.clone();
        b[at] ^= v;
        let m = dir.path().join(format!("sector-{at}.msi"));
        std::fs::write(&m, &b).unwrap();
        refused(&m, "Windows Installer");
    }
    // Sizes that lie: the File table disagrees with the cabinet.
    let m = dir.path().join("size.msi");
    std::fs::copy(&good, &m).unwrap();
    patch_msi(&m, |db| {
        set(db, "File", "FileSize", 5.into(), ("File", "Osd_1"))
    });
    refused(&m, "the cabinet says");
    // ... a huge one: refused before anything is allocated for it.
    let m = dir.path().join("huge.msi");
    std::fs::copy(&good, &m).unwrap();
    patch_msi(&m, |db| {
        set(db, "File", "FileSize", i32::MAX.into(), ("File", "Icon_1"))
    });
    refused(&m, "more than the");
    // ... a hash that does not match.
    let m = dir.path().join("hash.msi");
    std::fs::copy(&good, &m).unwrap();
    patch_msi(&m, |db| {
        set(
            db,
            "SftFileHash",
            "Hash",
            format!("blake3:{}", "00".repeat(32)).into(),
            ("File_", "Osd_1"),
        );
    });
    refused(&m, "BLAKE3");
    // Paths that escape: a folder named `..`, a file name with a separator.
    for (i, (table, col, v, key)) in [
        ("Directory", "DefaultDir", "..", ("Directory", "INSTALLDIR")),
        (
            "Directory",
            "DefaultDir",
            "a\\..\\..",
            ("Directory", "SFTDIR"),
        ),
        ("File", "FileName", "..\\..\\evil.osd", ("File", "Osd_1")),
        ("File", "FileName", "x|../../evil.ico", ("File", "Icon_1")),
    ]
    .into_iter()
    .enumerate()
    {
        let m = dir.path().join(format!("path-{i}.msi"));
        std::fs::copy(&good, &m).unwrap();
        patch_msi(&m, |db| set(db, table, col, v.into(), key));
        refused(&m, "unsafe name");
    }
    // A foreign MSI: a product with no App-V manifest.
    if msitools() && wixl() {
        let f = dir.path().join("readme.txt");
        std::fs::write(&f, "hello").unwrap();
        let wxs_path = dir.path().join("f.wxs");
        std::fs::write(&wxs_path, wxs("Other", &["readme.txt".into()], "")).unwrap();
        let m = dir.path().join("foreign.msi");
        tool(
            "wixl",
            &["-o", m.to_str().unwrap(), wxs_path.to_str().unwrap()],
        );
        refused(&m, "no App-V package");
    }
    // A streaming MSI told MODE=STANDALONE.
    let st = dir.path().join("st.msi");
    sft_msi(&p.manifest, &[], &st);
    let e = fails(client(
        &store,
        &["install", st.to_str().unwrap(), "MODE=STANDALONE"],
    ));
    assert!(e.contains("carries no SFT"), "{e}");
    assert_eq!(state(&store), before);
    // Not an MSI property: a usage error (exit 2).
    let out = client(&store, &["install", st.to_str().unwrap(), "INSTALLDIR=/x"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("unknown property"), "{e}");
    // Nothing was written beside the MSIs by any of them.
    assert!(!dir.path().join("evil.osd").exists());
    assert!(!dir.path().parent().unwrap().join("evil.osd").exists());
}
