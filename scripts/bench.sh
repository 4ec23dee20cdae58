#!/usr/bin/env bash
# Every benchmark against the peers in one go (get: /bin/true, docker-credential-secretservice,
# docker-credential-pass; pull: skopeo, parallel curl); prints Markdown tables of medians and
# ratios (docs/benchmarks.md is this output).
#
#   ./scripts/bench.sh                    # glibc release build, then the static musl build
#   LATCHKEY_BENCH_ROUNDS=1000 ./scripts/bench.sh
#
# Needs what the tests need (./scripts/test.sh installs it) plus, for docker-credential-pass,
# `pass` and `gnupg`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "## get, glibc release build"
cargo bench --bench get --quiet
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl && command -v musl-gcc >/dev/null; then
  bin=$(./packaging/build-musl.sh 2>/dev/null | tail -n 1)
  echo
  echo "## get, static musl build"
  LATCHKEY_BENCH_BIN="$PWD/$bin" cargo bench --bench get --quiet
else
  echo "(static musl build skipped: rustup target add x86_64-unknown-linux-musl; apt-get install musl-tools)"
fi

echo
echo "## pull: latchkey vs skopeo copy vs parallel curl"
./scripts/bench-pull.sh
