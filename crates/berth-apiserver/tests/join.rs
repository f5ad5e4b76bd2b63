//! Joining nodes and what their credentials allow, against an in-process server: join tokens
//! (right, wrong secret, wrong CA hash, unknown, expired), the node authorizer's answers to a
//! joined node, and service-account tokens from the TokenRequest API.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use berth_agent::join::{JoinError, join, load_credentials};
use berth_apiserver::join::JoinToken;
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

/// Stores a join token valid until `expiration` through the admin client.
async fn create_token(h: &common::Harness, expiration: Option<jiff::Timestamp>) -> JoinToken {
    let token = JoinToken::generate(h.server.api.pki.ca_der().as_ref());
    let (code, v) = send(
        h.client
            .post(h.url("/api/v1/namespaces/kube-system/secrets"))
            .json(&token.secret_object(expiration, "test")),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    token
}

fn in_a_day() -> Option<jiff::Timestamp> {
    Some(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24))
}

/// An HTTPS client with the client certificate of `kubeconfig`.
fn client_for(kubeconfig: &Path) -> reqwest::Client {
    let (tls, _) = berth_apiserver::pki::client_config_from_kubeconfig(kubeconfig).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .unwrap()
}

/// An HTTPS client that trusts the cluster CA and presents no certificate.
fn anonymous_client(h: &common::Harness) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(h.server.api.pki.ca_der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

fn localhost() -> Vec<IpAddr> {
    vec!["127.0.0.1".parse().unwrap()]
}

fn pod(name: &str, node: Option<&str>, sa: &str, secret: &str, config_map: &str) -> Value {
    let mut p = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "serviceAccountName": sa,
            "containers": [{
                "name": "c",
                "image": "busybox:1.36",
                "env": [{"name": "CM", "valueFrom": {"configMapKeyRef": {"name": config_map, "key": "k"}}}]
            }],
            "volumes": [{"name": "s", "secret": {"secretName": secret}}]
        }
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_node_may_do_only_what_a_node_may() {
    let h = common::start(Duration::from_secs(300)).await;
    let admin = &h.client;
    let token = create_token(&h, in_a_day()).await;
    let agent_dir = h.dir.path().join("agent-n2");
    let creds = join(
        &h.server.url,
        &token.to_string(),
        "n2",
        &localhost(),
        &agent_dir,
    )
    .await
    .unwrap();
    assert_eq!(creds.node_name, "n2");
    assert_eq!(creds.ca_pem, h.server.api.pki.ca_pem());
    // A restart finds the same credentials without a token.
    assert_eq!(load_credentials(&agent_dir).unwrap(), Some(creds.clone()));
    let node = client_for(&creds.kubeconfig);

    // Its own Node: create, patch, status.
    let (code, v) = send(node.post(h.url("/api/v1/nodes")).json(&json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}
    })))
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = send(merge(
        &node,
        &h.url("/api/v1/nodes/n2"),
        json!({"metadata": {"labels": {"role": "worker"}}}),
    ))
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["metadata"]["labels"]["role"], "worker");
    let (code, v) = send(merge(
        &node,
        &h.url("/api/v1/nodes/n2/status"),
        json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    ))
    .await;
    assert_eq!(code, 200, "{v}");

    // Another node's Node: readable, not writable; nor may it create one under another name.
    let (code, v) = send(admin.post(h.url("/api/v1/nodes")).json(&json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n3"}
    })))
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, _) = send(node.get(h.url("/api/v1/nodes/n3"))).await;
    assert_eq!(code, 200);
    let (code, v) = send(merge(
        &node,
        &h.url("/api/v1/nodes/n3"),
        json!({"metadata": {"labels": {"hijacked": "yes"}}}),
    ))
    .await;
    assert_eq!(code, 403, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains(r#"User "system:node:n2" cannot patch resource "nodes" in API group "" at the cluster scope"#),
        "{msg}"
    );
    assert_eq!(v["reason"], "Forbidden");
    let (code, v) = send(node.post(h.url("/api/v1/nodes")).json(&json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n4"}
    })))
    .await;
    assert_eq!(code, 403, "{v}");

    // Pods, Secrets and ConfigMaps: what its own pods use.
    for (kind, name) in [
        ("secrets", "s-n2"),
        ("secrets", "s-n3"),
        ("configmaps", "cm-n2"),
    ] {
        let (code, v) = send(
            admin
                .post(h.url(&format!("/api/v1/namespaces/default/{kind}")))
                .json(&json!({"metadata": {"name": name}, "data": {"k": "dg=="}})),
        )
        .await;
        assert_eq!(code, 201, "{v}");
    }
    for p in [
        pod("p2", Some("n2"), "default", "s-n2", "cm-n2"),
        pod("p3", Some("n3"), "other", "s-n3", "cm-n2"),
    ] {
        let (code, v) = send(
            admin
                .post(h.url("/api/v1/namespaces/default/pods"))
                .json(&p),
        )
        .await;
        assert_eq!(code, 201, "{v}");
    }
    let (code, v) = send(node.get(h.url("/api/v1/namespaces/default/secrets/s-n2"))).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["k"], "dg==");
    let (code, v) = send(node.get(h.url("/api/v1/namespaces/default/configmaps/cm-n2"))).await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = send(node.get(h.url("/api/v1/namespaces/default/secrets/s-n3"))).await;
    assert_eq!(code, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("no relationship found between node 'n2' and this object"),
        "{v}"
    );
    for list in [
        "/api/v1/secrets",
        "/api/v1/namespaces/default/secrets",
        "/api/v1/secrets?watch=true",
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Ds-n3",
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%21%3Ds-n3",
    ] {
        let (code, v) = send(node.get(h.url(list))).await;
        assert_eq!(code, 403, "{list}: {v}");
    }
    // A list (or watch) restricted to a name its pods use is a read of that object, which is
    // how the node keeps them current.
    for (list, name) in [
        ("secrets?fieldSelector=metadata.name%3Ds-n2", "s-n2"),
        ("configmaps?fieldSelector=metadata.name%3D%3Dcm-n2", "cm-n2"),
    ] {
        let url = h.url(&format!("/api/v1/namespaces/default/{list}"));
        let (code, v) = send(node.get(&url)).await;
        assert_eq!(code, 200, "{list}: {v}");
        assert_eq!(v["items"][0]["metadata"]["name"], name, "{v}");
        let rv = v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let watch = node
            .get(format!(
                "{url}&watch=true&resourceVersion={rv}&timeoutSeconds=1"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(watch.status(), 200, "{list}");
    }
    let (code, v) = send(node.get(h.url("/api/v1/pods?fieldSelector=spec.nodeName%3Dn2"))).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let status = json!({"status": {"phase": "Running"}});
    let (code, v) = send(merge(
        &node,
        &h.url("/api/v1/namespaces/default/pods/p2/status"),
        status.clone(),
    ))
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"]["phase"], "Running");
    let (code, v) = send(merge(
        &node,
        &h.url("/api/v1/namespaces/default/pods/p3/status"),
        status,
    ))
    .await;
    assert_eq!(code, 403, "{v}");
    let (code, v) = send(merge(
        &node,
        &h.url("/api/v1/namespaces/default/pods/p3"),
        json!({"metadata": {"labels": {"x": "y"}}}),
    ))
    .await;
    assert_eq!(code, 403, "{v}");
    let (code, v) = send(merge(
        &node,
        &h.url("/api/v1/namespaces/default/pods/p2"),
        json!({"metadata": {"labels": {"x": "y"}}}),
    ))
    .await;
    assert_eq!(code, 403, "{v}");

    // Its Lease, not another's; events.
    let leases = h.url("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases");
    let (code, v) = send(node.post(&leases).json(&json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "n2"}, "spec": {"holderIdentity": "n2", "leaseDurationSeconds": 40}
    })))
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, v) = send(node.post(&leases).json(&json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "n3"}, "spec": {"holderIdentity": "n2"}
    })))
    .await;
    assert_eq!(code, 403, "{v}");
    let (code, v) = send(
        node.post(h.url("/api/v1/namespaces/default/events"))
            .json(&json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "p2.started"},
                "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p2"},
                "reason": "Started", "message": "started", "type": "Normal",
                "source": {"component": "berth-agent", "host": "n2"}
            })),
    )
    .await;
    assert_eq!(code, 201, "{v}");

    // Service-account tokens for its pods, bound to them; not for another node's pods.
    let sa_default = h.url("/api/v1/namespaces/default/serviceaccounts/default");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while send(admin.get(&sa_default)).await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the default service account was not created"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, v) = send(admin.post(h.url("/api/v1/namespaces/default/serviceaccounts")).json(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other"}}),
    ))
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, p2) = send(admin.get(h.url("/api/v1/namespaces/default/pods/p2"))).await;
    assert_eq!(code, 200);
    let request = |pod: &str, uid: &str| {
        json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600, "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}}
        })
    };
    let (code, v) = send(
        node.post(format!("{sa_default}/token"))
            .json(&request("p2", p2["metadata"]["uid"].as_str().unwrap())),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let pod_token = v["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(v["kind"], "TokenRequest");
    let (code, v) = send(
        node.post(h.url("/api/v1/namespaces/default/serviceaccounts/other/token"))
            .json(&request("p3", "")),
    )
    .await;
    assert_eq!(code, 403, "{v}");
    // The pod's token authenticates: a list it has no right to is 403, not 401.
    let anon = anonymous_client(&h);
    let (code, v) = send(
        anon.get(h.url("/api/v1/namespaces/default/pods"))
            .bearer_auth(&pod_token),
    )
    .await;
    assert_eq!(code, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains(r#"User "system:serviceaccount:default:default" cannot list"#),
        "{v}"
    );

    // Deleting its own pod works; another node's does not.
    let (code, v) = send(node.delete(h.url("/api/v1/namespaces/default/pods/p3"))).await;
    assert_eq!(code, 403, "{v}");
    let (code, v) = send(node.delete(h.url("/api/v1/namespaces/default/pods/p2"))).await;
    assert!(code == 200 || code == 202, "{code} {v}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_clear_messages() {
    let h = common::start(Duration::from_secs(300)).await;
    let good = create_token(&h, in_a_day()).await;
    let dir = h.dir.path().join("agent");

    // The right id with a wrong secret.
    let mut wrong_secret = good.clone();
    wrong_secret.secret = "0000000000000000".into();
    let e = join(
        &h.server.url,
        &wrong_secret.to_string(),
        "n1",
        &localhost(),
        &dir,
    )
    .await
    .unwrap_err();
    match &e {
        JoinError::Refused { status, message } => {
            assert_eq!(*status, 401);
            assert!(
                message.contains(&format!("the secret of join token {} is wrong", good.id)),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with("the server refused to join this node (401)"),
        "{e}"
    );

    // The right secret with another cluster's CA hash: refused before the secret is sent.
    let mut wrong_ca = good.clone();
    wrong_ca.ca_hash = "ab".repeat(32);
    let e = join(
        &h.server.url,
        &wrong_ca.to_string(),
        "n1",
        &localhost(),
        &dir,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, JoinError::CaMismatch { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("the server's CA certificate does not match the hash in the token"),
        "{e}"
    );

    // An id the cluster does not know.
    let mut unknown = good.clone();
    unknown.id = "zzzzzz".into();
    let e = join(
        &h.server.url,
        &unknown.to_string(),
        "n1",
        &localhost(),
        &dir,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("join token zzzzzz is not known"),
        "{e}"
    );

    // An expired token is refused and removed.
    let expired = create_token(
        &h,
        Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5)),
    )
    .await;
    let e = join(
        &h.server.url,
        &expired.to_string(),
        "n1",
        &localhost(),
        &dir,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("join token {} expired at", expired.id)),
        "{e}"
    );
    let (code, _) = send(h.client.get(h.url(&format!(
        "/api/v1/namespaces/kube-system/secrets/bootstrap-token-{}",
        expired.id
    ))))
    .await;
    assert_eq!(code, 404);

    // Nothing was written by the refused attempts.
    assert_eq!(load_credentials(&dir).unwrap(), None);

    // The join endpoint without a token, and a bad node name with a good token.
    let anon = anonymous_client(&h);
    let (code, v) = send(anon.post(h.url("/berth/v1/join")).json(&json!({}))).await;
    assert_eq!(code, 401, "{v}");
    let (code, v) = send(
        anon.post(h.url("/berth/v1/join"))
            .bearer_auth(format!("{}.{}", good.id, good.secret))
            .json(&json!({"nodeName": "Bad_Name", "clientCSR": "", "servingCSR": ""})),
    )
    .await;
    assert_eq!(code, 400, "{v}");
    let (code, v) = send(
        anon.post(h.url("/berth/v1/join"))
            .bearer_auth(format!("{}.{}", good.id, good.secret))
            .json(&json!({"nodeName": "n1", "clientCSR": "junk", "servingCSR": "junk"})),
    )
    .await;
    assert_eq!(code, 400, "{v}");
    // The CA is public; nothing else is without credentials.
    let resp = anon.get(h.url("/cacerts")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), h.server.api.pki.ca_pem());
    let (code, _) = send(anon.get(h.url("/api/v1/namespaces"))).await;
    assert_eq!(code, 401);

    // The good token still works after all that.
    let creds = join(&h.server.url, &good.to_string(), "n1", &localhost(), &dir)
        .await
        .unwrap();
    let (code, v) = send(client_for(&creds.kubeconfig).get(h.url("/api/v1/nodes"))).await;
    assert_eq!(code, 200, "{v}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_issue_tokens_that_authenticate() {
    let h = common::start(Duration::from_secs(300)).await;
    let admin = &h.client;
    let anon = anonymous_client(&h);
    let sas = h.url("/api/v1/namespaces/default/serviceaccounts");
    let (code, v) = send(admin.post(&sas).json(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}}),
    ))
    .await;
    assert_eq!(code, 201, "{v}");

    // Defaults: an hour, the API server's audience.
    let (code, v) = send(admin.post(format!("{sas}/builder/token")).json(
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
    ))
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["spec"]["expirationSeconds"], 3600);
    assert_eq!(
        v["spec"]["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    let expires: jiff::Timestamp = v["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = expires.duration_since(jiff::Timestamp::now()).as_secs();
    assert!((3500..=3601).contains(&left), "{left}");
    let token = v["status"]["token"].as_str().unwrap().to_string();

    let (code, v) = send(
        anon.get(h.url("/api/v1/namespaces/default/secrets"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(code, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().starts_with(
            r#"User "system:serviceaccount:default:builder" cannot list resource "secrets""#
        ),
        "{v}"
    );
    // A forged or foreign token is 401.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let (code, _) = send(
        anon.get(h.url("/api/v1/namespaces/default/secrets"))
            .bearer_auth(&forged),
    )
    .await;
    assert_eq!(code, 401);

    // Bad requests.
    let (code, v) = send(
        admin
            .post(format!("{sas}/builder/token"))
            .json(&json!({"spec": {"expirationSeconds": 60}})),
    )
    .await;
    assert_eq!(code, 422, "{v}");
    let (code, v) = send(
        admin
            .post(format!("{sas}/nobody/token"))
            .json(&json!({"spec": {}})),
    )
    .await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = send(
        admin
            .post(format!("{sas}/builder/token"))
            .json(&json!({"spec": {"boundObjectRef": {"kind": "Deployment", "name": "x"}}})),
    )
    .await;
    assert_eq!(code, 422, "{v}");
    let (code, v) = send(admin.get(format!("{sas}/builder/token"))).await;
    assert_eq!(code, 405, "{v}");

    // A token bound to a Secret ends with it.
    let (code, secret) = send(
        admin
            .post(h.url("/api/v1/namespaces/default/secrets"))
            .json(&json!({"metadata": {"name": "holder"}})),
    )
    .await;
    assert_eq!(code, 201, "{secret}");
    let (code, v) = send(admin.post(format!("{sas}/builder/token")).json(&json!({"spec": {
        "boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "holder", "uid": secret["metadata"]["uid"]}
    }})))
    .await;
    assert_eq!(code, 201, "{v}");
    let bound = v["status"]["token"].as_str().unwrap().to_string();
    let get = || {
        anon.get(h.url("/api/v1/namespaces/default/pods"))
            .bearer_auth(&bound)
    };
    assert_eq!(send(get()).await.0, 403);
    let (code, _) = send(admin.delete(h.url("/api/v1/namespaces/default/secrets/holder"))).await;
    assert_eq!(code, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, _) = send(get()).await;
        if code == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bound token outlived its Secret"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Discovery lists the subresource, as kubectl create token expects.
    let (code, v) = send(admin.get(h.url("/api/v1"))).await;
    assert_eq!(code, 200);
    assert!(
        v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "serviceaccounts/token" && r["kind"] == "TokenRequest"),
        "{v}"
    );
    h.server.shutdown().await;
}
