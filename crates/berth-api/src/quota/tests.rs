use serde_json::json;

use super::limit_range::{self, LimitRangeError};
use super::*;

fn now() -> Timestamp {
    "2025-01-01T00:00:00Z".parse().unwrap()
}

fn list(pairs: &[(&str, &str)]) -> ResourceList {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Amount::parse(v).unwrap()))
        .collect()
}

fn printed(l: &ResourceList) -> Vec<(String, String)> {
    l.iter().map(|(k, v)| (k.clone(), v.canonical())).collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn container(name: &str, requests: Value, limits: Value) -> Value {
    let mut resources = serde_json::Map::new();
    if !requests.is_null() {
        resources.insert("requests".into(), requests);
    }
    if !limits.is_null() {
        resources.insert("limits".into(), limits);
    }
    json!({"name": name, "image": "busybox:1", "resources": resources})
}

fn pod(containers: Vec<Value>) -> Value {
    json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": containers}})
}

fn quota(name: &str, hard: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"hard": hard}})
}

// --- quantities -------------------------------------------------------------------------------

#[test]
fn quantities_print_in_kubernetes_canonical_form() {
    for (input, want) in [
        ("0", "0"),
        ("100m", "100m"),
        ("1500m", "1500m"),
        ("1000m", "1"),
        ("0.5", "500m"),
        ("2", "2"),
        ("1000", "1k"),
        ("1200", "1200"),
        ("5G", "5G"),
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("512", "512"),
        ("1000Ki", "1000Ki"),
        ("1e3", "1e3"),
        ("1E3", "1e3"),
        ("1E", "1E"),
        ("-100m", "-100m"),
        ("1n", "1n"),
        ("1u", "1u"),
    ] {
        assert_eq!(Amount::parse(input).unwrap().canonical(), want, "{input}");
    }
    // A binary quantity that is not whole, or under 1024, prints decimal.
    let half_ki = Amount {
        value: Quantity(512_500_000_000),
        format: Format::BinarySi,
    };
    assert_eq!(half_ki.canonical(), "512500m");
    assert_eq!(Amount::parse("1Ki").unwrap().format, Format::BinarySi);
    assert_eq!(Amount::from_json(&json!(3)).unwrap().canonical(), "3");
    assert_eq!(Amount::from_json(&json!(true)), None);
}

#[test]
fn sums_keep_the_format_of_the_first_nonzero_operand() {
    let a = Amount::ZERO + Amount::parse("512Mi").unwrap();
    assert_eq!(a.canonical(), "512Mi");
    let b = a + Amount::parse("512Mi").unwrap();
    assert_eq!(b.canonical(), "1Gi");
    let c = Amount::parse("100m").unwrap() + Amount::parse("1").unwrap();
    assert_eq!(c.canonical(), "1100m");
    let sum = add(
        &list(&[("cpu", "100m"), ("pods", "1")]),
        &list(&[("cpu", "200m"), ("memory", "1Gi")]),
    );
    assert_eq!(
        printed(&sum),
        pairs(&[("cpu", "300m"), ("memory", "1Gi"), ("pods", "1")])
    );
    assert!(equals(
        &list(&[("memory", "1Gi")]),
        &list(&[("memory", "1024Mi")])
    ));
    assert!(!equals(&list(&[("memory", "1Gi")]), &list(&[])));
    assert_eq!(
        pretty(&list(&[("pods", "1"), ("cpu", "1")])),
        "cpu=1,pods=1"
    );
}

// --- pods -------------------------------------------------------------------------------------

#[test]
fn a_pod_charges_its_requests_limits_and_counts() {
    let p = pod(vec![
        container(
            "app",
            json!({"cpu": "250m", "memory": "64Mi", "ephemeral-storage": "1Gi"}),
            json!({"cpu": "500m", "memory": "128Mi"}),
        ),
        container(
            "sidecar",
            json!({"cpu": "250m", "memory": "64Mi"}),
            json!({"cpu": "1", "memory": "128Mi"}),
        ),
    ]);
    let u = Evaluator::Pods.usage(&p, now());
    assert_eq!(
        printed(&u),
        pairs(&[
            ("count/pods", "1"),
            ("cpu", "500m"),
            ("ephemeral-storage", "1Gi"),
            ("limits.cpu", "1500m"),
            ("limits.memory", "256Mi"),
            ("memory", "128Mi"),
            ("pods", "1"),
            ("requests.cpu", "500m"),
            ("requests.ephemeral-storage", "1Gi"),
            ("requests.memory", "128Mi"),
        ])
    );
}

#[test]
fn init_containers_count_by_their_peak_and_sidecars_add_up() {
    // Effective request = max(max of init containers, sum of app containers).
    let mut p = pod(vec![
        container("a", json!({"cpu": "100m"}), Value::Null),
        container("b", json!({"cpu": "200m"}), Value::Null),
    ]);
    p["spec"]["initContainers"] = json!([
        container(
            "init-big",
            json!({"cpu": "1", "memory": "1Gi"}),
            Value::Null
        ),
        container("init-small", json!({"cpu": "50m"}), Value::Null),
    ]);
    let u = Evaluator::Pods.usage(&p, now());
    assert_eq!(u["requests.cpu"].canonical(), "1");
    assert_eq!(u["requests.memory"].canonical(), "1Gi");

    // A sidecar (restartable init container) runs alongside: it adds to the app containers
    // and to every init container started after it.
    let mut sidecar = container("proxy", json!({"cpu": "300m"}), Value::Null);
    sidecar["restartPolicy"] = json!("Always");
    p["spec"]["initContainers"] = json!([
        sidecar,
        container("init", json!({"cpu": "800m"}), Value::Null),
    ]);
    let u = Evaluator::Pods.usage(&p, now());
    // max(300m + 800m, 100m + 200m + 300m) = 1100m
    assert_eq!(u["requests.cpu"].canonical(), "1100m");
}

#[test]
fn overhead_adds_to_requests_and_to_nonzero_limits() {
    let mut p = pod(vec![container(
        "a",
        json!({"cpu": "100m", "memory": "64Mi"}),
        json!({"cpu": "200m"}),
    )]);
    p["spec"]["overhead"] = json!({"cpu": "50m", "memory": "16Mi"});
    let u = Evaluator::Pods.usage(&p, now());
    assert_eq!(u["requests.cpu"].canonical(), "150m");
    assert_eq!(u["requests.memory"].canonical(), "80Mi");
    assert_eq!(u["limits.cpu"].canonical(), "250m");
    assert!(!u.contains_key("limits.memory"));
}

#[test]
fn finished_and_long_deleted_pods_charge_only_their_count() {
    let base = pod(vec![container("a", json!({"cpu": "1"}), Value::Null)]);
    for phase in ["Succeeded", "Failed"] {
        let mut p = base.clone();
        p["status"] = json!({"phase": phase});
        let u = Evaluator::Pods.usage(&p, now());
        assert_eq!(printed(&u), pairs(&[("count/pods", "1")]), "{phase}");
    }
    let mut p = base.clone();
    p["metadata"]["deletionTimestamp"] = json!("2024-12-31T23:59:00Z");
    p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    // Deleted at 23:59:00 with 30 s of grace: charged until 23:59:30.
    assert_eq!(Evaluator::Pods.usage(&p, now()).len(), 1);
    let early: Timestamp = "2024-12-31T23:59:20Z".parse().unwrap();
    assert!(Evaluator::Pods.usage(&p, early).contains_key("pods"));
    assert_eq!(
        pod_stuck_after(&p),
        Some("2024-12-31T23:59:30Z".parse().unwrap())
    );
    let running = Evaluator::Pods.usage(&base, now());
    assert_eq!(running["pods"].canonical(), "1");
}

#[test]
fn hugepages_and_extended_resources_are_charged_as_requests() {
    let p = pod(vec![container(
        "a",
        json!({"hugepages-2Mi": "4Mi", "example.com/gpu": "2"}),
        json!({"hugepages-2Mi": "4Mi", "example.com/gpu": "2"}),
    )]);
    let u = Evaluator::Pods.usage(&p, now());
    assert_eq!(u["hugepages-2Mi"].canonical(), "4Mi");
    assert_eq!(u["requests.hugepages-2Mi"].canonical(), "4Mi");
    assert_eq!(u["requests.example.com/gpu"].canonical(), "2");
    let names = Evaluator::Pods.matching_resources([
        "requests.example.com/gpu",
        "hugepages-2Mi",
        "requests.kubernetes.io/x",
        "services",
        "pods",
    ]);
    assert_eq!(names, ["requests.example.com/gpu", "hugepages-2Mi", "pods"]);
}

// --- services, claims, counts -----------------------------------------------------------------

#[test]
fn services_charge_load_balancers_and_node_ports() {
    let svc = |t: &str| json!({"metadata": {"name": "s"}, "spec": {"type": t, "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}]}});
    let u = Evaluator::Services.usage(&svc("ClusterIP"), now());
    assert_eq!(
        printed(&u),
        pairs(&[
            ("count/services", "1"),
            ("services", "1"),
            ("services.loadbalancers", "0"),
            ("services.nodeports", "0"),
        ])
    );
    let u = Evaluator::Services.usage(&svc("NodePort"), now());
    assert_eq!(u["services.nodeports"].canonical(), "2");
    let u = Evaluator::Services.usage(&svc("LoadBalancer"), now());
    assert_eq!(u["services.loadbalancers"].canonical(), "1");
    assert_eq!(u["services.nodeports"].canonical(), "2");
    let mut no_ports = svc("LoadBalancer");
    no_ports["spec"]["allocateLoadBalancerNodePorts"] = json!(false);
    let u = Evaluator::Services.usage(&no_ports, now());
    assert_eq!(u["services.nodeports"].canonical(), "1");
    // Zero usage is not a charge.
    let c = charge_of(&Evaluator::Services, &svc("ClusterIP"), now()).unwrap();
    assert_eq!(c.keys().collect::<Vec<_>>(), ["count/services", "services"]);
}

#[test]
fn claims_charge_storage_also_per_storage_class() {
    let pvc = json!({
        "metadata": {"name": "data"},
        "spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1.5Gi"}}},
    });
    let u = Evaluator::PersistentVolumeClaims.usage(&pvc, now());
    assert_eq!(
        printed(&u),
        pairs(&[
            ("count/persistentvolumeclaims", "1"),
            (
                "gold.storageclass.storage.k8s.io/persistentvolumeclaims",
                "1"
            ),
            (
                "gold.storageclass.storage.k8s.io/requests.storage",
                "1536Mi"
            ),
            ("persistentvolumeclaims", "1"),
            ("requests.storage", "1536Mi"),
        ])
    );
    // Fractions of a byte are rounded up; a larger allocation counts.
    let mut odd = json!({"spec": {"resources": {"requests": {"storage": "1500m"}}}});
    assert_eq!(
        Evaluator::PersistentVolumeClaims.usage(&odd, now())["requests.storage"].canonical(),
        "2"
    );
    odd["status"] = json!({"allocatedResources": {"storage": "10Gi"}});
    assert_eq!(
        Evaluator::PersistentVolumeClaims.usage(&odd, now())["requests.storage"].canonical(),
        "10Gi"
    );
    assert!(
        Evaluator::PersistentVolumeClaims
            .matching_resources(["bronze.storageclass.storage.k8s.io/requests.storage"])
            .len()
            == 1
    );
}

#[test]
fn any_kind_is_counted_and_legacy_names_count_too() {
    let deploy = Evaluator::of("apps", "deployments");
    assert_eq!(
        printed(&deploy.usage(&json!({}), now())),
        pairs(&[("count/deployments.apps", "1")])
    );
    let cm = Evaluator::of("", "configmaps");
    assert_eq!(
        printed(&cm.usage(&json!({}), now())),
        pairs(&[("configmaps", "1"), ("count/configmaps", "1")])
    );
    assert_eq!(
        cm.matching_resources(["configmaps", "count/configmaps", "secrets"]),
        ["configmaps", "count/configmaps"]
    );
    assert!(
        Evaluator::of("", "events")
            .matching_resources(["events"])
            .is_empty()
    );
    assert_eq!(Evaluator::of("", "pods"), Evaluator::Pods);
    assert_eq!(object_count_name("", "secrets"), "count/secrets");
}

// --- scopes -----------------------------------------------------------------------------------

#[test]
fn pod_scopes_follow_qos_deadline_and_priority_class() {
    let best_effort = pod(vec![container("a", Value::Null, Value::Null)]);
    let burstable = pod(vec![container("a", json!({"cpu": "1"}), Value::Null)]);
    let mut job_pod = best_effort.clone();
    job_pod["spec"]["activeDeadlineSeconds"] = json!(60);

    let scoped = |scopes: Value| {
        let mut q = quota("q", json!({"pods": "10"}));
        q["spec"]["scopes"] = scopes;
        q
    };
    let ev = Evaluator::Pods;
    assert!(quota_matches(
        &ev,
        &scoped(json!(["BestEffort"])),
        &best_effort
    ));
    assert!(!quota_matches(
        &ev,
        &scoped(json!(["BestEffort"])),
        &burstable
    ));
    assert!(quota_matches(
        &ev,
        &scoped(json!(["NotBestEffort"])),
        &burstable
    ));
    assert!(quota_matches(
        &ev,
        &scoped(json!(["Terminating"])),
        &job_pod
    ));
    assert!(!quota_matches(
        &ev,
        &scoped(json!(["Terminating"])),
        &best_effort
    ));
    assert!(quota_matches(
        &ev,
        &scoped(json!(["NotTerminating"])),
        &best_effort
    ));
    assert!(!quota_matches(
        &ev,
        &scoped(json!(["NotTerminating", "BestEffort"])),
        &job_pod
    ));
    // A status qosClass decides when present.
    let mut reported = burstable.clone();
    reported["status"] = json!({"qosClass": "BestEffort"});
    assert!(pod_is_best_effort(&reported));

    let mut selector = quota("q", json!({"pods": "10"}));
    selector["spec"]["scopeSelector"] = json!({"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}
    ]});
    let mut high = best_effort.clone();
    high["spec"]["priorityClassName"] = json!("high");
    assert!(quota_matches(&ev, &selector, &high));
    assert!(!quota_matches(&ev, &selector, &best_effort));
    selector["spec"]["scopeSelector"]["matchExpressions"] =
        json!([{"scopeName": "BestEffort", "operator": "Exists"}]);
    assert!(quota_matches(&ev, &selector, &best_effort));
    assert!(!quota_matches(&ev, &selector, &burstable));

    // Other kinds are in no scope: a scoped quota does not count them.
    let svc_quota = scoped(json!(["BestEffort"]));
    let mut svc_quota = svc_quota;
    svc_quota["spec"]["hard"] = json!({"services": "1"});
    assert!(!quota_matches(&Evaluator::Services, &svc_quota, &json!({})));
}

#[test]
fn cross_namespace_affinity_is_a_scope() {
    let mut p = pod(vec![container("a", Value::Null, Value::Null)]);
    let req = ScopeRequirement {
        scope: "CrossNamespacePodAffinity".into(),
        operator: "Exists".into(),
        values: vec![],
    };
    assert!(!Evaluator::Pods.matches_scope(&req, &p));
    p["spec"]["affinity"] = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "podAffinityTerm": {"topologyKey": "x", "namespaces": ["other"]}}
    ]}});
    assert!(Evaluator::Pods.matches_scope(&req, &p));
}

// --- admission --------------------------------------------------------------------------------

#[test]
fn quotas_of_compute_resources_require_every_container_to_state_them() {
    let p = pod(vec![
        container("app", json!({"cpu": "100m"}), Value::Null),
        container("sidecar", json!({"cpu": "100m"}), json!({"cpu": "1"})),
    ]);
    let q = quota(
        "compute",
        json!({"limits.cpu": "2", "requests.memory": "1Gi", "requests.cpu": "1", "pods": "4"}),
    );
    let err = applicable(&Evaluator::Pods, &[q], &p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed quota: compute: must specify limits.cpu for: app; requests.memory for: app,sidecar"
    );
    // Init containers are held to it too.
    let mut p2 = pod(vec![container("app", json!({"cpu": "1"}), Value::Null)]);
    p2["spec"]["initContainers"] = json!([container("init", Value::Null, Value::Null)]);
    let q = quota("cpu", json!({"cpu": "2"}));
    assert_eq!(
        applicable(&Evaluator::Pods, &[q], &p2)
            .unwrap_err()
            .to_string(),
        "failed quota: cpu: must specify cpu for: init"
    );
    // Ephemeral storage is not such a resource.
    let q = quota("eph", json!({"requests.ephemeral-storage": "1Gi"}));
    assert_eq!(applicable(&Evaluator::Pods, &[q], &p).unwrap(), [0]);
}

#[test]
fn quotas_that_limit_nothing_the_object_charges_do_not_apply() {
    let p = pod(vec![container("a", Value::Null, Value::Null)]);
    let quotas = [
        quota("svc", json!({"services": "1"})),
        quota("pods", json!({"pods": "1"})),
        quota("count", json!({"count/pods": "1"})),
    ];
    assert_eq!(applicable(&Evaluator::Pods, &quotas, &p).unwrap(), [1, 2]);
}

#[test]
fn a_charge_beyond_the_hard_limit_is_refused_with_kubernetes_message() {
    let mut q = quota("q", json!({"pods": "2", "requests.cpu": "1"}));
    q["status"] = json!({"hard": {"pods": "2", "requests.cpu": "1"}, "used": {"pods": "2", "requests.cpu": "500m"}});
    let p = pod(vec![container("a", json!({"cpu": "200m"}), Value::Null)]);
    let delta = charge_of(&Evaluator::Pods, &p, now()).unwrap();
    let err = charge(&q, &used(&q), &delta).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );
    let err = charge(
        &q,
        &list(&[("pods", "1"), ("requests.cpu", "900m")]),
        &delta,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "exceeded quota: q, requested: requests.cpu=200m, used: requests.cpu=900m, limited: requests.cpu=1"
    );
    let new = charge(
        &q,
        &list(&[("pods", "1"), ("requests.cpu", "500m")]),
        &delta,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        printed(&new),
        pairs(&[("pods", "2"), ("requests.cpu", "700m")])
    );
    // Several exceeded resources are listed in name order.
    let err = charge(&q, &list(&[("pods", "2"), ("requests.cpu", "1")]), &delta).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exceeded quota: q, requested: pods=1,requests.cpu=200m, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1"
    );
}

#[test]
fn a_quota_without_status_enforces_its_spec() {
    let q = quota("q", json!({"pods": "1", "services": "3"}));
    assert_eq!(
        printed(&enforced_hard(&q)),
        pairs(&[("pods", "1"), ("services", "3")])
    );
    assert_eq!(missing_usage(&Evaluator::Pods, &q), ["pods"]);
    let delta = list(&[("pods", "1"), ("count/pods", "1")]);
    let used = list(&[("pods", "1")]);
    assert!(charge(&q, &used, &delta).is_err());
    // Charges the quota does not limit change nothing.
    assert_eq!(
        charge(&q, &ResourceList::new(), &list(&[("configmaps", "1")])).unwrap(),
        None
    );
}

#[test]
fn negative_requests_are_refused() {
    let p = pod(vec![container("a", json!({"cpu": "-1"}), Value::Null)]);
    assert_eq!(
        charge_of(&Evaluator::Pods, &p, now())
            .unwrap_err()
            .to_string(),
        "quota usage is negative for resource(s): cpu,requests.cpu"
    );
}

// --- usage of a namespace ---------------------------------------------------------------------

#[test]
fn usage_is_summed_over_the_objects_in_scope() {
    let pods = vec![
        pod(vec![container(
            "a",
            json!({"cpu": "100m", "memory": "1Gi"}),
            Value::Null,
        )]),
        pod(vec![container(
            "a",
            json!({"cpu": "300m", "memory": "512Mi"}),
            Value::Null,
        )]),
        {
            let mut done = pod(vec![container("a", json!({"cpu": "1"}), Value::Null)]);
            done["status"] = json!({"phase": "Succeeded"});
            done
        },
        pod(vec![container("a", Value::Null, Value::Null)]),
    ];
    let services = vec![json!({"spec": {"type": "NodePort", "ports": [{"port": 1}]}})];
    let configmaps = vec![json!({}), json!({})];
    let deployments = vec![json!({})];
    let q = quota(
        "q",
        json!({
            "pods": "10", "count/pods": "10", "requests.cpu": "2", "requests.memory": "4Gi",
            "limits.memory": "8Gi", "services.nodeports": "5", "configmaps": "10",
            "count/deployments.apps": "3", "count/widgets.example.com": "1", "made-up": "1"
        }),
    );
    let hard = resource_list(q.pointer("/spec/hard"));
    let kinds = tracked_group_resources(&q);
    assert!(kinds.contains(&("".into(), "pods".into())));
    assert!(kinds.contains(&("apps".into(), "deployments".into())));
    assert!(kinds.contains(&("".into(), "configmaps".into())));
    assert!(!kinds.contains(&("".into(), "secrets".into())));
    let objects = |g: &str, r: &str| -> Option<&[Value]> {
        match (g, r) {
            ("", "pods") => Some(&pods),
            ("", "services") => Some(&services),
            ("", "configmaps") => Some(&configmaps),
            ("apps", "deployments") => Some(&deployments),
            _ => None,
        }
    };
    let u = calculate_usage(&hard, &[], objects, now());
    assert_eq!(
        printed(&u),
        pairs(&[
            ("configmaps", "2"),
            ("count/deployments.apps", "1"),
            ("count/pods", "4"),
            ("limits.memory", "0"),
            ("pods", "3"),
            ("requests.cpu", "400m"),
            ("requests.memory", "1536Mi"),
            ("services.nodeports", "1"),
        ])
    );
    let best_effort = [ScopeRequirement {
        scope: "BestEffort".into(),
        operator: "Exists".into(),
        values: vec![],
    }];
    let u = calculate_usage(&hard, &best_effort, objects, now());
    assert_eq!(u["pods"].canonical(), "1");
    assert_eq!(u["services.nodeports"].canonical(), "0");
}

#[test]
fn the_status_is_rewritten_only_when_it_differs() {
    let mut q = quota("q", json!({"pods": "2", "requests.memory": "1Gi"}));
    let used_now = list(&[("pods", "1"), ("requests.memory", "512Mi")]);
    let status = desired_status(&q, &used_now).expect("no status yet");
    assert_eq!(
        status,
        json!({"hard": {"pods": "2", "requests.memory": "1Gi"}, "used": {"pods": "1", "requests.memory": "512Mi"}})
    );
    q["status"] = status;
    assert_eq!(desired_status(&q, &used_now), None);
    // The same values spelled differently are no change.
    q["status"]["used"]["requests.memory"] = json!("536870912");
    assert_eq!(desired_status(&q, &used_now), None);
    let fewer = list(&[("pods", "0"), ("requests.memory", "0")]);
    assert!(desired_status(&q, &fewer).is_some());
    q["spec"]["hard"]["pods"] = json!("3");
    assert!(desired_status(&q, &used_now).is_some());
}

// --- LimitRange -------------------------------------------------------------------------------

fn limit_range(limits: Value) -> Value {
    json!({"metadata": {"name": "lr", "namespace": "ns"}, "spec": {"limits": limits}})
}

#[test]
fn container_defaults_fill_what_containers_do_not_state() {
    let lr = limit_range(json!([{
        "type": "Container",
        "default": {"cpu": "500m", "memory": "256Mi"},
        "defaultRequest": {"cpu": "100m"},
    }]));
    let mut p = pod(vec![
        container("app", Value::Null, Value::Null),
        container("own", json!({"cpu": "50m"}), json!({"memory": "1Gi"})),
    ]);
    p["spec"]["initContainers"] = json!([container("init", Value::Null, Value::Null)]);
    assert!(limit_range::apply_pod_defaults(
        &mut p,
        std::slice::from_ref(&lr)
    ));
    let c = &p["spec"]["containers"];
    assert_eq!(
        c[0]["resources"]["requests"],
        json!({"cpu": "100m", "memory": "256Mi"})
    );
    assert_eq!(
        c[0]["resources"]["limits"],
        json!({"cpu": "500m", "memory": "256Mi"})
    );
    // What a container states is kept.
    assert_eq!(
        c[1]["resources"]["requests"],
        json!({"cpu": "50m", "memory": "256Mi"})
    );
    assert_eq!(
        c[1]["resources"]["limits"],
        json!({"memory": "1Gi", "cpu": "500m"})
    );
    assert_eq!(
        p["spec"]["initContainers"][0]["resources"]["limits"],
        json!({"cpu": "500m", "memory": "256Mi"})
    );
    assert_eq!(
        p["metadata"]["annotations"][limit_range::ANNOTATION],
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app; \
         memory request for container own; cpu limit for container own; \
         cpu, memory request for init container init; cpu, memory limit for init container init"
    );
    // Applying again changes nothing.
    let again = p.clone();
    assert!(!limit_range::apply_pod_defaults(&mut p, &[lr]));
    assert_eq!(p, again);
}

#[test]
fn a_default_limit_alone_also_becomes_the_default_request_and_max_the_default_limit() {
    let lr = limit_range(json!([
        {"type": "Container", "default": {"memory": "128Mi"}, "max": {"cpu": "2"}, "min": {"cpu": "10m"}}
    ]));
    let mut p = pod(vec![container("app", Value::Null, Value::Null)]);
    limit_range::apply_pod_defaults(&mut p, &[lr]);
    let r = &p["spec"]["containers"][0]["resources"];
    assert_eq!(r["limits"], json!({"memory": "128Mi", "cpu": "2"}));
    assert_eq!(r["requests"], json!({"memory": "128Mi", "cpu": "2"}));
}

#[test]
fn container_min_max_and_ratio_are_enforced_with_kubernetes_messages() {
    let lr = limit_range(json!([{
        "type": "Container",
        "min": {"cpu": "100m"},
        "max": {"memory": "1Gi"},
        "maxLimitRequestRatio": {"cpu": "2"},
    }]));
    let check = |p: &Value| {
        limit_range::validate_pod(p, std::slice::from_ref(&lr)).map_err(|e| e.to_string())
    };
    let ok = pod(vec![container(
        "a",
        json!({"cpu": "100m", "memory": "512Mi"}),
        json!({"cpu": "200m", "memory": "1Gi"}),
    )]);
    assert_eq!(check(&ok), Ok(()));
    let low = pod(vec![container(
        "a",
        json!({"cpu": "50m"}),
        json!({"cpu": "100m", "memory": "1Gi"}),
    )]);
    assert_eq!(
        check(&low),
        Err("minimum cpu usage per Container is 100m, but request is 50m".into())
    );
    let big = pod(vec![container(
        "a",
        json!({"cpu": "100m"}),
        json!({"cpu": "100m", "memory": "2Gi"}),
    )]);
    assert_eq!(
        check(&big),
        Err("maximum memory usage per Container is 1Gi, but limit is 2Gi".into())
    );
    let greedy = pod(vec![container(
        "a",
        json!({"cpu": "100m"}),
        json!({"cpu": "300m", "memory": "1Gi"}),
    )]);
    assert_eq!(
        check(&greedy),
        Err(
            "cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000"
                .into()
        )
    );
    let bare = pod(vec![container("a", Value::Null, Value::Null)]);
    assert_eq!(
        check(&bare),
        Err("[minimum cpu usage per Container is 100m.  No request is specified, \
             maximum memory usage per Container is 1Gi.  No limit is specified, \
             cpu max limit to request ratio per Container is 2, but no request is specified or request is 0]"
            .into())
    );
}

#[test]
fn pod_items_bound_the_pods_effective_totals() {
    let lr = limit_range(json!([{"type": "Pod", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}}]));
    let p = pod(vec![
        container(
            "a",
            json!({"cpu": "600m", "memory": "32Mi"}),
            json!({"cpu": "600m"}),
        ),
        container(
            "b",
            json!({"cpu": "600m", "memory": "32Mi"}),
            json!({"cpu": "600m"}),
        ),
    ]);
    assert_eq!(
        limit_range::validate_pod(&p, &[lr])
            .unwrap_err()
            .to_string(),
        "maximum cpu usage per Pod is 1, but limit is 1200m"
    );
}

#[test]
fn claims_are_held_to_storage_min_and_max() {
    let lr = limit_range(json!([
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}
    ]));
    let claim = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});
    let check = |c: &Value| {
        limit_range::validate_claim(c, std::slice::from_ref(&lr)).map_err(|e| e.to_string())
    };
    assert_eq!(check(&claim("5Gi")), Ok(()));
    assert_eq!(
        check(&claim("500Mi")),
        Err("minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi".into())
    );
    assert_eq!(
        check(&claim("20Gi")),
        Err("maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi".into())
    );
}

#[test]
fn the_first_limit_range_with_violations_is_reported_and_duplicates_collapse() {
    let e = LimitRangeError(vec!["a".into(), "a".into()]);
    assert_eq!(e.to_string(), "a");
    let e = LimitRangeError(vec!["a".into(), "b".into(), "a".into()]);
    assert_eq!(e.to_string(), "[a, b]");
    let first = limit_range(json!([{"type": "Container", "max": {"cpu": "1"}}]));
    let second = limit_range(json!([{"type": "Container", "max": {"memory": "1Gi"}}]));
    let p = pod(vec![container(
        "a",
        Value::Null,
        json!({"cpu": "2", "memory": "2Gi"}),
    )]);
    assert_eq!(
        limit_range::validate_pod(&p, &[first, second])
            .unwrap_err()
            .to_string(),
        "maximum cpu usage per Container is 1, but limit is 2"
    );
}
