//! Tests of the encoder: realistic objects encoded here and decoded by an independent decoder
//! (k8s-pb's prost structs, generated from the same `generated.proto` files), re-encoded by it to
//! the same bytes, and decoded by our decoder back to the same JSON; the schema table checked
//! against the OpenAPI schemas of the served kinds.

use std::collections::BTreeSet;

use prost::Message as _;
use serde_json::{Value, json};

use super::schema::{self, Card, Message, Ty};
use super::*;

/// JSON with the `null`s dropped (protobuf has no null: a zero time is simply absent).
fn drop_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), drop_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(drop_nulls).collect()),
        v => v.clone(),
    }
}

/// Encodes `obj`, decodes it with k8s-pb's `M`, checks that `M` re-encodes the same bytes
/// (nothing unknown or mistyped) and that our decoder gives back the same JSON; returns `M`.
fn round_trip<M: prost::Message + Default>(obj: &Value) -> M {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let raw = encode_raw(api_version, kind, obj).expect("encodes");
    let typed = M::decode(raw.as_slice()).expect("k8s-pb decodes the object");
    assert!(
        typed.encode_to_vec() == raw,
        "{kind}: k8s-pb re-encodes different bytes (a field it does not know, or a wrong type)"
    );
    let body = encode(obj).expect("encodes with the envelope");
    assert_eq!(&body[..4], MAGIC);
    let back = decode(&body).expect("our decoder reads it");
    assert_eq!(drop_nulls(&back), drop_nulls(obj), "{kind} round trip");
    typed
}

fn managed_fields(manager: &str, operation: &str, fields: Value) -> Value {
    json!({"manager": manager, "operation": operation, "apiVersion": "v1",
           "time": "2026-11-25T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-7d4b9c-x2x9z", "generateName": "web-7d4b9c-", "namespace": "default",
            "uid": "6f1c2a9e-8d0b-4c1e-9f3a-0c5e7a1b2d3f", "resourceVersion": "12345",
            "creationTimestamp": "2026-11-25T10:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
            "annotations": {"example.com/note": "x".repeat(300)},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
                                 "uid": "0b1c2d3e-0000-4000-8000-000000000001",
                                 "controller": true, "blockOwnerDeletion": true}],
            "finalizers": ["example.com/cleanup"],
            "managedFields": [
                managed_fields("kube-controller-manager", "Update", json!({
                    "f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}}}}}}
                })),
                {"manager": "berth", "operation": "Update", "apiVersion": "v1",
                 "time": "2026-11-25T10:00:05Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:status": {"f:phase": {}, "f:podIP": {}}}, "subresource": "status"}
            ]
        },
        "spec": {
            "volumes": [
                {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a.txt"}], "defaultMode": 420}},
                {"name": "kube-api-access-abcde", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ], "defaultMode": 420}}
            ],
            "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
                                "resources": {}, "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
            "containers": [{
                "name": "app", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "prod"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                        {"name": "LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "readOnly": true, "mountPath": "/etc/cfg"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                                  "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10,
                                  "successThreshold": 1, "failureThreshold": 3},
                "readinessProbe": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 1, "periodSeconds": 10,
                                   "successThreshold": 1, "failureThreshold": 3},
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {"capabilities": {"drop": ["ALL"]}, "runAsUser": 1000, "runAsNonRoot": true,
                                    "allowPrivilegeEscalation": false}
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "nodeName": "node-1",
            "securityContext": {"supplementalGroups": [1000, 2000], "fsGroup": 2000},
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["web"]}]}, "topologyKey": "kubernetes.io/hostname"}}]}},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-11-25T10:00:05Z"}],
            "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": "10.42.0.5", "podIPs": [{"ip": "10.42.0.5"}],
            "startTime": "2026-11-25T10:00:01Z",
            "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": "2026-11-25T10:00:01Z", "finishedAt": "2026-11-25T10:00:02Z", "containerID": "docker://aaa"}},
                "lastState": {}, "ready": true, "restartCount": 0, "image": "busybox:1.36", "imageID": "docker://sha256:bbb",
                "containerID": "docker://aaa"}],
            "containerStatuses": [{"name": "app", "state": {"running": {"startedAt": "2026-11-25T10:00:03Z"}},
                "lastState": {"terminated": {"exitCode": -1, "signal": 9, "reason": "Error", "startedAt": null,
                                             "finishedAt": "2026-11-25T10:00:02Z"}},
                "ready": true, "restartCount": 1, "image": "nginx:1.27", "imageID": "docker://sha256:ccc",
                "containerID": "docker://ddd", "started": true,
                "allocatedResources": {"cpu": "250m", "memory": "64Mi"}}],
            "qosClass": "Burstable"
        }
    })
}

#[test]
fn pods_round_trip_through_k8s_pb() {
    use k8s_pb::api::core::v1::Pod;
    let obj = pod();
    let p: Pod = round_trip(&obj);
    let meta = p.metadata.as_ref().expect("metadata");
    assert_eq!(meta.name.as_deref(), Some("web-7d4b9c-x2x9z"));
    assert_eq!(
        meta.creation_timestamp.as_ref().and_then(|t| t.seconds),
        Some(1_795_600_800)
    );
    let mf = &meta.managed_fields[0];
    let raw = mf
        .fields_v1
        .as_ref()
        .and_then(|f| f.raw.as_ref())
        .expect("fieldsV1");
    assert_eq!(
        serde_json::from_slice::<Value>(raw).expect("JSON"),
        obj["metadata"]["managedFields"][0]["fieldsV1"]
    );
    assert_eq!(
        meta.managed_fields[1].subresource.as_deref(),
        Some("status")
    );
    let spec = p.spec.as_ref().expect("spec");
    let c = &spec.containers[0];
    assert_eq!(c.ports[0].container_port, Some(8080));
    let limits = &c.resources.as_ref().expect("resources").limits;
    assert_eq!(limits["cpu"].string.as_deref(), Some("500m"));
    let probe = c.liveness_probe.as_ref().expect("probe");
    let port = probe
        .handler
        .as_ref()
        .and_then(|h| h.http_get.as_ref())
        .and_then(|g| g.port.as_ref())
        .expect("httpGet port");
    assert_eq!(
        (port.r#type, port.str_val.as_deref()),
        (Some(1), Some("http"))
    );
    let tcp = c
        .readiness_probe
        .as_ref()
        .and_then(|p| p.handler.as_ref())
        .and_then(|h| h.tcp_socket.as_ref())
        .and_then(|t| t.port.as_ref())
        .expect("tcpSocket port");
    assert_eq!((tcp.r#type, tcp.int_val), (Some(0), Some(8080)));
    assert_eq!(spec.priority, Some(0), "a pointer's zero is kept");
    assert_eq!(
        spec.volumes[0]
            .volume_source
            .as_ref()
            .and_then(|s| s.empty_dir.as_ref())
            .and_then(|e| e.size_limit.as_ref())
            .and_then(|q| q.string.as_deref()),
        Some("1Gi")
    );
    let status = p.status.as_ref().expect("status");
    assert_eq!(status.container_statuses[0].restart_count, Some(1));
    let last = status.container_statuses[0]
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(last.exit_code, Some(-1), "negative int32");
}

#[test]
fn workloads_round_trip_through_k8s_pb() {
    let template = pod()["spec"].clone();
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": 4, "uid": "u-1",
                     "resourceVersion": "77", "creationTimestamp": "2026-11-25T09:00:00Z",
                     "annotations": {"deployment.kubernetes.io/revision": "3"},
                     "managedFields": [managed_fields("kubectl-client-side-apply", "Update", json!({"f:spec": {"f:replicas": {}}}))]},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": template},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
        "status": {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
                   "availableReplicas": 3,
                   "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2026-11-25T09:01:00Z",
                                   "lastTransitionTime": "2026-11-25T09:01:00Z", "reason": "MinimumReplicasAvailable",
                                   "message": "Deployment has minimum availability."}]}
    });
    let d: k8s_pb::api::apps::v1::Deployment = round_trip(&deployment);
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .expect("rollingUpdate");
    let max_unavailable = ru.max_unavailable.as_ref().expect("maxUnavailable");
    assert_eq!(max_unavailable.str_val.as_deref(), Some("25%"));
    assert_eq!(ru.max_surge.as_ref().and_then(|m| m.int_val), Some(1));

    let cronjob = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "ops"},
        "spec": {"schedule": "0 3 * * *", "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid", "suspend": false,
                 "jobTemplate": {"spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1,
                                          "template": {"spec": {"restartPolicy": "OnFailure",
                                                                "containers": [{"name": "job", "image": "busybox"}]}}}},
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1},
        "status": {"lastScheduleTime": "2026-11-25T03:00:00Z"}
    });
    round_trip::<k8s_pb::api::batch::v1::CronJob>(&cronjob);

    let hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 10,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                             {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300,
                                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}},
        "status": {"currentReplicas": 2, "desiredReplicas": 2}
    });
    round_trip::<k8s_pb::api::autoscaling::v2::HorizontalPodAutoscaler>(&hpa);
}

#[test]
fn networking_and_config_round_trip_through_k8s_pb() {
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080},
                           {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090, "nodePort": 30090}],
                 "selector": {"app": "web"}, "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
                 "type": "NodePort", "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
        "status": {"loadBalancer": {}}
    });
    let s: k8s_pb::api::core::v1::Service = round_trip(&service);
    let ports = &s.spec.as_ref().expect("spec").ports;
    assert_eq!(
        ports[1].target_port.as_ref().and_then(|p| p.int_val),
        Some(9090)
    );

    let configmap = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"a.txt": "hello\n", "b": "x"}, "binaryData": {"blob": "AAEC/w=="}, "immutable": true
    });
    let cm: k8s_pb::api::core::v1::ConfigMap = round_trip(&configmap);
    assert_eq!(cm.binary_data["blob"], vec![0, 1, 2, 255]);

    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
        "type": "kubernetes.io/tls", "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}
    });
    round_trip::<k8s_pb::api::core::v1::Secret>(&secret);

    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
                       "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u-2"}, "nodeName": "node-1"}],
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]
    });
    round_trip::<k8s_pb::api::discovery::v1::EndpointSlice>(&slice);

    let policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                              "ports": [{"protocol": "TCP", "port": "http"}, {"protocol": "TCP", "port": 8000, "endPort": 8100}]}]}
    });
    round_trip::<k8s_pb::api::networking::v1::NetworkPolicy>(&policy);

    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}},
        "status": {"currentHealthy": 3, "desiredHealthy": 2, "disruptionsAllowed": 1, "expectedPods": 3, "observedGeneration": 1}
    });
    round_trip::<k8s_pb::api::policy::v1::PodDisruptionBudget>(&pdb);

    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "view-pods"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]}
    });
    round_trip::<k8s_pb::api::rbac::v1::ClusterRole>(&role);
}

#[test]
fn micro_times_round_trip_through_k8s_pb() {
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u-3", "apiVersion": "v1",
                           "fieldPath": "spec.containers{app}"},
        "reason": "Started", "message": "Started container app",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2026-11-25T10:00:03Z", "lastTimestamp": "2026-11-25T10:00:03Z", "count": 1,
        "type": "Normal", "eventTime": "2026-11-25T10:00:03.123456Z",
        "reportingComponent": "kubelet", "reportingInstance": "node-1"
    });
    let e: k8s_pb::api::core::v1::Event = round_trip(&event);
    let t = e.event_time.as_ref().expect("eventTime");
    assert_eq!(
        (t.seconds, t.nanos),
        (Some(1_795_600_803), Some(123_456_000))
    );

    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                 "renewTime": "2026-11-25T10:00:00.000001Z", "leaseTransitions": 0}
    });
    round_trip::<k8s_pb::api::coordination::v1::Lease>(&lease);
}

#[test]
fn lists_concatenate_encoded_items() {
    use k8s_pb::api::core::v1::PodList;
    let a = pod();
    let mut b = pod();
    b["metadata"]["name"] = json!("web-2");
    let items: Vec<Vec<u8>> = [&a, &b]
        .iter()
        .map(|o| encode_raw("v1", "Pod", o).expect("pod"))
        .collect();
    let meta = json!({"resourceVersion": "99", "continue": "abc", "remainingItemCount": 5});
    let body = encode_list("v1", "PodList", &meta, &items).expect("list");
    // The envelope, read with k8s-pb.
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(&body[4..]).expect("Unknown");
    let tm = unknown.type_meta.expect("typeMeta");
    assert_eq!(
        (tm.api_version.as_deref(), tm.kind.as_deref()),
        (Some("v1"), Some("PodList"))
    );
    let list = PodList::decode(unknown.raw.expect("raw").as_slice()).expect("PodList");
    assert_eq!(list.items.len(), 2);
    let lm = list.metadata.expect("metadata");
    assert_eq!(lm.resource_version.as_deref(), Some("99"));
    assert_eq!(lm.remaining_item_count, Some(5));
    assert_eq!(
        list.items[1]
            .metadata
            .as_ref()
            .and_then(|m| m.name.as_deref()),
        Some("web-2")
    );
    // And with our decoder: items lose apiVersion and kind, as in Kubernetes lists.
    let v = decode(&body).expect("decodes");
    assert_eq!(v["metadata"], meta);
    let mut want = drop_nulls(&a);
    if let Some(m) = want.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    assert_eq!(drop_nulls(&v["items"][0]), want);
}

#[test]
fn watch_frames_are_length_prefixed_watch_events() {
    use k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent;
    let raw = encode_raw("v1", "Pod", &pod()).expect("pod");
    let frame = watch_frame("MODIFIED", "v1", "Pod", &raw);
    let len = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, frame.len() - 4);
    let ev = WatchEvent::decode(&frame[4..]).expect("WatchEvent");
    assert_eq!(ev.r#type.as_deref(), Some("MODIFIED"));
    let inner = ev.object.and_then(|o| o.raw).expect("object");
    let obj = decode(&inner).expect("the object is a full protobuf body");
    assert_eq!(obj["metadata"]["name"], "web-7d4b9c-x2x9z");
    assert_eq!(inner, envelope("v1", "Pod", &raw));
    let (t, back) = decode_watch_event(&frame[4..]).expect("our decoder reads it");
    assert_eq!((t.as_str(), back), ("MODIFIED", obj));
}

#[test]
fn statuses_encode() {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "too old resource version: 1 (5)", "reason": "Expired", "code": 410});
    let body = encode(&status).expect("Status");
    let back = decode(&body).expect("decodes");
    assert_eq!(back, status);
}

#[test]
fn what_the_table_cannot_express_is_an_error() {
    let mut obj = pod();
    obj["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
    assert_eq!(
        encode(&obj).expect_err("unknown field"),
        EncodeError::UnknownField {
            message: "core.v1.Container",
            field: "imagePullPolicyy".into()
        }
    );
    let mut obj = pod();
    obj["spec"]["containers"][0]["ports"][0]["containerPort"] = json!("8080");
    assert!(matches!(
        encode(&obj).expect_err("string for an int"),
        EncodeError::BadValue {
            field: "containerPort",
            ..
        }
    ));
    let mut obj = pod();
    obj["spec"]["priority"] = json!(1.5);
    assert!(matches!(encode(&obj), Err(EncodeError::BadValue { .. })));
    let mut obj = pod();
    obj["metadata"]["creationTimestamp"] = json!("yesterday");
    assert!(matches!(encode(&obj), Err(EncodeError::BadValue { .. })));
    let cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    assert!(matches!(
        encode(&cr),
        Err(EncodeError::UnsupportedKind { .. })
    ));
    assert!(!supports("example.com/v1", "Widget"));
}

#[test]
fn every_served_kind_and_its_list_has_a_message() {
    for k in crate::kinds::all() {
        let v = k.api_version();
        assert!(supports(&v, k.kind), "{v} {}", k.kind);
        assert!(supports(&v, &k.list_kind()), "{v} {}", k.list_kind());
    }
}

fn collect(msg: &'static Message, seen: &mut Vec<&'static Message>) {
    if seen.iter().any(|m| std::ptr::eq(*m, msg)) {
        return;
    }
    seen.push(msg);
    for f in msg.fields {
        if let Ty::Msg(inner) = f.ty {
            collect(inner, seen);
        }
    }
}

/// The JSON field names of a message, inlined messages flattened.
fn json_names(msg: &Message, out: &mut BTreeSet<String>) {
    for f in msg.fields {
        match (f.card, f.ty) {
            (Card::Inline, Ty::Msg(inner)) => json_names(inner, out),
            _ => {
                out.insert(f.name.to_string());
            }
        }
    }
}

/// Every message of the table has exactly the fields of its OpenAPI schema (k8s-openapi, the
/// schema Berth validates and prunes objects with), so every stored object can be encoded.
#[test]
fn the_table_matches_the_openapi_schemas() {
    let mut seen = Vec::new();
    for (_, _, msg) in schema::all_kinds() {
        collect(msg, &mut seen);
    }
    assert!(seen.len() > 300, "{} messages", seen.len());
    let defs = crate::schema::definitions();
    let mut compared = 0;
    let mut problems = Vec::new();
    for msg in &seen {
        let name = format!("io.k8s.{}", msg.name.trim_start_matches("k8s.io."));
        let Some(props) = defs
            .get(&name)
            .and_then(|d| d.get("properties"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        compared += 1;
        let want: BTreeSet<String> = props
            .keys()
            .filter(|k| !(msg.type_meta && (*k == "apiVersion" || *k == "kind")))
            .cloned()
            .collect();
        let mut got = BTreeSet::new();
        json_names(msg, &mut got);
        if got != want {
            problems.push(format!(
                "{}: only in the table {:?}, only in OpenAPI {:?}",
                msg.name,
                got.difference(&want).collect::<Vec<_>>(),
                want.difference(&got).collect::<Vec<_>>()
            ));
        }
    }
    assert!(compared > 300, "compared {compared}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_table_is_sorted_for_lookups() {
    let kinds = schema::all_kinds();
    assert!(
        kinds
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
    );
    let mut seen = Vec::new();
    for (_, _, msg) in kinds {
        collect(msg, &mut seen);
    }
    for msg in seen {
        assert!(
            msg.fields.windows(2).all(|w| w[0].num < w[1].num),
            "{}",
            msg.name
        );
    }
}
