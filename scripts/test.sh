#!/usr/bin/env bash
# The one test command: installs what the tests need (only what is missing), then runs
#   cargo fmt --check, cargo clippy --all-targets -D warnings, and cargo test
# for the whole workspace. Every step runs; the exit status is non-zero if any failed.
#
#   ./scripts/test.sh               run everything
#   ./scripts/test.sh --print-deps  print the Debian packages the tests need
#   ./scripts/test.sh -- ARGS       pass ARGS to cargo test (e.g. -- --test skopeo_client)
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
)

packages() {
  local entry
  for entry in "${TOOLS[@]}"; do echo "${entry#*:}"; done | sort -u
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
step() {
  local name="$1"
  shift
  echo "==> $name: $*"
  if ! "$@"; then
    failed+=("$name")
  fi
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step test cargo test --workspace --no-fail-fast "$@"
if (($# == 0)); then
  # The README's install command, end to end: release build, install into a temp prefix,
  # store/get/erase self-check on the default store (kept away from your real files).
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  step install env PREFIX="$scratch/prefix" XDG_CONFIG_HOME="$scratch/config" \
    LATCHKEY_DATA_DIR="$scratch/data" LATCHKEY_CACHE_DIR="$scratch/cache" ./install.sh
fi

echo "==> wall time: $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
  echo "==> FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "==> all passed"
