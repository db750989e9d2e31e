use super::*;

fn reason(text: &str) -> String {
    match Pkcs11Uri::parse(text) {
        Err(KeyError::Pkcs11Uri { uri, reason }) => {
            assert_eq!(uri, text);
            reason
        }
        other => panic!("{text}: expected a URI error, got {other:?}"),
    }
}

#[test]
fn rfc_7512_examples_parse() {
    // RFC 7512 §3's examples that name keys.
    let u = Pkcs11Uri::parse("pkcs11:object=my-pubkey;type=public").unwrap();
    assert_eq!(u.object.as_deref(), Some("my-pubkey"));
    assert_eq!(u.object_type, Some(ObjectType::Public));

    let u = Pkcs11Uri::parse(
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=private;id=%69%95%3E%5C%F4%BD%EC%91",
    )
    .unwrap();
    assert_eq!(u.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
    assert_eq!(u.manufacturer.as_deref(), Some("Snake Oil, Inc."));
    assert_eq!(u.model.as_deref(), Some("1.0"));
    assert_eq!(
        u.id.as_deref(),
        Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
    );
    assert_eq!(u.object_type, Some(ObjectType::Private));

    let u = Pkcs11Uri::parse(
        "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
    )
    .unwrap();
    assert_eq!(u.library_version, Some((1, 23)));
    assert_eq!(u.library_description.as_deref(), Some("Soft Token Library"));

    let u = Pkcs11Uri::parse(
        "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate?pin-source=file:/etc/token_pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
    )
    .unwrap();
    assert_eq!(u.token.as_deref(), Some("A name with a substring %;"));
    assert_eq!(u.pin_source, Some(PathBuf::from("/etc/token_pin")));
    assert_eq!(
        u.module_path,
        Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
    );

    let u = Pkcs11Uri::parse("PKCS11:slot-id=7;slot-description=Slot%201;serial=0042").unwrap();
    assert_eq!(u.slot_id, Some(7));
    assert_eq!(u.serial.as_deref(), Some("0042"));
    assert_eq!(Pkcs11Uri::parse("pkcs11:").unwrap(), Pkcs11Uri::default());
    assert_eq!(
        Pkcs11Uri::parse("pkcs11:library-version=3")
            .unwrap()
            .library_version,
        Some((3, 0))
    );
}

#[test]
fn what_could_select_another_key_is_refused() {
    assert!(reason("pkcs11:object=a;object=b").contains("twice"));
    assert!(reason("pkcs11:label=a").contains("unknown attribute 'label'"));
    assert!(reason("pkcs11:x-vendor=1").contains("unknown"));
    assert!(reason("pkcs11:object=a?x-vendor=1").contains("unknown"));
    assert!(reason("pkcs11:object").contains("NAME=VALUE"));
    assert!(reason("pkcs11:object=a%2").contains("two hex digits"));
    assert!(reason("pkcs11:object=a%zz").contains("two hex digits"));
    assert!(reason("pkcs11:object=a%ff").contains("UTF-8"));
    assert!(reason("pkcs11:object=a b").contains("percent-encoded"));
    assert!(reason("pkcs11:object=a\u{1b}b").contains("percent-encoded"));
    assert!(reason("pkcs11:object=a#frag").contains("fragment"));
    assert!(reason("pkcs11:type=cert").contains("type=private"));
    assert!(reason("pkcs11:type=secret").contains("RFC 7512"));
    assert!(reason("pkcs11:slot-id=-1").contains("decimal"));
    assert!(reason("pkcs11:library-version=1.x").contains("MAJOR"));
    assert!(reason("pkcs11:library-version=300").contains("MAJOR"));
    assert!(reason("pkcs11:module-path=/x").contains("query"));
    assert!(reason("pkcs11:?module-path=lib.so").contains("absolute"));
    assert!(reason("pkcs11:?module-name=softhsm2").contains("module-path"));
    assert!(reason("pkcs11:?pin-source=").contains("empty"));
    assert!(reason("pkcs11:?module-path=/a&module-path=/b").contains("twice"));
    assert!(reason("pkcs12:object=a").contains("pkcs11:"));
    assert!(reason("pkcs1").contains("pkcs11:"));
    assert!(reason(&format!("pkcs11:object={}", "a".repeat(5000))).contains("4096"));
}

#[test]
fn a_pin_in_the_uri_is_refused() {
    let r = reason("pkcs11:object=k?pin-value=123456");
    assert!(r.contains("TESSERA_PKCS11_PIN"), "{r}");
    // The message quotes the URI, but the whole error names the variable
    // to use instead, and the CLI never echoes a parsed PIN.
    let e = Pkcs11Uri::parse("pkcs11:object=k?pin-value=123456").unwrap_err();
    assert!(e.to_string().contains("--pin-file"), "{e}");
}

#[test]
fn key_uris_round_trip() {
    let text = Pkcs11Uri::key_uri("Vendor CA;1", "tessera 2026/é", &[0x00, 0xab]);
    assert_eq!(
        text,
        "pkcs11:token=Vendor%20CA%3B1;object=tessera%202026%2F%C3%A9;id=%00%ab;type=private"
    );
    let u = Pkcs11Uri::parse(&text).unwrap();
    assert_eq!(u.token.as_deref(), Some("Vendor CA;1"));
    assert_eq!(u.object.as_deref(), Some("tessera 2026/é"));
    assert_eq!(u.id.as_deref(), Some(&[0x00, 0xab][..]));
    assert_eq!(Pkcs11Uri::key_uri("", "", &[]), "pkcs11:type=private");
}

#[test]
fn uris_are_told_from_file_names() {
    assert!(is_pkcs11_uri("pkcs11:object=a"));
    assert!(is_pkcs11_uri("PKCS11:"));
    assert!(!is_pkcs11_uri("./pkcs11:object=a"));
    assert!(!is_pkcs11_uri("signing.pem"));
    assert!(!is_pkcs11_uri("pkcs11"));
    assert!(!is_pkcs11_uri("é"));
}
