#!/bin/sh
# Build latchkey, install docker-credential-latchkey, optionally point docker at it for the
# registries given as arguments, and prove it works with a store/get/erase self-check on the
# default store.
#
#   ./install.sh                      # install to ~/.local/bin
#   ./install.sh ghcr.io 127.0.0.1:5000   # ... and configure docker's credHelpers for these
#   PREFIX=/usr/local ./install.sh    # install to /usr/local/bin (BINDIR overrides the bin dir)
set -eu

cd "$(dirname "$0")"
PREFIX="${PREFIX:-$HOME/.local}"
BINDIR="${BINDIR:-$PREFIX/bin}"
BIN=docker-credential-latchkey

say() { printf 'install.sh: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo is not installed; install Rust from your distribution or rustup first"
  exit 1
fi

say "building $BIN (release; about 5 minutes on 2 cores the first time, cargo shows its progress)"
cargo build --release --locked

mkdir -p "$BINDIR"
install -m 0755 "target/release/$BIN" "$BINDIR/$BIN"
say "installed $BINDIR/$BIN"

# Man page and completions, generated from the CLI definition.
mkdir -p "$PREFIX/share/man/man1" "$PREFIX/share/bash-completion/completions" \
  "$PREFIX/share/zsh/site-functions" "$PREFIX/share/fish/vendor_completions.d"
"$BINDIR/$BIN" man > "$PREFIX/share/man/man1/$BIN.1"
"$BINDIR/$BIN" completions bash > "$PREFIX/share/bash-completion/completions/$BIN"
"$BINDIR/$BIN" completions zsh > "$PREFIX/share/zsh/site-functions/_$BIN"
"$BINDIR/$BIN" completions fish > "$PREFIX/share/fish/vendor_completions.d/$BIN.fish"

on_path=yes
case ":$PATH:" in
  *":$BINDIR:"*) ;;
  *) on_path=no; say "note: $BINDIR is not on PATH; docker finds helpers on PATH, so add it (see the next steps below)";;
esac

if [ "$#" -gt 0 ]; then
  "$BINDIR/$BIN" configure-docker "$@"
fi

# Self-check on the default store: a throwaway credential under a name no registry uses.
say "self-check on the default store"
check_url="latchkey-self-check-$$.invalid"
check_secret="self-check-$$-$(date +%s)"
printf '{"ServerURL":"%s","Username":"self-check","Secret":"%s"}' "$check_url" "$check_secret" | "$BINDIR/$BIN" store
got=$(printf '%s' "$check_url" | "$BINDIR/$BIN" get)
printf '%s' "$check_url" | "$BINDIR/$BIN" erase
case "$got" in
  *"\"Secret\":\"$check_secret\""*) ;;
  *) say "self-check FAILED: get did not return what store saved: $got"; exit 1;;
esac
if printf '%s' "$check_url" | "$BINDIR/$BIN" get >/dev/null 2>&1; then
  say "self-check FAILED: erase did not remove the throwaway credential"
  exit 1
fi
say "self-check passed: store, get and erase work"
"$BINDIR/$BIN" status >&2 || say "status found problems (listed above, each with what to do); fix them and run $BIN status again"

say "next steps:"
if [ "$on_path" = no ]; then
  say "  echo 'export PATH=\"$BINDIR:\$PATH\"' >> ~/.profile && . ~/.profile    # docker finds helpers on PATH"
fi
if [ "$#" -eq 0 ]; then
  say "  $BIN configure-docker REGISTRY...    # e.g. ghcr.io: docker then asks latchkey for it"
fi
case "$PREFIX" in
  /usr|/usr/local) ;;
  *)
    # zsh looks only in its default fpath (/usr/local/share/zsh/site-functions, /usr/share/...).
    say "  zsh completion: add this line to ~/.zshrc before compinit (zsh does not look in $PREFIX/share/zsh/site-functions by itself):"
    say "    fpath=(\"$PREFIX/share/zsh/site-functions\" \$fpath)"
    ;;
esac
say "  $BIN status                          # what latchkey sees, and what to fix; man $BIN for the rest"
