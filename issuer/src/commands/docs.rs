//! `tessera config`, `catalog show`, `completions` and `man`.

use super::{print, print_json, Ctx};
use crate::calendar::format_duration;
use crate::catalog::{category_name, Catalog};
use crate::cli::{CatalogCommand, CompletionsArgs, ConfigArgs, ManArgs};
use crate::config::{Setting, Source};
use crate::error::Error;
use crate::output::{note, Target};

/// `tessera config`: every setting in effect and where it comes from.
///
/// # Errors
/// [`Error::Usage`] (a request window that is not a duration),
/// [`Error::Io`].
pub fn config(ctx: &Ctx, a: &ConfigArgs) -> Result<(), Error> {
    let c = &ctx.config;
    let g = &ctx.global;
    let path = |s: Option<Setting<std::path::PathBuf>>| {
        s.map(|s| (s.value.display().to_string(), s.source))
    };
    // (name, value and source, what it means when unset)
    type Row<'a> = (&'a str, Option<(String, Source)>, &'a str);
    let rows: Vec<Row<'_>> = vec![
        (
            "ledger",
            path(c.ledger(g.ledger.as_deref())),
            "not set: name one with --ledger, TESSERA_LEDGER or `ledger` (create it with `tessera ledger init`)",
        ),
        (
            "keyring",
            path(c.keyring(None)),
            "not set: signing is not checked against a keyring; `ledger verify` needs one",
        ),
        (
            "key",
            c.keys(&[]).map(|s| {
                let shown: Vec<String> =
                    s.value.iter().map(|p| p.display().to_string()).collect();
                (shown.join(", "), s.source)
            }),
            "not set: signing commands need --key, TESSERA_KEY or `key`",
        ),
        (
            "catalog",
            path(c.catalog(g.catalog.as_deref())),
            "the embedded default catalog",
        ),
        (
            "operator",
            c.operator(g.operator.as_deref())
                .map(|s| (s.value, s.source)),
            "not set: signing commands need --operator, TESSERA_OPERATOR, `operator` or $USER",
        ),
        (
            "request_window",
            {
                let w = c.request_window()?;
                Some((format_duration(w.value), w.source))
            },
            "",
        ),
    ];
    // The overdue notice's settings (`report overdue --notify`); the
    // password's source only, never its value.
    let n = c.notify(&crate::config::NotifyFlags::default())?;
    let text = |s: Option<Setting<String>>| s.map(|s| (s.value, s.source));
    let mut rows = rows;
    rows.extend([
        (
            "notify.smtp",
            text(n.smtp.clone()),
            "not set: `report overdue --notify` needs --smtp or `smtp` in [notify]",
        ),
        (
            "notify.tls",
            Some((n.tls.value.as_str().to_owned(), n.tls.source.clone())),
            "",
        ),
        (
            "notify.port",
            Some((n.port.value.to_string(), n.port.source.clone())),
            "",
        ),
        (
            "notify.from",
            text(n.from.clone()),
            "not set: --from or `from` in [notify]",
        ),
        (
            "notify.to",
            n.to.clone().map(|s| (s.value.join(", "), s.source)),
            "not set: --to or `to` in [notify]",
        ),
        (
            "notify.username",
            text(n.username.clone()),
            "not set: no SMTP login",
        ),
        (
            "notify.password",
            n.password.clone().map(|s| {
                let shown = match s.value {
                    crate::config::PasswordFrom::File(p) => format!("read from {}", p.display()),
                    crate::config::PasswordFrom::Env => "set (value not shown)".to_owned(),
                };
                (shown, s.source)
            }),
            "not set",
        ),
        (
            "notify.ca",
            path(n.ca.clone()),
            "not set: the system's CA certificates",
        ),
        (
            "notify.days",
            Some((n.days.value.to_string(), n.days.source.clone())),
            "",
        ),
    ]);
    let file = c.path().map(|p| p.display().to_string());
    if a.json {
        let mut settings = serde_json::Map::new();
        for (name, value, _) in &rows {
            settings.insert(
                (*name).to_owned(),
                match value {
                    Some((v, source)) => serde_json::json!({
                        "value": v,
                        "source": source.to_string(),
                    }),
                    None => serde_json::Value::Null,
                },
            );
        }
        return print_json(&serde_json::json!({
            "config_file": file,
            "settings": settings,
        }));
    }
    let mut text = format!(
        "configuration file  {}\n",
        file.as_deref()
            .unwrap_or("none (looked for --config, TESSERA_CONFIG, ./tessera.toml, $XDG_CONFIG_HOME/tessera/config.toml)")
    );
    for (name, value, unset) in rows {
        match value {
            Some((v, source)) => text.push_str(&format!("{name:<19} {v}  (from {source})\n")),
            None => text.push_str(&format!("{name:<19} {unset}\n")),
        }
    }
    print(&text)
}

/// `tessera catalog show`.
///
/// # Errors
/// [`Error::Catalog`], [`Error::Io`].
pub fn catalog(ctx: &Ctx, c: &CatalogCommand) -> Result<(), Error> {
    let summary = match c {
        CatalogCommand::Show { summary } => summary,
        CatalogCommand::ExampleOrder => return print(crate::order::EXAMPLE),
    };
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
/// [`Error::Stdout`].
pub fn completions(a: &CompletionsArgs) -> Result<(), Error> {
    Target::Stdout.write(
        &tessera_cli::completions(crate::cli::command(), a.shell),
        false,
    )
}

/// `tessera man`.
///
/// # Errors
/// [`Error::Io`], [`Error::Stdout`].
pub fn man(a: &ManArgs) -> Result<(), Error> {
    match &a.output {
        Some(dir) if dir.as_os_str() != "-" => {
            tessera_cli::write_man_pages(crate::cli::command(), dir).map_err(Error::io(dir))?;
            note(&format!("wrote man pages to {}", dir.display()));
            Ok(())
        }
        _ => {
            let page = tessera_cli::man_page(crate::cli::command()).map_err(Error::Stdout)?;
            Target::Stdout.write(&page, false)
        }
    }
}
