//! [`Guid`]: the 16-byte identifiers of packages and package versions.

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;
use core::str::FromStr;

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

    /// The 32 hex digits, uppercase, no hyphens or braces (the form of
    /// the RTSP `version=` control segment, `docs/RTSP.md`).
    ///
    /// ```
    /// let g = sft::Guid([0xAB; 16]);
    /// assert_eq!(g.to_hex().len(), 32);
    /// assert_eq!(sft::Guid::from_hex(&g.to_hex()), Some(g));
    /// assert_eq!(sft::Guid::from_hex("xyz"), None);
    /// ```
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Parse exactly 32 hex digits (either case, surrounding whitespace
    /// ignored); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Guid> {
        from_hex_digits(s.trim().as_bytes())
    }
}

/// 32 ASCII hex digits into 16 bytes.
fn from_hex_digits(hex: &[u8]) -> Option<Guid> {
    if hex.len() != 32 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16);
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(Guid(out))
}

/// A string that is not a GUID ([`Guid`]'s `FromStr`); converts into
/// `sft::Error::InvalidInput` with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseGuidError {
    input: String,
}

impl fmt::Display for ParseGuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a GUID: `{}`", self.input)
    }
}

impl core::error::Error for ParseGuidError {}

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
    type Err = ParseGuidError;

    /// Parse `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, optionally in braces,
    /// in either case.
    fn from_str(s: &str) -> Result<Self, ParseGuidError> {
        let bad = || ParseGuidError {
            input: s.to_owned(),
        };
        let t = s.trim();
        let t = t
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(t);
        let groups: Vec<&str> = t.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return Err(bad());
        }
        from_hex_digits(groups.concat().as_bytes()).ok_or_else(bad)
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
