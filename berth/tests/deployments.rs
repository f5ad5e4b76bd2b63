//! Deployments and ReplicaSets end to end, on a server whose own agent runs the pods on
//! dockerd: a Deployment becomes available, scales, rolls out a new image within its
//! maxUnavailable and maxSurge at every observation, and `kubectl rollout
//! status|history|undo|pause|resume|restart` work; Recreate never runs old and new pods
//! together; deleting a Deployment removes its ReplicaSets and pods; a ReplicaSet replaces a
//! deleted pod and adopts a matching orphan.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestServer, busybox_image, eventually, require};
use serde_json::{Value, json};

const REVISION: &str = "deployment.kubernetes.io/revision";

fn tools() -> bool {
    require("docker", &["info"]) && require("kubectl", &["version", "--client"])
}

/// A Deployment of `replicas` serving HTTP on 8080 (ready once the port answers), with the
/// environment value `VERSION` and the given strategy.
fn deployment(name: &str, replicas: u32, image: &str, version: &str, strategy: Value) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "app",
                        "image": image,
                        "command": ["httpd", "-f", "-p", "8080"],
                        "env": [{"name": "VERSION", "value": version}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                    }],
                },
            },
        },
    })
    .to_string()
}

fn rolling(max_surge: i32, max_unavailable: i32) -> Value {
    json!({"type": "RollingUpdate",
           "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}})
}

/// A pod as the tests see it.
#[derive(Debug, Clone)]
struct PodView {
    name: String,
    ready: bool,
    deleting: bool,
    owner: String,
    image: String,
}

fn pods(s: &TestServer, selector: &str) -> Vec<PodView> {
    let list = s.get_json(&["get", "pods", "-l", selector]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| PodView {
            name: p["metadata"]["name"].as_str().unwrap_or_default().into(),
            ready: p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            }),
            deleting: !p["metadata"]["deletionTimestamp"].is_null(),
            owner: p["metadata"]["ownerReferences"][0]["name"]
                .as_str()
                .unwrap_or_default()
                .into(),
            image: p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .into(),
        })
        .collect()
}

/// The Deployment's ReplicaSets: (name, spec.replicas, revision).
fn replicasets(s: &TestServer, app: &str) -> Vec<(String, i64, String)> {
    let list = s.get_json(&["get", "replicasets", "-l", &format!("app={app}")]);
    let mut out: Vec<_> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|rs| {
            (
                rs["metadata"]["name"].as_str().unwrap_or_default().into(),
                rs["spec"]["replicas"].as_i64().unwrap_or(0),
                rs["metadata"]["annotations"][REVISION]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
            )
        })
        .collect();
    out.sort_by(|a: &(String, i64, String), b| a.2.cmp(&b.2));
    out
}

fn rollout_status(s: &TestServer, name: &str) -> String {
    let out = s.kubectl(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=120s",
    ]);
    if !out.status.success() {
        let state = s.kubectl(&["get", "deployments,replicasets,pods", "-o", "yaml"]);
        panic!(
            "kubectl rollout status deployment/{name} failed: {}{}\nthe objects:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&state.stdout)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Revisions listed by `kubectl rollout history`.
fn history(s: &TestServer, name: &str) -> Vec<String> {
    s.kubectl_ok(&["rollout", "history", &format!("deployment/{name}")])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

fn status(s: &TestServer, name: &str) -> Value {
    s.get_json(&["get", "deployment", name])["status"].clone()
}

/// Watches the pods of `selector` from another thread until stopped, recording the fewest
/// Ready (and not deleted) pods and the most pods (not deleted) seen at once.
struct Watch {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(usize, usize, usize)>,
}

impl Watch {
    fn start(s: &TestServer, selector: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let kubeconfig = s.kubeconfig.clone();
        let cache = s.cache_dir.clone();
        let selector = selector.to_owned();
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let (mut min_ready, mut max_pods, mut looks) = (usize::MAX, 0, 0);
            while !flag.load(Ordering::Relaxed) {
                let out = Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg("--cache-dir")
                    .arg(&cache)
                    .args(["get", "pods", "-l", &selector, "-o", "json"])
                    .output()
                    .expect("kubectl runs");
                if let Ok(list) = serde_json::from_slice::<Value>(&out.stdout) {
                    let items = list["items"].as_array().cloned().unwrap_or_default();
                    let live: Vec<&Value> = items
                        .iter()
                        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                        .collect();
                    let ready = live
                        .iter()
                        .filter(|p| {
                            p["status"]["conditions"].as_array().is_some_and(|c| {
                                c.iter()
                                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
                            })
                        })
                        .count();
                    min_ready = min_ready.min(ready);
                    max_pods = max_pods.max(live.len());
                    looks += 1;
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            (min_ready, max_pods, looks)
        });
        Self { stop, handle }
    }

    /// (fewest ready, most pods, observations).
    fn finish(self) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the watch thread")
    }
}

/// A second tag of the test image: a "new image" for a rollout.
fn second_image() -> &'static str {
    const TAG: &str = "berth-test/busybox:2";
    let first = busybox_image();
    let ok = Command::new("docker")
        .args(["tag", first, TAG])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "docker tag {first} {TAG}");
    TAG
}

#[test]
fn a_rolling_update_keeps_availability_and_rolls_back() {
    if !tools() {
        return;
    }
    let (v1, v2) = (busybox_image(), second_image());
    let s = TestServer::start_with_agent(&[]);
    s.kubectl_ok_stdin(
        &["apply", "-f", "-"],
        &deployment("web", 3, v1, "1", rolling(1, 1)),
    );
    let out = rollout_status(&s, "web");
    assert!(out.contains("successfully rolled out"), "{out}");
    let st = status(&s, "web");
    assert_eq!(st["availableReplicas"], 3, "{st}");
    assert_eq!(st["updatedReplicas"], 3, "{st}");
    let first = replicasets(&s, "web");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].2, "1");
    let template_hash = first[0].0.trim_start_matches("web-").to_owned();
    let p = pods(&s, "app=web");
    assert_eq!(p.len(), 3);
    assert!(p.iter().all(|p| p.owner == first[0].0), "{p:?}");
    let labelled = pods(&s, &format!("pod-template-hash={template_hash}"));
    assert_eq!(labelled.len(), 3, "the pods carry the hash label");

    // A new image: at every observation at least 3 - 1 pods are Ready and at most 3 + 1 run.
    let watch = Watch::start(&s, "app=web");
    s.kubectl_ok(&["set", "image", "deployment/web", &format!("app={v2}")]);
    let out = rollout_status(&s, "web");
    let (min_ready, max_pods, looks) = watch.finish();
    assert!(out.contains("successfully rolled out"), "{out}");
    assert!(looks > 3, "watched the rollout ({looks} looks)");
    assert!(min_ready >= 2, "only {min_ready} ready pods at one point");
    assert!(max_pods <= 4, "{max_pods} pods at one point");
    let rss = replicasets(&s, "web");
    assert_eq!(rss.len(), 2, "{rss:?}");
    assert_eq!((rss[0].1, rss[0].2.as_str()), (0, "1"), "{rss:?}");
    assert_eq!((rss[1].1, rss[1].2.as_str()), (3, "2"), "{rss:?}");
    let p = eventually(Duration::from_secs(30), || {
        let p = pods(&s, "app=web");
        (p.len() == 3 && p.iter().all(|p| p.image == v2 && p.ready)).then_some(p)
    });
    assert!(p.is_some(), "three ready pods of the new image");
    assert_eq!(history(&s, "web"), ["1", "2"]);
    let d = s.get_json(&["get", "deployment", "web"]);
    assert_eq!(d["metadata"]["annotations"][REVISION], "2");
    let progressing = d["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Progressing").cloned())
        .expect("Progressing");
    assert_eq!(
        progressing["reason"], "NewReplicaSetAvailable",
        "{progressing}"
    );

    // Undo: the first ReplicaSet comes back as revision 3, with the first image.
    let watch = Watch::start(&s, "app=web");
    s.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    rollout_status(&s, "web");
    let (min_ready, max_pods, _) = watch.finish();
    assert!(
        min_ready >= 2 && max_pods <= 4,
        "{min_ready} ready, {max_pods} pods"
    );
    let rss = replicasets(&s, "web");
    assert_eq!(rss.len(), 2, "the old ReplicaSet is reused: {rss:?}");
    let back = rss.iter().find(|r| r.0 == first[0].0).expect("the first");
    assert_eq!((back.1, back.2.as_str()), (3, "3"), "{rss:?}");
    assert_eq!(history(&s, "web"), ["2", "3"]);
    let image = s.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, v1);
    let p = eventually(Duration::from_secs(30), || {
        let p = pods(&s, "app=web");
        (p.len() == 3 && p.iter().all(|p| p.image == v1 && p.ready)).then_some(p)
    });
    assert!(p.is_some(), "three ready pods of the first image again");
}

#[test]
fn scale_pause_resume_and_restart() {
    if !tools() {
        return;
    }
    let image = busybox_image();
    let s = TestServer::start_with_agent(&[]);
    s.kubectl_ok_stdin(
        &["apply", "-f", "-"],
        &deployment("api", 2, image, "1", rolling(1, 0)),
    );
    rollout_status(&s, "api");

    // kubectl scale goes through the scale subresource.
    s.kubectl_ok(&["scale", "deployment/api", "--replicas=3"]);
    eventually(Duration::from_secs(60), || {
        (status(&s, "api")["availableReplicas"] == 3).then_some(())
    })
    .expect("3 available after scaling up");
    let rs = replicasets(&s, "api")[0].0.clone();
    let scaled = format!("Scaled up replica set {rs} from 2 to 3");
    eventually(Duration::from_secs(20), || {
        let events = s.get_json(&["get", "events"]).to_string();
        (events.contains("ScalingReplicaSet") && events.contains(&scaled)).then_some(())
    })
    .expect("a ScalingReplicaSet event");
    s.kubectl_ok(&["scale", "deployment/api", "--replicas=1"]);
    eventually(Duration::from_secs(60), || {
        let p = pods(&s, "app=api");
        (p.iter().filter(|p| !p.deleting).count() == 1 && status(&s, "api")["replicas"] == 1)
            .then_some(())
    })
    .expect("1 pod after scaling down");
    assert_eq!(
        replicasets(&s, "api").len(),
        1,
        "scaling makes no ReplicaSet"
    );

    // Paused: a template change rolls nothing out, scaling still works.
    s.kubectl_ok(&["rollout", "pause", "deployment/api"]);
    s.kubectl_ok(&["set", "env", "deployment/api", "VERSION=2"]);
    let paused = eventually(Duration::from_secs(20), || {
        let st = status(&s, "api");
        let reason = st["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Progressing"))
            .map(|c| c["reason"].clone());
        (reason == Some(json!("DeploymentPaused"))).then_some(st)
    });
    assert!(paused.is_some(), "Progressing: DeploymentPaused");
    s.kubectl_ok(&["scale", "deployment/api", "--replicas=2"]);
    eventually(Duration::from_secs(60), || {
        (status(&s, "api")["availableReplicas"] == 2).then_some(())
    })
    .expect("scaled while paused");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(replicasets(&s, "api").len(), 1, "no rollout while paused");

    // Resumed: the paused change rolls out.
    s.kubectl_ok(&["rollout", "resume", "deployment/api"]);
    rollout_status(&s, "api");
    let rss = replicasets(&s, "api");
    assert_eq!(rss.len(), 2, "{rss:?}");
    assert_eq!((rss[1].1, rss[1].2.as_str()), (2, "2"), "{rss:?}");

    // Restart: a new ReplicaSet of the same spec, stamped with restartedAt.
    s.kubectl_ok(&["rollout", "restart", "deployment/api"]);
    rollout_status(&s, "api");
    let rss = replicasets(&s, "api");
    assert_eq!(rss.len(), 3, "{rss:?}");
    assert_eq!((rss[2].1, rss[2].2.as_str()), (2, "3"), "{rss:?}");
    let stamped = s.kubectl_ok(&[
        "get",
        "deployment",
        "api",
        "-o",
        "jsonpath={.spec.template.metadata.annotations}",
    ]);
    assert!(
        stamped.contains("kubectl.kubernetes.io/restartedAt"),
        "{stamped}"
    );
    assert_eq!(history(&s, "api"), ["1", "2", "3"]);
    let p = eventually(Duration::from_secs(30), || {
        let p: Vec<_> = pods(&s, "app=api")
            .into_iter()
            .filter(|p| !p.deleting)
            .collect();
        (p.len() == 2 && p.iter().all(|p| p.owner == rss[2].0 && p.ready)).then_some(p)
    });
    assert!(p.is_some(), "the restarted pods are the only ones left");
}

#[test]
fn recreate_never_runs_old_and_new_pods_together() {
    if !tools() {
        return;
    }
    let image = busybox_image();
    let s = TestServer::start_with_agent(&[]);
    s.kubectl_ok_stdin(
        &["apply", "-f", "-"],
        &deployment("batch", 2, image, "1", json!({"type": "Recreate"})),
    );
    rollout_status(&s, "batch");
    let old = replicasets(&s, "batch")[0].0.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mixed = {
        let kubeconfig = s.kubeconfig.clone();
        let cache = s.cache_dir.clone();
        let old = old.clone();
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut mixed = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let out = Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg("--cache-dir")
                    .arg(&cache)
                    .args(["get", "pods", "-l", "app=batch", "-o", "json"])
                    .output()
                    .expect("kubectl runs");
                if let Ok(list) = serde_json::from_slice::<Value>(&out.stdout) {
                    let owners: Vec<String> = list["items"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|p| {
                            p["metadata"]["ownerReferences"][0]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned()
                        })
                        .collect();
                    if owners.contains(&old) && owners.iter().any(|o| *o != old) {
                        mixed.push(owners);
                    }
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            mixed
        })
    };
    s.kubectl_ok(&["set", "env", "deployment/batch", "VERSION=2"]);
    rollout_status(&s, "batch");
    stop.store(true, Ordering::Relaxed);
    let mixed = mixed.join().expect("the watch thread");
    assert!(mixed.is_empty(), "old and new pods together: {mixed:?}");
    let rss = replicasets(&s, "batch");
    assert_eq!(rss.len(), 2);
    assert_eq!((rss[0].1, rss[1].1), (0, 2), "{rss:?}");
}

#[test]
fn deleting_a_deployment_removes_its_replicasets_and_pods() {
    if !tools() {
        return;
    }
    let image = busybox_image();
    let s = TestServer::start_with_agent(&[]);
    s.kubectl_ok_stdin(
        &["apply", "-f", "-"],
        &deployment("gone", 2, image, "1", rolling(1, 0)),
    );
    rollout_status(&s, "gone");
    s.kubectl_ok(&["set", "env", "deployment/gone", "VERSION=2"]);
    rollout_status(&s, "gone");
    assert_eq!(replicasets(&s, "gone").len(), 2);
    s.kubectl_ok(&["delete", "deployment", "gone"]);
    eventually(Duration::from_secs(60), || {
        (replicasets(&s, "gone").is_empty() && pods(&s, "app=gone").is_empty()).then_some(())
    })
    .expect("the ReplicaSets and pods are gone");
}

#[test]
fn a_replicaset_replaces_deleted_pods_and_adopts_orphans() {
    if !tools() {
        return;
    }
    let image = busybox_image();
    let s = TestServer::start_with_agent(&[]);
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "keep"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "keep"}},
            "template": {
                "metadata": {"labels": {"app": "keep"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": image,
                                    "command": ["sleep", "3600"],
                                    "readinessProbe": {"exec": {"command": ["true"]},
                                                       "periodSeconds": 1}}],
                },
            },
        },
    });
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &rs.to_string());
    let ready = |n: usize| {
        eventually(Duration::from_secs(60), || {
            let p: Vec<_> = pods(&s, "app=keep")
                .into_iter()
                .filter(|p| !p.deleting)
                .collect();
            let st = s.get_json(&["get", "replicaset", "keep"])["status"].clone();
            (p.len() == n && p.iter().all(|p| p.ready) && st["readyReplicas"] == n).then_some(p)
        })
    };
    let before = ready(2).expect("2 ready pods");
    let st = s.get_json(&["get", "replicaset", "keep"])["status"].clone();
    assert_eq!(
        (
            &st["replicas"],
            &st["fullyLabeledReplicas"],
            &st["availableReplicas"]
        ),
        (&json!(2), &json!(2), &json!(2)),
        "{st}"
    );
    assert_eq!(st["observedGeneration"], 1, "{st}");

    // A deleted pod is replaced by a new one.
    s.kubectl_ok(&["delete", "pod", &before[0].name, "--wait=false"]);
    let after = eventually(Duration::from_secs(60), || {
        let p = ready(2)?;
        p.iter().all(|p| p.name != before[0].name).then_some(p)
    })
    .expect("a replacement");
    assert!(after.iter().any(|p| p.name == before[1].name), "{after:?}");

    // A matching orphan is adopted; one pod too many goes.
    s.kubectl_ok(&[
        "run",
        "stray",
        &format!("--image={image}"),
        "--labels=app=keep",
        "--",
        "sleep",
        "3600",
    ]);
    eventually(Duration::from_secs(60), || {
        let p: Vec<_> = pods(&s, "app=keep")
            .into_iter()
            .filter(|p| !p.deleting)
            .collect();
        (p.len() == 2 && p.iter().all(|p| p.owner == "keep")).then_some(())
    })
    .expect("the orphan is adopted and one of three deleted");
    let stray = s.get_json(&["get", "pods", "-l", "app=keep"]);
    let owners: Vec<Value> = stray["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| p["metadata"]["ownerReferences"][0].clone())
        .collect();
    assert!(
        owners.iter().all(|o| o["kind"] == "ReplicaSet"
            && o["controller"] == true
            && o["blockOwnerDeletion"] == true),
        "{owners:?}"
    );
}

#[test]
fn a_rollout_without_progress_exceeds_its_deadline() {
    if !tools() {
        return;
    }
    let s = TestServer::start_with_agent(&[]);
    // An image that cannot be pulled: the pod never becomes ready.
    let mut d: Value = serde_json::from_str(&deployment(
        "stuck",
        1,
        "berth-test/none:1",
        "1",
        rolling(1, 0),
    ))
    .expect("json");
    d["spec"]["progressDeadlineSeconds"] = json!(5);
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &d.to_string());
    let condition = eventually(Duration::from_secs(60), || {
        let st = status(&s, "stuck");
        st["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Progressing"))
            .filter(|c| c["reason"] == "ProgressDeadlineExceeded")
            .cloned()
    })
    .unwrap_or_else(|| {
        let state = s.kubectl(&["get", "deployments,replicasets,pods", "-o", "yaml"]);
        panic!(
            "no ProgressDeadlineExceeded:\n{}",
            String::from_utf8_lossy(&state.stdout)
        )
    });
    assert_eq!(condition["status"], "False", "{condition}");
    let rs = replicasets(&s, "stuck")[0].0.clone();
    assert_eq!(
        condition["message"],
        format!("ReplicaSet \"{rs}\" has timed out progressing."),
    );
    let out = s.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=20s"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deployment \"stuck\" exceeded its progress deadline"),
        "{err}"
    );
    let available = status(&s, "stuck")["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Available").cloned())
        .expect("Available");
    assert_eq!(
        available["reason"], "MinimumReplicasUnavailable",
        "{available}"
    );
}
