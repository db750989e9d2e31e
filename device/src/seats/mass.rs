//! Mass configuration: seats as CSV, the third vendor's shape.
//!
//! ```text
//! extension_key,number,user,addon_1,addon_2,addon_3
//! Phone System,1001,alice@example.com,call_recording,device_ip_phone,
//! Call Group,2001,support-team,device_desktop_app,,
//! profile:UC-BUSINESS,1002,bob@example.com,,,
//! ```
//!
//! - The header is exactly `extension_key,number,user` followed by
//!   `addon_1` … `addon_N` (N ≥ 0, numbered from 1 without gaps). Header
//!   cells are read without regard to case, with spaces and hyphens taken
//!   as `_` (`Extension Key`, `Add-on 1` are accepted).
//! - `extension_key`: the license of the seat: a base license name or code
//!   (`Phone System`, `4`), `base:NAME|CODE`, or `profile:NAME|CODE` for a
//!   user profile. A bare name that names no base license but a profile is
//!   the profile.
//! - `number`: the extension number (digits, optionally after one `+`), or
//!   empty.
//! - `user`: who gets the seat (required).
//! - `addon_K`: add-on names or codes; empty cells are skipped.
//! - Lines starting with `#` and empty lines are skipped; the file is
//!   UTF-8 (a byte-order mark is allowed), comma-separated, quoted as RFC
//!   4180 (`"Smith, Anna"`, `"O""Brien"`), LF or CRLF. Quoting is checked
//!   strictly (a quote inside an unquoted cell, text after a closing
//!   quote, a quote never closed refuse the file with their lines).
//!
//! - Cells are written and read with the OWASP rule against spreadsheet
//!   formula injection, widened to leading white space and full-width
//!   operators: `export` prefixes with `'` a cell that starts with a tab
//!   or a carriage return, or whose first character after leading white
//!   space is `=`, `+`, `-`, `@` or `＝`, `＋`, `－`, `＠` (and a cell that
//!   starts with `'` and such a formula, or a second `'`, too, so the rule
//!   reverses exactly); `import` removes that one `'`. A user named
//!   `=HYPERLINK(...)` stays text in a spreadsheet and comes back unchanged.
//!
//! A row configures *the seat of `user` with that license*: if the user
//! holds one, it gets the row's number and exactly the row's add-ons; if
//! not, an unassigned seat of that license with that number is given to
//! the user (keeping its id); otherwise a new seat is made. Rows change
//! nothing else, so importing the same file twice changes nothing the
//! second time, and an export imports back unchanged. Seats not named in
//! the file are left alone.

use std::collections::HashMap;
use std::io::{Read, Write};

use serde::Serialize;

use super::limits::Limits;
use super::model::{Seat, SeatId, SeatLicense};
use super::names::Names;
use super::pool::{NewSeat, Pool, Upsert};
use super::{RowError, SeatError};

/// Most rows one import takes.
pub const MAX_ROWS: usize = 1_000_000;
/// Largest mass-configuration file read, in bytes (a million rows of
/// about 60 bytes).
pub const MAX_CSV_LEN: u64 = 64 * 1024 * 1024;
/// Most row errors listed in the message of a refused import.
pub const MAX_REPORTED: usize = 50;

/// The fixed leading columns.
pub const FIXED_COLUMNS: [&str; 3] = ["extension_key", "number", "user"];

/// What an import is doing, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading and checking the rows.
    Checking,
    /// Writing the seats (one transaction).
    Writing,
}

/// Progress callback: stage, done, total.
pub type Progress<'a> = &'a mut dyn FnMut(Stage, u64, u64);

/// One row of the file, read and named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Line of the file where the row starts (1 = the header).
    pub line: u64,
    /// The seat to configure.
    pub seat: NewSeat,
}

/// What an import did (or, refused, would have done: nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// Rows read.
    pub rows: u64,
    /// New seats.
    pub created: u64,
    /// Seats changed (number, add-ons, or an unassigned seat given to the
    /// row's user).
    pub changed: u64,
    /// Rows that matched a seat as it is.
    pub unchanged: u64,
}

/// A cell as `export` writes it: a cell a spreadsheet may take for a
/// formula gets a leading `'` (as does a cell that already starts with `'`
/// followed by such a formula or another `'`, so that [`restore`] reverses
/// it exactly).
///
/// ```
/// use tessera_device::seats::mass::{neutralize, restore};
/// assert_eq!(neutralize("=SUM(A1:A9)"), "'=SUM(A1:A9)");
/// assert_eq!(neutralize("+4930123"), "'+4930123");
/// assert_eq!(neutralize("  =1+1"), "'  =1+1");
/// assert_eq!(neutralize("\u{ff1d}1+1"), "'\u{ff1d}1+1");
/// assert_eq!(neutralize("alice"), "alice");
/// assert_eq!(neutralize("'=x"), "''=x");
/// for cell in ["=1", "'=1", "''", "'a", "@x", "-", "a=b", " -1"] {
///     assert_eq!(restore(&neutralize(cell)), cell);
/// }
/// ```
#[must_use]
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    if tessera_verifier::text::csv_needs_quote(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// A cell as `import` reads it: the `'` [`neutralize`] added is removed (a
/// `'` followed by a formula as [`neutralize`] sees one, or by `'`).
#[must_use]
pub fn restore(cell: &str) -> &str {
    tessera_verifier::text::csv_unquote(cell)
}

fn norm_header(cell: &str) -> String {
    let h: String = cell
        .trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    h.replace("add_on_", "addon_")
}

/// Reads the rows of a mass-configuration file, naming licenses and
/// add-ons with `names`. Bad rows are collected with their line numbers
/// (returned next to the good rows); a bad header or unreadable file is
/// an error.
///
/// # Errors
/// [`SeatError::BadCsv`].
pub fn read_rows(input: impl Read, names: &Names) -> Result<(Vec<Row>, Vec<RowError>), SeatError> {
    let mut bytes = Vec::new();
    Capped {
        inner: input,
        left: MAX_CSV_LEN,
    }
    .read_to_end(&mut bytes)
    .map_err(|e| SeatError::BadCsv(format!("the file cannot be read: {e}")))?;
    check_quoting(&bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(&bytes[..]);
    let mut lines = LineCounter {
        bytes: &bytes,
        at: 0,
        line: 1,
    };
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => return Err(SeatError::BadCsv(
                "the file is empty: it needs the header `extension_key,number,user,addon_1,...`"
                    .into(),
            )),
            Some(Err(e)) => return Err(csv_error(&e, &mut lines)),
            Some(Ok(r)) if r.iter().all(|c| c.trim().is_empty()) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let cols: Vec<String> = header.iter().map(norm_header).collect();
    let fixed_ok = cols.len() >= 3 && cols.iter().zip(FIXED_COLUMNS).all(|(c, f)| c == f);
    let addons_ok = cols
        .iter()
        .skip(3)
        .enumerate()
        .all(|(i, c)| *c == format!("addon_{}", i + 1));
    if !fixed_ok || !addons_ok {
        return Err(SeatError::BadCsv(format!(
            "line {}: the header is `{}`; it must be `extension_key,number,user` followed by `addon_1`, `addon_2`, ... (see `tessera-agent seats export`)",
            header.position().map_or(1, |p| lines.line_of(p)),
            tessera_verifier::text::escaped(&header.iter().collect::<Vec<_>>().join(","))
        )));
    }
    let width = cols.len();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                match e.position() {
                    Some(p) => errors.push(RowError {
                        line: lines.line_of(p),
                        message: csv_error(&e, &mut lines).to_string(),
                    }),
                    None => return Err(csv_error(&e, &mut lines)),
                }
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| lines.line_of(p));
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() + errors.len() >= MAX_ROWS {
            return Err(SeatError::BadCsv(format!(
                "more than {MAX_ROWS} rows; split the file"
            )));
        }
        if rec.len() > width {
            errors.push(RowError {
                line,
                message: format!(
                    "{} cells, but the header has {width} columns; add `addon_{}` ... to the header or remove the extra cells",
                    rec.len(),
                    width - 2
                ),
            });
            continue;
        }
        match read_row(&rec, names) {
            Ok(seat) => rows.push(Row { line, seat }),
            Err(e) => errors.push(RowError {
                line,
                message: e.to_string(),
            }),
        }
    }
    Ok((rows, errors))
}

/// Refuses quoting that is not RFC 4180's, with every line where it goes
/// wrong (the first [`MAX_REPORTED`]): a quote inside a cell that does not
/// start with one, text after the closing quote of a cell (`"al"ice"`),
/// and a quoted cell never closed (which would take the rest of the file
/// into one cell). The `csv` reader takes all three silently. Comment
/// lines (`#` first) are skipped as the reader skips them.
fn check_quoting(bytes: &[u8]) -> Result<(), SeatError> {
    const QUOTE_INSIDE: &str = "a quote inside a cell that does not start with one; quote the whole cell, right after the comma, and double the quotes inside it (`\"al\"\"ice\"`)";
    const AFTER_CLOSE: &str = "text after the closing quote of a cell; a quoted cell ends at its closing quote, so double the quotes inside it (`\"al\"\"ice\"`)";
    let mut problems: Vec<(u64, &str)> = Vec::new();
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut line = 1u64;
    let (mut record_start, mut cell_start) = (true, true);
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        at += 1;
        if record_start && b == b'#' {
            // A comment, up to its line end.
            match bytes
                .get(at..)
                .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
            {
                Some(end) => {
                    at += end + 1;
                    line += 1;
                }
                None => at = bytes.len(),
            }
            continue;
        }
        record_start = false;
        match b {
            b'"' if cell_start => {
                let opened = line;
                loop {
                    match (bytes.get(at), bytes.get(at + 1)) {
                        (None, _) => {
                            problems.push((opened, "a quoted cell starts here and is never closed, so the rest of the file would be one cell; close it with a quote"));
                            return Err(quoting_error(&problems));
                        }
                        (Some(b'"'), Some(b'"')) => at += 2,
                        (Some(b'"'), _) => {
                            at += 1;
                            break;
                        }
                        (Some(&c), _) => {
                            line += u64::from(c == b'\n');
                            at += 1;
                        }
                    }
                }
                match bytes.get(at) {
                    None | Some(b',' | b'\n' | b'\r') => {}
                    Some(_) => problems.push((line, AFTER_CLOSE)),
                }
                cell_start = false;
            }
            b'"' => problems.push((line, QUOTE_INSIDE)),
            b',' => cell_start = true,
            b'\n' | b'\r' => {
                line += u64::from(b == b'\n');
                (record_start, cell_start) = (true, true);
            }
            _ => cell_start = false,
        }
        // One report per line is enough.
        if let [.., (a, _), (b, _)] = problems[..] {
            if a == b {
                problems.pop();
            }
        }
        if problems.len() > MAX_REPORTED {
            break;
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(quoting_error(&problems))
    }
}

fn quoting_error(problems: &[(u64, &str)]) -> SeatError {
    let mut s = String::from(
        "the file's quoting is not valid CSV (RFC 4180), so its cells cannot be told apart; fix these lines and import it again:",
    );
    for (line, what) in problems.iter().take(MAX_REPORTED) {
        s.push_str(&format!("\n  line {line}: {what}"));
    }
    if problems.len() > MAX_REPORTED {
        s.push_str("\n  ... and more");
    }
    SeatError::BadCsv(s)
}

/// A reader that fails once more than [`MAX_CSV_LEN`] bytes were read, so
/// no input can make an import hold more than that in memory.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more than the cap says the input is too large.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "larger than {} MiB; split the file",
                    MAX_CSV_LEN / (1024 * 1024)
                ))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn csv_error(e: &csv::Error, lines: &mut LineCounter<'_>) -> SeatError {
    let what = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text; save the file as UTF-8 CSV".to_owned(),
        csv::ErrorKind::Io(io) => format!("cannot be read: {io}"),
        _ => format!("is not valid CSV: {e}"),
    };
    match e.position() {
        Some(p) => SeatError::BadCsv(format!("line {} {what}", lines.line_of(p))),
        None => SeatError::BadCsv(format!("the file {what}")),
    }
}

/// Line numbers of records as an editor shows them. The `csv` reader
/// puts a record that follows a CRLF line end or a comment line at that
/// line end or comment, a line too early; this finds the record's first
/// byte from there (past line ends and comment lines) and counts the line
/// feeds before it, moving forward only, as records come in order.
struct LineCounter<'a> {
    bytes: &'a [u8],
    /// Bytes counted so far.
    at: usize,
    /// The line `at` is on.
    line: u64,
}

impl LineCounter<'_> {
    fn line_of(&mut self, pos: &csv::Position) -> u64 {
        let b = self.bytes;
        let mut start = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .clamp(self.at, b.len());
        loop {
            let line_start = start == 0 || matches!(b.get(start - 1), Some(b'\n' | b'\r'));
            match b.get(start) {
                Some(b'\r' | b'\n') => start += 1,
                Some(b'#') if line_start => {
                    start = b
                        .get(start..)
                        .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
                        .map_or(b.len(), |end| start + end + 1);
                }
                _ => break,
            }
        }
        let counted = b.get(self.at..start).unwrap_or_default();
        self.line += counted.iter().filter(|&&c| c == b'\n').count() as u64;
        self.at = start;
        self.line
    }
}

fn read_row(rec: &csv::StringRecord, names: &Names) -> Result<NewSeat, SeatError> {
    let cell = |i: usize| rec.get(i).map(str::trim).map(restore).unwrap_or_default();
    let key = cell(0);
    if key.is_empty() {
        return Err(SeatError::BadRow(
            "`extension_key` is empty: name the license (`Phone System`, `profile:UC-BUSINESS`, ...)".into(),
        ));
    }
    let license = names.license_key(key)?;
    let number = cell(1);
    let user = cell(2);
    if user.is_empty() {
        return Err(SeatError::BadRow(
            "`user` is empty: every row gives a seat to a user (use `seats unassign` to take one back)".into(),
        ));
    }
    let addons = rec
        .iter()
        .skip(3)
        .map(str::trim)
        .map(restore)
        .filter(|c| !c.is_empty())
        .map(|c| names.addon(c))
        .collect::<Result<Vec<u16>, SeatError>>()?;
    Ok(NewSeat {
        user: user.to_owned(),
        extension: (!number.is_empty()).then(|| number.to_owned()),
        license,
        addons,
    })
}

/// Applies the rows to `pool` under `limits`, collecting every rule broken
/// (with its line) next to the reading errors in `errors`: a row repeating
/// a user and license of an earlier row, the rules of [`Pool::upsert`],
/// and, on the final state, extension numbers used twice.
///
/// # Errors
/// [`SeatError::Random`] only; rule errors go to `errors`.
pub fn apply_rows(
    pool: &mut Pool,
    limits: &Limits,
    rows: Vec<Row>,
    errors: &mut Vec<RowError>,
    now: i64,
    names: &Names,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> Result<ImportOutcome, SeatError> {
    let total = rows.len() as u64;
    let mut out = ImportOutcome {
        rows: total,
        ..ImportOutcome::default()
    };
    let mut first_line: HashMap<(String, SeatLicense), u64> = HashMap::new();
    let mut line_of: HashMap<SeatId, u64> = HashMap::new();
    for (i, row) in rows.into_iter().enumerate() {
        let done = i as u64 + 1;
        if done % 256 == 0 || done == total {
            progress(Stage::Checking, done, total);
        }
        let holder = (row.seat.user.trim().to_owned(), row.seat.license);
        if let Some(first) = first_line.get(&holder) {
            errors.push(RowError {
                line: row.line,
                message: format!(
                    "{} is given {} again (first on line {first}); one row per user and license",
                    tessera_verifier::text::escaped(&holder.0),
                    names.license_name(holder.1)
                ),
            });
            continue;
        }
        first_line.insert(holder, row.line);
        match pool.upsert(limits, row.seat, SeatId::random, now, names) {
            Ok(u) => {
                line_of.insert(u.id(), row.line);
                match u {
                    Upsert::Created(_) => out.created += 1,
                    Upsert::Changed(_) => out.changed += 1,
                    Upsert::Unchanged(_) => out.unchanged += 1,
                }
            }
            Err(e @ SeatError::Random(_)) => return Err(e),
            Err(e) => errors.push(RowError {
                line: row.line,
                message: e.to_string(),
            }),
        }
    }
    for (ext, ids) in pool.extension_clashes() {
        let mut lines: Vec<u64> = ids
            .iter()
            .filter_map(|id| line_of.get(id).copied())
            .collect();
        lines.sort_unstable();
        let Some(&line) = lines.last() else { continue };
        let others: Vec<String> = ids
            .iter()
            .filter(|id| line_of.get(id) != Some(&line))
            .map(|id| match line_of.get(id) {
                Some(l) => format!("line {l}"),
                None => {
                    let who = pool
                        .get(*id)
                        .and_then(|s| s.user.clone())
                        .unwrap_or_else(|| "unassigned".into());
                    format!("seat {id} ({})", tessera_verifier::text::escaped(&who))
                }
            })
            .collect();
        errors.push(RowError {
            line,
            message: format!(
                "extension {ext} is also used by {}; one number per seat",
                others.join(", ")
            ),
        });
    }
    errors.sort_by_key(|e| e.line);
    Ok(out)
}

/// Writes the assigned seats of `seats` as a mass-configuration file; the
/// number of rows.
///
/// # Errors
/// [`SeatError::Output`].
pub fn export<'a>(
    seats: impl IntoIterator<Item = &'a Seat>,
    names: &Names,
    out: impl Write,
) -> Result<u64, SeatError> {
    let mut seats: Vec<&Seat> = seats.into_iter().filter(|s| s.is_assigned()).collect();
    seats.sort_by(|a, b| super::display_order(a, b));
    let n_addons = seats
        .iter()
        .map(|s| s.addons.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    let fail = |e: csv::Error| SeatError::Output(e.to_string());
    let mut header: Vec<String> = FIXED_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    header.extend((1..=n_addons).map(|i| format!("addon_{i}")));
    w.write_record(&header).map_err(fail)?;
    let mut rows = 0u64;
    for s in seats {
        let mut rec = vec![
            names.license_key_of(s.license),
            s.extension.clone().unwrap_or_default(),
            s.user.clone().unwrap_or_default(),
        ];
        rec.extend(s.addons.iter().map(|&a| names.addon_name_or_code(a)));
        rec.resize(3 + n_addons, String::new());
        w.write_record(rec.iter().map(|c| neutralize(c).into_owned()))
            .map_err(fail)?;
        rows += 1;
    }
    w.flush().map_err(|e| SeatError::Output(e.to_string()))?;
    Ok(rows)
}
