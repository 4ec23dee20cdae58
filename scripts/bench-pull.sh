#!/usr/bin/env bash
# Benchmark (not a test): pull a ~200 MiB single-platform image from a loopback Distribution
# registry with `docker-credential-latchkey pull` and with `skopeo copy docker://... oci:...`,
# interleaved, measuring wall time and peak RSS with /usr/bin/time -v; parallel curl of the same
# blobs to /dev/null is the ceiling.
#
#   scripts/bench-pull.sh [RUNS] [LAYERS] [LAYER_MIB]     (defaults: 5 runs, 4 layers of 50 MiB)
#
# Needs docker-registry, skopeo, curl, gzip and /usr/bin/time (Debian: docker-registry skopeo
# curl gzip time) and a release build (built here if missing). Everything lives in a temp dir
# that is removed at the end; the registry listens on 127.0.0.1 only.
set -euo pipefail

runs=${1:-5}
layers=${2:-4}
layer_mib=${3:-50}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
bin=$root/target/release/docker-credential-latchkey

for tool in docker-registry skopeo curl gzip sha256sum; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install docker-registry skopeo curl gzip coreutils)" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
[[ -x $bin ]] || cargo build --release

work=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX")
registry_pid=
cleanup() {
  if [[ -n $registry_pid ]]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- the image: gzip layers of random data (skopeo keeps gzip layers as they are) ---------
src=$work/src
mkdir -p "$src/blobs/sha256"
put() { # file -> prints "digest size"
  local d
  d=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$src/blobs/sha256/$d"
  echo "sha256:$d $(stat -c %s "$src/blobs/sha256/$d")"
}
layer_json=()
diff_ids=()
for ((i = 0; i < layers; i++)); do
  head -c $((layer_mib * 1024 * 1024)) /dev/urandom > "$work/raw"
  diff_ids+=("\"sha256:$(sha256sum "$work/raw" | cut -d' ' -f1)\"")
  gzip -1 -c "$work/raw" > "$work/layer"
  read -r d s < <(put "$work/layer")
  layer_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$s}")
done
rm -f "$work/raw"
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$(IFS=,; echo "${diff_ids[*]}")" > "$work/config"
read -r config_digest config_size < <(put "$work/config")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
  "$config_digest" "$config_size" "$(IFS=,; echo "${layer_json[*]}")" > "$work/manifest"
read -r manifest_digest manifest_size < <(put "$work/manifest")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
  "$manifest_digest" "$manifest_size" > "$src/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$src/oci-layout"
image_bytes=$(du -cb "$src"/blobs/sha256/* | tail -1 | cut -f1)

# --- the registry -------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 5099)
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
  secret: bench
EOF
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
skopeo copy --quiet --dest-tls-verify=false "oci:$src:v1" "docker://127.0.0.1:$port/bench/image:v1"
ref=127.0.0.1:$port/bench/image:v1
blobs=("$config_digest" $(for l in "${layer_json[@]}"; do echo "$l" | sed 's/.*"digest":"\([^"]*\)".*/\1/'; done))

# --- the runs -----------------------------------------------------------------------------
export DOCKER_CONFIG=$work/docker   # empty: anonymous for every tool
mkdir -p "$DOCKER_CONFIG"
results=$work/results
: > "$results"
measure() { # name command... ; appends "name wall_s rss_kib"
  local name=$1
  shift
  /usr/bin/time -v -o "$work/time" "$@" > /dev/null 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
  echo "$name $wall $rss" >> "$results"
}
curl_all() {
  local d pids=()
  for d in "${blobs[@]}"; do
    curl -sf -o /dev/null "http://127.0.0.1:$port/v2/bench/image/blobs/$d" &
    pids+=($!)
  done
  wait "${pids[@]}"
}
for ((r = 1; r <= runs; r++)); do
  rm -rf "$work/out-latchkey" "$work/out-skopeo"
  measure latchkey "$bin" pull "$ref" --output "$work/out-latchkey" --quiet
  measure skopeo skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$work/out-skopeo:v1"
  start=$(date +%s.%N)
  curl_all
  end=$(date +%s.%N)
  echo "curl-parallel $(awk "BEGIN{print $end - $start}") 0" >> "$results"
  echo "run $r/$runs done" >&2
done
cmp <(cd "$work/out-latchkey/blobs/sha256" && ls) <(cd "$src/blobs/sha256" && ls) >/dev/null \
  || { echo "error: latchkey's layout differs from the pushed blobs" >&2; exit 1; }

# --- the report ---------------------------------------------------------------------------
mib=$(awk "BEGIN{printf \"%.1f\", $image_bytes/1048576}")
echo
echo "image: $mib MiB in $layers layers + config, loopback Distribution, $runs interleaved runs, $(nproc) cores"
printf '%-14s %10s %10s %12s %12s\n' tool "median s" "best s" "median MB/s" "max RSS MiB"
for tool in latchkey skopeo curl-parallel; do
  walls=$(awk -v t="$tool" '$1==t {print $2}' "$results" | sort -n)
  n=$(echo "$walls" | wc -l)
  median=$(echo "$walls" | awk -v n="$n" '{w[NR]=$1} END {print (n%2) ? w[(n+1)/2] : (w[n/2]+w[n/2+1])/2}')
  best=$(echo "$walls" | head -1)
  rss=$(awk -v t="$tool" '$1==t && $3>m {m=$3} END {print m+0}' "$results")
  awk -v t="$tool" -v med="$median" -v best="$best" -v rss="$rss" -v bytes="$image_bytes" 'BEGIN {
    printf "%-14s %10.3f %10.3f %12.0f %12s\n", t, med, best, bytes/med/1e6, (rss>0)?sprintf("%.1f", rss/1024):"-" }'
done
echo
echo "raw (tool wall_s max_rss_kib):"
cat "$results"

