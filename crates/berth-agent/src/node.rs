//! The Node object and the node's heartbeat: registration, status and Lease.
//!
//! Owns what the Node says about this machine (labels, capacity and allocatable, addresses,
//! nodeInfo, daemon endpoint, conditions Ready/MemoryPressure/DiskPressure/PIDPressure with their
//! transition times) and the Lease in `kube-node-lease` renewed every few seconds. Must not run
//! pods (that is `pod`) and must not decide the pod CIDR (the API server assigns it).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use serde_json::{Value, json};

use crate::api::{ApiCallError, ClusterApi};
use crate::config::AgentConfig;
use crate::host::{Host, HostError, HostInfo, HostUsage};

/// Namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Pods per node, as the kubelet's default `maxPods`.
pub const MAX_PODS: u32 = 110;

/// Errors of node registration and heartbeat.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An API call failed.
    #[error("{op}: {source}")]
    Api {
        /// What was being done.
        op: String,
        /// The cause.
        #[source]
        source: ApiCallError,
    },
    /// Host facts could not be read.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The API server did not give the node a pod CIDR.
    #[error("the API server assigned no pod CIDR to node {0}")]
    NoPodCidr(String),
}

fn api_err(op: impl Into<String>) -> impl FnOnce(ApiCallError) -> NodeError {
    let op = op.into();
    move |source| NodeError::Api { op, source }
}

/// The container engine's health, as the node's Ready condition reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeHealth {
    /// The engine answers; its `docker://VERSION`.
    Up(String),
    /// The engine does not answer, with why.
    Down(String),
}

/// Condition values computed from the machine and the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ConditionState {
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: String,
}

fn conditions(usage: &HostUsage, health: &RuntimeHealth) -> Vec<ConditionState> {
    let pressure = |type_, on: bool, yes, no, msg_yes: &str, msg_no: &str| ConditionState {
        type_,
        status: if on { "True" } else { "False" },
        reason: if on { yes } else { no },
        message: if on { msg_yes.into() } else { msg_no.into() },
    };
    let ready = match health {
        RuntimeHealth::Up(_) => ConditionState {
            type_: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "kubelet is posting ready status".into(),
        },
        RuntimeHealth::Down(why) => ConditionState {
            type_: "Ready",
            status: "False",
            reason: "KubeletNotReady",
            message: format!("container runtime is down: {why}"),
        },
    };
    vec![
        pressure(
            "MemoryPressure",
            usage.memory_pressure(),
            "KubeletHasInsufficientMemory",
            "KubeletHasSufficientMemory",
            "kubelet has insufficient memory available",
            "kubelet has sufficient memory available",
        ),
        pressure(
            "DiskPressure",
            usage.disk_pressure(),
            "KubeletHasDiskPressure",
            "KubeletHasNoDiskPressure",
            "kubelet has disk pressure",
            "kubelet has no disk pressure",
        ),
        pressure(
            "PIDPressure",
            usage.pid_pressure(),
            "KubeletHasInsufficientPID",
            "KubeletHasSufficientPID",
            "kubelet has insufficient PID available",
            "kubelet has sufficient PID available",
        ),
        ready,
    ]
}

/// The well-known and configured labels of the node.
pub fn node_labels(config: &AgentConfig, info: &HostInfo) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (
            "kubernetes.io/hostname".to_string(),
            config.node_name.clone(),
        ),
        ("kubernetes.io/os".to_string(), info.os.clone()),
        ("kubernetes.io/arch".to_string(), info.arch.clone()),
        ("beta.kubernetes.io/os".to_string(), info.os.clone()),
        ("beta.kubernetes.io/arch".to_string(), info.arch.clone()),
    ]);
    labels.extend(config.node_labels.clone());
    labels
}

/// Keeps the Node and its Lease true to the machine.
pub struct NodeStatus {
    api: Arc<dyn ClusterApi>,
    host: Arc<dyn Host>,
    config: AgentConfig,
    info: HostInfo,
    /// Conditions last written, with their transition times.
    last: BTreeMap<&'static str, (ConditionState, Timestamp)>,
    lease: Option<Lease>,
}

impl NodeStatus {
    /// Reads the machine's static facts.
    pub fn new(
        api: Arc<dyn ClusterApi>,
        host: Arc<dyn Host>,
        config: AgentConfig,
    ) -> Result<Self, NodeError> {
        let info = host.info()?;
        Ok(Self {
            api,
            host,
            config,
            info,
            last: BTreeMap::new(),
            lease: None,
        })
    }

    /// Registers the node (creating it, or updating the labels of the existing one) and writes
    /// its status; returns the Node with its pod CIDR.
    pub async fn register(&mut self, health: &RuntimeHealth) -> Result<Node, NodeError> {
        let name = self.config.node_name.clone();
        let labels = node_labels(&self.config, &self.info);
        let existing = self
            .api
            .get_node(&name)
            .await
            .map_err(api_err(format!("reading node {name}")))?;
        let node = match existing {
            Some(n) => {
                let current = n.metadata.labels.clone().unwrap_or_default();
                if labels.iter().all(|(k, v)| current.get(k) == Some(v)) {
                    n
                } else {
                    self.api
                        .patch_node(&name, &json!({"metadata": {"labels": labels}}))
                        .await
                        .map_err(api_err(format!("updating the labels of node {name}")))?
                }
            }
            None => {
                let node = Node {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some(labels),
                        annotations: Some(BTreeMap::from([(
                            "node.alpha.kubernetes.io/ttl".to_string(),
                            "0".to_string(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    ..Node::default()
                };
                match self.api.create_node(&node).await {
                    Ok(n) => n,
                    // Registered by a racing restart: use it.
                    Err(ApiCallError::Conflict(_)) => self
                        .api
                        .get_node(&name)
                        .await
                        .map_err(api_err(format!("reading node {name}")))?
                        .ok_or_else(|| NodeError::NoPodCidr(name.clone()))?,
                    Err(e) => return Err(api_err(format!("registering node {name}"))(e)),
                }
            }
        };
        if node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_ref())
            .is_none()
        {
            return Err(NodeError::NoPodCidr(name));
        }
        self.update_status(health).await?;
        Ok(node)
    }

    /// The status patch for the current machine state.
    pub fn status_patch(&mut self, usage: &HostUsage, health: &RuntimeHealth) -> Value {
        let now = Timestamp::now();
        let conds: Vec<NodeCondition> = conditions(usage, health)
            .into_iter()
            .map(|c| {
                let since = match self.last.get(c.type_) {
                    Some((prev, t)) if prev.status == c.status => *t,
                    _ => now,
                };
                self.last.insert(c.type_, (c.clone(), since));
                NodeCondition {
                    type_: c.type_.into(),
                    status: c.status.into(),
                    reason: Some(c.reason.into()),
                    message: Some(c.message),
                    last_heartbeat_time: Some(Time(now)),
                    last_transition_time: Some(Time(since)),
                }
            })
            .collect();
        let cpu = self.info.cpus.to_string();
        let memory = format!("{}Ki", usage.memory_total / 1024);
        let disk = format!("{}Ki", usage.disk_total / 1024);
        let pods = MAX_PODS.to_string();
        let resources: BTreeMap<&str, Quantity> = BTreeMap::from([
            ("cpu", Quantity(cpu)),
            ("memory", Quantity(memory)),
            ("ephemeral-storage", Quantity(disk)),
            ("pods", Quantity(pods)),
        ]);
        let runtime_version = match health {
            RuntimeHealth::Up(v) => v.clone(),
            RuntimeHealth::Down(_) => String::new(),
        };
        let mut node_info = json!({
            "machineID": self.info.machine_id,
            "systemUUID": self.info.machine_id,
            "bootID": self.info.boot_id,
            "kernelVersion": self.info.kernel_version,
            "osImage": self.info.os_image,
            "operatingSystem": self.info.os,
            "architecture": self.info.arch,
            "kubeletVersion": format!("v1.33.0-berth.{}", env!("CARGO_PKG_VERSION")),
            "kubeProxyVersion": "",
        });
        if !runtime_version.is_empty() {
            node_info["containerRuntimeVersion"] = json!(runtime_version);
        }
        json!({
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": conds,
                "addresses": [
                    {"type": "InternalIP", "address": self.config.node_ip.to_string()},
                    {"type": "Hostname", "address": self.config.node_name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.listen_port}},
                "nodeInfo": node_info,
            }
        })
    }

    /// Writes the Node's status.
    pub async fn update_status(&mut self, health: &RuntimeHealth) -> Result<(), NodeError> {
        let usage = self.host.usage()?;
        let patch = self.status_patch(&usage, health);
        let name = self.config.node_name.clone();
        self.api
            .patch_node_status(&name, &patch)
            .await
            .map_err(api_err(format!("updating the status of node {name}")))?;
        Ok(())
    }

    /// Renews (or creates) the node's Lease.
    pub async fn renew_lease(&mut self) -> Result<(), NodeError> {
        let name = self.config.node_name.clone();
        let now = MicroTime(Timestamp::now());
        let duration = i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(40);
        let current = match self.lease.take() {
            Some(l) => Some(l),
            None => self
                .api
                .get_lease(&name)
                .await
                .map_err(api_err(format!("reading the lease of node {name}")))?,
        };
        let result = match current {
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_default();
                spec.holder_identity = Some(name.clone());
                spec.lease_duration_seconds = Some(duration);
                spec.renew_time = Some(now);
                self.api.replace_lease(&lease).await
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(LEASE_NAMESPACE.into()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(name.clone()),
                        lease_duration_seconds: Some(duration),
                        renew_time: Some(now),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create_lease(&lease).await
            }
        };
        match result {
            Ok(lease) => {
                self.lease = Some(lease);
                Ok(())
            }
            // Someone else wrote it (a restart of this agent): read it again next time.
            Err(e) => Err(api_err(format!("renewing the lease of node {name}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::api::FakeApi;
    use crate::host::FakeHost;

    fn setup() -> (Arc<FakeApi>, Arc<FakeHost>, NodeStatus) {
        let api = FakeApi::new();
        let host = Arc::new(FakeHost::new());
        let mut config = AgentConfig::new("n1", "/tmp", IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        config.node_labels.insert("zone".into(), "a".into());
        config.listen_port = 12345;
        let ns = NodeStatus::new(api.clone(), host.clone(), config).unwrap();
        (api, host, ns)
    }

    fn condition<'a>(node: &'a Node, t: &str) -> &'a NodeCondition {
        node.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == t))
            .unwrap()
    }

    #[tokio::test]
    async fn registration_writes_labels_capacity_and_conditions() {
        let (api, _host, mut ns) = setup();
        let node = ns
            .register(&RuntimeHealth::Up("docker://20.10.24".into()))
            .await
            .unwrap();
        assert!(node.spec.unwrap().pod_cidr.is_some());
        let node = api.node("n1").unwrap();
        let labels = node.metadata.labels.clone().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["zone"], "a");
        let status = node.status.clone().unwrap();
        let cap = status.capacity.unwrap();
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, format!("{}Ki", 4u64 << 20));
        assert_eq!(
            status.node_info.unwrap().container_runtime_version,
            "docker://20.10.24"
        );
        assert_eq!(
            status
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port,
            12345
        );
        assert_eq!(condition(&node, "Ready").status, "True");
        assert_eq!(condition(&node, "MemoryPressure").status, "False");
    }

    #[tokio::test]
    async fn ready_follows_the_engine_and_pressure_follows_the_machine() {
        let (api, host, mut ns) = setup();
        ns.register(&RuntimeHealth::Up("docker://1".into()))
            .await
            .unwrap();
        let first = condition(&api.node("n1").unwrap(), "Ready")
            .last_transition_time
            .clone();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        ns.update_status(&RuntimeHealth::Up("docker://1".into()))
            .await
            .unwrap();
        let node = api.node("n1").unwrap();
        assert_eq!(condition(&node, "Ready").last_transition_time, first);

        let mut usage = host.usage().unwrap();
        usage.memory_available = 10 << 20;
        host.set_usage(usage);
        ns.update_status(&RuntimeHealth::Down("Cannot connect".into()))
            .await
            .unwrap();
        let node = api.node("n1").unwrap();
        let ready = condition(&node, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert!(ready.message.as_deref().unwrap().contains("Cannot connect"));
        assert_eq!(condition(&node, "MemoryPressure").status, "True");
    }

    #[tokio::test]
    async fn the_lease_is_created_then_renewed() {
        let (api, _host, mut ns) = setup();
        ns.renew_lease().await.unwrap();
        let first = api.lease("n1").unwrap();
        assert_eq!(
            first.spec.as_ref().unwrap().holder_identity.as_deref(),
            Some("n1")
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        ns.renew_lease().await.unwrap();
        let second = api.lease("n1").unwrap();
        assert!(
            second.spec.unwrap().renew_time.unwrap().0 > first.spec.unwrap().renew_time.unwrap().0
        );
        assert!(api.calls().contains(&"create_lease n1".to_string()));
        assert!(api.calls().contains(&"replace_lease n1".to_string()));
    }
}
