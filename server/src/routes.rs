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
use tessera_verifier::encode::RequestData;
use tessera_verifier::{armor, decode_request, MAX_OBJECT_LEN};
use tokio::sync::{mpsc, oneshot};

use crate::commit::Job;
use crate::limits::{Limits, RateLimiter};
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
    /// Keyed by serial and device key: a request signed by another
    /// device (anyone can make one) spends its own bucket, never the
    /// budget of the PBX it names.
    pub(crate) per_serial: RateLimiter<(String, [u8; 32])>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
}

/// The router of a server.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/renew", post(renew))
        .route("/v1/activate", post(activate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), guard))
        .with_state(app)
}

/// The metrics' name of a path.
fn route_name(path: &str) -> &'static str {
    match path {
        "/v1/renew" => "renew",
        "/v1/activate" => "activate",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        _ => "other",
    }
}

/// Around every request: the per-address rate limit (device routes), the
/// request timeout, the metrics.
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
    let outcome = match response.extensions().get::<Kind>() {
        Some(k) => k.code(),
        None if response.status().is_success() => "ok",
        None => "error",
    };
    app.metrics.in_flight(-1);
    app.metrics.request(route, outcome, started.elapsed());
    response
}

async fn not_found() -> Problem {
    Problem::new(
        Kind::NotFound,
        "no such resource; the service answers POST /v1/renew, POST /v1/activate, GET /healthz, /readyz and /metrics",
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
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

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
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

/// The media types a request may come as: the binary COSE object, or the
/// armored text (whatever a client calls it, the armor is checked).
fn acceptable(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "application/cose" | "application/octet-stream" | "text/plain" | "" => Ok(()),
        other => Err(Problem::new(
            Kind::UnsupportedMediaType,
            format!(
                "a request is sent as application/cose (binary) or text/plain (armored), not {}",
                tessera_verifier::text::escaped(other)
            ),
        )),
    }
}

/// Decodes and checks a request body: armor or binary, the device's
/// signature, the fields ([`validate::request`]) and the freshness of its
/// creation time.
fn decode(raw: &[u8], now: i64, freshness: u32) -> Result<RequestData, Problem> {
    let mut buf = vec![0u8; MAX_OBJECT_LEN];
    let bytes = armor::read_object(raw, armor::LABEL_REQUEST, &mut buf).map_err(|e| {
        Problem::new(
            Kind::MalformedRequest,
            format!("the body is neither a binary request nor an armored `TESSERA REQUEST`: {e}"),
        )
    })?;
    let data = decode_request(bytes)
        .map_err(|e| {
            Problem::new(
                Kind::MalformedRequest,
                format!("the request is not valid (`tessera-agent` makes valid ones): {e}"),
            )
        })?
        .to_data();
    validate::request(data, now, freshness).map_err(|e| match e {
        InvalidInput::StaleRequest { .. } => Problem::new(
            Kind::Stale,
            format!("{e}; check the device's clock (NTP) and make a new request"),
        ),
        _ => Problem::new(Kind::MalformedRequest, e.to_string()),
    })
}

async fn renew(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    license_response(device_request(&app, &headers, body, Op::Renew).await)
}

async fn activate(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    license_response(device_request(&app, &headers, body, Op::Activate).await)
}

/// What a device asks for: the same body, limits and checks, another rule.
#[derive(Clone, Copy, Debug)]
enum Op {
    Renew,
    Activate,
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
    acceptable(headers)?;
    let raw = read_body(headers, body, app.limits.max_body).await?;
    let now = app.clock.now();
    let request = decode(&raw, now.timestamp(), app.freshness)?;
    let who = request
        .serial
        .clone()
        .or_else(|| request.hw_serial.clone())
        .unwrap_or_default();
    let bucket = (who, request.device_key);
    if let Err(wait) = app.per_serial.check(&bucket, Instant::now()) {
        let who = &bucket.0;
        return Err(Problem::new(
            Kind::RateLimited,
            format!(
                "too many requests for {}; ask again in {wait} s",
                tessera_verifier::text::escaped(who)
            ),
        )
        .retry_after(wait));
    }
    let (reply, rx) = oneshot::channel();
    let request = Box::new(request);
    let job = match op {
        Op::Renew => Job::Renew {
            request,
            now,
            reply,
        },
        Op::Activate => Job::Activate {
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
        Ok(Err(e)) => Err(problem_for(&e)),
        Err(_) => Err(shutting_down()),
    }
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
