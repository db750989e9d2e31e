//! Orders: what a customer bought for one PBX (TOML, or JSON for a file
//! ending in `.json`), and their resolution against the catalog into the
//! codes a license carries.
//!
//! The format is documented in `issuer/README.md` with the example
//! `issuer/examples/order.toml`.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_verifier::claims::{limits, Addon, Cycle, Feature, FeatureCategory, Platform, Profile};
use tessera_verifier::encode::{BaseData, EntitlementsData, SharingData};

use crate::calendar::{parse_time, BadTime, CycleName, PlatformName};
use crate::catalog::Catalog;
use crate::validate::{self, debug_literal, quoted_name, shown, InvalidInput};

/// Why an order was refused before any policy rule was looked at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The order file could not be read.
    #[error("cannot read order {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// TOML / JSON syntax, a missing field, a wrong type, an unknown
    /// field or value, or a date that is none.
    #[error("order {file}, line {line}{}: {reason}; {EXAMPLE_HINT}", column.map(|c| format!(", column {c}")).unwrap_or_default())]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (bytes from the start of the line), when the
        /// parser says it (JSON).
        column: Option<usize>,
        /// What is wrong, naming the field, and what is expected.
        reason: String,
    },
    /// A name the catalog does not know.
    #[error("unknown {kind} `{name}` in the order; the catalog knows: {known}")]
    UnknownName {
        /// Profile, feature, package, base license, add-on or service.
        kind: &'static str,
        /// The name given.
        name: String,
        /// The names the catalog has.
        known: String,
    },
    /// A date that could not be read.
    #[error("order field {field}: {source}")]
    BadDate {
        /// Which field.
        field: String,
        /// The cause.
        source: BadTime,
    },
    /// A sharing role that is not `none`, `server` or `client-of SERIAL`.
    #[error("sharing `{}` is not `none`, `server` or `client-of SW-SERIAL`", shown(.0))]
    BadSharing(String),
    /// More entries than a license can carry.
    #[error("the order has {count} {what}; a license carries at most {cap}")]
    TooMany {
        /// Which collection.
        what: &'static str,
        /// How many the order has.
        count: usize,
        /// The format's cap.
        cap: usize,
    },
    /// A text field with a control or format character, a serial outside
    /// the ledger's grammar, or a count above the catalog's bound.
    #[error("order: {0}")]
    Invalid(#[from] InvalidInput),
    /// A text field over its format cap.
    #[error("order field {field} is {len} bytes; the license format allows at most {cap}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        cap: usize,
    },
}

/// A feature line of an order: a quantity, or a table with the quantity
/// and the hidden flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FeatureOrder {
    /// `name = 4`.
    Quantity(u32),
    /// `name = { quantity = 4, hidden = true }`.
    Detailed {
        /// Quantity; the catalog default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quantity: Option<u32>,
        /// Hidden flag; the catalog's when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hidden: Option<bool>,
    },
}

/// The table form of a feature line.
#[derive(Deserialize)]
struct FeatureTable {
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    hidden: Option<bool>,
}

impl<'de> Deserialize<'de> for FeatureOrder {
    // By hand, not `untagged`: an untagged enum reads the whole value
    // before it fails, and the parser then reports the end of the
    // `[features]` table, not the line (or JSON path) of the entry.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Line;
        impl<'de> serde::de::Visitor<'de> for Line {
            type Value = FeatureOrder;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(FEATURE_EXPECTED)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FeatureOrder, E> {
                u32::try_from(v)
                    .map(FeatureOrder::Quantity)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FeatureOrder, E> {
                u64::try_from(v)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<FeatureOrder, A::Error> {
                let t =
                    FeatureTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(FeatureOrder::Detailed {
                    quantity: t.quantity,
                    hidden: t.hidden,
                })
            }
        }
        d.deserialize_any(Line)
    }
}

/// What a feature line must be, as its errors say.
const FEATURE_EXPECTED: &str =
    "a quantity (a whole number) or a table such as { quantity = 10, hidden = true }";

/// A base license line: count and add-on counts by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseOrder {
    /// Licensed count.
    pub count: u32,
    /// Add-on counts by name.
    #[serde(default)]
    pub addons: BTreeMap<String, u32>,
}

/// A service line; the service runs from `start` (default: the term
/// start, or the change date for a service added by a change) to the term
/// end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceOrder {
    /// RFC 3339 or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// A device attached to the PBX (phones, gateways ...), kept in the ledger
/// and taken over by a replacement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachedDevice {
    /// Device model.
    pub model: String,
    /// MAC address or serial.
    pub id: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
}

/// A user assignment from a mass configuration (bulk CSV): extension key,
/// number, user, base license and add-ons. Kept in the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// Extension key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extension: String,
    /// Phone number.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub number: String,
    /// User (name or e-mail).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Base license name the add-ons belong to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base: String,
    /// Add-on names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addons: Vec<String>,
}

/// The sharing role of an order: `none`, `server` or `client-of SERIAL`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SharingOrder {
    /// Not shared.
    #[default]
    None,
    /// Shares its user licenses with clients.
    Server,
    /// Uses the licenses of the server with this SW serial.
    ClientOf(String),
}

impl TryFrom<String> for SharingOrder {
    type Error = OrderError;

    fn try_from(s: String) -> Result<Self, OrderError> {
        let t = s.trim();
        match t {
            "none" => Ok(Self::None),
            "server" => Ok(Self::Server),
            _ => match t.strip_prefix("client-of") {
                Some(rest) if rest.starts_with(char::is_whitespace) && !rest.trim().is_empty() => {
                    Ok(Self::ClientOf(rest.trim().to_owned()))
                }
                _ => Err(OrderError::BadSharing(s)),
            },
        }
    }
}

impl From<SharingOrder> for String {
    fn from(s: SharingOrder) -> Self {
        match s {
            SharingOrder::None => "none".into(),
            SharingOrder::Server => "server".into(),
            SharingOrder::ClientOf(serial) => format!("client-of {serial}"),
        }
    }
}

/// An order for one PBX, as written by vendor operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Customer name (≤ 128 bytes).
    pub customer: String,
    /// PBX name (≤ 64 bytes).
    #[serde(default)]
    pub pbx_name: String,
    /// Appliance / image model, shown in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The catalog policy a new PBX gets at its first activation (an
    /// appliance entered in the registry then); `None`: its platform's
    /// default. A PBX in the registry keeps the policy it recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `hw`, `vm` or `cloud`.
    pub platform: PlatformName,
    /// `monthly`, `yearly`, `5y` or `lifetime`.
    pub cycle: CycleName,
    /// Start of the term: RFC 3339 or `YYYY-MM-DD`.
    pub term_start: String,
    /// An air-gapped PBX gets a lease up to its term end (capped by the
    /// platform's `max_lease`) instead of the short online lease.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub air_gapped: bool,
    /// User-profile counts by name (zero allowed).
    #[serde(default)]
    pub profiles: BTreeMap<String, u32>,
    /// Features by name.
    #[serde(default)]
    pub features: BTreeMap<String, FeatureOrder>,
    /// Packages by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// Base licenses by name.
    #[serde(default)]
    pub bases: BTreeMap<String, BaseOrder>,
    /// Storage units (1 unit = the catalog's `unit_gb`).
    #[serde(default)]
    pub storage_units: u32,
    /// Services by name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceOrder>,
    /// Sharing role.
    #[serde(default)]
    pub sharing: SharingOrder,
    /// Attached devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<AttachedDevice>,
    /// User assignments (bulk issuance).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignments: Vec<Assignment>,
}

/// A service resolved to its code and start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedService {
    /// Catalog code.
    pub code: u16,
    /// Catalog name.
    pub name: String,
    /// Explicit start, if the order gave one.
    pub start: Option<DateTime<Utc>>,
}

/// An order resolved against the catalog: codes, quantities and dates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Platform.
    pub platform: Platform,
    /// Payment cycle.
    pub cycle: Cycle,
    /// Term start.
    pub term_start: DateTime<Utc>,
    /// Entitlements (empty for a sharing client).
    pub entitlements: EntitlementsData,
    /// Services.
    pub services: Vec<ResolvedService>,
    /// Sharing role.
    pub sharing: SharingData,
    /// Air-gapped lease.
    pub air_gapped: bool,
}

impl Resolved {
    /// Total user licenses: the sum of the profile counts.
    #[must_use]
    pub fn total_users(&self) -> u64 {
        total_users(&self.entitlements)
    }
}

/// The sum of the profile counts of a license.
#[must_use]
pub fn total_users(e: &EntitlementsData) -> u64 {
    e.profiles.iter().map(|p| u64::from(p.count)).sum()
}

/// Where an order error sends the user: the example the binary carries.
pub const EXAMPLE_HINT: &str =
    "`tessera catalog example-order` prints an order with every field, each explained";

/// The example order (every field, commented): what `tessera catalog
/// example-order` prints.
pub const EXAMPLE: &str = include_str!("../examples/order.toml");

/// The table and key of the TOML line `line` (1-based) of `text`:
/// `profiles.PBX-BASIC` for `PBX-BASIC = "ten"` under `[profiles]`.
fn toml_field(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.get(line.checked_sub(1)?)?.trim();
    let key = at
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"'))?;
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let before = lines.get(..line - 1).unwrap_or_default();
    let table = before
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|header| {
            let name = header.trim_matches(|c| c == '[' || c == ']').trim();
            if !header.starts_with("[[") {
                return name.to_owned();
            }
            // An entry of a list of tables (`[[devices]]`): which one,
            // counted from 1 as every order error counts entries.
            let n = before.iter().filter(|l| l.trim() == header).count();
            format!("{name}[{n}]")
        });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

/// What serde expects, in an operator's words.
fn expected_words(what: &str) -> String {
    let what = what.trim();
    match what {
        "u8" | "u16" | "u32" | "u64" | "usize" => {
            "a whole number (0 or more, no quotes)".to_owned()
        }
        "a string" => "text in double quotes".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "a list in brackets, [\"a\", \"b\"]".to_owned(),
        "a map" => "a table".to_owned(),
        w if w.starts_with("struct ") => "a table".to_owned(),
        w => w.to_owned(),
    }
}

/// What serde found, in an operator's words.
fn found_words(what: &str) -> String {
    let what = what.trim();
    match what.split_once(' ') {
        Some(("string", v)) => match debug_literal(v) {
            Some(text) => format!("the text \"{}\"", shown(&text)),
            None => format!("the text {}", shown(v)),
        },
        Some(("integer", v)) => format!("the number {}", v.trim_matches('`')),
        Some(("floating", v)) => format!(
            "the number {}",
            v.trim_start_matches("point ").trim_matches('`')
        ),
        Some(("boolean", v)) => v.trim_matches('`').to_owned(),
        _ if what == "map" => "a table, or a date without double quotes".to_owned(),
        _ if what == "sequence" => "a list".to_owned(),
        _ => shown(what),
    }
}

/// A parser's message about an order, said for an operator: what is
/// wrong with which field (`field`: the one at the error's line, when
/// known; `table`: the table a missing field belongs in), and what is
/// expected instead.
fn explain(message: &str, field: Option<&str>, table: Option<&str>) -> String {
    let message = message.trim();
    // serde_json adds where; the error says the line itself.
    let message = message
        .rsplit_once(" at line ")
        .filter(|(_, at)| {
            at.split_whitespace()
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .map_or(message, |(m, _)| m);
    let named = |rest: &str| -> String {
        match field {
            Some(f) => format!("field `{}`: {rest}", shown(f)),
            None => rest.to_owned(),
        }
    };
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        let table = table
            .map(|t| format!(" of [{}]", shown(t)))
            .unwrap_or_default();
        return format!("the required field `{name}`{table} is missing");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, known) = quoted_name(rest);
        let known = known
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .replace('`', "");
        let known = if known.trim().is_empty() || known.starts_with(", there are no fields") {
            String::new()
        } else {
            format!(" (known here: {known})")
        };
        // The field's path where the parser gave it (`devices[2].colour`).
        let name = match field {
            Some(f) if f.len() > name.len() && f.ends_with(name) => f,
            _ => name,
        };
        return format!("unknown field `{}`{known}", shown(name));
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, known) = quoted_name(rest);
        let known = known
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .replace('`', "");
        return named(&format!("`{}` is not one of: {known}", shown(value)));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            return named(&format!(
                "expected {}, found {}",
                expected_words(expected),
                found_words(found)
            ));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            return named(&format!(
                "expected {}, found {}",
                expected_words(expected),
                found_words(found)
            ));
        }
    }
    // A message of the parser's that none of the above reads may still
    // quote a value: a long one is shown as any quoted value is.
    if message.len() > validate::LONG_MESSAGE {
        return named(&shown(message));
    }
    named(message)
}

/// The first line of `text` (1-based) that sets `key` (`key =` at the
/// start of a line), after line `from`.
fn line_setting(text: &str, key: &str, from: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
}

/// Where a JSON parser stopped: an object's key, or an array's entry
/// (counted from 1, as every order error counts entries).
enum JsonFrame {
    Object(Option<String>),
    Array(usize),
}

/// The path of the field at `line` and `column` of the JSON `text`, as
/// serde_json reports where it stopped (1-based line, bytes into it):
/// `profiles.PBX-BASIC`, `assignments[3].user`; `None` at the top level.
/// The text before that point is walked for its objects, arrays, keys
/// and commas, strings skipped whole, so a brace in a value changes
/// nothing.
fn json_path(text: &str, line: usize, column: usize) -> Option<String> {
    let start = if line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    let end = start.saturating_add(column).min(text.len());
    let bytes = text.as_bytes();
    let mut stack: Vec<JsonFrame> = Vec::new();
    // Whether the next string in the innermost object is a key.
    let mut want_key = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i).filter(|_| i < end) {
        match b {
            b'{' => {
                stack.push(JsonFrame::Object(None));
                want_key = true;
            }
            b'[' => stack.push(JsonFrame::Array(1)),
            b'}' | b']' => {
                stack.pop();
                want_key = false;
            }
            b',' => match stack.last_mut() {
                Some(JsonFrame::Object(_)) => want_key = true,
                Some(JsonFrame::Array(n)) => *n += 1,
                None => {}
            },
            b'"' => {
                let mut j = i + 1;
                while let Some(&c) = bytes.get(j) {
                    match c {
                        b'\\' => j += 2,
                        b'"' => break,
                        _ => j += 1,
                    }
                }
                if want_key {
                    if let Some(JsonFrame::Object(key)) = stack.last_mut() {
                        let literal = text.get(i..=j).unwrap_or("");
                        *key = Some(
                            serde_json::from_str::<String>(literal)
                                .unwrap_or_else(|_| text.get(i + 1..j).unwrap_or("").to_owned()),
                        );
                    }
                    want_key = false;
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            JsonFrame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            JsonFrame::Array(n) => {
                path.push('[');
                path.push_str(&n.to_string());
                path.push(']');
            }
            JsonFrame::Object(None) => {}
        }
    }
    (!path.is_empty()).then_some(path)
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

impl Order {
    /// Reads an order file: JSON when the name ends in `.json`, else TOML.
    ///
    /// # Errors
    /// [`OrderError::Read`], [`OrderError::Syntax`].
    pub fn load(path: &Path) -> Result<Self, OrderError> {
        let text = tessera_keys::storage::read_regular_text(path, crate::output::MAX_INPUT)
            .map_err(|source| OrderError::Read {
                path: path.display().to_string(),
                source,
            })?;
        // Standard input (`-`) is JSON when it starts like JSON.
        let json = if tessera_keys::storage::is_stdio(path) {
            text.trim_start().starts_with('{')
        } else {
            path.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        };
        let file = path.display().to_string();
        let order = Self::parse(&file, &text, json)?;
        order.check_dates(&file, &text)?;
        Ok(order)
    }

    /// Its dates read as dates: a wrong one is named with the file and
    /// its line, when the order is read, not later in the middle of an
    /// issuance.
    fn check_dates(&self, file: &str, text: &str) -> Result<(), OrderError> {
        let bad = |field: String, line: Option<usize>, e: BadTime| OrderError::Syntax {
            file: file.to_owned(),
            line: line.unwrap_or(1),
            column: None,
            reason: format!("field `{}`: {e}", shown(&field)),
        };
        if let Err(e) = parse_time(&self.term_start) {
            let line = line_setting(text, "term_start", 0)
                .or_else(|| line_setting(text, "\"term_start\"", 0));
            return Err(bad("term_start".into(), line, e));
        }
        for (name, service) in &self.services {
            if let Some(Err(e)) = service.start.as_deref().map(parse_time) {
                let header = text
                    .lines()
                    .position(|l| l.contains(name.as_str()))
                    .unwrap_or(0);
                let line = line_setting(text, "start", header)
                    .or_else(|| line_setting(text, "\"start\"", header));
                return Err(bad(format!("services.{name}.start"), line, e));
            }
        }
        Ok(())
    }

    /// Parses order text; `file` names it in errors.
    ///
    /// # Errors
    /// [`OrderError::Syntax`].
    pub fn parse(file: &str, text: &str, json: bool) -> Result<Self, OrderError> {
        if json {
            serde_json::from_str(text).map_err(|e| {
                // A missing field is found at the end of its object,
                // after the object: the path is the object's.
                let field = json_path(text, e.line(), e.column());
                OrderError::Syntax {
                    file: file.to_owned(),
                    line: e.line().max(1),
                    column: Some(e.column().max(1)),
                    reason: explain(&e.to_string(), field.as_deref(), field.as_deref()),
                }
            })
        } else {
            toml::from_str(text).map_err(|e| {
                let line = e.span().map_or(1, |s| line_of(text, s.start));
                let field = toml_field(text, line);
                // The line of a missing field is a key of its table.
                let table = field
                    .as_deref()
                    .and_then(|f| f.rsplit_once('.'))
                    .map(|(t, _)| t);
                OrderError::Syntax {
                    file: file.to_owned(),
                    line,
                    column: None,
                    reason: explain(e.message(), field.as_deref(), table),
                }
            })
        }
    }

    /// The order as compact JSON, the form kept in the ledger.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The term start.
    ///
    /// # Errors
    /// [`OrderError::BadDate`].
    pub fn term_start(&self) -> Result<DateTime<Utc>, OrderError> {
        parse_time(&self.term_start).map_err(|source| OrderError::BadDate {
            field: "term_start".into(),
            source,
        })
    }

    /// Resolves names to catalog codes and fills in quantities.
    ///
    /// Feature quantities: an explicit quantity wins; otherwise the
    /// catalog's `default_quantity`, else the total user count for a
    /// general feature and 1 for the others. Every core feature of the
    /// catalog is included (it is free). A sharing client gets no
    /// entitlements at all, whatever the order says: the policy refuses
    /// an order that gives it some.
    ///
    /// # Errors
    /// [`OrderError::UnknownName`], [`OrderError::BadDate`],
    /// [`OrderError::TooMany`], [`OrderError::TooLong`].
    pub fn resolve(&self, catalog: &Catalog) -> Result<Resolved, OrderError> {
        self.check_text()?;
        check_len("customer", &self.customer, limits::CUSTOMER_LEN)?;
        check_len("pbx_name", &self.pbx_name, limits::NAME_LEN)?;
        let unknown = |kind: &'static str, name: &str, known: String| OrderError::UnknownName {
            kind,
            name: shown(name),
            known,
        };
        let bounded = |what: &'static str, name: &str, count: u64, max: u32| {
            if count > u64::from(max) {
                Err(InvalidInput::TooMany {
                    what,
                    name: shown(name),
                    count,
                    max,
                })
            } else {
                Ok(())
            }
        };
        let mut profiles = Vec::new();
        for (name, count) in &self.profiles {
            let p = catalog
                .profile(name)
                .ok_or_else(|| unknown("profile", name, Catalog::names(&catalog.profiles)))?;
            bounded(
                "profile",
                &p.name,
                (*count).into(),
                catalog.max_count(p.max),
            )?;
            profiles.push(Profile {
                code: p.code,
                count: *count,
            });
        }
        let e0 = EntitlementsData {
            profiles,
            ..EntitlementsData::default()
        };
        let users = u32::try_from(total_users(&e0)).unwrap_or(u32::MAX);
        let default_quantity = |def: &crate::catalog::FeatureDef| {
            def.default_quantity.unwrap_or(match def.category {
                FeatureCategory::General => users,
                FeatureCategory::Instance | FeatureCategory::Core => 1,
            })
        };
        let mut features: BTreeMap<u16, Feature> = BTreeMap::new();
        for def in catalog
            .features
            .iter()
            .filter(|f| f.category == FeatureCategory::Core)
        {
            features.insert(
                def.code,
                Feature {
                    code: def.code,
                    category: def.category,
                    quantity: default_quantity(def),
                    hidden: def.hidden,
                },
            );
        }
        for name in &self.packages {
            let pkg = catalog
                .package(name)
                .ok_or_else(|| unknown("package", name, catalog.package_names()))?;
            for f in &pkg.features {
                if let Some(def) = catalog.feature(f) {
                    features.entry(def.code).or_insert(Feature {
                        code: def.code,
                        category: def.category,
                        quantity: default_quantity(def),
                        hidden: def.hidden,
                    });
                }
            }
        }
        for (name, line) in &self.features {
            let def = catalog
                .feature(name)
                .ok_or_else(|| unknown("feature", name, catalog.feature_names()))?;
            let (quantity, hidden) = match line {
                FeatureOrder::Quantity(q) => (Some(*q), None),
                FeatureOrder::Detailed { quantity, hidden } => (*quantity, *hidden),
            };
            // A quantity the order gives; the defaults (at most the total
            // of the bounded profile counts) need no bound of their own.
            if let Some(q) = quantity {
                bounded("feature", &def.name, q.into(), catalog.max_count(def.max))?;
            }
            features.insert(
                def.code,
                Feature {
                    code: def.code,
                    category: def.category,
                    quantity: quantity.unwrap_or_else(|| default_quantity(def)),
                    hidden: hidden.unwrap_or(def.hidden),
                },
            );
        }

        let mut bases = Vec::new();
        for (name, b) in &self.bases {
            let def = catalog
                .base(name)
                .ok_or_else(|| unknown("base license", name, Catalog::names(&catalog.bases)))?;
            let mut addons = Vec::new();
            for (a, count) in &b.addons {
                let ad = catalog
                    .addon(a)
                    .ok_or_else(|| unknown("add-on", a, Catalog::names(&catalog.addons)))?;
                bounded(
                    "add-on",
                    &ad.name,
                    (*count).into(),
                    catalog.max_count(ad.max),
                )?;
                addons.push(Addon {
                    code: ad.code,
                    count: *count,
                });
            }
            cap("add-ons of one base license", addons.len(), limits::ADDONS)?;
            bounded(
                "base license",
                &def.name,
                b.count.into(),
                catalog.max_count(def.max),
            )?;
            bases.push(BaseData {
                code: def.code,
                count: b.count,
                addons,
            });
        }
        let mut services = Vec::new();
        for (name, s) in &self.services {
            let def = catalog
                .service(name)
                .ok_or_else(|| unknown("service", name, Catalog::names(&catalog.services)))?;
            let start = s
                .start
                .as_deref()
                .map(|t| {
                    parse_time(t).map_err(|source| OrderError::BadDate {
                        field: format!("services.{name}.start"),
                        source,
                    })
                })
                .transpose()?;
            services.push(ResolvedService {
                code: def.code,
                name: def.name.clone(),
                start,
            });
        }
        let sharing = match &self.sharing {
            SharingOrder::None => SharingData::None,
            SharingOrder::Server => SharingData::Server,
            SharingOrder::ClientOf(s) => {
                check_len("sharing server serial", s, limits::SERIAL_LEN)?;
                validate::sw_serial("sharing (client-of)", s)?;
                SharingData::Client(s.clone())
            }
        };
        bounded(
            "storage",
            "storage_units",
            self.storage_units.into(),
            catalog.max_storage_units,
        )?;
        let mut entitlements = EntitlementsData {
            profiles: e0.profiles,
            features: features.into_values().collect(),
            bases,
            storage_units: self.storage_units,
        };
        cap("profiles", entitlements.profiles.len(), limits::PROFILES)?;
        cap("features", entitlements.features.len(), limits::FEATURES)?;
        cap("base licenses", entitlements.bases.len(), limits::BASES)?;
        cap("services", services.len(), limits::SERVICES)?;
        entitlements.profiles.sort_by_key(|p| p.code);
        entitlements.bases.sort_by_key(|b| b.code);
        if matches!(sharing, SharingData::Client(_)) {
            entitlements = EntitlementsData::default();
        }
        Ok(Resolved {
            platform: self.platform.platform(),
            cycle: self.cycle.cycle(),
            term_start: self.term_start()?,
            entitlements,
            services,
            sharing,
            air_gapped: self.air_gapped,
        })
    }

    /// Checks every free-text field of the order (customer, PBX name,
    /// model, attached devices, user assignments) with the one text rule
    /// of [`validate::text`], naming the field.
    ///
    /// # Errors
    /// [`OrderError::Invalid`].
    pub fn check_text(&self) -> Result<(), OrderError> {
        // The field's name is made only for a refusal.
        fn field(name: impl FnOnce() -> String, value: &str) -> Result<(), OrderError> {
            if validate::text("", value).is_ok() {
                return Ok(());
            }
            Ok(validate::text(&name(), value)?)
        }
        validate::text("customer", &self.customer)?;
        validate::text("pbx_name", &self.pbx_name)?;
        if let Some(m) = &self.model {
            validate::text("model", m)?;
        }
        for (i, d) in self.devices.iter().enumerate() {
            let n = i + 1;
            field(|| format!("devices[{n}].model"), &d.model)?;
            field(|| format!("devices[{n}].id"), &d.id)?;
            field(|| format!("devices[{n}].label"), &d.label)?;
        }
        for (i, a) in self.assignments.iter().enumerate() {
            let n = i + 1;
            field(|| format!("assignments[{n}].extension"), &a.extension)?;
            field(|| format!("assignments[{n}].number"), &a.number)?;
            field(|| format!("assignments[{n}].user"), &a.user)?;
            field(|| format!("assignments[{n}].base"), &a.base)?;
            for addon in &a.addons {
                field(|| format!("assignments[{n}].addons"), addon)?;
            }
        }
        for (name, s) in &self.services {
            if let Some(start) = &s.start {
                field(|| format!("services.{}.start", shown(name)), start)?;
            }
        }
        Ok(())
    }

    /// Whether the order, as written, grants anything: user profiles,
    /// features, packages, base licenses, storage or services (core
    /// features, added to every license, do not count).
    #[must_use]
    pub fn grants_anything(&self) -> bool {
        self.profiles.values().any(|c| *c > 0)
            || !self.features.is_empty()
            || !self.packages.is_empty()
            || !self.bases.is_empty()
            || self.storage_units > 0
            || !self.services.is_empty()
    }
}

fn check_len(field: &'static str, value: &str, cap: usize) -> Result<(), OrderError> {
    if value.len() > cap {
        return Err(OrderError::TooLong {
            field,
            len: value.len(),
            cap,
        });
    }
    Ok(())
}

fn cap(what: &'static str, count: usize, cap: usize) -> Result<(), OrderError> {
    if count > cap {
        return Err(OrderError::TooMany { what, count, cap });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
