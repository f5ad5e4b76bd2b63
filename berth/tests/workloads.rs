//! End to end: the StatefulSet, DaemonSet, Job and CronJob controllers inside `berth server`,
//! with the scheduler and the server's own node agent on the real dockerd, driven by kubectl.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{TestServer, busybox_image, eventually, require};
use serde_json::{Value, json};

fn docker_ready() -> bool {
    require("docker", &["info"]) && require("kubectl", &["version", "--client"])
}

/// A server with its agent, once its node is Ready.
fn cluster() -> TestServer {
    let s = TestServer::start_with_agent(&[]);
    let node = s.node.clone().unwrap();
    eventually(Duration::from_secs(60), || {
        let v = json_of(&s, &["get", "node", &node])?;
        ready_condition(&v).then_some(())
    })
    .unwrap_or_else(|| panic!("node {node} did not become Ready"));
    s
}

fn json_of(s: &TestServer, args: &[&str]) -> Option<Value> {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    let out = s.kubectl(&a);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn ready_condition(v: &Value) -> bool {
    v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn apply(s: &TestServer, manifest: &Value) {
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &manifest.to_string());
}

fn pods(s: &TestServer, selector: &str) -> Vec<Value> {
    json_of(s, &["get", "pods", "-l", selector])
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

fn time_of(v: &Value) -> jiff::Timestamp {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

fn ready_since(pod: &Value) -> Option<jiff::Timestamp> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .map(|c| time_of(&c["lastTransitionTime"]))
}

#[test]
fn a_statefulset_starts_its_pods_in_order_with_stable_names_and_storage() {
    if !docker_ready() {
        return;
    }
    let image = busybox_image();
    let s = cluster();
    let watch = PodWatch::start(&s, "app=web");
    apply(
        &s,
        &json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{
                            "name": "app", "image": image,
                            "command": ["sh", "-c", "sleep 3600"],
                            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                        }]
                    }
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Mi"}}}
                }]
            }
        }),
    );
    // Every change of the pods, in order, from a watch started before the set exists.
    let all_ready = eventually(Duration::from_secs(120), || {
        let ps = pods(&s, "app=web");
        (ps.len() == 3 && ps.iter().all(|p| ready_since(p).is_some())).then_some(ps)
    })
    .unwrap_or_else(|| panic!("web-0..2 not Ready: {:#?}", pods(&s, "app=web")));
    let seen = watch.finish();
    // Each pod appeared only after the one before it had been seen Running and Ready.
    for (prev, next) in [("web-0", "web-1"), ("web-1", "web-2")] {
        let created = seen
            .iter()
            .position(|p| p["metadata"]["name"] == next)
            .unwrap_or_else(|| panic!("{next} never seen"));
        let ready = seen.iter().position(|p| {
            p["metadata"]["name"] == prev
                && p["status"]["phase"] == "Running"
                && ready_since(p).is_some()
        });
        assert!(
            ready.is_some_and(|r| r < created),
            "{next} appeared (change #{created}) before {prev} was Running and Ready ({ready:?})"
        );
    }
    let by_name = |n: &str| {
        all_ready
            .iter()
            .find(|p| p["metadata"]["name"] == n)
            .unwrap_or_else(|| panic!("no pod {n}"))
            .clone()
    };
    for i in 0..3 {
        let p = by_name(&format!("web-{i}"));
        assert_eq!(p["spec"]["hostname"], format!("web-{i}"));
        assert_eq!(p["spec"]["subdomain"], "web");
        assert_eq!(
            p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            format!("web-{i}")
        );
        assert_eq!(
            p["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            i.to_string()
        );
        assert!(p["metadata"]["labels"]["controller-revision-hash"].is_string());
        let host = s.kubectl_ok(&["exec", &format!("web-{i}"), "--", "hostname"]);
        assert_eq!(host.trim(), format!("web-{i}"));
        s.kubectl_ok(&["get", "pvc", &format!("data-web-{i}")]);
    }
    let set = json_of(&s, &["get", "statefulset", "web"]).unwrap();
    let st = &set["status"];
    assert_eq!(st["readyReplicas"], 3, "{st:#}");
    assert_eq!(st["currentRevision"], st["updateRevision"], "{st:#}");
    s.kubectl_ok(&[
        "get",
        "controllerrevision",
        st["updateRevision"].as_str().unwrap(),
    ]);

    // The claim's data outlives the pod: web-0 comes back with the same name and data.
    s.kubectl_ok(&["exec", "web-0", "--", "sh", "-c", "echo kept > /data/f"]);
    let uid = by_name("web-0")["metadata"]["uid"].clone();
    s.kubectl_ok(&["delete", "pod", "web-0", "--wait=false"]);
    eventually(Duration::from_secs(60), || {
        let p = json_of(&s, &["get", "pod", "web-0"])?;
        (p["metadata"]["uid"] != uid && ready_since(&p).is_some()).then_some(())
    })
    .expect("web-0 replaced");
    let data = s.kubectl_ok(&["exec", "web-0", "--", "cat", "/data/f"]);
    assert_eq!(data.trim(), "kept");
}

/// `kubectl get pods --watch -o json`: every version of the selected pods, in order.
struct PodWatch {
    child: std::process::Child,
    reader: std::thread::JoinHandle<Vec<Value>>,
}

impl PodWatch {
    fn start(s: &TestServer, selector: &str) -> Self {
        let mut child = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .arg("--cache-dir")
            .arg(&s.cache_dir)
            .args(["get", "pods", "-l", selector, "--watch", "-o", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kubectl runs");
        let out = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            serde_json::Deserializer::from_reader(std::io::BufReader::new(out))
                .into_iter::<Value>()
                .map_while(Result::ok)
                .collect()
        });
        // Let the watch begin before anything is created.
        std::thread::sleep(Duration::from_secs(1));
        Self { child, reader }
    }

    fn finish(mut self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reader.join().unwrap_or_default()
    }
}

/// Keeps a Node object without an agent Ready: renews its Lease and heartbeat every second
/// until dropped.
struct FakeNode {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeNode {
    fn start(s: &TestServer, name: &str) -> Self {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [{
                    "type": "Ready", "status": "True", "reason": "KubeletReady",
                    "lastHeartbeatTime": jiff::Timestamp::now().to_string(),
                    "lastTransitionTime": jiff::Timestamp::now().to_string()
                }]
            }
        });
        s.kubectl_ok_stdin(&["create", "-f", "-"], &node.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let kubeconfig = s.kubeconfig.clone();
        let cache = s.cache_dir.clone();
        let name = name.to_owned();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let now = jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
                    .to_string();
                let lease = json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}
                });
                let mut child = std::process::Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg("--cache-dir")
                    .arg(&cache)
                    .args(["apply", "-f", "-"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("kubectl runs");
                {
                    use std::io::Write;
                    let mut stdin = child.stdin.take().expect("stdin");
                    let _ = stdin.write_all(lease.to_string().as_bytes());
                }
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(800));
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_daemonset_lands_on_every_node_including_one_that_joins_later() {
    if !docker_ready() {
        return;
    }
    let image = busybox_image();
    let s = cluster();
    let node = s.node.clone().unwrap();
    apply(
        &s,
        &json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "app", "image": image,
                                        "command": ["sh", "-c", "sleep 3600"]}]
                    }
                }
            }
        }),
    );
    let on_node = eventually(Duration::from_secs(90), || {
        let ps = pods(&s, "app=agent");
        ps.into_iter()
            .find(|p| p["spec"]["nodeName"] == node.as_str() && ready_since(p).is_some())
    })
    .unwrap_or_else(|| {
        panic!(
            "no Ready daemon pod on {node}: {:#?}",
            pods(&s, "app=agent")
        )
    });
    let terms = &on_node["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    assert_eq!(
        terms[0]["matchFields"][0],
        json!({"key": "metadata.name", "operator": "In", "values": [node]})
    );
    let tolerations = on_node["spec"]["tolerations"].to_string();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    ] {
        assert!(tolerations.contains(key), "{key} in {tolerations}");
    }

    // A second node joins: it gets a pod too, bound by the scheduler.
    let extra = format!("{node}-extra");
    let _fake = FakeNode::start(&s, &extra);
    eventually(Duration::from_secs(60), || {
        pods(&s, "app=agent")
            .into_iter()
            .find(|p| p["spec"]["nodeName"] == extra.as_str())
    })
    .unwrap_or_else(|| {
        panic!(
            "no daemon pod bound to {extra}: {:#?}",
            pods(&s, "app=agent")
        )
    });
    let ds = eventually(Duration::from_secs(30), || {
        let ds = json_of(&s, &["get", "daemonset", "agent"])?;
        (ds["status"]["desiredNumberScheduled"] == 2 && ds["status"]["currentNumberScheduled"] == 2)
            .then_some(ds)
    })
    .unwrap_or_else(|| panic!("status: {:#?}", json_of(&s, &["get", "daemonset", "agent"])));
    assert_eq!(ds["status"]["numberMisscheduled"], 0);
    assert!(ds["status"]["numberReady"].as_i64().unwrap() >= 1);
    assert_eq!(
        ds["status"]["observedGeneration"],
        ds["metadata"]["generation"]
    );
}

#[test]
fn a_job_completes_five_times_never_more_than_two_at_once() {
    if !docker_ready() {
        return;
    }
    let image = busybox_image();
    let s = cluster();
    apply(
        &s,
        &json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "five"},
            "spec": {
                "completions": 5, "parallelism": 2,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": image,
                                    "command": ["sh", "-c", "sleep 1"]}]
                }}
            }
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut most = 0;
    let job = loop {
        let ps = pods(&s, "job-name=five");
        let active = ps
            .iter()
            .filter(|p| {
                !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                    && p["metadata"]["deletionTimestamp"].is_null()
            })
            .count();
        most = most.max(active);
        assert!(active <= 2, "{active} active pods: {ps:#?}");
        let job = json_of(&s, &["get", "job", "five"]).unwrap();
        let complete = job["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
        });
        if complete {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "job not complete: {:#}\npods: {ps:#?}",
            job["status"]
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(most, 2, "two ran side by side");
    let st = &job["status"];
    assert_eq!(st["succeeded"], 5, "{st:#}");
    assert!(st["startTime"].is_string() && st["completionTime"].is_string());
    let conditions = st["conditions"].to_string();
    assert!(conditions.contains("SuccessCriteriaMet"), "{conditions}");
    // Every pod's outcome was counted and its finalizer removed.
    eventually(Duration::from_secs(20), || {
        let ps = pods(&s, "job-name=five");
        ps.iter()
            .all(|p| {
                !p["metadata"]["finalizers"]
                    .to_string()
                    .contains("batch.kubernetes.io/job-tracking")
            })
            .then_some(())
    })
    .expect("tracking finalizers removed");
    let labels = &pods(&s, "job-name=five")[0]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/job-name"], "five");
    assert_eq!(
        labels["batch.kubernetes.io/controller-uid"],
        job["metadata"]["uid"]
    );
}

#[test]
fn a_failing_job_stops_at_its_backoff_limit() {
    if !docker_ready() {
        return;
    }
    let image = busybox_image();
    let s = cluster();
    apply(
        &s,
        &json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "flaky"},
            "spec": {
                "backoffLimit": 1,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": image,
                                    "command": ["sh", "-c", "exit 3"]}]
                }}
            }
        }),
    );
    let started = Instant::now();
    let job = eventually(Duration::from_secs(90), || {
        let j = json_of(&s, &["get", "job", "flaky"])?;
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Failed" && c["status"] == "True")
            .then_some(j)
    })
    .unwrap_or_else(|| {
        panic!(
            "job not Failed: {:#?}",
            json_of(&s, &["get", "job", "flaky"])
        )
    });
    let st = &job["status"];
    assert_eq!(st["failed"], 2, "{st:#}");
    assert_eq!(st["succeeded"], 0, "{st:#}");
    let conditions = st["conditions"].as_array().unwrap();
    for ty in ["FailureTarget", "Failed"] {
        let c = conditions
            .iter()
            .find(|c| c["type"] == ty)
            .unwrap_or_else(|| panic!("no {ty} in {conditions:#?}"));
        assert_eq!(c["reason"], "BackoffLimitExceeded");
    }
    // The second pod waited out the back-off after the first failure (10 s).
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "failed after {:?}",
        started.elapsed()
    );
    let ps = pods(&s, "job-name=flaky");
    assert_eq!(ps.len(), 2, "no pod after the limit: {ps:#?}");
}

fn cronjob(name: &str, image: &str, successful_limit: i32) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "*/1 * * * *",
            "timeZone": "Etc/UTC",
            "successfulJobsHistoryLimit": successful_limit,
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "app", "image": image, "command": ["true"]}]
            }}}}
        }
    })
}

#[test]
fn a_cronjob_every_minute_creates_jobs_and_prunes_its_history() {
    if !docker_ready() {
        return;
    }
    let image = busybox_image();
    let s = cluster();
    apply(&s, &cronjob("tick", image, 3));
    apply(&s, &cronjob("pruned", image, 0));
    let jobs_of = |cj: &str| -> Vec<Value> {
        json_of(&s, &["get", "jobs"])
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|j| j["metadata"]["ownerReferences"][0]["name"] == cj)
            .collect()
    };
    // A Job within the minute (plus a margin), and it completes.
    let job = eventually(Duration::from_secs(75), || {
        jobs_of("tick").into_iter().next()
    })
    .expect("a Job within ~70 s");
    let name = job["metadata"]["name"].as_str().unwrap().to_owned();
    let scheduled =
        time_of(&job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]);
    assert_eq!(name, format!("tick-{}", scheduled.as_second() / 60));
    assert_eq!(scheduled.as_second() % 60, 0);
    eventually(Duration::from_secs(60), || {
        let j = json_of(&s, &["get", "job", &name])?;
        j["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
            .then_some(())
    })
    .expect("the Job completes");
    let cj = eventually(Duration::from_secs(30), || {
        let cj = json_of(&s, &["get", "cronjob", "tick"])?;
        (cj["status"]["lastSuccessfulTime"].is_string() && cj["status"]["active"].is_null())
            .then_some(cj)
    })
    .unwrap_or_else(|| panic!("status: {:#?}", json_of(&s, &["get", "cronjob", "tick"])));
    assert_eq!(time_of(&cj["status"]["lastScheduleTime"]), scheduled);

    // With a history of 0, the finished Job of the other CronJob goes away.
    let pruned = eventually(Duration::from_secs(60), || {
        let cj = json_of(&s, &["get", "cronjob", "pruned"])?;
        (cj["status"]["lastSuccessfulTime"].is_string() && jobs_of("pruned").is_empty())
            .then_some(())
    });
    assert!(pruned.is_some(), "jobs of pruned: {:#?}", jobs_of("pruned"));
}
