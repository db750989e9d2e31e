//! Group commit: one thread owns the ledger and the signing key, takes the
//! requests that are waiting (up to [`crate::Limits::max_batch`]), answers
//! each inside its own savepoint of one ledger transaction, commits once,
//! and only then hands every answer back. So no license leaves before it
//! is durable, and the ledger is synced once per batch, not per renewal.
//!
//! A request the rules refuse is rolled back to its savepoint and does not
//! spoil the batch; a commit that fails fails the whole batch (nothing of
//! it was recorded, nothing of it is answered with a license).
//!
//! The renewal budget of a PBX (`--rate-per-serial`) is spent here, and
//! only here: a request the rules answered takes a token from the bucket
//! of the SW serial its license was issued for, inside its savepoint, one
//! request after the other. So only an answered renewal or activation of
//! the PBX's own device spends the budget (a refusal, which anyone can
//! provoke, never does), requests in flight at once never take more than
//! the bucket holds, and an appliance asking by its HW serial spends the
//! same bucket as by its SW serial. A request that finds the bucket empty
//! is rolled back to its savepoint; a token taken for a batch whose commit
//! fails is given back.
//!
//! The bucket is also looked at, and only here, before a renewal is
//! signed: once the rules found the request signed by the PBX's own
//! device key and would answer it ([`issuance::renew_online_gated`]). So
//! a PBX's own device that asks too often costs no signature, and a
//! request signed by any other key gets the rules' answer (byte for byte
//! the same whatever the budget): it cannot tell a PBX that renewed lately
//! from one that did not.

use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tessera_issuer::error::Error;
use tessera_issuer::issuance::{self, Issued, Issuer};
use tessera_issuer::ledger::{Ledger, LedgerError};
use tessera_verifier::activation::ActivationCode;
use tessera_verifier::encode::RequestData;
use tokio::sync::{mpsc, oneshot};

use crate::limits::RateLimiter;
use crate::metrics::Metrics;

/// What a worker answers for one renewal or activation.
pub(crate) type Answer = Result<Issued, Refusal>;

/// Why a renewal or activation got no license.
#[derive(Clone, Debug)]
pub(crate) enum Refusal {
    /// The issuer's rules or the ledger refused it.
    Rules(Arc<Error>),
    /// The rules would answer it, but the renewal budget of the PBX
    /// (`serial`, its SW serial) is spent: a token comes in `wait` s.
    Budget { serial: String, wait: u64 },
}

impl From<LedgerError> for Refusal {
    fn from(e: LedgerError) -> Self {
        Self::Rules(Arc::new(e.into()))
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Self::Rules(Arc::new(e))
    }
}

/// Set once the ledger is found modified outside tessera (or otherwise
/// not holding what tessera wrote, [`LedgerError::is_integrity`]): from
/// then on the ledger thread answers every device job with that error
/// without touching the ledger, and `/readyz` says not ready, until the
/// service is restarted.
///
/// [`LedgerError::is_integrity`]: tessera_issuer::ledger::LedgerError::is_integrity
pub(crate) type Halt = Arc<OnceLock<Arc<Error>>>;

/// Whether `e` means the ledger does not hold what tessera wrote.
pub(crate) fn is_modified(e: &Error) -> bool {
    matches!(e, Error::Ledger(l) if l.is_integrity())
}

/// The rule of the issuer library a device job runs.
#[derive(Debug)]
enum Rule {
    /// [`issuance::renew_online`].
    Renew,
    /// [`issuance::activate_online`] with the request's code.
    Activate(Option<ActivationCode>),
}

impl Rule {
    /// Runs the rule. A renewal whose PBX has no token left in
    /// `per_serial` is refused once the rules found the request to be the
    /// PBX's own device's, before anything is signed
    /// ([`issuance::renew_online_gated`]): a request signed by any other
    /// key gets the rules' answer whatever the budget, and the PBX's own
    /// chatty device costs no signature. (The token is taken after the
    /// rule, for an answered request only.)
    fn run(
        &self,
        w: &mut tessera_issuer::ledger::Writer<'_>,
        issuer: &Issuer<'_>,
        request: &RequestData,
        now: DateTime<Utc>,
        per_serial: &RateLimiter<String>,
    ) -> Result<Issued, Refusal> {
        match self {
            Self::Renew => issuance::renew_online_gated(w, issuer, request, now, |serial| {
                per_serial
                    .peek(&serial.to_owned(), Instant::now())
                    .map_err(|wait| Refusal::Budget {
                        serial: serial.to_owned(),
                        wait,
                    })
            }),
            Self::Activate(code) => Ok(issuance::activate_online(
                w,
                issuer,
                request,
                now,
                code.as_ref(),
            )?),
        }
    }
}

/// A job for the ledger thread.
#[derive(Debug)]
pub(crate) enum Job {
    /// Renew for this (checked) request.
    Renew {
        request: Box<RequestData>,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Answer>,
    },
    /// A first activation for this (checked) request, with the activation
    /// code its `Tessera-Activation-Code` header brought (if any).
    Activate {
        request: Box<RequestData>,
        now: DateTime<Utc>,
        code: Option<ActivationCode>,
        reply: oneshot::Sender<Answer>,
    },
    /// Is the ledger reachable? (`/readyz`)
    Ready {
        reply: oneshot::Sender<Result<u64, String>>,
    },
}

/// What the ledger thread needs, built inside it (a ledger backend need
/// not be `Send`).
pub(crate) struct Parts {
    pub ledger: Ledger,
    pub signer: tessera_signer::AnySigner,
    pub catalog: tessera_issuer::catalog::Catalog,
    pub operator: String,
}

/// The handle of the ledger thread: it ends once every sender of its jobs
/// is dropped and the jobs it has are answered ([`Worker::join`]).
#[derive(Debug)]
pub(crate) struct Worker {
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the ledger thread; `open` builds its parts there. Returns
    /// once they are built (or failed to build), with the sender of its
    /// jobs.
    pub(crate) fn start(
        open: Box<dyn FnOnce() -> Result<Parts, Error> + Send>,
        max_batch: usize,
        metrics: Arc<Metrics>,
        halt: Halt,
        per_serial: Arc<RateLimiter<String>>,
    ) -> Result<(Self, mpsc::Sender<Job>), Error> {
        let (tx, rx) = mpsc::channel::<Job>(max_batch.saturating_mul(4).max(16));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tessera-ledger".into())
            .spawn(move || match open() {
                Ok(parts) => {
                    let _ = ready_tx.send(Ok(()));
                    let shared = Shared {
                        metrics: &metrics,
                        halt: &halt,
                        per_serial: &per_serial,
                    };
                    run(parts, rx, max_batch.max(1), &shared);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| Error::Usage(format!("cannot start the ledger thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((
                Self {
                    thread: Some(thread),
                },
                tx,
            )),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Usage(
                    "the ledger thread ended while starting".into(),
                ))
            }
        }
    }

    /// Waits for the ledger thread to finish the jobs it has (every sender
    /// must be dropped first).
    pub(crate) fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the ledger thread shares with the handlers.
struct Shared<'a> {
    metrics: &'a Metrics,
    halt: &'a Halt,
    /// The renewal budget of each PBX, by SW serial.
    per_serial: &'a RateLimiter<String>,
}

fn run(mut parts: Parts, mut rx: mpsc::Receiver<Job>, max_batch: usize, shared: &Shared<'_>) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        answer(&mut parts, &mut batch, shared);
    }
}

/// Halts the service on `e` (the first time: logged once, at error
/// level).
fn halt_on(halt: &Halt, e: &Arc<Error>) {
    if halt.set(Arc::clone(e)).is_ok() {
        crate::log_error(&format!(
            "{}; until it is restarted the service answers every renewal and activation with 503 `ledger-modified` and /readyz says not ready",
            tessera_verifier::text::escaped(&e.to_string())
        ));
    }
}

fn answer(parts: &mut Parts, batch: &mut Vec<Job>, shared: &Shared<'_>) {
    let Shared {
        metrics,
        halt,
        per_serial,
    } = *shared;
    let mut renewals = Vec::new();
    for job in batch.drain(..) {
        match job {
            Job::Ready { reply } if halt.get().is_some() => {
                let _ = reply.send(Err("the ledger was modified outside tessera".into()));
            }
            Job::Ready { reply } => {
                let head = parts
                    .ledger
                    .queries()
                    .head()
                    .map(|h| h.map_or(0, |(n, _)| n))
                    .map_err(|e| e.to_string());
                let _ = reply.send(head);
            }
            Job::Renew {
                request,
                now,
                reply,
            } => renewals.push((request, now, reply, Rule::Renew)),
            Job::Activate {
                request,
                now,
                code,
                reply,
            } => renewals.push((request, now, reply, Rule::Activate(code))),
        }
    }
    if renewals.is_empty() {
        return;
    }
    if let Some(e) = halt.get() {
        for (_, _, reply, _) in renewals {
            let _ = reply.send(Err(Refusal::Rules(Arc::clone(e))));
        }
        return;
    }
    let started = Instant::now();
    let issuer = Issuer {
        catalog: &parts.catalog,
        signer: &parts.signer,
        operator: &parts.operator,
    };
    let mut answers: Vec<Answer> = Vec::with_capacity(renewals.len());
    // The SW serials whose buckets gave a token to this batch.
    let mut taken: Vec<String> = Vec::new();
    let committed = (|| -> Result<(), Error> {
        let mut w = parts.ledger.writer(&parts.signer, &parts.operator)?;
        for (request, now, _, rule) in &renewals {
            let a = w.savepoint(|w| {
                let issued = rule.run(w, &issuer, request, *now, per_serial)?;
                let serial = &issued.record.row.serial;
                per_serial
                    .check(serial, Instant::now())
                    .map_err(|wait| Refusal::Budget {
                        serial: serial.clone(),
                        wait,
                    })?;
                Ok(issued)
            });
            if let Ok(issued) = &a {
                taken.push(issued.record.row.serial.clone());
            }
            answers.push(a);
        }
        w.commit()?;
        Ok(())
    })();
    if committed.is_err() {
        // Nothing of the batch is answered with a license: nothing of it
        // spends a budget.
        let now = Instant::now();
        for serial in &taken {
            per_serial.give_back(serial, now);
        }
    }
    metrics.commit(started.elapsed(), renewals.len());
    match committed {
        Ok(()) => {
            // A rule that found the ledger modified (a fold refused inside
            // a savepoint) halts the service as a writer that did.
            if let Some(Err(Refusal::Rules(e))) = answers
                .iter()
                .find(|a| matches!(a, Err(Refusal::Rules(e)) if is_modified(e)))
            {
                halt_on(halt, e);
            }
            for ((_, _, reply, _), a) in renewals.into_iter().zip(answers) {
                let _ = reply.send(a);
            }
        }
        Err(e) if is_modified(&e) => {
            let e = Arc::new(e);
            halt_on(halt, &e);
            for (_, _, reply, _) in renewals {
                let _ = reply.send(Err(Refusal::Rules(Arc::clone(&e))));
            }
        }
        Err(e) => {
            eprintln!(
                "tessera-server: a ledger commit of {} request(s) failed, nothing of it was recorded: {e}",
                renewals.len()
            );
            let e = Arc::new(e);
            for (_, _, reply, _) in renewals {
                let _ = reply.send(Err(Refusal::Rules(Arc::clone(&e))));
            }
        }
    }
}
