#!/usr/bin/env bash
# store/get/list/erase through the Windows .exe under wine, for each LATCHKEY_STORE, timing
# every call. Expects wine-env.sh to have been sourced (WINEPREFIX, persistent wineserver).
#   wine-smoke.sh path/to/docker-credential-latchkey.exe
set -uo pipefail
exe="$1"
fails=0
ms() { echo $(( $(date +%s%N) / 1000000 )); }
call() { # store-kind expected-rc stdin args...
  local store="$1" want="$2" input="$3"; shift 3
  local t0 out rc t1
  t0=$(ms)
  out=$(printf '%s' "$input" | LATCHKEY_STORE="$store" wine "$exe" "$@" 2>&1); rc=$?
  t1=$(ms)
  printf '%-8s %-7s rc=%-3s %5d ms  %s\n' "$store" "$*" "$rc" "$((t1 - t0))" "$(tr -d '\r' <<<"$out" | head -c 160 | tr '\n' ' ')"
  if [[ "$rc" != "$want" ]]; then echo "   ^ expected rc=$want"; fails=$((fails + 1)); fi
}
for store in keyring file; do
  call "$store" 0 '{"ServerURL":"a.example","Username":"u","Secret":"s"}' store
  call "$store" 0 'a.example' get
  call "$store" 0 '' list
  call "$store" 0 'a.example' erase
  call "$store" 1 'a.example' get
  call "$store" 0 '' list
done
echo "wine-smoke: $fails unexpected exit codes"
exit $((fails > 0))
