//! An image drawn to stall the QR detector is refused in bounded time.
//!
//! The detector's work grows with the cube of the finder-like squares an
//! image shows: a 500x500 PNG of a few kilobytes, covered with 1,681 of
//! them (25 KB as this test writes it, 1.2 KB compressed harder), keeps
//! it busy for about 20 s in a release build (minutes in a
//! test build). A search is given up after [`MAX_SEARCH_TIME`], and once
//! two given-up searches still run, the next is refused at once.
//!
//! A file of its own: the count of given-up searches is the process's,
//! and would refuse the other tests' images while these run.
#![allow(clippy::unwrap_used, clippy::panic)]

use core::time::Duration;
use std::io::Cursor;
use std::time::Instant;

use image::{GrayImage, ImageFormat, Luma};
use tessera_qr::{decode_image, QrError, MAX_SEARCH_TIME};

/// A `side` x `side` PNG covered with finder patterns (7x7 modules of one
/// pixel: dark ring, light ring, dark 3x3 centre), one every 12 pixels.
fn finder_patterns(side: u32) -> Vec<u8> {
    let mut img = GrayImage::from_pixel(side, side, Luma([255]));
    for oy in (2..side.saturating_sub(9)).step_by(12) {
        for ox in (2..side.saturating_sub(9)).step_by(12) {
            for y in 0..7u32 {
                for x in 0..7u32 {
                    let ring = x.min(y).min(6 - x).min(6 - y);
                    if ring != 1 {
                        img.put_pixel(ox + x, oy + y, Luma([0]));
                    }
                }
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn refused_in(png: &[u8]) -> Duration {
    let start = Instant::now();
    match decode_image(png) {
        Err(QrError::TooSlow { seconds }) => assert_eq!(seconds, MAX_SEARCH_TIME.as_secs()),
        other => panic!("expected TooSlow, got {other:?}"),
    }
    start.elapsed()
}

#[test]
fn an_image_that_stalls_the_detector_is_refused_in_bounded_time() {
    let png = finder_patterns(500);
    assert!(png.len() < 64 * 1024, "{} bytes", png.len());
    // Two searches are each given up at their time (their threads run
    // on, stuck in the detector) ...
    for _ in 0..2 {
        let took = refused_in(&png);
        assert!(took >= MAX_SEARCH_TIME, "{took:?}");
        assert!(took < MAX_SEARCH_TIME + Duration::from_secs(5), "{took:?}");
    }
    // ... and while they run, the next is refused at once.
    let took = refused_in(&png);
    assert!(took < Duration::from_secs(2), "{took:?}");
}
