#!/usr/bin/env bash
# cargo clippy --all-targets -D warnings for the targets this machine can't run natively
# (issue 13). Run cross-setup.sh first. Every target runs; non-zero exit if any failed.
#
#   ./scripts/cross/cross-check.sh                       all three targets
#   ./scripts/cross/cross-check.sh aarch64-apple-darwin  just these
#
# Apple targets: no SDK here, so ring's C is compiled by clang-14 freestanding
# (-nostdlibinc; RING_CORE_NOSTDLIBINC makes ring use its own stddef/stdint subset) with a
# stub TargetConditionals.h. Good for check/clippy; linking for macOS is out of reach.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${LATCHKEY_ROOT:-$(cd "$here/../.." && pwd)}"
cross_dir="${CROSS_DIR:-${CARGO_TARGET_DIR:-$root/target}/cross}"
stub="$cross_dir/macos-sdk-stub"

if (($#)); then
  targets=("$@")
else
  targets=(x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin)
fi

if [[ ! -e "$stub/TargetConditionals.h" ]]; then
  echo "error: $stub/TargetConditionals.h is missing: run cross-setup.sh first" >&2
  exit 1
fi

apple_flags="-ffreestanding -nostdlibinc -DRING_CORE_NOSTDLIBINC -I$stub"
export CC_aarch64_apple_darwin=clang-14 CFLAGS_aarch64_apple_darwin="$apple_flags"
export CC_x86_64_apple_darwin=clang-14 CFLAGS_x86_64_apple_darwin="$apple_flags"
# cc (1.x) runs xcrun for an SDK only for non-macOS Apple targets or an Xcode clang, so a
# plain clang-14 for *-apple-darwin gets none, and the flags above stand in for it.
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc

cd "$root"
failed=()
for t in "${targets[@]}"; do
  echo "==> clippy --workspace --all-targets --target $t"
  start=$(date +%s)
  if cargo clippy --workspace --all-targets --target "$t" -- -D warnings; then
    echo "==> $t: ok ($(($(date +%s) - start)) s)"
  else
    echo "==> $t: FAILED ($(($(date +%s) - start)) s)"
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "==> clippy failed for: ${failed[*]}" >&2
  exit 1
fi
echo "==> clippy clean for: ${targets[*]}"
