//! Refusals as RFC 9457 problem details (`application/problem+json`):
//! one type per reason a device is refused, mapped from the issuer
//! library's errors in one place ([`Problem::from_issuer`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_issuer::error::Error;
use tessera_issuer::ledger::LedgerError;
use tessera_issuer::policy::PolicyError;

/// The media type of a problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What a device refused with `unknown-device-key` does: unlike the CLI's
/// operator (`--new-device-key`), the service never accepts a new key.
pub const SERVICE_NEVER_ACCEPTS_A_NEW_KEY: &str = "The service never accepts a new device key: if the device really has a new key (its storage was wiped), make a request file (`tessera-agent request`) and have the vendor accept the key offline (`tessera renew --new-device-key`); online renewals work again from then on";

/// Why a request was refused: the `type` of the problem
/// (`urn:tessera:problem:<code>`) and its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Kind {
    /// The body is no signed request (bad armor, CBOR, signature).
    MalformedRequest,
    /// The body is over the size limit.
    TooLarge,
    /// The body is neither `application/cose` nor armored text.
    UnsupportedMediaType,
    /// The request's creation time is outside the freshness window.
    Stale,
    /// The request's nonce was seen before.
    Replay,
    /// No license in force answers the request and no binding can check
    /// it: a serial never allocated, a registered PBX never licensed, a
    /// HW serial never activated. One answer for all, naming nothing.
    Unknown,
    /// An online activation of a PBX that has a license in force.
    AlreadyActivated,
    /// The request matches a binding a replacement superseded (RMA).
    Replaced,
    /// The serial's license was voided; nothing is in force.
    Voided,
    /// The PBX was stopped after a decrease to zero users.
    Stopped,
    /// The PBX was deleted.
    Deleted,
    /// The request comes from a device the license is not bound to.
    WrongDevice,
    /// The request is signed by a device key none of the PBX's answered
    /// requests was signed with: a copy re-signed by someone else, or a
    /// device whose storage was wiped; only the vendor accepts a new key,
    /// offline.
    UnknownDeviceKey,
    /// An online activation refused, whatever the reason (unknown serial,
    /// PBX activated, voided, stopped or deleted, no code, a wrong,
    /// expired or used activation code): one answer, so that naming a
    /// serial tells nothing of its PBX.
    ActivationRefused,
    /// Another rule of the issuer refused it.
    Refused,
    /// Too many requests from this serial or address.
    RateLimited,
    /// The request took too long.
    Timeout,
    /// No such route.
    NotFound,
    /// The ledger cannot be reached or is busy; try again later.
    Unavailable,
    /// The server is shutting down.
    ShuttingDown,
    /// The ledger was modified outside tessera (or does not hold what
    /// tessera wrote): nothing is decided on it until an operator has
    /// verified or restored it and restarted the service.
    LedgerModified,
    /// Anything else (logged on the server).
    Internal,
}

impl Kind {
    /// The short code (`replay`, `replaced` ...), also the last part of the
    /// problem's type URI and the metrics' outcome label.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed-request",
            Self::TooLarge => "too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Stale => "stale",
            Self::Replay => "replay",
            Self::Unknown => "unknown",
            Self::AlreadyActivated => "already-activated",
            Self::Replaced => "replaced",
            Self::Voided => "voided",
            Self::Stopped => "stopped",
            Self::Deleted => "deleted",
            Self::WrongDevice => "wrong-device",
            Self::UnknownDeviceKey => "unknown-device-key",
            Self::ActivationRefused => "activation-refused",
            Self::Refused => "refused",
            Self::RateLimited => "rate-limited",
            Self::Timeout => "timeout",
            Self::NotFound => "not-found",
            Self::Unavailable => "unavailable",
            Self::ShuttingDown => "shutting-down",
            Self::LedgerModified => "ledger-modified",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedRequest | Self::Stale => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Replay | Self::Refused | Self::AlreadyActivated => StatusCode::CONFLICT,
            Self::Unknown | Self::NotFound => StatusCode::NOT_FOUND,
            Self::Replaced | Self::WrongDevice | Self::UnknownDeviceKey | Self::Stopped => {
                StatusCode::FORBIDDEN
            }
            Self::ActivationRefused => StatusCode::FORBIDDEN,
            Self::Voided | Self::Deleted => StatusCode::GONE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable | Self::ShuttingDown | Self::LedgerModified => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem's short human title.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedRequest => "The body is not a valid signed request",
            Self::TooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "The body must be application/cose or an armored request",
            Self::Stale => "The request was not made now",
            Self::Replay => "The request was answered before",
            Self::Unknown => "The PBX has no license in the ledger",
            Self::AlreadyActivated => "The PBX is activated already",
            Self::Replaced => "The PBX was replaced",
            Self::Voided => "The license was voided",
            Self::Stopped => "The PBX is stopped",
            Self::Deleted => "The PBX was deleted",
            Self::WrongDevice => "The request comes from another device",
            Self::UnknownDeviceKey => "The request is signed by a device key this PBX never used",
            Self::ActivationRefused => "No PBX waits for this online activation",
            Self::Refused => "The licensing rules refuse the request",
            Self::RateLimited => "Too many requests",
            Self::Timeout => "The request took too long",
            Self::NotFound => "No such resource",
            Self::Unavailable => "The license service cannot answer now",
            Self::ShuttingDown => "The license service is shutting down",
            Self::LedgerModified => "The license service's ledger was modified outside tessera",
            Self::Internal => "The license service failed",
        }
    }
}

/// The detail of [`Kind::Unknown`]: the same for every serial.
pub const UNKNOWN_DETAIL: &str = "no license in force answers this request: the serial it names has no license in the vendor's ledger, or the vendor never entered it. A PBX gets its first license by online activation (`tessera-agent activate` with the activation code the vendor gave for it) or from a request file the vendor answers (`tessera issue`); then it renews";

/// A problem detail (RFC 9457 §3).
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// `urn:tessera:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// The kind's title.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong and what to do.
    pub detail: String,
    /// The short code (extension member).
    pub code: &'static str,
    /// Seconds to wait before asking again (rate limits, unavailable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(skip)]
    kind: Option<Kind>,
}

impl Problem {
    /// A problem of `kind` with `detail`.
    #[must_use]
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:tessera:problem:{}", kind.code()),
            title: kind.title(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            code: kind.code(),
            retry_after: None,
            kind: Some(kind),
        }
    }

    /// With a `Retry-After`.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind.unwrap_or(Kind::Internal)
    }

    /// The problem for an error of the issuer library. Errors that are the
    /// server's own (ledger, key) say only that the service failed; the
    /// caller logs them.
    #[must_use]
    pub fn from_issuer(e: &Error) -> Self {
        let kind = match e {
            Error::Policy(p) => match p {
                PolicyError::NotActivated
                | PolicyError::NoLicense { .. }
                | PolicyError::NotRegistered { .. }
                | PolicyError::HwNotRegistered { .. } => Kind::Unknown,
                PolicyError::AlreadyActivated { .. } => Kind::AlreadyActivated,
                PolicyError::BindingReplaced { .. } => Kind::Replaced,
                PolicyError::Voided { .. } => Kind::Voided,
                PolicyError::PbxStopped { .. } => Kind::Stopped,
                PolicyError::PbxDeleted { .. } => Kind::Deleted,
                PolicyError::WrongDevice { .. } => Kind::WrongDevice,
                PolicyError::UnknownDeviceKey { .. } => Kind::UnknownDeviceKey,
                PolicyError::RequestReplayed => Kind::Replay,
                PolicyError::ActivationRefused => Kind::ActivationRefused,
                _ => Kind::Refused,
            },
            Error::Invalid(tessera_issuer::validate::InvalidInput::StaleRequest { .. }) => {
                Kind::Stale
            }
            Error::Invalid(_) | Error::Request { .. } | Error::RequestRefused { .. } => {
                Kind::MalformedRequest
            }
            Error::Ledger(LedgerError::Busy { .. }) => Kind::Unavailable,
            Error::Ledger(l) if l.is_integrity() => Kind::LedgerModified,
            _ => Kind::Internal,
        };
        let detail = match kind {
            Kind::Internal => {
                "the license service could not answer (its log says why); try again later".into()
            }
            Kind::Unavailable => "the ledger is busy; try again later".into(),
            // One answer, naming nothing, for every serial without a
            // license and a binding to check the request against (never
            // allocated, registered and waiting for its activation, a HW
            // serial never activated or mapped): a request signed by
            // anyone learns neither which serials the registry holds nor
            // which SW serial a HW serial maps to.
            Kind::Unknown => UNKNOWN_DETAIL.into(),
            Kind::UnknownDeviceKey => match e {
                // What was wrong is the issuer's wording; what to do is
                // the service's own: it never accepts a new key.
                Error::Policy(PolicyError::UnknownDeviceKey { serial, key }) => format!(
                    "{}. {SERVICE_NEVER_ACCEPTS_A_NEW_KEY}",
                    tessera_issuer::policy::unknown_device_key(serial, key)
                ),
                _ => e.to_string(),
            },
            Kind::LedgerModified => "the vendor's ledger does not hold what tessera wrote (modified outside tessera); nothing was recorded and the service answers nothing until the vendor has restored it: keep the license in force and ask again later".into(),
            _ => e.to_string(),
        };
        let p = Self::new(kind, detail);
        if kind == Kind::Unavailable {
            p.retry_after(5)
        } else {
            p
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.kind().status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (status, body).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r.extensions_mut().insert(self.kind());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_key_shares_the_issuers_wording_and_says_its_own_remedy() {
        let e = Error::Policy(PolicyError::UnknownDeviceKey {
            serial: "SW-2026-000001".into(),
            key: "0123456789abcdef".into(),
        });
        let shared =
            tessera_issuer::policy::unknown_device_key("SW-2026-000001", "0123456789abcdef");
        let cli = e.to_string();
        let service = Problem::from_issuer(&e);
        assert_eq!(service.kind(), Kind::UnknownDeviceKey);
        assert!(cli.starts_with(&shared), "{cli}");
        assert!(service.detail.starts_with(&shared), "{}", service.detail);
        // What to do differs: the operator may accept the key, the
        // service never does.
        assert!(
            cli.contains("accept it explicitly with `--new-device-key`"),
            "{cli}"
        );
        assert!(
            service.detail.ends_with(SERVICE_NEVER_ACCEPTS_A_NEW_KEY),
            "{}",
            service.detail
        );
        assert!(
            !service.detail.contains("accept it explicitly"),
            "{}",
            service.detail
        );
    }
}
