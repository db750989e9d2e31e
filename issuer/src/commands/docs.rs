//! `tessera catalog show`, `completions` and `man`.

use clap::CommandFactory;

use super::{print, Ctx};
use crate::catalog::{category_name, Catalog};
use crate::cli::{CatalogCommand, Cli, CompletionsArgs, ManArgs};
use crate::error::Error;
use crate::output::{note, Target};

/// `tessera catalog show`.
///
/// # Errors
/// [`Error::Catalog`], [`Error::Io`].
pub fn catalog(ctx: &Ctx, c: &CatalogCommand) -> Result<(), Error> {
    let CatalogCommand::Show { summary } = c;
    let catalog = ctx.catalog()?;
    if !*summary {
        return print(catalog.text());
    }
    let mut s = format!(
        "catalog {} (vendor {}, 1 storage unit = {} GB)\n",
        catalog.source(),
        catalog.vendor,
        catalog.storage_unit_gb
    );
    let mut items = |kind: &str, list: &[crate::catalog::Item]| {
        for i in list {
            s.push_str(&format!("{kind:<9} {:>5}  {}\n", i.code, i.name));
        }
    };
    items("profile", &catalog.profiles);
    items("base", &catalog.bases);
    items("add-on", &catalog.addons);
    items("service", &catalog.services);
    for f in &catalog.features {
        s.push_str(&format!(
            "{:<9} {:>5}  {} ({}{})\n",
            "feature",
            f.code,
            f.name,
            category_name(f.category),
            if f.hidden { ", hidden" } else { "" }
        ));
    }
    for p in &catalog.packages {
        s.push_str(&format!(
            "{:<9} {:>5}  {}: {}\n",
            "package",
            "-",
            p.name,
            p.features.join(", ")
        ));
    }
    for (name, platform) in [
        ("hw", tessera_verifier::claims::Platform::Hw),
        ("vm", tessera_verifier::claims::Platform::Vm),
        ("cloud", tessera_verifier::claims::Platform::Cloud),
    ] {
        if let Some(d) = catalog.platform(platform) {
            s.push_str(&format!(
                "{:<9} {:>5}  {}\n",
                "platform",
                name,
                Catalog::describe_platform(d)
            ));
        }
    }
    print(&s)
}

/// `tessera completions SHELL`.
///
/// # Errors
/// [`Error::Io`].
pub fn completions(a: &CompletionsArgs) -> Result<(), Error> {
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "tessera", &mut buf);
    Target::Stdout.write(&buf, false)
}

/// `tessera man`.
///
/// # Errors
/// [`Error::Io`].
pub fn man(a: &ManArgs) -> Result<(), Error> {
    match &a.output {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
            clap_mangen::generate_to(Cli::command(), dir).map_err(Error::io(dir))?;
            note(&format!("wrote man pages to {}", dir.display()));
            Ok(())
        }
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut buf)
                .map_err(Error::io("<stdout>"))?;
            Target::Stdout.write(&buf, false)
        }
    }
}
