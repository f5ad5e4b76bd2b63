//! Tests of validation, with Kubernetes' field paths and messages.

use serde_json::{Value, json};

use super::*;
use crate::kinds::ResourceKind;

fn kind(group: &'static str, k: &'static str, namespaced: bool) -> ResourceKind {
    crate::testutil::kind(group, "v1", k, namespaced)
}

/// `field: message` of each cause, as kubectl prints them.
fn check(group: &'static str, k: &'static str, obj: &Value, old: Option<&Value>) -> Vec<String> {
    let namespaced = !matches!(
        k,
        "Namespace" | "Node" | "ClusterRole" | "ClusterRoleBinding" | "PersistentVolume"
    );
    validate(&kind(group, k, namespaced), obj, old)
        .into_iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

fn defaulted(group: &'static str, k: &'static str, mut v: Value) -> Value {
    crate::defaults::apply(&kind(group, k, true), &mut v);
    v
}

#[test]
fn name_validators_match_kubernetes() {
    assert!(dns1123_label("my-name").is_empty());
    assert!(dns1123_label("123-abc").is_empty());
    assert_eq!(
        dns1123_label("My_Name"),
        vec![DNS1123_LABEL_MSG.to_string()]
    );
    assert_eq!(
        dns1123_label(&"a".repeat(64))[0],
        "must be no more than 63 characters"
    );
    assert!(dns1123_label("").len() == 1);
    assert!(dns1123_label("-a").len() == 1 && dns1123_label("a-").len() == 1);
    assert!(dns1123_subdomain("example.com").is_empty());
    assert!(!dns1123_subdomain("example..com").is_empty());
    assert!(!dns1123_subdomain(".a").is_empty());
    assert_eq!(
        dns1123_subdomain(&"a".repeat(254))[0],
        "must be no more than 253 characters"
    );
    assert!(dns1035_label("abc-123").is_empty());
    assert!(!dns1035_label("1abc").is_empty());
    assert!(qualified_name("app.kubernetes.io/name").is_empty());
    assert!(qualified_name("MyName").is_empty());
    assert_eq!(
        qualified_name("/a"),
        vec!["prefix part must be non-empty".to_string()]
    );
    assert_eq!(
        qualified_name("a/"),
        vec![
            "name part must be non-empty".to_string(),
            QUALIFIED_NAME_MSG.to_string()
        ]
    );
    assert_eq!(
        qualified_name("a/b/c"),
        vec![QUALIFIED_NAME_FULL_MSG.to_string()]
    );
    assert!(qualified_name("Example.com/a")[0].starts_with("prefix part a lowercase RFC 1123"));
    assert!(label_value("").is_empty());
    assert!(label_value("my_value").is_empty());
    assert_eq!(label_value("a b"), vec![LABEL_VALUE_MSG.to_string()]);
    assert!(config_key("key.name").is_empty() && config_key("KEY_NAME").is_empty());
    assert!(!config_key("a/b").is_empty());
    assert_eq!(config_key(".."), vec!["must not be '..'".to_string()]);
    assert!(port_name("http").is_empty());
    assert!(!port_name("80").is_empty());
    assert!(!port_name("a--b").is_empty());
    assert!(!port_name("verylongportname1").is_empty());
    assert!(env_var_name("MY_VAR").is_empty() && env_var_name("1a.b-c").is_empty());
    assert!(!env_var_name("A=B").is_empty());
}

#[test]
fn cron_schedules() {
    for s in [
        "* * * * *",
        "*/5 * * * *",
        "0 0 1 jan mon",
        "0-30/10 9-17 * * 1-5",
        "@hourly",
        "@every 1h30m",
        "0 0 ? * *",
    ] {
        assert_eq!(cron_schedule(s), Ok(()), "{s}");
    }
    assert_eq!(
        cron_schedule("foo").unwrap_err(),
        "expected exactly 5 fields, found 1: [foo]"
    );
    assert!(
        cron_schedule("60 * * * *")
            .unwrap_err()
            .contains("above maximum (59)")
    );
    assert!(
        cron_schedule("* * 0 * *")
            .unwrap_err()
            .contains("below minimum (1)")
    );
    assert!(
        cron_schedule("@bogus")
            .unwrap_err()
            .starts_with("unrecognized descriptor")
    );
    assert!(cron_schedule("TZ=UTC * * * * *").is_err());
    assert!(cron_schedule("*/0 * * * *").is_err());
}

#[test]
fn metadata_rules() {
    let e = check(
        "",
        "ConfigMap",
        &json!({"metadata": {"namespace": "default"}}),
        None,
    );
    assert_eq!(
        e,
        vec!["metadata.name: Required value: name or generateName is required"]
    );
    let ok = check(
        "",
        "ConfigMap",
        &json!({"metadata": {"generateName": "cm-", "namespace": "default"}}),
        None,
    );
    assert!(ok.is_empty(), "{ok:?}");
    let e = check(
        "",
        "ConfigMap",
        &json!({"metadata": {"name": "Bad_Name", "namespace": "default"}}),
        None,
    );
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        )
    );
    let e = check("", "ConfigMap", &json!({"metadata": {"name": "a"}}), None);
    assert_eq!(e, vec!["metadata.namespace: Required value"]);
    let e = check("", "Namespace", &json!({"metadata": {"name": "a.b"}}), None);
    assert!(e[0].contains("RFC 1123 label"), "{e:?}");
    let e = check(
        "",
        "Service",
        &json!({"metadata": {"name": "1svc", "namespace": "d"}, "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}),
        None,
    );
    assert!(e[0].contains("DNS-1035 label"), "{e:?}");
    let e = check(
        "",
        "ConfigMap",
        &json!({"metadata": {"name": "a", "namespace": "d", "labels": {"a b": "x", "ok": "bad value"}}}),
        None,
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("metadata.labels: Invalid value: \"a b\": name part must consist"));
    assert!(
        e[1].starts_with("metadata.labels: Invalid value: \"bad value\": a valid label must be")
    );
    let big = "x".repeat(300 * 1024);
    let e = check(
        "",
        "ConfigMap",
        &json!({"metadata": {"name": "a", "namespace": "d", "annotations": {"k": big}}}),
        None,
    );
    assert_eq!(
        e,
        vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
    );
    let e = check(
        "",
        "Namespace",
        &json!({"metadata": {"name": "a", "namespace": "x"}}),
        None,
    );
    assert_eq!(
        e,
        vec!["metadata.namespace: Forbidden: not allowed on this type"]
    );
}

#[test]
fn pods() {
    let good = defaulted(
        "",
        "Pod",
        pod(json!({"containers": [{"name": "web", "image": "nginx",
        "ports": [{"containerPort": 80, "name": "http"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        "livenessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "data", "emptyDir": {}}]})),
    );
    assert!(
        check("", "Pod", &good, None).is_empty(),
        "{:?}",
        check("", "Pod", &good, None)
    );

    let e = check(
        "",
        "Pod",
        &pod(json!({"containers": [], "restartPolicy": "Always"})),
        None,
    );
    assert_eq!(e, vec!["spec.containers: Required value"]);

    let bad = pod(json!({
        "restartPolicy": "Sometimes",
        "initContainers": [{"name": "web", "image": "busybox"}],
        "containers": [
            {"name": "web", "image": "",
             "ports": [{"containerPort": 70000, "protocol": "TCP"}, {"containerPort": 80, "protocol": "ICMP"}],
             "volumeMounts": [{"name": "missing", "mountPath": "/x"}],
             "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "500m", "memory": "lots"}},
             "readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
             "livenessProbe": {}},
            {"name": "Bad_Name", "image": "x"}
        ],
        "volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]
    }));
    let e = check("", "Pod", &bad, None);
    let expect = [
        "spec.volumes[1].name: Duplicate value: \"v\"",
        "spec.initContainers[0].name: Duplicate value: \"web\"",
        "spec.containers[0].image: Required value",
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
        "spec.containers[0].resources.limits[memory]: Invalid value: \"lots\": must match the regex",
        "spec.containers[0].resources.requests[cpu]: Invalid value: \"2\": must be less than or equal to cpu limit of 500m",
        "spec.containers[0].readinessProbe: Forbidden: may not specify more than 1 handler type",
        "spec.containers[0].livenessProbe: Required value: must specify a handler type",
        "spec.containers[1].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label",
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    ];
    for x in expect {
        assert!(
            e.iter().any(|m| m.starts_with(x)),
            "missing {x:?} in {e:#?}"
        );
    }
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": selector, "replicas": 1,
                    "template": {"metadata": {"labels": labels},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}})
}

#[test]
fn workloads() {
    let d = defaulted(
        "apps",
        "Deployment",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        ),
    );
    assert!(
        check("apps", "Deployment", &d, None).is_empty(),
        "{:?}",
        check("apps", "Deployment", &d, None)
    );
    let d = defaulted(
        "apps",
        "Deployment",
        deployment(json!({"matchLabels": {"app": "web"}}), json!({"app": "db"})),
    );
    let e = check("apps", "Deployment", &d, None);
    assert_eq!(
        e,
        vec![
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"db\"}: `selector` does not match template `labels`"
        ]
    );
    let mut d = defaulted(
        "apps",
        "Deployment",
        deployment(json!({}), json!({"app": "web"})),
    );
    assert!(
        check("apps", "Deployment", &d, None)[0]
            .ends_with("empty selector is invalid for deployment")
    );
    d["spec"]["selector"] = Value::Null;
    assert_eq!(
        check("apps", "Deployment", &d, None),
        vec!["spec.selector: Required value"]
    );
    let mut d = defaulted(
        "apps",
        "Deployment",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        ),
    );
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
    let e = check("apps", "Deployment", &d, None);
    assert!(
        e.contains(
            &"spec.replicas: Invalid value: -1: must be greater than or equal to 0".to_string()
        ),
        "{e:?}"
    );
    assert!(e.contains(&"spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".to_string()), "{e:?}");
    assert!(e.contains(&"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0".to_string()), "{e:?}");

    // Selector is immutable.
    let old = defaulted(
        "apps",
        "Deployment",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web", "v": "2"}),
        ),
    );
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
    let e = check("apps", "Deployment", &new, Some(&old));
    assert!(
        e.iter()
            .any(|m| m.starts_with("spec.selector: Invalid value:")
                && m.ends_with("field is immutable")),
        "{e:?}"
    );
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(5);
    assert!(check("apps", "Deployment", &new, Some(&old)).is_empty());

    // StatefulSet: only some spec fields may change.
    let sts = defaulted(
        "apps",
        "StatefulSet",
        json!({"metadata": {"name": "db", "namespace": "d"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    );
    assert!(check("apps", "StatefulSet", &sts, None).is_empty());
    let mut new = sts.clone();
    new["spec"]["replicas"] = json!(3);
    assert!(check("apps", "StatefulSet", &new, Some(&sts)).is_empty());
    new["spec"]["serviceName"] = json!("other");
    assert!(
        check("apps", "StatefulSet", &new, Some(&sts))[0]
            .starts_with("spec: Forbidden: updates to statefulset spec")
    );
}

#[test]
fn jobs_and_cronjobs() {
    let job = json!({"metadata": {"name": "pi", "namespace": "d", "uid": "u"},
        "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}}});
    let mut j = job.clone();
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let j = defaulted("batch", "Job", j);
    assert!(
        check("batch", "Job", &j, None).is_empty(),
        "{:?}",
        check("batch", "Job", &j, None)
    );
    let e = check("batch", "Job", &job, None);
    assert_eq!(e, vec!["spec.template.spec.restartPolicy: Required value"]);
    let mut j2 = j.clone();
    j2["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    assert_eq!(
        check("batch", "Job", &j2, None),
        vec![
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        ]
    );
    let mut j3 = j.clone();
    j3["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
    assert!(check("batch", "Job", &j3, Some(&j))[0].starts_with("spec.template: Invalid value"));

    let cj = json!({"metadata": {"name": "hello", "namespace": "d"}, "spec": {"schedule": "*/1 * * * *",
        "concurrencyPolicy": "Sometimes",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    assert_eq!(
        check("batch", "CronJob", &cj, None),
        vec![
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\""
        ]
    );
    let mut cj2 = cj.clone();
    cj2["spec"]["concurrencyPolicy"] = json!("Forbid");
    cj2["spec"]["schedule"] = json!("every minute");
    assert_eq!(
        check("batch", "CronJob", &cj2, None),
        vec![
            "spec.schedule: Invalid value: \"every minute\": expected exactly 5 fields, found 2: [every minute]"
        ]
    );
}

#[test]
fn services() {
    let svc = |spec: Value| json!({"metadata": {"name": "web", "namespace": "d"}, "spec": spec});
    let good = defaulted(
        "",
        "Service",
        svc(
            json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}),
        ),
    );
    assert!(check("", "Service", &good, None).is_empty());
    let e = check(
        "",
        "Service",
        &defaulted(
            "",
            "Service",
            svc(json!({"ports": [{"port": 80}, {"port": 81}]})),
        ),
        None,
    );
    assert_eq!(
        e,
        vec![
            "spec.ports[0].name: Required value",
            "spec.ports[1].name: Required value"
        ]
    );
    let e = check(
        "",
        "Service",
        &defaulted(
            "",
            "Service",
            svc(
                json!({"ports": [{"name": "a", "port": 0}, {"name": "a", "port": 80, "nodePort": 30080}]}),
            ),
        ),
        None,
    );
    assert!(
        e.contains(
            &"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
                .to_string()
        ),
        "{e:?}"
    );
    assert!(
        e.contains(&"spec.ports[1].name: Duplicate value: \"a\"".to_string()),
        "{e:?}"
    );
    assert!(
        e.contains(
            &"spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
                .to_string()
        ),
        "{e:?}"
    );
    let e = check(
        "",
        "Service",
        &defaulted(
            "",
            "Service",
            svc(
                json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80, "nodePort": 80}]}),
            ),
        ),
        None,
    );
    assert!(e.contains(&"spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services".to_string()), "{e:?}");
    assert!(
        e.iter()
            .any(|m| m.contains("range of valid ports is 30000-32767")),
        "{e:?}"
    );
    let e = check(
        "",
        "Service",
        &svc(json!({"type": "Bogus", "ports": [{"port": 80, "protocol": "TCP"}]})),
        None,
    );
    assert!(e[0].starts_with("spec.type: Unsupported value: \"Bogus\""));
    let headless = defaulted("", "Service", svc(json!({"clusterIP": "None"})));
    assert!(check("", "Service", &headless, None).is_empty());
    let e = check(
        "",
        "Service",
        &defaulted("", "Service", svc(json!({}))),
        None,
    );
    assert_eq!(e, vec!["spec.ports: Required value"]);
    // clusterIP may not change once allocated; an empty value is filled in by the server.
    let mut old = good.clone();
    old["spec"]["clusterIP"] = json!("10.96.0.10");
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("10.96.0.11");
    assert_eq!(
        check("", "Service", &new, Some(&old)),
        vec!["spec.clusterIPs[0]: Invalid value: \"10.96.0.11\": may not change once set"]
    );
    new["spec"]["clusterIP"] = json!("");
    assert!(check("", "Service", &new, Some(&old)).is_empty());
}

#[test]
fn config_maps_and_secrets() {
    let cm = json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"good.key": "v", "bad/key": "v"}});
    let e = check("", "ConfigMap", &cm, None);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("data[bad/key]: Invalid value: \"bad/key\": a valid config key"));
    let big = json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "x".repeat(1024 * 1024 + 1)}});
    assert_eq!(
        check("", "ConfigMap", &big, None),
        vec!["[]: Too long: may not be more than 1048576 bytes"]
    );
    let s = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque", "data": {"k": "dmFsdWU=", "bad": "!!!"}});
    let e = check("", "Secret", &s, None);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("data[bad]: Invalid value"));
    let tls = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}});
    assert_eq!(
        check("", "Secret", &tls, None),
        vec!["data[tls.key]: Required value"]
    );
    // Immutable objects.
    let old =
        json!({"metadata": {"name": "c", "namespace": "d"}, "immutable": true, "data": {"a": "1"}});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    assert_eq!(
        check("", "ConfigMap", &new, Some(&old)),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
    let mut new = old.clone();
    new["immutable"] = json!(false);
    assert_eq!(
        check("", "ConfigMap", &new, Some(&old)),
        vec!["immutable: Forbidden: field is immutable when `immutable` is set"]
    );
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"a": "b"});
    assert!(check("", "ConfigMap", &new, Some(&old)).is_empty());
    let s_old = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque"});
    let mut s_new = s_old.clone();
    s_new["type"] = json!("kubernetes.io/ssh-auth");
    s_new["data"] = json!({"ssh-privatekey": "eA=="});
    assert_eq!(
        check("", "Secret", &s_new, Some(&s_old)),
        vec!["type: Invalid value: \"kubernetes.io/ssh-auth\": field is immutable"]
    );
}

#[test]
fn pod_updates() {
    let old = defaulted(
        "",
        "Pod",
        pod(json!({"containers": [{"name": "c", "image": "nginx:1"}]})),
    );
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    new["spec"]["activeDeadlineSeconds"] = json!(30);
    new["spec"]["tolerations"]
        .as_array_mut()
        .expect("defaulted tolerations")
        .push(json!({"key": "k", "operator": "Exists"}));
    assert!(
        check("", "Pod", &new, Some(&old)).is_empty(),
        "{:?}",
        check("", "Pod", &new, Some(&old))
    );
    let mut bad = old.clone();
    bad["spec"]["containers"][0]["name"] = json!("d");
    let e = check("", "Pod", &bad, Some(&old));
    assert_eq!(e, vec![format!("spec: Forbidden: {POD_UPDATE_MSG}")]);
    let mut bad = old.clone();
    bad["spec"]["tolerations"] = json!([]);
    assert!(check("", "Pod", &bad, Some(&old))[0].starts_with("spec.tolerations: Forbidden"));
    let mut renamed = old.clone();
    renamed["metadata"]["name"] = json!("q");
    assert_eq!(
        check("", "Pod", &renamed, Some(&old)),
        vec!["metadata.name: Invalid value: \"q\": field is immutable"]
    );
}

#[test]
fn other_kinds() {
    let ev = json!({"metadata": {"name": "e.1", "namespace": "a"}, "involvedObject": {"kind": "Pod", "namespace": "b", "name": "p"}});
    assert_eq!(
        check("", "Event", &ev, None),
        vec!["involvedObject.namespace: Invalid value: \"b\": does not match event.namespace"]
    );
    let role = json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]});
    assert_eq!(
        check("rbac.authorization.k8s.io", "Role", &role, None),
        vec!["rules[0].verbs: Required value: verbs must contain at least one value"]
    );
    let cr = json!({"metadata": {"name": "system:r"}, "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]});
    assert!(check("rbac.authorization.k8s.io", "ClusterRole", &cr, None).is_empty());
    let rb = json!({"metadata": {"name": "rb", "namespace": "d"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}]});
    assert!(check("rbac.authorization.k8s.io", "RoleBinding", &rb, None).is_empty());
    let mut rb2 = rb.clone();
    rb2["roleRef"]["name"] = json!("other");
    assert!(
        check("rbac.authorization.k8s.io", "RoleBinding", &rb2, Some(&rb))[0]
            .ends_with("cannot change roleRef")
    );
    let lease =
        json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}});
    assert_eq!(
        check("coordination.k8s.io", "Lease", &lease, None),
        vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
    );
    let pvc = json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {}});
    assert_eq!(
        check("", "PersistentVolumeClaim", &pvc, None),
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value"
        ]
    );
    let node = json!({"metadata": {"name": "node-1.example"}});
    assert!(check("", "Node", &node, None).is_empty());
}

#[test]
fn garbage_does_not_panic() {
    for k in [
        "Pod",
        "Service",
        "ConfigMap",
        "Secret",
        "Event",
        "PersistentVolumeClaim",
    ] {
        for v in [
            json!(null),
            json!(1),
            json!({"spec": 3, "metadata": []}),
            json!({"spec": {"containers": [1, null, "x"], "ports": [2], "volumes": {}}}),
        ] {
            let _ = check("", k, &v, Some(&v));
            let _ = check("", k, &v, None);
        }
    }
    for (g, k) in [
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
    ] {
        let _ = check(
            g,
            k,
            &json!({"spec": {"selector": 5, "template": [], "jobTemplate": 1}}),
            Some(&json!(3)),
        );
    }
}

/// Objects as `kubectl create`/`run`/`expose` 1.33 send them: defaulted, they must validate.
#[test]
fn kubectl_generated_objects_are_valid_after_defaulting() {
    let cases: Vec<(&'static str, &'static str, bool, Value)> = vec![
        (
            "",
            "Pod",
            true,
            json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "nginx", "namespace": "default", "labels": {"run": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}],
                     "dnsPolicy": "ClusterFirst", "restartPolicy": "Always"}, "status": {}}),
        ),
        (
            "apps",
            "Deployment",
            true,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "strategy": {},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}], "resources": {}}]}}},
            "status": {}}),
        ),
        (
            "",
            "Service",
            true,
            json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "web"}},
            "status": {"loadBalancer": {}}}),
        ),
        (
            "",
            "ConfigMap",
            true,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"}, "data": {"key1": "config1", "app.properties": "a=b\n"}}),
        ),
        (
            "",
            "Secret",
            true,
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "pw", "namespace": "default"}, "data": {"password": "czNjcjN0"}}),
        ),
        (
            "batch",
            "Job",
            true,
            json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "0b0b0b0b-0000-4000-8000-000000000001"},
            "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "pi", "image": "perl:5.34.0",
                "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"], "resources": {}}], "restartPolicy": "Never"}}},
            "status": {}}),
        ),
        (
            "batch",
            "CronJob",
            true,
            json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"metadata": {"name": "hello"}, "spec": {"template":
                {"metadata": {}, "spec": {"containers": [{"name": "hello", "image": "busybox", "resources": {}}], "restartPolicy": "OnFailure"}}}}},
            "status": {}}),
        ),
        (
            "",
            "Namespace",
            false,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}, "spec": {}, "status": {}}),
        ),
        (
            "",
            "ServiceAccount",
            true,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "default"}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "Role",
            true,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pod-reader", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]}),
        ),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            true,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "read-pods", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "builder", "namespace": "default"}]}),
        ),
        (
            "apps",
            "StatefulSet",
            true,
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"serviceName": "nginx", "replicas": 2, "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "registry.k8s.io/nginx-slim:0.24",
                        "ports": [{"containerPort": 80, "name": "web"}], "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}),
        ),
        (
            "apps",
            "DaemonSet",
            true,
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "fluentd", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"name": "fluentd"}},
                     "template": {"metadata": {"labels": {"name": "fluentd"}}, "spec": {"containers": [{"name": "fluentd", "image": "quay.io/fluentd_elasticsearch/fluentd:v2.5.2",
                        "resources": {"limits": {"memory": "200Mi"}, "requests": {"cpu": "100m", "memory": "200Mi"}},
                        "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}]}],
                        "terminationGracePeriodSeconds": 30, "volumes": [{"name": "varlog", "hostPath": {"path": "/var/log"}}]}}}}),
        ),
        (
            "",
            "PersistentVolumeClaim",
            true,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}}}),
        ),
    ];
    for (group, k, namespaced, mut obj) in cases {
        let kd = kind(group, k, namespaced);
        crate::defaults::apply(&kd, &mut obj);
        let errs = validate(&kd, &obj, None);
        assert!(errs.is_empty(), "{k}: {errs:#?}");
        // An unchanged update is valid too.
        let errs = validate(&kd, &obj, Some(&obj));
        assert!(errs.is_empty(), "{k} update: {errs:#?}");
    }
}

#[test]
fn events_k8s_io() {
    let ev = json!({"metadata": {"name": "e.1", "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1", "action": "Scale", "reason": "Scaled", "type": "Normal",
        "regarding": {"kind": "Deployment", "namespace": "default", "name": "web"}});
    assert!(check("events.k8s.io", "Event", &ev, None).is_empty());
    let mut bad = ev.clone();
    bad["type"] = json!("Info");
    bad["action"] = json!("");
    bad["regarding"]["namespace"] = json!("other");
    assert_eq!(
        check("events.k8s.io", "Event", &bad, None),
        vec![
            "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace",
            "action: Required value",
            "type: Unsupported value: \"Info\": supported values: \"Normal\", \"Warning\"",
        ]
    );
}

#[test]
fn crd_names() {
    let crd = json!({"metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "names": {"plural": "crontabs", "kind": "CronTab"}}});
    let k = kind("apiextensions.k8s.io", "CustomResourceDefinition", false);
    assert!(validate(&k, &crd, None).is_empty());
    let mut bad = crd.clone();
    bad["metadata"]["name"] = json!("crontab.stable.example.com");
    assert_eq!(
        validate(&k, &bad, None)[0].message,
        "Invalid value: \"crontab.stable.example.com\": must be spec.names.plural+\".\"+spec.group"
    );
}

/// Arbitrary JSON shaped a little like objects: keys drawn from real field names.
fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let keys = prop::sample::select(vec![
        "metadata",
        "name",
        "namespace",
        "labels",
        "spec",
        "containers",
        "initContainers",
        "image",
        "ports",
        "port",
        "containerPort",
        "protocol",
        "volumes",
        "volumeMounts",
        "selector",
        "matchLabels",
        "matchExpressions",
        "template",
        "replicas",
        "strategy",
        "rollingUpdate",
        "maxSurge",
        "maxUnavailable",
        "resources",
        "limits",
        "requests",
        "cpu",
        "type",
        "data",
        "status",
        "jobTemplate",
        "schedule",
        "updateStrategy",
        "livenessProbe",
        "httpGet",
        "env",
        "valueFrom",
        "fieldRef",
        "subjects",
        "roleRef",
        "rules",
        "verbs",
        "clusterIP",
        "behavior",
        "volumeClaimTemplates",
        "hostNetwork",
        "tolerations",
        "immutable",
        "annotations",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9%./-]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn defaulting_and_validation_never_panic_and_defaulting_is_idempotent(
        obj in arb_json(),
        old in arb_json(),
    ) {
        let kinds = [
            ("", "Pod"), ("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
            ("apps", "ReplicaSet"), ("batch", "Job"), ("batch", "CronJob"), ("", "Service"),
            ("", "Secret"), ("", "ConfigMap"), ("", "Namespace"), ("", "PersistentVolumeClaim"),
            ("autoscaling", "HorizontalPodAutoscaler"), ("networking.k8s.io", "NetworkPolicy"),
            ("rbac.authorization.k8s.io", "RoleBinding"), ("", "LimitRange"), ("", "Event"),
        ];
        for (g, k) in kinds {
            let kd = kind(g, k, true);
            let mut once = obj.clone();
            crate::defaults::apply(&kd, &mut once);
            let mut twice = once.clone();
            crate::defaults::apply(&kd, &mut twice);
            proptest::prop_assert_eq!(&once, &twice, "{} not idempotent", k);
            let _ = validate(&kd, &once, Some(&old));
            let _ = crate::fields::field_values(&kd, &once);
        }
    }
}

#[test]
fn job_selector_must_be_generated() {
    let k = kind("batch", "Job", true);
    let job = json!({"metadata": {"name": "pi", "namespace": "d", "uid": "u-1"},
        "spec": {"selector": {"matchLabels": {"app": "pi"}},
                 "template": {"metadata": {"labels": {"app": "pi"}},
                              "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl"}]}}}});
    // Defaulting adds the UID to the client's selector, but a selector of the client's own
    // without `manualSelector` is still rejected, as Kubernetes does.
    let mut d = job.clone();
    crate::defaults::apply(&k, &mut d);
    assert_eq!(
        d["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        "u-1"
    );
    let errs = check("batch", "Job", &d, None);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].ends_with("`selector` not auto-generated"),
        "{errs:?}"
    );
    // The generated selector is accepted.
    let mut generated = job.clone();
    generated["spec"]["selector"] = Value::Null;
    crate::defaults::apply(&k, &mut generated);
    assert!(check("batch", "Job", &generated, None).is_empty());
    // A manual selector is the client's business.
    let mut manual = job.clone();
    manual["spec"]["manualSelector"] = json!(true);
    assert!(check("batch", "Job", &manual, None).is_empty());
}

#[test]
fn resource_names_and_ip_families() {
    let p = pod(
        json!({"restartPolicy": "Always", "containers": [{"name": "c", "image": "x",
        "resources": {"limits": {"gpu": "1", "nvidia.com/gpu": "1", "hugepages-2Mi": "2Mi"}}}]}),
    );
    assert_eq!(
        check("", "Pod", &p, None),
        vec![
            "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers"
        ]
    );
    let svc = json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"ports": [{"port": 80, "protocol": "TCP"}],
        "ipFamilies": ["IPv4", "IPv4"], "ipFamilyPolicy": "Dual"}});
    assert_eq!(
        check("", "Service", &svc, None),
        vec![
            "spec.ipFamilyPolicy: Unsupported value: \"Dual\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\"",
            "spec.ipFamilies[1]: Duplicate value: \"IPv4\"",
        ]
    );
}
