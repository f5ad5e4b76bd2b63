//! Tests of defaulting against what a Kubernetes 1.33 API server returns.

use serde_json::{Value, json};

use super::apply;
use crate::kinds::ResourceKind;

fn kind(group: &'static str, version: &'static str, k: &'static str) -> ResourceKind {
    crate::testutil::kind(group, version, k, true)
}

fn defaulted(group: &'static str, version: &'static str, k: &'static str, mut v: Value) -> Value {
    let kd = kind(group, version, k);
    apply(&kd, &mut v);
    let once = v.clone();
    apply(&kd, &mut v);
    assert_eq!(once, v, "defaulting {k} is not idempotent");
    v
}

#[test]
fn kubectl_create_deployment() {
    // `kubectl create deployment web --image=nginx` as sent, and the spec the server returns.
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
                }
            },
            "status": {}
        }),
    );
    assert_eq!(
        d["spec"],
        json!({
            "progressDeadlineSeconds": 600,
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                         "type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "image": "nginx",
                        "imagePullPolicy": "Always",
                        "name": "nginx",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            }
        })
    );
    assert_eq!(d["status"], json!({}));
}

#[test]
fn pod_defaults() {
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{
                    "name": "c", "image": "nginx:1.27",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                    "livenessProbe": {"httpGet": {"port": 80}},
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}
                }],
                "initContainers": [{"name": "i", "image": "busybox@sha256:abcd"}],
                "volumes": [
                    {"name": "a"},
                    {"name": "b", "configMap": {"name": "cm"}},
                    {"name": "c", "secret": {"secretName": "s"}},
                    {"name": "d", "hostPath": {"path": "/x"}}
                ]
            }
        }),
    );
    let s = &p["spec"];
    let c = &s["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert!(c["ports"][0].get("hostPort").is_none());
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "500m", "memory": "128Mi"})
    );
    assert_eq!(s["initContainers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(s["initContainers"][0]["terminationMessagePolicy"], "File");
    assert_eq!(s["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(s["volumes"][1]["configMap"]["defaultMode"], 420);
    assert_eq!(s["volumes"][2]["secret"]["defaultMode"], 420);
    assert_eq!(s["volumes"][3]["hostPath"]["type"], "");
    assert!(s["volumes"][1].get("emptyDir").is_none());
    assert_eq!(s["enableServiceLinks"], true);
    assert_eq!(s["priority"], 0);
    assert_eq!(s["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(s["serviceAccountName"], "default");
    assert_eq!(s["tolerations"].as_array().map(Vec::len), Some(2));
    assert_eq!(s["tolerations"][0]["tolerationSeconds"], 300);
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["status"]["qosClass"], "Burstable");
}

#[test]
fn pod_host_network_and_qos() {
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"hostNetwork": true, "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}],
                            "resources": {"requests": {"cpu": "1"}}}]}}),
    );
    assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
    assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(p["spec"]["restartPolicy"], "Never");
    assert_eq!(p["status"]["qosClass"], "Burstable");
    let q = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{"name": "c", "image": "x"}]}}),
    );
    assert_eq!(q["status"]["qosClass"], "BestEffort");
}

#[test]
fn workloads() {
    let sts = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {"template": {"spec": {"containers": []}}}}),
    );
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    let ds = defaulted("apps", "v1", "DaemonSet", json!({"spec": {}}));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    let ds = defaulted(
        "apps",
        "v1",
        "DaemonSet",
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
    );
    assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    let rs = defaulted("apps", "v1", "ReplicaSet", json!({"spec": {}}));
    assert_eq!(rs["spec"]["replicas"], 1);
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn jobs_and_cronjobs() {
    let j = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"metadata": {"name": "pi", "uid": "u-1"},
               "spec": {"template": {"spec": {"restartPolicy": "Never",
                        "containers": [{"name": "pi", "image": "perl:5.34"}]}}}}),
    );
    let s = &j["spec"];
    assert_eq!(s["completions"], 1);
    assert_eq!(s["parallelism"], 1);
    assert_eq!(s["backoffLimit"], 6);
    assert_eq!(s["completionMode"], "NonIndexed");
    assert_eq!(s["suspend"], false);
    assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(s["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        s["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    assert_eq!(s["template"]["metadata"]["labels"]["job-name"], "pi");
    assert_eq!(
        j["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "pi"
    );
    let j = defaulted("batch", "v1", "Job", json!({"spec": {"parallelism": 3}}));
    assert!(j["spec"].get("completions").is_none());
    assert!(j["spec"].get("selector").is_none());
    let j = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"spec": {"template": {"spec": {"containers": []}}}}),
    );
    assert!(j["spec"]["template"]["spec"].get("restartPolicy").is_some());
    let cj = defaulted(
        "batch",
        "v1",
        "CronJob",
        json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template":
            {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
    );
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(cj["spec"]["suspend"], false);
    let c = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert!(
        cj["spec"]["jobTemplate"]["spec"]
            .get("backoffLimit")
            .is_none()
    );
}

#[test]
fn services() {
    let s = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
    );
    assert_eq!(
        s["spec"],
        json!({
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                      {"port": 443, "protocol": "TCP", "targetPort": "https"}],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv4"]
        })
    );
    let s = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
    );
    assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
    let s = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"type": "LoadBalancer"}}),
    );
    assert_eq!(s["spec"]["allocateLoadBalancerNodePorts"], true);
    let s = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
    );
    assert!(s["spec"].get("ipFamilies").is_none());
    assert!(s["spec"].get("clusterIP").is_none());
    let s = defaulted("", "v1", "Service", json!({"spec": {"clusterIP": "None"}}));
    assert_eq!(s["spec"]["ipFamilyPolicy"], "RequireDualStack");
}

#[test]
fn simple_kinds() {
    let s = defaulted("", "v1", "Secret", json!({"metadata": {"name": "s"}}));
    assert_eq!(s["type"], "Opaque");
    let n = defaulted("", "v1", "Namespace", json!({"metadata": {"name": "dev"}}));
    assert_eq!(n["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(n["status"]["phase"], "Active");
    assert_eq!(
        n["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "dev"
    );
    let pvc = defaulted(
        "",
        "v1",
        "PersistentVolumeClaim",
        json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
    );
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    let pv = defaulted("", "v1", "PersistentVolume", json!({"spec": {}}));
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    let rb = defaulted(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        json!({"subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "d"}]}),
    );
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][1]["apiGroup"], "");
    let np = defaulted(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    let hpa = defaulted(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 5}}),
    );
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
    assert!(hpa["spec"].get("behavior").is_none());
    let hpa = defaulted(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        json!({"spec": {"behavior": {"scaleUp": {"stabilizationWindowSeconds": 60}}}}),
    );
    assert_eq!(
        hpa["spec"]["behavior"],
        json!({
            "scaleUp": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"selectPolicy": "Max", "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15}]}
        })
    );
    let cm = defaulted("", "v1", "ConfigMap", json!({"data": {"a": "b"}}));
    assert_eq!(cm, json!({"data": {"a": "b"}}));
}

#[test]
fn bad_shapes_do_not_panic() {
    for k in ["Pod", "Service", "Namespace", "Secret"] {
        defaulted(
            "",
            "v1",
            k,
            json!({"spec": {"containers": [1, "x", null], "ports": ["a"], "volumes": [3]}}),
        );
        defaulted("", "v1", k, json!({"spec": 7, "metadata": "x"}));
        let mut v = json!("scalar");
        apply(&kind("", "v1", k), &mut v);
        assert_eq!(v, json!("scalar"));
    }
}

#[test]
fn kubernetes_zero_values_and_scoping() {
    // Empty strings and zero probe numbers are Go zero values: defaulted.
    let p = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"restartPolicy": "", "containers": [{"name": "c", "image": "x:1",
            "imagePullPolicy": "", "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 0}}]}}),
    );
    assert_eq!(p["spec"]["restartPolicy"], "Always");
    assert_eq!(
        p["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(
        p["spec"]["containers"][0]["readinessProbe"]["periodSeconds"],
        10
    );
    // Host ports and requests-from-limits are pod-only, not template defaults.
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"template": {"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x",
            "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1"}}}]}}}}),
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert!(c["ports"][0].get("hostPort").is_none());
    assert!(c["resources"].get("requests").is_none());
    assert!(
        d["spec"]["template"]["spec"]
            .get("enableServiceLinks")
            .is_none()
    );
    assert!(d["spec"]["template"]["spec"].get("priority").is_none());
}

#[test]
fn job_labels_and_manual_selector() {
    let j = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"metadata": {"name": "pi", "uid": "u-1"},
               "spec": {"template": {"metadata": {"labels": {"app": "pi"}},
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}),
    );
    assert_eq!(j["metadata"]["labels"], json!({"app": "pi"}));
    assert_eq!(j["spec"]["manualSelector"], false);
    assert_eq!(
        j["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
        "u-1"
    );
    let j = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"metadata": {"name": "m", "uid": "u-2"},
               "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}},
                        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}}}),
    );
    assert_eq!(j["spec"]["selector"], json!({"matchLabels": {"a": "b"}}));
    assert_eq!(
        j["spec"]["template"]["metadata"]["labels"],
        json!({"a": "b"})
    );
}

#[test]
fn service_affinity_and_statefulset_strategy() {
    let s = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
    );
    assert_eq!(
        s["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );
    let s = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}),
    );
    assert!(s["spec"].get("sessionAffinityConfig").is_none());
    let sts = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
    );
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate"})
    );
    let sts = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {}}}}),
    );
    assert_eq!(
        sts["spec"]["updateStrategy"]["rollingUpdate"],
        json!({"partition": 0})
    );
}

#[test]
fn limit_ranges() {
    let lr = defaulted(
        "",
        "v1",
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}},
                                   {"type": "Pod", "max": {"cpu": "4"}}]}}),
    );
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "2", "memory": "64Mi"})
    );
    assert!(lr["spec"]["limits"][1].get("default").is_none());
}

#[test]
fn secret_string_data_is_merged() {
    let s = defaulted(
        "",
        "v1",
        "Secret",
        json!({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eA=="},
               "stringData": {"b": "hello", "c": ""}}),
    );
    assert_eq!(s["data"], json!({"a": "eA==", "b": "aGVsbG8=", "c": ""}));
    assert!(s.get("stringData").is_none());
    assert_eq!(s["type"], "Opaque");
}

#[test]
fn default_toleration_seconds_are_configurable_and_respect_the_pods_own() {
    let mut p = json!({"spec": {"containers": [{"name": "c", "image": "x"}],
        "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": 60}]}});
    super::default_toleration_seconds(&mut p, 2, 3);
    assert_eq!(
        p["spec"]["tolerations"],
        json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 60},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 2},
        ])
    );
    // Defaulting afterwards adds nothing more.
    let d = defaulted("", "v1", "Pod", p.clone());
    assert_eq!(d["spec"]["tolerations"], p["spec"]["tolerations"]);
    // A pod tolerating every taint gets none.
    let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
    super::default_toleration_seconds(&mut all, 2, 2);
    assert_eq!(all["spec"]["tolerations"], json!([{"operator": "Exists"}]));
}
