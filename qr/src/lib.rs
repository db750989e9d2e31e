//! # tessera-qr
//!
//! Licenses and requests as one QR code, for the hop between an air-gapped
//! PBX's screen and a phone, and back.
//!
//! - **Payload**: the binary COSE object itself (what the armored file
//!   carries in base64), in byte mode. Alphanumeric mode with base45 needs
//!   16.5 bits per 2 bytes against byte mode's 16, so from 21 bytes on (any
//!   license or request is longer) byte mode is the smaller code
//!   ([`alphanumeric_bits`] / [`byte_bits`]: 3,980 against 4,102 bits for a
//!   typical license).
//! - **Error correction**: M at least; Q or H when the code keeps the same
//!   version with them (more damage tolerated at no cost in size). A
//!   typical license (495 bytes) is version 17-M, a request (283 bytes)
//!   version 12-M.
//! - **Output**: PNG ([`Qr::to_png`]), SVG ([`Qr::to_svg`]) and the
//!   terminal with Unicode half blocks ([`Qr::to_terminal`]), each with the
//!   4-module quiet zone.
//! - **Input**: [`decode_image`] reads PNG or JPEG bytes (a screenshot or a
//!   photo: scaled, a little rotated, blurred, noisy) with a size cap on
//!   the file and on the decoded pixels, and returns the payload;
//!   [`decode_svg`] reads the SVG images [`Qr::to_svg`] writes.
//!
//! ```
//! let payload = b"\xd2\x84 a COSE object";
//! let qr = tessera_qr::encode(payload).unwrap();
//! let png = qr.to_png().unwrap();
//! assert_eq!(tessera_qr::decode_image(&png).unwrap(), payload);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod decode;
mod encode;
mod error;

pub use decode::{
    decode_image, decode_svg, is_image, is_svg, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_SEARCH_TIME,
};
pub use encode::{alphanumeric_bits, byte_bits, encode, Ink, Qr, QUIET_ZONE};
pub use error::QrError;
