//! SoftHSM2 for tests: each test gets its own token in its own temporary
//! folder, with its own `SOFTHSM2_CONF`, so tests never share a token or a
//! PIN counter and can run in parallel.
//!
//! Without SoftHSM2 installed a test is skipped with a printed reason,
//! except under `CI=true`, where `.ci/run` installs Debian's `softhsm2` and
//! a missing one fails the test.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::{require_tool, skip_or_fail};

/// The user PIN of every test token.
pub const USER_PIN: &str = "246810";
/// The security officer PIN of every test token.
pub const SO_PIN: &str = "13579024";
/// The label of the token [`SoftHsm::new`] creates.
pub const TOKEN: &str = "tessera-test";

/// Where Debian and Ubuntu install the SoftHSM2 module.
const MODULES: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

/// The environment variable a test re-run in its own process finds its
/// SoftHSM configuration in (see [`isolated`]).
const CHILD_CONF: &str = "TESSERA_TEST_SOFTHSM_CONF";

/// A SoftHSM2 installation of one test: configuration, token folder and the
/// module's path.
#[derive(Debug)]
pub struct SoftHsm {
    dir: tempfile::TempDir,
    module: PathBuf,
}

impl SoftHsm {
    /// A fresh SoftHSM2 with one initialized token labelled [`TOKEN`]
    /// (user PIN [`USER_PIN`]); `None` when SoftHSM2 is not installed
    /// (outside CI).
    ///
    /// # Panics
    /// Under `CI=true` when SoftHSM2 is missing, or when the token cannot be
    /// initialized.
    #[must_use]
    pub fn new() -> Option<Self> {
        let Some(module) = module_path() else {
            skip_or_fail("the SoftHSM2 module (Debian package softhsm2)");
            return None;
        };
        require_tool("softhsm2-util", "softhsm2")?;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).expect("the token folder");
        fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}/\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .expect("the SoftHSM2 configuration");
        let hsm = Self { dir, module };
        hsm.add_token(TOKEN);
        Some(hsm)
    }

    /// Initializes another token labelled `label` (same PINs).
    ///
    /// # Panics
    /// When `softhsm2-util` fails.
    pub fn add_token(&self, label: &str) {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", USER_PIN, "--so-pin", SO_PIN])
            .output()
            .expect("run softhsm2-util");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The configuration file (`SOFTHSM2_CONF`).
    #[must_use]
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The PKCS#11 module.
    #[must_use]
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The test's temporary folder (PIN files and the like may go here).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment a process needs to reach this SoftHSM2:
    /// `SOFTHSM2_CONF` and `TESSERA_PKCS11_MODULE`.
    #[must_use]
    pub fn env(&self) -> [(&'static str, OsString); 2] {
        [
            ("SOFTHSM2_CONF", self.conf().into_os_string()),
            (
                "TESSERA_PKCS11_MODULE",
                self.module.clone().into_os_string(),
            ),
        ]
    }
}

/// Runs a library test against its own SoftHSM2 in its own process.
///
/// SoftHSM2 reads `SOFTHSM2_CONF` once per process, when the module is
/// initialized, so tests in one test binary cannot each have their own
/// configuration. `isolated` runs the test binary again, filtered to the
/// test `name`, with a fresh SoftHSM2's environment; in that child, `body`
/// runs with the module's path. Returns without running `body` when
/// SoftHSM2 is not installed (outside CI).
///
/// # Panics
/// When the child fails or does not run exactly one test.
pub fn isolated(name: &str, body: impl FnOnce(&Path)) {
    if std::env::var_os(CHILD_CONF).is_some() {
        let module = std::env::var_os("TESSERA_PKCS11_MODULE").expect("module in the child");
        body(Path::new(&module));
        return;
    }
    let Some(hsm) = SoftHsm::new() else { return };
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .envs(hsm.env())
        .env(CHILD_CONF, hsm.conf())
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its own process ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        out.status
    );
}

/// The installed SoftHSM2 module, if any.
#[must_use]
pub fn module_path() -> Option<PathBuf> {
    MODULES.iter().map(PathBuf::from).find(|p| p.is_file())
}
