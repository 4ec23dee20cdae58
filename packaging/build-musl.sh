#!/bin/sh
# A static binary for any x86_64 Linux: the fastest startup (no dynamic loader work) and no
# glibc version floor. Needs the Rust musl target and musl-gcc (Debian: musl-tools) for ring.
set -eu
cd "$(dirname "$0")/.."
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
  || rustup target add x86_64-unknown-linux-musl
CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}" \
  cargo build --release --locked --target x86_64-unknown-linux-musl
echo "target/x86_64-unknown-linux-musl/release/docker-credential-latchkey" 
