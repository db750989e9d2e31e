//! What can be checked without a token; the token itself is exercised
//! against SoftHSM2 in `tests/softhsm.rs`.

use super::*;

fn options(module: Option<&str>) -> Pkcs11Options {
    Pkcs11Options {
        module: module.map(PathBuf::from),
        pin: PinSource::Auto,
    }
}

#[test]
fn no_module_says_where_to_name_one() {
    let e = Pkcs11Signer::open("pkcs11:object=k", &options(None)).unwrap_err();
    assert!(matches!(e, KeyError::NoPkcs11Module { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("--pkcs11-module") && msg.contains(MODULE_ENV),
        "{msg}"
    );
}

#[test]
fn a_missing_module_is_named() {
    let e = Pkcs11Signer::open(
        "pkcs11:object=k?module-path=/nonexistent/libnone.so",
        &options(None),
    )
    .unwrap_err();
    assert!(
        matches!(e, KeyError::Pkcs11Module { ref module, .. } if module == Path::new("/nonexistent/libnone.so")),
        "{e:?}"
    );
    // The option wins over the URI's module-path.
    let e = Pkcs11Signer::open(
        "pkcs11:object=k?module-path=/usr/lib/softhsm/libsofthsm2.so",
        &options(Some("/nonexistent/other.so")),
    )
    .unwrap_err();
    assert!(
        matches!(e, KeyError::Pkcs11Module { ref module, .. } if module == Path::new("/nonexistent/other.so")),
        "{e:?}"
    );
}

#[test]
fn a_library_that_is_no_module_is_refused() {
    // A shared object without C_GetFunctionList: loading it is not enough.
    let not_a_module = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/libz.so.1"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let Some(lib) = not_a_module else {
        eprintln!("SKIPPED: no libz to load as a non-PKCS#11 library");
        return;
    };
    let e = Pkcs11Signer::open("pkcs11:object=k", &options(Some(lib))).unwrap_err();
    assert!(matches!(e, KeyError::Pkcs11Module { .. }), "{e:?}");
}

#[test]
fn bad_uris_fail_before_any_module_is_loaded() {
    let e = Pkcs11Signer::open(
        "pkcs11:object=k?pin-value=1234",
        &options(Some("/nonexistent")),
    )
    .unwrap_err();
    assert!(matches!(e, KeyError::Pkcs11Uri { .. }), "{e:?}");
}

#[test]
fn only_ed25519_is_accepted() {
    let uri = "pkcs11:object=k";
    assert!(check_ed25519(uri, Some(KeyType::EC_EDWARDS), Some(&ED25519_OID_DER)).is_ok());
    assert!(check_ed25519(uri, Some(KeyType::EC_EDWARDS), Some(ED25519_NAME_DER)).is_ok());
    let found = |key_type, params: Option<&[u8]>| match check_ed25519(uri, key_type, params) {
        Err(KeyError::Pkcs11KeyNotEd25519 { found, .. }) => found,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        found(Some(KeyType::EC_EDWARDS), Some(&ED448_OID_DER)),
        "an Ed448 key"
    );
    assert_eq!(
        found(Some(KeyType::EC_EDWARDS), Some(ED448_NAME_DER)),
        "an Ed448 key"
    );
    assert!(found(Some(KeyType::RSA), None).contains("RSA"));
    assert!(found(Some(KeyType::EC_EDWARDS), None).contains("unknown curve"));
    assert!(found(None, None).contains("unknown type"));
}

#[test]
fn token_fields_compare_without_padding() {
    assert!(matches(None, "anything"));
    assert!(matches(Some("Vendor"), "Vendor                          "));
    assert!(!matches(Some("Vendor"), "Vendor2"));
    assert!(!matches(Some("vendor"), "Vendor"));
}
