//! [`Guid`]: the 16-byte identifiers of packages and package versions.

use core::fmt;
use core::str::FromStr;

use crate::error::Error;

/// A GUID as App-V uses for package and version identity, stored in RFC 4122
/// byte order (the order of the hex digits as written).
///
/// Displayed in the registry style App-V prints, uppercase with hyphens:
///
/// ```
/// use sft::Guid;
/// let g: Guid = "{6f9c0cd2-6b31-4a5e-9d34-6f7b2f0d4e11}".parse()?;
/// assert_eq!(g.to_string(), "6F9C0CD2-6B31-4A5E-9D34-6F7B2F0D4E11");
/// assert_eq!(g.to_string().parse::<Guid>()?, g);
/// # Ok::<(), sft::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID.
    pub const NIL: Guid = Guid([0; 16]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl FromStr for Guid {
    type Err = Error;

    /// Parse `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, optionally in braces,
    /// in either case.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::invalid(format!("not a GUID: `{s}`"));
        let t = s.trim();
        let t = t
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(t);
        let groups: Vec<&str> = t.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        let hex: String = groups.concat();
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *o = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Guid(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "1234",
            "{6f9c0cd2-6b31-4a5e-9d34-6f7b2f0d4e1}",
            "zz9c0cd2-6b31-4a5e-9d34-6f7b2f0d4e11",
        ] {
            assert!(s.parse::<Guid>().is_err(), "{s}");
        }
    }
}
