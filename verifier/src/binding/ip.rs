//! IP addresses as identity values (`spec/RUNTIME.md` §2.2): parsed with
//! exactly the grammar of `core::net::IpAddr`'s `FromStr`, made canonical
//! as `IpAddr::to_canonical` does, and written back as its `Display` does
//! (IPv4 dotted decimal, IPv6 per RFC 5952), without `core::fmt`: the
//! formatting machinery and the standard parser cost firmware about 4 KiB
//! of flash. The tests hold the two equal on random and edge inputs.

/// An address: IPv4 octets, or IPv6 segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Addr {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u16; 8]),
}

impl Addr {
    /// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is
    /// (`IpAddr::to_canonical`).
    pub(super) fn canonical(self) -> Self {
        match self {
            Self::V6([0, 0, 0, 0, 0, 0xffff, hi, lo]) => {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                Self::V4([a, b, c, d])
            }
            other => other,
        }
    }

    /// The unspecified address or a loopback one: every device has those.
    pub(super) fn is_unspecified_or_loopback(&self) -> bool {
        match self {
            Self::V4(o) => *o == [0; 4] || o.first() == Some(&127),
            Self::V6(s) => *s == [0; 8] || *s == [0, 0, 0, 0, 0, 0, 0, 1],
        }
    }
}

/// A cursor over the input: every `read_*` either consumes what it read
/// and answers `Some`, or consumes nothing and answers `None`.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn atomically<T>(&mut self, inner: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let start = self.rest;
        let result = inner(self);
        if result.is_none() {
            self.rest = start;
        }
        result
    }

    fn given(&mut self, c: u8) -> Option<()> {
        match self.rest.split_first() {
            Some((&b, tail)) if b == c => {
                self.rest = tail;
                Some(())
            }
            _ => None,
        }
    }

    /// The separator `sep` before every item but the first.
    fn separated<T>(
        &mut self,
        sep: u8,
        index: usize,
        inner: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        self.atomically(|p| {
            if index > 0 {
                p.given(sep)?;
            }
            inner(p)
        })
    }

    /// At most `max` digits of `radix` (all that follow, else `None`),
    /// below `limit`; a leading zero only where `zero_prefix` allows.
    fn number(&mut self, radix: u32, max: usize, zero_prefix: bool, limit: u32) -> Option<u32> {
        self.atomically(|p| {
            let leading_zero = p.rest.first() == Some(&b'0');
            let mut value = 0u32;
            let mut digits = 0usize;
            while let Some(d) = p.rest.first().and_then(|&b| char::from(b).to_digit(radix)) {
                p.rest = p.rest.get(1..).unwrap_or_default();
                value = value * radix + d;
                digits += 1;
                if digits > max {
                    return None;
                }
            }
            if digits == 0 || (!zero_prefix && leading_zero && digits > 1) || value >= limit {
                return None;
            }
            Some(value)
        })
    }

    fn ipv4(&mut self) -> Option<[u8; 4]> {
        self.atomically(|p| {
            let mut octets = [0u8; 4];
            for (i, o) in octets.iter_mut().enumerate() {
                let v = p.separated(b'.', i, |p| p.number(10, 3, false, 256))?;
                *o = u8::try_from(v).ok()?;
            }
            Some(octets)
        })
    }

    /// Reads up to `groups.len()` `:`-separated groups (the last two may be
    /// an IPv4 address): how many, and whether IPv4 ended them.
    fn groups(&mut self, groups: &mut [u16]) -> (usize, bool) {
        let limit = groups.len();
        let mut i = 0;
        while i < limit {
            if i + 1 < limit {
                if let Some([a, b, c, d]) = self.separated(b':', i, Cursor::ipv4) {
                    if let Some(pair) = groups.get_mut(i..i + 2) {
                        pair.copy_from_slice(&[
                            u16::from_be_bytes([a, b]),
                            u16::from_be_bytes([c, d]),
                        ]);
                    }
                    return (i + 2, true);
                }
            }
            match self.separated(b':', i, |p| p.number(16, 4, true, 0x1_0000)) {
                Some(g) => {
                    if let Some(slot) = groups.get_mut(i) {
                        *slot = u16::try_from(g).unwrap_or(0);
                    }
                }
                None => return (i, false),
            }
            i += 1;
        }
        (limit, false)
    }

    fn ipv6(&mut self) -> Option<[u16; 8]> {
        self.atomically(|p| {
            let mut head = [0u16; 8];
            let (head_len, head_v4) = p.groups(&mut head);
            if head_len == 8 {
                return Some(head);
            }
            if head_v4 {
                return None;
            }
            p.given(b':')?;
            p.given(b':')?;
            let mut tail = [0u16; 7];
            let room = 7 - head_len;
            let (tail_len, _) = p.groups(tail.get_mut(..room)?);
            let dst = head.get_mut(8 - tail_len..)?;
            dst.copy_from_slice(tail.get(..tail_len)?);
            Some(head)
        })
    }
}

/// Parses `text` as `core::net::IpAddr::from_str` does: IPv4 first, else
/// IPv6, and nothing may follow.
pub(super) fn parse(text: &[u8]) -> Option<Addr> {
    let mut p = Cursor { rest: text };
    let addr = match p.ipv4() {
        Some(v4) => Addr::V4(v4),
        None => Addr::V6(p.ipv6()?),
    };
    p.rest.is_empty().then_some(addr)
}

/// Appends bytes to a buffer, and counts what did not fit.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
        }
        self.len += 1;
    }

    /// `v` in `radix` (10 or 16, lower-case), without leading zeros.
    fn number(&mut self, v: u16, radix: u16) {
        let mut digits = [0u8; 5];
        let mut n = 0;
        let mut v = v;
        loop {
            if let Some(d) = digits.get_mut(n) {
                *d = b"0123456789abcdef"
                    .get(usize::from(v % radix))
                    .copied()
                    .unwrap_or(b'0');
            }
            n += 1;
            v /= radix;
            if v == 0 {
                break;
            }
        }
        for d in digits.get(..n).unwrap_or_default().iter().rev() {
            self.put(*d);
        }
    }

    fn segments(&mut self, segments: &[u16]) {
        for (i, s) in segments.iter().enumerate() {
            if i > 0 {
                self.put(b':');
            }
            self.number(*s, 16);
        }
    }
}

/// Writes `addr` as `Display` does into `buf`; returns the length, or
/// `None` when it does not fit.
pub(super) fn write(addr: &Addr, buf: &mut [u8]) -> Option<usize> {
    let mut out = Out { buf, len: 0 };
    match addr {
        Addr::V4(octets) => {
            for (i, o) in octets.iter().enumerate() {
                if i > 0 {
                    out.put(b'.');
                }
                out.number(u16::from(*o), 10);
            }
        }
        Addr::V6(segments) => {
            // The first longest run of at least two zero segments becomes
            // "::" (RFC 5952 §4.2).
            let (mut best, mut best_len, mut start, mut len) = (0, 0, 0, 0);
            for (i, s) in segments.iter().enumerate() {
                if *s == 0 {
                    if len == 0 {
                        start = i;
                    }
                    len += 1;
                    if len > best_len {
                        (best, best_len) = (start, len);
                    }
                } else {
                    len = 0;
                }
            }
            if best_len > 1 {
                out.segments(segments.get(..best).unwrap_or_default());
                out.put(b':');
                out.put(b':');
                out.segments(segments.get(best + best_len..).unwrap_or_default());
            } else {
                out.segments(segments);
            }
        }
    }
    (out.len <= out.buf.len()).then_some(out.len)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use core::net::IpAddr;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    /// What `core::net` makes of `text`: canonical, written back; and
    /// whether it is unspecified or loopback.
    fn core_net(text: &str) -> Option<(String, bool)> {
        let addr = text.parse::<IpAddr>().ok()?.to_canonical();
        Some((
            addr.to_string(),
            addr.is_unspecified() || addr.is_loopback(),
        ))
    }

    fn ours(text: &str) -> Option<(String, bool)> {
        let addr = parse(text.as_bytes())?.canonical();
        let mut buf = [0u8; 64];
        let n = write(&addr, &mut buf)?;
        Some((
            String::from_utf8(buf[..n].to_vec()).unwrap(),
            addr.is_unspecified_or_loopback(),
        ))
    }

    fn same(text: &str) {
        assert_eq!(ours(text), core_net(text), "{text:?}");
    }

    #[test]
    fn edge_cases_agree_with_core_net() {
        for t in [
            "",
            ".",
            ":",
            "::",
            ":::",
            "::1",
            "::0",
            "0::",
            "1::",
            "::ffff:1.2.3.4",
            "::ffff:127.0.0.1",
            "::ffff:0.0.0.0",
            "::1.2.3.4",
            "1::1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1::3:4:5:6:7:8",
            "1:2::4:5::8",
            "1:0:0:2:0:0:0:3",
            "1:0:0:2:0:0:3:4",
            "0:0:1:0:0:1:0:0",
            "fe80::1",
            "FE80::ABCD",
            "2001:db8::",
            "2001:DB8:0:0:0:0:0:1",
            "12345::",
            "0000:0::",
            "00000::",
            ":1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:",
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3.04",
            "0.0.0.0",
            "127.1.2.3",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.1000",
            "0x1.2.3.4",
            "::1.2.3",
            "::1.2.3.4.5",
            "::ffff:1.2.3.4:5",
            "1::2::3",
            "::a:b:c:d:e:f:1",
            "a:b:c:d:e:f:1::",
            "a::b:c:d:e:f:1",
            "::01.2.3.4",
            "::1.2.3.04",
            "1:2:3:4:5:6:7:8%eth0",
            "[::1]",
            "1.2.3.4/24",
            "٣.1.1.1",
        ] {
            same(t);
        }
    }

    #[test]
    fn every_zero_run_position_agrees_with_core_net() {
        // Every pattern of zero and non-zero segments: where "::" goes.
        for mask in 0u32..256 {
            let segments: Vec<String> = (0..8)
                .map(|i| {
                    if mask >> i & 1 == 1 {
                        "0".into()
                    } else {
                        (i + 1).to_string()
                    }
                })
                .collect();
            same(&segments.join(":"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn random_text_agrees_with_core_net(t in "[0-9a-fA-F:.]{0,40}") {
            same(&t);
        }

        #[test]
        fn random_addresses_agree_with_core_net(segments in any::<[u16; 8]>(), v4 in any::<[u8; 4]>(), zeros in any::<u8>()) {
            let mut s = segments;
            for (i, seg) in s.iter_mut().enumerate() {
                if zeros >> i & 1 == 1 {
                    *seg = 0;
                }
            }
            let v6 = core::net::Ipv6Addr::from(s);
            same(&v6.to_string());
            same(&std::format!("{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}", s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]));
            same(&std::format!("{:04X}:{:04x}:{:x}:{:x}:{:x}:{:x}:{}", s[0], s[1], s[2], s[3], s[4], s[5], core::net::Ipv4Addr::from(v4)));
            same(&core::net::Ipv4Addr::from(v4).to_string());
            same(&std::format!("::ffff:{}", core::net::Ipv4Addr::from(v4)));
        }
    }
}
