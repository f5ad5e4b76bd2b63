//! The pod manager: one worker per pod bound to this node, fed by the API watch and woken by
//! changes on the engine.
//!
//! Owns the map from pod UID to worker, the relist of the engine (every second, one list call
//! for all pods, as the kubelet's PLEG) that wakes the worker of a pod whose containers changed,
//! and the removal of containers whose pod no longer exists (once the first list of pods is
//! complete, so that a restart adopts what still has a pod). Must not decide anything about a
//! single pod (its worker does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::api::PodEvent;
use crate::pod::worker::{PodWorker, Shared};
use crate::runtime::{SandboxId, SummaryState, labels};

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
                _ = relist.tick() => self.relist().await,
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

    /// Lists the engine once: wakes workers whose containers changed and removes containers of
    /// pods that no longer exist.
    pub async fn relist(&mut self) {
        let began = std::time::Instant::now();
        let list = match self.shared.runtime.list(&BTreeMap::new()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "relisting containers");
                return;
            }
        };
        for uid in self.shared.engine.record_relist(began, &list) {
            if let Some(w) = self.workers.get(&uid) {
                w.wake.notify_one();
            }
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
            if self.fingerprints.get(uid) != Some(fp)
                && let Some(w) = self.workers.get(uid)
            {
                w.wake.notify_one();
            }
        }
        self.workers
            .retain(|_, w| !(w.task.is_finished() && w.pod.borrow().is_none()));
        if self.synced {
            for uid in now.keys() {
                if !self.workers.contains_key(uid) {
                    self.remove_orphan(uid, &list).await;
                }
            }
        }
        self.fingerprints = now;
    }

    async fn remove_orphan(&self, uid: &str, list: &[crate::runtime::ContainerSummary]) {
        tracing::info!(pod_uid = %uid, "removing containers of a pod that no longer exists");
        let rt = &self.shared.runtime;
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
        let dir = self.shared.config.pod_dir(uid);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Number of pods with a live worker.
    pub fn pods(&self) -> usize {
        self.workers
            .values()
            .filter(|w| !w.task.is_finished())
            .count()
    }
}
