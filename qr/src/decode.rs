//! Reading a QR code from a screenshot or a photo.

use std::io::Cursor;

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
        match search(&small) {
            Err(QrError::NoCode | QrError::Unreadable { .. }) => {}
            found => return found,
        }
    }
    search(&grey)
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
