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
