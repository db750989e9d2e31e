use super::*;

#[test]
fn json_error_has_the_documented_shape() {
    let text = json_error("no_keyring", "no keyring at /x: copy it there", 2);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["error"]["code"], "no_keyring");
    assert_eq!(value["error"]["message"], "no keyring at /x: copy it there");
    assert_eq!(value["exit_code"], 2);
    assert!(text.ends_with('\n'));
}

#[test]
fn wants_json_stops_at_the_end_of_options() {
    let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
    assert!(wants_json(&args(&["tessera", "ledger", "list", "--json"])));
    assert!(!wants_json(&args(&["tessera", "ledger", "list"])));
    assert!(!wants_json(&args(&[
        "tessera-agent",
        "install",
        "--",
        "--json"
    ])));
    // The program's own name never counts.
    assert!(!wants_json(&args(&["--json"])));
}

#[test]
fn man_pages_and_completions_name_every_subcommand() {
    let cmd = clap::Command::new("demo-tool")
        .about("A tool")
        .subcommand(clap::Command::new("first").about("The first"));
    let page = String::from_utf8(man_page(cmd.clone()).unwrap()).unwrap();
    assert!(page.contains("demo\\-tool") && page.contains("first"));
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("man1");
    write_man_pages(cmd.clone(), &into).unwrap();
    assert!(into.join("demo-tool.1").is_file());
    assert!(into.join("demo-tool-first.1").is_file());
    let bash = String::from_utf8(completions(cmd, clap_complete::Shell::Bash)).unwrap();
    assert!(bash.contains("first"));
}

/// A tool with a global option, a command with `--json` and `--out FILE`,
/// and a group of commands.
fn demo() -> clap::Command {
    clap::Command::new("demo")
        .arg(clap::Arg::new("dir").long("dir").global(true))
        .subcommand(
            clap::Command::new("install")
                .arg(
                    clap::Arg::new("json")
                        .long("json")
                        .short('j')
                        .action(clap::ArgAction::SetTrue),
                )
                .arg(clap::Arg::new("out").long("out")),
        )
        .subcommand(
            clap::Command::new("seats").subcommand(
                clap::Command::new("summary").arg(
                    clap::Arg::new("json")
                        .long("json")
                        .action(clap::ArgAction::SetTrue),
                ),
            ),
        )
}

fn parse_error(args: &[&str]) -> clap::Error {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    parse(&demo(), &args).unwrap_err()
}

#[test]
fn a_mistyped_command_after_an_option_of_another_is_named() {
    for args in [
        &["demo", "--json", "instal"][..],
        &["demo", "-j", "instal"],
        &["demo", "--out", "x.txt", "instal"],
        &["demo", "--dir", "/tmp", "--json", "instal"],
        &["demo", "--json", "--out", "x", "instal"],
    ] {
        let e = parse_error(args);
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::InvalidSubcommand,
            "{args:?}"
        );
        let text = e.render().to_string();
        assert!(text.contains("'instal'"), "{args:?}: {text}");
        assert!(text.contains("'install'"), "{args:?}: {text}");
        assert_eq!(
            usage_summary(&text),
            "unrecognized subcommand 'instal'; tip: a similar subcommand exists: 'install'"
        );
    }
    // One level down too.
    let e = parse_error(&["demo", "seats", "--json", "summry"]);
    assert_eq!(e.kind(), clap::error::ErrorKind::InvalidSubcommand);
    assert!(e.render().to_string().contains("'summary'"));
}

#[test]
fn other_usage_errors_are_clap_s_own() {
    // The command is right: the option is only in the wrong place.
    let e = parse_error(&["demo", "--json", "install"]);
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    assert!(e.render().to_string().contains("'--json'"));
    // An option no command has is the mistake to report.
    let e = parse_error(&["demo", "--jsn", "instal"]);
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    assert!(e.render().to_string().contains("'--jsn'"));
    // No command at all.
    let e = parse_error(&["demo", "--json"]);
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    // After `--` nothing is an option.
    let e = parse_error(&["demo", "--", "--json", "instal"]);
    assert!(!e.render().to_string().contains("'instal'"));
    // And a right command line parses.
    let args: Vec<OsString> = ["demo", "--dir", "d", "install", "--json"]
        .iter()
        .map(OsString::from)
        .collect();
    assert!(parse(&demo(), &args).is_ok());
}
