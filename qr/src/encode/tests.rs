use super::*;

#[test]
fn sizes_and_levels() {
    // A typical license is version 17-M, a request version 12-M (the
    // figures in the crate docs).
    let license = encode(&[0xd2; 495]).unwrap();
    assert_eq!((license.version(), license.ec_level()), (17, 'M'));
    assert_eq!(license.width(), 85);
    assert_eq!(license.describe(), "version 17-M, 85x85 modules");
    let request = encode(&[0xd2; 283]).unwrap();
    assert_eq!((request.version(), request.ec_level()), (12, 'M'));
    // A short payload gets a higher level at no cost in size.
    let short = encode(b"\xd2\x84").unwrap();
    assert_eq!((short.version(), short.ec_level()), (1, 'H'));
    // The largest payload one code holds at M, and one byte more.
    assert_eq!(encode(&[0u8; MAX_PAYLOAD_M]).unwrap().version(), 40);
    let e = encode(&[0u8; MAX_PAYLOAD_M + 1]).unwrap_err();
    assert!(
        matches!(
            e,
            QrError::TooLarge {
                len: 2332,
                max: 2331
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("carry the file"), "{e}");
}

#[test]
fn byte_mode_is_smaller_than_base45() {
    // From 21 bytes on (any COSE object tessera makes is longer) byte mode
    // is smaller; below, the shorter count field of alphanumeric mode can
    // win.
    for len in 21..=2331 {
        assert!(byte_bits(len) < alphanumeric_bits(len), "{len}");
    }
    assert!(byte_bits(16) > alphanumeric_bits(16));
    assert_eq!(byte_bits(495), 3980);
    assert_eq!(alphanumeric_bits(495), 4102);
}

#[test]
fn terminal_rendering_uses_half_blocks_with_a_quiet_zone() {
    let qr = encode(b"tessera").unwrap();
    let modules = qr.width() + 2 * QUIET_ZONE;
    let plain = qr.to_terminal(Ink::DarkOnLight);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), modules.div_ceil(2));
    assert!(lines.iter().all(|l| l.chars().count() == modules));
    // Quiet zone: the first two lines are blank on paper.
    assert!(lines[0].chars().all(|c| c == ' '));
    assert!(lines[1].chars().all(|c| c == ' '));
    assert!(plain.chars().all(|c| " ▀▄█\n".contains(c)));
    assert!(!plain.contains('\x1b'));
    // Every module of the rendering reads back as it was drawn.
    for (row, line) in lines.iter().enumerate() {
        for (x, c) in line.chars().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            assert_eq!(top, qr.module_at(x, 2 * row));
            assert_eq!(bottom, qr.module_at(x, 2 * row + 1));
        }
    }
    // On a terminal: light modules painted white on black, reset at the
    // end of each line.
    let term = qr.to_terminal(Ink::LightOnDark);
    for line in term.lines() {
        assert!(line.starts_with("\x1b[97;40m") && line.ends_with("\x1b[0m"));
    }
    assert!(term.lines().next().unwrap().contains('█'));
}

#[test]
fn svg_is_a_complete_document() {
    let svg = encode(b"tessera").unwrap().to_svg();
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("#000000") && svg.contains("#ffffff"));
}
