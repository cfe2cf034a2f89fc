//! One parser per unit for every command's flags.
//!
//! Sizes and rates: a number (decimals allowed) with an optional suffix
//! `k`, `M`, `G`, `T` or `KiB`, `MiB`, `GiB`, `TiB` (any case), all powers
//! of 1024, as curl's `--limit-rate` reads them: `500k` = 512,000 bytes,
//! `1.5M` = 1,572,864. `kB`/`MB`… are refused rather than guessed (decimal
//! or binary?).

/// A byte count: `0`, `4096`, `500k`, `2M`, `1.5G`, `3T`, `64KiB`.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => {
            return Err(format!(
                "`{s}`: expected a number of bytes, optionally with k, M, G or T (or KiB, MiB, GiB, TiB; powers of 1024)"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a size like 500k, 2M or 1.5G"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 0.0) || bytes > u64::MAX as f64 {
        return Err(format!("`{s}`: out of range"));
    }
    Ok(bytes as u64)
}

/// A rate in bytes per second: as [`parse_size`], and more than zero.
pub(crate) fn parse_rate(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err(format!(
            "`{s}`: the rate must be more than 0 bytes per second"
        )),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_share_one_reading_of_every_suffix() {
        for (text, bytes) in [
            ("100", 100),
            ("0", 0),
            ("2k", 2048),
            ("2K", 2048),
            ("2KiB", 2048),
            ("2 kib", 2048),
            ("1.5M", 1_572_864),
            ("1G", 1 << 30),
            ("3T", 3 << 40),
            ("3TiB", 3 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
            if bytes > 0 {
                // The two flags that took sizes and rates once disagreed
                // on `T`; one parser now reads both.
                assert_eq!(parse_rate(text), Ok(bytes), "{text}");
            }
        }
        for bad in ["x", "5q", "2kB", "2MB", "-1", "", "1e3", "k", "1.2.3"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_rate("0").is_err());
        assert!(parse_size("99999999T").is_err());
    }
}

/// A duration: a number (decimals allowed) of seconds, or with a unit
/// `ms`, `s`, `m` (minutes) or `h`: `0`, `30`, `1.5s`, `500ms`, `5m`, `2h`.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "`{s}`: expected a duration like 30s, 500ms, 5m or 2h (a plain number is seconds)"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a duration like 30s, 500ms, 5m or 2h"))?;
    std::time::Duration::try_from_secs_f64(n * scale).map_err(|_| format!("`{s}`: out of range"))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2H"), Ok(Duration::from_secs(7200)));
        for bad in ["", "s", "-1s", "5 days", "1e400", "3w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
