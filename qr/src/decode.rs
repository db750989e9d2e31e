//! Reading a QR code from a screenshot or a photo.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;
use std::io::Cursor;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use image::imageops::FilterType;
use image::{GrayImage, ImageReader, Limits};

use crate::QrError;

/// The largest image file read: a phone photo is a few megabytes.
pub const MAX_IMAGE_BYTES: u64 = 32 * 1024 * 1024;
/// The largest side, in pixels, of an image read (a 12-megapixel photo is
/// 4000x3000).
pub const MAX_IMAGE_PIXELS: u32 = 10_000;
/// Memory the image decoder may take.
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;
/// Images are searched at this size first: a code fills much of a photo
/// of it, and the detector is much faster on fewer pixels.
const SEARCH_SIDE: u32 = 1600;
/// The longest the search of one image may take (both sizes together).
/// A photo of a code is read in well under a second; the detector's work
/// grows with the cube of the finder-like squares an image shows, so a
/// few kilobytes of PNG drawn full of them would keep it busy for many
/// minutes. Such an image is refused after this.
pub const MAX_SEARCH_TIME: Duration = Duration::from_secs(10);
/// Searches past their time whose thread still runs (the detector cannot
/// be stopped; its thread ends with the search or the process): while
/// this many run, no new search starts, so a run reading many images
/// never has more than this many threads lost to them.
const MAX_OVERDUE: usize = 2;
static OVERDUE: AtomicUsize = AtomicUsize::new(0);

/// Whether `bytes` start like an image this crate reads (PNG or JPEG),
/// rather than an armored or binary tessera file.
#[must_use]
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xff, 0xd8, 0xff])
}

/// Reads the one QR code in a PNG or JPEG image and returns its payload
/// bytes.
///
/// The image is searched scaled down to 1600 pixels a side first, then, if
/// nothing is found there, at full size. Several readings of the same
/// payload (a code found twice) count once.
///
/// # Errors
/// [`QrError::FileTooLarge`], [`QrError::TooManyPixels`],
/// [`QrError::NotAnImage`], [`QrError::NoCode`], [`QrError::Unreadable`],
/// [`QrError::SeveralCodes`].
pub fn decode_image(bytes: &[u8]) -> Result<Vec<u8>, QrError> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > MAX_IMAGE_BYTES {
        return Err(QrError::FileTooLarge {
            len,
            max: MAX_IMAGE_BYTES,
        });
    }
    let grey = load(bytes)?;
    let deadline = Instant::now() + MAX_SEARCH_TIME;
    let (width, height) = grey.dimensions();
    let long = width.max(height);
    if long > SEARCH_SIDE {
        let scale = f64::from(SEARCH_SIDE) / f64::from(long);
        let small = image::imageops::resize(
            &grey,
            scaled(width, scale),
            scaled(height, scale),
            FilterType::Triangle,
        );
        match search_until(small, deadline) {
            Err(QrError::NoCode | QrError::Unreadable { .. }) => {}
            found => return found,
        }
    }
    search_until(grey, deadline)
}

/// [`search`] on a thread of its own, given up at `deadline` with
/// [`QrError::TooSlow`]; refused at once while [`MAX_OVERDUE`] searches
/// given up before still run.
fn search_until(grey: GrayImage, deadline: Instant) -> Result<Vec<u8>, QrError> {
    let too_slow = QrError::TooSlow {
        seconds: MAX_SEARCH_TIME.as_secs(),
    };
    if OVERDUE.load(Ordering::Acquire) >= MAX_OVERDUE {
        return Err(too_slow);
    }
    // Set by whichever side leaves first: the search when it ends, the
    // caller when it gives up. The caller counts a search overdue before
    // it sets it, and the side that finds it set takes the count back, so
    // the count never goes below zero.
    let left = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel(1);
    let search_left = Arc::clone(&left);
    std::thread::Builder::new()
        .name("qr-search".into())
        .spawn(move || {
            let found = search(&grey);
            if search_left.swap(true, Ordering::AcqRel) {
                OVERDUE.fetch_sub(1, Ordering::AcqRel);
            }
            let _ = tx.send(found);
        })
        .map_err(|e| QrError::Unreadable {
            reason: format!("cannot start the search: {e}"),
        })?;
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(found) => found,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            OVERDUE.fetch_add(1, Ordering::AcqRel);
            if left.swap(true, Ordering::AcqRel) {
                // The search ended meanwhile: its answer is (or is about
                // to be) in the channel.
                OVERDUE.fetch_sub(1, Ordering::AcqRel);
                return rx.recv().unwrap_or(Err(too_slow));
            }
            Err(too_slow)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(QrError::Unreadable {
            reason: "the search stopped".into(),
        }),
    }
}

fn scaled(side: u32, scale: f64) -> u32 {
    // The product is below SEARCH_SIDE, so it fits; at least one pixel.
    let v = (f64::from(side) * scale).round();
    if v < 1.0 {
        1
    } else if v > f64::from(u32::MAX) {
        u32::MAX
    } else {
        // Checked above: 1 <= v <= u32::MAX.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let side = v as u32;
        side
    }
}

/// Whether `bytes` are an SVG image (as [`crate::Qr::to_svg`] writes one):
/// text whose first element, after any XML declaration, is `svg`.
#[must_use]
pub fn is_svg(bytes: &[u8]) -> bool {
    let head = bytes.get(..bytes.len().min(1024)).unwrap_or_default();
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let text = match text.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or("", |(_, r)| r).trim_start(),
        None => text,
    };
    text.starts_with("<svg")
}

/// Reads the one QR code of an SVG image of the shape tessera writes
/// ([`crate::Qr::to_svg`]: `width` and `height` on the `svg` element, the
/// dark modules as rectangles in `path` data made of `M`, `h`, `v`, `H`,
/// `V`), and returns its payload. The modules are drawn one pixel per
/// SVG unit and read as [`decode_image`] reads a PNG.
///
/// # Errors
/// [`QrError::FileTooLarge`]; [`QrError::NotAnImage`] for SVG of another
/// shape (curves, transforms, no size) or a side over
/// [`MAX_IMAGE_PIXELS`]; then as [`decode_image`].
pub fn decode_svg(bytes: &[u8]) -> Result<Vec<u8>, QrError> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > MAX_IMAGE_BYTES {
        return Err(QrError::FileTooLarge {
            len,
            max: MAX_IMAGE_BYTES,
        });
    }
    let other = |what: &str| {
        QrError::NotAnImage {
        reason: format!("an SVG image not of the shape tessera writes ({what}); use a PNG or JPEG photo or screenshot of the code"),
    }
    };
    let text = core::str::from_utf8(bytes).map_err(|_| other("not UTF-8"))?;
    let start = text.find("<svg").ok_or_else(|| other("no svg element"))?;
    let tag = text
        .get(start..)
        .and_then(|t| t.split_once('>'))
        .map(|(t, _)| t)
        .ok_or_else(|| other("no svg element"))?;
    let side = |name: &str| -> Result<u32, QrError> {
        let v = attribute(tag, name).ok_or_else(|| other("no width or height"))?;
        let v: u32 = v
            .trim()
            .parse()
            .map_err(|_| other("a width or height that is not a whole number"))?;
        if v == 0 || v > MAX_IMAGE_PIXELS {
            return Err(QrError::TooManyPixels {
                width: v,
                height: v,
                max_side: MAX_IMAGE_PIXELS,
            });
        }
        Ok(v)
    };
    let (width, height) = (side("width")?, side("height")?);
    let mut grey = GrayImage::from_pixel(width, height, image::Luma([255]));
    // tessera paints each dark module once: rectangles that paint more
    // than the image twice over are not its drawing, and painting them
    // would let a small file cost unbounded time (a million full-size
    // rectangles in a 32 MiB file).
    let area = u64::from(width) * u64::from(height);
    let mut painted = 0u64;
    let mut rest = text;
    let mut paths = 0usize;
    while let Some(at) = rest.find("<path") {
        let element = rest.get(at..).unwrap_or_default();
        let end = element.find('>').ok_or_else(|| other("an unclosed path"))?;
        let tag = element.get(..end).unwrap_or_default();
        rest = element.get(end..).unwrap_or_default();
        let dark =
            attribute(tag, "fill").is_none_or(|f| f == "#000000" || f == "#000" || f == "black");
        if !dark {
            continue;
        }
        let d = attribute(tag, "d").ok_or_else(|| other("a path without data"))?;
        for (x0, y0, x1, y1) in
            rectangles(d).ok_or_else(|| other("path data other than rectangles"))?
        {
            let (w, h) = (
                x1.min(width).saturating_sub(x0),
                y1.min(height).saturating_sub(y0),
            );
            painted += u64::from(w) * u64::from(h);
            if painted > 2 * area {
                return Err(other("rectangles painted over each other"));
            }
            for y in y0..y1.min(height) {
                for x in x0..x1.min(width) {
                    grey.put_pixel(x, y, image::Luma([0]));
                }
            }
        }
        paths += 1;
    }
    if paths == 0 {
        return Err(QrError::NoCode);
    }
    search_until(grey, Instant::now() + MAX_SEARCH_TIME)
}

/// The value of the attribute `name="..."` in the element text `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = tag.get(from..)?.find(name) {
        let i = from + at;
        let before = tag.get(..i)?.chars().next_back();
        let after = tag.get(i + name.len()..)?;
        if before.is_some_and(char::is_whitespace) {
            if let Some(value) = after.strip_prefix("=\"") {
                return value.split_once('"').map(|(v, _)| v);
            }
        }
        from = i + name.len();
    }
    None
}

/// The rectangles of path data made of subpaths `M x y` followed by `h`,
/// `v`, `H`, `V` moves (each subpath the box of its points), in whole
/// SVG units; `None` for any other command.
fn rectangles(d: &str) -> Option<Vec<(u32, u32, u32, u32)>> {
    fn boxed(points: &[(f64, f64)]) -> Option<(u32, u32, u32, u32)> {
        let px = |v: f64| -> Option<u32> {
            let r = v.round();
            // A side is at most MAX_IMAGE_PIXELS, far below u32::MAX.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let p = (r >= 0.0 && r <= f64::from(MAX_IMAGE_PIXELS)).then_some(r as u32);
            p
        };
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &(x, y) in points {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        Some((px(x0)?, px(y0)?, px(x1)?, px(y1)?))
    }
    let mut out = Vec::new();
    let mut points: Vec<(f64, f64)> = Vec::new();
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let mut chars = d.char_indices().peekable();
    let number = |chars: &mut core::iter::Peekable<core::str::CharIndices<'_>>| -> Option<f64> {
        while chars
            .next_if(|(_, c)| c.is_whitespace() || *c == ',')
            .is_some()
        {}
        let (start, _) = *chars.peek()?;
        let mut end = start;
        while let Some((i, c)) =
            chars.next_if(|(_, c)| c.is_ascii_digit() || *c == '.' || *c == '-')
        {
            end = i + c.len_utf8();
        }
        d.get(start..end)?.parse().ok()
    };
    while let Some((_, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            'M' => {
                if points.len() > 1 {
                    out.push(boxed(&points)?);
                }
                x = number(&mut chars)?;
                y = number(&mut chars)?;
                points = vec![(x, y)];
            }
            'h' => x += number(&mut chars)?,
            'v' => y += number(&mut chars)?,
            'H' => x = number(&mut chars)?,
            'V' => y = number(&mut chars)?,
            'Z' | 'z' => {}
            _ => return None,
        }
        if matches!(c, 'h' | 'v' | 'H' | 'V') {
            points.push((x, y));
        }
    }
    if points.len() > 1 {
        out.push(boxed(&points)?);
    }
    Some(out)
}

fn load(bytes: &[u8]) -> Result<GrayImage, QrError> {
    let not_an_image = |e: &dyn core::fmt::Display| QrError::NotAnImage {
        reason: e.to_string(),
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| not_an_image(&e))?;
    if reader.format().is_none() {
        return Err(QrError::NotAnImage {
            reason: "neither PNG nor JPEG".into(),
        });
    }
    let (width, height) = reader.into_dimensions().map_err(|e| not_an_image(&e))?;
    if width > MAX_IMAGE_PIXELS || height > MAX_IMAGE_PIXELS {
        return Err(QrError::TooManyPixels {
            width,
            height,
            max_side: MAX_IMAGE_PIXELS,
        });
    }
    // `into_dimensions` consumed the reader: open it again to decode, with
    // the decoder's own limits as a second fence.
    reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| not_an_image(&e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_PIXELS);
    limits.max_image_height = Some(MAX_IMAGE_PIXELS);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    Ok(reader.decode().map_err(|e| not_an_image(&e))?.into_luma8())
}

/// The payload of the one code in `grey`.
fn search(grey: &GrayImage) -> Result<Vec<u8>, QrError> {
    let (width, height) = grey.dimensions();
    let (Ok(w), Ok(h)) = (usize::try_from(width), usize::try_from(height)) else {
        return Err(QrError::NoCode);
    };
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        match (u32::try_from(x), u32::try_from(y)) {
            (Ok(x), Ok(y)) => grey.get_pixel_checked(x, y).map_or(255, |p| p.0[0]),
            _ => 255,
        }
    });
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut last_error = None;
    for grid in prepared.detect_grids() {
        let mut payload = Vec::new();
        match grid.decode_to(&mut payload) {
            Ok(_) if !payloads.contains(&payload) => payloads.push(payload),
            Ok(_) => {}
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    match payloads.len() {
        1 => Ok(payloads.swap_remove(0)),
        0 => Err(last_error.map_or(QrError::NoCode, |reason| QrError::Unreadable { reason })),
        count => Err(QrError::SeveralCodes { count }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_tessera_writes_reads_back() {
        for len in [283usize, 495, 900] {
            let payload: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i * 7 % 256).unwrap())
                .collect();
            let svg = crate::encode(&payload).unwrap().to_svg();
            assert!(is_svg(svg.as_bytes()));
            assert!(!is_image(svg.as_bytes()));
            assert_eq!(decode_svg(svg.as_bytes()).unwrap(), payload, "{len}");
        }
        let png = crate::encode(b"x").unwrap().to_png().unwrap();
        assert!(!is_svg(&png));
    }

    #[test]
    fn other_svg_is_refused_with_a_reason() {
        let curve = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><path d="M10 10 C 20 20, 40 20, 50 10"/></svg>"#;
        assert!(is_svg(curve.as_bytes()));
        assert!(matches!(
            decode_svg(curve.as_bytes()),
            Err(QrError::NotAnImage { .. })
        ));
        let no_size = r#"<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h8v8H0V0"/></svg>"#;
        assert!(matches!(
            decode_svg(no_size.as_bytes()),
            Err(QrError::NotAnImage { .. })
        ));
        let huge = r#"<svg width="99999" height="99999"><path d="M0 0h8v8H0V0"/></svg>"#;
        assert!(matches!(
            decode_svg(huge.as_bytes()),
            Err(QrError::TooManyPixels { .. })
        ));
        // Full-size rectangles painted again and again: refused after the
        // image's area twice over, not painted a hundred thousand times.
        let mut over = String::from(r#"<svg width="10000" height="10000">"#);
        for _ in 0..100_000 {
            over.push_str(r#"<path d="M0 0h10000v10000H0V0"/>"#);
        }
        over.push_str("</svg>");
        let start = std::time::Instant::now();
        assert!(matches!(
            decode_svg(over.as_bytes()),
            Err(QrError::NotAnImage { .. })
        ));
        assert!(start.elapsed() < core::time::Duration::from_secs(20));
        let blank = r##"<svg width="100" height="100"><rect x="0" y="0" width="100" height="100" fill="#ffffff"/></svg>"##;
        assert!(matches!(decode_svg(blank.as_bytes()), Err(QrError::NoCode)));
    }
}
