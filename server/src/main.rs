//! `tessera-server`: the online license service. A thin command line over
//! [`tessera_server::start`].
#![forbid(unsafe_code)]

use core::net::SocketAddr;
use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tessera_issuer::calendar::parse_duration;
use tessera_issuer::cli::{Global, KeyArgs};
use tessera_issuer::commands::Ctx;
use tessera_issuer::error::Error;
use tessera_server::{Clock, Limits, Rate, Settings, TlsFiles};

/// The allocator: the ledger's fold and view writers make hundreds of
/// short-lived allocations per license, where glibc's malloc spent a
/// quarter of a bulk run (bench/REPORT.md, "allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AFTER_HELP: &str = "\
Routes:
  POST /v1/renew   body: a request as the device signs it, as
                   Content-Type application/cose (binary) or text/plain
                   (armored); any other type is 415 unsupported-media-type;
                   answer: the next license (application/cose), or an
                   RFC 9457 problem+json refusal (no sooner than 25 ms
                   after the request arrived, but a 429: its time tells
                   nothing of the ledger)
  POST /v1/activate  the first license of a PBX the registry knows (a VM or
                   Cloud serial `tessera pbx add` allocated, an appliance
                   entered by its HW serial), for the order it recorded;
                   same body and answers as /v1/renew
  GET  /healthz    the process runs
  GET  /readyz     the ledger answers (503 once the ledger was found
                   modified outside tessera, until a restart: run
                   `tessera ledger verify`, restore from a backup)

Metrics: only with --metrics-listen ADDR, on that address alone, in plain
HTTP without authentication: GET /metrics (Prometheus text, the outcome
counters of every renewal and activation), one request per connection,
16 connections at most (one silent for 2 s is closed, the oldest silent
one when all are taken). Bind it to loopback or an admin network; the
devices' listener answers /metrics with 404.

The signing key's passphrase comes from --passphrase-file FILE or the
environment (TESSERA_PASSPHRASE), never from a prompt or an option.
SIGTERM or Ctrl-C: stop accepting, finish the requests in flight (each
answered only once its license is committed), then exit 0.

Exit codes: 0 stopped cleanly; 2 it did not start, a setting to fix (key,
passphrase, keyring, ledger, catalog, operator, TLS files, address, a port
in use, plain HTTP off loopback); 1 a failure after it started.

Examples:
  tessera-server --ledger /srv/tessera/ledger.db --key /srv/tessera/signing.pem \\
      --passphrase-file /run/credentials/tessera-server.service/passphrase \\
      --keyring /srv/tessera/keyring.toml --operator tessera-server \\
      --tls-cert /etc/tessera/tls/cert.pem --tls-key /etc/tessera/tls/key.pem
  tessera-server --listen 127.0.0.1:8080 ...     plain HTTP on loopback (a local trial)
  tessera-server --metrics-listen 127.0.0.1:9464 ...   metrics for a local Prometheus";

/// The tessera online license service: connected PBXs renew over HTTPS.
#[derive(Parser, Debug)]
#[command(
    name = "tessera-server",
    version,
    after_help = AFTER_HELP,
    mut_arg("passphrase_file", |a| a.help(
        "Read the key's passphrase from the first line of FILE (else TESSERA_PASSPHRASE; the service never prompts)"
    ))
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    key: KeyArgs,
    /// Address and port to listen on.
    #[arg(long, env = "TESSERA_SERVER_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// The TLS certificate chain (PEM).
    #[arg(
        long,
        env = "TESSERA_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(
        long,
        env = "TESSERA_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (only behind a proxy that
    /// terminates TLS).
    #[arg(long, conflicts_with = "tls_cert")]
    insecure_http: bool,
    /// Serve the Prometheus metrics (GET /metrics, plain HTTP, no authentication) on this address only, e.g. 127.0.0.1:9464 (loopback or an admin network); without it they are served nowhere.
    #[arg(long, env = "TESSERA_SERVER_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// How far a request's creation time may be from the server's clock.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration)]
    freshness: u32,
    /// Requests per client address (N/s, N/m or N/h, optional `,BURST`; `off`).
    #[arg(long, value_name = "RATE", default_value = "50/s,200", value_parser = Rate::parse)]
    rate_per_address: Rate,
    /// Licenses answered per PBX (one budget by its SW or HW serial, whatever key signed the requests); refusals never count (N/s, N/m or N/h, optional `,BURST`; `off`).
    #[arg(long, value_name = "RATE", default_value = "6/m,5", value_parser = Rate::parse)]
    rate_per_serial: Rate,
    /// Longest time to answer one request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    request_timeout: u32,
    /// How long a shutdown waits for requests in flight.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    shutdown_grace: u32,
    /// Most requests in one ledger commit (group commit).
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
    max_batch: u16,
}

fn duration(s: &str) -> Result<u32, String> {
    parse_duration(s)
        .filter(|d| *d > 0)
        .ok_or_else(|| format!("`{s}` is not a duration: write <n>d, <n>h, <n>m or <n>s"))
}

/// The warning for a passphrase file others may read, if it is one.
fn passphrase_file_warning(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "warning: the passphrase file {} is readable by others than its owner (mode {mode:04o}): `chmod 600` it, or give it as a systemd credential",
            tessera_verifier::text::escaped(&path.display().to_string())
        )
    })
}

fn settings(cli: Cli) -> Result<Settings, Error> {
    if let Some(warning) = cli
        .key
        .passphrase_file
        .as_deref()
        .and_then(passphrase_file_warning)
    {
        eprintln!("tessera-server: {warning}");
    }
    let fixed_now = cli.global.now.is_some();
    let ctx = Ctx::new(cli.global)?;
    let clock = if fixed_now {
        Clock::manual(ctx.now.timestamp())
    } else {
        Clock::System
    };
    let limits = Limits {
        per_address: cli.rate_per_address,
        per_serial: cli.rate_per_serial,
        request_timeout: Duration::from_secs(cli.request_timeout.into()),
        shutdown_grace: Duration::from_secs(cli.shutdown_grace.into()),
        max_batch: cli.max_batch.into(),
        ..Limits::default()
    };
    Ok(Settings {
        listen: cli.listen,
        tls: cli
            .tls_cert
            .zip(cli.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
        insecure_http: cli.insecure_http,
        metrics_listen: cli.metrics_listen,
        ctx,
        key: cli.key,
        freshness: cli.freshness,
        limits,
        clock,
    })
}

async fn run(running: tessera_server::Running) -> Result<(), Error> {
    // Watched before "listening on" is printed: a supervisor that stops the
    // service as soon as it says it listens gets a graceful shutdown, not
    // the signal's default (an exit with requests in flight).
    let watch = |kind: tokio::signal::unix::SignalKind, name: &str| {
        tokio::signal::unix::signal(kind)
            .map_err(|e| Error::Usage(format!("cannot watch for {name}: {e}")))
    };
    let mut term = watch(tokio::signal::unix::SignalKind::terminate(), "SIGTERM")?;
    let mut int = watch(tokio::signal::unix::SignalKind::interrupt(), "SIGINT")?;
    eprintln!("tessera-server: listening on {}", running.url());
    if let Some(url) = running.metrics_url() {
        eprintln!("tessera-server: metrics on {url}");
        if running
            .metrics_addr()
            .is_some_and(|a| !a.ip().is_loopback())
        {
            eprintln!(
                "tessera-server: warning: the metrics (plain HTTP, no authentication) are served beyond this machine; make sure only the admin network reaches that address"
            );
        }
    }
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    eprintln!("tessera-server: shutting down: finishing the requests in flight");
    running.shutdown();
    running.wait().await;
    eprintln!("tessera-server: stopped");
    Ok(())
}

/// Exit code for a setting to fix: anything that stops the service from
/// starting (key, passphrase, ledger, catalog, operator, TLS files,
/// address), as `--help` and docs/operations.md promise.
const EXIT_SETTINGS: u8 = 2;
/// Exit code for a failure of the running service (not a setting).
const EXIT_FAILURE: u8 = 1;

/// Why the service stopped with an error, and so its exit code.
enum Failure {
    /// It never started: a setting to fix (exit 2).
    Settings(Error),
    /// It started, then failed (exit 1).
    Running(Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = settings(cli).map_err(Failure::Settings).and_then(|s| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Failure::Running(Error::Usage(format!("cannot start the runtime: {e}")))
            })?;
        rt.block_on(async {
            let running = tessera_server::start(s).await.map_err(Failure::Settings)?;
            run(running).await.map_err(Failure::Running)
        })
    });
    let (e, code) = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Settings(e)) => (e, EXIT_SETTINGS),
        Err(Failure::Running(e)) => (e, EXIT_FAILURE),
    };
    eprintln!(
        "tessera-server: {}",
        tessera_verifier::text::escaped(&e.to_string())
    );
    ExitCode::from(code)
}
