#!/usr/bin/env python3
"""Generates crates/berth-api/src/protobuf/generated.rs, the protobuf schema of the built-in kinds.

Usage:
    scripts/gen-protobuf-schema.py TAG API_DIR APIMACHINERY_DIR [OUT]

API_DIR and APIMACHINERY_DIR are checkouts of kubernetes/api and kubernetes/apimachinery at TAG,
the release of the Kubernetes version Berth serves (recorded in the output), e.g.

    git clone --depth 1 --branch v0.33.13 https://github.com/kubernetes/api
    git clone --depth 1 --branch v0.33.13 https://github.com/kubernetes/apimachinery

Field numbers and protobuf types come from each package's `generated.proto`; JSON names,
`omitempty`, pointers and inlined structs come from the `json:` and `protobuf:` tags of the Go
structs beside it (the proto file does not say how a field looks in JSON). The two are joined by
message name and field number, and any disagreement stops the generator.

The table covers every message reachable from the top-level kinds of PACKAGES (a kind is a
message with a `<Kind>List` sibling) and `meta.v1.Status`. Types the encoder has no JSON form for
stop the generator rather than produce a partial table. The output is formatted with rustfmt.
"""

import os
import re
import subprocess
import sys

# Packages whose top-level kinds are served: (repo, directory).
PACKAGES = [
    ("api", "core/v1"),
    ("api", "apps/v1"),
    ("api", "batch/v1"),
    ("api", "autoscaling/v2"),
    ("api", "coordination/v1"),
    ("api", "discovery/v1"),
    ("api", "events/v1"),
    ("api", "networking/v1"),
    ("api", "policy/v1"),
    ("api", "rbac/v1"),
    ("api", "scheduling/v1"),
    ("api", "storage/v1"),
]

# Kinds with no `<Kind>List` that clients send as request bodies of subresources, by package
# (`kubectl create token` posts a TokenRequest to serviceaccounts/token in protobuf).
BODY_KINDS = {
    ("api", "authentication/v1"): ["TokenRequest"],
}

# Packages whose messages may be referenced.
SUPPORT = [
    ("apimachinery", "pkg/apis/meta/v1"),
    ("apimachinery", "pkg/api/resource"),
    ("apimachinery", "pkg/util/intstr"),
    ("apimachinery", "pkg/runtime"),
    ("apimachinery", "pkg/runtime/schema"),
]

EXTRA_ROOTS = ["k8s.io.apimachinery.pkg.apis.meta.v1.Status"]

# Messages with their own JSON form: proto full name -> Ty variant.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
}

SCALARS = {"string": "Str", "bytes": "Bytes", "int32": "I32", "int64": "I64", "bool": "Bool"}


def fail(msg):
    sys.exit(f"gen-protobuf-schema: {msg}")


def parse_proto(path):
    """Returns (package, {message name: [(label, type, name, number)]})."""
    text = open(path, encoding="utf-8").read()
    package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
    messages = {}
    current = None
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"message (\w+) \{$", line)
        if m:
            if current is not None:
                fail(f"{path}: nested message {m.group(1)}")
            current = m.group(1)
            messages[current] = []
            continue
        if line == "}":
            current = None
            continue
        if current is None:
            continue
        m = re.match(r"(optional|repeated) ([\w.]+) (\w+) = (\d+);$", line)
        if m:
            messages[current].append((m.group(1), m.group(2), m.group(3), int(m.group(4))))
            continue
        m = re.match(r"map<(\w+), ([\w.]+)> (\w+) = (\d+);$", line)
        if m:
            if m.group(1) != "string":
                fail(f"{path}: {current}: map key {m.group(1)}")
            messages[current].append(("map", m.group(2), m.group(3), int(m.group(4))))
            continue
        fail(f"{path}: {current}: cannot parse {line!r}")
    return package, messages


def parse_go(directory):
    """Returns {struct name: {"fields": {number: info}, "type_meta": bool}} for the package."""
    structs = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".go") or name.endswith("_test.go") or name.startswith("zz_"):
            continue
        text = open(os.path.join(directory, name), encoding="utf-8").read()
        for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.M | re.S):
            info = {"fields": {}, "type_meta": False}
            for raw in m.group(2).splitlines():
                line = raw.strip()
                if not line or line.startswith("//") or "`" not in line:
                    continue
                code, tags = line.split("`", 1)
                words = code.split()
                if len(words) == 1:
                    go_name, go_type = words[0].lstrip("*").split(".")[-1], words[0]
                elif len(words) == 2:
                    go_name, go_type = words
                else:
                    fail(f"{directory}/{name}: {m.group(1)}: cannot parse {line!r}")
                tag = dict(re.findall(r'(\w+):"([^"]*)"', tags))
                json_tag = tag.get("json", "").split(",")
                if go_type in ("metav1.TypeMeta", "TypeMeta") and "inline" in json_tag:
                    info["type_meta"] = True
                    continue
                if tag.get("protobuf", "-") == "-":
                    continue
                number = int(tag["protobuf"].split(",")[1])
                inline = "inline" in json_tag[1:]
                json_name = json_tag[0] if json_tag[0] not in ("", "-") else None
                info["fields"][number] = {
                    "json": json_name,
                    "inline": inline,
                    "omitempty": "omitempty" in json_tag[1:],
                    "pointer": go_type.startswith("*"),
                    "go": f"{m.group(1)}.{go_name}",
                }
            structs[m.group(1)] = info
    return structs


def group_name(directory):
    register = os.path.join(directory, "register.go")
    m = re.search(r'const GroupName = "([^"]*)"', open(register, encoding="utf-8").read())
    if not m:
        fail(f"{register}: no GroupName")
    return m.group(1)


def ident(full):
    """k8s.io.api.core.v1.PodSpec -> CORE_V1_POD_SPEC."""
    parts = full.split(".")
    pkg = [p for p in parts[:-1] if p not in ("k8s", "io", "api", "apimachinery", "pkg", "apis", "util")]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", parts[-1]).upper()
    return "_".join(p.upper() for p in pkg) + "_" + snake


def main():
    if len(sys.argv) not in (4, 5):
        fail(__doc__)
    tag = sys.argv[1]
    roots_dir = {"api": sys.argv[2], "apimachinery": sys.argv[3]}
    out_path = sys.argv[4] if len(sys.argv) == 5 else os.path.join(
        os.path.dirname(__file__), "..", "crates/berth-api/src/protobuf/generated.rs")

    messages = {}  # full name -> proto fields
    go = {}  # full name -> go struct info
    kinds = []  # (apiVersion, kind, full name)
    for repo, directory in PACKAGES + list(BODY_KINDS) + SUPPORT:
        path = os.path.join(roots_dir[repo], directory)
        package, msgs = parse_proto(os.path.join(path, "generated.proto"))
        structs = parse_go(path)
        for name, fields in msgs.items():
            full = f"{package}.{name}"
            messages[full] = (package, fields)
            if name in structs:
                go[full] = structs[name]
        if (repo, directory) in PACKAGES:
            group = group_name(path)
            version = directory.split("/")[-1]
            api_version = f"{group}/{version}" if group else version
            for name, fields in msgs.items():
                items = [f for f in msgs.get(name + "List", []) if f[2] == "items"]
                if items and items[0][0] == "repeated" and items[0][1] == name:
                    kinds.append((api_version, name, f"{package}.{name}"))
                    kinds.append((api_version, name + "List", f"{package}.{name}List"))
        if (repo, directory) in BODY_KINDS:
            group = group_name(path)
            version = directory.split("/")[-1]
            api_version = f"{group}/{version}" if group else version
            for name in BODY_KINDS[(repo, directory)]:
                if name not in msgs:
                    fail(f"no message {name} in {directory}")
                kinds.append((api_version, name, f"{package}.{name}"))
    kinds.append(("v1", "Status", "k8s.io.apimachinery.pkg.apis.meta.v1.Status"))

    def resolve(package, type_name):
        if type_name in SCALARS:
            return None
        full = type_name[1:] if type_name.startswith(".") else f"{package}.{type_name}"
        if full not in messages:
            fail(f"unknown message type {type_name} (in package {package})")
        return full

    # Every message reachable from the kinds.
    reachable, queue = set(), [k[2] for k in kinds] + EXTRA_ROOTS
    while queue:
        full = queue.pop()
        if full in reachable or full in SPECIAL:
            continue
        reachable.add(full)
        package, fields = messages[full]
        for _label, type_name, _name, _num in fields:
            t = resolve(package, type_name)
            if t:
                queue.append(t)

    out = []
    emit = out.append
    emit("// @generated by scripts/gen-protobuf-schema.py from the generated.proto files and Go types")
    emit(f"// of kubernetes/api and kubernetes/apimachinery {tag}. Do not edit; run the script.")
    emit("")
    emit("//! The protobuf schema of the built-in kinds: every message reachable from the served")
    emit("//! kinds, field numbers with JSON names and types. Generated; holds no logic.")
    emit("")
    emit("use super::schema::Card::*;")
    emit("use super::schema::Ty::*;")
    emit("use super::schema::{Message, f};")
    emit("")
    for full in sorted(reachable):
        package, fields = messages[full]
        info = go.get(full)
        if info is None:
            fail(f"{full}: no Go struct of that name beside its generated.proto")
        emit(f"pub(crate) static {ident(full)}: Message = Message {{")
        emit(f'    name: "{full}",')
        emit(f"    type_meta: {'true' if info['type_meta'] else 'false'},")
        emit("    fields: &[")
        seen = set()
        for label, type_name, proto_name, number in sorted(fields, key=lambda f: f[3]):
            g = info["fields"].get(number)
            if g is None:
                fail(f"{full}.{proto_name} = {number}: no Go field with that protobuf number")
            seen.add(number)
            t = resolve(package, type_name)
            if t is None:
                ty = SCALARS[type_name]
            elif t in SPECIAL:
                ty = SPECIAL[t]
            else:
                ty = f"Msg(&{ident(t)})"
            if g["inline"]:
                if label != "optional" or t is None or t in SPECIAL:
                    fail(f"{full}.{proto_name}: inlined field of type {type_name}")
                card, name = "Inline", proto_name
            else:
                card = {"optional": "One", "repeated": "Many", "map": "Map"}[label]
                name = g["json"]
                if name is None:
                    fail(f"{g['go']} has no JSON name")
            keep = g["pointer"] or not g["omitempty"]
            emit(f'        f({number}, "{name}", {ty}, {card}, {"true" if keep else "false"}),')
        for number, g in info["fields"].items():
            if number not in seen:
                fail(f"{g['go']}: protobuf number {number} is not in {full}")
        emit("    ],")
        emit("};")
        emit("")
    emit("/// The top-level kinds and their lists, by (apiVersion, kind) (sorted).")
    emit("pub(crate) static KINDS: &[(&str, &str, &Message)] = &[")
    for api_version, kind, full in sorted(kinds):
        emit(f'    ("{api_version}", "{kind}", &{ident(full)}),')
    emit("];")
    text = "\n".join(out) + "\n"
    text = subprocess.run(["rustfmt", "--edition", "2024", "--emit", "stdout", "-q"],
                          input=text, capture_output=True, text=True, check=True).stdout
    with open(out_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"{out_path}: {len(reachable)} messages, {len(kinds)} kinds", file=sys.stderr)


if __name__ == "__main__":
    main()
