#!/usr/bin/env bash
# What idle pods cost the machine: a release `berth server --disable-agent` and one `berth agent`
# run a Deployment of N pods (busybox `sleep`, image built locally); once all are Ready and a
# few seconds have passed, prints the CPU time that the agent and dockerd use over a minute,
# as a share of one core. dockerd's share includes whatever else uses it, so run it alone.
# Usage: [BERTH_BINARY=path] scripts/bench-idle-pods.sh [N (default 50)]
cd "$(dirname "$0")/.."
source scripts/lib-cluster.sh
n=${1:-50}
start_cluster 1
deployment idle "$n"
for _ in $(seq 1 600); do
  [ "$(k get deploy idle -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = "$n" ] && break
  sleep 0.5
done
echo "$n pods ready: $(k get deploy idle -o jsonpath='{.status.readyReplicas}')"
sleep 10
dockerd=$(pgrep -xo dockerd)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
a0=$(ticks "${agents[0]}") d0=$(ticks "$dockerd")
sleep 60
a1=$(ticks "${agents[0]}") d1=$(ticks "$dockerd")
hz=$(getconf CLK_TCK)
awk -v a="$((a1 - a0))" -v d="$((d1 - d0))" -v hz="$hz" -v n="$n" 'BEGIN {
  printf "over 60 s with %d idle pods: agent %.2f%% of a core, dockerd %.2f%% of a core\n", n, 100*a/hz/60, 100*d/hz/60 }'
echo "agent RSS: $(awk '/VmRSS/{printf "%.1f MB", $2/1024}' "/proc/${agents[0]}/status")"
k delete deploy idle --wait=false >/dev/null
for _ in $(seq 1 600); do
  [ -z "$(docker ps -aq --filter "label=dev.berth.node=$prefix-0" --filter label=dev.berth.kind=container)" ] && break
  sleep 0.5
done
