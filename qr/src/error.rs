//! What can go wrong making or reading a QR code.

/// Why a QR code could not be made or read. Each message says what was
/// wrong and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The payload does not fit in one QR code at error correction M.
    #[error("{len} bytes do not fit in one QR code with error correction M (at most {max}); carry the file instead")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The most one code holds at error correction M (version 40).
        max: usize,
    },

    /// The file is larger than any screenshot or photo of a code needs.
    #[error("the image is {len} bytes, more than the {max} bytes accepted; crop or scale the photo down (a QR code needs no more than a few megapixels)")]
    FileTooLarge {
        /// The file's size.
        len: u64,
        /// The cap.
        max: u64,
    },

    /// The image decodes to more pixels than accepted.
    #[error("the image is {width}x{height} pixels, more than accepted; scale it down to at most {max_side} pixels a side")]
    TooManyPixels {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The largest side accepted.
        max_side: u32,
    },

    /// The bytes are not a PNG or JPEG image, or a damaged one.
    #[error("not a readable PNG or JPEG image ({reason}); take a new screenshot or photo and save it as PNG or JPEG")]
    NotAnImage {
        /// What the decoder said.
        reason: String,
    },

    /// The image shows no QR code.
    #[error("no QR code found in the image; photograph the whole code, straight on, with its white border, in focus and without glare")]
    NoCode,

    /// A QR code was found but its modules could not be read.
    #[error("a QR code was found but could not be read ({reason}); take a sharper, closer photo, or use a screenshot")]
    Unreadable {
        /// What the decoder said.
        reason: String,
    },

    /// The image shows several different codes.
    #[error("the image shows {count} different QR codes; crop it to the one code to read")]
    SeveralCodes {
        /// How many different payloads were read.
        count: usize,
    },

    /// The search for a code took longer than any photo of one needs: an
    /// image of many finder-like squares (the detector's work grows with
    /// their number cubed), or another search still running from such an
    /// image.
    #[error("reading the image took more than {seconds} s, far more than a photo of a QR code needs: it is not a plain photo or screenshot of one code; take a screenshot or photo of the one code, or carry the armored file instead")]
    TooSlow {
        /// The time a search may take.
        seconds: u64,
    },

    /// Encoding an image failed; this is a bug.
    #[error(
        "internal error while writing the QR code as {what}: {reason}; please report this bug"
    )]
    Encoding {
        /// The image format.
        what: &'static str,
        /// The encoder's error.
        reason: String,
    },
}
