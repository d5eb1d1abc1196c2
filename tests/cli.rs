//! The command line as a user meets it, without root: generated completions and man page,
//! and a closed pipe. (Root behaviour is in process_root.rs.)

use std::process::{Command, Stdio};

mod common;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sirqtop"))
}

fn stdout_of(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{args:?} wrote to stderr");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_cover_every_flag_and_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for word in [
            "--json",
            "--duration",
            "--netns",
            "--probe",
            "--lite",
            "--stack-sample",
            "--bpf-stats",
            "diff",
            "completions",
            "man",
        ] {
            // fish spells long flags `-l duration`.
            let bare = word.trim_start_matches("--");
            assert!(script.contains(bare), "{shell} completions lack {word}");
        }
    }
    let bash = stdout_of(&["completions", "bash"]);
    assert!(bash.contains("complete -F _sirqtop"), "{bash}");
    let e = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(e.status.code(), Some(2));
    let err = String::from_utf8_lossy(&e.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn man_page_documents_the_flags() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH sirqtop 1"), "{page}");
    for flag in ["json", "netns", "probe", "stack\\-sample", "bpf\\-stats"] {
        assert!(page.contains(flag), "man page lacks {flag}");
    }
}

#[test]
fn diff_into_a_closed_pipe_ends_quietly() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let out = bin()
        .args([
            "diff",
            &format!("{fixtures}diff_before.json"),
            &format!("{fixtures}diff_after.json"),
        ])
        .stdout(common::closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
