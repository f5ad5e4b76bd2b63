//! Pod worker behaviour against the fake engine and the fake API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::*;
use crate::pod::testing::{Setup, setup};

/// What the manager's relist does after the engine changed: records what it found; returns
/// the pods whose workers it is to wake.
async fn relist(s: &Setup) -> HashSet<String> {
    s.shared
        .engine
        .record_relist(Instant::now(), &s.rt.list(&BTreeMap::new()).await.unwrap())
}

fn pod(spec: Value) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "uid-1"},
            "spec": spec,
        }))
        .unwrap(),
    )
}

fn worker(s: &Setup) -> PodWorker {
    PodWorker::new(
        Arc::clone(&s.shared),
        "uid-1".into(),
        Arc::new(Notify::new()),
    )
}

fn last_status(s: &Setup) -> Value {
    s.api
        .pod_status_patches("default", "p")
        .last()
        .cloned()
        .unwrap()["status"]
        .clone()
}

fn app_containers(s: &Setup) -> Vec<runtime::ContainerStatus> {
    s.rt.containers()
        .into_iter()
        .filter(|c| c.labels.get(labels::KIND).map(String::as_str) == Some(labels::KIND_CONTAINER))
        .collect()
}

#[tokio::test]
async fn a_pod_starts_with_a_sandbox_and_reports_running() {
    let s = setup().await;
    let p = pod(
        json!({"containers": [{"name": "a", "image": "app:1", "imagePullPolicy": "IfNotPresent"}]}),
    );
    let mut w = worker(&s);
    w.sync(&p).await.unwrap();
    let status = last_status(&s);
    assert_eq!(status["phase"], "Running");
    assert!(
        status["podIP"].as_str().unwrap().starts_with("10.42.0."),
        "{status}"
    );
    assert_eq!(status["hostIP"], "10.0.0.1");
    assert_eq!(status["containerStatuses"][0]["ready"], true);
    assert_eq!(status["containerStatuses"][0]["restartCount"], 0);
    let sa = s.shared.config.pod_dir("uid-1").join("serviceaccount");
    assert_eq!(
        std::fs::read_to_string(sa.join("namespace")).unwrap(),
        "default"
    );
    assert_eq!(
        std::fs::read_to_string(sa.join("token")).unwrap(),
        "token-for-default-p"
    );
    tokio::task::yield_now().await;
    let reasons: Vec<String> = s.api.events().into_iter().map(|(r, _)| r).collect();
    for r in ["Pulled", "Created", "Started"] {
        assert!(reasons.contains(&r.to_string()), "{reasons:?}");
    }

    // A second sync (or a restarted agent's new worker) adopts what runs: nothing new.
    let calls_before = s.rt.calls().len();
    let mut adopted = worker(&s);
    adopted.sync(&p).await.unwrap();
    let new_calls: Vec<String> = s.rt.calls()[calls_before..].to_vec();
    assert!(
        new_calls
            .iter()
            .all(|c| !c.starts_with("create") && !c.starts_with("start") && !c.starts_with("stop")),
        "{new_calls:?}"
    );
}

#[tokio::test]
async fn a_crashing_container_restarts_with_growing_back_off() {
    let s = setup().await;
    let p = pod(
        json!({"containers": [{"name": "a", "image": "app:1", "imagePullPolicy": "IfNotPresent"}]}),
    );
    let mut w = worker(&s);
    w.sync(&p).await.unwrap();
    let id0 = app_containers(&s)[0].id.clone();
    s.rt.exit_container(&id0, 1, false).unwrap();
    relist(&s).await;
    // First restart is immediate.
    w.sync(&p).await.unwrap();
    let running: Vec<_> = app_containers(&s)
        .into_iter()
        .filter(|c| matches!(c.state, ContainerState::Running { .. }))
        .collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].restart_count, 1);
    s.rt.exit_container(&running[0].id, 1, false).unwrap();
    relist(&s).await;
    // The second waits for the back-off.
    let wait = w.sync(&p).await.unwrap();
    assert!(
        wait <= Duration::from_millis(300) && wait > Duration::ZERO,
        "{wait:?}"
    );
    let status = last_status(&s);
    let cs = &status["containerStatuses"][0];
    assert_eq!(
        cs["state"]["waiting"]["reason"], "CrashLoopBackOff",
        "{status}"
    );
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(cs["restartCount"], 1);
    assert_eq!(
        cs["state"]["waiting"]["message"],
        "back-off 300ms restarting failed container=a pod=p_default(uid-1)"
    );
    tokio::time::sleep(wait).await;
    w.sync(&p).await.unwrap();
    let latest = app_containers(&s)
        .into_iter()
        .max_by_key(|c| c.restart_count)
        .unwrap();
    assert_eq!(latest.restart_count, 2);
    // Only the newest and one previous container are kept.
    assert_eq!(app_containers(&s).len(), 2);
}

#[tokio::test]
async fn init_containers_run_first_and_never_policy_finishes_the_pod() {
    let s = setup().await;
    let p = pod(json!({
        "restartPolicy": "Never",
        "initContainers": [{"name": "setup", "image": "app:1", "imagePullPolicy": "IfNotPresent"}],
        "containers": [{"name": "a", "image": "app:1", "imagePullPolicy": "IfNotPresent"}],
    }));
    let mut w = worker(&s);
    w.sync(&p).await.unwrap();
    let cs = app_containers(&s);
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].labels[labels::CONTAINER_NAME], "setup");
    let status = last_status(&s);
    assert_eq!(status["phase"], "Pending");
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    s.rt.exit_container(&cs[0].id, 0, false).unwrap();
    relist(&s).await;
    w.sync(&p).await.unwrap();
    let app = app_containers(&s)
        .into_iter()
        .find(|c| c.labels[labels::CONTAINER_NAME] == "a")
        .expect("the app container starts after init");
    s.rt.exit_container(&app.id, 0, false).unwrap();
    relist(&s).await;
    w.sync(&p).await.unwrap();
    assert_eq!(last_status(&s)["phase"], "Succeeded");
    let count = app_containers(&s).len();
    w.sync(&p).await.unwrap();
    assert_eq!(app_containers(&s).len(), count, "no restart under Never");
}

#[tokio::test]
async fn a_missing_image_backs_off_pulling() {
    let s = setup().await;
    let p = pod(json!({"containers": [{"name": "a", "image": "registry.example:5000/nope:1"}]}));
    let mut w = worker(&s);
    w.sync(&p).await.unwrap();
    let status = last_status(&s);
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["reason"], "ErrImagePull",
        "{status}"
    );
    w.sync(&p).await.unwrap();
    let status = last_status(&s);
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["reason"], "ImagePullBackOff",
        "{status}"
    );
    assert_eq!(status["phase"], "Pending");
}

#[tokio::test]
async fn a_missing_config_map_is_a_config_error_until_it_exists() {
    let s = setup().await;
    let p = pod(
        json!({"containers": [{"name": "a", "image": "app:1", "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x"}}}]}]}),
    );
    let wake = Arc::new(Notify::new());
    let mut w = PodWorker::new(Arc::clone(&s.shared), "uid-1".into(), Arc::clone(&wake));
    w.sync(&p).await.unwrap();
    let status = last_status(&s);
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CreateContainerConfigError"
    );
    assert_eq!(
        status["containerStatuses"][0]["state"]["waiting"]["message"],
        "configmaps \"cfg\" not found"
    );
    s.api.put_config_map(
        serde_json::from_value(
            json!({"metadata": {"name": "cfg", "namespace": "default"}, "data": {"x": "1"}}),
        )
        .unwrap(),
    );
    // The ConfigMap's watch wakes the pod's worker.
    tokio::time::timeout(std::time::Duration::from_secs(5), wake.notified())
        .await
        .expect("the worker is woken when its ConfigMap appears");
    w.sync(&p).await.unwrap();
    assert_eq!(last_status(&s)["phase"], "Running");
}

#[tokio::test]
async fn a_deleted_pod_is_stopped_removed_and_its_object_deleted() {
    let s = setup().await;
    let p = pod(
        json!({"containers": [{"name": "a", "image": "app:1", "imagePullPolicy": "IfNotPresent"}]}),
    );
    let (tx, rx) = tokio::sync::watch::channel(Some(Arc::clone(&p)));
    let task = tokio::spawn(worker(&s).run(rx));
    for _ in 0..100 {
        if !app_containers(&s).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut deleting = (*p).clone();
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
    );
    deleting.metadata.deletion_grace_period_seconds = Some(1);
    tx.send_replace(Some(Arc::new(deleting)));
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(s.rt.containers().is_empty(), "{:?}", s.rt.containers());
    assert_eq!(
        s.api.deleted_pods(),
        vec![("default".to_string(), "p".to_string(), "uid-1".to_string())]
    );
    assert!(!s.shared.config.pod_dir("uid-1").exists());
}

#[test]
fn pull_secrets_match_the_image_registry() {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64_json(json!({"auths": {"127.0.0.1:5000": {"username": "u", "password": "p"}}}))},
    }))
    .unwrap();
    let auth = registry_auth("127.0.0.1:5000/app:1", std::slice::from_ref(&secret)).unwrap();
    assert_eq!((auth.username.as_str(), auth.password.as_str()), ("u", "p"));
    assert_eq!(auth.server, "127.0.0.1:5000");
    assert!(registry_auth("busybox:1", &[secret]).is_none());
    assert_eq!(registry_of("busybox"), "docker.io");
    assert_eq!(registry_of("localhost/x"), "localhost");
}

fn base64_json(v: Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

#[test]
fn durations_print_as_go_does() {
    assert_eq!(format_duration(Duration::from_secs(10)), "10s");
    assert_eq!(format_duration(Duration::from_secs(300)), "5m0s");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
}

#[tokio::test]
async fn an_exit_the_engine_reports_outdates_the_workers_own_view() {
    let s = setup().await;
    let p = pod(
        json!({"containers": [{"name": "a", "image": "app:1", "imagePullPolicy": "IfNotPresent"}]}),
    );
    let mut w = worker(&s);
    w.sync(&p).await.unwrap();
    s.rt.clear_calls();
    w.sync(&p).await.unwrap();
    assert_eq!(s.rt.calls(), Vec::<String>::new(), "its own view stands in");

    let app = app_containers(&s).remove(0);
    s.rt.exit_container(&app.id, 1, false).unwrap();
    // What the manager does with the engine's event; no relist has run since.
    s.shared.engine.reported("uid-1");
    let calls = restarts_once_then_rests(&s, &mut w, &p).await;
    assert!(
        calls.iter().any(|c| c.starts_with("list ")),
        "the report outdates the worker's view, so it lists: {calls:?}"
    );
}

/// After an exit the worker can learn of, the next sync restarts the container once (its
/// engine calls are returned); the one after, on the restart's own view, makes no engine call.
async fn restarts_once_then_rests(s: &Setup, w: &mut PodWorker, p: &Arc<Pod>) -> Vec<String> {
    s.rt.clear_calls();
    w.sync(p).await.unwrap();
    let calls = s.rt.calls();
    assert_eq!(
        last_status(s)["containerStatuses"][0]["restartCount"],
        1,
        "{}",
        last_status(s)
    );
    s.rt.clear_calls();
    w.sync(p).await.unwrap();
    assert_eq!(s.rt.calls(), Vec::<String>::new());
    calls
}

#[tokio::test]
async fn a_fresh_relist_and_a_known_image_spare_engine_calls() {
    let s = setup().await;
    let spec =
        json!({"containers": [{"name": "a", "image": "app:1", "imagePullPolicy": "IfNotPresent"}]});
    // The manager's relist, begun before the worker ever changed anything.
    let began = Instant::now();
    s.shared
        .engine
        .record_relist(began, &s.rt.list(&BTreeMap::new()).await.unwrap());
    s.rt.clear_calls();
    let p = pod(spec.clone());
    let mut w = worker(&s);
    w.sync(&p).await.unwrap();
    let calls = s.rt.calls();
    let first_create = calls.iter().position(|c| c.starts_with("create")).unwrap();
    assert!(
        calls[..first_create].iter().all(|c| !c.starts_with("list")),
        "the relist stands in for the first list: {calls:?}"
    );
    assert_eq!(last_status(&s)["phase"], "Running");
    assert!(
        !calls.iter().any(|c| c.starts_with("list")),
        "after only creating, the worker inspects what it made instead of listing: {calls:?}"
    );

    // The worker changed the engine after that relist, but only by creating what it then
    // inspected: its own view stands in (no engine call) and it asks the next relist to wake it.
    s.rt.clear_calls();
    w.sync(&p).await.unwrap();
    assert_eq!(s.rt.calls(), Vec::<String>::new());
    assert!(
        s.shared.engine.record_relist(began, &[]).is_empty(),
        "a relist begun before the worker asked does not wake it"
    );
    let due = relist(&s).await;
    assert!(due.contains("uid-1"), "{due:?}");
    // That relist, begun after the change, stands in too: a quiet sync makes no engine call.
    s.rt.clear_calls();
    w.sync(&p).await.unwrap();
    assert_eq!(s.rt.calls(), Vec::<String>::new());

    // A container that died is seen by the relist, which the worker then uses.
    let app = s.rt.list(&BTreeMap::new()).await.unwrap();
    let app = app
        .iter()
        .find(|c| c.labels.get(labels::KIND).map(String::as_str) == Some(labels::KIND_CONTAINER))
        .unwrap();
    s.rt.exit_container(&app.id, 1, false).unwrap();
    relist(&s).await;
    // The restart only created a container: the worker's own view of it stands in again, and
    // it is the one running (no second restart).
    restarts_once_then_rests(&s, &mut w, &p).await;
    assert_eq!(last_status(&s)["containerStatuses"][0]["restartCount"], 1);
    assert!(
        last_status(&s)["containerStatuses"][0]["state"]["running"].is_object(),
        "{}",
        last_status(&s)
    );

    // A second pod of the same image does not look the image up again.
    let other: Arc<Pod> = Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "q", "namespace": "default", "uid": "uid-2"},
            "spec": spec,
        }))
        .unwrap(),
    );
    s.rt.clear_calls();
    let mut w2 = PodWorker::new(
        Arc::clone(&s.shared),
        "uid-2".into(),
        Arc::new(Notify::new()),
    );
    w2.sync(&other).await.unwrap();
    let calls = s.rt.calls();
    assert!(
        calls
            .iter()
            .all(|c| !c.starts_with("image_present") && !c.starts_with("ensure_image")),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c.starts_with("start")), "{calls:?}");
}

#[tokio::test]
async fn a_status_changed_by_someone_else_is_written_again() {
    let s = setup().await;
    let p = pod(
        json!({"containers": [{"name": "a", "image": "app:1", "imagePullPolicy": "IfNotPresent"}]}),
    );
    let mut w = worker(&s);
    w.sync(&p).await.unwrap();
    let written = s.api.pod_status_patches("default", "p").len();
    // The stored status as the agent wrote it: a quiet pass writes nothing.
    let mut stored: Pod = (*p).clone();
    stored.status = Some(serde_json::from_value(last_status(&s)).unwrap());
    let stored = Arc::new(stored);
    w.sync(&stored).await.unwrap();
    assert_eq!(s.api.pod_status_patches("default", "p").len(), written);
    // The node lifecycle controller marked it not Ready while the node was unreachable.
    let mut marked: Pod = (*stored).clone();
    for c in marked
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()
        .iter_mut()
    {
        if c.type_ == "Ready" {
            c.status = "False".into();
        }
    }
    w.sync(&Arc::new(marked)).await.unwrap();
    assert_eq!(
        s.api.pod_status_patches("default", "p").len(),
        written + 1,
        "the agent puts its view back"
    );
    let ready = last_status(&s)["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["status"], "True");
}
