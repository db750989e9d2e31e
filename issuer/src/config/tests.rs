use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn some_env(name: &str) -> Option<String> {
    match name {
        "TESSERA_LEDGER" => Some("/env/ledger.db".into()),
        "TESSERA_OPERATOR" => Some("bob".into()),
        "TESSERA_REQUEST_WINDOW" => Some("7d".into()),
        "USER" => Some("root".into()),
        _ => None,
    }
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("tessera.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn flag_then_environment_then_file_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "ledger = \"ledger.db\"\nkeyring = \"/abs/keyring.toml\"\nkey = \"keys/signing.pem\"\noperator = \"alice\"\nrequest_window = \"10d\"\n",
    );
    let c = Config::load(&file).unwrap().with_env(no_env);
    assert_eq!(c.path(), Some(file.as_path()));
    // Relative paths are taken from the file's folder.
    let ledger = c.ledger(None).unwrap();
    assert_eq!(ledger.value, dir.path().join("ledger.db"));
    assert_eq!(ledger.source, Source::File(file.clone()));
    assert_eq!(
        c.keyring(None).unwrap().value,
        Path::new("/abs/keyring.toml")
    );
    assert_eq!(
        c.keys(&[]).unwrap().value,
        [dir.path().join("keys/signing.pem")]
    );
    assert_eq!(c.catalog(None), None);
    assert_eq!(c.operator(None).unwrap().value, "alice");
    assert_eq!(c.request_window().unwrap().value, 10 * 86_400);
    // The flag wins.
    let flagged = c.ledger(Some(Path::new("x.db"))).unwrap();
    assert_eq!(flagged.source, Source::Flag("--ledger"));
    assert_eq!(flagged.source.to_string(), "--ledger");
    // The environment beats the file.
    let c = Config::load(&file).unwrap().with_env(some_env);
    let ledger = c.ledger(None).unwrap();
    assert_eq!(ledger.value, Path::new("/env/ledger.db"));
    assert_eq!(ledger.source, Source::Env("TESSERA_LEDGER"));
    assert_eq!(c.operator(None).unwrap().value, "bob");
    assert_eq!(c.request_window().unwrap().value, 7 * 86_400);
    // Nothing anywhere: no ledger, the default window, $USER.
    let c = Config::default().with_env(no_env);
    assert_eq!(c.ledger(None), None);
    assert_eq!(c.operator(None), None);
    assert_eq!(c.request_window().unwrap().source, Source::Default);
    let c = Config::default().with_env(|n| (n == "USER").then(|| "carol".into()));
    assert_eq!(c.operator(None).unwrap().source, Source::Env("USER"));
}

#[test]
fn bad_files_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        ("ledgr = \"x.db\"\n", "unknown field `ledgr`"),
        ("ledger = 3\n", "line 1"),
        ("request_window = \"a month\"\n", "not a duration"),
        ("operator = \"eve\\u001b[2J\"\n", "operator"),
    ] {
        let file = write(dir.path(), text);
        let e = Config::load(&file).unwrap_err().to_string();
        assert!(e.contains(says), "{text}: {e}");
        assert!(e.contains("tessera.toml"), "{e}");
    }
    let e = Config::load(&dir.path().join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--config"), "{e}");
    let big = "#".repeat(70_000);
    let file = write(dir.path(), &big);
    assert!(Config::load(&file)
        .unwrap_err()
        .to_string()
        .contains("at most"));
}

#[test]
fn a_token_key_is_a_uri_not_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let uri = "pkcs11:token=vendor;object=signing-2026";
    let file = write(dir.path(), &format!("key = \"{uri}\"\n"));
    let c = Config::load(&file).unwrap().with_env(no_env);
    assert_eq!(c.keys(&[]).unwrap().value, [Path::new(uri)]);
}

#[test]
fn a_rotation_names_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "key = [\"2026.pem\", \"/abs/2027.pem\", \"pkcs11:token=v;object=k\"]\n",
    );
    let c = Config::load(&file).unwrap().with_env(no_env);
    let keys = c.keys(&[]).unwrap();
    assert_eq!(
        keys.value,
        [
            dir.path().join("2026.pem"),
            PathBuf::from("/abs/2027.pem"),
            PathBuf::from("pkcs11:token=v;object=k")
        ]
    );
    assert_eq!(keys.source, Source::File(file.clone()));
    // Flags (repeated) win; the environment names one key.
    let flags = [PathBuf::from("a.pem"), PathBuf::from("b.pem")];
    assert_eq!(c.keys(&flags).unwrap().value, flags);
    let c = Config::load(&file)
        .unwrap()
        .with_env(|n| (n == "TESSERA_KEY").then(|| "env.pem".into()));
    assert_eq!(c.keys(&[]).unwrap().value, [PathBuf::from("env.pem")]);
    // Neither a path nor a list.
    let file = write(dir.path(), "key = 3\n");
    assert!(Config::load(&file).is_err());
}

#[test]
fn a_working_folder_file_naming_another_ledger_than_the_users_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let user_dir = dir.path().join("xdg");
    let here = dir.path().join("delivery");
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::create_dir_all(&here).unwrap();
    let user = user_dir.join("config.toml");
    std::fs::write(&user, "ledger = \"/srv/tessera/ledger.db\"\n").unwrap();
    let local = here.join("tessera.toml");

    std::fs::write(&local, "ledger = \"old.db\"\n").unwrap();
    let c = Config::find_in(&local, Some(&user)).unwrap();
    assert_eq!(c.path(), Some(local.as_path()));
    let w = c.hidden_warning().unwrap();
    assert!(
        w.contains("old.db") && w.contains(&user.display().to_string()),
        "{w}"
    );

    // The same ledger in both: nothing to say.
    std::fs::write(
        &local,
        "ledger = \"/srv/tessera/ledger.db\"\nkey = \"k.pem\"\n",
    )
    .unwrap();
    assert_eq!(
        Config::find_in(&local, Some(&user))
            .unwrap()
            .hidden_warning(),
        None
    );
    // No per-user file: nothing hidden.
    assert_eq!(
        Config::find_in(&local, Some(&user_dir.join("none.toml")))
            .unwrap()
            .hidden_warning(),
        None
    );
    // No working-folder file: the user's.
    std::fs::remove_file(&local).unwrap();
    assert_eq!(
        Config::find_in(&local, Some(&user)).unwrap().path(),
        Some(user.as_path())
    );
}

#[test]
fn a_postgres_ledger_url_is_not_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "ledger = \"postgres://tessera@db.example:5432/ledger\"\n",
    );
    let c = Config::load(&file).unwrap().with_env(no_env);
    assert_eq!(
        c.ledger(None).unwrap().value,
        Path::new("postgres://tessera@db.example:5432/ledger")
    );
}

#[test]
fn errors_quote_a_long_value_as_a_prefix_and_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let long = "A".repeat(60_000);
    let quoted = format!("`{}... (60,000 bytes)`", "A".repeat(80));
    for text in [
        format!("{long} = 1\n"),
        format!("request_window = \"{long}\"\n"),
        format!("[notify]\ntls = \"{long}\"\n"),
    ] {
        let file = write(dir.path(), &text);
        let e = Config::load(&file).unwrap_err().to_string();
        assert!(e.len() < 800, "{} bytes", e.len());
        assert!(e.contains(&quoted), "{e}");
    }
    let env = |n: &str| (n == "TESSERA_REQUEST_WINDOW").then(|| "A".repeat(60_000));
    let e = Config::default()
        .with_env(env)
        .request_window()
        .unwrap_err()
        .to_string();
    assert!(e.len() < 800, "{} bytes", e.len());
    assert!(e.contains(&quoted), "{e}");
}
