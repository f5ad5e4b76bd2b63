//! Integration tests of `DockerRuntime` against the real local dockerd.
//!
//! Skipped (loudly) when `docker info` fails, unless `CI=true`, where that is a failure. Every
//! test uses its own cluster UID, network name and /24 out of 10.244.0.0/16, so the tests run in
//! parallel and next to other users of the same dockerd; a drop guard removes what a test made,
//! also when it fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_agent::runtime::image::{DEFAULT_BUSYBOX_PATH, busybox_image_tar};
use berth_agent::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, DnsConfig, DockerRuntime, ExecSpec, Ipv4Cidr,
    LogChunk, LogOptions, Mount, NetworkSpec, PortMapping, Protocol, PullDecision, RuntimeError,
    SandboxId, SandboxSpec, StreamKind, labels,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

const IMAGE: &str = "berth-test/busybox:1";

/// Removes the test's containers and network when dropped (synchronously, with the CLI, so it
/// works while unwinding from a failed assertion).
struct Cleanup {
    cluster_uid: String,
    network: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label={}={}", labels::CLUSTER, self.cluster_uid),
            ])
            .output();
        if let Ok(out) = ids {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

struct Env {
    rt: DockerRuntime,
    network: String,
    subnet: Ipv4Cidr,
    _cleanup: Cleanup,
}

fn docker_available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`docker info` fails and CI=true: the Docker integration tests must run in CI"
        );
        eprintln!("SKIPPED: `docker info` fails; Docker integration tests did not run");
    }
    ok
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Connects with a fresh cluster UID, builds the busybox image and makes a pod network on a random
/// free /24 of 10.244.0.0/16.
async fn setup(test: &str) -> Option<Env> {
    if !docker_available() {
        return None;
    }
    let cluster_uid = unique("test-cluster");
    let network = unique(&format!("berth-test-{test}"));
    let cleanup = Cleanup {
        cluster_uid: cluster_uid.clone(),
        network: network.clone(),
    };
    let rt = DockerRuntime::connect(cluster_uid, "node-1")
        .await
        .expect("connect to dockerd");
    let tar = busybox_image_tar(Path::new(DEFAULT_BUSYBOX_PATH)).expect("build context");
    let image = rt
        .build_image_from_tar(IMAGE, tar)
        .await
        .expect("build image");
    assert!(image.id.starts_with("sha256:"), "{image:?}");

    let mut last_err = None;
    for _ in 0..20 {
        let third = rand::random::<u8>();
        let subnet = Ipv4Cidr::new(Ipv4Addr::new(10, 244, third, 0), 24).expect("cidr");
        let spec = NetworkSpec {
            name: network.clone(),
            subnet,
            gateway: Ipv4Addr::new(10, 244, third, 1),
            labels: BTreeMap::from([("test".to_owned(), test.to_owned())]),
        };
        match rt.ensure_network(&spec).await {
            Ok(info) => {
                assert_eq!(info.subnet, Some(subnet));
                return Some(Env {
                    rt,
                    network,
                    subnet,
                    _cleanup: cleanup,
                });
            }
            // Another test (or something else) holds this /24: try another.
            Err(e) => last_err = Some(e),
        }
    }
    panic!("no free /24 in 10.244.0.0/16: {last_err:?}");
}

fn ip_in(subnet: Ipv4Cidr, host: u8) -> Ipv4Addr {
    let [a, b, c, _] = subnet.addr.octets();
    Ipv4Addr::new(a, b, c, host)
}

fn sandbox_spec(env: &Env, pod: &str, ip: Option<Ipv4Addr>) -> SandboxSpec {
    SandboxSpec {
        pod_uid: unique("uid"),
        pod_name: pod.to_owned(),
        pod_namespace: "default".to_owned(),
        attempt: 0,
        labels: BTreeMap::from([("app".to_owned(), pod.to_owned())]),
        image: IMAGE.to_owned(),
        network: env.network.clone(),
        ip,
        hostname: pod.to_owned(),
        dns: DnsConfig {
            servers: vec!["10.96.0.10".to_owned()],
            searches: vec!["default.svc.cluster.local".to_owned()],
            options: vec!["ndots:5".to_owned()],
        },
        port_mappings: Vec::new(),
        cgroup_parent: None,
    }
}

fn sh(name: &str, sandbox: &SandboxId, script: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(name, sandbox.clone(), IMAGE);
    spec.command = vec!["/bin/sh".to_owned(), "-c".to_owned()];
    spec.args = vec![script.to_owned()];
    spec
}

async fn wait_exited(rt: &DockerRuntime, id: &str, within: Duration) -> (i64, String) {
    let deadline = Instant::now() + within;
    loop {
        let status = rt.inspect(id).await.expect("inspect");
        if let ContainerState::Exited { code, reason, .. } = status.state {
            return (code, reason);
        }
        assert!(
            Instant::now() < deadline,
            "container {id} did not exit within {within:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn collect_logs(rt: &DockerRuntime, id: &str, options: &LogOptions) -> Vec<LogChunk> {
    rt.logs(id, options)
        .await
        .expect("logs")
        .map(|c| c.expect("log chunk"))
        .collect()
        .await
}

fn text(chunks: &[LogChunk]) -> String {
    chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect()
}

fn http_get(addr: SocketAddr) -> String {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("response");
    response
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_containers_share_localhost_on_a_fixed_ip() {
    let Some(env) = setup("pod").await else {
        return;
    };
    let rt = &env.rt;
    let version = rt.version().await.expect("version");
    assert!(
        version.node_info_string().starts_with("docker://"),
        "{version:?}"
    );
    rt.ping().await.expect("ping");

    let ip = ip_in(env.subnet, 7);
    let mut spec = sandbox_spec(&env, "web", Some(ip));
    // A hostPort: a free port on the node, mapped to the pod's 8080.
    let host_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    spec.port_mappings = vec![PortMapping {
        container_port: 8080,
        host_port,
        protocol: Protocol::Tcp,
        host_ip: Some(Ipv4Addr::LOCALHOST.into()),
    }];
    let sandbox = rt.create_sandbox(&spec).await.expect("sandbox");
    let status = rt.inspect(&sandbox.0).await.expect("inspect sandbox");
    assert_eq!(status.ip, Some(ip));
    assert!(matches!(status.state, ContainerState::Running { .. }));
    assert_eq!(status.labels[labels::KIND], labels::KIND_SANDBOX);

    // Server: httpd on 8080 in the pod, with a 64 MiB memory limit.
    let mut server = sh(
        "server",
        &sandbox,
        "mkdir -p /www && echo hello-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    server.memory_limit_bytes = Some(64 * 1024 * 1024);
    server.env = vec![("GREETING".to_owned(), "hi there".to_owned())];
    server.restart_count = 1;
    let server_id = rt.create_container(&server).await.expect("create server");
    rt.start(&server_id).await.expect("start server");

    // Client: the other container reaches it over localhost.
    let client = sh(
        "client",
        &sandbox,
        "for i in $(seq 1 100); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.05; done; exit 1",
    );
    let client_id = rt.create_container(&client).await.expect("create client");
    rt.start(&client_id).await.expect("start client");
    let (code, reason) = wait_exited(rt, &client_id, Duration::from_secs(20)).await;
    let client_logs = collect_logs(rt, &client_id, &LogOptions::default()).await;
    assert_eq!((code, reason.as_str()), (0, "Completed"), "{client_logs:?}");
    assert_eq!(text(&client_logs), "hello-from-server\n");

    // The pod IP is reachable from the node.
    let response = http_get(SocketAddr::from((ip, 8080)));
    assert!(response.contains("hello-from-server"), "{response}");

    // The memory limit is in the container's cgroup (v1 here; v2 elsewhere).
    let out = rt
        .exec_output(
            &server_id,
            &strings(&[
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            ]),
            Duration::from_secs(10),
        )
        .await
        .expect("exec cgroup");
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "67108864");

    // Env, DNS config and exit codes through exec.
    let out = rt
        .exec_output(
            &server_id,
            &strings(&[
                "sh",
                "-c",
                "echo \"$GREETING\"; hostname; cat /etc/resolv.conf; echo oops >&2; exit 7",
            ]),
            Duration::from_secs(10),
        )
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 7);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Containers share the sandbox's hostname.
    assert!(stdout.starts_with("hi there\nweb\n"), "{stdout}");
    // On user-defined networks Docker writes its embedded DNS server (127.0.0.11), which
    // forwards to the configured servers; search and options are kept.
    assert!(
        stdout.contains("nameserver 10.96.0.10") || stdout.contains("nameserver 127.0.0.11"),
        "{stdout}"
    );
    assert!(
        stdout.contains("search default.svc.cluster.local"),
        "{stdout}"
    );
    assert!(stdout.contains("ndots:5"), "{stdout}");
    assert_eq!(out.stderr, b"oops\n");

    // Interactive exec with stdin.
    let mut session = rt
        .exec(
            &server_id,
            &ExecSpec {
                cmd: strings(&["sh", "-c", "read line; echo got:$line; exit 3"]),
                stdin: true,
                tty: false,
            },
        )
        .await
        .expect("exec session");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"ping\n").await.expect("write");
    stdin.flush().await.expect("flush");
    let mut output = Vec::new();
    while let Some(chunk) = session.output.next().await {
        let chunk = chunk.expect("chunk");
        assert_eq!(chunk.stream, StreamKind::Stdout);
        output.extend_from_slice(&chunk.data);
    }
    assert_eq!(output, b"got:ping\n");
    assert_eq!(session.exit_code.await.expect("exit code"), 3);

    // Closing stdin sends EOF (what `kubectl exec -i` relies on).
    let mut session = rt
        .exec(
            &server_id,
            &ExecSpec {
                cmd: strings(&["cat"]),
                stdin: true,
                tty: false,
            },
        )
        .await
        .expect("exec cat");
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"abc\ndef").await.expect("write");
    stdin.shutdown().await.expect("close stdin");
    let output = tokio::time::timeout(Duration::from_secs(10), async {
        let mut output = Vec::new();
        while let Some(chunk) = session.output.next().await {
            output.extend_from_slice(&chunk.expect("chunk").data);
        }
        output
    })
    .await
    .expect("cat ends after EOF");
    assert_eq!(output, b"abc\ndef");
    assert_eq!(session.exit_code.await.expect("exit code"), 0);

    // The hostPort reaches the pod too.
    let response = http_get(SocketAddr::from((Ipv4Addr::LOCALHOST, host_port)));
    assert!(response.contains("hello-from-server"), "{response}");

    // A TTY exec writes everything to stdout, with CRLF line ends.
    let mut session = rt
        .exec(
            &server_id,
            &ExecSpec {
                cmd: strings(&[
                    "sh",
                    "-c",
                    "for i in $(seq 1 100); do s=$(stty size 2>/dev/null); [ \"$s\" = \"23 91\" ] && break; sleep 0.05; done; echo $s; echo on-tty; echo err-on-tty >&2",
                ]),
                stdin: false,
                tty: true,
            },
        )
        .await
        .expect("tty exec");
    rt.resize_exec(&session.id, 91, 23).await.expect("resize");
    let mut output = Vec::new();
    while let Some(chunk) = session.output.next().await {
        let chunk = chunk.expect("chunk");
        assert_eq!(chunk.stream, StreamKind::Stdout);
        output.extend_from_slice(&chunk.data);
    }
    assert_eq!(output, b"23 91\r\non-tty\r\nerr-on-tty\r\n");
    assert_eq!(session.exit_code.await.expect("code"), 0);

    // User, read-only root filesystem and a read-only bind mount.
    let host_dir = std::env::temp_dir().join(unique("berth-mount"));
    std::fs::create_dir_all(&host_dir).expect("mkdir");
    std::fs::write(host_dir.join("file"), "from-the-node\n").expect("write");
    let mut checker = sh(
        "checker",
        &sandbox,
        "id -u; id -g; touch /rootfs-file 2>/dev/null || echo rootfs-ro; \
         touch /data/x 2>/dev/null || echo mount-ro; cat /data/file; pwd",
    );
    checker.user = Some("1234:4321".to_owned());
    checker.read_only_rootfs = true;
    checker.working_dir = Some("/data".to_owned());
    checker.mounts = vec![Mount {
        host_path: host_dir.clone(),
        container_path: "/data".to_owned(),
        read_only: true,
    }];
    let checker_id = rt.create_container(&checker).await.expect("create checker");
    rt.start(&checker_id).await.expect("start checker");
    let (code, _) = wait_exited(rt, &checker_id, Duration::from_secs(20)).await;
    let checker_logs = text(&collect_logs(rt, &checker_id, &LogOptions::default()).await);
    let _ = std::fs::remove_dir_all(&host_dir);
    assert_eq!(code, 0, "{checker_logs}");
    assert_eq!(
        checker_logs,
        "1234\n4321\nrootfs-ro\nmount-ro\nfrom-the-node\n/data\n"
    );
    rt.remove(&checker_id).await.expect("remove checker");

    // Status of a running container.
    let status = rt.inspect(&server_id).await.expect("inspect server");
    assert!(matches!(
        status.state,
        ContainerState::Running {
            started_at: Some(_)
        }
    ));
    assert_eq!(status.restart_count, 1);
    assert_eq!(status.labels[labels::POD_UID], spec.pod_uid);
    assert_eq!(status.labels[labels::CONTAINER_NAME], "server");
    assert_eq!(status.image, IMAGE);
    assert!(status.image_id.starts_with("sha256:"));
    assert_eq!(
        status.name,
        format!("k8s_server_web_default_{}_1", spec.pod_uid)
    );

    // Listing by labels sees exactly this test's objects.
    let all = rt.list(&BTreeMap::new()).await.expect("list");
    let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![sandbox.0.as_str(), server_id.as_str(), client_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let containers = rt
        .list(&BTreeMap::from([(
            labels::KIND.to_owned(),
            labels::KIND_CONTAINER.to_owned(),
        )]))
        .await
        .expect("list containers");
    assert_eq!(containers.len(), 2);
    // Another cluster on the same dockerd sees none of them.
    let other = DockerRuntime::connect(unique("other-cluster"), "node-1")
        .await
        .expect("connect");
    assert!(other.list(&BTreeMap::new()).await.expect("list").is_empty());
    // Nor does another node of the same cluster.
    let other_node = DockerRuntime::connect(rt.cluster_uid(), "node-2")
        .await
        .expect("connect");
    assert!(
        other_node
            .list(&BTreeMap::new())
            .await
            .expect("list")
            .is_empty()
    );

    // Teardown through the API.
    rt.stop(&server_id, Duration::from_secs(5))
        .await
        .expect("stop");
    rt.remove(&server_id).await.expect("remove server");
    rt.remove(&client_id).await.expect("remove client");
    rt.remove(&client_id).await.expect("removing twice is fine");
    rt.remove_sandbox(&sandbox, Duration::from_secs(5))
        .await
        .expect("remove sandbox");
    assert!(rt.list(&BTreeMap::new()).await.expect("list").is_empty());
    assert!(matches!(
        rt.inspect(&server_id).await,
        Err(RuntimeError::NotFound { .. })
    ));
    rt.remove_network(&env.network)
        .await
        .expect("remove network");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sends_sigterm_then_sigkill_after_grace() {
    let Some(env) = setup("stop").await else {
        return;
    };
    let rt = &env.rt;
    let sandbox = rt
        .create_sandbox(&sandbox_spec(&env, "stopper", None))
        .await
        .expect("sandbox");
    // Ignores SIGTERM (after logging it): only SIGKILL ends it.
    let stubborn = sh(
        "stubborn",
        &sandbox,
        "trap 'echo got-term' TERM; echo ready; while true; do sleep 0.1; done",
    );
    // Exits on SIGTERM.
    let polite = sh(
        "polite",
        &sandbox,
        "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
    );
    let stubborn_id = rt.create_container(&stubborn).await.expect("create");
    let polite_id = rt.create_container(&polite).await.expect("create");
    rt.start(&stubborn_id).await.expect("start");
    rt.start(&polite_id).await.expect("start");
    for id in [&stubborn_id, &polite_id] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !text(&collect_logs(rt, id, &LogOptions::default()).await).contains("ready") {
            assert!(Instant::now() < deadline, "{id} never got ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let started = Instant::now();
    rt.stop(&polite_id, Duration::from_secs(10))
        .await
        .expect("stop polite");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (code, reason) = wait_exited(rt, &polite_id, Duration::from_secs(1)).await;
    assert_eq!((code, reason.as_str()), (0, "Completed"));
    assert!(text(&collect_logs(rt, &polite_id, &LogOptions::default()).await).contains("bye"));

    let started = Instant::now();
    rt.stop(&stubborn_id, Duration::from_secs(2))
        .await
        .expect("stop stubborn");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "SIGKILL came too early: {took:?}"
    );
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    let (code, reason) = wait_exited(rt, &stubborn_id, Duration::from_secs(1)).await;
    assert_eq!((code, reason.as_str()), (137, "Error"));
    assert!(
        text(&collect_logs(rt, &stubborn_id, &LogOptions::default()).await).contains("got-term"),
        "SIGTERM was not delivered first"
    );
    // A container over its memory limit is OOM-killed, and says so.
    let mut hog = sh(
        "hog",
        &sandbox,
        "x=$(head -c 60000000 /dev/zero | tr '\\0' a); echo ${#x}",
    );
    hog.memory_limit_bytes = Some(16 * 1024 * 1024);
    let hog_id = rt.create_container(&hog).await.expect("create hog");
    rt.start(&hog_id).await.expect("start hog");
    let (code, reason) = wait_exited(rt, &hog_id, Duration::from_secs(20)).await;
    assert_eq!((code, reason.as_str()), (137, "OOMKilled"));

    // Stopping an exited container is fine.
    rt.stop(&stubborn_id, Duration::from_secs(1))
        .await
        .expect("stop again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_follow_and_timestamps() {
    let Some(env) = setup("logs").await else {
        return;
    };
    let rt = &env.rt;
    let sandbox = rt
        .create_sandbox(&sandbox_spec(&env, "logger", None))
        .await
        .expect("sandbox");
    let spec = sh(
        "logger",
        &sandbox,
        "for i in 1 2 3 4 5; do echo line-$i; done; sleep 0.3; echo err-1 >&2; while [ ! -f /go ]; do sleep 0.05; done; echo late; sleep 600",
    );
    let id = rt.create_container(&spec).await.expect("create");
    rt.start(&id).await.expect("start");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = collect_logs(rt, &id, &LogOptions::default()).await;
        if text(&all).contains("err-1") {
            break;
        }
        assert!(Instant::now() < deadline, "no output: {all:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tail = collect_logs(
        rt,
        &id,
        &LogOptions {
            tail: Some(2),
            ..LogOptions::default()
        },
    )
    .await;
    assert_eq!(tail.len(), 2, "{tail:?}");
    assert_eq!(&tail[0].data[..], b"line-5\n");
    assert_eq!(tail[0].stream, StreamKind::Stdout);
    assert_eq!(&tail[1].data[..], b"err-1\n");
    assert_eq!(tail[1].stream, StreamKind::Stderr);
    assert_eq!(tail[0].timestamp, None);

    // Follow from the last line, with timestamps; "late" comes once /go exists.
    let mut follow = rt
        .logs(
            &id,
            &LogOptions {
                follow: true,
                tail: Some(1),
                since: None,
                timestamps: true,
            },
        )
        .await
        .expect("follow");
    let first = follow.next().await.expect("first").expect("chunk");
    assert_eq!(&first.data[..], b"err-1\n");
    let stamp = first.timestamp.expect("timestamp");
    assert!(
        (jiff::Timestamp::now() - stamp).get_seconds().abs() < 120,
        "{stamp}"
    );
    let mut session = rt
        .exec(
            &id,
            &ExecSpec {
                cmd: strings(&["touch", "/go"]),
                stdin: false,
                tty: false,
            },
        )
        .await
        .expect("exec");
    while session.output.next().await.is_some() {}
    assert_eq!(session.exit_code.await.expect("code"), 0);
    let late = tokio::time::timeout(Duration::from_secs(10), follow.next())
        .await
        .expect("followed line in time")
        .expect("stream open")
        .expect("chunk");
    assert_eq!(&late.data[..], b"late\n");
    assert!(late.timestamp.expect("timestamp") >= stamp);

    // since: nothing before a time in the future... and everything since the start.
    let since_start = collect_logs(
        rt,
        &id,
        &LogOptions {
            since: Some(stamp - jiff::SignedDuration::from_secs(60)),
            ..LogOptions::default()
        },
    )
    .await;
    assert_eq!(since_start.len(), 7, "{since_start:?}");
    rt.stop(&id, Duration::from_secs(0)).await.expect("stop");

    // A TTY container's logs are one raw stream: all stdout, CRLF line ends.
    let mut tty = sh("tty", &sandbox, "echo out-1; echo err-1 >&2; echo out-2");
    tty.tty = true;
    let tty_id = rt.create_container(&tty).await.expect("create tty");
    rt.start(&tty_id).await.expect("start tty");
    wait_exited(rt, &tty_id, Duration::from_secs(10)).await;
    let logs = collect_logs(rt, &tty_id, &LogOptions::default()).await;
    assert!(
        logs.iter().all(|c| c.stream == StreamKind::Stdout),
        "{logs:?}"
    );
    assert_eq!(text(&logs), "out-1\r\nerr-1\r\nout-2\r\n");
    let stamped = collect_logs(
        rt,
        &tty_id,
        &LogOptions {
            timestamps: true,
            tail: Some(1),
            ..LogOptions::default()
        },
    )
    .await;
    assert_eq!(text(&stamped), "out-2\r\n", "{stamped:?}");
    assert!(stamped.iter().all(|c| c.timestamp.is_some()), "{stamped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_and_networks() {
    let Some(env) = setup("images").await else {
        return;
    };
    let rt = &env.rt;
    let present = rt
        .image_present(IMAGE)
        .await
        .expect("present")
        .expect("built");
    let ensured = rt
        .ensure_image(IMAGE, PullDecision::NoPull, None)
        .await
        .expect("no pull needed");
    assert_eq!(present.id, ensured.id);
    assert!(present.repo_tags.contains(&IMAGE.to_owned()));
    let missing = format!("berth-test/{}:1", unique("missing"));
    assert_eq!(rt.image_present(&missing).await.expect("lookup"), None);
    assert!(matches!(
        rt.ensure_image(&missing, PullDecision::NoPull, None).await,
        Err(RuntimeError::ImageNotPresent { .. })
    ));
    // No registry is reachable here: a pull fails with the engine's message.
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        rt.ensure_image("registry.invalid/nothing:1", PullDecision::Pull, None),
    )
    .await
    .expect("pull fails in time")
    .unwrap_err();
    assert!(matches!(err, RuntimeError::PullFailed { .. }), "{err}");

    // A broken Dockerfile is a build failure with the builder's message.
    let tar = berth_agent::runtime::image::build_context_tar(&[(
        "Dockerfile",
        b"FROM scratch\nRUN [\"/bin/false\"]\n",
        0o644,
    )])
    .expect("tar");
    let err = rt
        .build_image_from_tar(&format!("berth-test/{}:1", unique("broken")), tar)
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::BuildFailed { .. }), "{err}");

    // ensure_network: idempotent, concurrent callers agree, another subnet conflicts.
    let spec = NetworkSpec {
        name: env.network.clone(),
        subnet: env.subnet,
        gateway: ip_in(env.subnet, 1),
        labels: BTreeMap::new(),
    };
    let first = rt.ensure_network(&spec).await.expect("again");
    let mut other = spec.clone();
    other.subnet = Ipv4Cidr::new(Ipv4Addr::new(10, 243, 0, 0), 24).expect("cidr");
    other.gateway = Ipv4Addr::new(10, 243, 0, 1);
    assert!(matches!(
        rt.ensure_network(&other).await,
        Err(RuntimeError::Conflict { .. })
    ));

    let race_name = unique("berth-test-race");
    let guard = Cleanup {
        cluster_uid: unique("unused"),
        network: race_name.clone(),
    };
    let third = rand::random::<u8>();
    let race = NetworkSpec {
        name: race_name.clone(),
        // 10.245.x: clear of the tests' pod networks.
        subnet: Ipv4Cidr::new(Ipv4Addr::new(10, 245, third, 0), 24).expect("cidr"),
        gateway: Ipv4Addr::new(10, 245, third, 1),
        labels: BTreeMap::new(),
    };
    let results = futures::future::join_all((0..4).map(|_| rt.ensure_network(&race))).await;
    let ids: Vec<String> = results
        .into_iter()
        .map(|r| r.expect("ensure_network").id)
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let listed = Command::new("docker")
        .args([
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{race_name}$"),
        ])
        .output()
        .expect("docker network ls");
    let count = String::from_utf8_lossy(&listed.stdout).lines().count();
    assert_eq!(count, 1, "duplicate networks named {race_name}");
    rt.remove_network(&race_name).await.expect("remove");
    rt.remove_network(&race_name).await.expect("remove twice");
    drop(guard);
    assert_eq!(first.name, env.network);
}

#[tokio::test]
async fn events_report_exits_and_removals_of_this_nodes_containers_only() {
    let Some(env) = setup("events").await else {
        return;
    };
    let rt = &env.rt;
    let mut events = rt
        .events()
        .await
        .expect("follow events")
        .expect("docker reports events");
    let spec = sandbox_spec(&env, "evented", None);
    let uid = spec.pod_uid.clone();
    let sandbox = rt.create_sandbox(&spec).await.expect("sandbox");
    let id = rt
        .create_container(&sh("quick", &sandbox, "exit 3"))
        .await
        .expect("create");
    rt.start(&id).await.expect("start");
    wait_exited(rt, &id, Duration::from_secs(20)).await;
    // Another node's container on the same engine, gone before ours: not reported here.
    let other = DockerRuntime::connect(rt.cluster_uid(), "node-2")
        .await
        .expect("connect");
    let theirs = other
        .create_sandbox(&sandbox_spec(&env, "theirs", None))
        .await
        .expect("their sandbox");
    other
        .remove_sandbox(&theirs, Duration::ZERO)
        .await
        .expect("remove theirs");
    rt.remove(&id).await.expect("remove");

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(&(id.clone(), "destroy".to_owned())) {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("no destroy event for {id}; saw {seen:?}"))
            .expect("the stream goes on")
            .expect("an event");
        assert_ne!(
            ev.container_id, theirs.0,
            "another node's container: {ev:?}"
        );
        if ev.container_id == id {
            assert_eq!(ev.pod_uid.as_deref(), Some(uid.as_str()), "{ev:?}");
        }
        seen.push((ev.container_id, ev.action));
    }
    assert!(
        seen.contains(&(id.clone(), "die".to_owned())),
        "the exit came first: {seen:?}"
    );
    rt.remove_sandbox(&sandbox, Duration::ZERO)
        .await
        .expect("remove sandbox");
}
