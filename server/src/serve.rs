//! The accept loop: TLS handshakes (bounded in time), HTTP/1.1 connections
//! (bounded in number, header read timeout), and the graceful shutdown:
//! stop accepting, let requests in flight finish (they are answered only
//! once their licenses are committed), then let the ledger thread finish
//! what it has and stop. The metrics, when asked for, have a listener of
//! their own (plain HTTP, one request per connection).

use core::net::SocketAddr;
use core::sync::atomic::{AtomicU8, Ordering};
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tessera_issuer::error::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::commit::Worker;
use crate::limits::{Limits, RateLimiter};
use crate::metrics::Metrics;
use crate::routes::{router, App, Peer};
use crate::Settings;

/// A started server.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    metrics: Arc<Metrics>,
    /// The metrics listener's address and task, when asked for.
    metrics_listener: Option<(SocketAddr, JoinHandle<()>)>,
}

impl Running {
    /// The address it listens on (the port the system chose for port 0).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL (`https://127.0.0.1:PORT`).
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// Its metrics.
    #[must_use]
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The URL of its metrics (`http://127.0.0.1:PORT/metrics`), when
    /// [`Settings::metrics_listen`] asked for them.
    #[must_use]
    pub fn metrics_url(&self) -> Option<String> {
        self.metrics_listener
            .as_ref()
            .map(|(addr, _)| format!("http://{addr}/metrics"))
    }

    /// The address its metrics listener is bound to, when
    /// [`Settings::metrics_listen`] asked for one.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(addr, _)| *addr)
    }

    /// Asks for a graceful shutdown (what SIGTERM does); [`Running::wait`]
    /// returns once it is done.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) {
        let _ = self.task.await;
        if let Some((_, task)) = self.metrics_listener {
            let _ = task.await;
        }
    }
}

/// Starts a server: opens the key, the catalog and the ledger (on the
/// ledger thread), binds, and serves until [`Running::shutdown`].
///
/// # Errors
/// [`Error::Usage`] for settings that do not hold or an address that
/// cannot be bound, the errors of opening the key, catalog and ledger,
/// TLS files that cannot be loaded.
pub async fn start(settings: Settings) -> Result<Running, Error> {
    settings.check()?;
    let Settings {
        listen,
        tls,
        insecure_http: _,
        metrics_listen,
        ctx,
        key,
        freshness,
        limits,
        clock,
    } = settings;
    let acceptor = tls
        .map(|t| crate::tls::server_config(&t.cert, &t.key))
        .transpose()
        .map_err(|e| Error::Usage(e.to_string()))?
        .map(TlsAcceptor::from);
    let metrics = Arc::new(Metrics::default());
    let open = Box::new(move || Settings::open_parts(&ctx, &key));
    let halted = crate::commit::Halt::default();
    // The renewal budget of each PBX, by its SW serial: only the ledger
    // thread looks at it (see `crate::commit`), never a handler, which
    // cannot tell the PBX's own device from a forger.
    let per_serial = Arc::new(RateLimiter::new(limits.per_serial));
    let (worker, jobs) = tokio::task::spawn_blocking({
        let metrics = Arc::clone(&metrics);
        let halt = Arc::clone(&halted);
        let max_batch = limits.max_batch;
        move || Worker::start(open, max_batch, metrics, halt, per_serial)
    })
    .await
    .map_err(|e| Error::Usage(format!("the ledger thread failed to start: {e}")))??;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    let metrics_listener = match metrics_listen {
        Some(at) => {
            let cannot = |e: std::io::Error| {
                Error::Usage(format!(
                    "cannot listen on {at} for the metrics (--metrics-listen): {e}"
                ))
            };
            let l = TcpListener::bind(at).await.map_err(cannot)?;
            let a = l.local_addr().map_err(cannot)?;
            Some((l, a))
        }
        None => None,
    };
    let app = Arc::new(App {
        jobs,
        clock,
        freshness,
        per_address: RateLimiter::new(limits.per_address),
        limits: limits.clone(),
        metrics: Arc::clone(&metrics),
        halted,
        floor: crate::floor::Floor::start()?,
    });
    let (stop, stopped) = watch::channel(false);
    let tls = acceptor.is_some();
    let metrics_listener = metrics_listener.map(|(l, a)| {
        let task = tokio::spawn(serve_metrics(
            l,
            Arc::clone(&metrics),
            stop.subscribe(),
            limits.handshake_timeout,
        ));
        (a, task)
    });
    let task = tokio::spawn(serve(listener, acceptor, app, limits, stopped, worker));
    Ok(Running {
        addr,
        tls,
        stop,
        task,
        metrics,
        metrics_listener,
    })
}

/// The next connection of `listener` once one of `connections` is free,
/// with the permit that counts it; `None` once the server stops. A failed
/// accept (out of file descriptors and the like) is reported and retried
/// after a pause.
async fn next_connection(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
    stopped: &mut watch::Receiver<bool>,
) -> Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    let permit = tokio::select! {
        p = Arc::clone(connections).acquire_owned() => p.ok()?,
        _ = stopped.changed() => return None,
    };
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => return Some((permit, stream, peer)),
                Err(e) => {
                    eprintln!("tessera-server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped.changed() => return None,
        }
    }
}

/// Most connections to the metrics listener at once (a scraper or two).
const METRICS_CONNECTIONS: usize = 16;

/// Longest wait for the request line and headers of a metrics request: a
/// scraper sends them as soon as it is connected, on loopback or an admin
/// network, so a connection silent this long is idle and is closed.
pub(crate) const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection of the metrics listener, from its acceptance to its end:
/// whether its request arrived, and how to close it while it has not.
#[derive(Debug, Default)]
struct MetricsConnection {
    /// [`IDLE`], [`ASKED`] or [`CLOSING`].
    state: AtomicU8,
    close: Notify,
}

/// No request yet: the connection may be closed for a new one.
const IDLE: u8 = 0;
/// Its request arrived: it is answered, never closed for another.
const ASKED: u8 = 1;
/// Chosen to be closed for a new connection.
const CLOSING: u8 = 2;

/// The connections of the metrics listener, oldest first.
type MetricsConnections = Arc<Mutex<VecDeque<Arc<MetricsConnection>>>>;

/// Closes the oldest connection that has sent no request yet, if any:
/// idle or slow connections cannot keep a scrape from being accepted.
fn close_oldest_idle(open: &MetricsConnections) {
    let Ok(mut open) = open.lock() else {
        return;
    };
    let oldest = open.iter().position(|c| {
        c.state
            .compare_exchange(IDLE, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    });
    if let Some(c) = oldest.and_then(|i| open.remove(i)) {
        c.close.notify_one();
    }
}

/// The metrics listener: `GET /metrics` in plain HTTP, one request per
/// connection, each connection done within `timeout`; it stops accepting
/// on shutdown. At most [`METRICS_CONNECTIONS`] at once: one silent for
/// [`METRICS_HEADER_TIMEOUT`] is closed, and a connection accepted while
/// all are open closes the oldest that has sent no request (or waits for
/// one being answered to end), so idle connections cannot starve scrapes.
async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut stopped: watch::Receiver<bool>,
    timeout: Duration,
) {
    let router = crate::routes::metrics_router(metrics);
    let connections = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
    let open = MetricsConnections::default();
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("tessera-server: accept failed on the metrics listener: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let permit = match Arc::clone(&connections).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                close_oldest_idle(&open);
                tokio::select! {
                    p = Arc::clone(&connections).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stopped.changed() => return,
                }
            }
        };
        let this = Arc::new(MetricsConnection::default());
        if let Ok(mut open) = open.lock() {
            open.push_back(Arc::clone(&this));
        }
        let router = router.clone();
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            let _permit = permit;
            let asked = Arc::clone(&this);
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                // Closing it for a new connection lost the race: it is
                // closed all the same, answered or not.
                let _ =
                    asked
                        .state
                        .compare_exchange(IDLE, ASKED, Ordering::AcqRel, Ordering::Acquire);
                router.clone().oneshot(req)
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(METRICS_HEADER_TIMEOUT.min(timeout))
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = tokio::time::timeout(timeout, conn) => {}
                () = this.close.notified() => {}
            }
            if let Ok(mut open) = open.lock() {
                open.retain(|c| !Arc::ptr_eq(c, &this));
            }
        });
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    app: Arc<App>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
    worker: Worker,
) {
    let router = router(app);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    while let Some((permit, stream, peer)) =
        next_connection(&listener, &connections, &mut stopped).await
    {
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let router = router.clone();
        let acceptor = acceptor.clone();
        let handshake = limits.handshake_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                Some(acceptor) => {
                    // A failed or slow handshake: nothing to answer.
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(handshake, acceptor.accept(stream)).await
                    {
                        connection(tls, peer, router, handshake, watcher).await;
                    }
                }
                None => connection(stream, peer, router, handshake, watcher).await,
            }
        });
    }
    drop(listener);
    drop(router);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "tessera-server: requests still open after {} s were cut off; their licenses, if committed, are in the ledger",
            limits.shutdown_grace.as_secs()
        );
        return;
    }
    // Every request is answered; the ledger thread has nothing left.
    let _ = tokio::task::spawn_blocking(move || worker.join()).await;
}

async fn connection<I>(
    io: I,
    peer: SocketAddr,
    router: axum::Router,
    header_timeout: Duration,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        router.clone().oneshot(req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service);
    let _ = watcher.watch(conn).await;
}
