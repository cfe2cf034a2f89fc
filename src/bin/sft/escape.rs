//! Terminal-safe text: every string that came from a package, a manifest,
//! an OSD or the network passes through [`Safe`] before it is printed for a
//! person (`--json` output is escaped by the JSON writer instead).
//!
//! Escaped: the C0 controls (U+0000–U+001F, including ESC, BEL, CR and LF),
//! DEL, the C1 controls (U+0080–U+009F) and the Unicode bidirectional
//! overrides and isolates (U+202A–U+202E, U+2066–U+2069), which can make a
//! terminal show a name other than the one printed. Each becomes `\xHH` (or
//! `\u{HHHH}` above U+00FF); everything else is printed as it is.

use std::fmt::{self, Write};

/// Displays a string with its control characters escaped (see the module
/// docs).
#[derive(Debug, Clone, Copy)]
pub struct Safe<'a>(pub &'a str);

/// Whether `c` must not reach a terminal raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Safe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if !s.chars().any(is_unsafe) {
            // The common case keeps width/alignment flags working.
            return f.pad(s);
        }
        let mut out = String::with_capacity(s.len() + 8);
        for c in s.chars() {
            if !is_unsafe(c) {
                out.push(c);
            } else if (c as u32) <= 0xff {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
        }
        f.pad(&out)
    }
}

/// `s` with its control characters escaped, as an owned string.
pub fn safe(s: &str) -> String {
    Safe(s).to_string()
}

/// Pretty-printed JSON that is also safe on a terminal: JSON escapes
/// the C0 controls itself, and this escapes what it leaves raw (DEL, the
/// C1 controls and the bidirectional overrides) as `\uXXXX`, which every
/// JSON reader decodes back to the same string.
pub fn json(value: &serde_json::Value) -> serde_json::Result<String> {
    let text = serde_json::to_string_pretty(value)?;
    if !text.chars().any(is_unsafe) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        // Outside strings JSON has only ASCII structure and white space,
        // which `to_string_pretty` writes as `\n` and spaces: every unsafe
        // character left is inside a string.
        if is_unsafe(c) && c != '\n' {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert_eq!(safe("a\x1b[2Jb\x07\r\n"), "a\\x1b[2Jb\\x07\\x0d\\x0a");
        assert_eq!(safe("x\u{202e}y\u{85}"), "x\\u{202e}y\\x85");
        assert_eq!(safe("plain näme"), "plain näme");
        assert_eq!(format!("{:>6}", Safe("ab")), "    ab");
    }

    #[test]
    fn json_is_escaped_and_round_trips() {
        let v = serde_json::json!({ "n": "a\u{202e}b\u{85}c\u{7f}\x1b" });
        let text = json(&v).unwrap();
        assert!(!text.chars().any(|c| is_unsafe(c) && c != '\n'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
