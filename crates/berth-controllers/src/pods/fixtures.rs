//! Objects for the controllers' unit tests: pods in every state, at fixed times.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};

/// A fixed instant plus `secs` seconds.
pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("in range")
}

/// A label map.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A pod template with `labels` and one container running `image`.
pub fn template(pairs: &[(&str, &str)], image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(pairs)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

/// A pod under construction.
#[derive(Clone)]
pub struct P(pub Pod);

/// A Pending, unscheduled pod `default/name` with `labels`, created at `t(0)`.
pub fn pod(name: &str, pairs: &[(&str, &str)]) -> P {
    P(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("1".into()),
            labels: Some(labels(pairs)),
            creation_timestamp: Some(Time(t(0))),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec::default()),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            ..PodStatus::default()
        }),
    })
}

impl P {
    /// Controlled by `owner`.
    pub fn owned(mut self, owner: &OwnerReference) -> Self {
        self.0.metadata.owner_references = Some(vec![owner.clone()]);
        self
    }
    /// Bound to `node` and Running.
    pub fn running(mut self, node: &str) -> Self {
        self.0.spec.get_or_insert_default().node_name = Some(node.into());
        self.0.status.get_or_insert_default().phase = Some("Running".into());
        self
    }
    /// Bound to `node` (phase unchanged).
    pub fn on(mut self, node: &str) -> Self {
        self.0.spec.get_or_insert_default().node_name = Some(node.into());
        self
    }
    /// In `phase`.
    pub fn phase(mut self, phase: &str) -> Self {
        self.0.status.get_or_insert_default().phase = Some(phase.into());
        self
    }
    /// Ready since `since`.
    pub fn ready(mut self, since: Timestamp) -> Self {
        let st = self.0.status.get_or_insert_default();
        st.conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(Time(since)),
            ..PodCondition::default()
        }]);
        self
    }
    /// Created at `at`.
    pub fn created(mut self, at: Timestamp) -> Self {
        self.0.metadata.creation_timestamp = Some(Time(at));
        self
    }
    /// Being deleted.
    pub fn terminating(mut self) -> Self {
        self.0.metadata.deletion_timestamp = Some(Time(t(0)));
        self
    }
    /// Its container restarted `n` times.
    pub fn restarts(mut self, n: i32) -> Self {
        self.0.status.get_or_insert_default().container_statuses = Some(vec![ContainerStatus {
            name: "main".into(),
            restart_count: n,
            ..ContainerStatus::default()
        }]);
        self
    }
    /// With the annotation `k=v`.
    pub fn annotated(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(k.into(), v.into());
        self
    }
    /// Shared.
    pub fn arc(self) -> Arc<Pod> {
        Arc::new(self.0)
    }
}

/// A ReplicaSet `default/name` of `replicas` selecting and templating `pairs`, generation 1,
/// uid `uid-<name>`, created at `t(0)`, with an empty status.
pub fn replicaset(name: &str, replicas: i32, pairs: &[(&str, &str)]) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("1".into()),
            generation: Some(1),
            creation_timestamp: Some(Time(t(0))),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(pairs)),
                match_expressions: None,
            },
            template: Some(template(pairs, "busybox:1")),
            min_ready_seconds: None,
        }),
        status: Some(ReplicaSetStatus::default()),
    }
}
