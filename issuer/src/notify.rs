//! The vendor's overdue notice: an e-mail listing the PBXs in force that
//! have gone a number of days past their lease end without a renewal
//! (customer, SW serial, model, days since the last renewal), sent
//! through SMTP at most once per recipient and day.
//!
//! `tessera report overdue --notify` calls [`notify`] from a daily timer;
//! the online service calls the same function. The rule "one mail per
//! recipient per day" is the journal's: each notice is claimed by a
//! [`Fact::NoticeSent`] entry before the mail is handed to the SMTP
//! server, and the fold ([`crate::ledger::views::apply`]) refuses a second
//! claim for the same recipient and day, on every backend and in `ledger
//! verify`.
//!
//! # Crashes, races and failures
//!
//! - The claim is committed (durable) **before** the mail is sent. A crash
//!   between the two leaves a claim without a mail: that recipient gets no
//!   notice that day, and never two. The issue asks for at most one mail
//!   per recipient and day; a missed notice is the lesser harm, since the
//!   next day's notice lists the same PBXs again (they stay overdue).
//! - Two runs at once: a run holds the ledger's notice lock
//!   ([`NoticeLock`]) from before it reads the claims until its sends are
//!   done and its failed ones withdrawn, so a second run waits for the
//!   first to finish and then decides on claims that are settled: a
//!   recipient the first run reached is `already_sent`, one it failed is
//!   claimed and sent again. A claim never stands for a mail still on its
//!   way. The notice lock is not the write lock: issuance and the online
//!   service go on while a notice is sent.
//! - The SMTP server is reached (connection, TLS, login) before anything
//!   is claimed: an unreachable or misconfigured server records nothing.
//! - A mail the server refuses (a rejected recipient, a full mailbox, a
//!   dropped connection) has its claim withdrawn by a
//!   [`Fact::NoticeWithdrawn`] entry, so the next run sends it. Only a
//!   timeout waiting for the server's last answer keeps the claim: the
//!   server may have accepted the mail, and a second one would break the
//!   rule.

use core::time::Duration;
use std::collections::HashMap;
use std::path::Path;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};
use rustix::fs::FlockOperation;
use serde::Serialize;
use tessera_verifier::text::escaped;
use zeroize::Zeroizing;

use crate::calendar::{days_between, rfc3339_unix, DAY};
use crate::error::Error;
use crate::ledger::views::is_address;
use crate::ledger::{Fact, Ledger, SerialSummary};
use crate::order::Order;
use crate::registry::state_at;
use tessera_keys::Signer;

/// Days past its lease end without a renewal (days of grace used) after
/// which a PBX is in the notice, unless `--days` or `days` in `[notify]`
/// says otherwise: three missed daily renewals, well inside the 14 days
/// of service a HW or VM PBX keeps without its server, so the vendor has
/// time to act. The threshold counts from the lease end, not from the
/// last renewal: a PBX renews long before its lease runs out, so the days
/// since its last renewal are never below the lease's 30 days once it is
/// overdue, and a threshold on them below that would select nothing.
pub const DEFAULT_DAYS: u32 = 3;

/// Whether a PBX whose latest lease ends at `lease_end` is overdue at
/// `now` with a threshold of `min_days`: its lease ended at least
/// `min_days` whole days ago (`now >= lease_end + min_days` days), so it
/// has used that many days of grace without a renewal. With 0, every PBX
/// whose lease ran out.
#[must_use]
pub fn is_overdue(lease_end: i64, now: i64, min_days: u32) -> bool {
    now >= lease_end.saturating_add(i64::from(min_days).saturating_mul(DAY))
}
/// How long the SMTP client waits for the server at each step.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Most recipients of one notice.
pub const MAX_RECIPIENTS: usize = 100;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP: only to a server on this machine (loopback), or when
    /// the configuration says so explicitly (`insecure_plaintext`).
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed
    /// (port 587 by default).
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
}

impl TlsMode {
    /// Reads `none`, `starttls` or `tls`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "starttls" => Self::Starttls,
            "tls" => Self::Tls,
            _ => return None,
        })
    }

    /// The name as written in the configuration.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
        }
    }

    /// The port a server of this mode listens on by default.
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::Starttls => 587,
            Self::Tls => 465,
        }
    }
}

/// Where and how the notice is sent (resolved settings: see
/// [`crate::config::Config::notify`]).
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// The SMTP server's host name (or IP address).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The connection's protection.
    pub tls: TlsMode,
    /// Plain SMTP to a server that is not on this machine was asked for
    /// explicitly.
    pub insecure_plaintext: bool,
    /// A CA certificate (PEM) the server's certificate may chain to, next
    /// to the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The sender (`From:` and the envelope).
    pub from: String,
    /// The recipients: one mail each.
    pub to: Vec<String>,
    /// Login name, if the server wants one.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<Zeroizing<String>>,
    /// How long to wait for the server at each step.
    pub timeout: Duration,
}

impl MailSettings {
    /// `host:port`, as messages name the server.
    #[must_use]
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Checks what can be checked before any connection.
    ///
    /// # Errors
    /// [`Error::Usage`] saying what is wrong and how to set it.
    pub fn check(&self) -> Result<(), Error> {
        if self.host.is_empty()
            || self.host.len() > 253
            || !self
                .host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c))
        {
            return Err(Error::Usage(format!(
                "SMTP server `{}` is not a host name or IP address: set --smtp HOST or `smtp` in [notify]",
                crate::validate::shown(&self.host)
            )));
        }
        if self.port == 0 {
            return Err(Error::Usage(
                "SMTP port 0: set --smtp-port or `port` in [notify] (default 25, 587 or 465 by TLS mode)".into(),
            ));
        }
        if self.tls == TlsMode::None && !self.insecure_plaintext && !is_loopback(&self.host) {
            return Err(Error::Usage(format!(
                "plain SMTP to {} would send the notice and the login unprotected: use `tls = \"starttls\"` or `\"tls\"`, or set `insecure_plaintext = true` in [notify] for a server reached over a trusted network",
                self.server()
            )));
        }
        if !is_address(&self.from) {
            return Err(Error::Usage(format!(
                "sender `{}` is not an e-mail address: set --from ADDRESS or `from` in [notify]",
                crate::validate::shown(&self.from)
            )));
        }
        if self.to.is_empty() {
            return Err(Error::Usage(
                "no recipient: give --to ADDRESS (repeatable) or `to = [\"ops@example.com\"]` in [notify]".into(),
            ));
        }
        if self.to.len() > MAX_RECIPIENTS {
            return Err(Error::Usage(format!(
                "{} recipients; a notice goes to at most {MAX_RECIPIENTS} (use a mailing list)",
                self.to.len()
            )));
        }
        if let Some(bad) = self.to.iter().find(|t| !is_address(t)) {
            return Err(Error::Usage(format!(
                "recipient `{}` is not an e-mail address (local@domain, no spaces, one address per --to)",
                crate::validate::shown(bad)
            )));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(Error::Usage(
                "an SMTP login needs both a user (--smtp-user or `username`) and a password (TESSERA_SMTP_PASSWORD or `password_file`)".into(),
            ));
        }
        if self.username.is_some() && self.tls == TlsMode::None && !is_loopback(&self.host) {
            return Err(Error::Usage(format!(
                "a login over plain SMTP to {} would send the password unprotected: use STARTTLS or TLS",
                self.server()
            )));
        }
        Ok(())
    }

    fn transport(&self) -> Result<SmtpTransport, Error> {
        let tls = |s: &Self| -> Result<TlsParameters, Error> {
            let mut b = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                let ca = Certificate::from_pem(pem).map_err(|e| Error::Usage(format!(
                    "the SMTP CA certificate is not a PEM certificate ({e}): name a PEM file with --smtp-ca or `ca` in [notify]"
                )))?;
                b = b.add_root_certificate(ca);
            }
            b.build_rustls().map_err(|e| self.error(&e, false))
        };
        let mode = match self.tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls => Tls::Required(tls(self)?),
            TlsMode::Tls => Tls::Wrapper(tls(self)?),
        };
        let mut b = SmtpTransport::builder_dangerous(self.host.as_str())
            .port(self.port)
            .tls(mode)
            .timeout(Some(self.timeout));
        if let (Some(user), Some(pass)) = (&self.username, &self.password) {
            b = b.credentials(Credentials::new(user.clone(), pass.as_str().to_owned()));
        }
        Ok(b.build())
    }

    /// What a refused mail's error means (one recipient's; the run goes on).
    fn refusal(&self, e: &lettre::transport::smtp::Error) -> String {
        match self.error(e, true) {
            Error::Mail { server, reason } => format!("SMTP server {server}: {reason}"),
            other => other.to_string(),
        }
    }

    /// What an SMTP error means, naming the server and what to do.
    fn error(&self, e: &lettre::transport::smtp::Error, sending: bool) -> Error {
        let what = if e.is_timeout() {
            format!(
                "no answer within {} s: check that the server is up and reachable from here",
                self.timeout.as_secs()
            )
        } else if e.is_tls() {
            "the TLS handshake failed: check `tls` (starttls or tls), the port, and that the server's certificate is valid for this name (or its CA is given with `ca`)".into()
        } else if e.is_permanent() {
            format!("the server refused ({e}): check the sender, the recipients and the login")
        } else if e.is_transient() {
            format!("the server answered with a temporary failure ({e}): run again later")
        } else if sending {
            format!("{e}")
        } else {
            format!("{e}: check the host, the port and the TLS mode, and that the server is up")
        };
        Error::Mail {
            server: self.server(),
            reason: what,
        }
    }
}

/// Whether a host names this machine.
#[must_use]
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<core::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One PBX of the notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OverduePbx {
    /// SW serial.
    pub serial: String,
    /// Customer.
    pub customer: String,
    /// The PBX's name.
    pub pbx_name: String,
    /// Model (the registry's, else the latest order's, else `-`).
    pub model: String,
    /// Whole days since the last successful renewal.
    pub days_since_renewal: i64,
    /// The last renewal (the latest license's issue time, Unix seconds).
    pub last_renewal: i64,
    /// The latest license's lease end (Unix seconds).
    pub lease_end: i64,
}

/// The model of a serial: the registry's, else the latest order's.
#[must_use]
pub fn model_of(models: &HashMap<String, String>, s: &SerialSummary) -> String {
    models
        .get(&s.serial)
        .filter(|m| !m.is_empty())
        .cloned()
        .or_else(|| {
            Order::parse("ledger", &s.latest.row.order_json, true)
                .ok()
                .and_then(|o| o.model)
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// The PBXs in force at `now` whose lease ended at least `min_days` whole
/// days ago without a renewal ([`is_overdue`]), most overdue first (the
/// longest since the last renewal).
///
/// # Errors
/// [`Error::Ledger`].
pub fn overdue(ledger: &Ledger, now: i64, min_days: u32) -> Result<Vec<OverduePbx>, Error> {
    let q = ledger.queries();
    let models: HashMap<String, String> =
        q.pbxs()?.into_iter().map(|p| (p.serial, p.model)).collect();
    let mut out = Vec::new();
    for s in q.serials()? {
        let r = &s.latest.row;
        if !is_overdue(r.lease_end, now, min_days)
            || !state_at(q.pending_schedule(&s.serial)?, true, now).in_force()
        {
            continue;
        }
        let days = days_between(r.issued_at, now);
        out.push(OverduePbx {
            serial: s.serial.clone(),
            customer: r.customer.clone(),
            pbx_name: r.pbx_name.clone(),
            model: model_of(&models, &s),
            days_since_renewal: days,
            last_renewal: r.issued_at,
            lease_end: r.lease_end,
        });
    }
    out.sort_by(|a, b| {
        b.days_since_renewal
            .cmp(&a.days_since_renewal)
            .then_with(|| a.serial.cmp(&b.serial))
    });
    Ok(out)
}

/// The day a notice at `now` belongs to (UTC, `YYYY-MM-DD`).
#[must_use]
pub fn day_of(now: i64) -> String {
    rfc3339_unix(now).get(..10).unwrap_or_default().to_owned()
}

/// The notice's subject.
#[must_use]
pub fn subject(day: &str, count: usize) -> String {
    format!("tessera: {count} PBX(s) overdue for renewal on {day}")
}

/// The notice's text: one line per PBX, customer and PBX names escaped
/// (they come from orders and partners).
#[must_use]
pub fn body(day: &str, min_days: u32, rows: &[OverduePbx]) -> String {
    let mut text = format!(
        "PBXs in force {min_days} day(s) or more past their lease end without a renewal, as of {day} (UTC).\n\n{:>5}  {:<16} {:<14} {:<20}  {}\n",
        "DAYS", "SERIAL", "MODEL", "LAST RENEWAL", "CUSTOMER / PBX"
    );
    for r in rows {
        text.push_str(&format!(
            "{:>5}  {:<16} {:<14} {:<20}  {} / {}\n",
            r.days_since_renewal,
            r.serial,
            escaped(&r.model).to_string(),
            rfc3339_unix(r.last_renewal),
            escaped(&r.customer),
            escaped(&r.pbx_name)
        ));
    }
    text.push_str(&format!(
        "\n{} PBX(s). DAYS: whole days since the last successful renewal.\n\
         Sent by `tessera report overdue --notify`; at most one notice per recipient per day.\n",
        rows.len()
    ));
    text
}

/// What happened to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Delivery {
    /// The server accepted the mail.
    Sent {
        /// The recipient.
        recipient: String,
    },
    /// The notice of this day went to this recipient already (an earlier
    /// run, or one running at the same time).
    AlreadySent {
        /// The recipient.
        recipient: String,
    },
    /// The server refused the mail; the claim was withdrawn, so the next
    /// run tries again.
    Failed {
        /// The recipient.
        recipient: String,
        /// What the server said, and what to do.
        error: String,
    },
    /// No answer after the mail was handed over: it may have arrived. The
    /// claim stays (no second mail today).
    Unconfirmed {
        /// The recipient.
        recipient: String,
        /// What happened.
        error: String,
    },
}

impl Delivery {
    /// The recipient.
    #[must_use]
    pub fn recipient(&self) -> &str {
        match self {
            Self::Sent { recipient }
            | Self::AlreadySent { recipient }
            | Self::Failed { recipient, .. }
            | Self::Unconfirmed { recipient, .. } => recipient,
        }
    }

    /// Whether this recipient did not get the notice because of an error.
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Unconfirmed { .. })
    }
}

/// What one run did.
#[derive(Clone, Debug, Serialize)]
pub struct NoticeReport {
    /// The day (UTC, `YYYY-MM-DD`).
    pub day: String,
    /// The threshold in days.
    pub min_days: u32,
    /// The overdue PBXs (empty: nothing was sent, no server contacted).
    pub overdue: Vec<OverduePbx>,
    /// One line per recipient (empty when nothing is overdue).
    pub deliveries: Vec<Delivery>,
}

/// Sends the day's overdue notice to every recipient that has not had it
/// yet: the rules of the module's documentation.
///
/// `ledger` is open for writing; `signer` signs the checkpoint of the
/// entries recorded.
///
/// # Errors
/// [`Error::Usage`] for unusable settings, [`Error::Mail`] when the SMTP
/// server cannot be reached or refuses the login (nothing recorded),
/// [`Error::Ledger`].
pub fn notify(
    ledger: &mut Ledger,
    signer: &dyn Signer,
    operator: &str,
    now: i64,
    min_days: u32,
    mail: &MailSettings,
) -> Result<NoticeReport, Error> {
    mail.check()?;
    // Held until the end: the claims this run reads are settled, and a
    // run after it reads this one's settled.
    let _sending = NoticeLock::take(ledger.path())?;
    let day = day_of(now);
    let rows = overdue(ledger, now, min_days)?;
    let mut report = NoticeReport {
        day: day.clone(),
        min_days,
        overdue: rows,
        deliveries: Vec::new(),
    };
    if report.overdue.is_empty() {
        return Ok(report);
    }
    // One recipient however its address is cased: mail systems treat the
    // domain (RFC 5321) and, in practice, the local part without case,
    // so `Ops@X.example` and `ops@x.example` get one notice a day.
    let recipients: Vec<String> = mail.to.iter().map(|t| t.to_lowercase()).collect();
    let mut due = Vec::new();
    for to in &recipients {
        if due.contains(to) || report.deliveries.iter().any(|d| d.recipient() == to) {
            continue;
        }
        if ledger.queries().notice_in_effect(to, &day)? {
            report.deliveries.push(Delivery::AlreadySent {
                recipient: to.clone(),
            });
        } else {
            due.push(to.clone());
        }
    }
    if due.is_empty() {
        return Ok(report);
    }
    let transport = mail.transport()?;
    transport
        .test_connection()
        .map_err(|e| mail.error(&e, false))?;
    let from: Mailbox = mail.from.parse().map_err(|e| {
        Error::Usage(format!(
            "sender `{}` is not a mailbox ({e})",
            crate::validate::shown(&mail.from)
        ))
    })?;
    let serials: Vec<String> = report.overdue.iter().map(|r| r.serial.clone()).collect();
    // Claim, durably, under the write lock: a run at the same time finds
    // these claims and skips.
    let mut claimed = Vec::new();
    {
        let mut w = ledger.writer(signer, operator)?;
        for to in due {
            if w.notice_in_effect(&to, &day)? {
                report
                    .deliveries
                    .push(Delivery::AlreadySent { recipient: to });
                continue;
            }
            w.push(
                now,
                Fact::NoticeSent {
                    recipient: to.clone(),
                    day: day.clone(),
                    serials: serials.clone(),
                },
            )?;
            claimed.push(to);
        }
        w.commit()?;
    }
    let text = body(&day, min_days, &report.overdue);
    let mut withdraw = Vec::new();
    for to in claimed {
        let outcome = to
            .parse::<Mailbox>()
            .map_err(|e| e.to_string())
            .and_then(|rcpt| {
                Message::builder()
                    .from(from.clone())
                    .to(rcpt)
                    .subject(subject(&day, report.overdue.len()))
                    .header(ContentType::TEXT_PLAIN)
                    .body(text.clone())
                    .map_err(|e| e.to_string())
            });
        let delivery = match outcome {
            Err(e) => {
                withdraw.push((to.clone(), format!("the mail could not be built: {e}")));
                Delivery::Failed {
                    recipient: to,
                    error: format!("the mail could not be built: {e}"),
                }
            }
            Ok(message) => match transport.send(&message) {
                Ok(_) => Delivery::Sent { recipient: to },
                Err(e) if e.is_timeout() => Delivery::Unconfirmed {
                    recipient: to,
                    error: mail.refusal(&e),
                },
                Err(e) => {
                    let error = mail.refusal(&e);
                    withdraw.push((to.clone(), error.clone()));
                    Delivery::Failed {
                        recipient: to,
                        error,
                    }
                }
            },
        };
        report.deliveries.push(delivery);
    }
    if !withdraw.is_empty() {
        let mut w = ledger.writer(signer, operator)?;
        for (to, reason) in withdraw {
            w.push(
                now,
                Fact::NoticeWithdrawn {
                    recipient: to,
                    day: day.clone(),
                    reason: reason
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(1000)
                        .collect(),
                },
            )?;
        }
        w.commit()?;
    }
    Ok(report)
}

/// The lock one overdue notice run holds from reading the claims to
/// withdrawing its failed ones: on a SQLite ledger an exclusive `flock`
/// of `LEDGER-notice.lock` beside the file (never the ledger file itself:
/// closing another descriptor of it would drop SQLite's own locks), on
/// PostgreSQL a session's advisory lock
/// ([`crate::ledger::postgres::NOTICE_LOCK`]). A process that ends,
/// however it ends, releases it.
#[derive(Debug)]
pub enum NoticeLock {
    /// The lock file, locked.
    File(std::fs::File),
    /// The session that holds the advisory lock.
    Postgres(Box<crate::ledger::postgres::PgBackend>),
}

impl NoticeLock {
    /// Takes the notice lock of the ledger at `path`, waiting (with a note
    /// on standard error) while another run holds it: that run is bounded
    /// by its SMTP timeouts, and a run that dies releases it.
    ///
    /// # Errors
    /// [`Error::Io`] when the lock file cannot be opened or locked,
    /// [`Error::Ledger`] when the database cannot be reached.
    pub fn take(path: &Path) -> Result<Self, Error> {
        let on_wait = |p: &Path| {
            crate::output::note(&format!(
                "waiting for another `tessera report overdue --notify` on {} to finish sending: its results decide who still needs today's notice ...",
                p.display()
            ));
        };
        if crate::ledger::postgres::is_url(path) {
            return Ok(Self::Postgres(Box::new(
                crate::ledger::postgres::PgBackend::hold_lock(
                    path,
                    crate::ledger::postgres::NOTICE_LOCK,
                    &on_wait,
                )?,
            )));
        }
        let mut name = path.as_os_str().to_owned();
        name.push("-notice.lock");
        let lock = std::path::PathBuf::from(name);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        // Never through a link planted in its place.
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0),
        );
        let file = options.open(&lock).map_err(Error::io(&lock))?;
        if let Err(e) = rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e != rustix::io::Errno::WOULDBLOCK {
                return Err(Error::io(&lock)(e.into()));
            }
            on_wait(path);
            loop {
                match rustix::fs::flock(&file, FlockOperation::LockExclusive) {
                    Ok(()) => break,
                    Err(e) if e == rustix::io::Errno::INTR => {}
                    Err(e) => return Err(Error::io(&lock)(e.into())),
                }
            }
        }
        Ok(Self::File(file))
    }
}

/// Reads the SMTP password from the first line of a file (capped, a
/// regular file).
///
/// # Errors
/// [`Error::Io`].
pub fn read_password(path: &Path) -> Result<Zeroizing<String>, Error> {
    let text = Zeroizing::new(
        tessera_keys::storage::read_regular_text(path, 4096).map_err(Error::io(path))?,
    );
    let line = text.lines().next().unwrap_or_default();
    Ok(Zeroizing::new(line.trim_end_matches('\r').to_owned()))
}

#[cfg(test)]
mod tests;
