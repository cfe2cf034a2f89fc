//! Helpers shared by the commands: opening packages, sizes, times and
//! progress bars.

use std::fmt;
use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sft::{MappedPackage, Package};

/// A usage problem found after argument parsing; exits with status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A package's bytes: memory-mapped (the default) or read into memory.
#[derive(Debug)]
pub enum Loaded {
    /// Mapped with `MappedPackage::open`.
    Mapped(Box<MappedPackage>),
    /// Read with `std::fs::read` (`--no-mmap`).
    Memory(Vec<u8>),
}

impl Loaded {
    /// Open and parse `path`. The error names `path` once: the library's
    /// I/O errors already do; a parse error gets `cannot open package`.
    pub fn open(path: &Path, no_mmap: bool) -> anyhow::Result<Self> {
        let name = path.display().to_string();
        let what = || format!("cannot open package `{name}`");
        if no_mmap {
            let mut bytes = Vec::new();
            sft::io::open_regular(path)
                .map_err(anyhow::Error::from)
                .and_then(|mut f| {
                    f.read_to_end(&mut bytes)
                        .with_context(|| format!("reading `{name}`"))
                })
                .map_err(|e| name_once(e, &name, what))?;
            Package::parse(&bytes).map_err(|e| name_once(e, &name, what))?;
            Ok(Loaded::Memory(bytes))
        } else {
            // SAFETY: `MappedPackage::open` asks that the file is not
            // modified or truncated while mapped. Like ripgrep, this tool
            // accepts that risk for speed: it only reads packages, and if
            // another process does shrink the file under us the worst case
            // is this process dying of SIGBUS, while changed bytes are
            // caught by the per-block CRCs before they are used. Users who
            // cannot rule that out pass `--no-mmap`.
            let mapped =
                unsafe { MappedPackage::open(path) }.map_err(|e| name_once(e, &name, what))?;
            Ok(Loaded::Mapped(Box::new(mapped)))
        }
    }

    /// The parsed package.
    pub fn package(&self) -> anyhow::Result<Package<'_>> {
        match self {
            Loaded::Mapped(m) => Ok(m.package()),
            Loaded::Memory(b) => Ok(Package::parse(b)?),
        }
    }

    /// Hint that the package will be read from start to end.
    pub fn advise_sequential(&self) {
        if let Loaded::Mapped(m) = self {
            m.advise_sequential();
        }
    }
}

/// `e` with the context `what()` in front, unless `e` already names
/// `name` (the library's I/O and transport errors name their path or
/// endpoint): every error names its subject once, not twice.
pub fn name_once(
    e: impl Into<anyhow::Error>,
    name: &str,
    what: impl FnOnce() -> String,
) -> anyhow::Error {
    let e = e.into();
    if format!("{e:#}").contains(name) {
        e
    } else {
        e.context(what())
    }
}

/// The error and its causes, `: `-separated, each said once: a cause
/// whose text an outer layer already included (many errors print their
/// source in their own message: `malformed package: X` over `X`, the SMB
/// and TLS crates' layers) is not repeated.
pub fn chain_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if s.is_empty() || out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}

/// `512 bytes`, or `12.3 MiB (12899328 bytes)`.
pub fn human(n: u64) -> String {
    if n < 1024 {
        return format!("{n} bytes");
    }
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {} ({n} bytes)", UNITS[i])
}

/// Compact form for one-line summaries: `512 B`, `12.3 MiB`.
pub fn short(n: u64) -> String {
    if n < 1024 {
        return format!("{n} B");
    }
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// Ratio `a / b`, 0 when `b` is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day);
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A Unix time as RFC 3339 in UTC: `2024-05-01T12:00:00Z`, with a
/// fraction (trailing zeros dropped) when `nanos` is not 0.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if nanos != 0 {
        let frac = format!("{:09}", nanos.min(999_999_999));
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// A progress bar on stderr counting bytes, or `None` when stderr is not
/// a terminal (then nothing extra is printed).
pub fn progress_bar(total: u64, label: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let style = ProgressStyle::with_template(
        "{prefix:>9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let bar = ProgressBar::new(total).with_style(style);
    bar.set_prefix(label.to_owned());
    Some(bar)
}

/// The warning line a stream event deserves, if any: a damaged block
/// fetched again, or a source retried after a pause.
pub(crate) fn warning_for(e: &sft::stream::Event) -> Option<String> {
    use sft::stream::Event;
    match e {
        Event::Refetch {
            block,
            attempt,
            damage,
        } => Some(format!(
            "sft: warning: {block} arrived damaged ({damage}); fetching it again (failure {attempt})"
        )),
        Event::Retry {
            wait,
            failures,
            error,
        } => Some(crate::escape::safe(&format!(
            "sft: warning: {error}; retrying in {:.1} s (failure {failures}; --retry-for sets the window)",
            wait.as_secs_f64()
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(1_700_000_000, 500_000_000),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_799, 0), "9999-12-31T23:59:59Z");
        // Extremes do not overflow.
        let _ = rfc3339(i64::MAX, 999_999_999);
        let _ = rfc3339(i64::MIN, 0);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(12_899_328), "12.3 MiB (12899328 bytes)");
        assert_eq!(short(1536), "1.5 KiB");
    }
}
