//! Tests of the pod-to-spec translation, on pods written as the API server would return them.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Value, json};

use super::*;

fn pod(value: Value) -> Pod {
    serde_json::from_value(value).expect("test pod must deserialize")
}

/// A pod as the API server stores it, with `spec` merged in.
fn pod_with(spec: Value) -> Pod {
    let mut base = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-5d8f7c9b7-x2x4k",
            "namespace": "shop",
            "uid": "2b9a4c1e-5f0a-4d33-9a57-7f5e1f3b6c21",
            "labels": {"app": "web", "pod-template-hash": "5d8f7c9b7"},
            "annotations": {"team": "storefront"}
        },
        "spec": {
            "nodeName": "node-1",
            "serviceAccountName": "web-sa",
            "containers": [{"name": "app", "image": "nginx:1.27"}]
        },
        "status": {"phase": "Pending", "podIP": "10.244.1.9", "hostIP": "192.168.5.10"}
    });
    if let (Some(target), Value::Object(extra)) = (base["spec"].as_object_mut(), spec) {
        for (k, v) in extra {
            target.insert(k, v);
        }
    }
    pod(base)
}

fn ctx() -> PodContext {
    let mut config_maps = BTreeMap::new();
    config_maps.insert(
        "app-config".to_string(),
        BTreeMap::from([
            ("LOG_LEVEL".to_string(), b"debug".to_vec()),
            ("nginx.conf".to_string(), b"server {}".to_vec()),
        ]),
    );
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "db-creds".to_string(),
        BTreeMap::from([
            ("username".to_string(), b"admin".to_vec()),
            ("password".to_string(), b"s3cr3t".to_vec()),
        ]),
    );
    PodContext {
        node_name: "node-1".into(),
        host_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 5, 10))),
        pod_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 244, 1, 9))),
        cluster_dns: vec![IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10))],
        cluster_domain: "cluster.local".into(),
        service_host: Some("10.96.0.1".into()),
        service_port: 443,
        network: "berth-pods".into(),
        sandbox_image: "berth/pause:1".into(),
        sandbox_attempt: 0,
        volume_root: PathBuf::from("/var/lib/berth/pods/2b9a/volumes"),
        service_account_dir: PathBuf::from("/var/lib/berth/pods/2b9a/serviceaccount"),
        claim_root: PathBuf::from("/var/lib/berth/claims"),
        config_maps,
        secrets,
        node_allocatable: BTreeMap::from([
            ("cpu".to_string(), "4".to_string()),
            ("memory".to_string(), "8Gi".to_string()),
        ]),
    }
}

fn first(pod: &Pod) -> &Container {
    &pod.spec.as_ref().expect("spec").containers[0]
}

fn build(pod: &Pod, ctx: &PodContext) -> Result<ContainerSpec, SpecError> {
    container_spec(pod, first(pod), ctx, &SandboxId("sb1".into()), 2)
}

fn env_of(spec: &ContainerSpec, name: &str) -> Option<String> {
    spec.env
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn with_env(env: Value) -> Pod {
    pod_with(json!({"containers": [{"name": "app", "image": "busybox", "env": env}]}))
}

// ---- sandbox ----

#[test]
fn sandbox_identity_hostname_and_cluster_dns() {
    let p = pod_with(json!({}));
    let s = sandbox_spec(&p, &ctx()).expect("sandbox");
    assert_eq!(s.pod_name, "web-5d8f7c9b7-x2x4k");
    assert_eq!(s.pod_namespace, "shop");
    assert_eq!(s.pod_uid, "2b9a4c1e-5f0a-4d33-9a57-7f5e1f3b6c21");
    assert_eq!(s.hostname, "web-5d8f7c9b7-x2x4k");
    assert_eq!(s.image, "berth/pause:1");
    assert_eq!(s.network, "berth-pods");
    assert_eq!(s.ip, Some(Ipv4Addr::new(10, 244, 1, 9)));
    assert_eq!(s.labels[labels::POD_NAME], "web-5d8f7c9b7-x2x4k");
    assert_eq!(s.labels[labels::POD_NAMESPACE], "shop");
    assert_eq!(
        s.labels[labels::POD_UID],
        "2b9a4c1e-5f0a-4d33-9a57-7f5e1f3b6c21"
    );
    assert_eq!(s.dns.servers, vec!["10.96.0.10"]);
    assert_eq!(
        s.dns.searches,
        vec![
            "shop.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local"
        ]
    );
    assert_eq!(s.dns.options, vec!["ndots:5"]);
}

#[test]
fn sandbox_hostname_from_spec_and_truncated() {
    let p = pod_with(json!({"hostname": "db-0"}));
    assert_eq!(sandbox_spec(&p, &ctx()).expect("sandbox").hostname, "db-0");

    let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
    let mut p = pod_with(json!({}));
    p.metadata.name = Some(long);
    let h = sandbox_spec(&p, &ctx()).expect("sandbox").hostname;
    assert_eq!(h, "a".repeat(62), "cut to 63 and trailing '-' trimmed");
}

#[test]
fn dns_policy_default_and_none_and_hostnet() {
    let p = pod_with(json!({"dnsPolicy": "Default"}));
    assert_eq!(
        sandbox_spec(&p, &ctx()).expect("sandbox").dns,
        DnsConfig::default()
    );

    let p = pod_with(json!({"hostNetwork": true}));
    assert_eq!(
        sandbox_spec(&p, &ctx()).expect("sandbox").dns,
        DnsConfig::default()
    );

    let p = pod_with(json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}));
    assert_eq!(
        sandbox_spec(&p, &ctx()).expect("sandbox").dns.servers,
        vec!["10.96.0.10"]
    );

    let p = pod_with(json!({
        "dnsPolicy": "None",
        "dnsConfig": {
            "nameservers": ["1.1.1.1"],
            "searches": ["example.com"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]
        }
    }));
    let dns = sandbox_spec(&p, &ctx()).expect("sandbox").dns;
    assert_eq!(dns.servers, vec!["1.1.1.1"]);
    assert_eq!(dns.searches, vec!["example.com"]);
    assert_eq!(dns.options, vec!["ndots:2", "edns0"]);
}

#[test]
fn cluster_first_merges_dns_config_options() {
    let p = pod_with(json!({"dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}}));
    let dns = sandbox_spec(&p, &ctx()).expect("sandbox").dns;
    assert_eq!(dns.options, vec!["ndots:1"], "pod option overrides ndots:5");
}

#[test]
fn cluster_first_without_cluster_dns_falls_back_to_default() {
    let mut c = ctx();
    c.cluster_dns.clear();
    let p = pod_with(json!({}));
    assert_eq!(
        sandbox_spec(&p, &c).expect("sandbox").dns,
        DnsConfig::default()
    );
}

#[test]
fn host_ports_from_all_containers() {
    let p = pod_with(json!({"containers": [
        {"name": "web", "image": "nginx", "ports": [
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 443},
            {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"}
        ]},
        {"name": "metrics", "image": "exporter", "ports": [
            {"containerPort": 9100, "hostPort": 9100, "protocol": "TCP"}
        ]}
    ]}));
    let s = sandbox_spec(&p, &ctx()).expect("sandbox");
    assert_eq!(
        s.port_mappings,
        vec![
            PortMapping {
                container_port: 80,
                host_port: 8080,
                protocol: Protocol::Tcp,
                host_ip: None
            },
            PortMapping {
                container_port: 53,
                host_port: 5353,
                protocol: Protocol::Udp,
                host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            },
            PortMapping {
                container_port: 9100,
                host_port: 9100,
                protocol: Protocol::Tcp,
                host_ip: None
            },
        ]
    );
}

#[test]
fn bad_host_port_is_an_error() {
    let p = pod_with(json!({"containers": [
        {"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 70000}]}
    ]}));
    assert!(matches!(
        sandbox_spec(&p, &ctx()),
        Err(SpecError::InvalidPort { .. })
    ));
}

#[test]
fn pod_without_uid_is_an_error_not_a_panic() {
    let mut p = pod_with(json!({}));
    p.metadata.uid = None;
    assert_eq!(
        sandbox_spec(&p, &ctx()),
        Err(SpecError::MissingField {
            field: "metadata.uid".into()
        })
    );
    let mut p = pod_with(json!({}));
    p.spec = None;
    assert!(sandbox_spec(&p, &ctx()).is_err());
}

// ---- command, args, basics ----

#[test]
fn command_args_workdir_tty_and_labels() {
    let p = pod_with(json!({"containers": [{
        "name": "app",
        "image": "busybox:1.36",
        "command": ["sh", "-c"],
        "args": ["echo $(GREETING) $$(HOME) $(UNDEFINED)"],
        "workingDir": "/srv",
        "tty": true, "stdin": true, "stdinOnce": true,
        "env": [{"name": "GREETING", "value": "hello"}]
    }]}));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(s.name, "app");
    assert_eq!(s.image, "busybox:1.36");
    assert_eq!(s.sandbox, SandboxId("sb1".into()));
    assert_eq!(s.command, vec!["sh", "-c"]);
    assert_eq!(s.args, vec!["echo hello $(HOME) $(UNDEFINED)"]);
    assert_eq!(s.working_dir.as_deref(), Some("/srv"));
    assert!(s.tty && s.stdin && s.stdin_once);
    assert_eq!(s.restart_count, 2);
    assert_eq!(s.labels[labels::CONTAINER_NAME], "app");
    assert_eq!(s.labels[labels::RESTART_COUNT], "2");
    assert_eq!(
        s.labels[labels::POD_UID],
        "2b9a4c1e-5f0a-4d33-9a57-7f5e1f3b6c21"
    );
}

#[test]
fn args_only_keeps_image_entrypoint() {
    let p = pod_with(
        json!({"containers": [{"name": "app", "image": "nginx", "args": ["-g", "daemon off;"]}]}),
    );
    let s = build(&p, &ctx()).expect("container");
    assert!(s.command.is_empty());
    assert_eq!(s.args, vec!["-g", "daemon off;"]);
    assert_eq!(s.working_dir, None);
    assert!(!s.tty && !s.stdin);
}

// ---- expansion ----

#[test]
fn expansion_follows_kubelet_rules() {
    let look = |n: &str| match n {
        "A" => Some("x".to_string()),
        "" => None,
        _ => None,
    };
    assert_eq!(expand("$(A)-$(A)", &look), "x-x");
    assert_eq!(expand("$$(A)", &look), "$(A)");
    assert_eq!(expand("$$$(A)", &look), "$x");
    assert_eq!(expand("$(B)", &look), "$(B)");
    assert_eq!(expand("cost $5 $", &look), "cost $5 $");
    assert_eq!(expand("$(A", &look), "$(A");
    assert_eq!(expand("plain", &look), "plain");
    assert_eq!(expand("é$(A)é", &look), "éxé");
}

// ---- env ----

#[test]
fn env_refers_only_to_earlier_vars() {
    let p = with_env(json!([
        {"name": "FIRST", "value": "$(SECOND)-a"},
        {"name": "SECOND", "value": "b"},
        {"name": "THIRD", "value": "$(SECOND)$(FIRST)"},
        {"name": "SVC", "value": "$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"}
    ]));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(env_of(&s, "FIRST").as_deref(), Some("$(SECOND)-a"));
    assert_eq!(env_of(&s, "THIRD").as_deref(), Some("b$(SECOND)-a"));
    assert_eq!(env_of(&s, "SVC").as_deref(), Some("10.96.0.1:443"));
    let names: Vec<&str> = s.env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..4], &["FIRST", "SECOND", "THIRD", "SVC"]);
}

#[test]
fn kubernetes_service_env_unless_defined() {
    let p = with_env(json!([{"name": "KUBERNETES_SERVICE_HOST", "value": "override"}]));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(
        env_of(&s, "KUBERNETES_SERVICE_HOST").as_deref(),
        Some("override")
    );
    assert_eq!(
        env_of(&s, "KUBERNETES_SERVICE_PORT").as_deref(),
        Some("443")
    );
    assert_eq!(
        env_of(&s, "KUBERNETES_PORT").as_deref(),
        Some("tcp://10.96.0.1:443")
    );
    assert_eq!(
        env_of(&s, "KUBERNETES_PORT_443_TCP_ADDR").as_deref(),
        Some("10.96.0.1")
    );
    assert_eq!(
        s.env
            .iter()
            .filter(|(n, _)| n == "KUBERNETES_SERVICE_HOST")
            .count(),
        1
    );

    let mut c = ctx();
    c.service_host = None;
    let s = build(&with_env(json!([])), &c).expect("container");
    assert_eq!(env_of(&s, "KUBERNETES_SERVICE_HOST"), None);
}

#[test]
fn env_from_configmap_and_secret_keys() {
    let p = with_env(json!([
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "LOG_LEVEL"}}},
        {"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "username"}}},
        {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "nope", "optional": true}}},
        {"name": "MAYBE2", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": true}}},
        {"name": "DSN", "value": "$(DB_USER)@db?log=$(LEVEL)"}
    ]));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(env_of(&s, "LEVEL").as_deref(), Some("debug"));
    assert_eq!(env_of(&s, "DB_USER").as_deref(), Some("admin"));
    assert_eq!(env_of(&s, "MAYBE"), None);
    assert_eq!(env_of(&s, "MAYBE2"), None);
    assert_eq!(env_of(&s, "DSN").as_deref(), Some("admin@db?log=debug"));
}

#[test]
fn missing_required_keys_are_errors_worded_like_the_kubelet() {
    let p = with_env(json!([
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "missing"}}}
    ]));
    let err = build(&p, &ctx()).expect_err("missing key");
    assert_eq!(
        err.to_string(),
        "couldn't find key missing in ConfigMap shop/app-config"
    );

    let p = with_env(json!([
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "token"}}}
    ]));
    let err = build(&p, &ctx()).expect_err("missing key");
    assert_eq!(
        err.to_string(),
        "couldn't find key token in Secret shop/db-creds"
    );

    let p = with_env(json!([
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "other", "key": "k"}}}
    ]));
    let err = build(&p, &ctx()).expect_err("missing configmap");
    assert_eq!(err.to_string(), "configmaps \"other\" not found");

    let p = with_env(json!([
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "other", "key": "k"}}}
    ]));
    assert_eq!(
        build(&p, &ctx()).expect_err("missing secret").to_string(),
        "secrets \"other\" not found"
    );
}

#[test]
fn downward_api_fields() {
    let p = with_env(json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['team']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "URL", "value": "http://$(POD_IP):8080/$(POD_NS)"}
    ]));
    let s = build(&p, &ctx()).expect("container");
    let got: Vec<(String, String)> = s.env.iter().take(10).cloned().collect();
    let want: Vec<(String, String)> = [
        ("POD_NAME", "web-5d8f7c9b7-x2x4k"),
        ("POD_NS", "shop"),
        ("POD_UID", "2b9a4c1e-5f0a-4d33-9a57-7f5e1f3b6c21"),
        ("APP", "web"),
        ("TEAM", "storefront"),
        ("NODE", "node-1"),
        ("SA", "web-sa"),
        ("POD_IP", "10.244.1.9"),
        ("HOST_IP", "192.168.5.10"),
        ("URL", "http://10.244.1.9:8080/shop"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn pod_ip_from_context_wins_over_status() {
    let p = with_env(json!([
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    ]));
    let mut c = ctx();
    c.pod_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 244, 1, 77)));
    let s = build(&p, &c).expect("container");
    assert_eq!(env_of(&s, "POD_IP").as_deref(), Some("10.244.1.77"));
}

#[test]
fn unsupported_field_path_is_an_error() {
    let p = with_env(json!([
        {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.schedulerName"}}}
    ]));
    assert_eq!(
        build(&p, &ctx()).expect_err("unsupported").to_string(),
        "unsupported fieldPath: spec.schedulerName"
    );
}

#[test]
fn resource_field_refs() {
    let p = pod_with(json!({"containers": [{
        "name": "app", "image": "busybox",
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
        "env": [
            {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "CPU_LIMIT_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "MEM_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
            {"name": "MEM_LIMIT_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU_REQ_M", "valueFrom": {"resourceFieldRef": {"containerName": "app", "resource": "requests.cpu", "divisor": "1m"}}},
            {"name": "MEM_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}}
        ]
    }, {"name": "side", "image": "busybox"}]}));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(env_of(&s, "CPU_LIMIT").as_deref(), Some("1"));
    assert_eq!(env_of(&s, "CPU_LIMIT_M").as_deref(), Some("500"));
    assert_eq!(env_of(&s, "MEM_LIMIT").as_deref(), Some("134217728"));
    assert_eq!(env_of(&s, "MEM_LIMIT_MI").as_deref(), Some("128"));
    assert_eq!(env_of(&s, "CPU_REQ_M").as_deref(), Some("250"));
    assert_eq!(env_of(&s, "MEM_REQ").as_deref(), Some("67108864"));
}

#[test]
fn resource_field_ref_without_limit_uses_node_allocatable() {
    let p = with_env(json!([
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "MEM_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}}
    ]));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(env_of(&s, "CPU").as_deref(), Some("4"));
    assert_eq!(env_of(&s, "MEM_REQ").as_deref(), Some("0"));

    let p = with_env(json!([
        {"name": "G", "valueFrom": {"resourceFieldRef": {"resource": "limits.nvidia.com/gpu"}}}
    ]));
    assert_eq!(
        build(&p, &ctx()).expect_err("unsupported").to_string(),
        "unsupported container resource : limits.nvidia.com/gpu"
    );

    let p = with_env(json!([
        {"name": "G", "valueFrom": {"resourceFieldRef": {"containerName": "ghost", "resource": "limits.cpu"}}}
    ]));
    assert!(matches!(
        build(&p, &ctx()),
        Err(SpecError::ContainerNotFound { .. })
    ));
}

#[test]
fn env_from_with_prefix_then_env_overrides() {
    let p = pod_with(json!({"containers": [{
        "name": "app", "image": "busybox",
        "envFrom": [
            {"configMapRef": {"name": "app-config"}},
            {"prefix": "DB_", "secretRef": {"name": "db-creds"}},
            {"configMapRef": {"name": "absent", "optional": true}}
        ],
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "WHO", "value": "$(DB_username)"}]
    }]}));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(env_of(&s, "LOG_LEVEL").as_deref(), Some("info"));
    assert_eq!(env_of(&s, "nginx.conf").as_deref(), Some("server {}"));
    assert_eq!(env_of(&s, "DB_username").as_deref(), Some("admin"));
    assert_eq!(env_of(&s, "DB_password").as_deref(), Some("s3cr3t"));
    assert_eq!(env_of(&s, "WHO").as_deref(), Some("admin"));
    assert_eq!(
        s.env[0].0, "LOG_LEVEL",
        "redefinition keeps the first position"
    );

    let p = pod_with(json!({"containers": [{
        "name": "app", "image": "busybox",
        "envFrom": [{"secretRef": {"name": "absent"}}]
    }]}));
    assert_eq!(
        build(&p, &ctx()),
        Err(SpecError::SecretNotFound {
            name: "absent".into()
        })
    );
}

// ---- limits and security ----

#[test]
fn memory_and_cpu_limits() {
    let p = pod_with(json!({"containers": [{
        "name": "app", "image": "busybox",
        "resources": {"limits": {"cpu": "1500m", "memory": "256Mi"}}
    }]}));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(s.memory_limit_bytes, Some(268_435_456));
    assert_eq!(s.cpu, Some(CpuLimit::NanoCpus(1_500_000_000)));

    let p = pod_with(json!({"containers": [{
        "name": "app", "image": "busybox",
        "resources": {"limits": {"cpu": "1m", "memory": "1G"}}
    }]}));
    let s = build(&p, &ctx()).expect("container");
    assert_eq!(s.memory_limit_bytes, Some(1_000_000_000));
    assert_eq!(
        s.cpu,
        Some(CpuLimit::NanoCpus(10_000_000)),
        "raised to Docker's minimum"
    );

    let s = build(&pod_with(json!({})), &ctx()).expect("container");
    assert_eq!((s.memory_limit_bytes, s.cpu), (None, None));

    let p = pod_with(json!({"containers": [{
        "name": "app", "image": "busybox",
        "resources": {"limits": {"memory": "lots"}}
    }]}));
    assert!(matches!(
        build(&p, &ctx()),
        Err(SpecError::InvalidQuantity { .. })
    ));
}

#[test]
fn security_context_pod_defaults_and_container_overrides() {
    let p = pod_with(json!({
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000},
        "containers": [
            {"name": "app", "image": "busybox"},
            {"name": "root", "image": "busybox", "securityContext": {
                "runAsUser": 0, "privileged": true, "readOnlyRootFilesystem": true
            }}
        ]
    }));
    let c = ctx();
    let s = build(&p, &c).expect("container");
    assert_eq!(s.user.as_deref(), Some("1000:3000"));
    assert!(!s.privileged && !s.read_only_rootfs);

    let root = &p.spec.as_ref().expect("spec").containers[1];
    let s = container_spec(&p, root, &c, &SandboxId("sb1".into()), 0).expect("container");
    assert_eq!(s.user.as_deref(), Some("0:3000"));
    assert!(s.privileged && s.read_only_rootfs);

    let p = pod_with(json!({"securityContext": {"runAsGroup": 3000}}));
    assert_eq!(build(&p, &c).expect("container").user, None);
}

// ---- mounts ----

#[test]
fn volume_mounts_and_service_account() {
    let p = pod_with(json!({
        "volumes": [
            {"name": "cache", "emptyDir": {}},
            {"name": "logs", "hostPath": {"path": "/var/log/web", "type": "DirectoryOrCreate"}},
            {"name": "config", "configMap": {"name": "app-config"}},
            {"name": "creds", "secret": {"secretName": "db-creds"}}
        ],
        "containers": [{
            "name": "app", "image": "nginx",
            "volumeMounts": [
                {"name": "cache", "mountPath": "/cache"},
                {"name": "logs", "mountPath": "/logs", "readOnly": true},
                {"name": "config", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"},
                {"name": "creds", "mountPath": "/creds"}
            ]
        }]
    }));
    let c = ctx();
    let s = build(&p, &c).expect("container");
    let root = &c.volume_root;
    assert_eq!(
        s.mounts,
        vec![
            Mount {
                host_path: root.join("cache"),
                container_path: "/cache".into(),
                read_only: false
            },
            Mount {
                host_path: PathBuf::from("/var/log/web"),
                container_path: "/logs".into(),
                read_only: true
            },
            Mount {
                host_path: root.join("config").join("nginx.conf"),
                container_path: "/etc/nginx/nginx.conf".into(),
                read_only: true
            },
            Mount {
                host_path: root.join("creds"),
                container_path: "/creds".into(),
                read_only: true
            },
            Mount {
                host_path: c.service_account_dir.clone(),
                container_path: SERVICE_ACCOUNT_MOUNT_PATH.into(),
                read_only: true
            },
        ]
    );
}

#[test]
fn no_service_account_mount_when_automount_is_false() {
    let p = pod_with(json!({"automountServiceAccountToken": false}));
    assert!(build(&p, &ctx()).expect("container").mounts.is_empty());
}

#[test]
fn admission_projected_volume_serves_the_service_account_dir_once() {
    let p = pod_with(json!({
        "volumes": [{"name": "kube-api-access-7xk2p", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}}],
        "containers": [{"name": "app", "image": "nginx", "volumeMounts": [{
            "name": "kube-api-access-7xk2p",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": true
        }]}]
    }));
    let c = ctx();
    let s = build(&p, &c).expect("container");
    assert_eq!(
        s.mounts,
        vec![Mount {
            host_path: c.service_account_dir.clone(),
            container_path: SERVICE_ACCOUNT_MOUNT_PATH.into(),
            read_only: true
        }]
    );
}

#[test]
fn sub_path_expr_and_bad_sub_paths() {
    let p = pod_with(json!({
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [{"name": "app", "image": "busybox",
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data", "subPathExpr": "logs/$(POD)"}]}]
    }));
    let c = ctx();
    let s = build(&p, &c).expect("container");
    assert_eq!(
        s.mounts[0].host_path,
        c.volume_root.join("data/logs/web-5d8f7c9b7-x2x4k")
    );

    for bad in ["../etc", "/etc", "a/../../b"] {
        let p = pod_with(json!({
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "app", "image": "busybox",
                "volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": bad}]}]
        }));
        assert!(
            matches!(build(&p, &c), Err(SpecError::InvalidPath { .. })),
            "{bad}"
        );
    }
}

#[test]
fn unknown_and_unsupported_volumes() {
    let p = pod_with(json!({"containers": [{"name": "app", "image": "busybox",
        "volumeMounts": [{"name": "ghost", "mountPath": "/g"}]}]}));
    assert_eq!(
        build(&p, &ctx()).expect_err("unknown").to_string(),
        "cannot find volume \"ghost\" to mount into container \"app\""
    );

    let p = pod_with(json!({
        "volumes": [{"name": "nfs", "nfs": {"server": "nfs.example", "path": "/export"}}],
        "containers": [{"name": "app", "image": "busybox",
            "volumeMounts": [{"name": "nfs", "mountPath": "/n"}]}]
    }));
    assert!(matches!(
        build(&p, &ctx()),
        Err(SpecError::UnsupportedVolume { .. })
    ));
}

// ---- volume files ----

#[test]
fn configmap_volume_all_keys_default_mode() {
    let p = pod_with(json!({"volumes": [{"name": "config", "configMap": {"name": "app-config"}}]}));
    let files = volume_files(&p, &ctx()).expect("files");
    assert_eq!(
        files,
        vec![
            VolumeFile {
                volume: "config".into(),
                path: PathBuf::from("LOG_LEVEL"),
                bytes: b"debug".to_vec(),
                mode: 0o644
            },
            VolumeFile {
                volume: "config".into(),
                path: PathBuf::from("nginx.conf"),
                bytes: b"server {}".to_vec(),
                mode: 0o644
            },
        ]
    );
}

#[test]
fn secret_volume_items_and_modes() {
    let p = pod_with(json!({"volumes": [{"name": "creds", "secret": {
        "secretName": "db-creds",
        "defaultMode": 256,
        "items": [
            {"key": "username", "path": "db/user"},
            {"key": "password", "path": "db/pass", "mode": 384}
        ]
    }}]}));
    let files = volume_files(&p, &ctx()).expect("files");
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, PathBuf::from("db/user"));
    assert_eq!(files[0].bytes, b"admin");
    assert_eq!(files[0].mode, 0o400);
    assert_eq!(files[1].path, PathBuf::from("db/pass"));
    assert_eq!(files[1].mode, 0o600);
}

#[test]
fn volume_sources_optional_and_required() {
    let p = pod_with(json!({"volumes": [
        {"name": "a", "configMap": {"name": "absent", "optional": true}},
        {"name": "b", "secret": {"secretName": "absent", "optional": true}},
        {"name": "c", "configMap": {"name": "app-config", "optional": true,
            "items": [{"key": "gone", "path": "gone"}]}}
    ]}));
    assert!(volume_files(&p, &ctx()).expect("files").is_empty());

    let p = pod_with(json!({"volumes": [{"name": "a", "configMap": {"name": "absent"}}]}));
    assert_eq!(
        volume_files(&p, &ctx()).expect_err("required").to_string(),
        "configmaps \"absent\" not found"
    );

    let p = pod_with(
        json!({"volumes": [{"name": "c", "configMap": {"name": "app-config",
        "items": [{"key": "gone", "path": "gone"}]}}]}),
    );
    assert_eq!(
        volume_files(&p, &ctx()).expect_err("key").to_string(),
        "configmap references non-existent config key: gone"
    );

    let p = pod_with(
        json!({"volumes": [{"name": "s", "secret": {"secretName": "db-creds",
        "items": [{"key": "token", "path": "token"}]}}]}),
    );
    assert_eq!(
        volume_files(&p, &ctx()).expect_err("key").to_string(),
        "references non-existent secret key: token"
    );

    let p = pod_with(
        json!({"volumes": [{"name": "c", "configMap": {"name": "app-config",
        "items": [{"key": "LOG_LEVEL", "path": "../escape"}]}}]}),
    );
    assert!(matches!(
        volume_files(&p, &ctx()),
        Err(SpecError::InvalidPath { .. })
    ));
}

#[test]
fn emptydir_and_hostpath_have_no_files() {
    let p = pod_with(json!({"volumes": [
        {"name": "cache", "emptyDir": {"medium": "Memory"}},
        {"name": "logs", "hostPath": {"path": "/var/log"}}
    ]}));
    assert!(volume_files(&p, &ctx()).expect("files").is_empty());
}

#[test]
fn run_as_non_root_refuses_uid_zero() {
    let p = pod_with(json!({
        "securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "app", "image": "busybox", "securityContext": {"runAsUser": 0}}]
    }));
    assert_eq!(
        build(&p, &ctx()).expect_err("root").to_string(),
        "container's runAsUser breaks non-root policy (pod: \"shop/web-5d8f7c9b7-x2x4k\", container: app)"
    );
    let p = pod_with(json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
        "containers": [{"name": "app", "image": "busybox"}]
    }));
    assert_eq!(
        build(&p, &ctx()).expect("non-root").user.as_deref(),
        Some("1000")
    );
}

#[test]
fn downward_api_volume_files() {
    let p = pod_with(json!({
        "volumes": [{"name": "podinfo", "downwardAPI": {"defaultMode": 292, "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 256},
            {"path": "mem_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}
        ]}}],
        "containers": [{"name": "app", "image": "busybox",
            "resources": {"limits": {"memory": "64Mi"}},
            "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/podinfo"}]}]
    }));
    let c = ctx();
    let files = volume_files(&p, &c).expect("files");
    let got: Vec<(String, String, u32)> = files
        .iter()
        .map(|f| {
            (
                f.path.display().to_string(),
                String::from_utf8_lossy(&f.bytes).into_owned(),
                f.mode,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "labels".into(),
                "app=\"web\"\npod-template-hash=\"5d8f7c9b7\"".into(),
                0o444
            ),
            ("annotations".into(), "team=\"storefront\"".into(), 0o444),
            ("name".into(), "web-5d8f7c9b7-x2x4k".into(), 0o400),
            ("mem_limit".into(), "64".into(), 0o444),
        ]
    );
    assert!(files.iter().all(|f| f.volume == "podinfo"));
    let s = build(&p, &c).expect("container");
    assert_eq!(s.mounts[0].host_path, c.volume_root.join("podinfo"));
    assert!(s.mounts[0].read_only);

    let p = pod_with(
        json!({"volumes": [{"name": "podinfo", "downwardAPI": {"items": [
            {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}}
        ]}}]}),
    );
    assert!(matches!(
        volume_files(&p, &c),
        Err(SpecError::MissingField { .. })
    ));
}

#[test]
fn projected_volume_files_from_all_sources() {
    let p = pod_with(
        json!({"volumes": [{"name": "all-in-one", "projected": {"defaultMode": 416, "sources": [
            {"configMap": {"name": "app-config", "items": [{"key": "LOG_LEVEL", "path": "config/level"}]}},
            {"secret": {"name": "db-creds", "items": [{"key": "password", "path": "secret/pass", "mode": 256}]}},
            {"secret": {"name": "absent", "optional": true}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
        ]}}]}),
    );
    let files = volume_files(&p, &ctx()).expect("files");
    let got: Vec<(String, Vec<u8>, u32)> = files
        .iter()
        .map(|f| (f.path.display().to_string(), f.bytes.clone(), f.mode))
        .collect();
    assert_eq!(
        got,
        vec![
            ("config/level".into(), b"debug".to_vec(), 0o640),
            ("secret/pass".into(), b"s3cr3t".to_vec(), 0o400),
            ("ns".into(), b"shop".to_vec(), 0o640),
        ]
    );
}

#[test]
fn service_account_projected_volume_has_no_files() {
    let p = pod_with(
        json!({"volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
        ]}}]}),
    );
    assert!(volume_files(&p, &ctx()).expect("files").is_empty());
}

#[test]
fn persistent_volume_claims_mount_their_node_local_directory() {
    let c = ctx();
    let p = pod_with(json!({
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
            {"name": "ro", "persistentVolumeClaim": {"claimName": "shared", "readOnly": true}}
        ],
        "containers": [{"name": "app", "image": "busybox:1", "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "ro", "mountPath": "/ro"}
        ]}]
    }));
    let s = build(&p, &c).expect("container");
    assert_eq!(
        s.mounts[0].host_path,
        PathBuf::from("/var/lib/berth/claims/shop/data-web-0")
    );
    assert!(!s.mounts[0].read_only);
    assert!(s.mounts[1].read_only, "a read-only claim stays read-only");
    let bad = pod_with(json!({
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "../x"}}],
        "containers": [{"name": "app", "image": "busybox:1", "volumeMounts": [
            {"name": "data", "mountPath": "/data"}
        ]}]
    }));
    assert!(build(&bad, &c).is_err());
}
