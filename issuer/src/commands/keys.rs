//! `tessera keygen`, `key public` and `keyring ...`: thin wrappers over
//! `tessera-keys` and `tessera-signer`.

use std::path::{Path, PathBuf};

use serde_json::json;
use tessera_keys::{parse_kid, KeyError, KeyRecord, Keyring, PublicKeyInfo, Signer};
use tessera_signer::{
    read_public_key_file, write_public_key_file, PassphrasePurpose, PassphraseSource,
};

use super::{print, print_json, Ctx};
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
pub fn add_to_keyring(keyring: &Path, record: KeyRecord, activate: bool) -> Result<bool, Error> {
    let mut ring = load_or_new(keyring)?;
    let kid = record.kid;
    ring.add(record)?;
    let active = activate || ring.active().is_none();
    if active {
        ring.set_active(&kid)?;
    }
    ring.save(keyring)?;
    Ok(active)
}

/// `tessera keygen`: returns the new key's public half.
///
/// # Errors
/// [`Error::Key`] (an existing file is never overwritten), [`Error::Usage`].
pub fn generate(ctx: &Ctx, a: &KeygenArgs) -> Result<(PublicKeyInfo, Option<bool>), Error> {
    let valid_from = ctx.time_or_now(a.valid_from.as_deref())?;
    let pub_path = public_path(&a.out);
    for p in [&a.out, &pub_path] {
        if p.exists() {
            return Err(KeyError::AlreadyExists { file: p.clone() }.into());
        }
    }
    let passphrase =
        PassphraseSource::from_cli(a.passphrase_file.clone()).obtain(PassphrasePurpose::NewKey)?;
    let info = tessera_signer::generate_to_file(&a.out, &passphrase)?;
    write_public_key_file(&pub_path, &info)?;
    let active = match &a.keyring {
        Some(k) => Some(add_to_keyring(
            k,
            KeyRecord::new(info.public_key, a.label.clone(), valid_from),
            false,
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
    let (info, active) = generate(ctx, a)?;
    let mut text = format!(
        "kid {}\nwrote {} (encrypted private key, mode 0600) and {}\n",
        info.kid_hex(),
        a.out.display(),
        public_path(&a.out).display()
    );
    if let (Some(k), Some(active)) = (&a.keyring, active) {
        text.push_str(&format!(
            "added to keyring {}{}\n",
            k.display(),
            if active {
                " as the active signing key"
            } else {
                " (not active: activate it with `tessera keyring activate`)"
            }
        ));
    }
    print(&text)
}

/// `tessera key ...`.
///
/// # Errors
/// [`Error::Key`].
pub fn key(c: &KeyCommand) -> Result<(), Error> {
    let KeyCommand::Public {
        key,
        passphrase_file,
    } = c;
    let info = match read_public_key_file(key) {
        Ok(info) => info,
        Err(KeyError::PrivateKeyGiven { .. }) => {
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

/// `tessera keyring ...`.
///
/// # Errors
/// [`Error::Key`], [`Error::Usage`], [`Error::Io`].
pub fn keyring(ctx: &Ctx, c: &KeyringCommand) -> Result<(), Error> {
    match c {
        KeyringCommand::Add {
            keyring,
            public,
            label,
            valid_from,
            valid_until,
            activate,
        } => {
            let info = read_public_key_file(public)?;
            let mut record = KeyRecord::new(
                info.public_key,
                label.clone(),
                ctx.time_or_now(valid_from.as_deref())?,
            );
            if let Some(until) = valid_until {
                record = record
                    .with_valid_until(parse_time(until).map_err(|e| Error::Usage(e.to_string()))?);
            }
            let active = add_to_keyring(keyring, record, *activate)?;
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
        KeyringCommand::Retire { keyring, kid } => {
            let mut ring = Keyring::load(keyring)?;
            ring.retire(&parse_kid(kid)?)?;
            ring.save(keyring)?;
            print(&format!(
                "retired {kid} in {}: export the keyring to firmware for it to take effect\n",
                keyring.display()
            ))
        }
        KeyringCommand::Activate { keyring, kid } => {
            let mut ring = Keyring::load(keyring)?;
            ring.set_active(&parse_kid(kid)?)?;
            ring.save(keyring)?;
            print(&format!(
                "{kid} is now the active signing key of {}\n",
                keyring.display()
            ))
        }
        KeyringCommand::List { keyring, json } => {
            let ring = Keyring::load(keyring)?;
            let active = ring.active().map(|r| r.kid);
            if *json {
                let keys: Vec<_> = ring
                    .list()
                    .iter()
                    .map(|r| record_json(r, Some(r.kid) == active))
                    .collect();
                return print_json(&serde_json::Value::Array(keys));
            }
            let mut text = format!(
                "{:<16}  {:<7}  {:<20}  {:<20}  LABEL\n",
                "KID", "STATUS", "VALID FROM", "VALID UNTIL"
            );
            for r in ring.list() {
                let status = if r.retired {
                    "retired"
                } else if Some(r.kid) == active {
                    "active"
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
            print(&text)
        }
        KeyringCommand::Export {
            keyring,
            format,
            output,
            force,
        } => {
            let ring = Keyring::load(keyring)?;
            let target = Target::from_arg(output.as_deref());
            target.check(*force)?;
            let bytes = match format {
                ExportFormat::Rust => ring.export_rust()?.into_bytes(),
                ExportFormat::C => ring.export_c()?.into_bytes(),
                ExportFormat::Cbor => ring.export_cbor()?,
            };
            target.write(&bytes, *force)?;
            if let Target::File(p) = &target {
                note(&format!("wrote {}", p.display()));
            }
            Ok(())
        }
    }
}
