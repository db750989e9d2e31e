//! `tessera keygen`, `key public` and `keyring ...`: thin wrappers over
//! `tessera-keys` and `tessera-signer`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_keys::{parse_kid, KeyError, KeyRecord, Keyring, PublicKeyInfo, Signer};
use tessera_signer::{
    read_public_key_file, write_public_key_file, KeyLocation, KeyOrigin, PassphrasePurpose,
    PassphraseSource, Pkcs11Signer,
};
use tessera_verifier::text::escaped;

use super::{pkcs11_options, print, print_json, Ctx};
use crate::calendar::{parse_time, rfc3339};
use crate::cli::{ExportFormat, KeyCommand, KeygenArgs, KeyringCommand};
use crate::error::Error;
use crate::output::{note, Target};

/// The public key file written next to a private key: `FILE.pub`.
#[must_use]
pub fn public_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Refuses `-` for a file that is written in place (a key, a keyring).
fn named_file(path: &Path, what: &str) -> Result<(), Error> {
    if tessera_keys::storage::is_stdio(path) {
        return Err(Error::Usage(format!(
            "{what} is a file written in place: name a file, not `-`"
        )));
    }
    Ok(())
}

/// Creates the folders above `file` that are missing, with `mode`.
fn create_folder_of(file: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt as _;
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(Error::io(dir)),
        _ => Ok(()),
    }
}

/// What `keygen` checks of the keyring it will add the new key to, before
/// it creates anything: a file (not `-`), no rehearsal time on the live
/// keyring, and a keyring that reads and validates (or none yet).
fn check_keyring_writable(ctx: &Ctx, keyring: &Path, copy: bool) -> Result<(), Error> {
    named_file(keyring, "the keyring")?;
    ctx.refuse_rehearsal_on_keyring(keyring, copy)?;
    load_or_new(keyring).map(drop)
}

fn load_or_new(path: &Path) -> Result<Keyring, Error> {
    if path.exists() {
        Ok(Keyring::load(path)?)
    } else {
        Ok(Keyring::new())
    }
}

/// Adds a public key to a keyring file (created if missing); it becomes
/// active when asked or when the keyring has no active key. Returns
/// whether it is active.
///
/// # Errors
/// [`Error::Key`].
pub fn add_to_keyring(
    keyring: &Path,
    record: KeyRecord,
    activate: bool,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    named_file(keyring, "the keyring")?;
    let mut ring = load_or_new(keyring)?;
    ring.settle(now);
    let kid = record.kid;
    ring.add(record)?;
    if activate {
        ring.activate(&kid, now)?;
    } else if ring.active().is_none() {
        ring.set_active(&kid)?;
    }
    let active = ring.active().is_some_and(|r| r.kid == kid);
    create_folder_of(keyring, 0o755)?;
    ring.save(keyring)?;
    Ok(active)
}

/// `tessera keygen`: returns the new key's public half.
///
/// # Errors
/// [`Error::Key`] (an existing file is never overwritten), [`Error::Usage`].
pub fn generate(ctx: &Ctx, a: &KeygenArgs) -> Result<(PublicKeyInfo, Option<bool>), Error> {
    let out = out_path(a)?;
    named_file(out, "the private key")?;
    let valid_from = ctx.time_or_now(a.valid_from.as_deref())?;
    let pub_path = public_path(out);
    for p in [out, &pub_path] {
        if p.exists() {
            return Err(KeyError::AlreadyExists {
                file: p.to_path_buf(),
            }
            .into());
        }
    }
    let keyring = ctx.keyring_path(a.keyring.as_deref());
    // Everything that can refuse the keyring does so before a key file
    // exists: a refusal after them would leave them behind.
    if let Some(k) = &keyring {
        check_keyring_writable(ctx, k, a.rehearsal_copy)?;
    }
    let passphrase =
        PassphraseSource::from_cli(a.passphrase_file.clone()).obtain(PassphrasePurpose::NewKey)?;
    // Only private keys go there: owner only.
    create_folder_of(out, 0o700)?;
    let info = tessera_signer::generate_to_file(out, &passphrase)?;
    write_public_key_file(&pub_path, &info)?;
    let active = match &keyring {
        Some(k) => Some(add_to_keyring(
            k,
            KeyRecord::new(info.public_key, a.label.clone(), valid_from),
            false,
            ctx.now,
        )?),
        None => None,
    };
    Ok((info, active))
}

/// `tessera keygen`.
///
/// # Errors
/// As [`generate`].
pub fn keygen(ctx: &Ctx, a: &KeygenArgs) -> Result<(), Error> {
    if let Some(uri) = &a.pkcs11 {
        return keygen_pkcs11(ctx, a, uri);
    }
    let (info, active) = generate(ctx, a)?;
    let out = out_path(a)?;
    let keyring = ctx.keyring_path(a.keyring.as_deref());
    if a.json {
        return print_json(&json!({
            "kid": info.kid_hex(),
            "private_key": out.display().to_string(),
            "public_key_file": public_path(out).display().to_string(),
            "public_key": info.to_pem()?,
            "keyring": keyring.as_ref().map(|k| k.display().to_string()),
            "active": active,
        }));
    }
    let mut text = format!(
        "kid {}\nwrote {} (encrypted private key, mode 0600) and {}\n",
        info.kid_hex(),
        out.display(),
        public_path(out).display()
    );
    if let (Some(k), Some(active)) = (&keyring, active) {
        text.push_str(&keyring_note(k, active));
    }
    print(&text)
}

/// The key file `keygen` writes (clap requires `--out` without `--pkcs11`).
fn out_path(a: &KeygenArgs) -> Result<&Path, Error> {
    a.out
        .as_deref()
        .ok_or_else(|| Error::Usage("pass -o FILE (or --pkcs11 URI)".into()))
}

fn keyring_note(keyring: &Path, active: bool) -> String {
    format!(
        "added to keyring {}{}\n",
        keyring.display(),
        if active {
            " as the active signing key"
        } else {
            " (not active: activate it with `tessera keyring activate`)"
        }
    )
}

/// `tessera keygen --pkcs11 URI`: a key pair created in the token (or the
/// one the URI names, adopted), added to the keyring like a file key.
fn keygen_pkcs11(ctx: &Ctx, a: &KeygenArgs, uri: &str) -> Result<(), Error> {
    let valid_from = ctx.time_or_now(a.valid_from.as_deref())?;
    if let Some(k) = ctx.keyring_path(a.keyring.as_deref()) {
        check_keyring_writable(ctx, &k, a.rehearsal_copy)?;
    }
    let (signer, origin) = Pkcs11Signer::generate_or_adopt(uri, &pkcs11_options(&a.token))?;
    let info = signer.public_key_info();
    let keyring = ctx.keyring_path(a.keyring.as_deref());
    let mut json = json!({
        "kid": info.kid_hex(),
        "pkcs11": signer.key_uri(),
        "token": signer.token_label(),
        "created": origin == KeyOrigin::Created,
        "public_key": info.to_pem()?,
        "keyring": keyring.as_ref().map(|k| k.display().to_string()),
        "active": null,
    });
    let mut text = format!(
        "kid {}\n{} {} in token '{}': the private key never leaves the token\n",
        info.kid_hex(),
        match origin {
            KeyOrigin::Created => "created Ed25519 key",
            KeyOrigin::Adopted => "adopted the existing Ed25519 key",
        },
        escaped(signer.key_uri()),
        escaped(signer.token_label()),
    );
    if let Some(k) = &keyring {
        // Adopting a key the keyring has already is a repeat, not an error.
        let known = load_or_new(k)?
            .get(&info.kid)
            .is_some_and(|r| r.public_key == info.public_key);
        if known {
            text.push_str(&format!("already in keyring {}\n", k.display()));
            json["active"] = json!(load_or_new(k)?.active().map(|r| r.kid) == Some(info.kid));
        } else {
            let record = KeyRecord::new(info.public_key, a.label.clone(), valid_from);
            let active = add_to_keyring(k, record, false, ctx.now)?;
            json["active"] = json!(active);
            text.push_str(&keyring_note(k, active));
        }
    }
    if a.json {
        return print_json(&json);
    }
    text.push_str(&info.to_pem()?);
    print(&text)
}

/// `tessera key ...`.
///
/// # Errors
/// [`Error::Key`].
pub fn key(ctx: &Ctx, c: &KeyCommand) -> Result<(), Error> {
    let KeyCommand::Public {
        key,
        passphrase_file,
        token,
    } = c;
    let key = &ctx.key_path(key.as_deref())?;
    if let KeyLocation::Pkcs11(uri) = KeyLocation::from_arg(key) {
        let info = Pkcs11Signer::open(&uri, &pkcs11_options(token))?.public_key_info();
        return print(&format!("kid {}\n{}", info.kid_hex(), info.to_pem()?));
    }
    let info = match read_public_key_file(key) {
        Ok(info) => info,
        Err(KeyError::PrivateKeyGiven { .. }) => {
            // What the private key file is, before its passphrase.
            tessera_signer::check_key_file(key)?;
            let pass = PassphraseSource::from_cli(passphrase_file.clone())
                .obtain(PassphrasePurpose::Unlock)?;
            tessera_signer::load_signer(key, &pass)?.public_key_info()
        }
        Err(e) => return Err(e.into()),
    };
    print(&format!("kid {}\n{}", info.kid_hex(), info.to_pem()?))
}

fn record_json(r: &KeyRecord, active: bool) -> serde_json::Value {
    json!({
        "kid": r.kid_hex(),
        "label": r.label,
        "public_key": hex::encode(r.public_key),
        "valid_from": rfc3339(r.valid_from),
        "valid_until": r.valid_until.map(rfc3339),
        "retired": r.retired,
        "active": active,
    })
}

/// The start of the window of a key `keyring add` adds: `--valid-from`,
/// else now, or, when the ledger the configuration names holds licenses
/// or checkpoints this key signed before now, the earliest of them. A
/// window starting later would make every license the key signed before
/// it invalid at the sites ("the signing key was not valid at the
/// license's issue time") and the ledger fail `ledger verify`: adding a
/// key that already signs to a new keyring must not do that. The time
/// chosen is printed. An explicit `--valid-from` is kept, with a warning
/// when it leaves such licenses out.
///
/// No ledger named, or a ledger file that does not exist yet: nothing was
/// signed there, now. A ledger that cannot be read is an error without
/// `--valid-from` (the default would be a guess).
fn add_valid_from(
    ctx: &Ctx,
    kid: &tessera_verifier::KeyId,
    valid_from: Option<&str>,
) -> Result<DateTime<Utc>, Error> {
    let explicit = valid_from
        .map(|t| parse_time(t).map_err(|e| Error::Usage(e.to_string())))
        .transpose()?;
    let first = match ctx.ledger_setting() {
        Err(_) => None,
        Ok(setting)
            if !crate::ledger::postgres::is_url(&setting.value) && !setting.value.exists() =>
        {
            None
        }
        Ok(_) => match ctx.reader().and_then(|l| Ok(l.first_signed_by(kid)?)) {
            Ok(first) => first,
            Err(e) if explicit.is_some() => {
                note(&format!(
                    "warning: could not read the ledger to check for licenses this key signed before {} ({e})",
                    valid_from.unwrap_or_default()
                ));
                None
            }
            Err(e) => return Err(e),
        },
    };
    let first = first.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
    let hex_kid = hex::encode(kid);
    match (explicit, first) {
        (Some(from), Some(first)) if from > first => {
            note(&format!(
                "warning: key {hex_kid} signed licenses or checkpoints of the ledger from {} on, before --valid-from {}: sites refuse those licenses and `ledger verify` fails unless the window starts by {0}",
                rfc3339(first),
                rfc3339(from)
            ));
            Ok(from)
        }
        (Some(from), _) => Ok(from),
        (None, Some(first)) if first < ctx.now => {
            note(&format!(
                "key {hex_kid} valid from {} (the first license or checkpoint it signed in the ledger, so they all stay valid; --valid-from TIME chooses another start)",
                rfc3339(first)
            ));
            Ok(first)
        }
        (None, _) => Ok(ctx.now),
    }
}

/// `tessera keyring ...`.
///
/// # Errors
/// [`Error::Key`], [`Error::Usage`], [`Error::Io`].
pub fn keyring(ctx: &Ctx, c: &KeyringCommand) -> Result<(), Error> {
    match c {
        KeyringCommand::Add {
            keyring,
            rehearsal_copy,
            public,
            label,
            valid_from,
            valid_until,
            activate,
        } => {
            let keyring = &ctx.required_keyring(keyring.as_deref())?;
            named_file(keyring, "the keyring")?;
            ctx.refuse_rehearsal_on_keyring(keyring, *rehearsal_copy)?;
            let info = read_public_key_file(public)?;
            let valid_from = add_valid_from(ctx, &info.kid, valid_from.as_deref())?;
            let mut record = KeyRecord::new(info.public_key, label.clone(), valid_from);
            if let Some(until) = valid_until {
                record = record
                    .with_valid_until(parse_time(until).map_err(|e| Error::Usage(e.to_string()))?);
            }
            let active = add_to_keyring(keyring, record, *activate, ctx.now)?;
            print(&format!(
                "added {} to {}{}\n",
                info.kid_hex(),
                keyring.display(),
                if active {
                    " as the active signing key"
                } else {
                    ""
                }
            ))
        }
        KeyringCommand::Retire {
            keyring,
            rehearsal_copy,
            kid,
        } => {
            let keyring = &ctx.required_keyring(keyring.as_deref())?;
            named_file(keyring, "the keyring")?;
            ctx.refuse_rehearsal_on_keyring(keyring, *rehearsal_copy)?;
            let mut ring = Keyring::load(keyring)?;
            // A switch whose time has come has happened.
            ring.settle(ctx.now);
            ring.retire(&parse_kid(kid)?)?;
            ring.save(keyring)?;
            print(&format!(
                "retired {kid} in {}: export the keyring to firmware for it to take effect\n",
                keyring.display()
            ))
        }
        KeyringCommand::Activate {
            keyring,
            rehearsal_copy,
            kid,
            at,
        } => {
            let keyring = &ctx.required_keyring(keyring.as_deref())?;
            named_file(keyring, "the keyring")?;
            ctx.refuse_rehearsal_on_keyring(keyring, *rehearsal_copy)?;
            let mut ring = Keyring::load(keyring)?;
            let id = parse_kid(kid)?;
            let kid = hex::encode(id);
            let Some(at) = at else {
                ring.activate(&id, ctx.now)?;
                ring.save(keyring)?;
                return print(&format!(
                    "{kid} is now the active signing key of {}\n",
                    keyring.display()
                ));
            };
            let at = parse_time(at).map_err(|e| Error::Usage(e.to_string()))?;
            let before = ring.active_at(ctx.now).map(KeyRecord::kid_hex);
            ring.schedule(&id, at, ctx.now)?;
            ring.save(keyring)?;
            print(&format!(
                "{kid} becomes the active signing key of {} at {}{}\n\
                 give tessera both key files until then (`key = [\"OLD.pem\", \"NEW.pem\"]` in tessera.toml, or --key twice): it switches by itself\n",
                keyring.display(),
                rfc3339(at),
                before.map_or_else(String::new, |b| format!(" ({b} signs until then)")),
            ))
        }
        KeyringCommand::List { keyring, json } => {
            let keyring = &ctx.required_keyring(keyring.as_deref())?;
            let mut ring = Keyring::load(keyring)?;
            ring.settle(ctx.now);
            let active = ring.active().map(|r| r.kid);
            let scheduled = |r: &KeyRecord| ring.scheduled().iter().find(|a| a.kid == r.kid);
            if *json {
                let keys: Vec<_> = ring
                    .list()
                    .iter()
                    .map(|r| {
                        let mut v = record_json(r, Some(r.kid) == active);
                        v["scheduled_at"] = json!(scheduled(r).map(|a| rfc3339(a.at)));
                        v["valid_now"] = json!(!r.retired && r.covers(ctx.now));
                        v
                    })
                    .collect();
                return print_json(&serde_json::Value::Array(keys));
            }
            // The active key of the file may not sign yet (or any more): say
            // so, since nothing signs while it is so.
            let idle = ring.active().filter(|r| r.retired || !r.covers(ctx.now));
            let mut text = format!(
                "{:<16}  {:<7}  {:<20}  {:<20}  LABEL\n",
                "KID", "STATUS", "VALID FROM", "VALID UNTIL"
            );
            for r in ring.list() {
                let status = if r.retired {
                    "retired"
                } else if Some(r.kid) == active {
                    "active"
                } else if scheduled(r).is_some() {
                    "next"
                } else {
                    "-"
                };
                text.push_str(&format!(
                    "{:<16}  {:<7}  {:<20}  {:<20}  {}\n",
                    r.kid_hex(),
                    status,
                    rfc3339(r.valid_from),
                    r.valid_until.map_or_else(|| "-".to_owned(), rfc3339),
                    r.label
                ));
            }
            for a in ring.scheduled() {
                text.push_str(&format!(
                    "switch to {} at {}\n",
                    hex::encode(a.kid),
                    rfc3339(a.at)
                ));
            }
            if let Some(r) = idle {
                text.push_str(&format!(
                    "warning: the active key {} is not valid at {} (valid {} to {}): nothing signs with it now; activate a key valid now (`tessera keyring activate KID`), or add one (`tessera keygen`)\n",
                    r.kid_hex(),
                    rfc3339(ctx.now),
                    rfc3339(r.valid_from),
                    r.valid_until.map_or_else(|| "no end".to_owned(), rfc3339),
                ));
            }
            print(&text)
        }
        KeyringCommand::Export {
            keyring,
            format,
            output,
            force,
        } => {
            let keyring = &ctx.required_keyring(keyring.as_deref())?;
            let ring = Keyring::load(keyring)?;
            let target = Target::from_arg(output.as_deref());
            target.check(*force)?;
            let bytes = match format {
                ExportFormat::Rust => ring.export_rust()?.into_bytes(),
                ExportFormat::C => ring.export_c()?.into_bytes(),
                ExportFormat::Cbor => ring.export_cbor()?,
            };
            // Public keys only: readable by all, as the firmware build
            // that includes them expects.
            target.write_public(&bytes, *force)?;
            if let Target::File(p) = &target {
                note(&format!("wrote {}", p.display()));
            }
            Ok(())
        }
    }
}
