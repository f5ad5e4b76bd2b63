#!/usr/bin/env bash
# Pod start latency: starts a release `berth server --disable-agent` and a separate `berth agent`
# joined with a token (so that the agent's own RSS can be read), both in temporary directories on
# free ports, records the agent's idle RSS, then runs `berth bench pods`: 50 pods one at a time and
# a burst of 50 through Berth, then the same containers straight through the Docker API.
# Needs dockerd and busybox-static. Usage: scripts/bench-pods.sh [extra flags for berth bench pods]
set -euo pipefail
cd "$(dirname "$0")/.."
berth=$PWD/target/release/berth
cargo build --release --locked -p berth
work=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-bench-pods.XXXXXX")
node="bench-$$"
cleanup() {
  kill "${agent:-0}" "${server:-0}" 2>/dev/null || true
  wait 2>/dev/null || true
  ids=$(docker ps -aq --filter "label=dev.berth.node=$node")
  [ -n "$ids" ] && docker rm -f $ids >/dev/null
  nets=$(docker network ls -q --filter "label=dev.berth.node=$node")
  [ -n "$nets" ] && docker network rm $nets >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# A small image for the pods, built locally.
img=berth-bench/busybox:1
mkdir -p "$work/img"
cp /bin/busybox "$work/img/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\n' >"$work/img/Dockerfile"
docker build -q -t "$img" "$work/img" >/dev/null
"$berth" server --disable-agent --bind-address 127.0.0.1 --https-listen-port 0 \
  --cluster-cidr 10.253.0.0/16 --data-dir "$work/server" >"$work/server.out" 2>"$work/server.err" &
server=$!
for _ in $(seq 1 100); do grep -q '^export KUBECONFIG=' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
kubeconfig=$(sed -n 's/^export KUBECONFIG=//p' "$work/server.out")
url=$(sed -n 's/^Berth API server listening on //p' "$work/server.out")
token=$("$berth" token create --data-dir "$work/server" | tail -n 1)
"$berth" agent --server "$url" --token "$token" --data-dir "$work/agent" --node-name "$node" \
  --node-ip 127.0.0.1 --listen-port 0 >"$work/agent.out" 2>"$work/agent.err" &
agent=$!
for _ in $(seq 1 300); do
  kubectl --kubeconfig "$kubeconfig" get node "$node" 2>/dev/null | grep -q ' Ready' && break
  sleep 0.1
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), docker $(docker version -f '{{.Server.Version}}'); $(date -u +%F)"
sleep 5
echo "agent idle RSS: $(awk '/VmRSS/{printf "%.1f MB", $2/1024}' /proc/$agent/status)"
"$berth" bench pods --kubeconfig "$kubeconfig" --node "$node" --image "$img" --agent-pid "$agent" "$@"
