//! Interoperability with the `openssl` command: OpenSSL reads the key files
//! we write, we read the ones it writes, and we name the keys we refuse.
//!
//! Skipped with a printed reason when `openssl` is missing, except under
//! `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tessera_signer::{
    generate_to_file, generate_to_file_with, load_signer, load_unencrypted_signer, public_key_pem,
    read_public_key_file, EncryptionParams, KeyError, Passphrase, Signer,
};
use tessera_tests::tools::{require_tool, run_ok};

/// The environment variable the passphrase is handed to openssl in (only in
/// the child's environment, never on its command line).
const PASS_VAR: &str = "TESSERA_TEST_OPENSSL_PASS";
const PASS: &str = "open sesame";

fn openssl() -> Option<PathBuf> {
    require_tool("openssl", "openssl")
}

fn pass() -> Passphrase {
    Passphrase::new(PASS).unwrap()
}

fn ossl(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env(PASS_VAR, PASS);
    cmd
}

fn pass_env() -> String {
    format!("env:{PASS_VAR}")
}

/// `openssl pkey -pubout` of a private key file, decrypting with our
/// passphrase when it is encrypted.
fn openssl_public_pem(bin: &Path, key: &Path) -> String {
    let out = run_ok(
        ossl(bin)
            .args(["pkey", "-passin", &pass_env(), "-pubout", "-in"])
            .arg(key),
    );
    String::from_utf8(out.stdout).unwrap()
}

fn genpkey(bin: &Path, dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    run_ok(ossl(bin).arg("genpkey").args(args).arg("-out").arg(&path));
    path
}

fn load_err(path: &Path) -> KeyError {
    load_signer(path, &pass()).unwrap_err()
}

#[test]
fn openssl_reads_our_key() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.pem");
    let info =
        generate_to_file_with(&path, &pass(), EncryptionParams::insecure_for_tests()).unwrap();
    assert_eq!(
        openssl_public_pem(&bin, &path),
        public_key_pem(&info.public_key).unwrap()
    );
    // And refuses it under another passphrase.
    let out = ossl(&bin)
        .env(PASS_VAR, "wrong")
        .args(["pkey", "-passin", &pass_env(), "-pubout", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn openssl_reads_our_key_with_default_parameters() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strong.pem");
    let info = generate_to_file(&path, &pass()).unwrap();
    assert_eq!(openssl_public_pem(&bin, &path), info.to_pem().unwrap());
    // OpenSSL's view of the encryption: PBES2, PBKDF2-HMAC-SHA256 with
    // 600 000 iterations, AES-256-CBC.
    let out = run_ok(ossl(&bin).args(["asn1parse", "-in"]).arg(&path));
    let asn1 = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "PBES2",
        "PBKDF2",
        "hmacWithSHA256",
        "aes-256-cbc",
        ":0927C0",
    ] {
        assert!(asn1.contains(needle), "{needle} missing in\n{asn1}");
    }
}

#[test]
fn we_read_openssl_encrypted_key() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pass_arg = pass_env();
    let path = genpkey(
        &bin,
        dir.path(),
        "theirs.pem",
        &["-algorithm", "ed25519", "-aes-256-cbc", "-pass", &pass_arg],
    );
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let signer = load_signer(&path, &pass()).unwrap();
    assert_eq!(
        signer.public_key_info().to_pem().unwrap(),
        openssl_public_pem(&bin, &path)
    );
    let wrong = load_signer(&path, &Passphrase::new("not it").unwrap()).unwrap_err();
    assert!(
        matches!(wrong, KeyError::WrongPassphrase { .. }),
        "{wrong:?}"
    );

    // Signatures agree with OpenSSL's verification.
    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"tessera").unwrap();
    let sig = dir.path().join("sig");
    std::fs::write(&sig, signer.sign(b"tessera").unwrap()).unwrap();
    let public = dir.path().join("pub.pem");
    tessera_signer::write_public_key_file(&public, &signer.public_key_info()).unwrap();
    run_ok(
        Command::new(&bin)
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&public)
            .arg("-in")
            .arg(&msg)
            .arg("-sigfile")
            .arg(&sig),
    );
}

#[test]
fn we_read_openssl_scrypt_key() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plain = genpkey(&bin, dir.path(), "plain.pem", &["-algorithm", "ed25519"]);
    let path = dir.path().join("scrypt.pem");
    run_ok(
        ossl(&bin)
            .args([
                "pkcs8",
                "-topk8",
                "-scrypt",
                "-scrypt_N",
                "1024",
                "-scrypt_r",
                "8",
                "-scrypt_p",
                "1",
            ])
            .args(["-passout", &pass_env(), "-in"])
            .arg(&plain)
            .arg("-out")
            .arg(&path),
    );
    let signer = load_signer(&path, &pass()).unwrap();
    assert_eq!(
        signer.public_key_info().to_pem().unwrap(),
        openssl_public_pem(&bin, &plain)
    );
}

#[test]
fn unencrypted_openssl_key_is_refused_unless_imported() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plain = genpkey(&bin, dir.path(), "plain.pem", &["-algorithm", "ed25519"]);
    assert!(matches!(load_err(&plain), KeyError::Unencrypted { .. }));
    let signer = load_unencrypted_signer(&plain).unwrap();
    assert_eq!(
        signer.public_key_info().to_pem().unwrap(),
        openssl_public_pem(&bin, &plain)
    );
}

fn assert_unsupported(err: KeyError, name: &str) {
    match &err {
        KeyError::UnsupportedAlgorithm { algorithm, .. } => {
            assert!(algorithm.contains(name), "{algorithm} should name {name}");
            assert!(err.to_string().contains("Ed25519"), "{err}");
        }
        other => panic!("expected UnsupportedAlgorithm({name}), got {other:?}"),
    }
}

#[test]
fn rsa_and_ec_keys_are_named() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pass_arg = pass_env();
    let rsa_args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"];
    let ec_args = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    for (args, name) in [(&rsa_args, "RSA"), (&ec_args, "P-256")] {
        // Unencrypted PKCS#8: the algorithm matters more than the missing
        // encryption (the key cannot be used at all).
        let plain = genpkey(&bin, dir.path(), &format!("{name}.pem"), args.as_slice());
        assert_unsupported(load_err(&plain), name);
        assert_unsupported(load_unencrypted_signer(&plain).unwrap_err(), name);

        // Encrypted PKCS#8: named after decryption.
        let mut enc_args = args.to_vec();
        enc_args.extend(["-aes-256-cbc", "-pass", &pass_arg]);
        let enc = genpkey(&bin, dir.path(), &format!("{name}-enc.pem"), &enc_args);
        assert_unsupported(load_err(&enc), name);

        // Traditional (pre-PKCS#8) OpenSSL format.
        let traditional = dir.path().join(format!("{name}-trad.pem"));
        run_ok(
            Command::new(&bin)
                .args(["pkey", "-traditional", "-in"])
                .arg(&plain)
                .arg("-out")
                .arg(&traditional),
        );
        let expected = if name == "RSA" { "RSA" } else { "EC" };
        assert_unsupported(load_err(&traditional), expected);

        // Their public keys, where an Ed25519 public key is expected.
        let public = dir.path().join(format!("{name}.pub"));
        run_ok(
            Command::new(&bin)
                .args(["pkey", "-pubout", "-in"])
                .arg(&plain)
                .arg("-out")
                .arg(&public),
        );
        assert_unsupported(read_public_key_file(&public).unwrap_err(), name);
        // ... and a public key where the private one is expected.
        assert!(matches!(load_err(&public), KeyError::PublicKeyGiven { .. }));
    }
}

#[test]
fn unsupported_encryption_is_named() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plain = genpkey(&bin, dir.path(), "plain.pem", &["-algorithm", "ed25519"]);
    for (name, args) in [
        ("3DES", &["-v2", "des3"][..]),
        (
            "HMAC-SHA1",
            &["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1"][..],
        ),
    ] {
        let path = dir.path().join(format!("{name}.pem"));
        let out = ossl(&bin)
            .args(["pkcs8", "-topk8"])
            .args(args)
            .args(["-passout", &pass_env(), "-in"])
            .arg(&plain)
            .arg("-out")
            .arg(&path)
            .output()
            .unwrap();
        if !out.status.success() {
            // An OpenSSL built without the legacy cipher: nothing to test.
            eprintln!("SKIPPED {name}: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        }
        match load_err(&path) {
            KeyError::UnsupportedEncryption { scheme, .. } => {
                assert!(scheme.contains(name), "{scheme} should name {name}");
            }
            other => panic!("expected UnsupportedEncryption for {name}, got {other:?}"),
        }
    }
}
