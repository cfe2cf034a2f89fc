//! Icons: `.ico` files checked to be real ICO images before they are
//! published beside the OSDs.

use std::io::Cursor;

use crate::error::Error;

/// Largest `.ico` file accepted (real ones are well under 1 MiB).
pub const MAX_ICON_BYTES: usize = 4 << 20;
/// Most images in one `.ico`.
const MAX_IMAGES: usize = 64;
/// Largest width or height of one image (ICO tops out at 256; headroom
/// for odd PNG-in-ICO files).
const MAX_SIDE: u32 = 1024;

/// What a valid icon holds.
///
/// ```
/// let info = sft::publish::validate_icon(&sft::publish::tiny_icon())?;
/// assert_eq!(info.sizes, [(16, 16)]);
/// # Ok::<(), sft::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IconInfo {
    /// Width and height of each image, in file order.
    pub sizes: Vec<(u32, u32)>,
}

/// Check that `bytes` are an ICO file (not a cursor) with at least one
/// image, and that every image decodes (BMP or PNG) — with the `ico`
/// crate, after bounding the file size, image count, each image's
/// extent and its declared dimensions so decoding cannot allocate
/// without limit.
///
/// ```
/// use sft::publish::validate_icon;
/// assert!(validate_icon(b"not an icon").is_err());
/// assert!(validate_icon(&sft::publish::tiny_icon()).is_ok());
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] saying what is wrong.
pub fn validate_icon(bytes: &[u8]) -> Result<IconInfo, Error> {
    let bad = |m: &str| Error::invalid(format!("not a valid .ico file: {m}"));
    if bytes.len() > MAX_ICON_BYTES {
        return Err(bad(&format!("larger than {MAX_ICON_BYTES} bytes")));
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(0), Some(kind), Some(count)) = (u16_at(0), u16_at(2), u16_at(4)) else {
        return Err(bad("no ICONDIR header"));
    };
    if kind != 1 {
        return Err(bad("resource type is not icon (1)"));
    }
    let count = usize::from(count);
    if count == 0 || count > MAX_IMAGES {
        return Err(bad(&format!("{count} images (expected 1 to {MAX_IMAGES})")));
    }
    for i in 0..count {
        let at = 6 + 16 * i;
        let (Some(size), Some(offset)) = (u32_at(at + 8), u32_at(at + 12)) else {
            return Err(bad("directory truncated"));
        };
        let (size, offset) = (size as usize, offset as usize);
        let data = offset
            .checked_add(size)
            .and_then(|end| bytes.get(offset..end))
            .ok_or_else(|| bad(&format!("image {i} lies outside the file")))?;
        let (w, h) = if data.starts_with(b"\x89PNG\r\n\x1a\n") {
            let be = |o: usize| {
                data.get(o..o + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            };
            (be(16), be(20))
        } else {
            let le = |o: usize| {
                data.get(o..o + 4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]).unsigned_abs())
            };
            (le(4), le(8).map(|h| h / 2))
        };
        match (w, h) {
            (Some(w), Some(h)) if w > 0 && h > 0 && w <= MAX_SIDE && h <= MAX_SIDE => {}
            _ => return Err(bad(&format!("image {i} has no sane dimensions"))),
        }
    }
    let dir = ico::IconDir::read(Cursor::new(bytes)).map_err(|e| bad(&e.to_string()))?;
    let mut sizes = Vec::with_capacity(dir.entries().len());
    for (i, entry) in dir.entries().iter().enumerate() {
        let image = entry
            .decode()
            .map_err(|e| bad(&format!("image {i}: {e}")))?;
        sizes.push((image.width(), image.height()));
    }
    Ok(IconInfo { sizes })
}

/// A valid 16×16 icon (one 32-bit image), for examples and tests.
///
/// ```
/// assert!(sft::publish::validate_icon(&sft::publish::tiny_icon()).is_ok());
/// ```
pub fn tiny_icon() -> Vec<u8> {
    let mut rgba = vec![0u8; 16 * 16 * 4];
    for (i, px) in rgba.chunks_exact_mut(4).enumerate() {
        px.copy_from_slice(&[(i * 7) as u8, 0x80, 0x40, 0xFF]);
    }
    let image = ico::IconImage::from_rgba_data(16, 16, rgba);
    let mut dir = ico::IconDir::new(ico::ResourceType::Icon);
    let mut out = Vec::new();
    if let Ok(entry) = ico::IconDirEntry::encode_as_bmp(&image) {
        dir.add_entry(entry);
        let _ = dir.write(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_lies() {
        let mut good = tiny_icon();
        assert!(validate_icon(&good).is_ok());
        // Offset past the end.
        good[6 + 12..6 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(validate_icon(&good).is_err());
        let mut cursor = tiny_icon();
        cursor[2] = 2;
        assert!(validate_icon(&cursor).is_err());
        let mut huge = tiny_icon();
        let off = u32::from_le_bytes(huge[18..22].try_into().unwrap()) as usize;
        huge[off + 4..off + 8].copy_from_slice(&100_000i32.to_le_bytes());
        assert!(validate_icon(&huge).is_err());
    }
}
