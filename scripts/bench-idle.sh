#!/usr/bin/env bash
# Idle memory of `berth server`, as the footprint table in BENCHMARKS.md gives it: each round
# starts a fresh copy of the release binary, evicted from the page cache (so that only the pages
# it runs are read back), on a fresh data dir, waits 8 s and prints VmRSS with its anonymous and
# file-backed parts; first with `--disable-agent`, then with the server's own node agent (which
# needs dockerd; its node is `<prefix>-0`, removed after each round).
# Usage: scripts/bench-idle.sh [ROUNDS] [BINARY]   (root: it drops the page cache)
cd "$(dirname "$0")/.."
source scripts/lib-cluster.sh
[ "$(id -u)" = 0 ] || { echo "bench-idle.sh needs root (it drops the page cache)" >&2; exit 1; }
rounds=${1:-3}
binary=${2:-}
if [ -z "$binary" ]; then
  cargo build --release --locked -p berth
  binary=$berth
fi
idle_rss() { # label, then extra flags for berth server
  local label=$1
  shift
  rm -rf "$work/server" "$work/berth-idle"
  cp "$binary" "$work/berth-idle"
  sync
  echo 1 >/proc/sys/vm/drop_caches
  "$work/berth-idle" server "$@" --bind-address 127.0.0.1 --https-listen-port 0 --listen-port 0 \
    --cluster-cidr 10.201.0.0/16 --data-dir "$work/server" >"$work/server.out" 2>"$work/server.err" &
  server=$!
  for _ in $(seq 1 100); do grep -q '^export KUBECONFIG=' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
  sleep 8
  echo "$label: $(awk '/^(VmRSS|RssAnon|RssFile)/{printf "%s %.1f MB  ", $1, $2/1024}' "/proc/$server/status")"
  kill "$server"
  wait "$server" 2>/dev/null || true
  unset server
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%F); $binary"
for _ in $(seq 1 "$rounds"); do
  idle_rss "server --disable-agent" --disable-agent
done
for _ in $(seq 1 "$rounds"); do
  idle_rss "server with its agent" --node-name "$prefix-0"
  remove_node_containers "$prefix-0"
done
