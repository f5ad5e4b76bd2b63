//! Events the agent records about pods (Pulling, Pulled, Created, Started, Killing, BackOff,
//! Unhealthy, Failed, ...), as the kubelet writes them: core/v1 Events from component `kubelet`
//! on this host, involving the pod and, for container events, its `spec.containers{name}` field.
//!
//! Owns the [`Recorder`]. Recording never blocks or fails the caller: events are sent in the
//! background and a failure is only logged. Must not decide when something is worth an event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};

use crate::api::ClusterApi;

/// Event type `Normal`.
pub const NORMAL: &str = "Normal";
/// Event type `Warning`.
pub const WARNING: &str = "Warning";

/// Records events about pods on this node.
#[derive(Clone)]
pub struct Recorder {
    api: Arc<dyn ClusterApi>,
    node: String,
    seq: Arc<AtomicU64>,
}

impl Recorder {
    /// A recorder writing through `api` as the agent of `node`.
    pub fn new(api: Arc<dyn ClusterApi>, node: impl Into<String>) -> Self {
        Self {
            api,
            node: node.into(),
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The event, without sending it. `container` names the container it is about, if any.
    pub fn build(
        &self,
        pod: &Pod,
        container: Option<&str>,
        event_type: &str,
        reason: &str,
        message: &str,
    ) -> Event {
        let now = jiff::Timestamp::now();
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        // Unique per process and time, like the kubelet's `<pod>.<hex nanoseconds>`.
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{pod_name}.{:x}{seq:x}", now.as_nanosecond().unsigned_abs());
        Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod_name),
                namespace: Some(namespace),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                field_path: container.map(|c| container_field_path(pod, c)),
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(event_type.into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            action: Some(reason.into()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            ..Event::default()
        }
    }

    /// Records an event in the background.
    pub fn record(
        &self,
        pod: &Pod,
        container: Option<&str>,
        event_type: &str,
        reason: &str,
        message: &str,
    ) {
        let event = self.build(pod, container, event_type, reason, message);
        let api = Arc::clone(&self.api);
        tokio::spawn(async move {
            if let Err(e) = api.create_event(&event).await {
                tracing::debug!(error = %e, reason = ?event.reason, "could not record an event");
            }
        });
    }
}

/// `spec.containers{name}` or `spec.initContainers{name}`.
fn container_field_path(pod: &Pod, container: &str) -> String {
    let is_init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|ics| ics.iter().any(|c| c.name == container));
    if is_init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FakeApi;

    #[test]
    fn events_name_the_pod_and_container() {
        let api = FakeApi::new();
        let r = Recorder::new(api, "n1");
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "setup"}]}
        }))
        .unwrap();
        let e = r.build(&pod, Some("setup"), WARNING, "BackOff", "back-off");
        assert_eq!(
            e.involved_object.field_path.as_deref(),
            Some("spec.initContainers{setup}")
        );
        assert_eq!(e.involved_object.uid.as_deref(), Some("u1"));
        assert_eq!(e.source.unwrap().host.as_deref(), Some("n1"));
        let e2 = r.build(
            &pod,
            Some("app"),
            NORMAL,
            "Started",
            "Started container app",
        );
        assert_eq!(
            e2.involved_object.field_path.as_deref(),
            Some("spec.containers{app}")
        );
        assert_ne!(e.metadata.name, e2.metadata.name);
    }
}
