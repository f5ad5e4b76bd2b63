//! LimitRange and ResourceQuota admission over HTTPS against an in-process server: defaults
//! and bounds of LimitRanges, quota charges written to `status.used`, refusals with
//! Kubernetes' messages, dry runs, scopes, and concurrent creates that never overshoot.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// A started server and a fresh namespace in it.
async fn setup(ns: &str) -> common::Harness {
    let h = common::start(Duration::from_secs(300)).await;
    let (code, v) = send(
        h.client
            .post(h.url("/api/v1/namespaces"))
            .json(&json!({"metadata": {"name": ns}})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    h
}

fn pod(name: &str, resources: Value) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox:1", "resources": resources}]},
    })
}

async fn create(h: &common::Harness, path: &str, body: Value) -> (u16, Value) {
    send(h.client.post(h.url(path)).json(&body)).await
}

async fn quota_status(h: &common::Harness, ns: &str, name: &str) -> Value {
    let (code, v) = send(
        h.client
            .get(h.url(&format!("/api/v1/namespaces/{ns}/resourcequotas/{name}"))),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    v["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_quota_charges_each_pod_and_refuses_the_one_too_many() {
    let ns = "quota-pods";
    let h = setup(ns).await;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    let (code, v) = create(
        &h,
        &format!("/api/v1/namespaces/{ns}/resourcequotas"),
        json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2"}}}),
    )
    .await;
    assert_eq!(code, 201, "{v}");

    for name in ["p1", "p2"] {
        let (code, v) = create(&h, &pods, pod(name, json!({}))).await;
        assert_eq!(code, 201, "{v}");
    }
    // The status is filled in from the spec and counts both pods.
    let status = quota_status(&h, ns, "q").await;
    assert_eq!(status["hard"], json!({"pods": "2"}));
    assert_eq!(status["used"], json!({"pods": "2"}));

    let (code, v) = create(&h, &pods, pod("p3", json!({}))).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["reason"], "Forbidden");
    assert_eq!(
        v["message"],
        "pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );
    assert_eq!(v["details"]["kind"], "pods");
    assert_eq!(v["details"]["name"], "p3");
    // A dry run is checked the same way.
    let (code, _) = send(
        h.client
            .post(h.url(&format!("{pods}?dryRun=All")))
            .json(&pod("p4", json!({}))),
    )
    .await;
    assert_eq!(code, 403);
    let (code, _) = send(h.client.get(h.url(&format!("{pods}/p3")))).await;
    assert_eq!(code, 404);
    // A create of a name that exists fails as a conflict, not as a charge.
    let (code, v) = create(&h, &pods, pod("p1", json!({}))).await;
    assert_eq!(code, 409, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_are_checked_but_not_charged() {
    let ns = "quota-dry";
    let h = setup(ns).await;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    create(
        &h,
        &format!("/api/v1/namespaces/{ns}/resourcequotas"),
        json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}}),
    )
    .await;
    for _ in 0..3 {
        let (code, v) = send(
            h.client
                .post(h.url(&format!("{pods}?dryRun=All")))
                .json(&pod("dry", json!({}))),
        )
        .await;
        assert_eq!(code, 201, "{v}");
    }
    assert!(quota_status(&h, ns, "q").await.get("used").is_none());
    let (code, v) = create(&h, &pods, pod("real", json!({}))).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        quota_status(&h, ns, "q").await["used"],
        json!({"pods": "1"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_that_exist_before_the_quota_are_counted() {
    let ns = "quota-existing";
    let h = setup(ns).await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    common::create_configmaps(&h.client, &h.url(&cms), "before-", 2).await;
    create(
        &h,
        &format!("/api/v1/namespaces/{ns}/resourcequotas"),
        json!({"metadata": {"name": "cm"}, "spec": {"hard": {"configmaps": "3", "count/configmaps": "10"}}}),
    )
    .await;
    let (code, v) = create(&h, &cms, json!({"metadata": {"name": "third"}})).await;
    assert_eq!(code, 201, "{v}");
    let status = quota_status(&h, ns, "cm").await;
    assert_eq!(
        status["used"],
        json!({"configmaps": "3", "count/configmaps": "3"})
    );
    let (code, v) = create(&h, &cms, json!({"metadata": {"name": "fourth"}})).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "configmaps \"fourth\" is forbidden: exceeded quota: cm, requested: configmaps=1, used: configmaps=3, limited: configmaps=3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_take_a_quota_over_its_limit() {
    let ns = "quota-race";
    let h = setup(ns).await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    create(
        &h,
        &format!("/api/v1/namespaces/{ns}/resourcequotas"),
        json!({"metadata": {"name": "q"}, "spec": {"hard": {"configmaps": "5"}}}),
    )
    .await;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let client = h.client.clone();
            let url = h.url(&cms);
            tokio::spawn(async move {
                let body = json!({"metadata": {"name": format!("cm-{i}")}});
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    let created = codes.iter().filter(|c| **c == 201).count();
    let refused = codes.iter().filter(|c| **c == 403).count();
    assert_eq!((created, refused), (5, 19), "{codes:?}");
    let (_, list) = send(h.client.get(h.url(&cms))).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        quota_status(&h, ns, "q").await["used"],
        json!({"configmaps": "5"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_quotas_require_requests_and_limits_and_sum_them() {
    let ns = "quota-compute";
    let h = setup(ns).await;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    create(
        &h,
        &format!("/api/v1/namespaces/{ns}/resourcequotas"),
        json!({"metadata": {"name": "compute"}, "spec": {"hard": {
            "requests.cpu": "1", "requests.memory": "1Gi", "limits.memory": "2Gi"
        }}}),
    )
    .await;
    let (code, v) = create(&h, &pods, pod("bare", json!({}))).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "pods \"bare\" is forbidden: failed quota: compute: must specify limits.memory for: app; requests.cpu for: app; requests.memory for: app"
    );
    let sized =
        json!({"requests": {"cpu": "600m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}});
    let (code, v) = create(&h, &pods, pod("first", sized.clone())).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        quota_status(&h, ns, "compute").await["used"],
        json!({"limits.memory": "1Gi", "requests.cpu": "600m", "requests.memory": "512Mi"})
    );
    let (code, v) = create(&h, &pods, pod("second", sized)).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "pods \"second\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_quotas_charge_only_the_pods_in_their_scope() {
    let ns = "quota-scopes";
    let h = setup(ns).await;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    create(
        &h,
        &format!("/api/v1/namespaces/{ns}/resourcequotas"),
        json!({"metadata": {"name": "best-effort"}, "spec": {"hard": {"pods": "1"}, "scopes": ["BestEffort"]}}),
    )
    .await;
    let (code, v) = create(&h, &pods, pod("be-1", json!({}))).await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = create(&h, &pods, pod("be-2", json!({}))).await;
    assert_eq!(code, 403, "{v}");
    let burstable = json!({"requests": {"cpu": "100m"}});
    let (code, v) = create(&h, &pods, pod("burstable", burstable)).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        quota_status(&h, ns, "best-effort").await["used"],
        json!({"pods": "1"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_and_object_count_quotas() {
    let ns = "quota-kinds";
    let h = setup(ns).await;
    create(
        &h,
        &format!("/api/v1/namespaces/{ns}/resourcequotas"),
        json!({"metadata": {"name": "q"}, "spec": {"hard": {
            "services.nodeports": "1", "count/deployments.apps": "1"
        }}}),
    )
    .await;
    let svcs = format!("/api/v1/namespaces/{ns}/services");
    let svc = |name: &str, t: &str| json!({"metadata": {"name": name}, "spec": {"type": t, "selector": {"app": "x"}, "ports": [{"port": 80}]}});
    let (code, v) = create(&h, &svcs, svc("plain", "ClusterIP")).await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = create(&h, &svcs, svc("np", "NodePort")).await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = create(&h, &svcs, svc("np2", "NodePort")).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "services \"np2\" is forbidden: exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1"
    );

    let deploys = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let deploy = |name: &str| {
        json!({"metadata": {"name": name}, "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}
        }})
    };
    let (code, v) = create(&h, &deploys, deploy("d1")).await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = create(&h, &deploys, deploy("d2")).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "deployments.apps \"d2\" is forbidden: exceeded quota: q, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"
    );
    assert_eq!(v["details"]["group"], "apps");
    assert_eq!(
        quota_status(&h, ns, "q").await["used"],
        json!({"count/deployments.apps": "1", "services.nodeports": "1"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ranges_default_containers_and_bound_pods_and_claims() {
    let ns = "limits";
    let h = setup(ns).await;
    let (code, v) = create(
        &h,
        &format!("/api/v1/namespaces/{ns}/limitranges"),
        json!({"metadata": {"name": "lr"}, "spec": {"limits": [
            {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
             "defaultRequest": {"cpu": "100m"}, "max": {"memory": "1Gi"}, "min": {"cpu": "50m"}},
            {"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}}
        ]}}),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    let (code, v) = create(&h, &pods, pod("defaulted", json!({}))).await;
    assert_eq!(code, 201, "{v}");
    let res = &v["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"], json!({"cpu": "100m", "memory": "256Mi"}));
    assert_eq!(res["limits"], json!({"cpu": "500m", "memory": "256Mi"}));
    assert_eq!(
        v["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app"
    );
    assert_eq!(v["status"]["qosClass"], "Burstable");

    let (code, v) = create(&h, &pods, pod("big", json!({"limits": {"memory": "2Gi"}}))).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "pods \"big\" is forbidden: maximum memory usage per Container is 1Gi, but limit is 2Gi"
    );
    let (code, v) = create(&h, &pods, pod("small", json!({"requests": {"cpu": "10m"}}))).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "pods \"small\" is forbidden: minimum cpu usage per Container is 50m, but request is 10m"
    );

    let claims = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims");
    let claim = |name: &str, size: &str| {
        json!({"metadata": {"name": name}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}
        }})
    };
    let (code, v) = create(&h, &claims, claim("ok", "1Gi")).await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = create(&h, &claims, claim("huge", "20Gi")).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "persistentvolumeclaims \"huge\" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_range_defaults_satisfy_a_compute_quota() {
    let ns = "limits-and-quota";
    let h = setup(ns).await;
    create(
        &h,
        &format!("/api/v1/namespaces/{ns}/limitranges"),
        json!({"metadata": {"name": "lr"}, "spec": {"limits": [
            {"type": "Container", "default": {"cpu": "200m"}}
        ]}}),
    )
    .await;
    create(
        &h,
        &format!("/api/v1/namespaces/{ns}/resourcequotas"),
        json!({"metadata": {"name": "cpu"}, "spec": {"hard": {"requests.cpu": "500m", "limits.cpu": "500m"}}}),
    )
    .await;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    for name in ["a", "b"] {
        let (code, v) = create(&h, &pods, pod(name, json!({}))).await;
        assert_eq!(code, 201, "{v}");
    }
    let (code, v) = create(&h, &pods, pod("c", json!({}))).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "pods \"c\" is forbidden: exceeded quota: cpu, requested: limits.cpu=200m,requests.cpu=200m, used: limits.cpu=400m,requests.cpu=400m, limited: limits.cpu=500m,requests.cpu=500m"
    );
}
