//! Bad input never panics, hangs or corrupts state: each kind of malformed request gets a
//! `Status` with the right code and a message naming the problem, and nothing is stored.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

async fn status_of(resp: reqwest::Response) -> (u16, Value) {
    let code = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_statuses() {
    let h = common::start(Duration::from_secs(300)).await;
    let cms = h.url("/api/v1/namespaces/default/configmaps");
    let c = &h.client;

    // Malformed JSON.
    let (code, s) = status_of(
        c.post(&cms)
            .header("content-type", "application/json")
            .body("{\"kind\":")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((code, s["kind"].as_str()), (400, Some("Status")), "{s}");
    assert!(s["message"].as_str().unwrap().contains("JSON"), "{s}");
    // Malformed YAML.
    let (code, _) = status_of(
        c.post(&cms)
            .header("content-type", "application/yaml")
            .body("a: [1, 2\nb: :")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);
    // Malformed protobuf.
    let (code, s) = status_of(
        c.post(&cms)
            .header("content-type", "application/vnd.kubernetes.protobuf")
            .body(vec![1u8, 2, 3])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(code == 400 || code == 415, "{code} {s}");
    // Kind disagrees with the path.
    let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    let (code, s) = status_of(c.post(&cms).json(&body).send().await.unwrap()).await;
    assert_eq!(code, 400, "{s}");
    assert!(s["message"].as_str().unwrap().contains("kind"), "{s}");
    // Namespace disagrees with the path.
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}});
    let (code, s) = status_of(c.post(&cms).json(&body).send().await.unwrap()).await;
    assert_eq!(code, 400, "{s}");
    assert!(s["message"].as_str().unwrap().contains("namespace"), "{s}");
    // Invalid name.
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid"}});
    let (code, s) = status_of(c.post(&cms).json(&body).send().await.unwrap()).await;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")), "{s}");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name", "{s}");
    // Unknown field under Strict.
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}, "dataa": {}});
    let (code, s) = status_of(
        c.post(format!("{cms}?fieldValidation=Strict"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400, "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"dataa\""),
        "{s}"
    );
    // ... and a warning under Warn.
    let resp = c
        .post(format!("{cms}?fieldValidation=Warn"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let warning = resp
        .headers()
        .get("warning")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(warning.contains("unknown field"), "{warning}");
    // Too large.
    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": "x".repeat(4 * 1024 * 1024)}});
    let (code, s) = status_of(c.post(&cms).json(&big).send().await.unwrap()).await;
    assert_eq!(code, 413, "{s}");
    // Unsupported media types.
    let (code, _) = status_of(
        c.post(&cms)
            .header("content-type", "text/html")
            .body("<p>")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 415);
    let (code, _) = status_of(
        c.patch(format!("{cms}/y"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 415);
    // A namespace that does not exist.
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "z"}});
    let (code, s) = status_of(
        c.post(h.url("/api/v1/namespaces/nope/configmaps"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 404, "{s}");
    // Unknown resource.
    let (code, _) = status_of(c.get(h.url("/api/v1/widgets")).send().await.unwrap()).await;
    assert_eq!(code, 404);
    // Bad selectors and parameters.
    let (code, _) = status_of(
        c.get(format!("{cms}?labelSelector=a%20in%20("))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);
    let (code, s) = status_of(
        c.get(format!("{cms}?fieldSelector=spec.nodeName%3Dx"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400, "{s}");
    let (code, _) = status_of(c.get(format!("{cms}?limit=abc")).send().await.unwrap()).await;
    assert_eq!(code, 400);
    let (code, _) = status_of(
        c.get(format!("{cms}?continue=garbage"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);

    // Nothing of the rejected requests was stored: only the Warn create.
    let list: Value = c.get(&cms).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["y"]);
    assert!(
        list["items"][0].get("dataa").is_none(),
        "unknown fields are dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_get_401() {
    let h = common::start(Duration::from_secs(300)).await;
    let anonymous = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = anonymous
        .get(h.url("/api/v1/namespaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = anonymous.get(h.url("/apis")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    for path in ["/healthz", "/livez", "/readyz"] {
        let r = anonymous.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.text().await.unwrap(), "ok");
    }
    let v: Value = anonymous
        .get(h.url("/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["minor"], "33");
    let r = anonymous
        .get(h.url("/api/v1/namespaces"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_unique_addresses() {
    let h = common::start(Duration::from_secs(300)).await;
    let svcs = h.url("/api/v1/namespaces/default/services");
    let mut ips = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for i in 0..20 {
        let body = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":format!("s{i}")},"spec":{"type":"NodePort","ports":[{"port":80}]}});
        let (code, s) = status_of(h.client.post(&svcs).json(&body).send().await.unwrap()).await;
        assert_eq!(code, 201, "{s}");
        assert!(ips.insert(s["spec"]["clusterIP"].as_str().unwrap().to_string()));
        let np = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&np));
        assert!(ports.insert(np));
    }
    // The kubernetes Service holds the first address.
    let k: Value = h
        .client
        .get(format!("{svcs}/kubernetes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(k["spec"]["clusterIP"], "10.43.0.1");
    // A taken address or port is refused.
    let taken = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"dup"},"spec":{"clusterIP":"10.43.0.1","ports":[{"port":80}]}});
    let (code, s) = status_of(h.client.post(&svcs).json(&taken).send().await.unwrap()).await;
    assert_eq!(code, 422, "{s}");
    // Deleting releases; the released port may be asked for again.
    let freed = ports.iter().next().copied().unwrap();
    let owner: Value = h
        .client
        .get(&svcs)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = owner["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["spec"]["ports"][0]["nodePort"] == freed)
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        h.client
            .delete(format!("{svcs}/{name}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let again = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"again"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":freed}]}});
    let (code, s) = status_of(h.client.post(&svcs).json(&again).send().await.unwrap()).await;
    assert_eq!(code, 201, "{s}");
}
