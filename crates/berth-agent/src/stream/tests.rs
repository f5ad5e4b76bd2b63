//! Tests of the lookups and option parsing shared by the handlers (the served protocols are
//! tested end to end in `tests/stream.rs`).

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::logs::{parse_options, rfc3339_nano};
use super::*;
use crate::runtime::{ContainerSpec, DnsConfig, FakeRuntime, NetworkSpec, SandboxSpec};

fn params(pairs: &[(&str, &str)]) -> Params {
    Params(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

#[test]
fn timestamps_have_nine_fraction_digits() {
    let ts: Timestamp = "2024-05-06T07:08:09.5Z".parse().unwrap();
    assert_eq!(rfc3339_nano(ts), "2024-05-06T07:08:09.500000000Z");
    let ts: Timestamp = "2024-05-06T07:08:09+02:00".parse().unwrap();
    assert_eq!(rfc3339_nano(ts), "2024-05-06T05:08:09.000000000Z");
}

#[test]
fn log_options_are_validated() {
    let now: Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
    let o = parse_options(
        &params(&[
            ("follow", "true"),
            ("tailLines", "3"),
            ("sinceSeconds", "60"),
            ("timestamps", "1"),
            ("limitBytes", "10"),
        ]),
        now,
    )
    .unwrap();
    assert!(o.runtime.follow && o.runtime.timestamps && !o.previous);
    assert_eq!(o.runtime.tail, Some(3));
    assert_eq!(
        o.runtime.since,
        Some("2024-01-01T00:00:00Z".parse().unwrap())
    );
    assert_eq!(o.limit_bytes, Some(10));
    let o = parse_options(&params(&[("sinceTime", "2023-01-01T00:00:00Z")]), now).unwrap();
    assert_eq!(
        o.runtime.since,
        Some("2023-01-01T00:00:00Z".parse().unwrap())
    );
    for bad in [
        &[("tailLines", "-1")][..],
        &[("sinceSeconds", "0")],
        &[("sinceSeconds", "1"), ("sinceTime", "2023-01-01T00:00:00Z")],
        &[("sinceTime", "yesterday")],
        &[("limitBytes", "0")],
        &[("follow", "yes")],
        &[("tailLines", "ten")],
    ] {
        assert!(
            matches!(
                parse_options(&params(bad), now),
                Err(StreamError::Request { code: 400, .. })
            ),
            "{bad:?}"
        );
    }
}

async fn pod_with_restarts(rt: &FakeRuntime, uid: &str, restarts: u32) -> Vec<String> {
    let sandbox = rt
        .create_sandbox(&SandboxSpec {
            pod_uid: uid.to_owned(),
            pod_name: "web".to_owned(),
            pod_namespace: "ns".to_owned(),
            attempt: 0,
            labels: BTreeMap::new(),
            image: "pause".to_owned(),
            network: "net".to_owned(),
            ip: None,
            hostname: "web".to_owned(),
            dns: DnsConfig::default(),
            port_mappings: Vec::new(),
            cgroup_parent: None,
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..=restarts {
        let mut spec = ContainerSpec::new("app", sandbox.clone(), "img");
        spec.restart_count = n;
        let id = rt.create_container(&spec).await.unwrap();
        rt.start(&id).await.unwrap();
        if n < restarts {
            rt.exit_container(&id, 1, false).unwrap();
        }
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn instances_are_newest_attempt_first() {
    let rt = FakeRuntime::new();
    rt.add_image("pause", "sha256:p");
    rt.add_image("img", "sha256:i");
    rt.ensure_network(&NetworkSpec {
        name: "net".to_owned(),
        subnet: "10.9.0.0/24".parse().unwrap(),
        gateway: "10.9.0.1".parse().unwrap(),
        labels: BTreeMap::new(),
    })
    .await
    .unwrap();
    let ids = pod_with_restarts(&rt, "uid-1", 2).await;
    let pod = PodRef {
        namespace: "ns".into(),
        name: "web".into(),
        uid: None,
    };
    let found: Vec<String> = container_instances(&rt, &pod, "app")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(found, vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    assert_eq!(running_container(&rt, &pod, "app").await.unwrap(), ids[2]);
    assert!(
        container_instances(&rt, &pod, "other")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        running_container(&rt, &pod, "other").await,
        Err(StreamError::Request { code: 404, .. })
    ));
    rt.exit_container(&ids[2], 0, false).unwrap();
    assert!(running_container(&rt, &pod, "app").await.is_err());
}
