#!/usr/bin/env bash
# Pod start latency: a release `berth server --disable-agent` and a separate `berth agent` joined
# with a token (so that the agent's own RSS can be read), in temporary directories on free ports;
# records the agent's idle RSS (and how much of it is the mapped binary), then runs
# `berth bench pods`: 50 pods one at a time and a burst of 50 through Berth, then the same
# containers straight through the Docker API; over each burst it prints the CPU time of the
# server, the agent, dockerd, containerd and itself, and the machine's busy and idle time.
# Needs dockerd and busybox-static. Usage: scripts/bench-pods.sh [extra flags for berth bench pods]
cd "$(dirname "$0")/.."
source scripts/lib-cluster.sh
start_cluster 1
node=$prefix-0
agent=${agents[0]}
sleep 5
awk '/VmRSS|RssAnon|RssFile/{printf "agent idle %s %.1f MB\n", $1, $2/1024}' /proc/$agent/status
"$berth" bench pods --kubeconfig "$kubeconfig" --node "$node" --image "$img" --agent-pid "$agent" \
  --cpu-of "server=$server" --cpu-of "agent=$agent" --cpu-of "dockerd=$(pgrep -xo dockerd)" \
  --cpu-of "containerd=$(pgrep -xo containerd)" "$@"
