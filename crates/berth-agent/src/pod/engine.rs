//! What the agent knows of the engine between calls, so that pod workers ask it less: the
//! manager's latest relist (one list of every container of this node), when the engine last
//! reported a change to each pod's containers (an exit, an OOM kill, a removal), and the images
//! recently seen present.
//!
//! Owns only that memory and the rules for when it may stand in for a call: a worker may use
//! the relist instead of its own list when the relist began after the worker's last change to
//! its containers finished and after the engine's last report on them; a worker that goes on
//! with its own view instead (it only created containers, so its view is as new as its change)
//! may do so until the engine reports a change newer than that view, and is woken by the first
//! relist that began after it asked, as the kubelet's pod workers wait on its PLEG cache; an
//! image seen present stands for a fresh check for a few seconds (a container create that
//! misses it fails and is retried). Must not decide anything about pods.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::runtime::{ContainerSummary, ImageInfo, labels};

/// How long an image seen present is taken to still be there.
const IMAGE_FRESH: Duration = Duration::from_secs(10);

/// How long the engine's report of a change is kept once a relist has begun after it: longer
/// than any worker's own view is used without a relist that began after it.
const REPORT_KEPT: Duration = Duration::from_secs(60);

/// One relist: when it began and the containers it found, by pod UID.
#[derive(Debug, Default)]
struct Snapshot {
    began: Option<Instant>,
    by_uid: HashMap<String, Vec<ContainerSummary>>,
}

/// The shared memory of the engine.
#[derive(Debug, Default)]
pub struct EngineView {
    snapshot: RwLock<Arc<Snapshot>>,
    images: Mutex<HashMap<String, (ImageInfo, Instant)>>,
    /// Pods whose workers wait for a relist newer than their view, with when they asked.
    awaiting: Mutex<HashMap<String, Instant>>,
    /// When the engine last reported a change to each pod's containers.
    reported: Mutex<HashMap<String, Instant>>,
}

impl EngineView {
    /// An empty view: every question goes to the engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a relist that `began` at that instant; returns the pods whose workers asked
    /// for a relist before it began (they are to be woken: it stands in for their list now).
    pub fn record_relist(
        &self,
        began: Instant,
        containers: &[ContainerSummary],
    ) -> HashSet<String> {
        let mut by_uid: HashMap<String, Vec<ContainerSummary>> = HashMap::new();
        for c in containers {
            if let Some(uid) = c.labels.get(labels::POD_UID) {
                by_uid.entry(uid.clone()).or_default().push(c.clone());
            }
        }
        let snapshot = Arc::new(Snapshot {
            began: Some(began),
            by_uid,
        });
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = snapshot;
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, at| *at + REPORT_KEPT > began);
        self.awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extract_if(|_, asked| *asked < began)
            .map(|(uid, _)| uid)
            .collect()
    }

    /// Asks that the worker of pod `uid` be woken by the next relist that begins from now on.
    pub fn await_relist(&self, uid: &str) {
        self.awaiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(uid.to_owned())
            .or_insert_with(Instant::now);
    }

    /// Records that the engine reported a change to a container of pod `uid` just now.
    pub fn reported(&self, uid: &str) {
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_owned(), Instant::now());
    }

    /// Whether the engine reported a change to pod `uid`'s containers at or after `seen` (the
    /// start of the look that a worker's own view comes from; `None`: any report counts).
    pub fn reported_since(&self, uid: &str, seen: Option<Instant>) -> bool {
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .is_some_and(|at| seen.is_none_or(|s| *at >= s))
    }

    /// The containers of pod `uid` as the last relist saw them, with when that relist began,
    /// if it began after `changed` (the end of the worker's last change; `None` if it never
    /// changed anything) and after the engine's last report on the pod.
    pub fn containers_of(
        &self,
        uid: &str,
        changed: Option<Instant>,
    ) -> Option<(Instant, Vec<ContainerSummary>)> {
        let snapshot = Arc::clone(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()));
        let began = snapshot.began?;
        if changed.is_some_and(|c| c >= began) || self.reported_since(uid, Some(began)) {
            return None;
        }
        Some((began, snapshot.by_uid.get(uid).cloned().unwrap_or_default()))
    }

    /// The image `reference` if it was seen present within the last few seconds.
    pub fn image(&self, reference: &str) -> Option<ImageInfo> {
        let images = self.images.lock().unwrap_or_else(|e| e.into_inner());
        images
            .get(reference)
            .filter(|(_, at)| at.elapsed() < IMAGE_FRESH)
            .map(|(i, _)| i.clone())
    }

    /// Records that `reference` is present.
    pub fn image_seen(&self, reference: &str, image: &ImageInfo) {
        let mut images = self.images.lock().unwrap_or_else(|e| e.into_inner());
        images.retain(|_, (_, at)| at.elapsed() < IMAGE_FRESH);
        images.insert(reference.to_owned(), (image.clone(), Instant::now()));
    }

    /// Forgets `reference` (a create found it missing).
    pub fn image_gone(&self, reference: &str) {
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(reference);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::runtime::SummaryState;

    fn summary(id: &str, uid: &str) -> ContainerSummary {
        ContainerSummary {
            id: id.into(),
            name: id.into(),
            image: "app:1".into(),
            image_id: "sha256:app".into(),
            state: SummaryState::Running,
            labels: BTreeMap::from([(labels::POD_UID.to_owned(), uid.to_owned())]),
            created_unix: 0,
        }
    }

    #[test]
    fn a_relist_stands_in_only_when_it_began_after_the_last_change() {
        let view = EngineView::new();
        assert!(view.containers_of("u1", None).is_none(), "no relist yet");
        let before = Instant::now();
        let began = Instant::now();
        view.record_relist(began, &[summary("a", "u1"), summary("b", "u2")]);
        let (at, mine) = view.containers_of("u1", None).expect("never changed");
        assert_eq!(at, began);
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].id, "a");
        assert!(view.containers_of("u1", Some(before)).is_some());
        assert!(view.containers_of("u1", Some(Instant::now())).is_none());
        assert_eq!(view.containers_of("u3", None), Some((began, Vec::new())));
    }

    #[test]
    fn an_engine_report_outdates_the_relist_and_older_views_of_that_pod_only() {
        let view = EngineView::new();
        let began = Instant::now();
        view.record_relist(began, &[summary("a", "u1"), summary("b", "u2")]);
        let seen = Instant::now();
        assert!(!view.reported_since("u1", None), "nothing reported yet");
        view.reported("u1");
        assert!(
            view.containers_of("u1", None).is_none(),
            "the relist began before the report"
        );
        assert!(
            view.containers_of("u2", None).is_some(),
            "other pods keep it"
        );
        assert!(view.reported_since("u1", Some(seen)));
        assert!(view.reported_since("u1", None));
        assert!(!view.reported_since("u1", Some(Instant::now())));
        assert!(!view.reported_since("u2", Some(seen)));
        // A relist begun after the report stands in again, and keeps the report for views
        // older than it.
        view.record_relist(Instant::now(), &[summary("b", "u2")]);
        assert_eq!(
            view.containers_of("u1", None).map(|(_, l)| l),
            Some(Vec::new())
        );
        assert!(view.reported_since("u1", Some(seen)));
    }

    #[test]
    fn a_worker_that_waits_for_a_relist_is_due_at_the_first_one_begun_after_it_asked() {
        let view = EngineView::new();
        let before = Instant::now();
        view.await_relist("u1");
        assert!(
            view.record_relist(before, &[]).is_empty(),
            "a relist begun before the request is not new enough"
        );
        let due = view.record_relist(Instant::now(), &[summary("a", "u1")]);
        assert_eq!(due, HashSet::from(["u1".to_owned()]));
        assert!(
            view.record_relist(Instant::now(), &[]).is_empty(),
            "woken once"
        );
    }

    #[test]
    fn images_are_remembered_briefly_and_forgotten_on_demand() {
        let view = EngineView::new();
        let image = ImageInfo {
            id: "sha256:app".into(),
            repo_tags: vec!["app:1".into()],
            repo_digests: Vec::new(),
            size: 1,
        };
        assert!(view.image("app:1").is_none());
        view.image_seen("app:1", &image);
        assert_eq!(view.image("app:1"), Some(image));
        view.image_gone("app:1");
        assert!(view.image("app:1").is_none());
    }
}
