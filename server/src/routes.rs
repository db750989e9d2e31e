//! The routes. Handlers are thin: they read the body, decode and check the
//! request, and hand it to the ledger thread; the rules are the issuer
//! library's. Limits, timeouts and metrics are one middleware around them.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tessera_issuer::error::Error;
use tessera_issuer::validate::{self, InvalidInput};
use tessera_verifier::activation::{self, ActivationCode};
use tessera_verifier::encode::RequestData;
use tessera_verifier::{armor, decode_request, MAX_OBJECT_LEN};
use tokio::sync::{mpsc, oneshot};

use crate::commit::{Halt, Job, Refusal};
use crate::limits::{Limits, RateLimiter, REFUSAL_FLOOR};
use crate::metrics::Metrics;
use crate::problem::{Kind, Problem};
use crate::Clock;

/// The media type of a license or a binary request.
pub const COSE: &str = "application/cose";

/// The client address of a connection, put on each of its requests.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// What the handlers share.
#[derive(Debug)]
pub struct App {
    pub(crate) jobs: mpsc::Sender<Job>,
    pub(crate) clock: Clock,
    pub(crate) freshness: u32,
    pub(crate) limits: Limits,
    pub(crate) per_address: RateLimiter<IpAddr>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Set once the ledger was found modified outside tessera.
    pub(crate) halted: Halt,
    /// Holds refusals until [`REFUSAL_FLOOR`].
    pub(crate) floor: crate::floor::Floor,
}

/// The router of a server.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/renew", post(renew))
        .route("/v1/activate", post(activate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), guard))
        .with_state(app)
}

/// The router of the metrics listener (`--metrics-listen`): `GET
/// /metrics` and nothing else.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .fallback(metrics_not_found)
        .with_state(metrics)
}

/// The metrics' name of a path.
fn route_name(path: &str) -> &'static str {
    match path {
        "/v1/renew" => "renew",
        "/v1/activate" => "activate",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        _ => "other",
    }
}

/// Around every request: the per-address rate limit (device routes), the
/// request timeout, the refusals' floor ([`REFUSAL_FLOOR`]), the metrics.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_name(req.uri().path());
    app.metrics.in_flight(1);
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    let limited = match (route, peer) {
        ("renew" | "activate" | "other", Some(ip)) => app.per_address.check(&ip, started).err(),
        _ => None,
    };
    let response = match limited {
        Some(wait) => Problem::new(
            Kind::RateLimited,
            format!("too many requests from this address; ask again in {wait} s"),
        )
        .retry_after(wait)
        .into_response(),
        None => match tokio::time::timeout(app.limits.request_timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => Problem::new(
                Kind::Timeout,
                format!(
                    "no answer within {} s; ask again with a new request",
                    app.limits.request_timeout.as_secs()
                ),
            )
            .into_response(),
        },
    };
    if floored(route, &response) {
        app.floor.until(started + REFUSAL_FLOOR).await;
    }
    let outcome = match response.extensions().get::<Kind>() {
        Some(k) => k.code(),
        None if response.status().is_success() => "ok",
        None => "error",
    };
    app.metrics.in_flight(-1);
    app.metrics.request(route, outcome, started.elapsed());
    response
}

/// Whether `response`, to a request of `route`, waits for
/// [`REFUSAL_FLOOR`]: every refusal of the device routes but a 429 (the
/// per-address limit, the PBX's own spent budget), so its time tells
/// nothing of what the ledger holds.
fn floored(route: &str, response: &Response) -> bool {
    matches!(route, "renew" | "activate")
        && !response.status().is_success()
        && response.extensions().get::<Kind>() != Some(&Kind::RateLimited)
}

async fn not_found() -> Problem {
    Problem::new(
        Kind::NotFound,
        "no such resource; the service answers POST /v1/renew, POST /v1/activate, GET /healthz and /readyz",
    )
}

async fn metrics_not_found() -> Problem {
    Problem::new(
        Kind::NotFound,
        "no such resource; the metrics listener (--metrics-listen) answers GET /metrics only",
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if let Some(e) = app.halted.get() {
        return Problem::new(
            Kind::LedgerModified,
            format!(
                "not ready: {}; the service answers no renewals until it is restarted",
                tessera_verifier::text::escaped(&e.to_string())
            ),
        )
        .into_response();
    }
    let (reply, rx) = oneshot::channel();
    let unavailable = |why: String| {
        Problem::new(
            Kind::Unavailable,
            format!("the ledger is not reachable: {why}"),
        )
        .retry_after(5)
        .into_response()
    };
    if app.jobs.send(Job::Ready { reply }).await.is_err() {
        return Problem::new(Kind::ShuttingDown, "the service is shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(Ok(entries))) => (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"ledger_entries\":{entries}}}\n"),
        )
            .into_response(),
        Ok(Ok(Err(e))) => unavailable(e),
        Ok(Err(_)) => unavailable("the ledger thread ended".into()),
        Err(_) => unavailable("no answer within 5 s (busy with a long commit?)".into()),
    }
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// Reads a body of at most `max` bytes.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Vec<u8>, Problem> {
    let too_large = || {
        Problem::new(
            Kind::TooLarge,
            format!("the body is over {max} bytes; a request is a few hundred bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(Problem::new(
            Kind::MalformedRequest,
            format!("the body could not be read ({e})"),
        )),
    }
}

/// A UTF-8 byte order mark, as Windows editors start text files.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// The media type of the armored text of a request.
pub const ARMORED: &str = "text/plain";

/// What a request body was sent as: the only two media types accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Media {
    /// `application/cose`: the binary COSE object.
    Cose,
    /// `text/plain`: the armored text (`TESSERA REQUEST`).
    Armored,
}

/// The media type of a request from its `Content-Type` (RFC 9110 §8.3):
/// exactly one header, `application/cose` (binary) or `text/plain`
/// (armored; a `charset` parameter, if any, must be UTF-8 or US-ASCII),
/// type names without regard to case, other parameters ignored. Anything
/// else is `unsupported-media-type`: a client that says nothing, or
/// `application/octet-stream`, is told what to send.
fn media_type(headers: &HeaderMap) -> Result<Media, Problem> {
    let refuse = |what: String| {
        Problem::new(
            Kind::UnsupportedMediaType,
            format!(
                "{what}; send a request as `Content-Type: {COSE}` (the binary COSE object `tessera-agent` makes) or `Content-Type: {ARMORED}` (its armored text, `-----BEGIN TESSERA REQUEST-----`)"
            ),
        )
    };
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(refuse("the request has no Content-Type".into())),
        (Some(_), Some(_)) => {
            return Err(refuse("the request has more than one Content-Type".into()))
        }
        (Some(v), None) => v,
    };
    let Ok(value) = value.to_str() else {
        return Err(refuse("the Content-Type is not ASCII text".into()));
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let shown = || tessera_verifier::text::escaped(value).to_string();
    let media = if essence.eq_ignore_ascii_case(COSE) {
        Media::Cose
    } else if essence.eq_ignore_ascii_case(ARMORED) {
        Media::Armored
    } else {
        return Err(refuse(format!("the Content-Type is `{}`", shown())));
    };
    for parameter in parts {
        let Some((name, v)) = parameter.split_once('=') else {
            if parameter.trim().is_empty() {
                continue;
            }
            return Err(refuse(format!(
                "the Content-Type `{}` has a parameter without a value",
                shown()
            )));
        };
        let v = v.trim().trim_matches('"');
        if media == Media::Armored
            && name.trim().eq_ignore_ascii_case("charset")
            && !(v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("us-ascii"))
        {
            return Err(refuse(format!(
                "the armored text is in charset `{}`; it is read as UTF-8 (armor is ASCII)",
                tessera_verifier::text::escaped(v)
            )));
        }
    }
    Ok(media)
}

/// The request's bytes from a body of its media type: the armored text
/// decoded, or the binary object as it is. A body that is not what its
/// type says (binary sent as text, armor sent as binary) is refused as
/// `unsupported-media-type`, naming the type it looks like.
fn request_bytes<'b>(raw: &'b [u8], media: Media, buf: &'b mut [u8]) -> Result<&'b [u8], Problem> {
    let mismatch = |what: &str| {
        Problem::new(
            Kind::UnsupportedMediaType,
            format!("the body is {what}; send the binary COSE object as `Content-Type: {COSE}` and its armored text as `Content-Type: {ARMORED}`"),
        )
    };
    match media {
        Media::Cose => {
            let text_like = raw.first().is_some_and(u8::is_ascii) || raw.starts_with(BOM);
            if text_like && raw.windows(10).any(|w| w == b"-----BEGIN") {
                return Err(mismatch("armored text, not a binary COSE object"));
            }
            Ok(raw)
        }
        Media::Armored => {
            // Text begins with a character; a binary COSE object with a
            // CBOR head byte (0x80 and up), which is no ASCII character.
            let text = core::str::from_utf8(raw).ok().filter(|t| {
                t.as_bytes().first().is_none_or(u8::is_ascii) || t.starts_with('\u{feff}')
            });
            let Some(text) = text else {
                return Err(mismatch("binary, not armored text"));
            };
            armor::decode(text, armor::LABEL_REQUEST, buf).map_err(|e| {
                Problem::new(
                    Kind::MalformedRequest,
                    format!("the body is no armored `TESSERA REQUEST`: {e}"),
                )
            })
        }
    }
}

/// Decodes and checks a request body: armor or binary, the device's
/// signature, the fields ([`validate::request`]) and the freshness of its
/// creation time.
/// The service's freshness window, as its refusals name it.
const FRESHNESS_SETTING: &str = "`--freshness` of tessera-server";

fn decode(raw: &[u8], media: Media, now: i64, freshness: u32) -> Result<RequestData, Problem> {
    let mut buf = vec![0u8; MAX_OBJECT_LEN];
    let bytes = request_bytes(raw, media, &mut buf)?;
    let data = decode_request(bytes)
        .map_err(|e| {
            Problem::new(
                Kind::MalformedRequest,
                format!("the request is not valid (`tessera-agent` makes valid ones): {e}"),
            )
        })?
        .to_data();
    validate::request_within(data, now, freshness, FRESHNESS_SETTING).map_err(|e| match e {
        InvalidInput::StaleRequest { .. } => Problem::new(Kind::Stale, e.to_string()),
        _ => Problem::new(Kind::MalformedRequest, e.to_string()),
    })
}

async fn renew(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    license_response(device_request(&app, &headers, body, Op::Renew).await)
}

async fn activate(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let op = Op::Activate(activation_code(&headers));
    license_response(device_request(&app, &headers, body, op).await)
}

/// The activation code of `POST /v1/activate` (header
/// [`activation::HEADER`]): `None` when there is none. A header given
/// twice, over [`activation::MAX_TEXT`] bytes, not ASCII or not a code is
/// `malformed-request`; its value is never repeated.
pub(crate) fn activation_code(headers: &HeaderMap) -> Result<Option<ActivationCode>, Problem> {
    let malformed = |what: String| {
        Problem::new(
            Kind::MalformedRequest,
            format!(
                "{what}; the `{}` header carries the activation code the vendor gave for the PBX (four groups of five letters and digits)",
                activation::HEADER
            ),
        )
    };
    let mut values = headers.get_all(activation::HEADER).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(malformed(
                "the request has more than one activation code".into(),
            ))
        }
        (Some(v), None) => v,
    };
    if value.len() > activation::MAX_TEXT {
        return Err(malformed(format!(
            "the activation code header is {} bytes long",
            value.len()
        )));
    }
    let text = value
        .to_str()
        .map_err(|_| malformed("the activation code header is not ASCII text".into()))?;
    ActivationCode::parse(text.trim())
        .map(Some)
        .map_err(|e| malformed(e.to_string()))
}

/// What a device asks for: the same body, limits and checks, another rule.
#[derive(Debug)]
enum Op {
    Renew,
    /// With the activation code the request brought (refused once the
    /// body is read: a connection that goes on stays in step).
    Activate(Result<Option<ActivationCode>, Problem>),
}

fn license_response(answer: Result<Vec<u8>, Problem>) -> Response {
    match answer {
        Ok(bytes) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(COSE));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(p) => p.into_response(),
    }
}

async fn device_request(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    op: Op,
) -> Result<Vec<u8>, Problem> {
    let media = media_type(headers)?;
    let raw = read_body(headers, body, app.limits.max_body).await?;
    if let Op::Activate(Err(p)) = op {
        return Err(p);
    }
    let now = app.clock.now();
    let request = decode(&raw, media, now.timestamp(), app.freshness)?;
    // The renewal budget is not looked at here: only the ledger thread
    // can tell the PBX's own device from a forger, and a forger must get
    // the same answer whether or not the PBX renewed lately (see
    // `crate::commit`).
    let (reply, rx) = oneshot::channel();
    let request = Box::new(request);
    let job = match op {
        Op::Renew => Job::Renew {
            request,
            now,
            reply,
        },
        Op::Activate(code) => Job::Activate {
            code: code.unwrap_or_default(),
            request,
            now,
            reply,
        },
    };
    if app.jobs.send(job).await.is_err() {
        return Err(shutting_down());
    }
    match rx.await {
        Ok(Ok(issued)) => Ok(issued.record.row.bytes),
        Ok(Err(Refusal::Rules(e))) => Err(problem_for(&e)),
        Ok(Err(Refusal::Budget { serial, wait })) => Err(budget_spent(&serial, wait)),
        Err(_) => Err(shutting_down()),
    }
}

/// The renewal budget of `serial` is spent for `wait` seconds.
fn budget_spent(serial: &str, wait: u64) -> Problem {
    Problem::new(
        Kind::RateLimited,
        format!(
            "too many requests for {}; ask again in {wait} s",
            tessera_verifier::text::escaped(serial)
        ),
    )
    .retry_after(wait)
}

fn shutting_down() -> Problem {
    Problem::new(
        Kind::ShuttingDown,
        "the service is shutting down; ask again in a moment",
    )
    .retry_after(5)
}

/// The problem for an issuer error; the service's own failures are logged.
fn problem_for(e: &Error) -> Problem {
    let p = Problem::from_issuer(e);
    if matches!(p.kind(), Kind::Internal | Kind::Unavailable) {
        eprintln!(
            "tessera-server: {}",
            tessera_verifier::text::escaped(&e.to_string())
        );
    }
    p
}
