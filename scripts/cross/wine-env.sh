# Source this (bash): a throwaway Wine prefix for running latchkey's Windows build (issue 13).
#
#   source scripts/cross/wine-env.sh      # after scripts/cross/cross-setup.sh
#   cargo build --target x86_64-pc-windows-gnu && wine target/x86_64-pc-windows-gnu/debug/docker-credential-latchkey.exe version
#   cargo test --target x86_64-pc-windows-gnu --lib     # runs under wine via the runner below
#   wine_env_stop                   # kills the wineserver, removes the prefix
#
# Sets WINEPREFIX (a new temp dir unless already set to an existing prefix), WINEDEBUG=-all,
# creates the prefix once, installs the bcryptprimitives.dll shim in its system32 (Wine 8.0
# lacks that DLL; every Rust >= 1.78 .exe needs it), starts a persistent wineserver (one per
# process costs ~2.6 s a call) and sets cargo's runner for x86_64-pc-windows-gnu.

_wine_env_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_wine_env_root="${LATCHKEY_ROOT:-$(cd "$_wine_env_here/../.." && pwd)}"
_wine_env_cross="${CROSS_DIR:-${CARGO_TARGET_DIR:-$_wine_env_root/target}/cross}"

export WINEDEBUG=-all
export WINEARCH=win64
# No Mono/Gecko install prompts (nothing here is .NET or HTML), no GUI.
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY

if [[ -z "${WINEPREFIX:-}" ]]; then
  _wine_env_tmp="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-wine.XXXXXX")"
  export WINEPREFIX="$_wine_env_tmp/prefix"
fi

wine_env_stop() {
  wineserver -k 2>/dev/null || true
  if [[ -n "${_wine_env_tmp:-}" ]]; then
    rm -rf "$_wine_env_tmp"
    unset _wine_env_tmp WINEPREFIX
  fi
}

_wine_env_setup() {
  local dll="$_wine_env_cross/bcryptprimitives.dll"
  if [[ ! -e "$dll" ]]; then
    echo "wine-env: $dll is missing: run scripts/cross/cross-setup.sh first" >&2
    return 1
  fi
  if [[ ! -e "$WINEPREFIX/system.reg" ]]; then
    wineboot --init </dev/null >/dev/null 2>&1 || { echo "wine-env: wineboot --init failed" >&2; return 1; }
    wineserver -w # until wineboot's server has written the registry and exited
  fi
  # A persistent server: every wine call after this one reuses it.
  wineserver -p </dev/null >/dev/null 2>&1
  # Start Wine's own services (services.exe, winedevice, rpcss...) now, with no stdio of
  # ours: otherwise the first .exe starts them and they inherit its stdout, and whoever
  # reads that pipe ($(wine ...), cargo test capturing output) waits on it forever.
  wineboot </dev/null >/dev/null 2>&1 || true
  cp -f "$dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
}

if ! _wine_env_setup; then
  return 1 2>/dev/null || exit 1
fi

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
