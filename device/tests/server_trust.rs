//! The agent against a real TLS server on loopback whose certificate the
//! pin does not trust (another CA, a name it was not made for, expired):
//! a setting to fix, refused at the first attempt with its own code
//! (`server_untrusted`), never retried as an unreachable server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tessera_device::online::{Client, OnlineError, ServerSpec};

/// A CA (its PEM written to `dir/NAME.pem`) and a server certificate
/// it signed for `names`, valid from `from` to `until` (y, m, d).
fn pki(
    dir: &Path,
    name: &str,
    names: &[&str],
    from: (i32, u8, u8),
    until: (i32, u8, u8),
) -> (PathBuf, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, ca.pem()).unwrap();
    (path, cert.pem(), key.serialize_pem())
}

/// A TLS server on loopback with `cert` and `key` (PEM): its URL, and a
/// stop that returns how many connections it accepted.
fn tls_server(cert: &str, key: &str) -> (String, impl FnOnce() -> usize) {
    use rustls_pki_types::pem::PemObject as _;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let thread = std::thread::spawn(move || {
        let mut accepted = 0;
        for stream in listener.incoming() {
            if done.load(Ordering::SeqCst) {
                break;
            }
            accepted += 1;
            let mut stream = stream.unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            // The client gives up during the handshake.
            while conn.is_handshaking() {
                if conn.complete_io(&mut stream).is_err() {
                    break;
                }
            }
        }
        accepted
    });
    let stop = move || {
        flag.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(addr);
        thread.join().unwrap()
    };
    (format!("https://{addr}"), stop)
}

/// A renewal of `url` pinned to `ca`, with retries: its error, the
/// requests made and the waits.
fn renew(url: &str, ca: &Path) -> (OnlineError, u32, usize) {
    let client = Client::new(ServerSpec {
        url: url.to_owned(),
        ca: Some(ca.to_path_buf()),
        retries: 3,
        backoff: Duration::from_millis(1),
    })
    .unwrap();
    let mut made = 0;
    let mut slept = 0;
    let e = client
        .renew(
            || {
                made += 1;
                Ok::<_, OnlineError>(vec![1])
            },
            |_| slept += 1,
        )
        .unwrap_err();
    (e, made, slept)
}

const VALID: ((i32, u8, u8), (i32, u8, u8)) = ((2020, 1, 1), (2200, 1, 1));

/// Renews against a server with `cert` and `key`, pinned to `ca`: the
/// refusal must come at the first attempt, as `server_untrusted`, and
/// not as an unreachable server. Its message.
fn untrusted_at_once(cert: &str, key: &str, ca: &Path) -> String {
    let (url, stop) = tls_server(cert, key);
    let (e, made, slept) = renew(&url, ca);
    assert_eq!(stop(), 1, "retried: {e}");
    assert_eq!((made, slept), (1, 0));
    assert_eq!(e.code(), "server_untrusted");
    assert!(!e.try_later() && !e.unreachable(), "{e}");
    assert_eq!(e.attempts(), Some(1));
    let text = e.to_string();
    assert!(!text.contains("could not be reached"), "{text}");
    text
}

#[test]
fn a_certificate_from_another_ca_is_untrusted_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = pki(dir.path(), "vendor", &["127.0.0.1"], VALID.0, VALID.1);
    let (other_ca, _, _) = pki(dir.path(), "other", &["127.0.0.1"], VALID.0, VALID.1);
    let text = untrusted_at_once(&cert, &key, &other_ca);
    for part in [
        "does not chain to the CA in",
        "other.pem",
        "(`server_ca`)",
        "vendor's CA certificate",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
}

#[test]
fn a_certificate_for_another_name_is_untrusted_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(
        dir.path(),
        "vendor",
        &["licenses.vendor.example"],
        VALID.0,
        VALID.1,
    );
    let text = untrusted_at_once(&cert, &key, &ca);
    for part in ["not valid for the host name", "licenses.vendor.example"] {
        assert!(text.contains(part), "{part}: {text}");
    }
}

#[test]
fn an_expired_certificate_is_untrusted_and_names_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(
        dir.path(),
        "vendor",
        &["127.0.0.1"],
        (2020, 1, 1),
        (2021, 1, 1),
    );
    let text = untrusted_at_once(&cert, &key, &ca);
    for part in ["has expired", "clock"] {
        assert!(text.contains(part), "{part}: {text}");
    }
}
