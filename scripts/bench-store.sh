#!/usr/bin/env bash
# Side-by-side durable-write benchmark of Berth's embedded store and a single-member etcd on the
# same disk, same value size and concurrency, driven by the same load client
# (`berth bench store`). Prints both figures and their ratio.
# Usage: scripts/bench-store.sh [COUNT] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-30000}
conc=${2:-64}
berth=target/release/berth
[ -x "$berth" ] || cargo build --release --locked
work=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-bench-store.XXXXXX")
trap 'kill ${etcd_pid:-0} 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cp=$(port); pp=$(port)
etcd --name bench --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
  --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
  --initial-cluster "bench=http://127.0.0.1:$pp" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$cp/health" >/dev/null && break; sleep 0.1; done
echo "machine: $(nproc) cores, $(uname -r); disk: $(df -h "$work" | awk 'NR==2{print $1}'); $(date -u +%F)"
"$berth" bench store --backend etcd --etcd-endpoint "http://127.0.0.1:$cp" --count "$count" --concurrency "$conc" | tee "$work/etcd.out"
"$berth" bench store --backend redb --data-dir "$work/redb" --count "$count" --concurrency "$conc" | tee "$work/redb.out"
rate() { sed -E 's/.* = ([0-9]+)\/s.*/\1/' "$1"; }
echo "ratio berth/etcd: $(python3 -c "print(round($(rate "$work/redb.out")/$(rate "$work/etcd.out"),2))")x"
