#!/usr/bin/env bash
# The one test command: installs what the tests need (only what is missing), then runs
#   cargo fmt --check, cargo clippy --all-targets -D warnings, and cargo test
# for the whole workspace. Every step runs; the exit status is non-zero if any failed.
#
# The full run (no arguments) also covers the other platforms (issue 13), with the tools in
# scripts/cross/: clippy --all-targets -D warnings for x86_64-pc-windows-gnu,
# aarch64-apple-darwin and x86_64-apple-darwin (the Apple ones are only type-checked: no SDK
# to link with), and the Windows release .exe run under Wine: tests/it/windows_wine.rs (run by
# cargo test, given LATCHKEY_WINE_EXE) and the workspace's unit tests built for Windows.
# LATCHKEY_SKIP_CROSS=1 skips all of that.
#
#   ./scripts/test.sh               run everything
#   ./scripts/test.sh --print-deps  print the Debian packages the tests need
#   ./scripts/test.sh -- ARGS       pass ARGS to cargo test (e.g. -- --test it skopeo_client)
#
# The integration tests start their own D-Bus session, gnome-keyring, registry and skopeo,
# all in temp dirs; nothing touches your real keyring, ~/.docker or ~/.config.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# tool -> Debian package that provides it
TOOLS=(
  "dbus-daemon:dbus"
  "dbus-send:dbus"
  "gnome-keyring-daemon:gnome-keyring"
  "docker-credential-secretservice:golang-docker-credential-helpers"
  "docker-registry:docker-registry"
  "skopeo:skopeo"
  "htpasswd:apache2-utils"
  "kill:procps"
  "openssl:openssl"
  "docker:docker.io"
  "curl:curl"
  "/usr/bin/time:time"
)

# The cross tools (scripts/cross/cross-setup.sh installs them, without recommends, when
# missing): mingw compiles ring and links the .exe, Wine runs it, clang-14 compiles ring's C
# for the Apple targets.
CROSS_PACKAGES=(gcc-mingw-w64-x86-64-win32 wine64 wine clang-14)

packages() {
  local entry
  {
    for entry in "${TOOLS[@]}"; do echo "${entry#*:}"; done
    printf '%s\n' "${CROSS_PACKAGES[@]}"
  } | sort -u
}

if [[ "${1:-}" == "--print-deps" ]]; then
  packages
  exit 0
fi
if [[ "${1:-}" == "--" ]]; then
  shift
fi

have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/usr/bin/$1" ]]; }

missing=()
for entry in "${TOOLS[@]}"; do
  tool="${entry%%:*}"
  package="${entry#*:}"
  if ! have "$tool"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "==> installing test dependencies: ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "error: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update
  "${as_root[@]}" apt-get install -y "${missing[@]}" </dev/null
fi

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "==> adding the $component component"
    rustup component add "$component"
  fi
done

start=$(date +%s)
failed=()
timings=()
step() {
  local name="$1" t0=$(date +%s)
  shift
  echo "==> $name: $*"
  if ! "$@"; then
    failed+=("$name")
  fi
  timings+=("$name $(($(date +%s) - t0)) s")
}

cross=0
if (($# == 0)) && [[ "${LATCHKEY_SKIP_CROSS:-}" != 1 ]]; then
  cross=1
fi
win_target=x86_64-pc-windows-gnu
win_exe="${CARGO_TARGET_DIR:-target}/$win_target/release/docker-credential-latchkey.exe"
# ring's C for Windows, compiled by mingw.
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
wine_ready=0
cleanup() {
  if ((wine_ready)); then wine_env_stop; fi
  if [[ -n "${scratch:-}" ]]; then rm -rf "$scratch"; fi
}
trap cleanup EXIT

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
if ((cross)); then
  step cross-setup ./scripts/cross/cross-setup.sh
  step cross-clippy ./scripts/cross/cross-check.sh
  step windows-build cargo build --release --target "$win_target" --bin docker-credential-latchkey
  # A Wine prefix in a temp dir with a persistent wineserver, for the .exe and the unit tests.
  echo "==> wine-env: source scripts/cross/wine-env.sh"
  if source ./scripts/cross/wine-env.sh; then
    wine_ready=1
    if [[ -e "$win_exe" ]]; then
      LATCHKEY_WINE_EXE="$(realpath "$win_exe")"
      export LATCHKEY_WINE_EXE
    fi
  else
    failed+=(wine-env)
  fi
fi
step test cargo test --workspace --no-fail-fast "$@"
if ((cross && wine_ready)); then
  # The unit tests of every crate, built for Windows and run by wine (cargo's runner).
  step windows-unit-tests cargo test --target "$win_target" --workspace --lib --no-fail-fast
fi
if (($# == 0)); then
  # The README's install command, end to end: release build, install into a temp prefix,
  # store/get/erase self-check on the default store (kept away from your real files).
  scratch=$(mktemp -d)
  step install env PREFIX="$scratch/prefix" XDG_CONFIG_HOME="$scratch/config" \
    LATCHKEY_DATA_DIR="$scratch/data" LATCHKEY_CACHE_DIR="$scratch/cache" ./install.sh
fi

printf '==> step time: %s\n' "${timings[@]}"
echo "==> wall time: $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
  echo "==> FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "==> all passed"
