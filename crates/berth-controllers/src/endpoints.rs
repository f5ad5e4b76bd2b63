//! The Endpoints controller: for every Service with a selector, the Endpoints object of the same
//! name lists the addresses of the selected pods (ready ones in `addresses`, the others in
//! `notReadyAddresses`, all of them ready with `publishNotReadyAddresses`), with the Service's
//! ports resolved against each pod's container ports, grouped into subsets of pods that share
//! the same resolved ports, as Kubernetes' endpoints controller does.
//!
//! Owns the Endpoints of Services that have a selector, and deletes the Endpoints of a Service
//! that is deleted. Must not touch the Endpoints of a Service without a selector (their users
//! keep them, e.g. the API server keeps `default/kubernetes`), and writes only when something
//! changed. The pod selection and port resolution helpers here are shared with the
//! EndpointSlice controller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::sync::watch;

use crate::Context;
use crate::informer::{Change, Informer};
use crate::queue::{self, Key, Next, Queue};

/// The label marking the Endpoints (and EndpointSlices) of a headless Service.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// Endpoints carrying this annotation hold a leader election record and are never removed.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    /// Writing the Endpoints failed.
    #[error("writing endpoints {key}: {source}")]
    Write {
        /// The Service's key.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// The Service's selector, if it selects pods (`None` for a missing or empty selector, as
/// Kubernetes stores an empty one as missing).
pub fn service_selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

/// True if the Service gets its endpoints from pods: it has a selector and is not of type
/// ExternalName.
pub fn manages(service: &Service) -> bool {
    let external = service
        .spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_some_and(|t| t == "ExternalName");
    !external && service_selector(service).is_some()
}

/// True if the Service's selector selects the pod (same namespace, every pair matches).
pub fn selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = service_selector(service) else {
        return false;
    };
    if service.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// True if the Service has no cluster IP (headless).
pub fn headless(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_none_or(|ip| ip.is_empty() || ip == "None")
}

/// True if the Service publishes pods that are not ready.
pub fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// True if the pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    crate::pods::is_ready(pod)
}

/// True if the pod is being deleted.
pub fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's first IPv4 address.
pub fn pod_ipv4(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let from_list = status
        .pod_ips
        .iter()
        .flatten()
        .map(|ip| ip.ip.as_str())
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok());
    let ip = from_list.or_else(|| {
        status
            .pod_ip
            .as_deref()
            .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
    })?;
    Some(ip.to_owned())
}

/// True if the pod belongs among the endpoints (Kubernetes' `ShouldPodBeInEndpoints`): not
/// finished, has an address, and is not being deleted unless `include_terminating`.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    if pod_ipv4(pod).is_none() {
        return false;
    }
    include_terminating || !terminating(pod)
}

/// The pod's port number for a Service port: the number itself, or the container port of that
/// name and protocol (Kubernetes' `FindPort`). `None` when the name resolves to nothing.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) if *n == 0 => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            // Restartable init containers (sidecars) serve too.
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// True if the pod's hostname is published for the Service (`spec.hostname` set and
/// `spec.subdomain` naming the Service).
pub fn sets_hostname(pod: &Pod, service: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        && spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace
}

/// The reference to a pod that endpoints carry.
pub fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// The labels the Endpoints of `service` carry: the Service's, plus the headless mark.
pub fn endpoints_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if headless(service) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    } else {
        labels.remove(LABEL_HEADLESS);
    }
    labels
}

/// An address with its readiness, ordered by IP then pod UID.
type Addr = (String, String, bool);
/// What identifies an address: IP, pod UID.
type AddrKey = (String, String);
/// What identifies a port: name, number, protocol.
type PortKey = (String, i32, String);

fn addr_key(a: &EndpointAddress) -> AddrKey {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
    )
}

/// The Endpoints subsets for `service` from `pods` (the pods of its namespace): every selected
/// pod that belongs among the endpoints, each Service port resolved on it, pods with the same
/// resolved ports grouped into one subset (Kubernetes' `RepackSubsets`), addresses sorted by
/// IP, ports by name. A headless Service without ports lists the addresses alone.
pub fn endpoints_for<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Vec<EndpointSubset> {
    let publish = publishes_not_ready(service);
    let ports: &[ServicePort] = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[]);
    // Each port (or the "no port" sentinel) with the addresses offering it.
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddrKey, Addr>> = BTreeMap::new();
    let mut port_of: BTreeMap<PortKey, EndpointPort> = BTreeMap::new();
    let mut address_of: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    for pod in pods {
        if !selects(service, pod) || !should_be_in_endpoints(pod, publish) {
            continue;
        }
        let Some(ip) = pod_ipv4(pod) else { continue };
        let address = EndpointAddress {
            ip,
            hostname: sets_hostname(pod, service)
                .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
                .flatten(),
            node_name: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            target_ref: Some(pod_ref(pod)),
        };
        let key = addr_key(&address);
        let ready = publish || pod_ready(pod);
        let entry = (key.0.clone(), key.1.clone(), ready);
        address_of.insert(key.clone(), address);
        if ports.is_empty() {
            if headless(service) {
                by_port
                    .entry(None)
                    .or_default()
                    .insert(key.clone(), entry.clone());
            }
            continue;
        }
        for sp in ports {
            let Some(number) = find_port(pod, sp) else {
                continue;
            };
            let ep = EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port: number,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            };
            let pk = port_key(&ep);
            port_of.insert(pk.clone(), ep);
            by_port
                .entry(Some(pk))
                .or_default()
                .insert(key.clone(), entry.clone());
        }
    }
    // Ports offered by the same set of addresses share a subset.
    let mut by_addresses: BTreeMap<Vec<Addr>, Vec<Option<PortKey>>> = BTreeMap::new();
    for (port, addrs) in by_port {
        by_addresses
            .entry(addrs.into_values().collect())
            .or_default()
            .push(port);
    }
    let mut subsets: Vec<EndpointSubset> = by_addresses
        .into_iter()
        .map(|(addrs, ports)| {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (ip, uid, is_ready) in addrs {
                if let Some(a) = address_of.get(&(ip, uid)) {
                    if is_ready {
                        ready.push(a.clone());
                    } else {
                        not_ready.push(a.clone());
                    }
                }
            }
            let ports: Vec<EndpointPort> = ports
                .into_iter()
                .flatten()
                .filter_map(|k| port_of.get(&k).cloned())
                .collect();
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    subsets.sort_by_key(subset_order);
    subsets
}

fn subset_order(s: &EndpointSubset) -> (Vec<PortKey>, Vec<AddrKey>) {
    let ports = s.ports.iter().flatten().map(port_key).collect();
    let addrs = s
        .addresses
        .iter()
        .flatten()
        .chain(s.not_ready_addresses.iter().flatten())
        .map(addr_key)
        .collect();
    (ports, addrs)
}

/// Subsets in the canonical form [`endpoints_for`] produces, so that stored and computed ones
/// compare equal when they say the same (order, empty lists and defaulted fields aside).
pub fn normalize(subsets: Option<&[EndpointSubset]>) -> Vec<EndpointSubset> {
    let mut out: Vec<EndpointSubset> = subsets
        .unwrap_or(&[])
        .iter()
        .map(|s| {
            let sort_addrs = |a: &Option<Vec<EndpointAddress>>| {
                let mut v: Vec<EndpointAddress> = a
                    .iter()
                    .flatten()
                    .cloned()
                    .map(|mut a| {
                        if let Some(r) = a.target_ref.as_mut() {
                            r.resource_version = None;
                        }
                        a.node_name = a.node_name.filter(|n| !n.is_empty());
                        a.hostname = a.hostname.filter(|n| !n.is_empty());
                        a
                    })
                    .collect();
                v.sort_by_key(addr_key);
                (!v.is_empty()).then_some(v)
            };
            let mut ports: Vec<EndpointPort> = s
                .ports
                .iter()
                .flatten()
                .cloned()
                .map(|mut p| {
                    p.name = p.name.filter(|n| !n.is_empty());
                    p.protocol = Some(p.protocol.unwrap_or_else(|| "TCP".into()));
                    p
                })
                .collect();
            ports.sort_by_key(port_key);
            EndpointSubset {
                addresses: sort_addrs(&s.addresses),
                not_ready_addresses: sort_addrs(&s.not_ready_addresses),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .filter(|s| s.addresses.is_some() || s.not_ready_addresses.is_some())
        .collect();
    out.sort_by_key(subset_order);
    out
}

/// Follows Services and their pods for a controller keyed by Service: a Service's change
/// queues it, a pod's change the Services that select it before or after. A resync calls `all`.
pub async fn follow_services(
    services: &Informer<Service>,
    pods: &Informer<Pod>,
    shutdown: &watch::Receiver<bool>,
    queue: &Queue<Key>,
    all: impl Fn() + Sync,
) {
    let follow_services = services.follow(shutdown, |c| match c {
        Change::Applied { new: s, .. } | Change::Deleted(s) => queue.add(Key::of(s.as_ref())),
        Change::Resynced => all(),
    });
    let follow_pods = pods.follow(shutdown, |c| {
        services.queue_selecting_change(queue, c, selects, &all);
    });
    tokio::join!(follow_services, follow_pods);
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
    let queue: Arc<Queue<Key>> = Queue::new();

    let feed = {
        let queue = Arc::clone(&queue);
        let shutdown = shutdown.clone();
        async move {
            let all = || {
                for s in services.filter(manages) {
                    queue.add(Key::of(s.as_ref()));
                }
            };
            let follow_services = follow_services(&services, &pods, &shutdown, &queue, all);
            let follow_endpoints = endpoints.follow(&shutdown, |c| match c {
                // Someone changed or removed Endpoints this controller keeps.
                Change::Applied { new: e, .. } | Change::Deleted(e) => {
                    let key = Key::of(e.as_ref());
                    if services
                        .get(&key.namespace, &key.name)
                        .is_some_and(|s| manages(&s))
                    {
                        queue.add(key);
                    }
                }
                Change::Resynced => all(),
            });
            services.ready().await;
            pods.ready().await;
            endpoints.ready().await;
            all();
            // Endpoints left behind by Services deleted while no controller ran.
            for e in endpoints.list() {
                let key = Key::of(e.as_ref());
                if services.get(&key.namespace, &key.name).is_none() {
                    queue.add(key);
                }
            }
            tokio::join!(follow_services, follow_endpoints);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers("endpoints", queue, 2, shutdown, move |key| {
            let ctx = Arc::clone(&ctx);
            async move { reconcile(&ctx, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

async fn reconcile(ctx: &Context, key: &Key) -> Result<Next, EndpointsError> {
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let existing = ctx
        .informers
        .get::<Endpoints>()
        .get(&key.namespace, &key.name);
    let err = |source| EndpointsError::Write {
        key: key.clone(),
        source,
    };
    let Some(service) = ctx
        .informers
        .get::<Service>()
        .get(&key.namespace, &key.name)
    else {
        // The Service is gone: so are its Endpoints (but not a leader election record).
        let Some(e) = existing else {
            return Ok(Next::Done);
        };
        let leader = e
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
        if leader {
            return Ok(Next::Done);
        }
        return match api.delete(&key.name, &DeleteParams::default()).await {
            Ok(_) => Ok(Next::Done),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Next::Done),
            Err(e) => Err(err(e)),
        };
    };
    if !manages(&service) || service.metadata.deletion_timestamp.is_some() {
        return Ok(Next::Done);
    }
    let pods = ctx
        .informers
        .get::<Pod>()
        .filter(|p| p.metadata.namespace.as_deref() == Some(key.namespace.as_str()));
    let subsets = endpoints_for(&service, pods.iter().map(|p| p.as_ref()));
    let labels = endpoints_labels(&service);
    match existing {
        Some(e)
            if normalize(e.subsets.as_deref()) == subsets
                && e.metadata.labels.clone().unwrap_or_default() == labels =>
        {
            Ok(Next::Done)
        }
        Some(e) => {
            let mut e = (*e).clone();
            e.subsets = Some(subsets);
            e.metadata.labels = Some(labels);
            match api.replace(&key.name, &PostParams::default(), &e).await {
                Ok(_) => Ok(Next::Done),
                // A newer version is on its way through the informer; it queues us again.
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Next::After(RETRY_SOON)),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Next::After(RETRY_SOON)),
                Err(e) => Err(err(e)),
            }
        }
        None => {
            let e = Endpoints {
                metadata: ObjectMeta {
                    name: Some(key.name.clone()),
                    namespace: Some(key.namespace.clone()),
                    labels: Some(labels),
                    ..ObjectMeta::default()
                },
                subsets: Some(subsets),
            };
            match api.create(&PostParams::default(), &e).await {
                Ok(_) => Ok(Next::Done),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Next::After(RETRY_SOON)),
                // The namespace is going away.
                Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(Next::Done),
                Err(e) => Err(err(e)),
            }
        }
    }
}

/// How soon a reconcile that lost a write race looks again.
const RETRY_SOON: Duration = Duration::from_millis(200);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodIP, PodSpec, PodStatus, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    pub(crate) fn service(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                labels: Some(BTreeMap::from([("team".into(), "a".into())])),
                uid: Some("svc-uid".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                cluster_ip: Some("10.43.0.10".into()),
                ports: Some(ports),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    pub(crate) fn port(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: (!name.is_empty()).then(|| name.into()),
            port,
            target_port: Some(target),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }
    }

    pub(crate) fn pod(name: &str, ip: Option<&str>, ready: bool, http_port: i32) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: http_port,
                        protocol: Some("TCP".into()),
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: ip.map(str::to_string),
                pod_ips: ip.map(|ip| vec![PodIP { ip: ip.into() }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    fn ips(a: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        a.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_pods_are_listed_apart_with_named_ports_resolved() {
        let svc = service(vec![port("web", 80, IntOrString::String("http".into()))]);
        let pods = [
            pod("b", Some("10.42.0.6"), true, 8080),
            pod("a", Some("10.42.0.5"), true, 8080),
            pod("c", Some("10.42.0.7"), false, 8080),
            pod("no-ip", None, false, 8080),
        ];
        let subsets = endpoints_for(&svc, pods.iter());
        assert_eq!(subsets.len(), 1);
        let s = &subsets[0];
        assert_eq!(ips(&s.addresses), ["10.42.0.5", "10.42.0.6"]);
        assert_eq!(ips(&s.not_ready_addresses), ["10.42.0.7"]);
        let ports = s.ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 8080);
        assert_eq!(ports[0].name.as_deref(), Some("web"));
        let a = &s.addresses.as_ref().unwrap()[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let r = a.target_ref.as_ref().unwrap();
        assert_eq!(
            (r.kind.as_deref(), r.name.as_deref(), r.uid.as_deref()),
            (Some("Pod"), Some("a"), Some("uid-a"))
        );
        // Computing again from the stored form says "unchanged".
        assert_eq!(normalize(Some(&subsets)), subsets);
    }

    #[test]
    fn pods_resolving_a_named_port_differently_get_their_own_subsets() {
        let svc = service(vec![
            port("web", 80, IntOrString::String("http".into())),
            port("admin", 9000, IntOrString::Int(9000)),
        ]);
        let pods = [
            pod("a", Some("10.42.0.5"), true, 8080),
            pod("b", Some("10.42.0.6"), true, 8081),
        ];
        // As RepackSubsets does: each port goes with the set of addresses offering it.
        let subsets = endpoints_for(&svc, pods.iter());
        let summary: Vec<(Vec<&str>, Vec<i32>)> = subsets
            .iter()
            .map(|s| {
                (
                    ips(&s.addresses),
                    s.ports.iter().flatten().map(|p| p.port).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (vec!["10.42.0.5", "10.42.0.6"], vec![9000]),
                (vec!["10.42.0.5"], vec![8080]),
                (vec!["10.42.0.6"], vec![8081]),
            ]
        );
    }

    #[test]
    fn unresolvable_ports_and_finished_or_deleted_pods_are_left_out() {
        let svc = service(vec![port("x", 80, IntOrString::String("nope".into()))]);
        let pods = [pod("a", Some("10.42.0.5"), true, 8080)];
        assert!(endpoints_for(&svc, pods.iter()).is_empty());

        let svc = service(vec![port("", 80, IntOrString::Int(8080))]);
        let mut done = pod("done", Some("10.42.0.8"), false, 8080);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let mut going = pod("going", Some("10.42.0.9"), true, 8080);
        going.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        let mut other = pod("other", Some("10.42.0.10"), true, 8080);
        other.metadata.labels = Some(BTreeMap::from([("app".into(), "db".into())]));
        assert!(endpoints_for(&svc, [done, going.clone(), other].iter()).is_empty());

        // publishNotReadyAddresses: terminating and unready pods are listed, as ready.
        let mut publish = svc.clone();
        publish.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let unready = pod("u", Some("10.42.0.11"), false, 8080);
        let subsets = endpoints_for(&publish, [going, unready].iter());
        assert_eq!(ips(&subsets[0].addresses), ["10.42.0.11", "10.42.0.9"]);
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn headless_services_without_ports_list_addresses_alone() {
        let mut svc = service(vec![]);
        svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        let mut p = pod("a", Some("10.42.0.5"), true, 8080);
        p.spec.as_mut().unwrap().hostname = Some("a".into());
        p.spec.as_mut().unwrap().subdomain = Some("web".into());
        let subsets = endpoints_for(&svc, [p].iter());
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        assert_eq!(
            subsets[0].addresses.as_ref().unwrap()[0]
                .hostname
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            endpoints_labels(&svc)
                .get(LABEL_HEADLESS)
                .map(String::as_str),
            Some("")
        );
        // With a cluster IP and no ports there is nothing to list.
        let svc = service(vec![]);
        assert!(endpoints_for(&svc, [pod("a", Some("10.42.0.5"), true, 1)].iter()).is_empty());
    }

    #[test]
    fn services_without_selector_are_not_managed() {
        let mut svc = service(vec![]);
        svc.spec.as_mut().unwrap().selector = None;
        assert!(!manages(&svc));
        svc.spec.as_mut().unwrap().selector = Some(BTreeMap::new());
        assert!(!manages(&svc));
        let mut ext = service(vec![]);
        ext.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
        assert!(!manages(&ext));
        assert!(manages(&service(vec![])));
    }

    #[test]
    fn stored_subsets_in_another_order_compare_equal() {
        let svc = service(vec![port("web", 80, IntOrString::String("http".into()))]);
        let pods = [
            pod("a", Some("10.42.0.5"), true, 8080),
            pod("b", Some("10.42.0.6"), true, 8080),
        ];
        let subsets = endpoints_for(&svc, pods.iter());
        let mut stored = subsets.clone();
        stored[0].addresses.as_mut().unwrap().reverse();
        stored[0].ports.as_mut().unwrap()[0].protocol = None;
        stored.push(EndpointSubset::default());
        assert_eq!(normalize(Some(&stored)), subsets);
    }
}
