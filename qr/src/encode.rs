//! Making a QR code and rendering it.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use qrcode::render::svg;
use qrcode::types::QrError as EncodeError;
use qrcode::{Color, EcLevel, QrCode, Version};

use crate::QrError;

/// The quiet zone (white border) around every rendering, in modules: the
/// 4 that ISO/IEC 18004 asks for.
pub const QUIET_ZONE: usize = 4;
/// Pixels per module in a PNG: a version 17 code is 744 pixels wide.
const PNG_MODULE_PX: usize = 8;
/// The most bytes one code holds in byte mode at error correction M
/// (version 40-M).
const MAX_PAYLOAD_M: usize = 2331;

/// A QR code holding one payload.
pub struct Qr {
    code: QrCode,
}

impl core::fmt::Debug for Qr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Qr({})", self.describe())
    }
}

/// How the terminal draws: light-on-dark paints the light modules, with
/// explicit colors, so the code reads on any terminal theme; dark-on-light
/// paints the dark modules in plain text (files, printouts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ink {
    /// ANSI white on black: for terminals.
    LightOnDark,
    /// No escape sequences, dark modules as blocks: for files and paper.
    DarkOnLight,
}

/// Encodes `payload` (the binary COSE object) in byte mode at error
/// correction M, or Q or H when they fit in the same version.
///
/// # Errors
/// [`QrError::TooLarge`] when it does not fit in version 40-M.
pub fn encode(payload: &[u8]) -> Result<Qr, QrError> {
    let too_large = |e: EncodeError| match e {
        EncodeError::DataTooLong => QrError::TooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_M,
        },
        other => QrError::Encoding {
            what: "QR code",
            reason: other.to_string(),
        },
    };
    let at_m = QrCode::with_error_correction_level(payload, EcLevel::M).map_err(too_large)?;
    let version = at_m.version();
    for level in [EcLevel::H, EcLevel::Q] {
        if let Ok(code) = QrCode::with_version(payload, version, level) {
            return Ok(Qr { code });
        }
    }
    Ok(Qr { code: at_m })
}

/// Bits of a byte-mode segment holding `len` bytes (mode indicator and
/// character count for versions 10 to 40 included).
#[must_use]
pub fn byte_bits(len: usize) -> usize {
    4 + 16 + 8 * len
}

/// Bits of an alphanumeric segment holding `len` bytes as base45 (RFC
/// 9285: 2 bytes as 3 characters, a last odd byte as 2), for versions 10
/// to 26 (a 11-bit count; 13 bits from version 27 on).
#[must_use]
pub fn alphanumeric_bits(len: usize) -> usize {
    let chars = 3 * (len / 2) + 2 * (len % 2);
    4 + 11 + 11 * (chars / 2) + 6 * (chars % 2)
}

impl Qr {
    /// The version (1 to 40): the code is `17 + 4 × version` modules wide.
    #[must_use]
    pub fn version(&self) -> i16 {
        match self.code.version() {
            Version::Normal(v) | Version::Micro(v) => v,
        }
    }

    /// The error correction level: 'M', 'Q' or 'H'.
    #[must_use]
    pub fn ec_level(&self) -> char {
        match self.code.error_correction_level() {
            EcLevel::L => 'L',
            EcLevel::M => 'M',
            EcLevel::Q => 'Q',
            EcLevel::H => 'H',
        }
    }

    /// Modules per side, without the quiet zone.
    #[must_use]
    pub fn width(&self) -> usize {
        self.code.width()
    }

    /// A greyscale PNG, 8 pixels per module, with the quiet zone.
    ///
    /// # Errors
    /// [`QrError::Encoding`], which does not happen in practice.
    pub fn to_png(&self) -> Result<Vec<u8>, QrError> {
        let modules = self.width() + 2 * QUIET_ZONE;
        let side = modules * PNG_MODULE_PX;
        let mut pixels = vec![255u8; side * side];
        for (i, px) in pixels.iter_mut().enumerate() {
            let (x, y) = (i % side / PNG_MODULE_PX, i / side / PNG_MODULE_PX);
            if self.module_at(x, y) {
                *px = 0;
            }
        }
        let side = u32::try_from(side).map_err(|e| QrError::Encoding {
            what: "PNG",
            reason: e.to_string(),
        })?;
        let mut png = Vec::new();
        PngEncoder::new(&mut png)
            .write_image(&pixels, side, side, ExtendedColorType::L8)
            .map_err(|e| QrError::Encoding {
                what: "PNG",
                reason: e.to_string(),
            })?;
        Ok(png)
    }

    /// An SVG image with the quiet zone.
    #[must_use]
    pub fn to_svg(&self) -> String {
        self.code
            .render::<svg::Color<'_>>()
            .quiet_zone(true)
            .module_dimensions(8, 8)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build()
    }

    /// The code as text with Unicode half blocks (two rows of modules per
    /// line), with the quiet zone; each line ends with `\n`.
    #[must_use]
    pub fn to_terminal(&self, ink: Ink) -> String {
        let modules = self.width() + 2 * QUIET_ZONE;
        let mut out = String::with_capacity(modules * (modules / 2 + 1) * 4);
        let mut y = 0;
        while y < modules {
            if ink == Ink::LightOnDark {
                out.push_str("\x1b[97;40m");
            }
            for x in 0..modules {
                let top = self.module_at(x, y);
                let bottom = y + 1 < modules && self.module_at(x, y + 1);
                // Paint what the ink draws: light modules on a dark
                // background, dark modules on paper.
                let (top, bottom) = match ink {
                    Ink::LightOnDark => (!top, y + 1 < modules && !bottom),
                    Ink::DarkOnLight => (top, bottom),
                };
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            if ink == Ink::LightOnDark {
                out.push_str("\x1b[0m");
            }
            out.push('\n');
            y += 2;
        }
        out
    }

    /// Whether the module at (`x`, `y`) of the rendering (quiet zone
    /// included) is dark.
    fn module_at(&self, x: usize, y: usize) -> bool {
        let width = self.width();
        match (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) {
            (Some(x), Some(y)) if x < width && y < width => self.code[(x, y)] == Color::Dark,
            // The quiet zone is light.
            _ => false,
        }
    }

    /// A short description for people: "version 17-M, 85×85 modules".
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "version {}-{}, {}x{} modules",
            self.version(),
            self.ec_level(),
            self.width(),
            self.width()
        )
    }
}

#[cfg(test)]
mod tests;
