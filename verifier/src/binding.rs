//! Device binding digests (`spec/FORMAT.md` §5.3.4).
//!
//! A license never carries raw identity values: each component is the
//! first 16 bytes of SHA-256 over a domain tag, the salt, the component
//! kind and the normalized value, so files carried by partners do not
//! reveal serials or addresses.

use sha2::{Digest, Sha256};

use crate::claims::{ComponentKind, DIGEST_LEN, SALT_LEN};

/// Domain-separation tag of component digests.
pub const DIGEST_TAG: &[u8] = b"tessera-binding-v1\0";

/// Digest of one normalized identity value (§5.3.4).
///
/// ```
/// use tessera_verifier::{binding::component_digest, claims::ComponentKind};
/// let d = component_digest(&[0; 16], ComponentKind::NIC_MAC, b"0011223344ff");
/// assert_eq!(d.len(), 16);
/// ```
#[must_use]
pub fn component_digest(
    salt: &[u8; SALT_LEN],
    kind: ComponentKind,
    normalized: &[u8],
) -> [u8; DIGEST_LEN] {
    let digest = Sha256::new()
        .chain_update(DIGEST_TAG)
        .chain_update(salt)
        .chain_update([kind.0])
        .chain_update(normalized)
        .finalize();
    let mut out = [0u8; DIGEST_LEN];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_salt_separate_digests() {
        let a = component_digest(&[0; 16], ComponentKind::HW_SERIAL, b"X1");
        assert_ne!(
            a,
            component_digest(&[0; 16], ComponentKind::DISK_SERIAL, b"X1")
        );
        assert_ne!(
            a,
            component_digest(&[1; 16], ComponentKind::HW_SERIAL, b"X1")
        );
        assert_eq!(
            a,
            component_digest(&[0; 16], ComponentKind::HW_SERIAL, b"X1")
        );
    }
}
