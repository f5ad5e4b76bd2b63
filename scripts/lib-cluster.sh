# Shared by the cluster benchmarks: a release `berth server --disable-agent` and N `berth agent`
# processes joined with a token, in a temporary directory, all on this machine's dockerd.
# Source it, then call `start_cluster N`; `cleanup_cluster` runs at exit. With BERTH_BINARY set,
# that binary runs as it is (no build).
set -euo pipefail
berth=${BERTH_BINARY:-$PWD/target/release/berth}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-bench.XXXXXX")
prefix="bench$$"
agents=()
remove_node_containers() { # node: the containers and networks an agent made for it
  local ids nets
  ids=$(docker ps -aq --filter "label=dev.berth.node=$1")
  [ -n "$ids" ] && docker rm -f $ids >/dev/null
  nets=$(docker network ls -q --filter "label=dev.berth.node=$1")
  [ -n "$nets" ] && docker network rm $nets >/dev/null
  return 0
}
cleanup_cluster() {
  # Only the processes started (`kill 0` would signal this whole process group).
  kill "${agents[@]}" ${server:+"$server"} 2>/dev/null || true
  wait 2>/dev/null || true
  for i in 0 1 2 3 4 5 6 7; do
    remove_node_containers "$prefix-$i"
  done
  rm -rf "$work"
}
trap cleanup_cluster EXIT
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN{printf "%.2f", a-b}'; }
build_image() {
  img=berth-bench/busybox:1
  mkdir -p "$work/img"
  cp /bin/busybox "$work/img/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\n' >"$work/img/Dockerfile"
  docker build -q -t "$img" "$work/img" >/dev/null
}
start_server() { # [binary]: a server with its data in $work/server; sets server, kubeconfig, url
  "${1:-$berth}" server --disable-agent --bind-address 127.0.0.1 --https-listen-port 0 \
    --cluster-cidr 10.201.0.0/16 --data-dir "$work/server" >"$work/server.out" 2>"$work/server.err" &
  server=$!
  for _ in $(seq 1 100); do grep -q '^export KUBECONFIG=' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
  kubeconfig=$(sed -n 's/^export KUBECONFIG=//p' "$work/server.out")
  url=$(sed -n 's/^Berth API server listening on //p' "$work/server.out")
}
start_cluster() {
  local n=$1
  [ -n "${BERTH_BINARY:-}" ] || cargo build --release --locked -p berth
  build_image
  start_server
  local token
  token=$("$berth" token create --data-dir "$work/server" | tail -n 1)
  for i in $(seq 0 $((n - 1))); do
    "$berth" agent --server "$url" --token "$token" --data-dir "$work/agent-$i" --node-name "$prefix-$i" \
      --node-ip 127.0.0.1 --listen-port 0 >"$work/agent-$i.out" 2>"$work/agent-$i.err" &
    agents+=($!)
  done
  for _ in $(seq 1 600); do
    [ "$(k get nodes --no-headers 2>/dev/null | grep -c ' Ready')" -ge "$n" ] && break
    sleep 0.2
  done
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), docker $(docker version -f '{{.Server.Version}}'); $(date -u +%F)"
}
deployment() { # name replicas [readiness-period-seconds]
  # With a third argument each pod has an exec readiness probe of that period: Ready then
  # means the agent has probed the container, not just started it.
  local probe=""
  [ -n "${3:-}" ] && probe="        readinessProbe: {exec: {command: [\"true\"]}, periodSeconds: $3}"
  cat <<YAML | k apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: $img
        command: [sleep, "3600"]
$probe
YAML
}
