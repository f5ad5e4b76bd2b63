//! The in-process loopback: requests reach the handlers without TLS, authenticated by the
//! certificate the loopback was built with and authorized like requests over the network.

mod common;

use std::sync::Arc;
use std::time::Duration;

use berth_apiserver::loopback::{Loopback, LoopbackError};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

async fn send(lb: &Loopback, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = lb.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn loopback_requests_are_served_as_the_certificate_holder() {
    let h = common::start(Duration::from_secs(300)).await;
    let api = Arc::clone(&h.server.api);
    let admin = Loopback::new(Arc::clone(&api), api.pki.admin_cert_pem().as_bytes()).unwrap();

    // A watch through the loopback streams what a TLS client writes.
    let watch = Request::builder()
        .uri("/api/v1/namespaces/default/configmaps?watch=1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut stream = admin.clone().oneshot(watch).await.unwrap().into_body();
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"over-tls"},"data":{"k":"v"}}"#;
    let created = h
        .client
        .post(h.url("/api/v1/namespaces/default/configmaps"))
        .header("content-type", "application/json")
        .body(cm)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let frame = tokio::time::timeout(Duration::from_secs(10), stream.frame())
        .await
        .expect("a watch event within 10 s")
        .unwrap()
        .unwrap();
    let event = String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned();
    assert!(
        event.contains("\"ADDED\"") && event.contains("over-tls"),
        "{event}"
    );

    // A write through the loopback is seen over TLS.
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"in-process"},"data":{"k":"v"}}"#;
    let (status, body) = send(&admin, "POST", "/api/v1/namespaces/default/configmaps", cm).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let read = h
        .client
        .get(h.url("/api/v1/namespaces/default/configmaps/in-process"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: serde_json::Value = read.json().await.unwrap();
    assert_eq!(read["data"]["k"], "v");

    // A node's certificate gets a node's rights, no more.
    let (node_pem, _) = api
        .pki
        .issue_client_cert(
            "system:node:n1",
            &["system:nodes"],
            Duration::from_secs(3600),
        )
        .unwrap();
    let node = Loopback::new(Arc::clone(&api), node_pem.as_bytes()).unwrap();
    let (status, body) = send(&node, "GET", "/api/v1/secrets", "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("system:node:n1"), "{body}");
}

#[tokio::test]
async fn a_certificate_the_cluster_did_not_sign_is_refused() {
    let h = common::start(Duration::from_secs(300)).await;
    let api = Arc::clone(&h.server.api);
    // A self-signed certificate claiming the admin's groups.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "intruder");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    let forged = params.self_signed(&key).unwrap().pem();
    assert!(matches!(
        Loopback::new(Arc::clone(&api), forged.as_bytes()),
        Err(LoopbackError::Invalid(_))
    ));
    assert!(matches!(
        Loopback::new(api, b"not a certificate"),
        Err(LoopbackError::NoCertificate)
    ));
}
