//! Real licenses and requests through PNG, an independent decoder, and
//! photo-like images: scaled, rotated 5 to 10 degrees, blurred, noisy,
//! JPEG-compressed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use std::io::Cursor;
use std::process::Command;

use image::codecs::jpeg::JpegEncoder;
use image::{GrayImage, ImageFormat, Luma};
use tessera_qr::{decode_image, encode, is_image, QrError};
use tessera_tests::tools::require_tool;
use tessera_verifier::encode::{sign_license, sign_request};
use tessera_verifier::samples::{self, seed_signer, TEST_KEY_1_SEED};

fn typical_license() -> Vec<u8> {
    sign_license(&samples::typical(), &[1; 8], seed_signer(TEST_KEY_1_SEED)).unwrap()
}

fn request() -> Vec<u8> {
    sign_request(&samples::request(), seed_signer(TEST_KEY_1_SEED)).unwrap()
}

fn grey(png: &[u8]) -> GrayImage {
    image::load_from_memory(png).unwrap().into_luma8()
}

fn png_of(img: &GrayImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg_of(img: &GrayImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}

/// A small deterministic generator for the noise (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-amplitude, amplitude].
    fn noise(&mut self, amplitude: i32) -> i32 {
        (self.next() % (2 * amplitude as u64 + 1)) as i32 - amplitude
    }
}

/// What a phone makes of a code on a screen: the code scaled by `scale`,
/// rotated by `degrees` on a grey desk, blurred, with uneven light and
/// sensor noise.
fn photo(code: &GrayImage, scale: f64, degrees: f64, blur: f32, noise: i32) -> GrayImage {
    let (cw, ch) = code.dimensions();
    let scaled = image::imageops::resize(
        code,
        (f64::from(cw) * scale) as u32,
        (f64::from(ch) * scale) as u32,
        image::imageops::FilterType::CatmullRom,
    );
    let (sw, sh) = scaled.dimensions();
    let (w, h) = (sw + sw / 2, sh + sh / 3);
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = GrayImage::new(w, h);
    for (x, y, px) in out.enumerate_pixels_mut() {
        // Inverse rotation about the centre, then bilinear sampling.
        let (dx, dy) = (f64::from(x) - cx, f64::from(y) - cy);
        let sx = cos * dx + sin * dy + f64::from(sw) / 2.0;
        let sy = -sin * dx + cos * dy + f64::from(sh) / 2.0;
        let desk = 120.0;
        let v = if sx >= 0.0 && sy >= 0.0 && sx < f64::from(sw - 1) && sy < f64::from(sh - 1) {
            let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
            let (fx, fy) = (sx - sx.floor(), sy - sy.floor());
            let p = |x, y| f64::from(scaled.get_pixel(x, y).0[0]);
            p(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + p(x0 + 1, y0) * fx * (1.0 - fy)
                + p(x0, y0 + 1) * (1.0 - fx) * fy
                + p(x0 + 1, y0 + 1) * fx * fy
        } else {
            desk
        };
        // A screen is not black and white in a photo, and the light falls
        // off towards one corner.
        let light = 0.85 + 0.15 * f64::from(x + y) / f64::from(w + h);
        let v = (30.0 + v * 0.75) * light;
        *px = Luma([(v as i32 + rng.noise(noise)).clamp(0, 255) as u8]);
    }
    image::imageops::blur(&out, blur)
}

#[test]
fn a_typical_license_round_trips_through_png_within_version_20() {
    let license = typical_license();
    assert_eq!(license.len(), 495, "the README's typical license");
    let qr = encode(&license).unwrap();
    assert!(qr.version() <= 20, "{}", qr.describe());
    assert!(qr.ec_level() >= 'M');
    let png = qr.to_png().unwrap();
    assert!(is_image(&png));
    assert_eq!(decode_image(&png).unwrap(), license);
    let req = request();
    assert_eq!(
        decode_image(&encode(&req).unwrap().to_png().unwrap()).unwrap(),
        req
    );
}

#[test]
fn photo_like_images_still_decode() {
    let license = typical_license();
    let code = grey(&encode(&license).unwrap().to_png().unwrap());
    // (scale, rotation in degrees, blur sigma, noise amplitude, JPEG quality)
    let shots = [
        (1.5, 7.0, 1.2, 20, 80),
        (0.8, -5.0, 0.8, 15, 85),
        (2.2, 10.0, 2.0, 25, 70),
        (1.1, -9.0, 1.0, 30, 75),
    ];
    for (scale, degrees, blur, noise, quality) in shots {
        let shot = photo(&code, scale, degrees, blur, noise);
        let jpeg = jpeg_of(&shot, quality);
        if let Some(dir) = std::env::var_os("TESSERA_QR_SAVE_PHOTOS") {
            let name = format!("photo-{scale}-{degrees}.jpg");
            std::fs::write(std::path::Path::new(&dir).join(name), &jpeg).unwrap();
        }
        assert!(is_image(&jpeg));
        let read = decode_image(&jpeg).unwrap_or_else(|e| {
            panic!("scale {scale}, {degrees}°, blur {blur}, noise {noise}, q{quality}: {e}")
        });
        assert_eq!(read, license);
    }
}

#[test]
fn a_large_photo_is_searched_scaled_down_then_in_full() {
    let license = typical_license();
    let code = grey(&encode(&license).unwrap().to_png().unwrap());
    // 4 MP: searched at 1600 pixels first.
    let big = photo(&code, 3.0, 6.0, 1.5, 10);
    assert!(big.width() > 1600);
    assert_eq!(decode_image(&jpeg_of(&big, 80)).unwrap(), license);
    // A small code in a big picture: too small once scaled down, found at
    // full size.
    let mut wide = GrayImage::from_pixel(3600, 900, Luma([200]));
    image::imageops::overlay(&mut wide, &code, 2800, 0);
    assert_eq!(decode_image(&png_of(&wide)).unwrap(), license);
}

#[test]
fn an_independent_decoder_reads_the_png() {
    let Some(zbarimg) = require_tool("zbarimg", "zbar-tools") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for payload in [typical_license(), request()] {
        let path = dir.path().join("code.png");
        std::fs::write(&path, encode(&payload).unwrap().to_png().unwrap()).unwrap();
        let out = Command::new(&zbarimg)
            .args(["--quiet", "--raw", "-Sbinary"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // zbarimg may end its output with a newline.
        let read = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
        assert_eq!(read, payload.as_slice(), "{} bytes read", read.len());
    }
}

#[test]
fn what_is_not_one_readable_code_is_refused_by_name() {
    let license = typical_license();
    let e = decode_image(b"-----BEGIN TESSERA LICENSE-----").unwrap_err();
    assert!(matches!(e, QrError::NotAnImage { .. }), "{e:?}");
    assert!(!is_image(b"-----BEGIN TESSERA LICENSE-----"));
    assert!(!is_image(&license));

    let blank = png_of(&GrayImage::from_pixel(400, 300, Luma([255])));
    assert!(matches!(decode_image(&blank), Err(QrError::NoCode)));

    let png = encode(&license).unwrap().to_png().unwrap();
    let e = decode_image(&png[..png.len() / 2]).unwrap_err();
    assert!(matches!(e, QrError::NotAnImage { .. }), "{e:?}");

    // Two different codes side by side.
    let a = grey(&png);
    let b = grey(&encode(&request()).unwrap().to_png().unwrap());
    let mut both = GrayImage::from_pixel(
        a.width() + b.width(),
        a.height().max(b.height()),
        Luma([255]),
    );
    image::imageops::overlay(&mut both, &a, 0, 0);
    image::imageops::overlay(&mut both, &b, i64::from(a.width()), 0);
    let e = decode_image(&png_of(&both)).unwrap_err();
    assert!(matches!(e, QrError::SeveralCodes { count: 2 }), "{e:?}");

    // A PNG header claiming 20000x20000 pixels: refused before decoding.
    let huge = png_of(&GrayImage::new(1, 1));
    let mut forged = huge.clone();
    // IHDR width and height follow the 8-byte signature and the chunk's
    // length and type; the CRC no longer matches, which the size check
    // never gets to.
    forged[16..20].copy_from_slice(&20_000u32.to_be_bytes());
    forged[20..24].copy_from_slice(&20_000u32.to_be_bytes());
    let e = decode_image(&forged).unwrap_err();
    assert!(
        matches!(
            e,
            QrError::TooManyPixels { .. } | QrError::NotAnImage { .. }
        ),
        "{e:?}"
    );

    let too_big = vec![0u8; usize::try_from(tessera_qr::MAX_IMAGE_BYTES).unwrap() + 1];
    assert!(matches!(
        decode_image(&too_big),
        Err(QrError::FileTooLarge { .. })
    ));
}
