#!/usr/bin/env bash
# A Deployment of N replicas (default 100) on three Berth nodes, time from `kubectl apply` to all
# Ready, beside `docker service create --replicas N` of the same image and command on Docker
# Swarm on the same dockerd, time to N/N running. Prints both and the ratio. Neither has a
# health check: a pod is Ready, a task running, once its container runs.
# Usage: scripts/bench-deploy.sh [N]
cd "$(dirname "$0")/.."
source scripts/lib-cluster.sh
n=${1:-100}
start_cluster 3
t0=$(now)
deployment many "$n"
until [ "$(k get deploy many -o jsonpath='{.status.availableReplicas}')" = "$n" ]; do
  [ "$(since "$t0" | cut -d. -f1)" -lt 900 ] || { echo "Berth: not all $n Ready after 900 s"; k get deploy many; exit 1; }
  sleep 0.2
done
berth_s=$(since "$t0")
echo "Berth: $n replicas on 3 nodes Ready after $berth_s s"
k delete deploy many --wait=true >/dev/null
kill "${agents[@]}" 2>/dev/null || true

joined=""
if [ "$(docker info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  joined=1
fi
svc="bench-$$"
t0=$(now)
docker service create --detach --quiet --no-resolve-image --name "$svc" --replicas "$n" "$img" sleep 3600 >/dev/null
until [ "$(docker service ls --filter "name=$svc" --format '{{.Replicas}}')" = "$n/$n" ]; do sleep 0.2; done
swarm_s=$(since "$t0")
echo "Docker Swarm: $n replicas running after $swarm_s s"
docker service rm "$svc" >/dev/null
[ -n "$joined" ] && docker swarm leave --force >/dev/null
echo "ratio Berth / Swarm: $(awk -v a="$berth_s" -v b="$swarm_s" 'BEGIN{printf "%.2f", a/b}')"
