//! Test certificates made at test time: a vendor CA and a server
//! certificate it signs for `localhost` and `127.0.0.1`. Nothing here is
//! for production; private keys never leave the test's folder.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// The files of a test PKI.
#[derive(Clone, Debug)]
pub struct TestPki {
    /// The CA certificate (what a site pins).
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server certificate's key.
    pub key: PathBuf,
}

/// Makes a CA and a server certificate for `localhost` and `127.0.0.1`
/// in `dir` (`ca.pem`, `server.pem`, `server.key`).
///
/// # Errors
/// rcgen's or the file system's error, as text.
pub fn make_pki(dir: &Path) -> Result<TestPki, String> {
    let ca_key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tessera test vendor CA");
    let ca = ca_params.self_signed(&ca_key).map_err(|e| e.to_string())?;
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "tessera test license service");
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .map_err(|e| e.to_string())?;
    let pki = TestPki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    let write = |p: &Path, text: String| {
        std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write(&pki.ca, ca.pem())?;
    write(&pki.cert, cert.pem())?;
    write(&pki.key, key.serialize_pem())?;
    Ok(pki)
}
