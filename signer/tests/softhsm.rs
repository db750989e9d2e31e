//! The PKCS#11 signer against SoftHSM2: each test in its own process with
//! its own token (`tessera_tests::softhsm::isolated`). Skipped with a
//! printed reason when SoftHSM2 is missing, except under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use tessera_signer::{KeyError, KeyOrigin, PinSource, Pkcs11Options, Pkcs11Signer, Signer};
use tessera_tests::softhsm::{isolated, TOKEN, USER_PIN};
use tessera_verifier::encode::{sign_license, EncodeError};
use tessera_verifier::{decode_license, samples, KeyEntry};
use zeroize::Zeroizing;

fn options(module: &Path, pin: &str) -> Pkcs11Options {
    Pkcs11Options {
        module: Some(module.to_owned()),
        pin: PinSource::Given(Zeroizing::new(pin.as_bytes().to_vec())),
    }
}

/// A license signed by `signer`, checked as firmware checks it.
fn license_verifies(signer: &dyn Signer) {
    let bytes = sign_license(&samples::typical(), &signer.kid(), |m| signer.sign(m))
        .map_err(|e| match e {
            EncodeError::Sign(e) => e.to_string(),
            other => other.to_string(),
        })
        .unwrap();
    let keyring = [KeyEntry::new(signer.public_key(), 0)];
    decode_license(&bytes, &keyring).unwrap();
}

/// A second, independent view of the token, as an administrator's tool
/// would have it.
fn admin_session(module: &Path) -> cryptoki::session::Session {
    let ctx = Pkcs11::new(module).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == TOKEN)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    match session.login(UserType::User, Some(&AuthPin::from(USER_PIN))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => panic!("{e}"),
    }
    session
}

#[test]
fn created_key_signs_licenses_that_verify_and_stays_in_the_token() {
    isolated(
        "created_key_signs_licenses_that_verify_and_stays_in_the_token",
        |module| {
            let uri = format!("pkcs11:token={TOKEN};object=tessera-2026");
            let (signer, origin) =
                Pkcs11Signer::generate_or_adopt(&uri, &options(module, USER_PIN)).unwrap();
            assert_eq!(origin, KeyOrigin::Created);
            license_verifies(&signer);
            // The key's own URI carries the kid as CKA_ID.
            let kid = hex::encode(signer.kid());
            let id: String = signer.kid().iter().map(|b| format!("%{b:02x}")).collect();
            assert_eq!(
                signer.key_uri(),
                format!("pkcs11:token={TOKEN};object=tessera-2026;id={id};type=private")
            );
            assert!(format!("{signer:?}").contains(&kid));

            // Adopting it again, by name or by its own URI, gives the same key.
            let (again, origin) =
                Pkcs11Signer::generate_or_adopt(&uri, &options(module, USER_PIN)).unwrap();
            assert_eq!(origin, KeyOrigin::Adopted);
            assert_eq!(again.kid(), signer.kid());
            let reopened =
                Pkcs11Signer::open(signer.key_uri(), &options(module, USER_PIN)).unwrap();
            assert_eq!(reopened.public_key(), signer.public_key());
            license_verifies(&reopened);

            // The private key never leaves the token: sensitive, never
            // extractable, and its value cannot be read.
            let admin = admin_session(module);
            let keys = admin
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(b"tessera-2026".to_vec()),
                ])
                .unwrap();
            assert_eq!(keys.len(), 1);
            let attrs = admin
                .get_attributes(
                    keys[0],
                    &[
                        AttributeType::Sensitive,
                        AttributeType::AlwaysSensitive,
                        AttributeType::Extractable,
                        AttributeType::NeverExtractable,
                        AttributeType::Token,
                        AttributeType::Value,
                    ],
                )
                .unwrap();
            for attr in &attrs {
                match attr {
                    Attribute::Sensitive(v)
                    | Attribute::AlwaysSensitive(v)
                    | Attribute::NeverExtractable(v)
                    | Attribute::Token(v) => assert!(*v, "{attr:?}"),
                    Attribute::Extractable(v) => assert!(!*v),
                    Attribute::Value(_) => panic!("the private key's value was readable"),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(attrs.len(), 5, "{attrs:?}");
        },
    );
}

#[test]
fn wrong_pin_and_missing_pin_are_told_apart() {
    isolated("wrong_pin_and_missing_pin_are_told_apart", |module| {
        let uri = format!("pkcs11:token={TOKEN};object=k");
        let e = Pkcs11Signer::open(&uri, &options(module, "000000")).unwrap_err();
        assert!(
            matches!(e, KeyError::WrongPin { ref token, ref from } if token == TOKEN && from == "the program"),
            "{e:?}"
        );
        // No PIN anywhere and no terminal (tests have no stdin terminal).
        std::env::remove_var("TESSERA_PKCS11_PIN");
        let auto = Pkcs11Options {
            module: Some(module.to_owned()),
            pin: PinSource::Auto,
        };
        let e = Pkcs11Signer::open(&uri, &auto).unwrap_err();
        assert!(matches!(e, KeyError::NoPin), "{e:?}");
        // A pin-source file in the URI is used when no PIN is given: the
        // login succeeds, and only the key is missing.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pin");
        std::fs::write(&file, format!("{USER_PIN}\n")).unwrap();
        let with_source = format!("{uri}?pin-source=file:{}", file.display());
        let e = Pkcs11Signer::open(&with_source, &auto).unwrap_err();
        assert!(matches!(e, KeyError::Pkcs11KeyNotFound { .. }), "{e:?}");
    });
}

#[test]
fn uris_that_select_nothing_or_too_much_are_refused() {
    isolated(
        "uris_that_select_nothing_or_too_much_are_refused",
        |module| {
            let o = options(module, USER_PIN);
            let e = Pkcs11Signer::open("pkcs11:token=other;object=k", &o).unwrap_err();
            assert!(
                matches!(e, KeyError::NoPkcs11Token { ref tokens, .. } if tokens.contains(TOKEN)),
                "{e:?}"
            );
            let e =
                Pkcs11Signer::open(&format!("pkcs11:token={TOKEN};object=nope"), &o).unwrap_err();
            assert!(matches!(e, KeyError::Pkcs11KeyNotFound { .. }), "{e:?}");

            // Two keys under one label, told apart by id.
            let a = format!("pkcs11:token={TOKEN};object=twin;id=%01");
            let b = format!("pkcs11:token={TOKEN};object=twin;id=%02");
            let (ka, _) = Pkcs11Signer::generate_or_adopt(&a, &o).unwrap();
            let (kb, _) = Pkcs11Signer::generate_or_adopt(&b, &o).unwrap();
            assert_ne!(ka.kid(), kb.kid());
            let e =
                Pkcs11Signer::open(&format!("pkcs11:token={TOKEN};object=twin"), &o).unwrap_err();
            assert!(
                matches!(e, KeyError::Pkcs11KeyAmbiguous { count: 2, .. }),
                "{e:?}"
            );
            assert_eq!(Pkcs11Signer::open(&b, &o).unwrap().kid(), kb.kid());

            // A new key needs a name.
            let e =
                Pkcs11Signer::generate_or_adopt(&format!("pkcs11:token={TOKEN}"), &o).unwrap_err();
            assert!(
                matches!(e, KeyError::Pkcs11Uri { ref reason, .. } if reason.contains("object=")),
                "{e:?}"
            );
        },
    );
}

#[test]
fn keys_that_could_leave_the_token_or_are_not_ed25519_are_refused() {
    isolated(
        "keys_that_could_leave_the_token_or_are_not_ed25519_are_refused",
        |module| {
            let o = options(module, USER_PIN);
            let admin = admin_session(module);
            let ed25519 = vec![0x06, 0x03, 0x2b, 0x65, 0x70];
            let pair = |label: &str, extractable: bool| {
                admin
                    .generate_key_pair(
                        &Mechanism::EccEdwardsKeyPairGen,
                        &[
                            Attribute::Token(true),
                            Attribute::Verify(true),
                            Attribute::EcParams(ed25519.clone()),
                            Attribute::Label(label.as_bytes().to_vec()),
                        ],
                        &[
                            Attribute::Token(true),
                            Attribute::Private(true),
                            Attribute::Sensitive(true),
                            Attribute::Extractable(extractable),
                            Attribute::Sign(true),
                            Attribute::Label(label.as_bytes().to_vec()),
                        ],
                    )
                    .unwrap()
            };
            pair("exportable", true);
            let e = Pkcs11Signer::open(&format!("pkcs11:token={TOKEN};object=exportable"), &o)
                .unwrap_err();
            assert!(matches!(e, KeyError::Pkcs11KeyExportable { .. }), "{e:?}");
            let e = Pkcs11Signer::generate_or_adopt(
                &format!("pkcs11:token={TOKEN};object=exportable"),
                &o,
            )
            .unwrap_err();
            assert!(matches!(e, KeyError::Pkcs11KeyExportable { .. }), "{e:?}");

            // An existing, well-made key made by another tool is adopted.
            pair("made-elsewhere", false);
            let (signer, origin) = Pkcs11Signer::generate_or_adopt(
                &format!("pkcs11:token={TOKEN};object=made-elsewhere"),
                &o,
            )
            .unwrap();
            assert_eq!(origin, KeyOrigin::Adopted);
            license_verifies(&signer);

            // An EC P-256 key.
            admin
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Verify(true),
                        // prime256v1
                        Attribute::EcParams(vec![
                            0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                        ]),
                        Attribute::Label(b"p256".to_vec()),
                    ],
                    &[
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Sign(true),
                        Attribute::Label(b"p256".to_vec()),
                    ],
                )
                .unwrap();
            let e =
                Pkcs11Signer::open(&format!("pkcs11:token={TOKEN};object=p256"), &o).unwrap_err();
            assert!(
                matches!(e, KeyError::Pkcs11KeyNotEd25519 { ref found, .. } if found.contains("EC")),
                "{e:?}"
            );

            // A public key left over under the new key's name.
            let (public, private) = pair("leftover", false);
            admin.destroy_object(private).unwrap();
            let _ = public;
            let e = Pkcs11Signer::generate_or_adopt(
                &format!("pkcs11:token={TOKEN};object=leftover"),
                &o,
            )
            .unwrap_err();
            assert!(matches!(e, KeyError::Pkcs11Leftover { .. }), "{e:?}");

            // A private key whose public half is gone.
            let (public, _) = pair("lonely", false);
            admin.destroy_object(public).unwrap();
            let e =
                Pkcs11Signer::open(&format!("pkcs11:token={TOKEN};object=lonely"), &o).unwrap_err();
            assert!(matches!(e, KeyError::Pkcs11NoPublicKey { .. }), "{e:?}");
        },
    );
}

#[test]
fn two_sessions_creating_one_name_leave_at_most_one_key() {
    isolated(
        "two_sessions_creating_one_name_leave_at_most_one_key",
        |module| {
            let uri = format!("pkcs11:token={TOKEN};object=raced");
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            Pkcs11Signer::generate_or_adopt(&uri, &options(module, USER_PIN))
                                .map(|(signer, origin)| (signer.kid(), origin))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let admin = admin_session(module);
            let keys = admin
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(b"raced".to_vec()),
                ])
                .unwrap();
            assert!(keys.len() <= 1, "{results:?}");
            let kids: Vec<_> = results.iter().flatten().map(|(kid, _)| *kid).collect();
            if let Some(first) = kids.first() {
                assert!(kids.iter().all(|k| k == first), "{results:?}");
                assert_eq!(keys.len(), 1);
            }
            for r in &results {
                if let Err(e) = r {
                    assert!(e.to_string().contains("run the command again"), "{e}");
                }
            }
        },
    );
}
