//! The setup every signing command shares (`issue`, `renew`, `replace`,
//! `modify`, `share`, `decommission`, `void`, `issue --bulk`): the catalog,
//! the operator, the signing key and the ledger, loaded in one fixed order.
//!
//! The order is part of the command line's behaviour: when several inputs
//! are bad, the first one in this order is the error reported (and the
//! passphrase prompt comes before the ledger is touched). It is:
//!
//! 1. the catalog,
//! 2. the command's own inputs (order, request: [`Signing::load`]'s
//!    `inputs`),
//! 3. the operator,
//! 4. the key (passphrase, keyring check),
//! 5. the ledger, which must exist ([`Session::open`]; only `tessera
//!    ledger init` creates one).
//!
//! Two commands differ, explicitly: `void` opens the existing ledger
//! first, since it resolves the license to void there
//! ([`Session::with_ledger`]); `issue --bulk` reads its CSV between the key
//! and the ledger (it uses [`Signing`] and opens the ledger itself).

use tessera_signer::AnySigner;
use tessera_verifier::KeyEntry;

use super::{load_keys, Ctx};
use crate::catalog::Catalog;
use crate::cli::KeyArgs;
use crate::error::Error;
use crate::issuance::Issuer;
use crate::ledger::{Ledger, Writer};

/// What signs, and for whom it is recorded: the pieces of an [`Issuer`].
#[derive(Debug)]
pub(crate) struct Signing {
    catalog: Catalog,
    operator: String,
    signer: AnySigner,
    /// The keyring the key was checked against (empty without one): a
    /// writer verifies the ledger's last checkpoint with it.
    keyring: Vec<KeyEntry>,
}

impl Signing {
    /// Loads the catalog, then runs `inputs` (the command's own files),
    /// then resolves the operator and opens the key: steps 1 to 4 of the
    /// module's order.
    ///
    /// # Errors
    /// [`Error::Catalog`], those of `inputs`, [`Error::Usage`] without an
    /// operator or a key, [`Error::Key`].
    pub(crate) fn load<T>(
        ctx: &Ctx,
        key: &KeyArgs,
        inputs: impl FnOnce() -> Result<T, Error>,
    ) -> Result<(Self, T), Error> {
        let catalog = ctx.catalog()?;
        let inputs = inputs()?;
        let operator = ctx.operator()?;
        let (signer, keyring) = load_keys(ctx, key)?;
        Ok((
            Self {
                catalog,
                operator,
                signer,
                keyring,
            },
            inputs,
        ))
    }

    /// The existing ledger ([`Ctx::ledger`]), whose writers check its
    /// last checkpoint with this key's keyring ([`Ledger::set_keyring`]).
    ///
    /// # Errors
    /// As [`Ctx::ledger`].
    pub(crate) fn ledger(&self, ctx: &Ctx) -> Result<Ledger, Error> {
        let mut ledger = ctx.ledger()?;
        ledger.set_keyring(&self.keyring);
        Ok(ledger)
    }

    /// The issuer these pieces make.
    pub(crate) fn issuer(&self) -> Issuer<'_> {
        Issuer {
            catalog: &self.catalog,
            signer: &self.signer,
            operator: &self.operator,
        }
    }
}

/// A [`Signing`] and the ledger it records in.
#[derive(Debug)]
pub(crate) struct Session {
    signing: Signing,
    ledger: Ledger,
}

impl Session {
    /// The module's order: [`Signing::load`] (with `inputs`), then the
    /// existing ledger.
    ///
    /// # Errors
    /// Those of [`Signing::load`], [`Error::Ledger`].
    pub(crate) fn open<T>(
        ctx: &Ctx,
        key: &KeyArgs,
        inputs: impl FnOnce() -> Result<T, Error>,
    ) -> Result<(Self, T), Error> {
        let (signing, inputs) = Signing::load(ctx, key, inputs)?;
        let ledger = signing.ledger(ctx)?;
        Ok((Self { signing, ledger }, inputs))
    }

    /// For a ledger the command opened (and read) before anything else
    /// (`void`): the catalog, the operator and the key, with no inputs of
    /// the command's own in between.
    ///
    /// # Errors
    /// Those of [`Signing::load`].
    pub(crate) fn with_ledger(ctx: &Ctx, key: &KeyArgs, mut ledger: Ledger) -> Result<Self, Error> {
        let (signing, ()) = Signing::load(ctx, key, || Ok(()))?;
        ledger.set_keyring(&signing.keyring);
        Ok(Self { signing, ledger })
    }

    /// Runs `f` in one ledger transaction and commits it if `f` succeeds
    /// (else it is rolled back).
    ///
    /// # Errors
    /// [`Error::Ledger`], those of `f`.
    pub(crate) fn commit<T>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>, &Issuer<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let issuer = self.signing.issuer();
        let mut w = self
            .ledger
            .writer(&self.signing.signer, &self.signing.operator)?;
        let out = f(&mut w, &issuer)?;
        w.commit()?;
        Ok(out)
    }
}
