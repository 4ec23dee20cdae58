#!/bin/sh
# Regenerate the man page and shell completions from the clap definition.
# tests/it/packaging.rs fails when the committed files are out of date.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/docker-credential-latchkey"
"$bin" man > packaging/man/docker-credential-latchkey.1
"$bin" completions bash > packaging/completions/docker-credential-latchkey.bash
"$bin" completions zsh > packaging/completions/_docker-credential-latchkey
"$bin" completions fish > packaging/completions/docker-credential-latchkey.fish
echo "packaging assets regenerated" >&2
