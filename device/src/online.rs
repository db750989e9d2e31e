//! Online renewal: the agent asks the vendor's license service
//! (`tessera-server`) for its next license over HTTPS, instead of a person
//! carrying a request file and a license file.
//!
//! - The request is the one `tessera-agent request` writes, sent as
//!   `application/cose` to `POST {server}/v1/renew`; the answer is
//!   installed exactly as `tessera-agent install` installs a file.
//! - The server is trusted only through the certificate pinned in
//!   agent.toml (`server_ca`: the vendor's CA, or the server's own
//!   certificate when it is self-signed); the system's roots are never
//!   used. Plain HTTP only to a
//!   loopback address (tests, a local trial).
//! - Connection failures, timeouts, 5xx, 408 and 429 are retried with
//!   exponential backoff and jitter, each time with a new request (the
//!   server refuses a nonce it has answered). A refusal (an RFC 9457
//!   problem: replaced, unregistered, voided, ...) is final.
//! - When the server cannot be reached, or is up but still rate-limits the
//!   PBX (429) after the last retry, the license in force stays and the
//!   offline grace rules apply exactly as without a network; the two are
//!   told apart (`server_unreachable`, `rate_limited`).
//! - Nothing here runs unless asked (`renew --server`, `check --online`).

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand_core::{OsRng, RngCore};
use rustls::CertificateError;
use serde::Serialize;
use tessera_verifier::text::escaped;

use crate::store::{read_file, Access};

/// Largest answer read from the server (a license is ≤ 4 KiB; a problem a
/// few hundred bytes).
pub const MAX_ANSWER: u64 = 64 * 1024;
/// Largest pinned certificate file.
pub const MAX_CA_FILE: u64 = 256 * 1024;
/// Retries after the first attempt, unless agent.toml says otherwise.
pub const DEFAULT_RETRIES: u32 = 4;
/// First backoff delay; it doubles with each retry (with jitter).
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest backoff delay (also caps a server's `Retry-After`).
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// Why the server could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnlineError {
    /// No server URL given or configured.
    #[error(
        "no license server: pass --server URL or set `server = \"https://...\"` in agent.toml"
    )]
    NoServer,
    /// The URL is not one the agent uses.
    #[error("the license server URL `{url}` {reason}")]
    BadUrl {
        /// The URL, escaped.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// HTTPS without a pinned certificate.
    #[error("no pinned certificate for {url}: set `server_ca = \"vendor-ca.pem\"` in agent.toml (or pass --server-ca FILE) with the vendor's CA (or the server's self-signed certificate); the system's roots are never trusted")]
    NoPin {
        /// The URL.
        url: String,
    },
    /// The pinned certificate file is unusable.
    #[error("the pinned certificate {path}: {reason}")]
    Pin {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The server could not be reached (after every retry).
    #[error("the license server {url} could not be reached after {attempts} attempt(s): {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The server is up but answered 429 (too many requests) to the last
    /// attempt: ask again later, after `retry_after` seconds when it said.
    #[error("the license server {url} is up but refused the request for now: too many requests (HTTP 429 after {attempts} attempt(s)){}; {}", problem_suffix(detail.as_deref()), try_again(*retry_after))]
    RateLimited {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The server's `Retry-After` of its last answer, in seconds.
        retry_after: Option<u64>,
        /// The problem's detail, escaped, when it sent one.
        detail: Option<String>,
    },
    /// The server's certificate is not one the pin trusts (another CA, a
    /// name it was not made for, expired): a setting to fix, never retried.
    #[error("the license server {url} is not trusted: {reason}")]
    Untrusted {
        /// The URL.
        url: String,
        /// What is wrong with its certificate, and what to do.
        reason: String,
    },
    /// The server refused the request (final).
    #[error("the license server refused the request ({code}): {detail}")]
    Refused {
        /// The problem's code (`replaced`, `unregistered`, ...).
        code: String,
        /// The problem's detail, escaped.
        detail: String,
        /// The HTTP status.
        status: u16,
    },
}

impl OnlineError {
    /// Whether the server was out of reach (as opposed to a refusal or a
    /// setting to fix): the offline grace rules apply.
    #[must_use]
    pub fn unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// Whether asking again later may succeed: the server was out of reach
    /// or rate-limited the PBX. The license in force stays and the offline
    /// grace rules apply, as without a network; `renew` and `activate`
    /// exit 4 ([`crate::mode::EXIT_UNREACHABLE`]).
    #[must_use]
    pub fn try_later(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::RateLimited { .. })
    }

    /// Attempts made, when the server was asked.
    #[must_use]
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Self::Unreachable { attempts, .. } | Self::RateLimited { attempts, .. } => {
                Some(*attempts)
            }
            Self::Refused { .. } | Self::Untrusted { .. } => Some(1),
            _ => None,
        }
    }

    /// A stable code for scripts and JSON.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoServer => "no_server",
            Self::BadUrl { .. } => "bad_server_url",
            Self::NoPin { .. } | Self::Pin { .. } => "server_pin",
            Self::Unreachable { .. } => "server_unreachable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Refused { .. } => "server_refused",
            Self::Untrusted { .. } => "server_untrusted",
        }
    }
}

/// `: detail` of a 429's problem, when it had one.
fn problem_suffix(detail: Option<&str>) -> String {
    detail.map(|d| format!(": {d}")).unwrap_or_default()
}

/// When to ask again after a 429.
fn try_again(retry_after: Option<u64>) -> String {
    match retry_after {
        Some(s) => format!("try again in {s} s or later (the server's Retry-After); the license in force stays meanwhile"),
        None => "try again later; the license in force stays meanwhile".into(),
    }
}

/// Checks a server URL: `https://host[:port][/path]`, or `http://` to a
/// loopback host; no user name or password, no query, no control
/// characters.
///
/// # Errors
/// The reason, for [`OnlineError::BadUrl`].
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > 512 {
        return Err("is longer than 512 characters".into());
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("contains a space or a control character".into());
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| "is not a URL: write https://licenses.vendor.example".to_owned())?;
    let Some(authority) = uri.authority() else {
        return Err("names no host: write https://licenses.vendor.example".into());
    };
    if authority.as_str().contains('@') {
        return Err("carries a user name or password; the agent authenticates by its signed request, not by URL credentials".into());
    }
    if uri.query().is_some() {
        return Err("has a query (`?...`); give the service's base URL".into());
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(authority.host()) => Ok(()),
        Some("http") => Err("is plain HTTP to another machine; use https:// (plain HTTP only to 127.0.0.1, ::1 or localhost)".into()),
        _ => Err("must start with https://".into()),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<core::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where and how to reach the license service.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Base URL (`https://licenses.vendor.example`).
    pub url: String,
    /// The pinned certificate(s), PEM: the vendor's CA, or the server's own
    /// when it is self-signed.
    pub ca: Option<PathBuf>,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff delay (doubles each retry, with jitter).
    pub backoff: Duration,
}

/// What a renewal attempt came to, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct RenewalSummary {
    /// `renewed`, `activated`, `not_due`, `unreachable`, `rate_limited`,
    /// `server_untrusted` or `refused`.
    pub outcome: &'static str,
    /// The server asked.
    pub server: String,
    /// Attempts made (0 when not due).
    pub attempts: u32,
    /// The sequence installed, when renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u32>,
    /// Why not, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The failure's code (`server_unreachable`, `rate_limited`,
    /// `server_refused`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Seconds the server asked to wait (`Retry-After`), when it
    /// rate-limited the PBX.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The problem code the server answered with (`replaced`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// An HTTPS client pinned to the vendor's certificate.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    spec: ServerSpec,
    /// Sent as the `Tessera-Activation-Code` header (activations only).
    code: Option<tessera_verifier::activation::ActivationCode>,
}

/// What the agent asks the service for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// The next license of the one installed (`POST /v1/renew`).
    Renew,
    /// A first license for a PBX the vendor entered (`POST /v1/activate`).
    Activate,
}

impl Route {
    /// The path on the service.
    #[must_use]
    pub fn path(self) -> &'static str {
        match self {
            Self::Renew => "/v1/renew",
            Self::Activate => "/v1/activate",
        }
    }
}

/// One answer of the server.
enum Attempt {
    License(Vec<u8>),
    Refused(OnlineError),
    Retry {
        reason: String,
        after: Option<Duration>,
        /// A 429: the server is up, but refuses for now (with the
        /// problem's detail, when it sent one).
        limited: Option<Option<String>>,
    },
}

impl Client {
    /// A client for `spec`.
    ///
    /// # Errors
    /// [`OnlineError::BadUrl`], [`OnlineError::NoPin`],
    /// [`OnlineError::Pin`].
    pub fn new(spec: ServerSpec) -> Result<Self, OnlineError> {
        check_url(&spec.url).map_err(|reason| OnlineError::BadUrl {
            url: escaped(&spec.url).to_string(),
            reason,
        })?;
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(provider()));
        if spec.url.starts_with("https://") {
            let path = spec.ca.clone().ok_or_else(|| OnlineError::NoPin {
                url: escaped(&spec.url).to_string(),
            })?;
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&pinned(&path)?));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(30)))
            .user_agent(concat!("tessera-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            spec,
            code: None,
        })
    }

    /// The server's base URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.spec.url
    }

    /// Renews: `make_request` makes a fresh signed request for each
    /// attempt. Returns the license bytes and the attempts made.
    ///
    /// # Errors
    /// [`OnlineError::Unreachable`] after the last retry,
    /// [`OnlineError::Refused`] at once; `make_request`'s error.
    pub fn renew<E: From<OnlineError>>(
        &self,
        make_request: impl FnMut() -> Result<Vec<u8>, E>,
        sleep: impl FnMut(Duration),
    ) -> Result<(Vec<u8>, u32), E> {
        self.exchange(Route::Renew, make_request, sleep)
    }

    /// Asks the service for a license on `route`, as [`Client::renew`]
    /// describes.
    ///
    /// # Errors
    /// As [`Client::renew`].
    pub fn exchange<E: From<OnlineError>>(
        &self,
        route: Route,
        mut make_request: impl FnMut() -> Result<Vec<u8>, E>,
        mut sleep: impl FnMut(Duration),
    ) -> Result<(Vec<u8>, u32), E> {
        let endpoint = format!("{}{}", self.spec.url.trim_end_matches('/'), route.path());
        let mut attempts = 0;
        loop {
            attempts += 1;
            let request = make_request()?;
            let reason = match self.attempt(&endpoint, &request) {
                Attempt::License(bytes) => return Ok((bytes, attempts)),
                Attempt::Refused(e) => return Err(e.into()),
                Attempt::Retry {
                    reason,
                    after,
                    limited,
                } => {
                    if attempts > self.spec.retries {
                        (reason, after, limited)
                    } else {
                        sleep(backoff(self.spec.backoff, attempts, after));
                        continue;
                    }
                }
            };
            let url = escaped(&self.spec.url).to_string();
            return Err(match reason {
                (_, after, Some(detail)) => OnlineError::RateLimited {
                    url,
                    attempts,
                    retry_after: after.map(|d| d.as_secs()),
                    detail,
                },
                (reason, _, None) => OnlineError::Unreachable {
                    url,
                    attempts,
                    reason,
                },
            }
            .into());
        }
    }

    /// The activation code its activations send.
    #[must_use]
    pub fn with_activation_code(
        mut self,
        code: Option<tessera_verifier::activation::ActivationCode>,
    ) -> Self {
        self.code = code;
        self
    }

    fn attempt(&self, endpoint: &str, request: &[u8]) -> Attempt {
        let mut post = self
            .agent
            .post(endpoint)
            .header("content-type", "application/cose")
            .header("accept", "application/cose, application/problem+json");
        if let Some(code) = &self.code {
            post = post.header(tessera_verifier::activation::HEADER, code.to_string());
        }
        let mut response = match post.send(request) {
            Ok(r) => r,
            Err(e) => {
                if let Some(reason) = self.untrusted(&e) {
                    return Attempt::Refused(OnlineError::Untrusted {
                        url: escaped(&self.spec.url).to_string(),
                        reason,
                    });
                }
                return Attempt::Retry {
                    reason: escaped(&e.to_string()).to_string(),
                    after: None,
                    limited: None,
                };
            }
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
        {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Retry {
                    reason: format!("the answer could not be read: {}", escaped(&e.to_string())),
                    after: None,
                    limited: None,
                }
            }
        };
        if status == 200 && content_type.starts_with("application/cose") {
            return Attempt::License(body);
        }
        let (code, detail) = problem_of(&body);
        let described = format!(
            "HTTP {status}{}",
            code.as_ref()
                .map(|c| format!(" ({c}): {}", detail.clone().unwrap_or_default()))
                .unwrap_or_default()
        );
        match status {
            429 => Attempt::Retry {
                reason: described,
                after: retry_after,
                limited: Some(detail),
            },
            408 | 500..=599 => Attempt::Retry {
                reason: described,
                after: retry_after,
                limited: None,
            },
            200 => Attempt::Retry {
                reason: format!(
                    "HTTP 200 with `{}` instead of a license",
                    escaped(&content_type)
                ),
                after: None,
                limited: None,
            },
            _ => Attempt::Refused(OnlineError::Refused {
                code: code.unwrap_or_else(|| format!("http-{status}")),
                detail: detail.unwrap_or_else(|| {
                    format!(
                        "HTTP {status} without a problem description; is {} the license service?",
                        escaped(&self.spec.url)
                    )
                }),
                status,
            }),
        }
    }
}

impl Client {
    /// What to tell the operator when `e` is the server's certificate
    /// failing the pin's checks: a setting (or a clock) to fix, which no
    /// retry mends. `None` for every other failure.
    fn untrusted(&self, e: &ureq::Error) -> Option<String> {
        let ca = self.spec.ca.as_deref().map_or_else(
            || "the pinned certificate".to_owned(),
            |p| crate::store::shown(p).to_string(),
        );
        let cert = certificate_error(e)?;
        Some(match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the server's certificate does not chain to the CA in {ca} (`server_ca`): pin the vendor's CA certificate (or the server's own when it is self-signed), not another CA's or the server's leaf certificate"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the server's certificate is not valid for the host name in {} ({}): name the server as its certificate does (`server` in agent.toml, --server), or ask the vendor for a certificate with this name",
                escaped(&self.spec.url),
                escaped(&cert.to_string())
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "the server's certificate has expired ({}): if this device's clock is right, the vendor must renew the certificate; else set the clock (NTP)",
                escaped(&cert.to_string())
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the server's certificate is not valid yet ({}): check this device's clock (NTP)",
                escaped(&cert.to_string())
            ),
            other => format!(
                "the server's certificate was refused ({}) against the CA in {ca} (`server_ca`): check the pinned certificate, or ask the vendor",
                escaped(&other.to_string())
            ),
        })
    }
}

/// The certificate error inside a TLS failure of `e` (ureq passes rustls'
/// errors up directly or inside an I/O error).
fn certificate_error(e: &ureq::Error) -> Option<&CertificateError> {
    let tls = match e {
        ureq::Error::Rustls(t) => Some(t),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }?;
    match tls {
        rustls::Error::InvalidCertificate(c) => Some(c),
        _ => None,
    }
}

/// The `code` and `detail` of a problem+json body, escaped for a terminal
/// and cut to a sane length.
fn problem_of(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let text = |k: &str| {
        v.get(k).and_then(|x| x.as_str()).map(|s| {
            let s: String = s.chars().take(400).collect();
            escaped(&s).to_string()
        })
    };
    (text("code"), text("detail"))
}

/// The delay before retry `attempt` (1-based): `base · 2^(attempt-1)`,
/// capped, with ±50% jitter (so a thousand PBXs that lost the server
/// together do not return together); at least the server's
/// `Retry-After`.
#[must_use]
pub fn backoff(base: Duration, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(BACKOFF_CAP);
    let jitter = f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
    let d = exp.mul_f64(0.5 + jitter);
    d.max(retry_after.unwrap_or(Duration::ZERO).min(BACKOFF_CAP))
}

/// The crypto provider of the client (`ring`; see the server's
/// `tls::provider` for why).
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The certificates of the pinned PEM file.
fn pinned(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, OnlineError> {
    use rustls_pki_types::pem::PemObject as _;
    let bad = |reason: String| OnlineError::Pin {
        path: crate::store::shown(path).to_string(),
        reason,
    };
    let bytes = read_file(
        path,
        MAX_CA_FILE,
        Some(Access::Shared),
        "pinned certificate",
    )
    .map_err(|e| bad(e.to_string()))?
    .ok_or_else(|| bad("does not exist; copy the vendor's CA certificate there".into()))?;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("is not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no `-----BEGIN CERTIFICATE-----` block; give the vendor's CA certificate in PEM"
                .into(),
        ));
    }
    Ok(certs
        .into_iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_the_agent_uses() {
        for good in [
            "https://licenses.vendor.example",
            "https://licenses.vendor.example:8443/tessera",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://localhost:1",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("licenses.vendor.example", "https://"),
            ("http://licenses.vendor.example", "plain HTTP"),
            ("https://user:pw@licenses.vendor.example", "password"),
            ("https://licenses.vendor.example/?x=1", "query"),
            ("https://licenses.vendor.example/\u{1b}[2J", "control"),
            ("ftp://licenses.vendor.example", "https://"),
            ("https://", "URL"),
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(check_url(&format!("https://a/{}", "x".repeat(600))).is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let base = Duration::from_secs(2);
        for attempt in 1..=12 {
            let exp = (base * (1 << (attempt - 1))).min(BACKOFF_CAP);
            let d = backoff(base, attempt, None);
            assert!(d >= exp / 2 && d <= exp + exp / 2, "{attempt}: {d:?}");
        }
        assert!(backoff(base, 1, Some(Duration::from_secs(60))) >= Duration::from_secs(60));
        assert!(backoff(base, 1, Some(Duration::from_secs(1 << 40))) <= BACKOFF_CAP * 2);
        assert!(backoff(base, u32::MAX, None) <= BACKOFF_CAP + BACKOFF_CAP / 2);
    }

    #[test]
    fn problems_are_read_and_escaped() {
        let (code, detail) =
            problem_of(br#"{"code":"replaced","detail":"old box\u001b[2J","status":403}"#);
        assert_eq!(code.as_deref(), Some("replaced"));
        assert!(!detail.unwrap().contains('\u{1b}'));
        assert_eq!(problem_of(b"<html>"), (None, None));
    }

    #[test]
    fn https_needs_a_pin() {
        let e = Client::new(ServerSpec {
            url: "https://licenses.vendor.example".into(),
            ca: None,
            retries: 0,
            backoff: BACKOFF_BASE,
        })
        .unwrap_err();
        assert_eq!(e.code(), "server_pin");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = Client::new(ServerSpec {
            url: "https://licenses.vendor.example".into(),
            ca: Some(ca),
            retries: 0,
            backoff: BACKOFF_BASE,
        })
        .unwrap_err();
        assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}");
    }

    /// A license service on loopback that answers every request with
    /// `status`, `headers` and `body`: its URL, and the number of requests
    /// it answered once `stop` is called.
    fn answering(
        status: &'static str,
        headers: &'static str,
        body: &'static str,
    ) -> (String, impl FnOnce() -> usize) {
        use std::io::{BufRead as _, BufReader, Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let done = Arc::new(core::sync::atomic::AtomicBool::new(false));
        let stop_flag = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let mut answered = 0;
            for stream in listener.incoming() {
                if done.load(core::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut request = vec![0; length];
                reader.read_exact(&mut request).unwrap();
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                answered += 1;
            }
            answered
        });
        let stop_url = url.clone();
        let stop = move || {
            stop_flag.store(true, core::sync::atomic::Ordering::SeqCst);
            // Wakes the accept loop.
            let _ = std::net::TcpStream::connect(stop_url.trim_start_matches("http://"));
            thread.join().unwrap()
        };
        (url, stop)
    }

    /// A renewal with `url` and `retries` that fails: its error, the
    /// requests made and the waits between them.
    fn renew_counting(url: &str, retries: u32) -> (OnlineError, u8, Vec<Duration>) {
        let client = Client::new(ServerSpec {
            url: url.to_owned(),
            ca: None,
            retries,
            backoff: Duration::from_millis(1),
        })
        .unwrap();
        let mut made = 0;
        let mut slept = Vec::new();
        let e = client
            .renew(
                || {
                    made += 1;
                    Ok::<_, OnlineError>(vec![made])
                },
                |d| slept.push(d),
            )
            .unwrap_err();
        (e, made, slept)
    }

    #[test]
    fn a_rate_limited_renewal_has_its_own_outcome_and_says_when_to_ask_again() {
        let (url, stop) = answering(
            "429 Too Many Requests",
            "content-type: application/problem+json\r\nretry-after: 7\r\n",
            r#"{"type":"urn:tessera:problem:rate-limited","title":"Too many requests","status":429,"detail":"too many requests for SW-2026-000001; ask again in 7 s","code":"rate-limited","retry_after":7}"#,
        );
        let (e, made, slept) = renew_counting(&url, 2);
        // Retried as before, each wait at least the server's Retry-After.
        assert_eq!(stop(), 3);
        assert_eq!(made, 3);
        assert_eq!(slept.len(), 2);
        assert!(
            slept.iter().all(|d| *d >= Duration::from_secs(7)),
            "{slept:?}"
        );
        // Its own outcome: not unreachable, but to be tried later.
        assert_eq!(e.code(), "rate_limited");
        assert!(!e.unreachable());
        assert!(e.try_later());
        assert_eq!(e.attempts(), Some(3));
        assert!(matches!(
            &e,
            OnlineError::RateLimited {
                retry_after: Some(7),
                ..
            }
        ));
        let text = e.to_string();
        for part in [
            url.as_str(),
            "is up but refused the request for now",
            "HTTP 429 after 3 attempt(s)",
            "too many requests for SW-2026-000001",
            "try again in 7 s",
            "the license in force stays",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(!text.contains("could not be reached"), "{text}");
    }

    #[test]
    fn a_429_without_retry_after_or_problem_still_says_to_try_later() {
        let (url, stop) = answering("429 Too Many Requests", "", "slow down");
        let (e, _, _) = renew_counting(&url, 0);
        assert_eq!(stop(), 1);
        assert_eq!(e.code(), "rate_limited");
        let text = e.to_string();
        assert!(
            text.contains("(HTTP 429 after 1 attempt(s)); try again later"),
            "{text}"
        );
    }

    #[test]
    fn a_5xx_stays_unreachable() {
        // Only a 429 says the server is up and refuses for now.
        let (url, stop) = answering("503 Service Unavailable", "", "");
        let (e, _, _) = renew_counting(&url, 0);
        assert_eq!(stop(), 1);
        assert_eq!(e.code(), "server_unreachable");
        assert!(e.try_later());
    }

    #[test]
    fn an_unreachable_server_is_retried_with_fresh_requests() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (e, made, slept) = renew_counting(&format!("http://127.0.0.1:{port}"), 3);
        assert!(e.unreachable(), "{e}");
        assert!(e.to_string().contains("4 attempt(s)"), "{e}");
        assert_eq!(made, 4);
        assert_eq!(slept.len(), 3);
    }
}

/// What an online renewal came to: the attempt, and the license decision
/// after it (the new license, or the one in force with its grace state).
#[derive(Debug)]
pub struct Online {
    /// The attempt.
    pub renewal: RenewalSummary,
    /// The decision after it.
    pub report: crate::Report,
    /// The failure, when the renewal failed.
    pub error: Option<OnlineError>,
}

impl crate::Agent {
    /// Where the license service is: `url` and `ca` (command line) over
    /// `server` and `server_ca` in agent.toml.
    ///
    /// # Errors
    /// [`OnlineError::NoServer`].
    pub fn server_spec(
        &self,
        url: Option<&str>,
        ca: Option<&Path>,
    ) -> Result<ServerSpec, OnlineError> {
        let config = self.config();
        let url = url
            .map(str::to_owned)
            .or_else(|| config.server.clone())
            .ok_or(OnlineError::NoServer)?;
        Ok(ServerSpec {
            url,
            ca: ca
                .map(Path::to_path_buf)
                .or_else(|| config.server_ca.clone()),
            retries: config.server_retries.unwrap_or(DEFAULT_RETRIES),
            backoff: BACKOFF_BASE,
        })
    }

    /// Renews with the license service. Without `force` (`check
    /// --online`) only when the license is due: renewal window, grace or
    /// after it; else it is a plain check. With `force` (`renew
    /// --server`) always. A fresh request is made for each attempt; the
    /// answer is installed as [`crate::Agent::install`] installs a file.
    /// When the renewal fails, the license in force stays and is checked
    /// as without a network.
    ///
    /// `now` gives the time (it moves during the retries); `sleep` waits
    /// between retries.
    ///
    /// # Errors
    /// Those of [`crate::Agent::check`] and [`crate::Agent::install`];
    /// configuration errors of the server ([`OnlineError::NoServer`],
    /// [`OnlineError::BadUrl`], [`OnlineError::NoPin`],
    /// [`OnlineError::Pin`]); a failed renewal's error when no license is
    /// installed to fall back on.
    pub fn renew_online(
        &self,
        spec: ServerSpec,
        force: bool,
        now: &dyn Fn() -> Result<i64, crate::AgentError>,
        sleep: impl FnMut(Duration),
    ) -> Result<Online, crate::AgentError> {
        self.online(spec, Route::Renew, force, now, sleep, None)
    }

    /// The first activation over the network (`tessera-agent activate`):
    /// the request `request` makes (its SW serial from agent.toml for a VM
    /// or Cloud PBX, else its HW serial) is sent to `POST /v1/activate`,
    /// with retries as [`Self::renew_online`] makes them, and the answer
    /// installed as [`crate::Agent::install`] installs a file. The service
    /// activates only a PBX the vendor entered in its registry.
    ///
    /// # Errors
    /// As [`Self::renew_online`] with `force`.
    pub fn activate_online(
        &self,
        spec: ServerSpec,
        code: Option<tessera_verifier::activation::ActivationCode>,
        now: &dyn Fn() -> Result<i64, crate::AgentError>,
        sleep: impl FnMut(Duration),
    ) -> Result<Online, crate::AgentError> {
        self.online(spec, Route::Activate, true, now, sleep, code)
    }

    fn online(
        &self,
        spec: ServerSpec,
        route: Route,
        force: bool,
        now: &dyn Fn() -> Result<i64, crate::AgentError>,
        sleep: impl FnMut(Duration),
        code: Option<tessera_verifier::activation::ActivationCode>,
    ) -> Result<Online, crate::AgentError> {
        let server = escaped(&spec.url).to_string();
        let client = Client::new(spec)?.with_activation_code(code);
        if !force {
            let report = self.check(now()?)?;
            if report.verdict == "valid" {
                return Ok(Online {
                    renewal: RenewalSummary {
                        outcome: "not_due",
                        server,
                        attempts: 0,
                        sequence: None,
                        error: None,
                        code: None,
                        retry_after: None,
                        problem: None,
                    },
                    report,
                    error: None,
                });
            }
        }
        let renewed = client.exchange(
            route,
            || Ok::<_, crate::AgentError>(self.request(now()?)?.bytes),
            sleep,
        );
        match renewed {
            Ok((bytes, attempts)) => {
                let report = self.install(&bytes, now()?, false)?;
                Ok(Online {
                    renewal: RenewalSummary {
                        outcome: match route {
                            Route::Renew => "renewed",
                            Route::Activate => "activated",
                        },
                        server,
                        attempts,
                        sequence: Some(report.license.sequence),
                        error: None,
                        code: None,
                        retry_after: None,
                        problem: None,
                    },
                    report,
                    error: None,
                })
            }
            Err(crate::AgentError::Online(e)) => {
                let report = match self.check(now()?) {
                    Ok(r) => r,
                    Err(_) if force => return Err(e.into()),
                    Err(other) => return Err(other),
                };
                let (outcome, retry_after, problem) = match &e {
                    OnlineError::Unreachable { .. } => ("unreachable", None, None),
                    OnlineError::RateLimited { retry_after, .. } => (
                        "rate_limited",
                        *retry_after,
                        Some("rate-limited".to_owned()),
                    ),
                    OnlineError::Refused { code, .. } => ("refused", None, Some(code.clone())),
                    OnlineError::Untrusted { .. } => ("server_untrusted", None, None),
                    _ => ("refused", None, None),
                };
                Ok(Online {
                    renewal: RenewalSummary {
                        outcome,
                        server,
                        attempts: e.attempts().unwrap_or(1),
                        sequence: None,
                        error: Some(e.to_string()),
                        code: Some(e.code().to_owned()),
                        retry_after,
                        problem,
                    },
                    report,
                    error: Some(e),
                })
            }
            Err(other) => Err(other),
        }
    }
}
