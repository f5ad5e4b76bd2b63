#!/usr/bin/env bash
# API server benchmark: starts a release `berth server --disable-agent` in a temporary data
# directory (on this machine's disk) on a free port, records its idle RSS, runs
# `berth bench api` against it over HTTPS, and records the RSS after the load. The LIST is
# measured twice: as JSON decoded into k8s-openapi Pods, and as protobuf (what client-go asks
# for) decoded into k8s-pb's prost Pods.
# Usage: scripts/bench-api.sh [extra flags for berth bench api]
set -euo pipefail
cd "$(dirname "$0")/.."
berth=$PWD/target/release/berth
# Always build: a stale binary would measure old code (a no-op when up to date).
cargo build --release --locked -p berth
work=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-bench-api.XXXXXX")
trap 'kill ${pid:-0} 2>/dev/null || true; rm -rf "$work"' EXIT
"$berth" server --disable-agent --bind-address 127.0.0.1 --https-listen-port 0 --data-dir "$work" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q '^export KUBECONFIG=' "$work/out" 2>/dev/null && break; sleep 0.1; done
kubeconfig=$(sed -n 's/^export KUBECONFIG=//p' "$work/out")
rss() { awk '/VmRSS/{printf "%.1f MB", $2/1024}' "/proc/$pid/status"; }
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%F)"
echo "binary: $(du -h "$berth" | cut -f1)"
sleep 3
echo "idle RSS (server --disable-agent, fresh): $(rss)"
"$berth" bench api --kubeconfig "$kubeconfig" "$@"
echo "RSS after the load (20k ConfigMaps + 10k pods stored): $(rss)"
