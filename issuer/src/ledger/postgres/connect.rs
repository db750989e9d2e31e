//! How a PostgreSQL ledger is named and reached: a `postgres://` URL in
//! place of a ledger file, libpq's conventions for what the URL leaves
//! out, and never a password on the command line.
//!
//! - The URL: `postgres://USER@HOST:PORT/DATABASE` (or `postgresql://`);
//!   a unix socket folder is the host, percent-encoded
//!   (`postgres://tessera@%2Frun%2Fpostgresql/ledger`) or as `?host=/run/postgresql`.
//! - What it leaves out comes from libpq's variables: `PGHOST`, `PGPORT`,
//!   `PGUSER` (else the login name), `PGDATABASE` (else the user).
//! - The password: never in the URL (it would show in `ps`, shell history
//!   and `tessera config`); from `PGPASSWORD`, else the password file
//!   named by `?passfile=FILE`, `PGPASSFILE` or `~/.pgpass` (libpq's
//!   format `host:port:database:user:password`, `*` matching anything;
//!   the file must not be readable by group or others).
//! - TLS (rustls): `sslmode=require`, `verify-ca` or `verify-full`
//!   (or `PGSSLMODE`) connect with TLS and always verify the server's
//!   certificate chain and name against the CA certificates in
//!   `sslrootcert=FILE` (or `PGSSLROOTCERT`, else
//!   `~/.postgresql/root.crt`, libpq's default): stricter than libpq, whose
//!   `require` does not verify, because a ledger's connection must not be
//!   open to a man in the middle. `disable` and `prefer` (libpq's default)
//!   connect in plain text: use them over a unix socket or the loopback
//!   interface only.

use core::time::Duration;
use std::path::{Path, PathBuf};

use postgres::config::{Host, SslMode};

use crate::ledger::LedgerError;

/// Whether a ledger location is a PostgreSQL URL rather than a file.
#[must_use]
pub fn is_url(location: &Path) -> bool {
    location.to_str().is_some_and(|s| {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    })
}

/// The URL without a password, for messages.
#[must_use]
pub fn redacted(url: &Path) -> PathBuf {
    let Some(text) = url.to_str() else {
        return url.to_owned();
    };
    let Some((scheme, rest)) = text.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            PathBuf::from(format!("{scheme}://{user}:***@{host}{tail}"))
        }
        _ => url.to_owned(),
    }
}

fn bad_url(url: &Path, what: &str) -> LedgerError {
    LedgerError::Io {
        path: redacted(url),
        what: format!("this PostgreSQL URL cannot be used: {what}"),
    }
}

/// What the URL's query says that the `postgres` crate's parser does not
/// take (libpq's `passfile`, `sslrootcert`, and `sslmode` itself, whose
/// `verify-ca` and `verify-full` it does not know).
#[derive(Default)]
struct Extra {
    passfile: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Splits [`Extra`] off the query, returning the rest of the URL.
fn split_query(url: &str) -> (String, Extra) {
    let mut extra = Extra::default();
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), extra);
    };
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("passfile", v)) => extra.passfile = Some(percent_decode(v)),
            Some(("sslmode", v)) => extra.sslmode = Some(percent_decode(v)),
            Some(("sslrootcert", v)) => extra.sslrootcert = Some(percent_decode(v)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, extra)
}

/// How the connection is protected.
#[derive(Debug)]
pub enum Tls {
    /// Plain text (`sslmode=disable` or `prefer`).
    Plain,
    /// TLS, the server verified against these CA certificates.
    Verified(Box<rustls::ClientConfig>),
}

/// The crypto provider: `ring`, which builds with a C compiler alone (as
/// the license server's). rustls deprecates it for lacking post-quantum key
/// exchange; the ledger's rows are signed end to end, TLS keeps them
/// private on the wire with the classic X25519 exchange until the provider
/// is switched for `aws-lc-rs`.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The TLS settings `sslmode` and `sslrootcert` ask for.
fn tls(url: &Path, extra: &Extra, env: Env<'_>) -> Result<Tls, LedgerError> {
    let mode = extra.sslmode.clone().or_else(|| env("PGSSLMODE"));
    match mode.as_deref() {
        None | Some("disable" | "prefer" | "allow") => return Ok(Tls::Plain),
        Some("require" | "verify-ca" | "verify-full") => {}
        Some(other) => {
            return Err(bad_url(
                url,
                &format!(
                    "sslmode={} is not one of disable, prefer, require, verify-ca, verify-full",
                    crate::validate::shown(other)
                ),
            ))
        }
    }
    let file = extra
        .sslrootcert
        .clone()
        .or_else(|| env("PGSSLROOTCERT"))
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt")))
        .filter(|f| f.is_file())
        .ok_or_else(|| {
            bad_url(
                url,
                "TLS needs the CA certificate that signed the server's: name its PEM file with ?sslrootcert=FILE (or PGSSLROOTCERT, or put it in ~/.postgresql/root.crt)",
            )
        })?;
    let unreadable = |why: String| {
        bad_url(
            url,
            &format!(
                "the CA certificates in {} cannot be used: {why}",
                file.display()
            ),
        )
    };
    let certs = {
        use rustls_pki_types::pem::PemObject as _;
        rustls_pki_types::CertificateDer::pem_file_iter(&file)
            .map_err(|e| unreadable(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unreadable(e.to_string()))?
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| unreadable(format!("a certificate is not valid ({e})")))?;
    }
    if roots.is_empty() {
        return Err(unreadable("it holds no PEM certificate".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Tls::Verified(Box::new(config)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| core::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes.get(i), hex) {
            (Some(b'%'), Some(v)) => {
                out.push(v);
                i += 3;
            }
            (Some(b), _) => {
                out.push(*b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where libpq's variables come from (the process environment; tests
/// pass their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
#[must_use]
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The connection settings a URL names, completed as libpq would and with
/// the password from the environment or a password file.
///
/// # Errors
/// [`LedgerError::Io`] saying what is wrong with the URL or the password
/// file.
pub fn config(url: &Path, env: Env<'_>) -> Result<(postgres::Config, Tls), LedgerError> {
    let text = url
        .to_str()
        .ok_or_else(|| bad_url(url, "it is not UTF-8"))?;
    let (rest, extra) = split_query(text);
    let tls = tls(url, &extra, env)?;
    let passfile = extra.passfile;
    let mut config: postgres::Config = rest.parse().map_err(|_| {
        bad_url(
            url,
            "it is not of the form postgres://USER@HOST:PORT/DATABASE (a unix socket folder as the host percent-encoded, or as ?host=/run/postgresql)",
        )
    })?;
    if config.get_password().is_some() {
        return Err(bad_url(
            url,
            "it holds a password, which would show in process lists, shell history and `tessera config`; remove it and give it in PGPASSWORD or a password file (PGPASSFILE, ~/.pgpass, or ?passfile=FILE in the URL)",
        ));
    }
    config.ssl_mode(match tls {
        Tls::Plain => SslMode::Disable,
        Tls::Verified(_) => SslMode::Require,
    });
    if config.get_hosts().is_empty() {
        let host = env("PGHOST").ok_or_else(|| {
            bad_url(
                url,
                "it names no host: write postgres://USER@HOST/DATABASE (or set PGHOST)",
            )
        })?;
        for h in host.split(',') {
            if h.starts_with('/') {
                config.host_path(h);
            } else {
                config.host(h);
            }
        }
    }
    if config.get_ports().is_empty() {
        if let Some(p) = env("PGPORT") {
            let port = p
                .parse::<u16>()
                .map_err(|_| bad_url(url, "PGPORT is not a port number"))?;
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"))
            .ok_or_else(|| {
                bad_url(
                    url,
                    "it names no user: write postgres://USER@HOST/DATABASE (or set PGUSER)",
                )
            })?;
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        if let Some(db) = env("PGDATABASE") {
            config.dbname(&db);
        }
    }
    if let Some(password) = env("PGPASSWORD") {
        config.password(password);
    } else {
        let file = passfile
            .map(PathBuf::from)
            .or_else(|| env("PGPASSFILE").map(PathBuf::from))
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
        if let Some(file) = file {
            if let Some(password) = from_passfile(url, &file, &config)? {
                config.password(password);
            }
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("tessera");
    }
    Ok((config, tls))
}

/// The fields of one password file line, with libpq's `\:` and `\\`.
fn passfile_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if let Some(f) = fields.last_mut() {
                        f.push(next);
                    }
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// The password a libpq password file holds for these settings (the first
/// matching line), `None` without a file or a matching line.
fn from_passfile(
    url: &Path,
    file: &Path,
    config: &postgres::Config,
) -> Result<Option<String>, LedgerError> {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::metadata(file) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(LedgerError::Io {
            path: url.to_owned(),
            what: format!(
                "the password file {} can be read by others: `chmod 0600 {}` (as libpq requires)",
                file.display(),
                file.display()
            ),
        });
    }
    let text = std::fs::read_to_string(file).map_err(|e| LedgerError::Io {
        path: url.to_owned(),
        what: format!("the password file {} cannot be read ({e})", file.display()),
    })?;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            // libpq matches a socket connection with `localhost`.
            Host::Unix(_) => "localhost".to_owned(),
        })
        .collect();
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f = passfile_fields(line);
        let [h, p, d, u, password] = f.as_slice() else {
            continue;
        };
        if hosts.iter().any(|host| matches(h, host))
            && matches(p, &port)
            && matches(d, db)
            && matches(u, user)
        {
            return Ok(Some(password.clone()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn urls_are_recognised() {
        for yes in ["postgres://a@b/c", "postgresql://a@b/c", "POSTGRES://a@b/c"] {
            assert!(is_url(Path::new(yes)), "{yes}");
        }
        for no in ["ledger.db", "/srv/postgres://x", "postgres:/x", ""] {
            assert!(!is_url(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn passwords_in_the_url_and_tls_demands_are_refused() {
        let env = env_of(&[]);
        for (url, says) in [
            ("postgres://u:secret@h/db", "holds a password"),
            ("postgres://u@h/db?sslmode=require", "sslrootcert=FILE"),
            (
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent",
                "sslrootcert=FILE",
            ),
            ("postgres://u@h/db?sslmode=sometimes", "not one of"),
            ("postgres://u@h/db?nonsense=1", "not of the form"),
            ("postgres://u@/db", "names no host"),
        ] {
            let e = config(Path::new(url), &env).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("secret"), "{url}: {e}");
            assert!(!redacted(Path::new(url))
                .display()
                .to_string()
                .contains("secret"));
        }
    }

    #[test]
    fn libpq_variables_fill_what_the_url_leaves_out() {
        let env = env_of(&[
            ("PGHOST", "/run/pg"),
            ("PGPORT", "6543"),
            ("PGUSER", "ops"),
            ("PGDATABASE", "ledger"),
            ("PGPASSWORD", "pw"),
        ]);
        let (c, _) = config(Path::new("postgres://"), &env).unwrap();
        assert_eq!(c.get_hosts(), &[Host::Unix(PathBuf::from("/run/pg"))]);
        assert_eq!(c.get_ports(), &[6543]);
        assert_eq!(c.get_user(), Some("ops"));
        assert_eq!(c.get_dbname(), Some("ledger"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        // The URL wins over the variables, except for the password.
        let (c, _) = config(Path::new("postgres://me@db.example:5433/l"), &env).unwrap();
        assert_eq!(c.get_hosts(), &[Host::Tcp("db.example".into())]);
        assert_eq!((c.get_ports(), c.get_user()), (&[5433][..], Some("me")));
        let (c, _) = config(Path::new("postgres://me@%2Ftmp%2Fs/l"), &env_of(&[])).unwrap();
        assert_eq!(c.get_hosts(), &[Host::Unix(PathBuf::from("/tmp/s"))]);
    }

    #[test]
    fn password_files_follow_libpq() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:no\n127.0.0.1:5432:ledger:ops:first\\:part\n*:*:*:ops:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let url = format!(
            "postgres://ops@127.0.0.1/ledger?passfile={}",
            file.display()
        );
        let (c, _) = config(Path::new(&url), &env_of(&[])).unwrap();
        assert_eq!(c.get_password(), Some(&b"first:part"[..]));
        let url = format!("postgres://ops@127.0.0.1/other?passfile={}", file.display());
        let (c, _) = config(Path::new(&url), &env_of(&[])).unwrap();
        assert_eq!(c.get_password(), Some(&b"fallback"[..]));
        // PGPASSWORD comes first.
        let (c, _) = config(Path::new(&url), &env_of(&[("PGPASSWORD", "env")])).unwrap();
        assert_eq!(c.get_password(), Some(&b"env"[..]));
        // A file others can read is refused, as libpq does.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = config(Path::new(&url), &env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("chmod 0600"), "{e}");
        // No file: no password, no error.
        let (c, _) = config(
            Path::new("postgres://ops@h/db"),
            &env_of(&[("PGPASSFILE", "/nonexistent/pgpass")]),
        )
        .unwrap();
        assert_eq!(c.get_password(), None);
    }
}
