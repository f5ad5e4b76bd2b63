//! The EndpointSlice controller: for every Service with a selector, `discovery.k8s.io/v1`
//! EndpointSlices (address type IPv4, at most [`MAX_ENDPOINTS_PER_SLICE`] endpoints each) list
//! the selected pods with their conditions (ready, serving, terminating), node and zone, one
//! group of slices per set of resolved ports, as Kubernetes' EndpointSlice controller does.
//! A Service that selects nothing keeps one empty placeholder slice.
//!
//! Owns the slices labelled `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io` (owned by their Service, labelled
//! `kubernetes.io/service-name`), and nothing else: slices of Services without a selector and
//! slices managed by others are left alone. Writes only when something changed; endpoints stay
//! in the slice they are in, so that one pod's change rewrites one slice. The planning is the
//! pure [`plan`]; the reconciler waits until its own writes are in the informer's cache before
//! it finishes, so that a cache that lags never makes it create a slice twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use tokio::sync::watch;

use crate::Context;
use crate::endpoints::{
    find_port, follow_services, headless, manages, pod_ipv4, pod_ready, pod_ref, selects,
    sets_hostname, should_be_in_endpoints, terminating,
};
use crate::informer::Change;
use crate::queue::{self, Key, Next, Queue};

/// The label naming a slice's Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The label naming a slice's manager.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`LABEL_MANAGED_BY`].
pub const MANAGER: &str = "endpointslice-controller.k8s.io";
/// The most endpoints one slice holds (Kubernetes' `--max-endpoints-per-slice` default).
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The node label giving an endpoint's zone.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum EndpointSliceError {
    /// Creating, updating or deleting a slice failed.
    #[error("{action} an EndpointSlice of service {key}: {source}")]
    Write {
        /// What was being done.
        action: &'static str,
        /// The Service's key.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// A resolved port of a slice, in a form that orders.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlicePort {
    /// The Service port's name ("" when unnamed).
    pub name: String,
    /// The port number on the pods.
    pub port: i32,
    /// The protocol.
    pub protocol: String,
    /// The application protocol.
    pub app_protocol: Option<String>,
}

impl SlicePort {
    /// The port as the API has it.
    pub fn to_api(&self) -> EndpointPort {
        EndpointPort {
            name: Some(self.name.clone()),
            port: Some(self.port),
            protocol: Some(self.protocol.clone()),
            app_protocol: self.app_protocol.clone(),
        }
    }

    /// The port from the API's form, with the defaults the API server applies.
    pub fn from_api(p: &EndpointPort) -> Self {
        Self {
            name: p.name.clone().unwrap_or_default(),
            port: p.port.unwrap_or_default(),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            app_protocol: p.app_protocol.clone(),
        }
    }
}

/// A set of resolved ports (sorted), the key grouping endpoints into slices.
pub type Ports = Vec<SlicePort>;

/// The endpoints of `service` from the pods of its namespace, grouped by their resolved ports:
/// every selected pod with an IPv4 address that is not finished, terminating ones included,
/// with ready = (ready and not terminating) or publishNotReadyAddresses, serving = ready,
/// terminating = being deleted, its node and the node's zone (`zone_of`).
pub fn endpoints_by_ports<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
    zone_of: impl Fn(&str) -> Option<String>,
) -> BTreeMap<Ports, Vec<Endpoint>> {
    let publish = crate::endpoints::publishes_not_ready(service);
    let service_ports: &[ServicePort] = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[]);
    let mut out: BTreeMap<Ports, Vec<Endpoint>> = BTreeMap::new();
    for pod in pods {
        if !selects(service, pod) || !should_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pod_ipv4(pod) else { continue };
        let ports: Ports = service_ports
            .iter()
            .filter_map(|sp| {
                let port = find_port(pod, sp)?;
                Some(SlicePort {
                    name: sp.name.clone().unwrap_or_default(),
                    port,
                    protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        let serving = pod_ready(pod);
        let is_terminating = terminating(pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let endpoint = Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(publish || (serving && !is_terminating)),
                serving: Some(serving),
                terminating: Some(is_terminating),
            }),
            hostname: sets_hostname(pod, service)
                .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
                .flatten(),
            zone: node.as_deref().and_then(&zone_of),
            node_name: node,
            target_ref: Some(pod_ref(pod)),
            ..Endpoint::default()
        };
        out.entry(sorted_ports(ports)).or_default().push(endpoint);
    }
    for eps in out.values_mut() {
        eps.sort_by_key(endpoint_key);
    }
    out
}

fn sorted_ports(mut ports: Ports) -> Ports {
    ports.sort();
    ports
}

/// What identifies an endpoint across changes: its pod, else its address.
fn endpoint_key(e: &Endpoint) -> String {
    e.target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_else(|| e.addresses.first().cloned().unwrap_or_default())
}

/// The labels of the Service's slices: the Service's own (but the reserved ones), the headless
/// mark, the Service's name and this controller as manager.
pub fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| {
            k != LABEL_SERVICE_NAME
                && k != LABEL_MANAGED_BY
                && k != crate::endpoints::LABEL_HEADLESS
        })
        .collect();
    if headless(service) {
        labels.insert(crate::endpoints::LABEL_HEADLESS.into(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), MANAGER.into());
    labels
}

/// The owner reference of a slice to its Service.
pub fn owner(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The writes that bring a Service's slices to what they should be.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// New slices (named by `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Existing slices with new content (carrying their resourceVersion).
    pub update: Vec<EndpointSlice>,
    /// Names of slices to delete.
    pub delete: Vec<String>,
}

impl Plan {
    /// True if nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

fn slice_ports(s: &EndpointSlice) -> Ports {
    sorted_ports(s.ports.iter().flatten().map(SlicePort::from_api).collect())
}

fn api_ports(ports: &Ports) -> Option<Vec<EndpointPort>> {
    Some(ports.iter().map(SlicePort::to_api).collect())
}

/// Plans the writes from the wanted endpoints (by ports, from [`endpoints_by_ports`]) and the
/// Service's `existing` slices (those this controller manages). Endpoints stay in their slice
/// when they can; new ones fill slices with room before new slices are made; emptied slices
/// are deleted; with no endpoints at all one empty placeholder slice remains.
pub fn plan(
    service: &Service,
    mut want: BTreeMap<Ports, Vec<Endpoint>>,
    existing: &[EndpointSlice],
    max: usize,
) -> Plan {
    let max = max.max(1);
    let labels = slice_labels(service);
    let owners = vec![owner(service)];
    let prefix = format!("{}-", service.metadata.name.as_deref().unwrap_or("slice"));
    let namespace = service.metadata.namespace.clone();
    let mut out = Plan::default();
    let placeholder = want.is_empty();
    if placeholder {
        want.insert(Vec::new(), Vec::new());
    }
    let mut existing: Vec<&EndpointSlice> = existing.iter().collect();
    existing.sort_by_key(|s| s.metadata.name.clone());
    let mut visited: BTreeSet<String> = BTreeSet::new();
    for (ports, eps) in want {
        let mut remaining: BTreeMap<String, Endpoint> =
            eps.into_iter().map(|e| (endpoint_key(&e), e)).collect();
        // Existing slices with these ports keep the endpoints still wanted, in their order.
        let mut slices: Vec<(&EndpointSlice, Vec<Endpoint>)> = Vec::new();
        for s in existing
            .iter()
            .filter(|s| s.address_type == "IPv4" && slice_ports(s) == ports)
        {
            visited.insert(s.metadata.name.clone().unwrap_or_default());
            let kept: Vec<Endpoint> = s
                .endpoints
                .iter()
                .filter_map(|e| remaining.remove(&endpoint_key(e)))
                .collect();
            slices.push((s, kept));
        }
        // New endpoints fill slices with room first.
        let mut fresh = remaining.into_values();
        for (_, eps) in slices.iter_mut() {
            while eps.len() < max {
                match fresh.next() {
                    Some(e) => eps.push(e),
                    None => break,
                }
            }
        }
        let rest: Vec<Endpoint> = fresh.collect();
        let mut kept_any = false;
        for (slice, eps) in slices {
            // The first emptied slice stays as the placeholder when nothing is left.
            let placeholder_needed = placeholder && !kept_any;
            if eps.is_empty() && !placeholder_needed {
                out.delete
                    .push(slice.metadata.name.clone().unwrap_or_default());
                continue;
            }
            kept_any = true;
            let mut next = slice.clone();
            next.endpoints = eps;
            next.ports = api_ports(&ports);
            next.metadata.labels = Some(labels.clone());
            next.metadata.owner_references = Some(owners.clone());
            if differs(slice, &next) {
                out.update.push(next);
            }
        }
        let mut chunks: Vec<Vec<Endpoint>> = rest.chunks(max).map(<[Endpoint]>::to_vec).collect();
        if chunks.is_empty() && placeholder && !kept_any {
            chunks.push(Vec::new());
        }
        for eps in chunks {
            out.create.push(EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(prefix.clone()),
                    namespace: namespace.clone(),
                    labels: Some(labels.clone()),
                    owner_references: Some(owners.clone()),
                    ..ObjectMeta::default()
                },
                address_type: "IPv4".into(),
                endpoints: eps,
                ports: api_ports(&ports),
            });
        }
    }
    // Slices whose ports no endpoint offers any more.
    for s in existing {
        let name = s.metadata.name.clone().unwrap_or_default();
        if !visited.contains(&name) {
            out.delete.push(name);
        }
    }
    out
}

/// True if the content this controller owns differs.
fn differs(old: &EndpointSlice, new: &EndpointSlice) -> bool {
    old.endpoints != new.endpoints
        || slice_ports(old) != slice_ports(new)
        || old.metadata.labels != new.metadata.labels
        || old.metadata.owner_references != new.metadata.owner_references
}

/// The slices of the Service `key` this controller manages, from the cache.
fn managed_slices(ctx: &Context, key: &Key) -> Vec<EndpointSlice> {
    ctx.informers
        .get::<EndpointSlice>()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                && is_managed(s)
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_SERVICE_NAME))
                    == Some(&key.name)
        })
        .iter()
        .map(|s| (**s).clone())
        .collect()
}

/// True if this controller manages the slice.
pub fn is_managed(s: &EndpointSlice) -> bool {
    s.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_MANAGED_BY))
        .is_some_and(|m| m == MANAGER)
}

/// The Service (by key) a managed slice belongs to.
fn service_of(slice: &EndpointSlice) -> Option<Key> {
    let name = slice.metadata.labels.as_ref()?.get(LABEL_SERVICE_NAME)?;
    is_managed(slice).then(|| {
        Key::new(
            slice.metadata.namespace.clone().unwrap_or_default(),
            name.clone(),
        )
    })
}

fn zone(node: &Node) -> Option<&String> {
    node.metadata.labels.as_ref()?.get(LABEL_ZONE)
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let slices = ctx.informers.get::<EndpointSlice>();
    let nodes = ctx.informers.get::<Node>();
    let queue: Arc<Queue<Key>> = Queue::new();

    let feed = {
        let queue = Arc::clone(&queue);
        let shutdown = shutdown.clone();
        async move {
            let all = || services.queue_all(&queue);
            let follow_services = follow_services(&services, &pods, &shutdown, &queue, all);
            let follow_slices = slices.follow(&shutdown, |c| match c {
                Change::Applied { new: s, .. } | Change::Deleted(s) => {
                    if let Some(k) = service_of(&s) {
                        queue.add(k);
                    }
                }
                Change::Resynced => all(),
            });
            let follow_nodes = nodes.follow(&shutdown, |c| match c {
                // A node's zone moves every endpoint on it.
                Change::Applied {
                    old: Some(old),
                    new,
                } if zone(&old) != zone(&new) => all(),
                Change::Resynced => all(),
                _ => {}
            });
            services.ready().await;
            pods.ready().await;
            slices.ready().await;
            nodes.ready().await;
            all();
            // Slices left behind by Services deleted while no controller ran.
            slices
                .list()
                .iter()
                .filter_map(|s| service_of(s))
                .for_each(|k| queue.add(k));
            tokio::join!(follow_services, follow_slices, follow_nodes);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers("endpointslice", queue, 2, shutdown, move |key| {
            let ctx = Arc::clone(&ctx);
            async move { reconcile(&ctx, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

/// How long a reconcile waits for its own writes to reach the cache.
const CACHE_WAIT: Duration = Duration::from_secs(5);

async fn reconcile(ctx: &Context, key: &Key) -> Result<Next, EndpointSliceError> {
    let existing = managed_slices(ctx, key);
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let err = |action, source| EndpointSliceError::Write {
        action,
        key: key.clone(),
        source,
    };
    let service = ctx
        .informers
        .get::<Service>()
        .get(&key.namespace, &key.name);
    let plan = match service {
        Some(s) if manages(&s) && s.metadata.deletion_timestamp.is_none() => {
            let pods = ctx
                .informers
                .get::<Pod>()
                .filter(|p| p.metadata.namespace.as_deref() == Some(key.namespace.as_str()));
            let nodes = ctx.informers.get::<Node>();
            let want = endpoints_by_ports(&s, pods.iter().map(|p| p.as_ref()), |n| {
                nodes.get("", n).and_then(|n| zone(&n).cloned())
            });
            // Slices made for an earlier Service of the same name go.
            let (ours, stale): (Vec<EndpointSlice>, Vec<EndpointSlice>) =
                existing.into_iter().partition(|sl| {
                    sl.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .all(|o| Some(&o.uid) == s.metadata.uid.as_ref())
                });
            let mut plan = plan(&s, want, &ours, MAX_ENDPOINTS_PER_SLICE);
            plan.delete
                .extend(stale.iter().filter_map(|s| s.metadata.name.clone()));
            plan
        }
        // The Service is gone or selects nothing (any more): its slices go.
        _ => Plan {
            delete: existing
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .collect(),
            ..Plan::default()
        },
    };
    if plan.is_empty() {
        return Ok(Next::Done);
    }
    let pp = PostParams::default();
    let mut written: Vec<(String, Option<String>)> = Vec::new();
    for s in &plan.update {
        let name = s.metadata.name.clone().unwrap_or_default();
        match api.replace(&name, &pp, s).await {
            Ok(n) => written.push((name, n.metadata.resource_version)),
            // The cache lags behind: look again once it caught up.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
                return Ok(Next::After(RETRY_SOON));
            }
            Err(e) => return Err(err("updating", e)),
        }
    }
    for s in &plan.create {
        match api.create(&pp, s).await {
            Ok(n) => written.push((
                n.metadata.name.unwrap_or_default(),
                n.metadata.resource_version,
            )),
            Err(kube::Error::Api(e)) if e.code == 403 || e.code == 404 => return Ok(Next::Done),
            Err(e) => return Err(err("creating", e)),
        }
    }
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => written.push((name.clone(), None)),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(err("deleting", e)),
        }
    }
    wait_cached(ctx, &key.namespace, &written).await;
    Ok(Next::Done)
}

/// How soon a reconcile that lost a write race looks again.
const RETRY_SOON: Duration = Duration::from_millis(200);

/// Waits (up to [`CACHE_WAIT`]) until the cache holds each written slice at its new
/// resourceVersion (or no longer holds a deleted one).
async fn wait_cached(ctx: &Context, namespace: &str, written: &[(String, Option<String>)]) {
    let slices = ctx.informers.get::<EndpointSlice>();
    let caught_up = || {
        written.iter().all(|(name, rv)| {
            let cached = slices.get(namespace, name);
            match (rv, cached) {
                (None, c) => c.is_none(),
                (Some(_), None) => false,
                (Some(rv), Some(c)) => {
                    let have = c.metadata.resource_version.as_deref().unwrap_or_default();
                    match (have.parse::<u64>(), rv.parse::<u64>()) {
                        (Ok(h), Ok(w)) => h >= w,
                        _ => have == rv,
                    }
                }
            }
        })
    };
    let deadline = tokio::time::Instant::now() + CACHE_WAIT;
    while !caught_up() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::tests::{pod, port, service};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn named(mut s: EndpointSlice, name: &str) -> EndpointSlice {
        s.metadata.name = Some(name.into());
        s.metadata.generate_name = None;
        s
    }

    fn addrs(s: &EndpointSlice) -> Vec<&str> {
        s.endpoints
            .iter()
            .map(|e| e.addresses[0].as_str())
            .collect()
    }

    fn web() -> Service {
        service(vec![port("web", 80, IntOrString::String("http".into()))])
    }

    #[test]
    fn endpoints_carry_conditions_node_zone_and_resolved_ports() {
        let svc = web();
        let mut going = pod("c", Some("10.42.0.7"), true, 8080);
        going.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        let pods = [
            pod("a", Some("10.42.0.5"), true, 8080),
            pod("b", Some("10.42.0.6"), false, 8080),
            going,
        ];
        let by = endpoints_by_ports(&svc, pods.iter(), |n| (n == "n1").then(|| "z1".into()));
        assert_eq!(by.len(), 1);
        let (ports, eps) = by.iter().next().unwrap();
        assert_eq!(ports[0].port, 8080);
        assert_eq!(ports[0].name, "web");
        let conds: Vec<(bool, bool, bool)> = eps
            .iter()
            .map(|e| {
                let c = e.conditions.as_ref().unwrap();
                (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
            })
            .collect();
        // Sorted by pod UID: a, b, c.
        assert_eq!(
            conds,
            [
                (true, true, false),
                (false, false, false),
                (false, true, true)
            ]
        );
        assert_eq!(eps[0].zone.as_deref(), Some("z1"));
        assert_eq!(eps[0].node_name.as_deref(), Some("n1"));
    }

    #[test]
    fn a_new_service_gets_slices_of_at_most_max_endpoints() {
        let svc = web();
        let pods: Vec<Pod> = (0..5)
            .map(|i| pod(&format!("p{i}"), Some(&format!("10.42.0.{i}")), true, 8080))
            .collect();
        let want = endpoints_by_ports(&svc, pods.iter(), |_| None);
        let p = plan(&svc, want, &[], 2);
        assert_eq!(p.create.len(), 3);
        assert!(p.update.is_empty() && p.delete.is_empty());
        let s = &p.create[0];
        assert_eq!(s.address_type, "IPv4");
        assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
        let labels = s.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_SERVICE_NAME], "web");
        assert_eq!(labels[LABEL_MANAGED_BY], MANAGER);
        assert_eq!(labels["team"], "a");
        let o = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((o.kind.as_str(), o.uid.as_str()), ("Service", "svc-uid"));
        assert_eq!(o.controller, Some(true));
        assert_eq!(
            p.create
                .iter()
                .map(|s| s.endpoints.len())
                .collect::<Vec<_>>(),
            [2, 2, 1]
        );
    }

    #[test]
    fn an_unchanged_service_plans_nothing_and_one_change_rewrites_one_slice() {
        let svc = web();
        let pods: Vec<Pod> = (0..4)
            .map(|i| pod(&format!("p{i}"), Some(&format!("10.42.0.{i}")), true, 8080))
            .collect();
        let want = endpoints_by_ports(&svc, pods.iter(), |_| None);
        let first = plan(&svc, want.clone(), &[], 2);
        let stored: Vec<EndpointSlice> = first
            .create
            .into_iter()
            .enumerate()
            .map(|(i, s)| named(s, &format!("web-{i}")))
            .collect();
        assert!(plan(&svc, want, &stored, 2).is_empty());

        // p3 turns unready and p0 goes away: p3's slice is rewritten, p0's slice loses it.
        let mut changed = pods.clone();
        changed.remove(0);
        let p3 = changed
            .iter_mut()
            .find(|p| p.metadata.name.as_deref() == Some("p3"))
            .unwrap();
        p3.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        let want = endpoints_by_ports(&svc, changed.iter(), |_| None);
        let p = plan(&svc, want, &stored, 2);
        assert!(p.create.is_empty() && p.delete.is_empty(), "{p:?}");
        assert_eq!(p.update.len(), 2);
        assert_eq!(addrs(&p.update[0]), ["10.42.0.1"]);
        assert_eq!(addrs(&p.update[1]), ["10.42.0.2", "10.42.0.3"]);

        // A new pod fills the slice with room rather than making a new one.
        let mut more = pods.clone();
        more.remove(0);
        more.push(pod("p9", Some("10.42.0.9"), true, 8080));
        let want = endpoints_by_ports(&svc, more.iter(), |_| None);
        let p = plan(&svc, want, &stored, 2);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(addrs(&p.update[0]), ["10.42.0.1", "10.42.0.9"]);
    }

    #[test]
    fn no_endpoints_leave_one_placeholder_and_changed_ports_replace_slices() {
        let svc = web();
        let pods: Vec<Pod> = (0..3)
            .map(|i| pod(&format!("p{i}"), Some(&format!("10.42.0.{i}")), true, 8080))
            .collect();
        let want = endpoints_by_ports(&svc, pods.iter(), |_| None);
        let stored: Vec<EndpointSlice> = plan(&svc, want, &[], 2)
            .create
            .into_iter()
            .enumerate()
            .map(|(i, s)| named(s, &format!("web-{i}")))
            .collect();
        // As Kubernetes does: the slices go, an empty placeholder without ports comes.
        let p = plan(&svc, BTreeMap::new(), &stored, 2);
        assert_eq!(p.delete, ["web-0", "web-1"]);
        assert!(p.update.is_empty());
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty());
        assert_eq!(p.create[0].ports.as_deref(), Some(&[][..]));
        // The placeholder stays as it is.
        let placeholder = named(p.create[0].clone(), "web-2");
        assert!(plan(&svc, BTreeMap::new(), &[placeholder], 2).is_empty());
        // No slices at all: a placeholder is created.
        let p = plan(&svc, BTreeMap::new(), &[], 2);
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty());

        // The target port changes: new slices, the old ones go.
        let moved: Vec<Pod> = (0..3)
            .map(|i| pod(&format!("p{i}"), Some(&format!("10.42.0.{i}")), true, 9090))
            .collect();
        let want = endpoints_by_ports(&svc, moved.iter(), |_| None);
        let p = plan(&svc, want, &stored, 2);
        assert_eq!(p.create.len(), 2);
        assert_eq!(p.delete, ["web-0", "web-1"]);
    }
}
