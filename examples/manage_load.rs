//! The Management Server's load generator, for `scripts/bench-manage.sh`.
//!
//! `manage_load setup DB_URL CONTENT_DIR USERS GROUPS PACKAGES PER_GROUP TOKENS_FILE`
//! fills a store: USERS users spread over GROUPS groups, PACKAGES small
//! real packages (each a real SFT, manifest and OSD, imported as `sft
//! manage package import` does), each group granted PER_GROUP packages,
//! and a bearer token per user written to TOKENS_FILE.
//!
//! `manage_load run ADDR TOKENS_FILE THREADS SECONDS` then refreshes as
//! the users' clients do, over keep-alive connections, in three phases:
//! `full` (each user once, a fresh server: every answer computed),
//! `304` (each user again and again with the ETag it got: unchanged) and
//! `cached` (again without the ETag: a full answer from the cache); one
//! JSON line per phase with the count, rate and latency percentiles.
//!
//! Run with `--release`: `cargo run --release --example manage_load
//! --features manage,write -- …`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sft::manage::{ImportOptions, Manager};
use sft::write::{PackageBuilder, WriteOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setup") if args.len() == 8 => setup(&args[1..]),
        Some("run") if args.len() == 5 => run(&args[1..]),
        _ => Err("usage: manage_load setup DB CONTENT USERS GROUPS PACKAGES PER_GROUP TOKENS | run ADDR TOKENS THREADS SECONDS".into()),
    }
}

fn setup(a: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (db, content) = (&a[0], Path::new(&a[1]));
    let users: usize = a[2].parse()?;
    let groups: usize = a[3].parse()?;
    let packages: usize = a[4].parse()?;
    let per_group: usize = a[5].parse()?;
    let started = Instant::now();
    let m = Manager::open(db, content)?;
    // One hash for all: the benchmark logs in with tokens.
    let hash = sft::manage::password_hash("bench-password")?;
    let list: Vec<(String, String)> = (0..users)
        .map(|i| (format!("user{i:05}"), hash.clone()))
        .collect();
    m.import_users(&list)?;
    for g in 0..groups {
        m.add_group(&format!("group{g:03}"))?;
    }
    for i in 0..users {
        m.add_member(&format!("group{:03}", i % groups), &format!("user{i:05}"))?;
    }
    let work = tempfile::tempdir()?;
    for p in 0..packages {
        let name = format!("App{p:04}");
        let dir = work.path().join(&name);
        std::fs::create_dir_all(&dir)?;
        let mut b = PackageBuilder::new(WriteOptions::default().name(name.clone()).version(1));
        b.add_bytes(
            "bin/app.exe",
            format!("program {name}\n").repeat(200).into_bytes(),
        )?;
        b.add_bytes(
            "etc/app.conf",
            format!("[{name}]\nkey = value\n").into_bytes(),
        )?;
        b.write_to_path(dir.join(format!("{name}.sft")))?;
        let osd = format!(
            "<SOFTPKG NAME=\"{name}\" VERSION=\"1\"><IMPLEMENTATION><CODEBASE HREF=\"%SFT_MIME_SOURCE%/{name}.sft\" FILENAME=\"bin/app.exe\"/></IMPLEMENTATION></SOFTPKG>"
        );
        std::fs::write(dir.join(format!("{name}.osd")), osd)?;
        let manifest = format!(
            "<MANIFEST><PACKAGE NAME=\"{name}\" VERSION=\"1\" HREF=\"{name}.sft\"/><APPLIST><APP NAME=\"{name}\" VERSION=\"1\" OSD=\"%SFT_MIME_SOURCE%/{name}.osd\"><SHORTCUTLIST><SHORTCUT LOCATION=\"%CSIDL_STARTMENU%\\Programs\" FILENAME=\"{name}\" DISPLAY=\"{name}\"/></SHORTCUTLIST><FILETYPELIST><FILETYPE EXTENSION=\"x{p}\" DESCRIPTION=\"{name} file\"/></FILETYPELIST></APP></APPLIST></MANIFEST>"
        );
        let mpath = dir.join("manifest.xml");
        std::fs::write(&mpath, manifest)?;
        m.import_package(&mpath, &ImportOptions::default())?;
    }
    for g in 0..groups {
        for j in 0..per_group {
            let p = (g * per_group + j * 7) % packages;
            let _ = m.grant(&format!("group{g:03}"), &format!("App{p:04}"));
        }
    }
    let mut tokens = String::new();
    for i in 0..users {
        tokens.push_str(&m.issue_token(&format!("user{i:05}"), Duration::from_secs(86_400))?);
        tokens.push('\n');
    }
    std::fs::write(&a[6], tokens)?;
    eprintln!(
        "setup: {users} users, {groups} groups, {packages} packages, {per_group} per group in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One keep-alive connection.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    /// Send a refresh; (status, ETag).
    fn refresh(
        &mut self,
        token: &str,
        etag: Option<&str>,
    ) -> std::io::Result<(u16, Option<String>)> {
        let mut req = format!(
            "GET /publishing HTTP/1.1\r\nHost: bench\r\nAppV-Op: Refresh\r\nAuthorization: Bearer {token}\r\n"
        );
        if let Some(e) = etag {
            req.push_str(&format!("If-None-Match: {e}\r\n"));
        }
        req.push_str("\r\n");
        self.w.write_all(req.as_bytes())?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        let mut tag = None;
        loop {
            line.clear();
            self.r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                } else if n.eq_ignore_ascii_case("etag") {
                    tag = Some(v.trim().to_owned());
                }
            }
        }
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body)?;
        Ok((status, tag))
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn run(a: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let addr = a[0].clone();
    let tokens: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(&a[1])?
            .lines()
            .map(str::to_owned)
            .collect(),
    );
    let threads: usize = a[2].parse()?;
    let seconds: f64 = a[3].parse()?;
    let etags: Arc<Vec<std::sync::Mutex<Option<String>>>> = Arc::new(
        (0..tokens.len())
            .map(|_| std::sync::Mutex::new(None))
            .collect(),
    );
    for phase in ["full", "304", "cached"] {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(seconds);
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (tokens, etags, next, addr) = (
                    Arc::clone(&tokens),
                    Arc::clone(&etags),
                    Arc::clone(&next),
                    addr.clone(),
                );
                std::thread::spawn(move || -> std::io::Result<(Vec<u64>, usize)> {
                    let mut c = Conn::open(&addr)?;
                    let mut lat = Vec::new();
                    let mut bad = 0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        // `full`: every user once; the others: round and round until the deadline.
                        if (phase == "full" && i >= tokens.len())
                            || (phase != "full" && Instant::now() >= deadline)
                        {
                            break;
                        }
                        let u = i % tokens.len();
                        let tag = if phase == "304" {
                            etags[u].lock().unwrap().clone()
                        } else {
                            None
                        };
                        let t0 = Instant::now();
                        let (status, got) = c.refresh(&tokens[u], tag.as_deref())?;
                        lat.push(t0.elapsed().as_micros() as u64);
                        let want = if phase == "304" { 304 } else { 200 };
                        if status != want {
                            bad += 1;
                        }
                        if phase == "full" {
                            *etags[u].lock().unwrap() = got;
                        }
                    }
                    Ok((lat, bad))
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut bad = 0;
        for h in handles {
            let (l, b) = h.join().map_err(|_| "a load thread panicked")??;
            all.extend(l);
            bad += b;
        }
        let secs = started.elapsed().as_secs_f64();
        all.sort_unstable();
        println!(
            "{{\"phase\":\"{phase}\",\"requests\":{},\"unexpected_status\":{bad},\"seconds\":{secs:.3},\"per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
            all.len(),
            all.len() as f64 / secs,
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            percentile(&all, 1.0)
        );
    }
    Ok(())
}
