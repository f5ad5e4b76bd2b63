//! The agent's view of the API server: the few reads and writes a node agent makes.
//!
//! Owns the [`ClusterApi`] trait (nodes, leases, pods bound to this node and their status, the
//! ConfigMaps and Secrets they use, service-account tokens, events), its implementation over a
//! kube-rs [`kube::Client`] ([`KubeApi`]), and a recording in-memory fake ([`FakeApi`]) for tests
//! of the layers above. Must not decide anything: node and pod logic live in `node` and `pod`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, Secret, ServiceAccount};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

/// The field manager of every write the agent makes.
pub const FIELD_MANAGER: &str = "berth-agent";

/// Errors of API calls.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiCallError {
    /// The object does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The write conflicted with another (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other failure, with the server's or the transport's message.
    #[error("{0}")]
    Other(String),
}

impl From<kube::Error> for ApiCallError {
    fn from(e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) if s.code == 404 => ApiCallError::NotFound(s.message.clone()),
            kube::Error::Api(s) if s.code == 409 => ApiCallError::Conflict(s.message.clone()),
            _ => ApiCallError::Other(e.to_string()),
        }
    }
}

/// The delays between attempts of a failing watch: from 200 ms doubling to 5 s, back to the
/// start once a watch succeeds. Short, so that pods resume soon after the API server returns.
#[derive(Debug, Clone)]
struct WatchBackoff {
    next: std::time::Duration,
}

impl WatchBackoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(200);
    const MAX: std::time::Duration = std::time::Duration::from_secs(5);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = std::time::Duration;
    fn next(&mut self) -> Option<std::time::Duration> {
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        Some(d)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// A change of the objects a watch follows (the pods bound to this node, one ConfigMap...).
#[derive(Clone, Debug)]
pub enum ObjectEvent<K> {
    /// A (re)list starts: the objects that follow until [`ObjectEvent::Synced`] are all there are.
    Relist,
    /// An object exists in this state.
    Applied(Box<K>),
    /// An object is gone from the API (or no longer matches the watch).
    Deleted(Box<K>),
    /// The list that began with [`ObjectEvent::Relist`] is complete.
    Synced,
    /// The watch failed; it is retried.
    Error(String),
}

/// A change of the pods bound to this node.
pub type PodEvent = ObjectEvent<Pod>;

/// What the node agent reads from and writes to the API server.
#[async_trait]
pub trait ClusterApi: Send + Sync {
    /// UID of the `kube-system` namespace, which names the cluster.
    async fn cluster_uid(&self) -> Result<String, ApiCallError>;
    /// A Node, if it exists.
    async fn get_node(&self, name: &str) -> Result<Option<Node>, ApiCallError>;
    /// Creates a Node.
    async fn create_node(&self, node: &Node) -> Result<Node, ApiCallError>;
    /// Merge-patches a Node's metadata or spec.
    async fn patch_node(&self, name: &str, patch: &Value) -> Result<Node, ApiCallError>;
    /// Merge-patches a Node's status subresource.
    async fn patch_node_status(&self, name: &str, patch: &Value) -> Result<Node, ApiCallError>;
    /// A Lease in `kube-node-lease`, if it exists.
    async fn get_lease(&self, name: &str) -> Result<Option<Lease>, ApiCallError>;
    /// Creates a Lease in `kube-node-lease`.
    async fn create_lease(&self, lease: &Lease) -> Result<Lease, ApiCallError>;
    /// Replaces a Lease in `kube-node-lease` (compare-and-swap on its resourceVersion).
    async fn replace_lease(&self, lease: &Lease) -> Result<Lease, ApiCallError>;
    /// Watches the pods whose `spec.nodeName` is `node`.
    fn watch_pods(&self, node: &str) -> BoxStream<'static, PodEvent>;
    /// Watches one ConfigMap (a list and watch with the field selector `metadata.name`).
    fn watch_config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> BoxStream<'static, ObjectEvent<ConfigMap>>;
    /// Watches one Secret (a list and watch with the field selector `metadata.name`).
    fn watch_secret(&self, namespace: &str, name: &str) -> BoxStream<'static, ObjectEvent<Secret>>;
    /// A ConfigMap, if it exists.
    async fn get_config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ApiCallError>;
    /// A Secret, if it exists.
    async fn get_secret(&self, namespace: &str, name: &str)
    -> Result<Option<Secret>, ApiCallError>;
    /// A token for a service account, bound to a pod.
    async fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        pod: &Pod,
        expiration_seconds: i64,
    ) -> Result<String, ApiCallError>;
    /// Merge-patches a pod's status subresource.
    async fn patch_pod_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<(), ApiCallError>;
    /// Deletes a pod at once (grace 0) if it still has `uid`.
    async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<(), ApiCallError>;
    /// Records an event.
    async fn create_event(&self, event: &Event) -> Result<(), ApiCallError>;
}

/// [`ClusterApi`] over a kube-rs client.
#[derive(Clone)]
pub struct KubeApi {
    client: kube::Client,
}

impl KubeApi {
    /// Uses `client` for every call.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    fn nodes(&self) -> kube::Api<Node> {
        kube::Api::all(self.client.clone())
    }

    fn leases(&self) -> kube::Api<Lease> {
        kube::Api::namespaced(self.client.clone(), crate::node::LEASE_NAMESPACE)
    }

    fn pods(&self, namespace: &str) -> kube::Api<Pod> {
        kube::Api::namespaced(self.client.clone(), namespace)
    }
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

/// The events of a watch of `api` restricted by `fields`, retried with [`WatchBackoff`].
fn object_events<K>(api: kube::Api<K>, fields: &str) -> BoxStream<'static, ObjectEvent<K>>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default().fields(fields))
        .backoff(WatchBackoff::default())
        .map(|event| match event {
            Ok(watcher::Event::Init) => ObjectEvent::Relist,
            Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => {
                ObjectEvent::Applied(Box::new(o))
            }
            Ok(watcher::Event::InitDone) => ObjectEvent::Synced,
            Ok(watcher::Event::Delete(o)) => ObjectEvent::Deleted(Box::new(o)),
            Err(e) => ObjectEvent::Error(e.to_string()),
        })
        .boxed()
}

fn optional<T>(r: Result<T, kube::Error>) -> Result<Option<T>, ApiCallError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl ClusterApi for KubeApi {
    async fn cluster_uid(&self) -> Result<String, ApiCallError> {
        let ns = kube::Api::<Namespace>::all(self.client.clone())
            .get("kube-system")
            .await?;
        ns.metadata
            .uid
            .ok_or_else(|| ApiCallError::Other("namespace kube-system has no uid".into()))
    }

    async fn get_node(&self, name: &str) -> Result<Option<Node>, ApiCallError> {
        optional(self.nodes().get(name).await)
    }

    async fn create_node(&self, node: &Node) -> Result<Node, ApiCallError> {
        Ok(self.nodes().create(&post_params(), node).await?)
    }

    async fn patch_node(&self, name: &str, patch: &Value) -> Result<Node, ApiCallError> {
        Ok(self
            .nodes()
            .patch(name, &params(), &Patch::Merge(patch))
            .await?)
    }

    async fn patch_node_status(&self, name: &str, patch: &Value) -> Result<Node, ApiCallError> {
        Ok(self
            .nodes()
            .patch_status(name, &params(), &Patch::Merge(patch))
            .await?)
    }

    async fn get_lease(&self, name: &str) -> Result<Option<Lease>, ApiCallError> {
        optional(self.leases().get(name).await)
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease, ApiCallError> {
        Ok(self.leases().create(&post_params(), lease).await?)
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease, ApiCallError> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        Ok(self.leases().replace(&name, &post_params(), lease).await?)
    }

    fn watch_pods(&self, node: &str) -> BoxStream<'static, PodEvent> {
        object_events(
            kube::Api::all(self.client.clone()),
            &format!("spec.nodeName={node}"),
        )
    }

    fn watch_config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> BoxStream<'static, ObjectEvent<ConfigMap>> {
        object_events(
            kube::Api::namespaced(self.client.clone(), namespace),
            &format!("metadata.name={name}"),
        )
    }

    fn watch_secret(&self, namespace: &str, name: &str) -> BoxStream<'static, ObjectEvent<Secret>> {
        object_events(
            kube::Api::namespaced(self.client.clone(), namespace),
            &format!("metadata.name={name}"),
        )
    }

    async fn get_config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ApiCallError> {
        optional(
            kube::Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
                .get(name)
                .await,
        )
    }

    async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Secret>, ApiCallError> {
        optional(
            kube::Api::<Secret>::namespaced(self.client.clone(), namespace)
                .get(name)
                .await,
        )
    }

    async fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        pod: &Pod,
        expiration_seconds: i64,
    ) -> Result<String, ApiCallError> {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..TokenRequest::default()
        };
        let got = kube::Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .create_token_request(service_account, &post_params(), &request)
            .await?;
        got.status
            .map(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiCallError::Other("the token request returned no token".into()))
    }

    async fn patch_pod_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<(), ApiCallError> {
        self.pods(namespace)
            .patch_status(name, &params(), &Patch::Merge(patch))
            .await?;
        Ok(())
    }

    async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<(), ApiCallError> {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.pods(namespace).delete(name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn create_event(&self, event: &Event) -> Result<(), ApiCallError> {
        let ns = event
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        kube::Api::<Event>::namespaced(self.client.clone(), &ns)
            .create(&post_params(), event)
            .await?;
        Ok(())
    }
}

/// An in-memory [`ClusterApi`] that records every call, for tests of the node and pod logic.
#[derive(Default)]
pub struct FakeApi {
    state: Mutex<FakeState>,
    pod_events: Mutex<Option<futures::channel::mpsc::UnboundedSender<PodEvent>>>,
}

/// The open watches of one kind of object in the fake: (namespace, name) and the stream's sender.
type FakeWatchers<K> = Vec<(
    (String, String),
    futures::channel::mpsc::UnboundedSender<ObjectEvent<K>>,
)>;

#[derive(Default)]
struct FakeState {
    /// Object watches deliver nothing (as when they are forbidden and keep retrying).
    silent_watches: bool,
    config_map_watches: FakeWatchers<ConfigMap>,
    secret_watches: FakeWatchers<Secret>,
    calls: Vec<String>,
    nodes: BTreeMap<String, Node>,
    leases: BTreeMap<String, Lease>,
    config_maps: BTreeMap<(String, String), ConfigMap>,
    secrets: BTreeMap<(String, String), Secret>,
    pod_status: BTreeMap<(String, String), Vec<Value>>,
    deleted_pods: Vec<(String, String, String)>,
    events: Vec<Event>,
    revision: u64,
}

impl FakeApi {
    /// An empty fake.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, call: String) {
        self.state().calls.push(call);
    }

    /// The calls made so far, e.g. `patch_pod_status default/p`.
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// From now on, watches of ConfigMaps and Secrets deliver nothing.
    pub fn silence_object_watches(&self) {
        self.state().silent_watches = true;
    }

    /// Adds or replaces a ConfigMap (and tells the watches of it).
    pub fn put_config_map(&self, cm: ConfigMap) {
        let mut s = self.state();
        let key = fake_key(&cm);
        notify_watchers(&mut s.config_map_watches, &key, &cm);
        s.config_maps.insert(key, cm);
    }

    /// Adds or replaces a Secret (and tells the watches of it).
    pub fn put_secret(&self, secret: Secret) {
        let mut s = self.state();
        let key = fake_key(&secret);
        notify_watchers(&mut s.secret_watches, &key, &secret);
        s.secrets.insert(key, secret);
    }

    /// The Node as last written.
    pub fn node(&self, name: &str) -> Option<Node> {
        self.state().nodes.get(name).cloned()
    }

    /// The Lease as last written.
    pub fn lease(&self, name: &str) -> Option<Lease> {
        self.state().leases.get(name).cloned()
    }

    /// Every status patch of a pod, in order.
    pub fn pod_status_patches(&self, namespace: &str, name: &str) -> Vec<Value> {
        self.state()
            .pod_status
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Pods deleted, as (namespace, name, uid).
    pub fn deleted_pods(&self) -> Vec<(String, String, String)> {
        self.state().deleted_pods.clone()
    }

    /// Events recorded, as (reason, message).
    pub fn events(&self) -> Vec<(String, String)> {
        self.state()
            .events
            .iter()
            .map(|e| {
                (
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Sends a pod event to the stream [`ClusterApi::watch_pods`] returned.
    pub fn send_pod_event(&self, event: PodEvent) {
        if let Some(tx) = self
            .pod_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = tx.unbounded_send(event);
        }
    }

    /// Merge-patches a stored Node (the fake keeps no separate status).
    fn merge_node(&self, name: &str, patch: &Value) -> Result<Node, ApiCallError> {
        let mut s = self.state();
        let node = s
            .nodes
            .get(name)
            .ok_or_else(|| ApiCallError::NotFound(format!("node {name}")))?;
        let new = merge_into(node, patch)?;
        s.nodes.insert(name.to_string(), new.clone());
        Ok(new)
    }

    fn bump(&self) -> String {
        let mut s = self.state();
        s.revision += 1;
        s.revision.to_string()
    }
}

fn fake_key<K: kube::Resource>(o: &K) -> (String, String) {
    let m = o.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

fn notify_watchers<K: Clone>(watchers: &mut FakeWatchers<K>, key: &(String, String), o: &K) {
    watchers.retain(|(k, tx)| {
        k != key
            || tx
                .unbounded_send(ObjectEvent::Applied(Box::new(o.clone())))
                .is_ok()
    });
}

/// A fake watch: the current state as a list, then what [`notify_watchers`] sends; nothing at
/// all when `silent`.
fn fake_watch<K: Clone + Send + 'static>(
    silent: bool,
    watchers: &mut FakeWatchers<K>,
    key: (String, String),
    current: Option<&K>,
) -> BoxStream<'static, ObjectEvent<K>> {
    if silent {
        return futures::stream::pending().boxed();
    }
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let _ = tx.unbounded_send(ObjectEvent::Relist);
    if let Some(o) = current {
        let _ = tx.unbounded_send(ObjectEvent::Applied(Box::new(o.clone())));
    }
    let _ = tx.unbounded_send(ObjectEvent::Synced);
    watchers.push((key, tx));
    rx.boxed()
}

fn merge_into<T: serde::Serialize + serde::de::DeserializeOwned>(
    obj: &T,
    patch: &Value,
) -> Result<T, ApiCallError> {
    let mut v = serde_json::to_value(obj).map_err(|e| ApiCallError::Other(e.to_string()))?;
    json_merge(&mut v, patch);
    serde_json::from_value(v).map_err(|e| ApiCallError::Other(e.to_string()))
}

/// RFC 7386 merge.
fn json_merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[async_trait]
impl ClusterApi for FakeApi {
    async fn cluster_uid(&self) -> Result<String, ApiCallError> {
        self.record("cluster_uid".into());
        Ok("fake-cluster".into())
    }

    async fn get_node(&self, name: &str) -> Result<Option<Node>, ApiCallError> {
        self.record(format!("get_node {name}"));
        Ok(self.state().nodes.get(name).cloned())
    }

    async fn create_node(&self, node: &Node) -> Result<Node, ApiCallError> {
        let name = node.metadata.name.clone().unwrap_or_default();
        self.record(format!("create_node {name}"));
        let rv = self.bump();
        let mut s = self.state();
        if s.nodes.contains_key(&name) {
            return Err(ApiCallError::Conflict(format!("node {name} exists")));
        }
        let mut node = node.clone();
        node.metadata.resource_version = Some(rv);
        let spec = node.spec.get_or_insert_default();
        let index = s.nodes.len();
        spec.pod_cidr = Some(format!("10.42.{index}.0/24"));
        spec.pod_cidrs = Some(vec![format!("10.42.{index}.0/24")]);
        s.nodes.insert(name, node.clone());
        Ok(node)
    }

    async fn patch_node(&self, name: &str, patch: &Value) -> Result<Node, ApiCallError> {
        self.record(format!("patch_node {name}"));
        self.merge_node(name, patch)
    }

    async fn patch_node_status(&self, name: &str, patch: &Value) -> Result<Node, ApiCallError> {
        self.record(format!("patch_node_status {name}"));
        self.merge_node(name, patch)
    }

    async fn get_lease(&self, name: &str) -> Result<Option<Lease>, ApiCallError> {
        self.record(format!("get_lease {name}"));
        Ok(self.state().leases.get(name).cloned())
    }

    async fn create_lease(&self, lease: &Lease) -> Result<Lease, ApiCallError> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        self.record(format!("create_lease {name}"));
        let rv = self.bump();
        let mut lease = lease.clone();
        lease.metadata.resource_version = Some(rv);
        self.state().leases.insert(name, lease.clone());
        Ok(lease)
    }

    async fn replace_lease(&self, lease: &Lease) -> Result<Lease, ApiCallError> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        self.record(format!("replace_lease {name}"));
        let rv = self.bump();
        let mut s = self.state();
        let current = s
            .leases
            .get(&name)
            .ok_or_else(|| ApiCallError::NotFound(format!("lease {name}")))?;
        if current.metadata.resource_version != lease.metadata.resource_version {
            return Err(ApiCallError::Conflict(format!("lease {name} changed")));
        }
        let mut lease = lease.clone();
        lease.metadata.resource_version = Some(rv);
        s.leases.insert(name, lease.clone());
        Ok(lease)
    }

    fn watch_pods(&self, node: &str) -> BoxStream<'static, PodEvent> {
        self.record(format!("watch_pods {node}"));
        let (tx, rx) = futures::channel::mpsc::unbounded();
        *self.pod_events.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx.boxed()
    }

    fn watch_config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> BoxStream<'static, ObjectEvent<ConfigMap>> {
        self.record(format!("watch_config_map {namespace}/{name}"));
        let key = (namespace.to_string(), name.to_string());
        let s = &mut *self.state();
        fake_watch(
            s.silent_watches,
            &mut s.config_map_watches,
            key.clone(),
            s.config_maps.get(&key),
        )
    }

    fn watch_secret(&self, namespace: &str, name: &str) -> BoxStream<'static, ObjectEvent<Secret>> {
        self.record(format!("watch_secret {namespace}/{name}"));
        let key = (namespace.to_string(), name.to_string());
        let s = &mut *self.state();
        fake_watch(
            s.silent_watches,
            &mut s.secret_watches,
            key.clone(),
            s.secrets.get(&key),
        )
    }

    async fn get_config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ApiCallError> {
        self.record(format!("get_config_map {namespace}/{name}"));
        Ok(self
            .state()
            .config_maps
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }

    async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Secret>, ApiCallError> {
        self.record(format!("get_secret {namespace}/{name}"));
        Ok(self
            .state()
            .secrets
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }

    async fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        pod: &Pod,
        _expiration_seconds: i64,
    ) -> Result<String, ApiCallError> {
        self.record(format!("request_token {namespace}/{service_account}"));
        Ok(format!(
            "token-for-{service_account}-{}",
            pod.metadata.name.as_deref().unwrap_or_default()
        ))
    }

    async fn patch_pod_status(
        &self,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<(), ApiCallError> {
        self.record(format!("patch_pod_status {namespace}/{name}"));
        self.state()
            .pod_status
            .entry((namespace.to_string(), name.to_string()))
            .or_default()
            .push(patch.clone());
        Ok(())
    }

    async fn delete_pod(&self, namespace: &str, name: &str, uid: &str) -> Result<(), ApiCallError> {
        self.record(format!("delete_pod {namespace}/{name}"));
        self.state()
            .deleted_pods
            .push((namespace.into(), name.into(), uid.into()));
        Ok(())
    }

    async fn create_event(&self, event: &Event) -> Result<(), ApiCallError> {
        self.record(format!(
            "create_event {}",
            event.reason.as_deref().unwrap_or_default()
        ));
        self.state().events.push(event.clone());
        Ok(())
    }
}
