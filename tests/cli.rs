//! The command line as the README promises it: every flag the README names is one
//! that `exechub` (or `bench`) knows, and start-up mistakes are refused early with
//! words that name the problem (`--bind` without a host, a port in use, a JWT
//! secret short enough to guess).

use std::collections::BTreeSet;
use std::process::Command;

/// Flags of other programs that the README names (cargo's and the test harness').
const NOT_OURS: [&str; 6] = [
    "--release",
    "--nocapture",
    "--check",
    "--test",
    "--workspace",
    "--bins",
];

fn help(binary: &str, args: &[&str]) -> String {
    let output = Command::new(binary)
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{binary} {args:?} --help");
    String::from_utf8(output.stdout).unwrap()
}

/// The subcommands a `--help` lists.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// Every `--flag` of every subcommand of `binary`.
fn known_flags(binary: &str) -> BTreeSet<String> {
    let top = help(binary, &[]);
    let mut helps = vec![top.clone()];
    for command in subcommands(&top) {
        helps.push(help(binary, &[&command]));
    }
    helps
        .iter()
        .flat_map(|text| text.split(|c: char| c.is_whitespace() || c == ','))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| {
            word.trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_owned()
        })
        .collect()
}

#[test]
fn every_flag_the_readme_names_exists() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let known = known_flags(env!("CARGO_BIN_EXE_exechub"));
    let named: BTreeSet<&str> = readme
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .filter(|word| word.as_bytes()[2].is_ascii_lowercase())
        .collect();
    assert!(named.len() > 20, "found only {named:?}");
    let missing: Vec<&&str> = named
        .iter()
        .filter(|flag| !NOT_OURS.contains(flag) && !known.contains(**flag))
        .collect();
    assert!(
        missing.is_empty(),
        "the README names flags the binaries do not know: {missing:?}"
    );
}

#[test]
fn a_bind_address_without_a_host_is_refused_at_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_exechub"))
        .args(["serve", "--bind", "18112"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("18112") && said.contains("HOST:PORT"),
        "{said}"
    );
}

#[test]
fn a_port_in_use_is_named_before_anything_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("exechub-cli-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_exechub"))
        .args(["serve", "--bind", &address, "--data-dir"])
        .arg(&dir)
        .env_remove("EXECHUB_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(&format!("cannot listen on {address}")),
        "{said}"
    );
    assert!(
        !said.contains("workers started"),
        "workers started first: {said}"
    );
    assert!(
        !dir.exists(),
        "the data dir was set up before the bind failed"
    );
}

#[test]
fn a_short_jwt_secret_is_refused_at_start_up() {
    let dir = std::env::temp_dir().join(format!("exechub-cli-secret-{}", std::process::id()));
    for secret in ["", "short-secret"] {
        let output = Command::new(env!("CARGO_BIN_EXE_exechub"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--jwt-secret",
                secret,
                "--data-dir",
            ])
            .arg(&dir)
            .env_remove("EXECHUB_DATABASE_URL")
            .output()
            .unwrap();
        assert!(!output.status.success(), "`{secret}` was accepted");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("at least 32") && said.contains("openssl rand"),
            "{said}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
