//! `sft::fetch::probe` and `sft info URL` / `sft ls URL` over HTTP, against the
//! crate's own content server (`sft serve --http`) on 127.0.0.1. The SMB
//! side is in tests/peers/smb.rs (it needs a real smbd).
#![cfg(all(feature = "cli", feature = "http"))]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

const SFT: &str = env!("CARGO_BIN_EXE_sft");

/// `sft serve --http` on a free port, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(content: &std::path::Path) -> Server {
        let mut child = Command::new(SFT)
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--no-access-log",
                "--content",
            ])
            .arg(content)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn package() -> Vec<u8> {
    use sft::write::{PackageBuilder, parse_launch_list};
    let mut b = PackageBuilder::new(
        sft::WriteOptions::default()
            .name("Probe")
            .created(1_700_000_000, 0),
    );
    let noise: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    b.add_bytes("bin/app.exe", noise[..500_000].to_vec())
        .unwrap();
    b.add_bytes("data/big.bin", noise).unwrap();
    b.add_bytes("readme.txt", b"hello".repeat(1000)).unwrap();
    b.launch_list(parse_launch_list("bin/app.exe\n").unwrap());
    b.write_to_vec().unwrap()
}

#[test]
fn probe_and_info_ls_of_an_http_url_read_only_the_prologue() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package();
    let local = dir.path().join("p.sft");
    std::fs::write(&local, &pkg).unwrap();
    let server = Server::start(dir.path());
    let url = format!("{}/p.sft", server.base);

    let prologue = sft::format::Header::parse(&pkg).unwrap().prologue_len;
    assert!(prologue < pkg.len() as u64 / 10);
    let p = sft::fetch::probe::probe(&url, &sft::fetch::SourceOptions::default()).unwrap();
    assert_eq!(p.bytes_read(), prologue);
    assert_eq!(p.as_bytes(), &pkg[..prologue as usize]);
    assert_eq!(p.package_len(), pkg.len() as u64);
    assert_eq!(p.prologue().unwrap().metadata().name(), "Probe");

    for args in [
        vec!["info"],
        vec!["info", "--json"],
        vec!["ls"],
        vec!["ls", "-l"],
    ] {
        let run = |target: &str| {
            let mut a = args.clone();
            a.push(target);
            let o = Command::new(SFT).args(&a).output().unwrap();
            assert!(
                o.status.success(),
                "{a:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).unwrap()
        };
        let remote = run(&url);
        assert!(!remote.is_empty());
        assert_eq!(remote, run(local.to_str().unwrap()), "{args:?}");
    }
}

#[test]
fn probe_of_a_missing_or_damaged_package_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut pkg = package();
    // A damaged byte inside the prologue (past the header).
    pkg[300] ^= 0xff;
    std::fs::write(dir.path().join("bad.sft"), &pkg).unwrap();
    let server = Server::start(dir.path());

    let e = sft::fetch::probe::probe(
        &format!("{}/nope.sft", server.base),
        &sft::fetch::SourceOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope.sft"), "{e}");

    let url = format!("{}/bad.sft", server.base);
    let e = sft::fetch::probe::probe(&url, &sft::fetch::SourceOptions::default()).unwrap_err();
    assert_eq!(e.kind(), sft::ErrorKind::Integrity, "{e}");
    let o = Command::new(SFT).args(["info", &url]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.sft"), "{err}");
}
