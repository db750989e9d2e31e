//! What the CLI tests of this crate share: one run of the `tessera`
//! binary, its exit code and what it printed.
// Each test crate that includes this module uses its own part of it.
#![allow(dead_code)]

use std::process::Output;

/// One run of a command.
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// The run that produced `out`.
    pub fn of(out: &Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// It exited 0.
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "{}{}", self.stdout, self.stderr);
        self
    }

    /// Everything printed is free of control and format characters
    /// (line ends apart).
    pub fn printable(&self) -> &Self {
        for line in self.stdout.lines().chain(self.stderr.lines()) {
            assert_eq!(
                tessera_verifier::text::check(line),
                Ok(()),
                "unescaped output: {line:?}"
            );
        }
        self
    }

    /// It exited `code`, its standard error says each of `says`, and
    /// everything it printed is escaped.
    pub fn refused(&self, code: i32, says: &[&str]) -> &Self {
        assert_eq!(self.code, code, "{}{}", self.stdout, self.stderr);
        for s in says {
            assert!(
                self.stderr.contains(s),
                "does not say {s:?}: {}",
                self.stderr
            );
        }
        self.printable()
    }
}
