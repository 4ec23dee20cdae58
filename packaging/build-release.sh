#!/usr/bin/env bash
# Release artefacts, built on Debian 12 x86_64 (issue 13):
#   dist/docker-credential-latchkey-VERSION-x86_64-unknown-linux-musl.tar.gz
#       the static Linux binary (packaging/build-musl.sh; needs musl-tools), with README and
#       licence files
#   dist/docker-credential-latchkey-VERSION-x86_64-pc-windows-gnu.zip
#       the Windows .exe (mingw-w64; scripts/cross/cross-setup.sh installs it), with README
#   dist/SHA256SUMS
# The Windows build is the one scripts/test.sh runs under Wine in CI. macOS binaries are not
# built here: linking needs Apple's SDK (CI only type-checks the Apple targets).
#
#   packaging/build-release.sh            both
#   packaging/build-release.sh windows    only the .exe zip
#   packaging/build-release.sh linux      only the musl tarball
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

what="${1:-all}"
target_dir="${CARGO_TARGET_DIR:-target}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
name="docker-credential-latchkey-$version"
mkdir -p dist
docs=(README.md)
for f in LICENSE LICENSE-MIT LICENSE-APACHE; do
  [[ -e "$f" ]] && docs+=("$f")
done

need() { # command package
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is missing; install it with: apt-get install $2" >&2; exit 1; }
}

if [[ "$what" == all || "$what" == linux ]]; then
  need musl-gcc musl-tools
  ./packaging/build-musl.sh >/dev/null
  stage="$(mktemp -d)"
  mkdir "$stage/$name"
  cp "$target_dir/x86_64-unknown-linux-musl/release/docker-credential-latchkey" "${docs[@]}" "$stage/$name/"
  tar -C "$stage" --owner=0 --group=0 -czf "dist/$name-x86_64-unknown-linux-musl.tar.gz" "$name"
  rm -rf "$stage"
fi

if [[ "$what" == all || "$what" == windows ]]; then
  need x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64-win32
  need zip zip
  rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu
  CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc \
    cargo build --release --locked --target x86_64-pc-windows-gnu --bin docker-credential-latchkey
  stage="$(mktemp -d)"
  mkdir "$stage/$name"
  cp "$target_dir/x86_64-pc-windows-gnu/release/docker-credential-latchkey.exe" "$stage/$name/"
  for f in "${docs[@]}"; do
    # Windows line endings for the text files people open in Notepad.
    sed 's/$/\r/' "$f" >"$stage/$name/${f%.md}.txt"
  done
  rm -f "dist/$name-x86_64-pc-windows-gnu.zip"
  (cd "$stage" && zip -qr -X "$OLDPWD/dist/$name-x86_64-pc-windows-gnu.zip" "$name")
  rm -rf "$stage"
fi

(cd dist && sha256sum -- *.tar.gz *.zip 2>/dev/null >SHA256SUMS || true)
ls -l dist
