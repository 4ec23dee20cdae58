//! The committed man page and completions are generated from the clap definition; this
//! fails when they are stale (run packaging/generate-assets.sh).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-latchkey");

fn generated(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn man_page_and_completions_are_up_to_date() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (args, file) in [
        (&["man"][..], "packaging/man/docker-credential-latchkey.1"),
        (&["completions", "bash"][..], "packaging/completions/docker-credential-latchkey.bash"),
        (&["completions", "zsh"][..], "packaging/completions/_docker-credential-latchkey"),
        (&["completions", "fish"][..], "packaging/completions/docker-credential-latchkey.fish"),
    ] {
        let committed = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        assert!(generated(args) == committed, "{file} is stale: run packaging/generate-assets.sh and commit");
    }
}

#[test]
fn man_page_documents_every_subcommand() {
    let man = generated(&["man"]);
    for sub in ["configure-docker", "status", "token", "header"] {
        assert!(man.contains(&sub.replace('-', "\\-")), "man page lacks {sub}");
    }
}
