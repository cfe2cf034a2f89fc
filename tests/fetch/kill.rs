//! `sft fetch` killed with SIGKILL at seeded random points, then run
//! again: always a verified, byte-identical file.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{Rng, noise, text};

const SFT: &str = env!("CARGO_BIN_EXE_sft");

fn package() -> Vec<u8> {
    use sft::write::{BlockSize, PackageBuilder, parse_launch_list};
    let mut b = PackageBuilder::new(
        sft::WriteOptions::default()
            .block_size(BlockSize::K4)
            .name("Kill"),
    );
    b.add_bytes("app.exe", noise(11, 300_000)).unwrap();
    b.add_bytes("data/a.bin", noise(12, 1_800_000)).unwrap();
    b.add_bytes("data/b.txt", text(400_000)).unwrap();
    b.launch_list(parse_launch_list("app.exe\n").unwrap());
    b.write_to_vec().unwrap()
}

fn transferred(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("transferred: ")?;
            let inner = rest.split('(').nth(1)?.split(' ').next()?;
            inner.parse().ok()
        })
        .unwrap_or_else(|| panic!("no transferred line in {stdout}"))
}

#[test]
fn kill_9_at_random_points_then_rerun_gives_a_verified_identical_file() {
    let pkg = package();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.sft");
    std::fs::write(&src, &pkg).unwrap();
    let started = Instant::now();
    let mut rng = Rng(0x5eed_f00d);
    // About 4.2 s per full run at 500 kB/s; checkpoints every 0.5 s.
    for round in 0..3 {
        let out = dir.path().join(format!("out{round}.sft"));
        let cache = dir.path().join(format!("cache{round}"));
        let mut kills = 0;
        let mut last_killed = false;
        for _ in 0..4 {
            let mut child = Command::new(SFT)
                .arg("fetch")
                .arg(&src)
                .arg("-o")
                .arg(&out)
                .arg("--cache-dir")
                .arg(&cache)
                .args(["--limit-rate", "500k"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Kill at a random point after this run's first checkpoint
            // (so every run leaves progress to resume, whatever the
            // machine's load did to its start-up time): the bitmap's
            // bytes change when a checkpoint records blocks.
            let bitmap = sft::fetch::cache::CachePaths::for_output(&out, Some(&cache)).bitmap;
            let before = std::fs::read(&bitmap).ok();
            let deadline = Instant::now() + Duration::from_secs(60);
            while child.try_wait().unwrap().is_none()
                && std::fs::read(&bitmap).ok() == before
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5)); // polling, not synchronisation
            }
            // The random point itself: a delay is what is under test here.
            std::thread::sleep(Duration::from_millis(rng.below(300)));
            last_killed = child.try_wait().unwrap().is_none();
            if last_killed {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
            child.wait().unwrap();
        }
        // At 500 kB/s a run gets at most ~0.4 MB past its first checkpoint
        // before it is killed, so the 2.1 MB package outlasts all four.
        assert!(kills >= 3, "round {round}: {kills} runs interrupted");
        assert!(!out.exists() || std::fs::read(&out).unwrap() == pkg);
        let o = Command::new(SFT)
            .arg("fetch")
            .arg(format!("file://{}", src.display()))
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(stdout.contains("time to launch-ready: "), "{stdout}");
        assert!(stdout.contains("total time: "), "{stdout}");
        if last_killed {
            // The last run left a cache: this one picks it up.
            assert!(stdout.contains("resumed: "), "round {round}: {stdout}");
            assert!(transferred(&stdout) < pkg.len() as u64, "{stdout}");
        }
        assert!(std::fs::read(&out).unwrap() == pkg, "round {round}");
        let v = Command::new(SFT).arg("verify").arg(&out).output().unwrap();
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn launch_only_then_finish_and_usage_errors() {
    let pkg = package();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.sft");
    std::fs::write(&src, &pkg).unwrap();
    let out = dir.path().join("o.sft");
    let o = Command::new(SFT)
        .arg("fetch")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .arg("--launch-only")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{s}");
    assert!(s.contains("launch-ready only"), "{s}");
    assert!(!out.exists());
    let o = Command::new(SFT)
        .arg("fetch")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && s.contains("resumed: "), "{s}");
    assert!(std::fs::read(&out).unwrap() == pkg);
    let o = Command::new(SFT)
        .args(["fetch", "gopher://x/y", "-o"])
        .arg(dir.path().join("z.sft"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unsupported scheme"));
}
