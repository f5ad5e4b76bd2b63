#!/usr/bin/env bash
# Regenerates berth/link-order.txt, the functions berth/build.rs asks the linker to place first.
#
# Builds the release binary with a linker map, then runs a server and a joined agent, each from
# its own copy of the binary, with readahead off and those copies evicted from the page cache, so
# that the pages present in each process are exactly the pages it executed (the kernel's
# fault-around can only map pages already cached). The agent idles, then runs a pod through its
# life (start, logs, exec, delete) and idles again. The functions on those pages, looked up in the
# map, are written in this order: those of both the idle agent and the server, the rest of the
# idle agent's, the rest of the busy agent's, the rest of the server's, each group in the old
# address order. Needs root (readahead and the page cache), dockerd, busybox-static and kubectl.
cd "$(dirname "$0")/.."
source scripts/lib-cluster.sh
[ "$(id -u)" = 0 ] || { echo "gen-link-order.sh needs root" >&2; exit 1; }
map=$PWD/target/release/berth.map
BERTH_LINK_MAP=$map cargo build --release --locked -p berth
build_image
dev=$(findmnt -no SOURCE --target "$PWD/target" | sed 's|^/dev/||; s|[0-9]*$||')
ra=/sys/block/$dev/queue/read_ahead_kb
old_ra=$(cat "$ra")
restore_ra() { echo "$old_ra" >"$ra"; cleanup_cluster; }
trap restore_ra EXIT
cp "$berth" "$work/berth-server"
cp "$berth" "$work/berth-agent"
echo 0 >"$ra"
sync
echo 1 >/proc/sys/vm/drop_caches

start_server "$work/berth-server"
token=$("$work/berth-server" token create --data-dir "$work/server" | tail -n 1)
node=$prefix-0
"$work/berth-agent" agent --server "$url" --token "$token" --data-dir "$work/agent" --node-name "$node" \
  --node-ip 127.0.0.1 --listen-port 0 >"$work/agent.out" 2>"$work/agent.err" &
agents+=($!)
agent=$!
k wait --for=condition=Ready "node/$node" --timeout=60s >/dev/null
sleep 10
present() { # pid binary -> link-time addresses of the pages present in its mappings of binary
  python3 - "$1" "$2" <<'PY'
import struct, sys
pid, binary = sys.argv[1], sys.argv[2]
maps = [l.split() for l in open(f"/proc/{pid}/maps")]
mine = [m for m in maps if len(m) >= 6 and m[5] == binary]
base = min(int(m[0].split("-")[0], 16) for m in mine if int(m[2], 16) == 0)
with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
    for m in mine:
        lo, hi = (int(x, 16) for x in m[0].split("-"))
        pagemap.seek(lo // 4096 * 8)
        entries = pagemap.read((hi - lo) // 4096 * 8)
        for i in range(len(entries) // 8):
            if struct.unpack_from("<Q", entries, i * 8)[0] >> 63:
                print(f"{lo - base + i * 4096:x}")
PY
}
present "$agent" "$work/berth-agent" >"$work/agent-idle.pages"

cat <<YAML | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: order}
spec:
  nodeName: $node
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: $img
    command: [sh, -c, 'echo hello; exec sleep 3600']
    readinessProbe: {exec: {command: ["true"]}, periodSeconds: 1}
    livenessProbe: {tcpSocket: {port: 1}, initialDelaySeconds: 3600}
YAML
k wait --for=condition=Ready pod/order --timeout=60s >/dev/null
k logs order >/dev/null
k exec order -- true
k delete pod order --wait=true >/dev/null
sleep 5
present "$agent" "$work/berth-agent" >"$work/agent-busy.pages"
present "$server" "$work/berth-server" >"$work/server.pages"
echo "$old_ra" >"$ra"

python3 - "$map" "$work" berth/link-order.txt <<'PY'
import re, sys
mapfile, work, out = sys.argv[1:]
# Input sections of the output .text: "VMA LMA Size Align path:(.text.SYMBOL)".
section = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S.*:\(\.text\.(?:unlikely\.|hot\.|startup\.|exit\.|split\.)?(\S+)\)$")
functions, in_text = [], False
for line in open(mapfile, errors="replace"):
    parts = line.split()
    if len(parts) == 5 and parts[4].startswith("."):
        in_text = parts[4] == ".text"
        continue
    m = in_text and section.match(line)
    if m and int(m.group(2), 16):
        functions.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
functions.sort()
def touched(name):
    pages = {int(l, 16) for l in open(f"{work}/{name}.pages")}
    return {f for (start, size, f) in functions
            if any(p in pages for p in range(start & ~4095, start + size, 4096))}
idle, busy, server = touched("agent-idle"), touched("agent-busy"), touched("server")
# What both run first, then the rest of the idle agent, the rest of the busy agent and the rest
# of the server: the idle agent's code and the server's each lie in one stretch.
seen, order = set(), []
for group, hit in (("idle agent and server", idle & server), ("idle agent", idle),
                   ("busy agent", busy), ("server", server)):
    for (_, _, f) in functions:
        if f in hit and f not in seen:
            seen.add(f)
            order.append(f)
    print(f"{group}: {len(hit)} functions touched, {len(order)} listed so far", file=sys.stderr)
with open(out, "w") as o:
    o.write("".join(f + "\n" for f in order))
PY
echo "wrote berth/link-order.txt ($(wc -l <berth/link-order.txt) functions)"
