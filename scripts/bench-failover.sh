#!/usr/bin/env bash
# Node failover: three agents, a Deployment of 6; one machine "dies" (its agent is killed with
# SIGKILL and its containers removed, as if the machine lost power). Prints the time from the
# kill to the node NotReady and to all 6 replicas Ready on the surviving nodes.
# Usage: scripts/bench-failover.sh [ROUNDS]
cd "$(dirname "$0")/.."
source scripts/lib-cluster.sh
rounds=${1:-3}
start_cluster 4
for r in $(seq 1 "$rounds"); do
  deployment web 6 1
  until [ "$(k get deploy web -o jsonpath='{.status.availableReplicas}')" = 6 ]; do sleep 0.2; done
  victim=$(k get pods -l app=web -o jsonpath='{.items[0].spec.nodeName}')
  i=${victim##*-}
  t0=$(now)
  kill -9 "${agents[$i]}"
  ids=$(docker ps -aq --filter "label=dev.berth.node=$victim"); [ -n "$ids" ] && docker rm -f $ids >/dev/null
  notready=""
  while :; do
    if [ -z "$notready" ] && ! k get node "$victim" --no-headers | grep -q ' Ready'; then
      notready=$(since "$t0")
    fi
    ready=$(k get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}|{.spec.nodeName}|{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
      | awk -F'|' -v v="$victim" '$1=="" && $2!=v && $3=="True"' | wc -l)
    [ "$ready" -ge 6 ] && break
    sleep 0.1
  done
  echo "round $r: node $victim NotReady after ${notready:-?} s; 6 replicas Ready elsewhere after $(since "$t0") s"
  k delete deploy web --wait=true >/dev/null
  k delete node "$victim" >/dev/null
  # The next round needs a live fourth node again: restart the dead agent (it keeps its
  # credentials) under its old name.
  "$berth" agent --data-dir "$work/agent-$i" --node-name "$victim" --node-ip 127.0.0.1 --listen-port 0 \
    >>"$work/agent-$i.out" 2>>"$work/agent-$i.err" &
  agents[$i]=$!
  until k get node "$victim" --no-headers 2>/dev/null | grep -q ' Ready'; do sleep 0.2; done
done
