#!/usr/bin/env bash
# End-to-end scheduling throughput: a release `berth server --disable-agent` (scheduler and
# controllers in process) and `berth agent --simulate N` (N nodes with real API traffic over an
# in-memory container runtime), in temporary directories on free ports; then
# `berth bench scheduling` creates pods with no node and counts pods bound per second.
# Usage: scripts/bench-scheduling.sh [NODES] [extra flags for berth bench scheduling]
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-100}
shift || true
berth=$PWD/target/release/berth
cargo build --release --locked -p berth
work=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-bench-scheduling.XXXXXX")
# The simulated nodes' pod directories (service-account tokens and other secret volumes, which a
# kubelet keeps on tmpfs) go to memory when /dev/shm exists: a hundred nodes' files on this
# machine's one disk would measure its inode allocator, not the cluster.
sim=$(mktemp -d /dev/shm/berth-bench-sim.XXXXXX 2>/dev/null || mktemp -d "$work/sim.XXXXXX")
cleanup() {
  # Only the processes started (`kill 0` would signal this whole process group).
  kill ${agent:+"$agent"} ${server:+"$server"} 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work" "$sim"
}
trap cleanup EXIT
"$berth" server --disable-agent --bind-address 127.0.0.1 --https-listen-port 0 \
  --cluster-cidr 10.200.0.0/14 --data-dir "$work/server" >"$work/server.out" 2>"$work/server.err" &
server=$!
for _ in $(seq 1 100); do grep -q '^export KUBECONFIG=' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
kubeconfig=$(sed -n 's/^export KUBECONFIG=//p' "$work/server.out")
url=$(sed -n 's/^Berth API server listening on //p' "$work/server.out")
token=$("$berth" token create --data-dir "$work/server" | tail -n 1)
"$berth" agent --simulate "$nodes" --server "$url" --token "$token" --data-dir "$sim" \
  --node-name bench --node-ip 127.0.0.1 >"$work/agent.out" 2>"$work/agent.err" &
agent=$!
for _ in $(seq 1 600); do
  ready=$(kubectl --kubeconfig "$kubeconfig" get nodes --no-headers 2>/dev/null | grep -c ' Ready' || true)
  [ "$ready" -ge "$nodes" ] && break
  sleep 0.2
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(date -u +%F); $ready simulated nodes Ready"
# CPU time (user + system, in clock ticks) of a process so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
seconds_since() { awk -v a="$1" -v b="$(ticks "$2")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f s", (b - a) / hz }'; }
server_ticks=$(ticks "$server")
agent_ticks=$(ticks "$agent")
# Bounded, so that a stuck client cannot hold the machine.
timeout 600 "$berth" bench scheduling --kubeconfig "$kubeconfig" "$@"
echo "CPU during the run: server $(seconds_since "$server_ticks" "$server"), simulated nodes $(seconds_since "$agent_ticks" "$agent")"
echo "server RSS: $(awk '/VmRSS/{printf "%.1f MB", $2/1024}' /proc/$server/status); simulated agent RSS: $(awk '/VmRSS/{printf "%.1f MB", $2/1024}' /proc/$agent/status)"
