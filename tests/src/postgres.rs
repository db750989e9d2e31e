//! A real PostgreSQL server for tests: each [`PgServer`] runs its own
//! cluster (`initdb` + `pg_ctl`) in a temporary folder, listening on a
//! free loopback port and on a unix socket in that folder, with trust
//! authentication for the test user. It is stopped (`pg_ctl stop -m
//! immediate`) and its folder removed when the value is dropped, also
//! when the test fails.
//!
//! The server's programs are found on `PATH`, else in Debian's
//! `/usr/lib/postgresql/<version>/bin` (the newest). Without them a test
//! is skipped with a printed reason, except under `CI=true`, where
//! `.ci/run` installs Debian's `postgresql` and a missing one fails.
//!
//! PostgreSQL refuses to run as root: as root, the cluster is made and run
//! as the `postgres` user (which Debian's package creates) or `nobody`.

use core::sync::atomic::{AtomicU32, Ordering};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::{run_ok, skip_or_fail};

/// The superuser of every test cluster (trust authentication).
pub const USER: &str = "tessera";

/// A running PostgreSQL cluster of one test.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The unprivileged user the cluster runs as when tests run as root.
    run_as: Option<String>,
    databases: AtomicU32,
}

/// The folder holding `initdb`, `pg_ctl`, `createdb` and `psql`: the one
/// `initdb` on `PATH` lives in (through a symbolic link: Debian's
/// `postgresql-common` links only some programs), else Debian's newest.
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find_map(|d| {
            let real = std::fs::canonicalize(d.join("initdb")).ok()?;
            let dir = real.parent()?.to_owned();
            ["pg_ctl", "createdb", "psql"]
                .iter()
                .all(|p| dir.join(p).is_file())
                .then_some(dir)
        })
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((v, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgServer {
    /// Starts a fresh cluster; `None` (with a printed reason) when
    /// PostgreSQL is not installed, outside CI.
    ///
    /// # Panics
    /// Under `CI=true` when PostgreSQL is missing; when the cluster cannot
    /// be made or started (with the server's log).
    #[must_use]
    pub fn start() -> Option<Self> {
        Self::start_with(false, false)
    }

    /// [`PgServer::start`] with PostgreSQL's own durability (`fsync` and
    /// `full_page_writes` on, as in production), for measurements; the
    /// tests' clusters run without them, for speed.
    ///
    /// # Panics
    /// As [`PgServer::start`].
    #[must_use]
    pub fn start_durable() -> Option<Self> {
        Self::start_with(false, true)
    }

    /// [`PgServer::start`] with TLS: a test CA (`openssl`) signs the
    /// server's certificate for 127.0.0.1; [`PgServer::ca_file`] is the
    /// CA certificate clients verify the server with. Connections without
    /// TLS are still accepted.
    ///
    /// # Panics
    /// As [`PgServer::start`]; under `CI=true` when `openssl` is missing.
    #[must_use]
    pub fn start_tls() -> Option<Self> {
        crate::tools::require_tool("openssl", "openssl")?;
        Self::start_with(true, false)
    }

    /// The test CA's certificate (PEM) of a server started with
    /// [`PgServer::start_tls`].
    #[must_use]
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn make_certificates(&self) {
        let d = self.dir.path();
        let openssl = |args: &[&str]| {
            run_ok(Command::new("openssl").current_dir(d).args(args));
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=tessera test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("the certificate's extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        // PostgreSQL refuses a key others can read, or one it does not own.
        run_ok(Command::new("chmod").arg("0600").arg(d.join("server.key")));
        if let Some(user) = &self.run_as {
            run_ok(
                Command::new("chown")
                    .arg(user)
                    .arg(d.join("server.key"))
                    .arg(d.join("server.pem")),
            );
        }
    }

    fn start_with(tls: bool, durable: bool) -> Option<Self> {
        let Some(bin) = bin_dir() else {
            skip_or_fail("PostgreSQL's `initdb` and `pg_ctl` (Debian package postgresql)");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("tessera-pg-")
            .tempdir()
            .expect("a temporary folder");
        let run_as = is_root().then(|| {
            let user = if Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                "postgres"
            } else {
                "nobody"
            };
            run_ok(Command::new("chown").arg(user).arg(dir.path()));
            user.to_owned()
        });
        let mut server = Self {
            dir,
            bin,
            port: 0,
            run_as,
            databases: AtomicU32::new(0),
        };
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c max_connections=50 -k {}",
            server.dir.path().display()
        );
        if !durable {
            options.push_str(" -c fsync=off -c full_page_writes=off");
        }
        if tls {
            server.make_certificates();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                server.dir.path().join("server.pem").display(),
                server.dir.path().join("server.key").display()
            ));
        }
        run_ok(server.command("initdb").arg("-D").arg(server.data()).args([
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ]));
        // A port that was free a moment ago can be taken by another test
        // meanwhile: try a few.
        for _ in 0..5 {
            server.port = free_port();
            let out = server
                .command("pg_ctl")
                .arg("-D")
                .arg(server.data())
                .arg("-l")
                .arg(server.log())
                .arg("-o")
                .arg(format!("-p {} {options}", server.port))
                .args(["-w", "-t", "60", "start"])
                .output()
                .expect("pg_ctl runs");
            if out.status.success() {
                return Some(server);
            }
        }
        panic!(
            "PostgreSQL did not start; its log:\n{}",
            std::fs::read_to_string(server.log()).unwrap_or_default()
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// The TCP port on 127.0.0.1.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder of the server's unix socket.
    #[must_use]
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new, empty database; returns its URL over TCP
    /// (`postgres://tessera@127.0.0.1:PORT/NAME`).
    ///
    /// # Panics
    /// When `createdb` fails.
    #[must_use]
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("ledger{n}");
        run_ok(
            self.command("createdb")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
                .arg(&name),
        );
        self.url(&name)
    }

    /// A new database, a copy of the database at `template` (which no
    /// one may be connected to); returns its URL.
    ///
    /// # Panics
    /// When `createdb` fails.
    #[must_use]
    pub fn clone_database(&self, template: &str) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("ledger{n}");
        let template = template.rsplit('/').next().unwrap_or(template);
        run_ok(
            self.command("createdb")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
                .args(["-T", template])
                .arg(&name),
        );
        self.url(&name)
    }

    /// The URL of database `name` over TCP.
    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL in database `name` with `psql` (statements a test uses to
    /// tamper with a ledger); returns its standard output.
    ///
    /// # Panics
    /// When the SQL fails.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let out = run_ok(
            self.command("psql")
                .args([
                    "-X",
                    "-q",
                    "-t",
                    "-A",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    url,
                    "-c",
                ])
                .arg(sql),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
