//! A local SMTP sink for the overdue notice's tests: a real SMTP server
//! (RFC 5321: EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT; STARTTLS, RFC 3207, with a self-signed rcgen certificate
//! when started by [`Sink::start_tls`]) on a free loopback port, one
//! thread per connection, that keeps every mail it accepts. Recipients
//! can be refused (`550`) to test a recipient that fails, and one
//! recipient's answer can be held back ([`Sink::stall`]) to test what
//! another client does meanwhile.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

/// One accepted mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The message as received (headers and body, dot-unstuffed).
    pub data: String,
    /// It came over TLS (after STARTTLS).
    pub tls: bool,
}

#[derive(Default)]
struct State {
    mails: Mutex<Vec<Mail>>,
    refused: Mutex<Vec<String>>,
    /// STARTTLS offered with this server configuration.
    tls: Mutex<Option<Arc<rustls::ServerConfig>>>,
    stop: AtomicBool,
    stall: Mutex<Stall>,
    stalled: Condvar,
}

/// A recipient whose next RCPT is answered only when released.
#[derive(Default)]
struct Stall {
    address: Option<String>,
    waiting: bool,
    released: bool,
}

/// A running sink; stops when dropped.
pub struct Sink {
    addr: SocketAddr,
    state: Arc<State>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sink {
    /// Starts a sink on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State::default());
        let s = Arc::clone(&state);
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = Arc::clone(&s);
                    thread::spawn(move || {
                        let _ = session(conn, &s);
                    });
                }
            }
        });
        Self {
            addr,
            state,
            thread: Some(thread),
        }
    }

    /// Starts a sink that offers STARTTLS with a fresh self-signed
    /// certificate (rcgen) for `localhost` and `127.0.0.1`; returns it and
    /// the certificate (PEM), the CA a client must trust.
    ///
    /// # Panics
    /// When the certificate cannot be made.
    #[must_use]
    pub fn start_tls() -> (Self, String) {
        let sink = Self::start();
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("a self-signed certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        // `ring`, as the ledger's and the notice's clients use (rustls
        // deprecates it for lacking post-quantum key exchange, which a
        // test sink does not need).
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .expect("the server certificate");
        *sink.state.tls.lock().expect("lock") = Some(Arc::new(config));
        (sink, cert.cert.pem())
    }

    /// The port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Refuses mail to `address` from now on (`550` to its RCPT).
    ///
    /// # Panics
    /// On a poisoned lock.
    pub fn refuse(&self, address: &str) {
        self.state
            .refused
            .lock()
            .expect("lock")
            .push(address.to_ascii_lowercase());
    }

    /// Holds back the answer to the next RCPT for `address` until
    /// [`Sink::release`], then refuses it (`550`): a client whose mail
    /// fails after a while. Later RCPTs for it are answered at once.
    ///
    /// # Panics
    /// On a poisoned lock.
    pub fn stall(&self, address: &str) {
        *self.state.stall.lock().expect("lock") = Stall {
            address: Some(address.to_ascii_lowercase()),
            waiting: false,
            released: false,
        };
    }

    /// Whether a client waits for the answer [`Sink::stall`] holds back.
    ///
    /// # Panics
    /// On a poisoned lock.
    #[must_use]
    pub fn stalled(&self) -> bool {
        self.state.stall.lock().expect("lock").waiting
    }

    /// Answers (refuses) the RCPT [`Sink::stall`] holds back.
    ///
    /// # Panics
    /// On a poisoned lock.
    pub fn release(&self) {
        self.state.stall.lock().expect("lock").released = true;
        self.state.stalled.notify_all();
    }

    /// Every mail accepted so far.
    ///
    /// # Panics
    /// On a poisoned lock.
    #[must_use]
    pub fn mails(&self) -> Vec<Mail> {
        self.state.mails.lock().expect("lock").clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits for [`Sink::release`] if `address` is the stalled recipient
/// (once); whether it was.
fn stall(state: &State, address: &str) -> bool {
    let Ok(mut stall) = state.stall.lock() else {
        return false;
    };
    if stall.address.as_deref() != Some(address.to_ascii_lowercase().as_str()) {
        return false;
    }
    stall.address = None;
    stall.waiting = true;
    while !stall.released {
        stall = match state.stalled.wait(stall) {
            Ok(s) => s,
            Err(_) => return true,
        };
    }
    stall.waiting = false;
    true
}

/// An address from `MAIL FROM:<a>` / `RCPT TO:<a>`.
fn address(arg: &str) -> String {
    let a = arg.trim();
    let a = a.split_once('<').map_or(a, |(_, rest)| rest);
    a.split_once('>').map_or(a, |(inner, _)| inner).to_owned()
}

/// What ended a phase of a session.
enum End {
    /// QUIT, or the client went away.
    Closed,
    /// STARTTLS was accepted: the TLS handshake comes next.
    StartTls,
}

fn session(conn: TcpStream, state: &State) -> std::io::Result<()> {
    let mut plain = BufReader::new(conn);
    plain
        .get_mut()
        .write_all(b"220 sink.test ESMTP tessera test sink\r\n")?;
    let tls = state.tls.lock().ok().and_then(|t| t.clone());
    if let End::StartTls = serve(&mut plain, state, tls.is_some())? {
        let Some(config) = tls else {
            return Ok(());
        };
        let conn = rustls::ServerConnection::new(config)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut secure = BufReader::new(rustls::StreamOwned::new(conn, plain.into_inner()));
        serve(&mut secure, state, false)?;
    }
    Ok(())
}

fn serve<S: std::io::Read + Write>(
    input: &mut BufReader<S>,
    state: &State,
    offer_tls: bool,
) -> std::io::Result<End> {
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(End::Closed);
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let out = input.get_mut();
        if upper.starts_with("EHLO") {
            if offer_tls {
                out.write_all(
                    b"250-sink.test\r\n250-STARTTLS\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                )?;
            } else {
                out.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?;
            }
        } else if upper.starts_with("HELO") {
            out.write_all(b"250 sink.test\r\n")?;
        } else if upper == "STARTTLS" && offer_tls {
            out.write_all(b"220 2.0.0 ready to start TLS\r\n")?;
            out.flush()?;
            return Ok(End::StartTls);
        } else if upper.starts_with("MAIL FROM:") {
            from = Some(address(&cmd[10..]));
            to.clear();
            out.write_all(b"250 2.1.0 ok\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            let a = address(&cmd[8..]);
            if from.is_none() {
                out.write_all(b"503 5.5.1 MAIL first\r\n")?;
            } else if stall(state, &a) {
                out.write_all(b"550 5.1.1 mailbox unavailable (after a stall)\r\n")?;
            } else if state
                .refused
                .lock()
                .map(|r| r.contains(&a.to_ascii_lowercase()))
                .unwrap_or(false)
            {
                out.write_all(b"550 5.1.1 mailbox unavailable\r\n")?;
            } else {
                to.push(a);
                out.write_all(b"250 2.1.5 ok\r\n")?;
            }
        } else if upper == "DATA" {
            if to.is_empty() {
                out.write_all(b"554 5.5.1 no valid recipients\r\n")?;
                continue;
            }
            out.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
            out.flush()?;
            let mut data = String::new();
            loop {
                line.clear();
                if input.read_line(&mut line)? == 0 {
                    return Ok(End::Closed);
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            if let Ok(mut m) = state.mails.lock() {
                m.push(Mail {
                    from: from.take().unwrap_or_default(),
                    to: core::mem::take(&mut to),
                    data,
                    tls: !offer_tls && state.tls.lock().is_ok_and(|t| t.is_some()),
                });
            }
            input.get_mut().write_all(b"250 2.0.0 queued\r\n")?;
        } else if upper == "RSET" {
            from = None;
            to.clear();
            out.write_all(b"250 2.0.0 ok\r\n")?;
        } else if upper == "NOOP" {
            out.write_all(b"250 2.0.0 ok\r\n")?;
        } else if upper == "QUIT" {
            out.write_all(b"221 2.0.0 bye\r\n")?;
            out.flush()?;
            return Ok(End::Closed);
        } else {
            out.write_all(b"502 5.5.2 command not implemented\r\n")?;
        }
        input.get_mut().flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_mail_and_refuses_a_recipient() {
        let sink = Sink::start();
        sink.refuse("no@example.com");
        let c = TcpStream::connect(("127.0.0.1", sink.port())).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut w = c;
        let mut l = String::new();
        let mut say = |w: &mut TcpStream, s: &str| {
            w.write_all(s.as_bytes()).unwrap();
            l.clear();
            r.read_line(&mut l).unwrap();
            while l.as_bytes().get(3) == Some(&b'-') {
                l.clear();
                r.read_line(&mut l).unwrap();
            }
            l.get(..3).unwrap_or_default().to_owned()
        };
        let mut banner = String::new();
        BufReader::new(w.try_clone().unwrap())
            .read_line(&mut banner)
            .unwrap();
        assert!(banner.starts_with("220"));
        assert_eq!(say(&mut w, "EHLO t\r\n"), "250");
        assert_eq!(say(&mut w, "MAIL FROM:<a@example.com>\r\n"), "250");
        assert_eq!(say(&mut w, "RCPT TO:<no@example.com>\r\n"), "550");
        assert_eq!(say(&mut w, "RCPT TO:<b@example.com>\r\n"), "250");
        assert_eq!(say(&mut w, "DATA\r\n"), "354");
        assert_eq!(say(&mut w, "Subject: x\r\n\r\n..dot\r\n.\r\n"), "250");
        assert_eq!(say(&mut w, "QUIT\r\n"), "221");
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].to, vec!["b@example.com".to_owned()]);
        assert!(mails[0].data.contains("\r\n.dot\r\n"));
    }
}
