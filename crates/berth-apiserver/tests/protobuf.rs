//! Protobuf responses: a client asking `Accept: application/vnd.kubernetes.protobuf` (as
//! client-go does) gets protobuf for GET, LIST and WATCH of the built-in kinds, decoding to the
//! objects the JSON API shows; Tables and kinds without a protobuf schema stay JSON.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const CLIENT_GO: &str = "application/vnd.kubernetes.protobuf, application/json";

/// JSON without `null`s (protobuf has no null) and, for list items, without apiVersion/kind.
fn comparable(v: &Value, item: bool) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !v.is_null() && !(item && (*k == "apiVersion" || *k == "kind")))
                .map(|(k, v)| (k.clone(), comparable(v, false)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| comparable(v, false)).collect()),
        v => v.clone(),
    }
}

async fn get(client: &reqwest::Client, url: &str, accept: &str) -> (String, Vec<u8>) {
    let resp = client
        .get(url)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (ct, resp.bytes().await.unwrap().to_vec())
}

async fn create(client: &reqwest::Client, url: &str, body: &Value) {
    let resp = client.post(url).json(body).send().await.unwrap();
    let status = resp.status();
    assert_eq!(status.as_u16(), 201, "{}", resp.text().await.unwrap());
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}, "annotations": {"note": "x"}},
        "spec": {"containers": [{
            "name": "app", "image": "nginx:1.27",
            "ports": [{"name": "http", "containerPort": 8080}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}}
        }]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_lists_and_gets_decode_to_the_stored_objects() {
    let h = common::start(Duration::from_secs(300)).await;
    let pods = h.url("/api/v1/namespaces/default/pods");
    for i in 0..3 {
        create(&h.client, &pods, &pod(&format!("web-{i}"))).await;
    }
    // Server-side apply, so that the objects carry managed fields of two managers.
    let resp = h
        .client
        .patch(format!("{pods}/web-0?fieldManager=tester"))
        .header("content-type", "application/apply-patch+yaml")
        .body(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-0","labels":{"tier":"front"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );

    let (ct, body) = get(&h.client, &pods, CLIENT_GO).await;
    assert_eq!(ct, PROTOBUF);
    assert_eq!(&body[..4], b"k8s\0");
    let list = berth_api::protobuf::decode(&body).expect("a protobuf PodList");
    assert_eq!(list["kind"], "PodList");
    let (ct, json_body) = get(&h.client, &pods, "application/json").await;
    assert_eq!(ct, "application/json");
    let json_list: Value = serde_json::from_slice(&json_body).unwrap();
    assert_eq!(list["metadata"], json_list["metadata"]);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    for (got, want) in items.iter().zip(json_list["items"].as_array().unwrap()) {
        assert_eq!(comparable(got, true), comparable(want, true));
    }
    assert!(
        items[0]["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| m.len() == 2),
        "{}",
        items[0]["metadata"]
    );

    // A page of a paginated list carries continue and remainingItemCount.
    let (_, body) = get(&h.client, &format!("{pods}?limit=2"), CLIENT_GO).await;
    let page = berth_api::protobuf::decode(&body).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["metadata"]["remainingItemCount"], 1);
    let cont = page["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, body) = get(
        &h.client,
        &format!("{pods}?limit=2&continue={cont}"),
        CLIENT_GO,
    )
    .await;
    let rest = berth_api::protobuf::decode(&body).unwrap();
    assert_eq!(rest["items"][0]["metadata"]["name"], "web-2");

    // GET of one object, and of another group's kind.
    let (ct, body) = get(&h.client, &format!("{pods}/web-1"), CLIENT_GO).await;
    assert_eq!(ct, PROTOBUF);
    let got = berth_api::protobuf::decode(&body).unwrap();
    let (_, json_body) = get(&h.client, &format!("{pods}/web-1"), "application/json").await;
    let want: Value = serde_json::from_slice(&json_body).unwrap();
    assert_eq!(comparable(&got, false), comparable(&want, false));
    assert_eq!(
        got["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
        "http"
    );

    let deployments = h.url("/apis/apps/v1/namespaces/default/deployments");
    create(
        &h.client,
        &deployments,
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}),
    )
    .await;
    let (ct, body) = get(&h.client, &format!("{deployments}/web"), PROTOBUF).await;
    assert_eq!(ct, PROTOBUF);
    let got = berth_api::protobuf::decode(&body).unwrap();
    let (_, json_body) = get(&h.client, &format!("{deployments}/web"), "application/json").await;
    let want: Value = serde_json::from_slice(&json_body).unwrap();
    assert_eq!(comparable(&got, false), comparable(&want, false));
    assert_eq!(got["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");

    // A client listing JSON first gets JSON.
    let (ct, _) = get(
        &h.client,
        &pods,
        "application/json, application/vnd.kubernetes.protobuf",
    )
    .await;
    assert_eq!(ct, "application/json");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_kinds_without_a_protobuf_schema_answer_json() {
    let h = common::start(Duration::from_secs(300)).await;
    let deployments = h.url("/apis/apps/v1/namespaces/default/deployments");
    create(
        &h.client,
        &deployments,
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}),
    )
    .await;
    // autoscaling/v1 Scale is not in the protobuf schema: JSON, though protobuf is asked first.
    let (ct, body) = get(&h.client, &format!("{deployments}/web/scale"), CLIENT_GO).await;
    assert_eq!(ct, "application/json");
    let scale: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    // Tables stay JSON.
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io, application/vnd.kubernetes.protobuf, application/json";
    let (ct, body) = get(&h.client, &deployments, table).await;
    assert_eq!(ct, "application/json");
    let t: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(t["kind"], "Table");
    // An object the protobuf schema cannot express (a number where a string belongs, which
    // Berth stores as sent today) is served as JSON, and so is any list holding it.
    let cms = h.url("/api/v1/namespaces/kube-public/configmaps");
    let odd = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "odd"}, "data": {"k": 1}});
    let resp = h.client.post(&cms).json(&odd).send().await.unwrap();
    if resp.status().as_u16() == 201 {
        let (ct, body) = get(&h.client, &format!("{cms}/odd"), CLIENT_GO).await;
        assert_eq!(ct, "application/json");
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["data"]["k"],
            1
        );
        let (ct, body) = get(&h.client, &cms, CLIENT_GO).await;
        assert_eq!(ct, "application/json");
        let list: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["metadata"]["name"] == "odd")
        );
    } else {
        // Rejected up front (as Kubernetes does, 400): nothing to fall back from.
        assert_eq!(resp.status().as_u16(), 400);
    }
    // Errors are Status objects in JSON, which client-go reads by their content type.
    let resp = h
        .client
        .get(format!("{deployments}/missing"))
        .header("accept", CLIENT_GO)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["reason"], "NotFound");
    h.server.shutdown().await;
}

/// Splits a protobuf watch stream into its frames' (type, object).
fn frames(mut buf: &[u8]) -> (Vec<(String, Value)>, usize) {
    let mut out = Vec::new();
    let mut used = 0;
    while buf.len() >= 4 {
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        if buf.len() < 4 + len {
            break;
        }
        out.push(berth_api::protobuf::decode_watch_event(&buf[4..4 + len]).expect("a WatchEvent"));
        buf = &buf[4 + len..];
        used += 4 + len;
    }
    (out, used)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_watches_send_length_prefixed_watch_events() {
    let h = common::start(Duration::from_millis(500)).await;
    let pods = h.url("/api/v1/namespaces/default/pods");
    create(&h.client, &pods, &pod("before")).await;
    // No resourceVersion: a consistent start, so "before" is among the initial events (with
    // resourceVersion=0 the cache may serve a state from just before the create).
    let mut resp = h
        .client
        .get(format!(
            "{pods}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=10"
        ))
        .header("accept", CLIENT_GO)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    create(&h.client, &pods, &pod("after")).await;
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < 3 {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .expect("stream open");
        buf.extend_from_slice(&chunk);
        let (got, used) = frames(&buf);
        buf.drain(..used);
        events.extend(got);
    }
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|(t, o)| {
            (
                t.clone(),
                o["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("ADDED".to_string(), "before".to_string()),
            ("BOOKMARK".to_string(), String::new()),
            ("ADDED".to_string(), "after".to_string()),
        ]
    );
    assert_eq!(events[0].1["kind"], "Pod");
    assert_eq!(
        events[1].1["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        events[2].1["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );
    drop(resp);

    // A resume from a compacted revision gets an ERROR event with a 410 Status, in protobuf.
    let list_rv = events[0].1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    common::create_configmaps(
        &h.client,
        &h.url("/api/v1/namespaces/default/configmaps"),
        "c-",
        5,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let (ct, body) = get(
        &h.client,
        &format!("{pods}?watch=true&resourceVersion={list_rv}&timeoutSeconds=2"),
        CLIENT_GO,
    )
    .await;
    assert_eq!(ct, "application/vnd.kubernetes.protobuf;stream=watch");
    let (got, _) = frames(&body);
    assert_eq!(got[0].0, "ERROR");
    assert_eq!(got[0].1["kind"], "Status");
    assert_eq!(got[0].1["code"], 410);
    h.server.shutdown().await;
}
