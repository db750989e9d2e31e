//! Bulk issuance (`tessera issue --bulk FILE.csv -o DIR`): one license per
//! CSV row, many rows per durable ledger transaction, resumable.
//!
//! The CSV follows the mass-configuration shape of docs/rules.md (extension
//! key, number, user, add-on 1..N) plus the columns that say which device
//! and which order; the format is in `issuer/README.md` with the example
//! `issuer/examples/bulk.csv`:
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `request` | yes | the device's request file (relative to the CSV's folder) |
//! | `order` | unless `--order` | the order file the row starts from |
//! | `key` | no | the key an earlier tessera recorded the row under, when it was not the default ([`row_key`]): read only to resume a run that tessera started |
//! | `customer`, `pbx_name` | no | override the order's |
//! | `extension`, `number`, `user` | no | the user assignment, kept in the ledger |
//! | `profile` | no | the user's profile: its count + 1 |
//! | `base` | with add-ons | base license of the user: its count + 1 |
//! | `addon_1` .. `addon_N` | no | add-ons of the user on `base`: each count + 1 |
//!
//! Rows are checked and their requests verified first; a bad row is
//! reported with its line and skipped. The others are issued in batches,
//! each one `BEGIN IMMEDIATE` transaction made durable by one commit
//! (`synchronous=FULL`, one fsync per batch, not per row); a refused row
//! leaves no trace (a batch where a row is refused after it wrote is
//! rolled back and redone with each row in a savepoint); the licenses of
//! a batch are signed on several threads. License files
//! (`DIR/SERIAL-SEQUENCE.lic`) are written only after their batch
//! committed, so every file on disk is in the ledger.
//!
//! A row answers its device's request as `tessera issue --request` does
//! ([`issuance::answer_once`]): the request's nonce is recorded with the
//! license, so the request is answered once, by a bulk row or any other
//! command. Re-running the same file finds each issued row by its
//! request's nonce and skips it (writing its file again if it is missing
//! or damaged), since the row is the same first license of the same
//! device with the same order; a row whose request was answered otherwise
//! (another order, another command, another device, or a license
//! superseded since) is refused as that command refuses it. Rows an
//! earlier tessera recorded under their row key ([`row_key`]) are found
//! by it once planning finds their device licensed.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use tessera_verifier::armor;
use tessera_verifier::encode::RequestData;

use crate::cli::IssueArgs;
use crate::commands::session::Signing;
use crate::commands::{request_from_text, Ctx};
use crate::error::Error;
use crate::issuance::{self, Answer, Asked, IssueOptions, Issued, Issuer, Planned};
use crate::ledger::{Action, Ledger, Record, Writer};
use crate::order::{Assignment, BaseOrder, Order, OrderError};
use crate::output::{note, read_text};
use crate::policy::PolicyError;
use crate::validate::{shown, RequestCheck};

/// One CSV row, checked and ready to issue.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// 1-based line in the CSV.
    pub line: u64,
    /// The key the row is recorded under: its request's nonce
    /// ([`issuance::request_nonce_key`]).
    pub key: String,
    /// The `key` column: the key an earlier tessera recorded the row under
    /// instead of [`row_key`] ([`Prepared::old_key`]).
    pub key_column: Option<String>,
    /// The row's order (template with the row merged in).
    pub order: Order,
    /// The order as recorded ([`Order::to_json`]), made once.
    pub order_json: String,
    /// The device request.
    pub request: RequestData,
    /// The catalog names the row's cells put in its order, with their
    /// column: a refusal of one names the column, not the order file.
    pub cells: Vec<CellName>,
}

/// A catalog name a CSV cell put in a row's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellName {
    /// What it names, as the order's refusals say it: `profile`,
    /// `base license`, `add-on`.
    pub kind: &'static str,
    /// The cell's value.
    pub name: String,
    /// The column (its header, lower case).
    pub column: String,
    /// Whether the order file names it too.
    pub in_order_file: bool,
}

/// A row that was refused.
#[derive(Clone, Debug)]
pub struct RowError {
    /// 1-based line in the CSV.
    pub line: u64,
    /// What is wrong and what to do.
    pub message: String,
}

/// What one row came to.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Issued in this run.
    Issued(Box<Record>),
    /// Issued by an earlier run (same request, same order).
    Skipped(Box<Record>),
    /// Refused.
    Refused(RowError),
}

/// The result of a bulk run.
#[derive(Debug, Default)]
pub struct Summary {
    /// Rows issued now.
    pub issued: usize,
    /// Rows issued before (skipped).
    pub skipped: usize,
    /// Refused rows, by line.
    pub refused: Vec<RowError>,
    /// License files written (or rewritten).
    pub files: usize,
}

fn cell<'r>(headers: &HashMap<String, usize>, rec: &'r csv::StringRecord, name: &str) -> &'r str {
    headers
        .get(name)
        .and_then(|i| rec.get(*i))
        .map_or("", str::trim)
}

/// Reads and checks every row of a bulk CSV. Rows that cannot be used are
/// returned as [`RowError`]s; the others as [`Prepared`] rows.
///
/// # Errors
/// [`Error::Io`] when the CSV cannot be read, [`Error::Usage`] for a
/// missing `request` column.
pub fn prepare(
    csv_path: &Path,
    default_order: Option<&Path>,
    check: RequestCheck,
) -> Result<(Vec<Prepared>, Vec<RowError>), Error> {
    let text = read_text(csv_path)?;
    let base = csv_path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    prepare_text(&text, &base, default_order, check)
}

/// [`prepare`] on CSV text; relative paths are taken from `base`.
///
/// # Errors
/// As [`prepare`].
pub fn prepare_text(
    text: &str,
    base: &Path,
    default_order: Option<&Path>,
    check: RequestCheck,
) -> Result<(Vec<Prepared>, Vec<RowError>), Error> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers: HashMap<String, usize> = reader
        .headers()
        .map_err(|e| Error::Usage(format!("bulk CSV header: {e}")))?
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
        .collect();
    if !headers.contains_key("request") {
        return Err(Error::Usage(
            "the bulk CSV needs a `request` column (see issuer/README.md, \"Bulk issuance\")"
                .into(),
        ));
    }
    let mut addon_cols: Vec<(&String, &usize)> = headers
        .iter()
        .filter(|(h, _)| h.starts_with("addon"))
        .collect();
    addon_cols.sort_by_key(|(_, i)| **i);
    let addon_cols: Vec<(usize, String)> = addon_cols
        .into_iter()
        .map(|(h, i)| (*i, h.clone()))
        .collect();
    let mut orders: HashMap<PathBuf, Order> = HashMap::new();
    let mut prepared = Vec::new();
    let mut errors = Vec::new();
    // Each request's first row: its line and order.
    let mut seen: HashMap<String, (u64, String)> = HashMap::new();
    for rec in reader.records() {
        let (line, rec) = match rec {
            Ok(r) => (r.position().map_or(0, csv::Position::line), r),
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.push(RowError {
                    line,
                    message: format!("not a CSV row: {e}"),
                });
                continue;
            }
        };
        let row = prepare_row(
            &headers,
            &addon_cols,
            &rec,
            base,
            default_order,
            &mut orders,
            check,
        );
        match row {
            Ok((key_column, order, order_json, request, cells)) => {
                let key = issuance::request_nonce_key(&request);
                if let Some((first, first_order)) = seen.get(&key) {
                    errors.push(RowError {
                        line,
                        message: if *first_order == order_json {
                            format!("same row (same request, same order) as line {first}; remove one")
                        } else {
                            format!("the request of line {first} again, with another order: a request is answered once; remove one of the rows, or have the device make a new request (`tessera-agent request`)")
                        },
                    });
                    continue;
                }
                seen.insert(key.clone(), (line, order_json.clone()));
                prepared.push(Prepared {
                    line,
                    key,
                    key_column,
                    order,
                    order_json,
                    request,
                    cells,
                });
            }
            Err(message) => errors.push(RowError { line, message }),
        }
    }
    Ok((prepared, errors))
}

/// A row read: its `key` column, its order and that order as recorded,
/// its request, and the names its cells put in the order.
type Row = (Option<String>, Order, String, RequestData, Vec<CellName>);

fn prepare_row(
    headers: &HashMap<String, usize>,
    addon_cols: &[(usize, String)],
    rec: &csv::StringRecord,
    base: &Path,
    default_order: Option<&Path>,
    orders: &mut HashMap<PathBuf, Order>,
    check: RequestCheck,
) -> Result<Row, String> {
    let get = |name: &str| cell(headers, rec, name);
    let request_name = get("request");
    if request_name.is_empty() {
        return Err("the request column is empty".into());
    }
    let request_path = base.join(request_name);
    let order_path = match get("order") {
        "" => default_order
            .map(Path::to_path_buf)
            .ok_or("no order: fill the order column or pass --order FILE")?,
        o => base.join(o),
    };
    // The files a row names are named in its errors as any value read
    // from a file is quoted: a 2 MB cell gives a line, not 2 MB.
    let shown_path = |path: &Path| crate::validate::shown(&path.display().to_string());
    let unread = |path: &Path, e: Error| {
        let full = path.display().to_string();
        e.to_string().replace(&full, &shown_path(path))
    };
    if !orders.contains_key(&order_path) {
        let text = read_text(&order_path).map_err(|e| unread(&order_path, e))?;
        let json = order_path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let order =
            Order::parse(&shown_path(&order_path), &text, json).map_err(|e| e.to_string())?;
        orders.insert(order_path.clone(), order);
    }
    let template = orders.get(&order_path).ok_or("order cache")?;
    let request_text = read_text(&request_path).map_err(|e| unread(&request_path, e))?;
    let (_, request) = request_from_text(&shown_path(&request_path), &request_text, check)
        .map_err(|e| e.to_string())?;
    let mut order = template.clone();
    if !get("customer").is_empty() {
        get("customer").clone_into(&mut order.customer);
    }
    if !get("pbx_name").is_empty() {
        get("pbx_name").clone_into(&mut order.pbx_name);
    }
    let addon_cells: Vec<(&str, &String)> = addon_cols
        .iter()
        .filter_map(|(i, h)| rec.get(*i).map(|a| (a.trim(), h)))
        .filter(|(a, _)| !a.is_empty())
        .collect();
    let addons: Vec<String> = addon_cells.iter().map(|(a, _)| (*a).to_owned()).collect();
    let base_name = get("base");
    let mut cells = Vec::new();
    let mut cell = |kind: &'static str, name: &str, column: &str, in_order_file: bool| {
        cells.push(CellName {
            kind,
            name: name.to_owned(),
            column: column.to_owned(),
            in_order_file,
        });
    };
    if !get("profile").is_empty() {
        cell(
            "profile",
            get("profile"),
            "profile",
            template.profiles.contains_key(get("profile")),
        );
    }
    if !base_name.is_empty() {
        let in_template = template.bases.get(base_name);
        cell("base license", base_name, "base", in_template.is_some());
        for (a, column) in &addon_cells {
            let in_order_file = in_template.is_some_and(|b| b.addons.contains_key(*a));
            cell("add-on", a, column, in_order_file);
        }
    }
    if !addons.is_empty() && base_name.is_empty() {
        return Err("add-ons need the base column (the base license they belong to)".into());
    }
    if !get("profile").is_empty() {
        *order.profiles.entry(get("profile").to_owned()).or_insert(0) += 1;
    }
    if !base_name.is_empty() {
        let b = order
            .bases
            .entry(base_name.to_owned())
            .or_insert_with(|| BaseOrder {
                count: 0,
                addons: Default::default(),
            });
        b.count = b.count.saturating_add(1);
        for a in &addons {
            let c = b.addons.entry(a.clone()).or_insert(0);
            *c = c.saturating_add(1);
        }
    }
    let assignment = Assignment {
        extension: get("extension").to_owned(),
        number: get("number").to_owned(),
        user: get("user").to_owned(),
        base: base_name.to_owned(),
        addons,
    };
    if assignment != Assignment::default() {
        order.assignments.push(assignment);
    }
    let order_json = order.to_json();
    let key_column = match get("key") {
        "" => None,
        k => {
            crate::validate::text("the key column", k).map_err(|e| e.to_string())?;
            Some(k.to_owned())
        }
    };
    Ok((key_column, order, order_json, request, cells))
}

impl Prepared {
    /// The key an earlier tessera recorded this row under, before rows
    /// were recorded under their request's nonce: its `key` column, or
    /// [`row_key`].
    #[must_use]
    pub fn old_key(&self) -> String {
        self.key_column
            .clone()
            .unwrap_or_else(|| row_key(&self.order_json, &self.request))
    }
}

/// The key bulk rows were recorded under before they were recorded under
/// their request's nonce ([`issuance::request_nonce_key`]); a resumed run
/// still looks it up ([`Prepared::old_key`]), so a run an earlier tessera
/// started finishes. It is what a row issues, not how the files that
/// describe it are written: a digest of the row's order as it will be
/// recorded (the order file with the row's columns merged in, in the
/// ledger's JSON form, so comments, spacing and key order do not count)
/// and of the device the request speaks for (its device key, serials,
/// platform and identity digests; not the request's nonce or time, which
/// change with every request the device writes).
#[must_use]
pub fn row_key(order_json: &str, request: &RequestData) -> String {
    fn field(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    h.update(b"tessera-bulk-row-v2\0");
    field(&mut h, order_json.as_bytes());
    field(&mut h, &request.device_key);
    field(&mut h, request.serial.as_deref().unwrap_or("").as_bytes());
    field(
        &mut h,
        request.hw_serial.as_deref().unwrap_or("").as_bytes(),
    );
    h.update([request.platform.code()]);
    field(&mut h, &request.salt);
    let mut identity = request.identity.clone();
    identity.sort();
    for i in &identity {
        h.update([i.kind.0]);
        h.update(i.digest);
    }
    format!("row-{}", hex::encode(&h.finalize()[..16]))
}

/// Signing threads by default: the machine's parallelism, at most 8.
#[must_use]
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// The license file of a ledger row in the output folder.
#[must_use]
pub fn file_name(record: &Record) -> String {
    format!("{}-{}.lic", record.row.serial, record.row.sequence)
}

/// Where the license file of a ledger row goes: `dir/SERIAL-SEQUENCE.lic`,
/// the serial checked against the ledger's grammar and the name joined as
/// one plain file name, so no row can make a path outside `dir`.
///
/// # Errors
/// [`Error::Invalid`] for a serial outside the grammar, [`Error::Usage`]
/// for a name that is not one plain file name.
pub fn license_path(dir: &Path, record: &Record) -> Result<PathBuf, Error> {
    crate::validate::sw_serial("serial", &record.row.serial)?;
    crate::output::join_inside(dir, &file_name(record))
}

/// Longest license file read back to compare (our files are a few KiB).
const MAX_LICENSE_FILE: u64 = 64 * 1024;

/// Whether `path` holds exactly `text`; a missing file does not. Anything
/// but a regular file at our own file name is refused rather than read (a
/// FIFO would hang the run, a link would be followed).
fn holds(path: &Path, text: &[u8]) -> Result<bool, Error> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path)(e)),
        Ok(m) if m.file_type().is_file() => {
            if m.len() != u64::try_from(text.len()).unwrap_or(u64::MAX)
                || m.len() > MAX_LICENSE_FILE
            {
                return Ok(false);
            }
            Ok(std::fs::read(path).is_ok_and(|have| have == text))
        }
        Ok(m) => Err(Error::NotAFile {
            path: path.to_owned(),
            kind: if m.is_dir() {
                "folder"
            } else {
                "link or special file"
            },
        }),
    }
}

/// Files written and synced together (bounded so a large batch does not
/// run out of file descriptors).
const FILE_CHUNK: usize = 128;
/// Threads that fsync a chunk's files: concurrent fsyncs share journal
/// commits, one at a time each waits for its own.
const FSYNC_THREADS: usize = 8;

/// Writes the license files of committed rows into `dir`, skipping those
/// already there with the same content (our own file names: a file that
/// differs is a damaged earlier write and is replaced). Each file is
/// written to a temporary file in `dir`, fsynced, renamed into place, and
/// the folder fsynced: the atomic write of [`crate::output::write_atomic`], with the
/// fsyncs of many files done concurrently. Returns how many were written.
///
/// # Errors
/// [`Error::Io`].
pub fn write_files(dir: &Path, records: &[&Record]) -> Result<usize, Error> {
    let mut written = 0;
    for chunk in records.chunks(FILE_CHUNK) {
        let mut pending = Vec::with_capacity(chunk.len());
        for record in chunk {
            let path = license_path(dir, record)?;
            let text = armor::encode(&record.row.bytes, armor::LABEL_LICENSE);
            if holds(&path, text.as_bytes())? {
                continue;
            }
            let mut tmp = crate::output::temp_file_in(dir)?;
            std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(Error::io(tmp.path()))?;
            pending.push((tmp, path));
        }
        if pending.is_empty() {
            continue;
        }
        let per_thread = pending.len().div_ceil(FSYNC_THREADS);
        std::thread::scope(|scope| {
            let handles: Vec<_> = pending
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        for (tmp, _) in part {
                            tmp.as_file().sync_all().map_err(Error::io(tmp.path()))?;
                        }
                        Ok::<(), Error>(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| Error::Usage("a file sync thread failed".into()))??;
            }
            Ok::<(), Error>(())
        })?;
        for (tmp, path) in pending {
            tmp.persist(&path).map_err(|e| Error::io(&path)(e.error))?;
            written += 1;
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io(dir))?;
    }
    Ok(written)
}

/// Whether a row's error is the ledger failing (which stops the run), not
/// the row being refused.
fn stops_the_run(e: &Error) -> bool {
    matches!(e, Error::Ledger(l) if !matches!(l, crate::ledger::LedgerError::Conflict { .. }))
}

/// What a row of a batch came to while the batch is being worked on.
enum Slot {
    Done(Outcome),
    Planned(usize),
    /// The same row (same request, same order) as a planned one above it:
    /// skipped, like a row already in the ledger.
    Repeat(usize),
}

/// What a first license for `row` asks of its request
/// ([`issuance::answer_once`]): a row already answered is the same first
/// license of the same device with the same order, or refused.
fn asked(row: &Prepared) -> Asked<'_> {
    Asked {
        action: Action::Issue,
        serial: None,
        order_json: Some(&row.order_json),
        command: "first license",
        hint: "; or remove the row",
        also: issuance::Also::Nothing,
    }
}

/// What planning a row came to: a license to sign and record, or the
/// row's outcome without one.
// The planned license moves on to a signing thread as it is: boxing it
// would cost an allocation per row for the rare outcome's sake.
#[allow(clippy::large_enum_variant)]
enum Planning {
    New(Planned),
    Done(Outcome),
}

/// Plans `row`'s license, answering its request once
/// ([`issuance::answer_once`]): the request's nonce is the one lookup of
/// a row on its way to a license; found, the row is resumed (the same
/// first license of the same device with the same order: skipped, its
/// file written) or refused as any command refuses it. `serials` holds
/// the serials planned in this batch but not yet in the journal (a second
/// row for one of them is licensed already).
fn plan_row(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    row: &Prepared,
    now: DateTime<Utc>,
    serials: &HashMap<String, u32>,
) -> Result<Planning, Error> {
    let opts = IssueOptions {
        now,
        approval: None,
        change: false,
        idem_key: Some(&row.key),
        order_json: Some(&row.order_json),
        new_device_key: false,
        retire_old_keys: false,
    };
    let answer = issuance::answer_once(w, &row.request, &asked(row), now, |w, _| {
        let p = issuance::plan(w, issuer, &row.order, &row.request, &opts)?;
        if let Some(seq) = serials.get(&p.data.serial) {
            return Err(Error::Policy(PolicyError::AlreadyLicensed {
                serial: p.data.serial.clone(),
                sequence: *seq,
            }));
        }
        // A serial licensed before with no license in force (its first
        // license voided): a row an earlier tessera recorded is this row,
        // which is never issued again.
        if p.data.sequence > 1 {
            if let Some(o) = old_row(w, row)? {
                return Ok(Planning::Done(o));
            }
        }
        Ok(Planning::New(p))
    })?;
    Ok(match answer {
        Answer::New(planning) => planning,
        Answer::Again(r) => Planning::Done(Outcome::Skipped(r)),
    })
}

/// A row planning refused (`e`): its refusal, unless it is a row an
/// earlier tessera recorded ([`old_row`]), looked up only once its device
/// is found licensed, so a new row costs one lookup (its request's nonce).
fn refused(w: &Writer<'_>, row: &Prepared, e: &Error) -> Result<Outcome, Error> {
    if matches!(e, Error::Policy(PolicyError::AlreadyLicensed { .. })) {
        if let Some(o) = old_row(w, row)? {
            return Ok(o);
        }
    }
    Ok(Outcome::Refused(RowError {
        line: row.line,
        message: row_message(e, row),
    }))
}

/// The outcome of `row` when an earlier tessera recorded it under its old
/// key ([`Prepared::old_key`]), before rows were recorded under their
/// request's nonce ([`issued_before`]).
fn old_row(w: &Writer<'_>, row: &Prepared) -> Result<Option<Outcome>, Error> {
    match w.by_idem_key(&row.old_key())? {
        Some(r) => issued_before(w, row, r),
        None => Ok(None),
    }
}

/// A row an earlier tessera recorded under the key the ledger holds
/// (`r`): the same row of a run it started (skipped: resuming; refused
/// once a later license superseded the row's, so a voided license is
/// never written again); `None` when `r` is another device's or another
/// order's (a `key` column an earlier row used), which this row's own
/// refusal then answers.
fn issued_before(w: &Writer<'_>, row: &Prepared, r: Record) -> Result<Option<Outcome>, Error> {
    let device = hex::encode(row.request.device_key);
    // Every key the row's license recorded, a withdrawn one too: this
    // only tells the row apart from another device's; a row whose license
    // a void or a later license superseded is refused below either way.
    let same_device = w
        .request_keys_since(&r.row.serial, r.row.sequence)?
        .contains(&device);
    if r.row.action != Action::Issue || !same_device || r.row.order_json != row.order_json {
        return Ok(None);
    }
    // Resuming gives back the row's license only while it is the one in
    // force: not one a void, a change or a renewal superseded.
    Ok(Some(match w.latest(&r.row.serial)? {
        Some(l) if l.row.sequence != r.row.sequence => Outcome::Refused(RowError {
            line: row.line,
            message: format!(
                "this row was issued before ({} sequence {}), and the PBX has sequence {} since (a {}): that license is not the one in force, so no file is written for it; remove the row (`tessera ledger show {}` shows the PBX's history)",
                r.row.serial,
                r.row.sequence,
                l.row.sequence,
                l.row.action.as_str(),
                r.row.serial,
            ),
        }),
        _ => Outcome::Skipped(Box::new(r)),
    }))
}

/// Planned rows on their way to a signing thread, and back with their
/// signed licenses.
type Job = Vec<(usize, Planned)>;
type Signed = Vec<(usize, Planned, Result<Vec<u8>, Error>)>;

/// Planned rows travel to the signing threads this many at a time: a
/// thread woken per row spends more on the wake-up than on the row's
/// hand-over (measured: the planning thread's time per row grew by a
/// third with one row per message).
const CHUNK: usize = 32;

/// Signs what arrives on `jobs` until the sender is gone, answering on
/// `done` (one of `threads` such loops shares the receiver).
fn signing_loop(
    issuer: &Issuer<'_>,
    jobs: &Mutex<mpsc::Receiver<Job>>,
    done: &mpsc::Sender<Signed>,
) {
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(chunk) = job else { return };
        let signed = chunk
            .into_iter()
            .map(|(i, planned)| {
                let bytes = issuance::sign_planned(issuer, &planned);
                (i, planned, bytes)
            })
            .collect();
        if done.send(signed).is_err() {
            return;
        }
    }
}

/// Signed licenses waiting for their turn, and the rows recorded so far.
/// Licenses enter the journal in row order; a failed signature, or a row
/// refused after it wrote, stops recording (`redo`: the batch is then
/// rolled back and redone row by row).
struct InOrder {
    waiting: BTreeMap<usize, (Planned, Vec<u8>)>,
    issued: Vec<Issued>,
    redo: bool,
}

impl InOrder {
    fn take(&mut self, w: &mut Writer<'_>, issuer: &Issuer<'_>, s: Signed) -> Result<(), Error> {
        for signed in s {
            match signed {
                (i, p, Ok(bytes)) => {
                    self.waiting.insert(i, (p, bytes));
                }
                (_, _, Err(_)) => self.redo = true,
            }
        }
        while !self.redo {
            let Some((p, bytes)) = self.waiting.remove(&self.issued.len()) else {
                break;
            };
            self.issued.push(issuance::record(w, issuer, p, bytes)?);
        }
        Ok(())
    }
}

/// Why a row was refused, for its line in the report. A device licensed
/// already is told in bulk terms: `--change` does not go with `--bulk`.
fn row_message(e: &Error, row: &Prepared) -> String {
    match e {
        // A name a cell gave: name its column, not (only) the order file.
        Error::Order(OrderError::UnknownName { kind, name, known }) => row
            .cells
            .iter()
            .find(|c| c.kind == *kind && (c.name == *name || shown(&c.name) == *name))
            .map_or_else(
                || e.to_string(),
                |c| {
                    format!(
                        "unknown {kind} `{name}` in column {}{}; the catalog knows: {known}",
                        c.column,
                        if c.in_order_file {
                            " (and in the order file)"
                        } else {
                            ""
                        }
                    )
                },
            ),
        Error::Policy(PolicyError::AlreadyLicensed { serial, sequence }) => format!(
            "{serial} already has a license in force (sequence {sequence}): a bulk file gives each device its first license, once; remove this row (a second row for the same device?), and change a licensed PBX with `tessera modify --serial {serial}`"
        ),
        e => e.to_string(),
    }
}

/// One batch: plan every row and hand it to `threads - 1` signing threads
/// at once (one thread: sign it in place); record the signed licenses in
/// row order as they come back, while later rows are still being planned,
/// so the ledger work and the signatures overlap; commit.
///
/// Unless `guarded`, rows are planned without savepoints
/// ([`Writer::unguarded`]: a savepoint copies every page a row touches).
/// A row refused before it wrote anything (most refusals: the policy
/// checks come first) is refused here; one refused after it wrote spoils
/// the transaction: `None`, and the caller redoes the batch `guarded`,
/// each row in a savepoint. `None` too when signing failed, so the caller
/// can redo the batch row by row.
fn batch_parallel(
    ledger: &mut Ledger,
    issuer: &Issuer<'_>,
    batch: &[Prepared],
    now: DateTime<Utc>,
    threads: usize,
    guarded: bool,
) -> Result<Option<Vec<Outcome>>, Error> {
    let mut w = ledger.writer(issuer.signer, issuer.operator)?;
    let mut slots = Vec::with_capacity(batch.len());
    let mut order = InOrder {
        waiting: BTreeMap::new(),
        issued: Vec::with_capacity(batch.len()),
        redo: false,
    };
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| -> Result<(), Error> {
        // Owned by the scope's closure: an early return drops the job
        // sender and the answer receiver, which ends the signing loops
        // before the scope joins them.
        let job_tx = job_tx;
        let (done_tx, done_rx) = mpsc::channel::<Signed>();
        // One thread: sign in place, no overlap. More: this thread plans
        // and records, the others sign.
        let inline = threads <= 1;
        for _ in 1..threads {
            let (jobs, done) = (&job_rx, done_tx.clone());
            scope.spawn(move || signing_loop(issuer, jobs, &done));
        }
        drop(done_tx);
        let mut planned = 0usize;
        // Planned but not yet in the journal: a second row for the same
        // serial would not see the first one's license.
        // Sized for the batch: growing them rehashes into fresh memory.
        let mut serials: HashMap<String, u32> = HashMap::with_capacity(batch.len());
        // Each planned row's request (its nonce key): its row and order.
        let mut keys: HashMap<&str, (usize, &str)> = HashMap::with_capacity(batch.len());
        let mut pending: Job = Vec::with_capacity(CHUNK);
        for row in batch {
            if let Some(&(i, first_order)) = keys.get(row.key.as_str()) {
                slots.push(if first_order == row.order_json {
                    Slot::Repeat(i)
                } else {
                    Slot::Done(Outcome::Refused(RowError {
                        line: row.line,
                        message: "an earlier row answers this row's request, with another order: a request is answered once; remove one of the rows, or have the device make a new request (`tessera-agent request`)".into(),
                    }))
                });
                continue;
            }
            let plan = |w: &mut Writer<'_>| plan_row(w, issuer, row, now, &serials);
            let planned_row = if guarded {
                w.savepoint(plan).map_err(Some)
            } else {
                w.unguarded(plan)
            };
            let result = match planned_row {
                Ok(p) => Ok(p),
                Err(Some(e)) => Err(e),
                // Refused after it wrote: roll the batch back, redo it.
                Err(None) => {
                    order.redo = true;
                    return Ok(());
                }
            };
            match result {
                Ok(Planning::New(p)) => {
                    serials.insert(p.data.serial.clone(), p.data.sequence);
                    keys.insert(&row.key, (planned, &row.order_json));
                    slots.push(Slot::Planned(planned));
                    if inline {
                        let signed = issuance::sign_planned(issuer, &p);
                        order.take(&mut w, issuer, vec![(planned, p, signed)])?;
                    } else {
                        pending.push((planned, p));
                        if pending.len() >= CHUNK
                            && job_tx.send(core::mem::take(&mut pending)).is_err()
                        {
                            order.redo = true;
                        }
                    }
                    planned += 1;
                }
                Ok(Planning::Done(o)) => slots.push(Slot::Done(o)),
                // The ledger itself failing stops the run; a row it refuses
                // (a conflict) is that row's refusal.
                Err(e) if stops_the_run(&e) => return Err(e),
                Err(e) => slots.push(Slot::Done(refused(&w, row, &e)?)),
            }
            while let Ok(s) = done_rx.try_recv() {
                order.take(&mut w, issuer, s)?;
            }
        }
        if !pending.is_empty() && job_tx.send(pending).is_err() {
            order.redo = true;
        }
        drop(job_tx);
        for s in done_rx {
            order.take(&mut w, issuer, s)?;
        }
        if order.issued.len() != planned {
            order.redo = true;
        }
        Ok(())
    })?;
    if order.redo {
        return Ok(None);
    }
    w.commit()?;
    let lost = || {
        Outcome::Refused(RowError {
            line: 0,
            message: "internal: planned row lost".into(),
        })
    };
    let mut records: Vec<Option<Record>> =
        order.issued.into_iter().map(|x| Some(x.record)).collect();
    // Repeats first (a copy of their record), before the planned rows
    // take theirs.
    let repeats: Vec<Option<Outcome>> = slots
        .iter()
        .map(|s| match s {
            Slot::Repeat(i) => Some(
                records
                    .get(*i)
                    .and_then(Option::as_ref)
                    .map_or_else(lost, |r| Outcome::Skipped(Box::new(r.clone()))),
            ),
            _ => None,
        })
        .collect();
    Ok(Some(
        slots
            .into_iter()
            .zip(repeats)
            .map(|(s, repeat)| match s {
                Slot::Done(o) => o,
                Slot::Planned(i) => records
                    .get_mut(i)
                    .and_then(Option::take)
                    .map_or_else(lost, |r| Outcome::Issued(Box::new(r))),
                Slot::Repeat(_) => repeat.unwrap_or_else(lost),
            })
            .collect(),
    ))
}

/// One batch, row by row: plan, sign and record each row in its own
/// savepoint.
fn batch_sequential(
    ledger: &mut Ledger,
    issuer: &Issuer<'_>,
    batch: &[Prepared],
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, Error> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut w = ledger.writer(issuer.signer, issuer.operator)?;
    // Recorded as they are planned: the ledger sees each row's license.
    let none = HashMap::new();
    for row in batch {
        let answer = w.savepoint(|w| match plan_row(w, issuer, row, now, &none)? {
            Planning::New(p) => {
                let bytes = issuance::sign_planned(issuer, &p)?;
                let issued = issuance::record(w, issuer, p, bytes)?;
                Ok(Outcome::Issued(Box::new(issued.record)))
            }
            Planning::Done(o) => Ok(o),
        });
        let outcome = match answer {
            Ok(o) => o,
            Err(e) if stops_the_run(&e) => return Err(e),
            Err(e) => refused(&w, row, &e)?,
        };
        outcomes.push(outcome);
    }
    w.commit()?;
    Ok(outcomes)
}

/// Issues prepared rows in batches of `batch_size`, each batch one
/// durable transaction, on `threads` threads (one plans and records, the
/// others sign); writes each batch's files into `out_dir` (when given)
/// after its commit. `progress` is called for each row of a batch once
/// the batch is committed, before its files are written.
///
/// # Errors
/// [`Error::Ledger`] (a batch that cannot commit stops the run; earlier
/// batches stay: `progress` has seen their rows), [`Error::Io`] for a
/// file (its batch is committed).
#[allow(clippy::too_many_arguments)]
pub fn issue_rows(
    ledger: &mut Ledger,
    issuer: &Issuer<'_>,
    rows: &[Prepared],
    batch_size: usize,
    threads: usize,
    now: DateTime<Utc>,
    out_dir: Option<&Path>,
    mut progress: impl FnMut(&Outcome),
) -> Result<Summary, Error> {
    let mut summary = Summary::default();
    for batch in rows.chunks(batch_size.max(1)) {
        let outcomes = match batch_parallel(ledger, issuer, batch, now, threads, false)? {
            Some(o) => o,
            // A row refused after it wrote: redo the batch (rolled back)
            // with each row in a savepoint. Signing failed for some row:
            // redo it one row at a time, so only that row is refused.
            None => match batch_parallel(ledger, issuer, batch, now, threads, true)? {
                Some(o) => o,
                None => batch_sequential(ledger, issuer, batch, now)?,
            },
        };
        // The batch is recorded: its rows count as done even if writing
        // their files fails below (a resumed run writes those).
        for o in &outcomes {
            progress(o);
        }
        if let Some(dir) = out_dir {
            let records: Vec<&Record> = outcomes
                .iter()
                .filter_map(|o| match o {
                    Outcome::Issued(r) | Outcome::Skipped(r) => Some(&**r),
                    Outcome::Refused(_) => None,
                })
                .collect();
            summary.files += write_files(dir, &records)?;
        }
        for o in outcomes {
            match o {
                Outcome::Issued(_) => summary.issued += 1,
                Outcome::Skipped(_) => summary.skipped += 1,
                Outcome::Refused(e) => summary.refused.push(e),
            }
        }
    }
    Ok(summary)
}

/// What a run that stopped half-way recorded (the error that stopped it
/// follows, and is only about the batch it was in).
fn stopped_text(recorded: (usize, usize), dir: &Path) -> String {
    let (issued, skipped) = recorded;
    format!(
        "the run stopped after {} row(s) were recorded in the ledger ({issued} issued, {skipped} already issued): their files are in {} or the next run writes them; the rows after them were not issued. Fix the cause below and run the same command again: recorded rows are skipped",
        issued + skipped,
        dir.display()
    )
}

/// The progress bar's time left: the rows left at the average rate so
/// far, once a second has passed and a row is done (before that, any
/// estimate is a guess).
#[must_use]
pub fn eta_text(done: u64, total: Option<u64>, elapsed: core::time::Duration) -> String {
    let Some(total) = total else {
        return String::new();
    };
    if done == 0 || elapsed < core::time::Duration::from_secs(1) {
        return "eta ...".into();
    }
    let left = total.saturating_sub(done);
    let secs = elapsed.as_secs_f64() * (left as f64) / (done as f64);
    if secs < 60.0 {
        format!("eta {}s", secs.ceil())
    } else {
        format!(
            "eta {}m{:02}s",
            (secs / 60.0).floor(),
            (secs % 60.0).floor()
        )
    }
}

/// `tessera issue --bulk CSV -o DIR`.
///
/// # Errors
/// [`Error::BulkPartial`] (exit 6) when rows were refused, and the errors
/// of [`prepare`] and [`issue_rows`].
pub fn run_command(ctx: &Ctx, a: &IssueArgs, csv: &Path) -> Result<(), Error> {
    let Some(dir) = a.out.output.as_deref().filter(|p| p.as_os_str() != "-") else {
        return Err(Error::Usage(
            "--bulk writes one license file per row: name the output folder with -o DIR".into(),
        ));
    };
    if a.approval.is_some() {
        return Err(Error::Usage(
            "--approval applies to one change, not to --bulk".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    if !std::fs::metadata(dir).map_err(Error::io(dir))?.is_dir() {
        return Err(Error::Usage(format!(
            "-o {}: --bulk writes into a folder, and this is not one",
            dir.display()
        )));
    }
    let stale = crate::output::remove_stale_temps(dir);
    if stale > 0 {
        note(&format!(
            "removed {stale} temporary file(s) an interrupted run left in {}",
            dir.display()
        ));
    }
    // Unlike the other signing commands, the CSV is read after the key
    // (and before the ledger): see `commands::session`.
    let (signing, ()) = Signing::load(ctx, &a.key, || Ok(()))?;
    let (rows, mut refused) = prepare(csv, a.order.as_deref(), ctx.request_check())?;
    let total = rows.len() + refused.len();
    let mut ledger = signing.ledger(ctx)?;
    let issuer = signing.issuer();
    let bar = ProgressBar::with_draw_target(
        Some(u64::try_from(rows.len()).unwrap_or(u64::MAX)),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} rows, {per_sec}, {eta}") {
        // indicatif's own estimate starts from a guess ("57s" for a run of
        // half a second): the estimate here is the average so far.
        bar.set_style(style.with_key(
            "eta",
            |s: &indicatif::ProgressState, w: &mut dyn core::fmt::Write| {
                let _ = w.write_str(&eta_text(s.pos(), s.len(), s.elapsed()));
            },
        ));
    }
    let mut outcomes = Vec::with_capacity(if a.out.json { rows.len() } else { 0 });
    // Rows recorded so far (issued, already issued): what a run that stops
    // half-way leaves in the ledger.
    let mut recorded = (0usize, 0usize);
    let result = issue_rows(
        &mut ledger,
        &issuer,
        &rows,
        a.batch_size,
        a.threads.unwrap_or_else(default_threads),
        ctx.now,
        Some(dir),
        |o| {
            bar.inc(1);
            match o {
                Outcome::Issued(_) => recorded.0 += 1,
                Outcome::Skipped(_) => recorded.1 += 1,
                Outcome::Refused(_) => {}
            }
            if a.out.json {
                outcomes.push(o.clone());
            }
        },
    );
    bar.finish_and_clear();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            if recorded != (0, 0) {
                note(&stopped_text(recorded, dir));
            }
            return Err(e);
        }
    };
    refused.extend(summary.refused.iter().cloned());
    refused.sort_by_key(|r| r.line);
    let csv_name = csv.display();
    for r in &refused {
        note(&format!("{csv_name}:{}: refused: {}", r.line, r.message));
    }
    note(&format!(
        "{} row(s): {} issued, {} already issued (skipped), {} refused; {} file(s) written to {}",
        total,
        summary.issued,
        summary.skipped,
        refused.len(),
        summary.files,
        dir.display()
    ));
    if a.out.json {
        // Issue order is row order (`issue_rows`).
        let mut results: Vec<(u64, serde_json::Value)> = rows
            .iter()
            .zip(&outcomes)
            .filter_map(|(row, o)| {
                let (outcome, r) = match o {
                    Outcome::Issued(r) => ("issued", r),
                    Outcome::Skipped(r) => ("skipped", r),
                    Outcome::Refused(_) => return None,
                };
                Some((
                    row.line,
                    serde_json::json!({
                        "line": row.line,
                        "outcome": outcome,
                        "serial": r.row.serial,
                        "sequence": r.row.sequence,
                        "license_id": hex::encode(r.row.license_id),
                        "file": dir.join(file_name(r)).display().to_string(),
                    }),
                ))
            })
            .collect();
        results.extend(refused.iter().map(|r| {
            (
                r.line,
                serde_json::json!({"line": r.line, "outcome": "refused", "message": r.message}),
            )
        }));
        results.sort_by_key(|(line, _)| *line);
        crate::commands::print_json(&serde_json::json!({
            "csv": csv.display().to_string(),
            "output": dir.display().to_string(),
            "rows": total,
            "issued": summary.issued,
            "skipped": summary.skipped,
            "refused": refused.len(),
            "files": summary.files,
            "results": results.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        }))?;
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Error::BulkPartial {
            refused: refused.len(),
            total,
        })
    }
}

#[cfg(test)]
mod tests;
