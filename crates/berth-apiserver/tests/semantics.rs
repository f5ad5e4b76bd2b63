//! Object semantics over HTTPS against an in-process server: generateName, dryRun, finalizers,
//! deletecollection, preconditions, generation, bookmarks, pods/binding and pods/eviction.

mod common;

use std::time::Duration;

use futures::StreamExt;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_name_dry_run_finalizers_and_collections() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    let cms = h.url("/api/v1/namespaces/default/configmaps");

    let (code, v) = send(
        c.post(&cms)
            .json(&json!({"metadata":{"generateName":"gen-"}})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let name = v["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert!(!v["metadata"]["uid"].as_str().unwrap().is_empty());

    // dryRun=All validates and answers but stores nothing.
    let (code, v) = send(
        c.post(format!("{cms}?dryRun=All"))
            .json(&json!({"metadata":{"name":"dry"}})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, _) = send(c.get(format!("{cms}/dry"))).await;
    assert_eq!(code, 404);

    // A finalizer keeps a deleted object until it is removed.
    let (code, _) = send(
        c.post(&cms)
            .json(&json!({"metadata":{"name":"held","finalizers":["example.com/hold"]}})),
    )
    .await;
    assert_eq!(code, 201);
    let (code, v) = send(c.delete(format!("{cms}/held"))).await;
    assert!(code == 200 || code == 202, "{code} {v}");
    let (code, v) = send(c.get(format!("{cms}/held"))).await;
    assert_eq!(code, 200);
    assert!(v["metadata"]["deletionTimestamp"].is_string(), "{v}");
    let (code, _) = send(merge(
        c,
        &format!("{cms}/held"),
        json!({"metadata":{"finalizers":null}}),
    ))
    .await;
    assert_eq!(code, 200);
    let (code, _) = send(c.get(format!("{cms}/held"))).await;
    assert_eq!(code, 404, "removing the last finalizer deletes the object");

    // Preconditions on delete.
    let (_, v) = send(c.post(&cms).json(&json!({"metadata":{"name":"pre"}}))).await;
    let (code, s) = send(
        c.delete(format!("{cms}/pre"))
            .json(&json!({"preconditions":{"uid":"not-the-uid"}})),
    )
    .await;
    assert_eq!(code, 409, "{s}");
    let (code, _) = send(
        c.delete(format!("{cms}/pre"))
            .json(&json!({"preconditions":{"uid":v["metadata"]["uid"]}})),
    )
    .await;
    assert_eq!(code, 200);

    // Stale resourceVersion on update is a conflict.
    let (_, v) = send(
        c.post(&cms)
            .json(&json!({"metadata":{"name":"cas"},"data":{"a":"1"}})),
    )
    .await;
    let mut stale = v.clone();
    send(merge(c, &format!("{cms}/cas"), json!({"data":{"a":"2"}}))).await;
    stale["data"]["a"] = json!("3");
    let (code, s) = send(c.put(format!("{cms}/cas")).json(&stale)).await;
    assert_eq!(code, 409, "{s}");

    // deletecollection with a label selector.
    for i in 0..4 {
        let label = if i % 2 == 0 { "even" } else { "odd" };
        send(
            c.post(&cms)
                .json(&json!({"metadata":{"name":format!("l{i}"),"labels":{"parity":label}}})),
        )
        .await;
    }
    let (code, _) = send(c.delete(format!("{cms}?labelSelector=parity%3Deven"))).await;
    assert_eq!(code, 200);
    let (_, list) = send(c.get(format!("{cms}?labelSelector=parity"))).await;
    let left: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["l1", "l3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_tracks_spec_and_status_is_separate() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    let deploys = h.url("/apis/apps/v1/namespaces/default/deployments");
    let d = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"web:1"}]}}}});
    let (code, v) = send(c.post(&deploys).json(&d)).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["metadata"]["generation"], 1);
    // Labels do not bump the generation; the spec does.
    let (_, v) = send(merge(
        c,
        &format!("{deploys}/web"),
        json!({"metadata":{"labels":{"x":"y"}}}),
    ))
    .await;
    assert_eq!(v["metadata"]["generation"], 1);
    let (_, v) = send(merge(
        c,
        &format!("{deploys}/web"),
        json!({"spec":{"replicas":3}}),
    ))
    .await;
    assert_eq!(v["metadata"]["generation"], 2);
    // Status written through the main resource is ignored; through /status it is kept.
    let (_, v) = send(merge(
        c,
        &format!("{deploys}/web"),
        json!({"status":{"replicas":9}}),
    ))
    .await;
    assert!(v["status"].get("replicas").is_none(), "{v}");
    let (code, v) = send(merge(
        c,
        &format!("{deploys}/web/status"),
        json!({"status":{"replicas":2,"observedGeneration":2}}),
    ))
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"]["replicas"], 2);
    assert_eq!(v["metadata"]["generation"], 2);
    // Scale subresource.
    let (code, s) = send(c.get(format!("{deploys}/web/scale"))).await;
    assert_eq!(
        (code, s["kind"].as_str(), s["spec"]["replicas"].as_i64()),
        (200, Some("Scale"), Some(3))
    );
    assert_eq!(s["status"]["selector"], "app=web");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_and_eviction() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    let pods = h.url("/api/v1/namespaces/default/pods");
    for name in ["a", "b"] {
        let p = json!({"metadata":{"name":name,"labels":{"app":"db"}},"spec":{"containers":[{"name":"c","image":"db:1"}]}});
        let (code, v) = send(c.post(&pods).json(&p)).await;
        assert_eq!(code, 201, "{v}");
        assert_eq!(v["status"]["phase"], "Pending");
    }
    let binding = json!({"apiVersion":"v1","kind":"Binding","metadata":{"name":"a"},"target":{"apiVersion":"v1","kind":"Node","name":"n1"}});
    let (code, v) = send(c.post(format!("{pods}/a/binding")).json(&binding)).await;
    assert_eq!(code, 201, "{v}");
    let (_, pod) = send(c.get(format!("{pods}/a"))).await;
    assert_eq!(pod["spec"]["nodeName"], "n1");
    let scheduled = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["status"] == "True");
    assert!(scheduled, "{pod}");
    let (code, _) = send(c.post(format!("{pods}/a/binding")).json(&binding)).await;
    assert_eq!(code, 409, "a pod is bound once");
    // The field selector on spec.nodeName sees the binding.
    let (_, list) = send(c.get(format!("{pods}?fieldSelector=spec.nodeName%3Dn1"))).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // A budget guards running pods (pending ones are evicted without it): one with no
    // disruptions allowed refuses the eviction with 429; one that allows it lets it through
    // and is charged.
    for name in ["a", "b"] {
        let status =
            json!({"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}});
        let (code, v) = send(merge(c, &format!("{pods}/{name}/status"), status)).await;
        assert_eq!(code, 200, "{v}");
    }
    let pdbs = h.url("/apis/policy/v1/namespaces/default/poddisruptionbudgets");
    let (code, v) = send(c.post(&pdbs).json(&json!({"metadata":{"name":"db"},"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"db"}}}}))).await;
    assert_eq!(code, 201, "{v}");
    let eviction =
        |name: &str| json!({"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":name}});
    let (code, s) = send(c.post(format!("{pods}/b/eviction")).json(&eviction("b"))).await;
    assert_eq!(code, 429, "{s}");
    let status = json!({"status":{"observedGeneration":1,"disruptionsAllowed":1,"currentHealthy":2,"desiredHealthy":1,"expectedPods":2}});
    let (code, v) = send(merge(c, &format!("{pdbs}/db/status"), status)).await;
    assert_eq!(code, 200, "{v}");
    let (code, s) = send(c.post(format!("{pods}/b/eviction")).json(&eviction("b"))).await;
    assert_eq!(code, 201, "{s}");
    let (code, _) = send(c.get(format!("{pods}/b"))).await;
    assert_eq!(code, 404, "an unbound pod is deleted at once");
    let (_, pdb) = send(c.get(format!("{pdbs}/db"))).await;
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    let (code, _) = send(c.post(format!("{pods}/a/eviction")).json(&eviction("a"))).await;
    assert_eq!(code, 429);
    // A bound pod is deleted gracefully: it stays, terminating, for its node agent.
    let (code, _) = send(c.delete(format!("{pods}/a"))).await;
    assert_eq!(code, 200);
    let (code, pod) = send(c.get(format!("{pods}/a"))).await;
    assert_eq!(code, 200);
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, _) = send(c.delete(format!("{pods}/a?gracePeriodSeconds=0"))).await;
    assert_eq!(code, 200);
    let (code, _) = send(c.get(format!("{pods}/a"))).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_initial_state_and_honours_timeout() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    let cms = h.url("/api/v1/namespaces/default/configmaps");
    send(c.post(&cms).json(&json!({"metadata":{"name":"one"}}))).await;
    let started = std::time::Instant::now();
    let resp = c
        .get(format!(
            "{cms}?watch=1&timeoutSeconds=1&allowWatchBookmarks=true"
        ))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut text = Vec::new();
    while let Some(chunk) = stream.next().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let first: Value = serde_json::from_slice(text.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "one");
    // A label-filtered watch sees an object leave its selection as DELETED.
    send(
        c.post(&cms)
            .json(&json!({"metadata":{"name":"lab","labels":{"tier":"a"}}})),
    )
    .await;
    let (_, list) = send(c.get(&cms)).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let watch = c
        .get(format!(
            "{cms}?watch=1&resourceVersion={rv}&labelSelector=tier%3Da&timeoutSeconds=3"
        ))
        .send();
    let writer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(merge(
            c,
            &format!("{cms}/lab"),
            json!({"metadata":{"labels":{"tier":"b"}}}),
        ))
        .await;
    };
    let (resp, _) = tokio::join!(watch, writer);
    let text = resp.unwrap().text().await.unwrap();
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types, ["DELETED"], "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_namespace_refuses_new_content_and_empties() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    let (code, _) = send(
        c.post(h.url("/api/v1/namespaces"))
            .json(&json!({"metadata":{"name":"old"}})),
    )
    .await;
    assert_eq!(code, 201);
    let cms = h.url("/api/v1/namespaces/old/configmaps");
    send(c.post(&cms).json(&json!({"metadata":{"name":"a"}}))).await;
    // A pod bound to a node keeps the namespace terminating until its agent removes it.
    let pod = json!({"metadata":{"name":"p"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"i:1"}]}});
    let (code, _) = send(c.post(h.url("/api/v1/namespaces/old/pods")).json(&pod)).await;
    assert_eq!(code, 201);
    let (code, ns) = send(c.delete(h.url("/api/v1/namespaces/old"))).await;
    assert_eq!(code, 200, "{ns}");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let (code, s) = send(c.post(&cms).json(&json!({"metadata":{"name":"late"}}))).await;
    assert_eq!(code, 403, "{s}");
    assert!(
        s["message"].as_str().unwrap().contains("being terminated"),
        "{s}"
    );
    // The namespace controller empties it: the ConfigMap goes, the pod waits for its agent.
    let mut emptied = false;
    for _ in 0..50 {
        let (code, _) = send(c.get(format!("{cms}/a"))).await;
        if code == 404 {
            emptied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        emptied,
        "the ConfigMap was deleted by the namespace controller"
    );
    let (_, pod) = send(c.get(h.url("/api/v1/namespaces/old/pods/p"))).await;
    assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{pod}");
    // The agent's final delete lets the namespace go.
    send(c.delete(h.url("/api/v1/namespaces/old/pods/p?gracePeriodSeconds=0"))).await;
    let mut gone = false;
    for _ in 0..50 {
        let (code, _) = send(c.get(h.url("/api/v1/namespaces/old"))).await;
        if code == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the namespace is removed once empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_distinct_pod_cidrs_that_are_released_at_delete() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    let nodes = h.url("/api/v1/nodes");
    let mut seen = Vec::new();
    for n in ["n1", "n2", "n3"] {
        let (code, v) = send(c.post(&nodes).json(&json!({"metadata":{"name":n}}))).await;
        assert_eq!(code, 201, "{v}");
        let cidr = v["spec"]["podCIDR"].as_str().unwrap().to_string();
        assert!(
            cidr.starts_with("10.42.") && cidr.ends_with(".0/24"),
            "{cidr}"
        );
        assert_eq!(v["spec"]["podCIDRs"], json!([cidr]));
        assert!(!seen.contains(&cidr), "{cidr} handed out twice");
        seen.push(cidr);
    }
    // The CIDR is immutable: an update that drops it keeps it.
    let (code, v) = send(merge(
        c,
        &format!("{nodes}/n1"),
        json!({"spec":{"podCIDR":null,"podCIDRs":null,"unschedulable":true}}),
    ))
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["spec"]["podCIDR"], json!(seen[0]));
    // Asking for a CIDR another node holds is refused.
    let (code, v) = send(
        c.post(&nodes)
            .json(&json!({"metadata":{"name":"n4"},"spec":{"podCIDR":seen[1]}})),
    )
    .await;
    assert_eq!(code, 422, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("already assigned"),
        "{v}"
    );
    // A deleted node's CIDR can be asked for again.
    let (code, _) = send(c.delete(format!("{nodes}/n2"))).await;
    assert_eq!(code, 200);
    let (code, v) = send(
        c.post(&nodes)
            .json(&json!({"metadata":{"name":"n4"},"spec":{"podCIDR":seen[1]}})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["spec"]["podCIDR"], json!(seen[1]));
}

/// A namespace has its `default` ServiceAccount at once (pods created right after their
/// namespace ask for its tokens), not only at the controller's periodic pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_namespace_gets_its_default_service_account_promptly() {
    let h = common::start(Duration::from_secs(300)).await;
    let c = &h.client;
    // Let the start-up passes settle, so that only the namespace's creation can trigger one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, v) = send(
        c.post(h.url("/api/v1/namespaces"))
            .json(&json!({"metadata": {"name": "fresh"}})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let sa = h.url("/api/v1/namespaces/fresh/serviceaccounts/default");
    let started = std::time::Instant::now();
    while send(c.get(&sa)).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no default ServiceAccount 3 s after the namespace was created"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
