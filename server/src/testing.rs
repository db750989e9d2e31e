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

/// A vendor for tests and the load generator: an encrypted signing key
/// (cheap test parameters) with its passphrase file, a ledger, a test PKI,
/// and PBXs activated from the verifier's sample appliance.
#[derive(Debug)]
pub struct TestVendor {
    /// The folder.
    pub dir: PathBuf,
    /// The signing key (also in `signing.pem`).
    pub signer: tessera_signer::FileSigner,
    /// The catalog (the default one).
    pub catalog: tessera_issuer::catalog::Catalog,
    /// TLS files.
    pub pki: TestPki,
    /// The ledger: a SQLite file, or a `postgres://` URL.
    pub ledger: PathBuf,
}

/// Passphrase of the test key.
pub const PASSPHRASE: &str = "tessera-server tests only";

const ORDER: &str = include_str!("../../issuer/examples/order.toml");

impl TestVendor {
    /// Sets up a vendor in `dir` with its SQLite ledger (`ledger.db`)
    /// created at `at`.
    ///
    /// # Errors
    /// Any failure, as text.
    pub fn new(dir: &Path, at: i64) -> Result<Self, String> {
        Self::with_ledger(dir, at, dir.join("ledger.db"))
    }

    /// Sets up a vendor in `dir` with its ledger at `ledger` (a SQLite
    /// file, or the `postgres://` URL of an empty database) created at
    /// `at`.
    ///
    /// # Errors
    /// Any failure, as text.
    pub fn with_ledger(dir: &Path, at: i64, ledger: PathBuf) -> Result<Self, String> {
        use tessera_signer::{EncryptionParams, FileSigner, Passphrase};
        let signer = FileSigner::generate().map_err(|e| e.to_string())?;
        signer
            .write_encrypted_with(
                &dir.join("signing.pem"),
                &Passphrase::new(PASSPHRASE).map_err(|e| e.to_string())?,
                EncryptionParams::insecure_for_tests(),
            )
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("passphrase"), PASSPHRASE).map_err(|e| e.to_string())?;
        // As a real one is kept: the service warns about any other mode.
        std::fs::set_permissions(
            dir.join("passphrase"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(|e| e.to_string())?;
        let pki = make_pki(dir)?;
        let v = Self {
            dir: dir.to_owned(),
            signer,
            catalog: tessera_issuer::catalog::Catalog::default_catalog()
                .map_err(|e| e.to_string())?,
            pki,
            ledger,
        };
        tessera_issuer::ledger::Ledger::init(
            &v.ledger_path(),
            "tessera-vendor",
            &v.signer,
            "ops",
            at,
        )
        .map_err(|e| e.to_string())?;
        Ok(v)
    }

    /// The ledger: a file, or a `postgres://` URL.
    #[must_use]
    pub fn ledger_path(&self) -> PathBuf {
        self.ledger.clone()
    }

    /// Runs `f` in one ledger transaction and commits.
    ///
    /// # Errors
    /// Any failure, as text.
    pub fn with_writer<T>(
        &self,
        f: impl FnOnce(
            &mut tessera_issuer::ledger::Writer<'_>,
            &tessera_issuer::issuance::Issuer<'_>,
        ) -> Result<T, tessera_issuer::error::Error>,
    ) -> Result<T, String> {
        let mut ledger =
            tessera_issuer::ledger::Ledger::open(&self.ledger_path()).map_err(|e| e.to_string())?;
        let issuer = tessera_issuer::issuance::Issuer {
            catalog: &self.catalog,
            signer: &self.signer,
            operator: "ops",
        };
        let mut w = ledger
            .writer(&self.signer, "ops")
            .map_err(|e| e.to_string())?;
        let out = f(&mut w, &issuer).map_err(|e| e.to_string())?;
        w.commit().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Activates `count` appliances at `at` (the sample appliance with HW
    /// serials `HW-LOAD-000001` ...; all share the sample device key and
    /// identity digests), in one transaction; returns their SW serials.
    ///
    /// # Errors
    /// Any failure, as text.
    pub fn activate(&self, count: u32, first: u32, at: i64) -> Result<Vec<String>, String> {
        use tessera_issuer::issuance::{self, IssueOptions};
        let order = tessera_issuer::order::Order::parse("order.toml", ORDER, false)
            .map_err(|e| e.to_string())?;
        let now = chrono::DateTime::from_timestamp(at, 0).ok_or("bad time")?;
        self.with_writer(|w, issuer| {
            let mut serials = Vec::new();
            for n in first..first + count {
                let mut r = tessera_verifier::samples::request();
                r.hw_serial = Some(format!("HW-LOAD-{n:06}"));
                r.created_at = at;
                let opts = IssueOptions {
                    now,
                    ..IssueOptions::default()
                };
                serials.push(
                    issuance::issue(w, issuer, &order, &r, &opts)?
                        .license
                        .serial,
                );
            }
            Ok(serials)
        })
    }

    /// The server settings for this vendor: TLS on `listen`, the ledger,
    /// the key with its passphrase file.
    ///
    /// # Errors
    /// Any failure, as text.
    pub fn settings(
        &self,
        listen: core::net::SocketAddr,
        clock: crate::Clock,
        limits: crate::Limits,
    ) -> Result<crate::Settings, String> {
        let global = tessera_issuer::cli::Global {
            ledger: Some(self.ledger_path()),
            operator: Some("tessera-server".into()),
            ..tessera_issuer::cli::Global::default()
        };
        let ctx = tessera_issuer::commands::Ctx::with_config(
            global,
            tessera_issuer::config::Config::default().with_env(|_| None),
        )
        .map_err(|e| e.to_string())?;
        Ok(crate::Settings {
            listen,
            tls: Some(crate::TlsFiles {
                cert: self.pki.cert.clone(),
                key: self.pki.key.clone(),
            }),
            insecure_http: false,
            metrics_listen: None,
            ctx,
            key: tessera_issuer::cli::KeyArgs {
                key: vec![self.dir.join("signing.pem")],
                passphrase_file: Some(self.dir.join("passphrase")),
                ..tessera_issuer::cli::KeyArgs::default()
            },
            freshness: crate::DEFAULT_FRESHNESS,
            limits,
            clock,
        })
    }
}

impl TestVendor {
    /// [`TestVendor::settings`] for a server on a free loopback port at
    /// the manual time `now`, with the per-address and per-PBX limits off:
    /// for benches that measure the service, not its limits.
    ///
    /// # Errors
    /// Any failure, as text.
    pub fn unlimited_settings(&self, now: i64) -> Result<crate::Settings, String> {
        let limits = crate::Limits {
            per_address: crate::Rate::parse("off")?,
            per_serial: crate::Rate::parse("off")?,
            ..crate::Limits::default()
        };
        let loopback = core::net::SocketAddr::from(([127, 0, 0, 1], 0));
        self.settings(loopback, crate::Clock::manual(now), limits)
    }
}

/// A renewal request of the sample appliance for `serial`, made at `now`,
/// with a nonce from `nonce`, signed by the sample device key.
///
/// # Errors
/// The encoder's error, as text.
pub fn renewal(serial: &str, now: i64, nonce: u64) -> Result<Vec<u8>, String> {
    use tessera_verifier::samples::{self, seed_signer, DEVICE_KEY_SEED};
    let mut r = samples::request();
    r.serial = Some(serial.to_owned());
    r.hw_serial = None;
    r.created_at = now;
    r.nonce = [0; 16];
    r.nonce[..8].copy_from_slice(&nonce.to_be_bytes());
    tessera_verifier::encode::sign_request(&r, seed_signer(DEVICE_KEY_SEED))
        .map_err(|e| e.to_string())
}

/// An HTTPS client that trusts only the test CA (the agent's client crate).
///
/// # Errors
/// Any failure, as text.
pub fn client(pki: &TestPki) -> Result<ureq::Agent, String> {
    let pem = std::fs::read(&pki.ca).map_err(|e| e.to_string())?;
    let ca = ureq::tls::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(crate::tls::provider()))
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(core::time::Duration::from_secs(60)))
        .build()
        .into())
}

/// The URL a `tessera-server` process printed on its standard error
/// (`tessera-server: listening on URL`), read line by line; earlier lines
/// (warnings such as the rehearsal time's) are passed over, at most 20.
///
/// # Errors
/// The stream ended, or no such line came, as text with what was read.
pub fn listening_url(stderr: &mut impl std::io::BufRead) -> Result<String, String> {
    let mut seen = String::new();
    for _ in 0..20 {
        let mut line = String::new();
        match stderr.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reading the server's standard error: {e}")),
        }
        if let Some(url) = line.trim().strip_prefix("tessera-server: listening on ") {
            return Ok(url.to_owned());
        }
        seen.push_str(&line);
    }
    Err(format!(
        "the server never said where it listens; it said:\n{seen}"
    ))
}

/// The `tessera-server` binary at `bin` on a [`TestVendor`]'s folder
/// `dir` (its ledger, key, passphrase and certificates), on a free
/// loopback port, per-serial limits off, clock at 2026-01-01T10:00:00Z;
/// standard error piped, for [`listening_url`].
#[must_use]
pub fn server_command(bin: &str, dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    c.current_dir(dir)
        .env_clear()
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        .args(["--listen", "127.0.0.1:0", "--operator", "tessera-server"])
        .args(["--ledger", "ledger.db", "--key", "signing.pem"])
        .args(["--passphrase-file", "passphrase"])
        .args(["--tls-cert", "server.pem", "--tls-key", "server.key"])
        .args(["--rate-per-serial", "off", "--now", "2026-01-01T10:00:00Z"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    c
}

/// A server process, killed when dropped before it exited: a test that
/// fails half-way leaves no server behind.
#[derive(Debug)]
pub struct ServerProcess(pub std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
