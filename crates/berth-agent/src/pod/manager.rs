//! The pod manager: one worker per pod bound to this node, fed by the API watch and woken by
//! changes on the engine.
//!
//! Owns the map from pod UID to worker; the engine's events (exits, OOM kills, removals of this
//! node's containers), each of which wakes the worker of its pod at once; the relist of the
//! engine (one list call for all pods, as the kubelet's PLEG), which wakes the worker of a pod
//! whose containers changed: every second while no event stream is followed, and only every
//! ten seconds (by default) once one is and a relist has begun after it was opened (as the
//! kubelet's evented PLEG relists rarely); and the removal of containers whose pod no longer
//! exists (once the first list of pods is complete, so that a restart adopts what still has a
//! pod). Must not decide anything about a single pod (its worker does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::api::PodEvent;
use crate::pod::worker::{PodWorker, Shared};
use crate::runtime::{EngineEvent, EngineEvents, RuntimeError, SandboxId, SummaryState, labels};

struct WorkerHandle {
    pod: watch::Sender<Option<Arc<Pod>>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

/// Runs the pods bound to this node.
pub struct PodManager {
    shared: Arc<Shared>,
    workers: HashMap<String, WorkerHandle>,
    /// Engine state per pod UID at the last relist: (container id, coarse state) pairs.
    fingerprints: HashMap<String, Vec<(String, String)>>,
    synced: bool,
    listing: Option<HashSet<String>>,
    /// The engine's events while they are followed.
    engine_events: Option<EngineEvents>,
    /// Whether the engine can report events at all.
    engine_reports: bool,
    /// Since when a relist is needed before the events alone can be trusted: the stream was
    /// opened, or the list of pods became complete.
    relist_needed_since: Option<Instant>,
    /// When the last relist that succeeded began.
    last_relist: Option<Instant>,
}

impl PodManager {
    /// A manager for the workers that share `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            workers: HashMap::new(),
            fingerprints: HashMap::new(),
            synced: false,
            listing: None,
            engine_events: None,
            engine_reports: true,
            relist_needed_since: None,
            last_relist: None,
        }
    }

    /// Runs until `shutdown` turns true. Workers are then dropped without stopping their
    /// containers, which a restarted agent adopts.
    pub async fn run(
        mut self,
        mut events: BoxStream<'static, PodEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut relist = tokio::time::interval(self.shared.config.relist_interval);
        relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    Some(ev) => self.handle(ev),
                    None => break,
                },
                ev = next_engine_event(&mut self.engine_events) => self.engine_event(ev),
                _ = relist.tick() => {
                    self.follow_engine().await;
                    if self.relist_due() {
                        self.relist().await;
                    }
                }
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break },
            }
        }
        for (_, w) in self.workers.drain() {
            w.task.abort();
        }
    }

    /// Applies one watch event.
    pub fn handle(&mut self, event: PodEvent) {
        match event {
            PodEvent::Relist => self.listing = Some(HashSet::new()),
            PodEvent::Applied(pod) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    return;
                };
                if let Some(l) = self.listing.as_mut() {
                    l.insert(uid.clone());
                }
                self.upsert(uid, Arc::new(*pod));
            }
            PodEvent::Deleted(pod) => {
                if let Some(uid) = pod.metadata.uid.as_deref()
                    && let Some(w) = self.workers.get(uid)
                {
                    w.pod.send_replace(None);
                }
            }
            PodEvent::Synced => {
                if !self.synced {
                    self.relist_needed_since = Some(Instant::now());
                }
                if let Some(listed) = self.listing.take() {
                    for (uid, w) in &self.workers {
                        if !listed.contains(uid) {
                            w.pod.send_replace(None);
                        }
                    }
                }
                self.synced = true;
            }
            PodEvent::Error(e) => tracing::warn!(error = %e, "watching the node's pods"),
        }
    }

    fn upsert(&mut self, uid: String, pod: Arc<Pod>) {
        if let Some(w) = self.workers.get(&uid)
            && !w.task.is_finished()
        {
            w.pod.send_replace(Some(pod));
            return;
        }
        // A worker that finished (its pod was deleted) is not restarted for the same object.
        if self.workers.get(&uid).is_some_and(|w| w.task.is_finished()) {
            return;
        }
        let (tx, rx) = watch::channel(Some(pod));
        let wake = Arc::new(Notify::new());
        let worker = PodWorker::new(Arc::clone(&self.shared), uid.clone(), Arc::clone(&wake));
        let task = tokio::spawn(worker.run(rx));
        self.workers.insert(
            uid,
            WorkerHandle {
                pod: tx,
                wake,
                task,
            },
        );
    }

    /// Wakes the worker of pod `uid`, if it has one.
    fn wake(&self, uid: &str) {
        if let Some(w) = self.workers.get(uid) {
            w.wake.notify_one();
        }
    }

    /// Opens the engine's event stream when it is not open (and the engine has one).
    async fn follow_engine(&mut self) {
        if self.engine_events.is_some() || !self.engine_reports {
            return;
        }
        match self.shared.runtime.events().await {
            Ok(Some(stream)) => {
                self.engine_events = Some(stream);
                self.relist_needed_since = Some(Instant::now());
            }
            Ok(None) => self.engine_reports = false,
            Err(e) => tracing::debug!(error = %e, "following the engine's events"),
        }
    }

    /// Applies one item of the engine's event stream: an event wakes its pod's worker; an
    /// error or the end of the stream closes it (relisting goes back to every second until it
    /// is open again).
    fn engine_event(&mut self, event: Option<Result<EngineEvent, RuntimeError>>) {
        match event {
            Some(Ok(ev)) => {
                if let Some(uid) = ev.pod_uid {
                    self.shared.engine.reported(&uid);
                    self.wake(&uid);
                }
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "the engine's events stopped");
                self.engine_events = None;
            }
            None => self.engine_events = None,
        }
    }

    /// Whether the next tick relists: always, unless the events are followed and a relist has
    /// begun since they (and the list of pods) were complete; then at the slower interval.
    fn relist_due(&self) -> bool {
        let trusted = self.engine_events.is_some()
            && self.synced
            && matches!(
                (self.last_relist, self.relist_needed_since),
                (Some(last), Some(needed)) if last > needed
            );
        !trusted
            || self
                .last_relist
                .is_none_or(|l| l.elapsed() >= self.shared.config.relist_interval_with_events)
    }

    /// Lists the engine once: wakes workers whose containers changed and removes containers of
    /// pods that no longer exist.
    pub async fn relist(&mut self) {
        let began = Instant::now();
        let list = match self.shared.runtime.list(&BTreeMap::new()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "relisting containers");
                return;
            }
        };
        self.last_relist = Some(began);
        for uid in self.shared.engine.record_relist(began, &list) {
            self.wake(&uid);
        }
        let mut now: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for c in &list {
            if let Some(uid) = c.labels.get(labels::POD_UID) {
                let state = match &c.state {
                    SummaryState::Running => "running".to_string(),
                    SummaryState::Exited => "exited".to_string(),
                    SummaryState::Created => "created".to_string(),
                    SummaryState::Other(s) => s.clone(),
                };
                now.entry(uid.clone())
                    .or_default()
                    .push((c.id.clone(), state));
            }
        }
        for v in now.values_mut() {
            v.sort();
        }
        for (uid, fp) in &now {
            if self.fingerprints.get(uid) != Some(fp) {
                self.wake(uid);
            }
        }
        self.workers
            .retain(|_, w| !(w.task.is_finished() && w.pod.borrow().is_none()));
        if self.synced {
            for uid in now.keys() {
                if !self.workers.contains_key(uid) {
                    remove_orphan(&self.shared, uid, &list).await;
                }
            }
        }
        self.fingerprints = now;
    }

    /// Number of pods with a live worker.
    pub fn pods(&self) -> usize {
        self.workers
            .values()
            .filter(|w| !w.task.is_finished())
            .count()
    }
}

/// Stops and removes the containers (then the sandboxes) of a pod that no longer exists.
async fn remove_orphan(shared: &Shared, uid: &str, list: &[crate::runtime::ContainerSummary]) {
    tracing::info!(pod_uid = %uid, "removing containers of a pod that no longer exists");
    let rt = &shared.runtime;
    let mine = list
        .iter()
        .filter(|c| c.labels.get(labels::POD_UID).map(String::as_str) == Some(uid));
    let (sandboxes, containers): (Vec<_>, Vec<_>) = mine.partition(|c| {
        c.labels.get(labels::KIND).map(String::as_str) == Some(labels::KIND_SANDBOX)
    });
    for c in containers {
        if let Err(e) = rt.stop(&c.id, Duration::from_secs(2)).await {
            tracing::debug!(container = %c.id, error = %e, "stopping an orphan");
        }
        let _ = rt.remove(&c.id).await;
    }
    for s in sandboxes {
        let _ = rt
            .remove_sandbox(&SandboxId(s.id.clone()), Duration::ZERO)
            .await;
    }
    let dir = shared.config.pod_dir(uid);
    let _ = std::fs::remove_dir_all(dir);
}

/// The next item of the engine's event stream, or never while none is open.
async fn next_engine_event(
    stream: &mut Option<EngineEvents>,
) -> Option<Result<EngineEvent, RuntimeError>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pod::testing::{Setup, setup_with};

    fn full_lists(s: &Setup) -> usize {
        s.rt.calls().iter().filter(|c| *c == "list ").count()
    }

    fn restart_count(s: &Setup) -> Option<i64> {
        let patches = s.api.pod_status_patches("default", "p");
        patches.last()?["status"]["containerStatuses"][0]["restartCount"].as_i64()
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A manager over the fakes that relists every 50 ms, or hourly once it follows the
    /// engine's events; `prepare` scripts the engine before it starts.
    async fn running_manager(
        prepare: impl FnOnce(&Setup),
    ) -> (
        Setup,
        futures::channel::mpsc::UnboundedSender<PodEvent>,
        watch::Sender<bool>,
        JoinHandle<()>,
    ) {
        let s = setup_with(|c| {
            c.relist_interval = Duration::from_millis(50);
            c.relist_interval_with_events = Duration::from_secs(3600);
        })
        .await;
        prepare(&s);
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let (stop_tx, stop) = watch::channel(false);
        let manager = tokio::spawn(PodManager::new(Arc::clone(&s.shared)).run(rx.boxed(), stop));
        (s, tx, stop_tx, manager)
    }

    #[tokio::test]
    async fn engine_events_wake_the_worker_and_slow_the_relist() {
        let (s, tx, _stop, manager) = running_manager(|_| {}).await;
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "uid-1"},
            "spec": {"containers": [{"name": "a", "image": "app:1"}]},
        }))
        .unwrap();
        for ev in [
            PodEvent::Relist,
            PodEvent::Applied(Box::new(pod)),
            PodEvent::Synced,
        ] {
            tx.unbounded_send(ev).unwrap();
        }
        until("the pod to run", || restart_count(&s) == Some(0)).await;
        // Once a relist has begun after the events were followed and the pods listed, the
        // relist waits for its slow interval.
        until("the events to be followed", || {
            s.rt.calls().iter().any(|c| c == "events")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let lists = full_lists(&s);
        assert!(lists >= 1, "{:?}", s.rt.calls());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(full_lists(&s), lists, "no relist every 50 ms any more");

        // An exit reaches the worker through the event, without a relist.
        let app =
            s.rt.containers()
                .into_iter()
                .find(|c| {
                    c.labels.get(labels::KIND).map(String::as_str) == Some(labels::KIND_CONTAINER)
                })
                .unwrap();
        s.rt.exit_container(&app.id, 1, false).unwrap();
        until("the restart", || restart_count(&s) == Some(1)).await;
        assert_eq!(full_lists(&s), lists, "{:?}", s.rt.calls());
        manager.abort();
    }

    #[tokio::test]
    async fn without_events_the_relist_runs_every_interval() {
        let (s, tx, _stop, manager) = running_manager(|s| {
            for _ in 0..1000 {
                s.rt.fail_next("events", "no events here");
            }
        })
        .await;
        tx.unbounded_send(PodEvent::Synced).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Every tick tries to follow the events again, and relists.
        assert!(full_lists(&s) >= 5, "{:?}", s.rt.calls());
        assert!(
            s.rt.calls().iter().filter(|c| *c == "events").count() >= 5,
            "{:?}",
            s.rt.calls()
        );
        manager.abort();
    }
}
