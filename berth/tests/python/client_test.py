"""End-to-end checks with the official Python Kubernetes client against a Berth server.

Usage: client_test.py KUBECONFIG
Exits non-zero with a message on the first failed check.
"""

import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def check(cond, msg):
    if not cond:
        print("FAILED: " + msg, file=sys.stderr)
        sys.exit(1)


def main():
    config.load_kube_config(config_file=sys.argv[1])
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    ns = "py-%d" % int(time.time() * 1000)

    # create
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for i in range(5):
        core.create_namespaced_config_map(ns, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm-%d" % i, "labels": {"parity": "even" if i % 2 == 0 else "odd"}},
            "data": {"i": str(i)},
        })
    dep = apps.create_namespaced_deployment(ns, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "registry.local/web:1",
                                                  "ports": [{"containerPort": 80}]}]}},
        },
    })
    check(dep.spec.strategy.type == "RollingUpdate", "deployment defaults are filled")

    # list with a label selector
    even = core.list_namespaced_config_map(ns, label_selector="parity=even")
    check(sorted(c.metadata.name for c in even.items) == ["cm-0", "cm-2", "cm-4"], "label selector")
    # (by label: the namespace also holds the kube-root-ca.crt ConfigMap a controller adds)
    page = core.list_namespaced_config_map(ns, label_selector="parity", limit=2)
    check(len(page.items) == 2 and page.metadata._continue, "limit gives a continue token")
    rest = core.list_namespaced_config_map(ns, label_selector="parity", limit=10, _continue=page.metadata._continue)
    names = sorted(c.metadata.name for c in page.items + rest.items)
    check(names == ["cm-%d" % i for i in range(5)], "continue returns the rest: %r" % names)

    # patch: a dict is a strategic merge patch; a list is a JSON patch
    core.patch_namespaced_config_map("cm-1", ns, {"data": {"extra": "yes"}})
    cm = core.read_namespaced_config_map("cm-1", ns)
    check(cm.data == {"i": "1", "extra": "yes"}, "strategic merge patch of data: %r" % cm.data)
    apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "registry.local/web:2"}]}}}})
    d = apps.read_namespaced_deployment("web", ns)
    c = d.spec.template.spec.containers[0]
    check(c.image == "registry.local/web:2" and c.ports[0].container_port == 80, "ports kept by strategic merge")
    core.patch_namespaced_config_map("cm-1", ns, [{"op": "replace", "path": "/data/extra", "value": "no"}])
    check(core.read_namespaced_config_map("cm-1", ns).data["extra"] == "no", "json patch")

    # watch with timeoutSeconds, seeing another client's writes
    start_rv = core.list_namespaced_config_map(ns).metadata.resource_version
    seen = []

    def writer():
        time.sleep(0.5)
        core.create_namespaced_config_map(ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
        core.delete_namespaced_config_map("late", ns)

    t = threading.Thread(target=writer)
    t.start()
    began = time.time()
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=start_rv, timeout_seconds=3):
        seen.append((ev["type"], ev["object"].metadata.name))
    t.join()
    took = time.time() - began
    check(("ADDED", "late") in seen and ("DELETED", "late") in seen, "watch events: %r" % seen)
    check(2.5 <= took < 10, "the watch ended at its timeout (%.1fs)" % took)

    # 410 for a compacted resourceVersion, then recovery by listing again
    for i in range(20):
        core.patch_namespaced_config_map("cm-0", ns, {"data": {"n": str(i)}})
    time.sleep(3.5)  # the server runs with a 1s compaction interval
    gone = False
    try:
        for ev in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=start_rv, timeout_seconds=3):
            pass
    except ApiException as e:
        gone = e.status == 410
    check(gone, "a watch from a compacted resourceVersion gets 410")
    fresh = core.list_namespaced_config_map(ns)
    names = []
    def writer2():
        time.sleep(0.5)
        core.create_namespaced_config_map(ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-410"}})
    t = threading.Thread(target=writer2)
    t.start()
    for ev in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=fresh.metadata.resource_version, timeout_seconds=2):
        names.append(ev["object"].metadata.name)
    t.join()
    check("after-410" in names, "the watch resumed from a fresh list: %r" % names)

    # errors are Status objects with the right codes
    try:
        core.read_namespaced_config_map("nope", ns)
        check(False, "reading a missing object fails")
    except ApiException as e:
        check(e.status == 404, "404 for a missing object")
    try:
        core.create_namespaced_config_map(ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-0"}})
        check(False, "creating an existing object fails")
    except ApiException as e:
        check(e.status == 409 and "AlreadyExists" in e.body, "409 AlreadyExists")

    core.delete_namespace(ns)
    print("python client: all checks passed")


if __name__ == "__main__":
    main()
