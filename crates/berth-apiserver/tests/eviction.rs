//! The eviction subresource against an in-process server, with budgets whose status the test
//! writes as the disruption controller would: which pods need a budget, Kubernetes' refusal
//! messages, unhealthy pods under `unhealthyPodEvictionPolicy`, the `DisruptionTarget`
//! condition, and the budget's bookkeeping.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

fn merge(c: &reqwest::Client, url: &str, patch: Value) -> reqwest::RequestBuilder {
    c.patch(url)
        .header("content-type", "application/merge-patch+json")
        .body(patch.to_string())
}

fn eviction(name: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_follow_kubernetes_budget_rules() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    let pods = h.url("/api/v1/namespaces/default/pods");
    let pdbs = h.url("/apis/policy/v1/namespaces/default/poddisruptionbudgets");
    // Pods bound to a node, each with a phase and readiness.
    let pod = |name: &str, phase: &str, ready: bool| {
        let c = c.clone();
        let pods = pods.clone();
        let name = name.to_string();
        let phase = phase.to_string();
        async move {
            let p = json!({"metadata": {"name": name, "labels": {"app": "db"}},
                           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "db:1"}]}});
            let (code, v) = send(c.post(&pods).json(&p)).await;
            assert_eq!(code, 201, "{v}");
            let ready = if ready { "True" } else { "False" };
            let status = json!({"status": {"phase": phase,
                "conditions": [{"type": "Ready", "status": ready}]}});
            let (code, v) = send(merge(&c, &format!("{pods}/{name}/status"), status)).await;
            assert_eq!(code, 200, "{v}");
        }
    };
    pod("pending", "Pending", false).await;
    pod("sick", "Running", false).await;
    pod("well", "Running", true).await;
    pod("fine", "Running", true).await;
    // An empty selector selects every pod of the namespace (policy/v1).
    let budget = json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 2, "selector": {}}});
    let (code, v) = send(c.post(&pdbs).json(&budget)).await;
    assert_eq!(code, 201, "{v}");

    // Not yet processed by the disruption controller: retry later.
    let (code, s) = send(
        c.post(format!("{pods}/well/eviction"))
            .json(&eviction("well")),
    )
    .await;
    assert_eq!(code, 429, "{s}");
    assert_eq!(
        s["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        s["details"]["causes"][0]["message"],
        "The disruption budget db is still being processed by the server."
    );

    // A pending pod needs no budget.
    let (code, s) = send(
        c.post(format!("{pods}/pending/eviction"))
            .json(&eviction("pending")),
    )
    .await;
    assert_eq!(code, 201, "{s}");

    // Healthy budget (2 of 2), none allowed: the ready pod stays, the unready one may go
    // without taking a disruption.
    let status = json!({"status": {"observedGeneration": 1, "disruptionsAllowed": 0,
        "currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 3}});
    let (code, v) = send(merge(c, &format!("{pdbs}/db/status"), status)).await;
    assert_eq!(code, 200, "{v}");
    let (code, s) = send(
        c.post(format!("{pods}/well/eviction"))
            .json(&eviction("well")),
    )
    .await;
    assert_eq!(code, 429, "{s}");
    assert_eq!(
        s["details"]["causes"][0]["message"],
        "The disruption budget db needs 2 healthy pods and has 2 currently"
    );
    let (code, s) = send(
        c.post(format!("{pods}/sick/eviction"))
            .json(&eviction("sick")),
    )
    .await;
    assert_eq!(code, 201, "{s}");
    // Bound, it is terminating and marked as a disruption target.
    let (_, sick) = send(c.get(format!("{pods}/sick"))).await;
    assert!(sick["metadata"]["deletionTimestamp"].is_string(), "{sick}");
    let target = sick["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .cloned()
        .unwrap_or_default();
    assert_eq!(target["status"], "True", "{sick}");
    assert_eq!(target["reason"], "EvictionByEvictionAPI");

    // One disruption allowed: taken by the first eviction, recorded, and the condition turns
    // False with the last one.
    let status = json!({"status": {"disruptionsAllowed": 1, "currentHealthy": 3,
        "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                        "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}});
    let (code, v) = send(merge(c, &format!("{pdbs}/db/status"), status)).await;
    assert_eq!(code, 200, "{v}");
    let (code, s) = send(
        c.post(format!("{pods}/well/eviction"))
            .json(&eviction("well")),
    )
    .await;
    assert_eq!(code, 201, "{s}");
    let (_, pdb) = send(c.get(format!("{pdbs}/db"))).await;
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0, "{pdb}");
    assert!(pdb["status"]["disruptedPods"]["well"].is_string(), "{pdb}");
    assert_eq!(pdb["status"]["conditions"][0]["status"], "False");
    assert_eq!(pdb["status"]["conditions"][0]["reason"], "InsufficientPods");
    let (code, _) = send(
        c.post(format!("{pods}/fine/eviction"))
            .json(&eviction("fine")),
    )
    .await;
    assert_eq!(code, 429);

    // A name that does not match the URL is refused.
    let (code, _) = send(
        c.post(format!("{pods}/fine/eviction"))
            .json(&eviction("other")),
    )
    .await;
    assert_eq!(code, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_allow_lets_unready_pods_go_and_two_budgets_are_an_error() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    let pods = h.url("/api/v1/namespaces/default/pods");
    let pdbs = h.url("/apis/policy/v1/namespaces/default/poddisruptionbudgets");
    for name in ["crashing", "other"] {
        let p = json!({"metadata": {"name": name, "labels": {"app": name}},
                       "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "db:1"}]}});
        let (code, v) = send(c.post(&pods).json(&p)).await;
        assert_eq!(code, 201, "{v}");
        let status = json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}]}});
        let (code, v) = send(merge(c, &format!("{pods}/{name}/status"), status)).await;
        assert_eq!(code, 200, "{v}");
    }
    // The application is down (0 of 1 healthy): IfHealthyBudget keeps the unready pod,
    // AlwaysAllow lets it go.
    let budget = |name: &str, app: &str, policy: Option<&str>| {
        let mut b = json!({"metadata": {"name": name},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}}});
        if let Some(p) = policy {
            b["spec"]["unhealthyPodEvictionPolicy"] = json!(p);
        }
        b
    };
    let status = json!({"status": {"observedGeneration": 1, "disruptionsAllowed": 0,
        "currentHealthy": 0, "desiredHealthy": 1, "expectedPods": 1}});
    for (name, app, policy) in [
        ("strict", "other", None),
        ("lenient", "crashing", Some("AlwaysAllow")),
    ] {
        let (code, v) = send(c.post(&pdbs).json(&budget(name, app, policy))).await;
        assert_eq!(code, 201, "{v}");
        let (code, v) = send(merge(c, &format!("{pdbs}/{name}/status"), status.clone())).await;
        assert_eq!(code, 200, "{v}");
    }
    let (code, s) = send(
        c.post(format!("{pods}/other/eviction"))
            .json(&eviction("other")),
    )
    .await;
    assert_eq!(code, 429, "{s}");
    let (code, s) = send(
        c.post(format!("{pods}/crashing/eviction"))
            .json(&eviction("crashing")),
    )
    .await;
    assert_eq!(code, 201, "{s}");

    // Two budgets over one pod: the eviction subresource refuses.
    let (code, v) = send(c.post(&pdbs).json(&budget("second", "other", None))).await;
    assert_eq!(code, 201, "{v}");
    let (code, s) = send(
        c.post(format!("{pods}/other/eviction"))
            .json(&eviction("other")),
    )
    .await;
    assert_eq!(code, 500, "{s}");
}
