//! Tests of the server-side printers against what a Kubernetes 1.33 API server prints.

use super::*;
use crate::kinds;

fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().expect("timestamp")
}

fn kind(api_version: &str, k: &str) -> &'static ResourceKind {
    kinds::by_kind(api_version, k).expect("registered kind")
}

fn names(k: &ResourceKind) -> Vec<&'static str> {
    columns(k).iter().map(|c| c.name).collect()
}

/// The non-wide cells of a row, as kubectl shows them.
fn narrow(k: &ResourceKind, obj: &Value) -> Vec<Value> {
    let cols = columns(k);
    cells(k, obj, now())
        .into_iter()
        .zip(cols)
        .filter(|(_, c)| c.priority == 0)
        .map(|(v, _)| v)
        .collect()
}

fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": "2025-06-01T11:00:00Z"},
        "spec": {
            "initContainers": [{"name": "init-myservice", "image": "busybox:1.36"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}],
            "nodeName": "node-1",
        },
        "status": status,
    })
}

#[test]
fn human_durations_match_apimachinery() {
    let s = 1_000_000_000i128;
    for (secs, want) in [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 25 * 60, "3h25m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (3 * 86400, "3d"),
        (30 * 86400, "30d"),
        (800 * 86400, "2y70d"),
        (365 * 3 * 86400, "3y"),
        (365 * 9 * 86400, "9y"),
    ] {
        assert_eq!(human_duration(secs * s), want, "{secs}s");
    }
    assert_eq!(since(None, now()), "<unknown>");
}

#[test]
fn pod_waiting_for_init_container() {
    let p = pod(json!({
        "phase": "Pending",
        "conditions": [{"type": "Initialized", "status": "False"}],
        "initContainerStatuses": [{"name": "init-myservice", "ready": false, "restartCount": 0,
            "state": {"running": {"startedAt": "2025-06-01T11:00:05Z"}}}],
        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}}}],
    }));
    let k = kind("v1", "Pod");
    assert_eq!(
        narrow(k, &p),
        vec![
            json!("web-0"),
            json!("0/1"),
            json!("Init:0/1"),
            json!("0"),
            json!("60m")
        ]
    );
}

#[test]
fn pod_init_crash_loop() {
    let p = pod(json!({
        "phase": "Pending",
        "initContainerStatuses": [{"name": "init-myservice", "ready": false, "restartCount": 3,
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2025-06-01T11:57:50Z"}},
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}],
        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}}}],
    }));
    let row = narrow(kind("v1", "Pod"), &p);
    assert_eq!(row[1], json!("0/1"));
    assert_eq!(row[2], json!("Init:CrashLoopBackOff"));
    assert_eq!(row[3], json!("3 (2m10s ago)"));

    let failed = pod(json!({
        "phase": "Pending",
        "initContainerStatuses": [{"name": "init-myservice", "restartCount": 0,
            "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}],
    }));
    assert_eq!(narrow(kind("v1", "Pod"), &failed)[2], json!("Init:Error"));
    let signalled = pod(json!({
        "phase": "Pending",
        "initContainerStatuses": [{"name": "init-myservice", "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "signal": 9}}}],
    }));
    assert_eq!(
        narrow(kind("v1", "Pod"), &signalled)[2],
        json!("Init:Signal:9")
    );
}

#[test]
fn pod_initializing_after_init_done() {
    let p = pod(json!({
        "phase": "Pending",
        "initContainerStatuses": [{"name": "init-myservice", "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}}}],
    }));
    assert_eq!(narrow(kind("v1", "Pod"), &p)[2], json!("PodInitializing"));
}

#[test]
fn pod_crash_loop_and_image_pull() {
    let mut p = pod(json!({
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"}],
        "initContainerStatuses": [{"name": "init-myservice", "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 5,
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2025-06-01T11:59:15Z"}},
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
    }));
    let row = narrow(kind("v1", "Pod"), &p);
    assert_eq!(
        row[1..4],
        [
            json!("0/1"),
            json!("CrashLoopBackOff"),
            json!("5 (45s ago)")
        ]
    );

    p["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": "ErrImagePull"}});
    p["status"]["containerStatuses"][0]["restartCount"] = json!(0);
    let row = narrow(kind("v1", "Pod"), &p);
    assert_eq!(row[2..4], [json!("ErrImagePull"), json!("0")]);
}

#[test]
fn pod_completed_and_error() {
    let k = kind("v1", "Pod");
    let completed = json!({
        "metadata": {"name": "pi-x7k2p", "creationTimestamp": "2025-06-01T11:55:00Z"},
        "spec": {"containers": [{"name": "pi", "image": "perl"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [{"name": "pi", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]},
    });
    assert_eq!(
        narrow(k, &completed),
        vec![
            json!("pi-x7k2p"),
            json!("0/1"),
            json!("Completed"),
            json!("0"),
            json!("5m")
        ]
    );
    let t = table(k, &[&completed], now(), IncludeObject::None, json!({}));
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
    assert!(t["rows"][0].get("object").is_none());

    let error = json!({
        "metadata": {"name": "fail"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "c", "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
    });
    let row = narrow(k, &error);
    assert_eq!(row[2], json!("Error"));
    assert_eq!(row[4], json!("<unknown>"));
    let exit = json!({
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 3}}}]},
    });
    assert_eq!(narrow(k, &exit)[2], json!("ExitCode:3"));
}

#[test]
fn pod_running_two_of_two_and_wide_columns() {
    let p = json!({
        "metadata": {"name": "web-7d4b9c8f5-abcde", "creationTimestamp": "2025-05-30T09:00:00Z"},
        "spec": {
            "containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "nodeName": "worker-2",
            "readinessGates": [{"conditionType": "example.com/feature-1"}],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}],
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "example.com/feature-1", "status": "True"}],
            "containerStatuses": [
                {"name": "nginx", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2025-05-30T09:00:10Z"}}},
                {"name": "sidecar", "ready": true, "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2025-06-01T09:00:00Z"}}},
            ],
        },
    });
    let k = kind("v1", "Pod");
    assert_eq!(
        cells(k, &p, now()),
        vec![
            json!("web-7d4b9c8f5-abcde"),
            json!("2/2"),
            json!("Running"),
            json!("1 (3h ago)"),
            json!("2d3h"),
            json!("10.244.1.7"),
            json!("worker-2"),
            json!("<none>"),
            json!("1/1"),
        ]
    );
}

#[test]
fn pod_terminating_node_lost_and_gated() {
    let k = kind("v1", "Pod");
    let mut p = json!({
        "metadata": {"name": "a", "deletionTimestamp": "2025-06-01T11:59:00Z"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}}]},
    });
    assert_eq!(narrow(k, &p)[1..3], [json!("1/1"), json!("Terminating")]);
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(narrow(k, &p)[2], json!("Unknown"));

    let legacy_ip = json!({"metadata": {"name": "l"}, "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running", "podIP": "10.1.2.3"}});
    assert_eq!(
        cells(k, &legacy_ip, now())[5..8],
        [json!("10.1.2.3"), json!("<none>"), json!("<none>")]
    );
    let gated = json!({
        "metadata": {"name": "g"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
    });
    assert_eq!(narrow(k, &gated)[2], json!("SchedulingGated"));
    let evicted = json!({"metadata": {"name": "e"}, "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Failed", "reason": "Evicted"}});
    assert_eq!(narrow(k, &evicted)[2], json!("Evicted"));
}

#[test]
fn pod_with_native_sidecar() {
    let p = json!({
        "metadata": {"name": "s"},
        "spec": {
            "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 2, "state": {"running": {}}}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}],
        },
    });
    let row = narrow(kind("v1", "Pod"), &p);
    assert_eq!(row[1..4], [json!("2/2"), json!("Running"), json!("2")]);
}

#[test]
fn deployment_row() {
    let d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "creationTimestamp": "2025-06-01T11:56:40Z"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx", "tier": "web"},
                         "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "canary"]}]},
            "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.14.2"},
                {"name": "log", "image": "busybox"},
            ]}},
        },
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
    });
    let k = kind("apps/v1", "Deployment");
    assert_eq!(
        names(k),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        cells(k, &d, now()),
        vec![
            json!("nginx-deployment"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("3m20s"),
            json!("nginx,log"),
            json!("nginx:1.14.2,busybox"),
            json!("app=nginx,env in (canary,prod),tier=web"),
        ]
    );
}

#[test]
fn service_rows() {
    let k = kind("v1", "Service");
    assert_eq!(
        names(k),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    let svc = |spec: Value, status: Value| json!({"metadata": {"name": "my-svc", "creationTimestamp": "2025-06-01T11:59:55Z"}, "spec": spec, "status": status});
    let cluster_ip = svc(
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
               "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
               "selector": {"k8s-app": "kube-dns"}}),
        json!({}),
    );
    assert_eq!(
        cells(k, &cluster_ip, now()),
        vec![
            json!("my-svc"),
            json!("ClusterIP"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("53/UDP,53/TCP"),
            json!("5s"),
            json!("k8s-app=kube-dns")
        ]
    );
    let node_port = svc(
        json!({"type": "NodePort", "clusterIPs": ["10.96.3.4"],
               "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(
        cells(k, &node_port, now())[3..5],
        [json!("<none>"), json!("80:30080/TCP")]
    );
    assert_eq!(cells(k, &node_port, now())[6], json!("<none>"));
    let pending = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.3.5"], "ports": []}),
        json!({}),
    );
    assert_eq!(
        cells(k, &pending, now())[3..5],
        [json!("<pending>"), json!("<none>")]
    );
    let lb = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.3.5"], "externalIPs": ["192.0.2.9"]}),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]}}),
    );
    assert_eq!(
        cells(k, &lb, now())[3],
        json!("203.0.113.7,lb.example.com,192.0.2.9")
    );
    let single = svc(
        json!({"type": "ClusterIP", "clusterIP": "10.96.7.7"}),
        json!({}),
    );
    assert_eq!(cells(k, &single, now())[2], json!("10.96.7.7"));
    let headless = svc(
        json!({"type": "ClusterIP", "clusterIPs": ["None"]}),
        json!({}),
    );
    assert_eq!(cells(k, &headless, now())[2], json!("None"));
    let external = svc(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    assert_eq!(
        cells(k, &external, now())[2..4],
        [json!("<none>"), json!("db.example.com")]
    );
}

#[test]
fn node_row() {
    let n = json!({
        "metadata": {"name": "cp-1", "creationTimestamp": "2025-05-01T12:00:00Z",
                     "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "cp-1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.8.0", "containerRuntimeVersion": "containerd://2.0.3"},
        },
    });
    let k = kind("v1", "Node");
    assert_eq!(
        cells(k, &n, now()),
        vec![
            json!("cp-1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,master"),
            json!("31d"),
            json!("v1.33.1"),
            json!("172.18.0.2"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.8.0"),
            json!("containerd://2.0.3")
        ]
    );
    let bare = json!({"metadata": {"name": "n"}});
    assert_eq!(
        cells(k, &bare, now())[1..3],
        [json!("Unknown"), json!("<none>")]
    );
}

#[test]
fn event_rows_core_and_events_api() {
    let core = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-0.17f1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
        "reason": "Pulled", "type": "Normal", "message": "Container image \"nginx\" already present on machine\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2025-06-01T11:50:00Z", "lastTimestamp": "2025-06-01T11:58:00Z", "count": 4,
    });
    let k = kind("v1", "Event");
    assert_eq!(names(k)[..4], ["Last Seen", "Type", "Reason", "Object"]);
    assert_eq!(
        cells(k, &core, now()),
        vec![
            json!("2m"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web-0"),
            json!("spec.containers{app}"),
            json!("kubelet, node-1"),
            json!("Container image \"nginx\" already present on machine"),
            json!("10m"),
            json!(4),
            json!("web-0.17f1")
        ]
    );
    let new = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e2"},
        "eventTime": "2025-06-01T11:59:29.500000Z",
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up", "action": "Scale",
        "reportingController": "deployment-controller", "reportingInstance": "",
    });
    let k2 = kind("events.k8s.io/v1", "Event");
    assert_eq!(columns(k2), columns(k));
    assert_eq!(
        cells(k2, &new, now()),
        vec![
            json!("30s"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller"),
            json!("Scaled up"),
            json!("30s"),
            json!(1),
            json!("e2")
        ]
    );
    let series = json!({"metadata": {"name": "s"}, "eventTime": "2025-06-01T11:00:00.000000Z",
        "series": {"count": 7, "lastObservedTime": "2025-06-01T11:59:00.000000Z"}, "involvedObject": {"kind": "Node"}});
    let row = cells(k, &series, now());
    assert_eq!(
        (&row[0], &row[3], &row[8]),
        (&json!("60s"), &json!("node"), &json!(7))
    );
}

#[test]
fn workload_rows() {
    let rs = json!({"metadata": {"name": "web-5d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}, "status": {"replicas": 2, "readyReplicas": 1}});
    assert_eq!(
        narrow(kind("apps/v1", "ReplicaSet"), &rs)[1..4],
        [json!(2), json!(2), json!(1)]
    );
    let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
    assert_eq!(
        narrow(kind("apps/v1", "StatefulSet"), &sts)[1],
        json!("3/3")
    );
    let ds = json!({"metadata": {"name": "fluentd"}, "spec": {"selector": {"matchLabels": {"name": "fluentd"}},
        "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "f", "image": "fluentd"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}});
    let k = kind("apps/v1", "DaemonSet");
    assert_eq!(
        cells(k, &ds, now())[1..7],
        [
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux")
        ]
    );
    let job = json!({"metadata": {"name": "pi"}, "spec": {"completions": 1, "parallelism": 1,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
        "status": {"succeeded": 1, "startTime": "2025-06-01T11:50:00Z", "completionTime": "2025-06-01T11:50:42Z",
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
    assert_eq!(
        narrow(kind("batch/v1", "Job"), &job)[1..4],
        [json!("Complete"), json!("1/1"), json!("42s")]
    );
    let running = json!({"metadata": {"name": "p"}, "spec": {"parallelism": 3}, "status": {"startTime": "2025-06-01T11:55:00Z"}});
    assert_eq!(
        narrow(kind("batch/v1", "Job"), &running)[1..4],
        [json!("Running"), json!("0/1 of 3"), json!("5m")]
    );
    let cj = json!({"metadata": {"name": "hello"}, "spec": {"schedule": "*/1 * * * *", "suspend": false,
        "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
        "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": "2025-06-01T11:59:00Z"}});
    assert_eq!(
        cells(kind("batch/v1", "CronJob"), &cj, now())[1..10],
        [
            json!("*/1 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("60s"),
            json!("<unknown>"),
            json!("hello"),
            json!("busybox"),
            json!("<none>")
        ]
    );
}

#[test]
fn config_and_storage_rows() {
    let cm = json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(narrow(kind("v1", "ConfigMap"), &cm)[1], json!(3));
    let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}});
    assert_eq!(
        narrow(kind("v1", "Secret"), &secret)[1..3],
        [json!("Opaque"), json!(1)]
    );
    let pvc = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv-1", "storageClassName": "standard",
        "volumeMode": "Filesystem", "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"]}});
    assert_eq!(
        cells(kind("v1", "PersistentVolumeClaim"), &pvc, now()),
        vec![
            json!("data"),
            json!("Bound"),
            json!("pv-1"),
            json!("1Gi"),
            json!("RWO,RWX"),
            json!("standard"),
            json!("<unset>"),
            json!("<unknown>"),
            json!("Filesystem")
        ]
    );
    let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        narrow(kind("storage.k8s.io/v1", "StorageClass"), &sc)[..5],
        [
            json!("standard (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false)
        ]
    );
    let quota = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
        "used": {"pods": "3", "requests.cpu": "500m"}}});
    assert_eq!(
        narrow(kind("v1", "ResourceQuota"), &quota)[1..3],
        [
            json!("pods: 3/10, requests.cpu: 500m/1"),
            json!("limits.cpu: 0/2")
        ]
    );
}

#[test]
fn networking_and_rbac_rows() {
    let ep = json!({"metadata": {"name": "kubernetes"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
        "ports": [{"name": "https", "port": 6443}, {"name": "x", "port": 80}]}]});
    assert_eq!(
        narrow(kind("v1", "Endpoints"), &ep)[1],
        json!("10.0.0.1:6443,10.0.0.2:6443,10.0.0.1:80 + 1 more...")
    );
    assert_eq!(
        narrow(kind("v1", "Endpoints"), &json!({"metadata": {"name": "e"}}))[1],
        json!("<none>")
    );
    let slice = json!({"metadata": {"name": "k-abc"}, "addressType": "IPv4", "ports": [{"port": 6443}],
        "endpoints": [{"addresses": ["172.18.0.2"]}]});
    assert_eq!(
        narrow(kind("discovery.k8s.io/v1", "EndpointSlice"), &slice)[1..4],
        [json!("IPv4"), json!("6443"), json!("172.18.0.2")]
    );
    let empty_slice = json!({"metadata": {"name": "e"}, "addressType": "IPv4"});
    assert_eq!(
        narrow(kind("discovery.k8s.io/v1", "EndpointSlice"), &empty_slice)[2..4],
        [json!("<unset>"), json!("<unset>")]
    );
    let ing = json!({"metadata": {"name": "web"}, "spec": {"ingressClassName": "nginx",
        "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}], "tls": [{"hosts": ["a.example.com"]}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.5"}]}}});
    assert_eq!(
        narrow(kind("networking.k8s.io/v1", "Ingress"), &ing)[1..5],
        [
            json!("nginx"),
            json!("a.example.com,b.example.com"),
            json!("172.18.0.5"),
            json!("80, 443")
        ]
    );
    let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
    assert_eq!(
        narrow(kind("networking.k8s.io/v1", "NetworkPolicy"), &np)[1],
        json!("<none>")
    );
    let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "Group", "name": "devs"}]});
    let k = kind("rbac.authorization.k8s.io/v1", "RoleBinding");
    let row = cells(k, &rb, now());
    assert_eq!(
        (&row[1], &row[3], &row[4], &row[5]),
        (
            &json!("ClusterRole/view"),
            &json!("jane"),
            &json!("devs"),
            &json!("ns/sa")
        )
    );
    let pdb = json!({"metadata": {"name": "pdb"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        narrow(kind("policy/v1", "PodDisruptionBudget"), &pdb)[1..4],
        [json!("50%"), json!("N/A"), json!(1)]
    );
    let hpa = json!({"metadata": {"name": "php"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "php-apache"},
        "minReplicas": 1, "maxReplicas": 10, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
        "status": {"currentReplicas": 1, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 0, "averageValue": "1m"}}}]}});
    assert_eq!(
        narrow(kind("autoscaling/v2", "HorizontalPodAutoscaler"), &hpa)[1..6],
        [
            json!("Deployment/php-apache"),
            json!("cpu: 0%/50%"),
            json!("1"),
            json!(10),
            json!(1)
        ]
    );
    let cr = json!({"metadata": {"name": "web-6d", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]}, "revision": 2});
    assert_eq!(
        narrow(kind("apps/v1", "ControllerRevision"), &cr)[1..3],
        [json!("statefulset.apps/web"), json!(2)]
    );
}

#[test]
fn kinds_without_printer_use_the_default_table() {
    for (av, k) in [
        ("v1", "LimitRange"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ] {
        let kd = kind(av, k);
        assert_eq!(names(kd), ["Name", "Created At"]);
        assert_eq!(columns(kd)[1].kind, "date");
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2025-05-01T10:00:00Z"}});
        assert_eq!(
            cells(kd, &obj, now()),
            vec![json!("x"), json!("2025-05-01T10:00:00Z")]
        );
    }
}

#[test]
fn every_kind_has_name_column_and_consistent_cells() {
    let empty = json!({});
    let garbage = json!({"metadata": {"name": 5}, "spec": [], "status": "x", "subsets": 3});
    for k in kinds::all() {
        let cols = columns(k);
        assert!(!cols.is_empty(), "{}", k.kind);
        if k.kind == "Event" {
            assert_eq!(cols.iter().filter(|c| c.format == "name").count(), 1);
            assert_eq!(cols.last().map(|c| c.name), Some("Name"));
        } else {
            assert_eq!(
                (cols[0].name, cols[0].format),
                ("Name", "name"),
                "{}",
                k.kind
            );
            assert!(cols[1..].iter().all(|c| c.format.is_empty()), "{}", k.kind);
        }
        for c in &cols {
            assert!(["string", "integer", "number", "boolean", "date"].contains(&c.kind));
            assert!(c.priority == 0 || c.priority == 1);
            assert!(!c.description.is_empty());
        }
        assert!(
            cols.iter()
                .any(|c| c.name == "Age" || c.name == "Created At" || c.name == "Last Seen")
        );
        assert_eq!(cells(k, &empty, now()).len(), cols.len(), "{}", k.kind);
        assert_eq!(cells(k, &garbage, now()).len(), cols.len(), "{}", k.kind);
    }
}

#[test]
fn table_envelope() {
    let k = kind("v1", "ConfigMap");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "resourceVersion": "42", "creationTimestamp": "2025-06-01T11:59:00Z"},
        "data": {"a": "b"}});
    let list_meta = json!({"resourceVersion": "99", "continue": "abc", "remainingItemCount": 3});
    let t = table(k, &[&cm], now(), IncludeObject::Metadata, list_meta.clone());
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], list_meta);
    assert_eq!(
        t["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name",
        "description": NAME_DESC, "priority": 0})
    );
    assert_eq!(t["columnDefinitions"][1]["name"], "Data");
    assert_eq!(t["rows"][0]["cells"], json!(["cfg", 1, "60s"]));
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
        "metadata": cm["metadata"]})
    );
    assert!(t["rows"][0].get("conditions").is_none());
    let full = table(k, &[&cm], now(), IncludeObject::Object, Value::Null);
    assert_eq!(full["rows"][0]["object"], cm);
    assert_eq!(full["metadata"], json!({}));
    let none = table(
        k,
        &[],
        now(),
        IncludeObject::None,
        json!({"resourceVersion": "1"}),
    );
    assert_eq!(none["rows"], json!([]));
}
