#!/usr/bin/env bash
# Cross-target tooling for latchkey on Debian 12 (issue 13). Idempotent: installs only what
# is missing, rebuilds only what is out of date.
#
#   - Debian packages: mingw-w64 (compiles ring, links the Windows .exe), wine (runs it),
#     clang-14 (compiles ring's C for the Apple targets without an SDK; check/clippy only)
#   - rustup targets x86_64-pc-windows-gnu, aarch64-apple-darwin, x86_64-apple-darwin
#   - $CROSS_DIR/bcryptprimitives.dll: Wine 8.0 has no bcryptprimitives.dll, which Rust
#     >= 1.78's std imports ProcessPrng from (every .exe exits 53 at load without it); this
#     shim forwards ProcessPrng to RtlGenRandom. wine-env.sh puts it in the Wine prefix.
#   - $CROSS_DIR/macos-sdk-stub/TargetConditionals.h: ring's base.h includes it on Apple
#     targets; cross-check.sh adds this dir to the include path (-nostdlibinc, no SDK).
#
#   CROSS_DIR   where the DLL and the stub go (default: $CARGO_TARGET_DIR/cross, or
#               <repo>/target/cross)
#   LATCHKEY_ROOT  the repo (default: the parent of this script's directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${LATCHKEY_ROOT:-$(cd "$here/../.." && pwd)}"
cross_dir="${CROSS_DIR:-${CARGO_TARGET_DIR:-$root/target}/cross}"

PACKAGES=(gcc-mingw-w64-x86-64-win32 wine64 wine clang-14)
TARGETS=(x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "error: missing ${missing[*]}; install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -q
  # No recommends: they pull wine32 (needs i386 multiarch), fonts and a desktop stack.
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

installed="$(rustup target list --installed)"
add=()
for t in "${TARGETS[@]}"; do
  grep -qx "$t" <<<"$installed" || add+=("$t")
done
if ((${#add[@]})); then
  echo "==> rustup target add ${add[*]}"
  rustup target add "${add[@]}"
fi

mkdir -p "$cross_dir/macos-sdk-stub"

dll="$cross_dir/bcryptprimitives.dll"
src="$here/bcryptprimitives.c"
if [[ ! -e "$dll" || "$src" -nt "$dll" ]]; then
  echo "==> building $dll"
  x86_64-w64-mingw32-gcc -shared -O2 -s -Wall -Wextra -o "$dll.tmp" "$src" -ladvapi32
  mv "$dll.tmp" "$dll"
fi

stub="$cross_dir/macos-sdk-stub/TargetConditionals.h"
want='/* Stand-in for the macOS SDK header that ring'\''s base.h includes on Apple targets: enough
   to compile ring'\''s C with clang -nostdlibinc for cargo check/clippy. Nothing is linked. */
#pragma once
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0'
if [[ ! -e "$stub" || "$(cat "$stub")" != "$want" ]]; then
  printf '%s\n' "$want" >"$stub"
fi

echo "==> cross tooling ready in $cross_dir"
