//! Unit tests of the runtime layer's pure helpers and of [`FakeRuntime`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::*;

fn sandbox_spec(network: &str) -> SandboxSpec {
    SandboxSpec {
        pod_uid: "8d5f8f5c-1111-2222-3333-444455556666".to_owned(),
        pod_name: "web".to_owned(),
        pod_namespace: "default".to_owned(),
        attempt: 0,
        labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
        image: "pause".to_owned(),
        network: network.to_owned(),
        ip: Some(Ipv4Addr::new(10, 244, 1, 5)),
        hostname: "web".to_owned(),
        dns: DnsConfig::default(),
        port_mappings: Vec::new(),
        cgroup_parent: None,
    }
}

fn network_spec() -> NetworkSpec {
    NetworkSpec {
        name: "berth-pods".to_owned(),
        subnet: "10.244.1.0/24".parse().expect("cidr"),
        gateway: Ipv4Addr::new(10, 244, 1, 1),
        labels: BTreeMap::new(),
    }
}

#[test]
fn cidr_parses_and_rejects_host_bits() {
    let cidr: Ipv4Cidr = "10.244.7.0/24".parse().expect("valid");
    assert_eq!(cidr.to_string(), "10.244.7.0/24");
    assert!(cidr.contains(Ipv4Addr::new(10, 244, 7, 200)));
    assert!(!cidr.contains(Ipv4Addr::new(10, 244, 8, 1)));
    assert!("10.244.7.1/24".parse::<Ipv4Cidr>().is_err());
    assert!("10.244.7.0/33".parse::<Ipv4Cidr>().is_err());
    assert!("10.244.7.0".parse::<Ipv4Cidr>().is_err());
    assert!("0.0.0.0/0".parse::<Ipv4Cidr>().is_ok());
}

#[test]
fn names_follow_the_kubelet_scheme() {
    let spec = sandbox_spec("n");
    assert_eq!(
        sandbox_engine_name(&spec),
        "k8s_POD_web_default_8d5f8f5c-1111-2222-3333-444455556666_0"
    );
    assert_eq!(
        container_engine_name("app", "web", "default", "uid", 3),
        "k8s_app_web_default_uid_3"
    );
    assert_eq!(exit_reason(0, false), "Completed");
    assert_eq!(exit_reason(1, false), "Error");
    assert_eq!(exit_reason(137, true), "OOMKilled");
}

#[test]
fn registry_auth_debug_hides_the_password() {
    let auth = RegistryAuth {
        username: "u".to_owned(),
        password: "s3cret".to_owned(),
        server: "r".to_owned(),
    };
    assert!(!format!("{auth:?}").contains("s3cret"));
}

#[tokio::test]
async fn fake_runs_a_pod_and_records_calls() {
    let fake = Arc::new(FakeRuntime::new());
    let rt: Arc<dyn ContainerRuntime> = fake.clone();
    fake.add_image("pause", "sha256:pause");
    fake.add_pullable_image("app:v1", "sha256:app");

    rt.ensure_network(&network_spec()).await.expect("network");
    // Idempotent for the same subnet, a conflict for another.
    rt.ensure_network(&network_spec()).await.expect("again");
    let mut other = network_spec();
    other.subnet = "10.244.2.0/24".parse().expect("cidr");
    assert!(matches!(
        rt.ensure_network(&other).await,
        Err(RuntimeError::Conflict { .. })
    ));

    let sandbox = rt
        .create_sandbox(&sandbox_spec("berth-pods"))
        .await
        .expect("sandbox");
    let image = rt
        .ensure_image("app:v1", PullDecision::Pull, None)
        .await
        .expect("pull");
    assert_eq!(image.id, "sha256:app");

    let mut spec = ContainerSpec::new("app", sandbox.clone(), "app:v1");
    spec.restart_count = 2;
    let id = rt.create_container(&spec).await.expect("create");
    assert_eq!(
        rt.inspect(&id).await.expect("inspect").state,
        ContainerState::Created
    );
    rt.start(&id).await.expect("start");
    let status = rt.inspect(&id).await.expect("inspect");
    assert!(matches!(status.state, ContainerState::Running { .. }));
    assert_eq!(status.restart_count, 2);
    assert_eq!(
        status.name,
        "k8s_app_web_default_8d5f8f5c-1111-2222-3333-444455556666_2"
    );
    assert_eq!(status.labels[labels::POD_NAME], "web");
    assert_eq!(status.image_id, "sha256:app");

    // Scripted exit.
    fake.exit_container(&id, 3, false).expect("exit");
    match rt.inspect(&id).await.expect("inspect").state {
        ContainerState::Exited { code, reason, .. } => {
            assert_eq!(code, 3);
            assert_eq!(reason, "Error");
        }
        other => panic!("expected exited, got {other:?}"),
    }

    let by_pod = BTreeMap::from([(labels::POD_NAME.to_owned(), "web".to_owned())]);
    assert_eq!(rt.list(&by_pod).await.expect("list").len(), 2);
    let containers_only =
        BTreeMap::from([(labels::KIND.to_owned(), labels::KIND_CONTAINER.to_owned())]);
    let listed = rt.list(&containers_only).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, SummaryState::Exited);

    rt.remove(&id).await.expect("remove");
    rt.remove_sandbox(&sandbox, Duration::from_secs(1))
        .await
        .expect("remove sandbox");
    assert!(rt.list(&BTreeMap::new()).await.expect("list").is_empty());

    let calls = fake.calls();
    assert_eq!(
        calls,
        vec![
            "ensure_network berth-pods 10.244.1.0/24",
            "ensure_network berth-pods 10.244.1.0/24",
            "ensure_network berth-pods 10.244.2.0/24",
            "create_sandbox default/web attempt=0",
            "ensure_image app:v1 Pull",
            &format!("create_container app in {sandbox} restart=2"),
            &format!("inspect {id}"),
            &format!("start {id}"),
            &format!("inspect {id}"),
            &format!("inspect {id}"),
            "list dev.berth.pod.name=web",
            "list dev.berth.kind=container",
            &format!("remove {id}"),
            &format!("remove_sandbox {sandbox} 1s"),
            "list ",
        ]
    );
}

#[tokio::test]
async fn fake_fails_loudly_when_not_set_up() {
    let fake = FakeRuntime::new();
    let err = fake
        .ensure_image("nginx", PullDecision::Pull, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::NotScripted { hint, .. } if hint.contains("add_pullable_image")),
        "{err}"
    );
    assert!(matches!(
        fake.ensure_image("nginx", PullDecision::NoPull, None).await,
        Err(RuntimeError::ImageNotPresent { .. })
    ));
    assert!(matches!(
        fake.inspect("nope").await,
        Err(RuntimeError::NotFound { .. })
    ));
    fake.add_image("pause", "sha256:p");
    fake.ensure_network(&network_spec()).await.expect("net");
    let sandbox = fake
        .create_sandbox(&sandbox_spec("berth-pods"))
        .await
        .expect("sandbox");
    let err = fake
        .exec(
            &sandbox.0,
            &ExecSpec {
                cmd: vec!["true".to_owned()],
                stdin: false,
                tty: false,
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("script_exec"), "{err}");
    let err = fake
        .logs(&sandbox.0, &LogOptions::default())
        .await
        .err()
        .expect("logs must fail");
    assert!(err.to_string().contains("script_logs"), "{err}");
}

#[tokio::test]
async fn fake_scripted_failures_exec_and_logs() {
    let fake = FakeRuntime::new();
    fake.add_image("pause", "sha256:p");
    fake.ensure_network(&network_spec()).await.expect("net");
    fake.fail_next("create_sandbox", "no space left on device");
    let err = fake
        .create_sandbox(&sandbox_spec("berth-pods"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Scripted { message, .. } if message == "no space left on device")
    );
    let sandbox = fake
        .create_sandbox(&sandbox_spec("berth-pods"))
        .await
        .expect("second try succeeds");

    fake.script_exec(
        &["cat", "/tmp/ready"],
        ExecOutput {
            exit_code: 1,
            stdout: b"no".to_vec(),
            stderr: b"missing".to_vec(),
        },
    );
    let out = fake
        .exec_output(
            &sandbox.0,
            &["cat".to_owned(), "/tmp/ready".to_owned()],
            Duration::from_secs(1),
        )
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 1);
    assert_eq!(out.stdout, b"no");
    assert_eq!(out.stderr, b"missing");

    let mut session = fake
        .exec(
            &sandbox.0,
            &ExecSpec {
                cmd: vec!["cat".to_owned(), "/tmp/ready".to_owned()],
                stdin: true,
                tty: false,
            },
        )
        .await
        .expect("exec session");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"input").await.expect("write");
    let chunks: Vec<_> = session.output.collect().await;
    assert_eq!(chunks.len(), 2);
    assert_eq!(session.exit_code.await.expect("code"), 1);

    let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let lines: Vec<LogChunk> = (0..5)
        .map(|i| LogChunk {
            stream: StreamKind::Stdout,
            data: Bytes::from(format!("line {i}\n")),
            timestamp: Some(t0 + jiff::SignedDuration::from_secs(i)),
        })
        .collect();
    fake.script_logs(&sandbox.0, lines);
    let got: Vec<LogChunk> = fake
        .logs(
            &sandbox.0,
            &LogOptions {
                tail: Some(2),
                ..LogOptions::default()
            },
        )
        .await
        .expect("logs")
        .map(|c| c.expect("chunk"))
        .collect()
        .await;
    assert_eq!(got.len(), 2);
    assert_eq!(&got[0].data[..], b"line 3\n");
    assert_eq!(got[0].timestamp, None);
}
