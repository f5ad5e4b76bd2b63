//! The agent's settings, as `berth agent` and `berth server` give them.
//!
//! Owns [`AgentConfig`] and its defaults. Must not read flags or files (the binary does).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the agent needs besides its credentials.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Name of this node.
    pub node_name: String,
    /// Labels to put on the Node besides the well-known ones.
    pub node_labels: BTreeMap<String, String>,
    /// Where the agent keeps credentials, pod volumes and service-account files.
    pub data_dir: PathBuf,
    /// The node's address (`InternalIP`), also `status.hostIP` of its pods.
    pub node_ip: IpAddr,
    /// The port of the agent's TLS endpoint (streaming), published in
    /// `status.daemonEndpoints`; the port actually bound when the caller bound it already.
    pub listen_port: u16,
    /// How often the node's Lease is renewed.
    pub lease_renew_interval: Duration,
    /// The Lease's duration (how long the node counts as alive without a renewal).
    pub lease_duration: Duration,
    /// How often the Node's status is refreshed even when nothing changed.
    pub status_interval: Duration,
    /// How often every pod is synced even without a change (a change of a ConfigMap or Secret
    /// it uses wakes it at once; see `pod::sources`).
    pub resync_interval: Duration,
    /// How often the containers on the engine are listed to notice exits.
    pub relist_interval: Duration,
    /// How often they are listed while the engine's events report exits and removals as they
    /// happen (the list then only confirms and catches what no event tells).
    pub relist_interval_with_events: Duration,
    /// The static busybox binary the sandbox image is built from.
    pub busybox_path: PathBuf,
    /// Tag of the locally built sandbox image.
    pub sandbox_image: String,
    /// Cluster DNS servers for `ClusterFirst` pods (none yet: falls back to the node's).
    pub cluster_dns: Vec<IpAddr>,
    /// Cluster domain.
    pub cluster_domain: String,
    /// Address pods use to reach the API server (`KUBERNETES_SERVICE_HOST`).
    pub api_host: Option<String>,
    /// Port pods use to reach the API server (`KUBERNETES_SERVICE_PORT`).
    pub api_port: u16,
    /// The cluster CA certificate (PEM), mounted into pods as `ca.crt`.
    pub ca_pem: String,
    /// Initial delay of a crashing container's restart back-off (doubled each time).
    pub backoff_initial: Duration,
    /// Longest restart back-off.
    pub backoff_max: Duration,
}

/// Where Debian's `busybox-static` installs its binary.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

impl AgentConfig {
    /// Settings with the defaults for everything but identity and location.
    pub fn new(
        node_name: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        node_ip: IpAddr,
    ) -> Self {
        Self {
            node_name: node_name.into(),
            node_labels: BTreeMap::new(),
            data_dir: data_dir.into(),
            node_ip,
            listen_port: 10250,
            lease_renew_interval: Duration::from_secs(2),
            lease_duration: Duration::from_secs(10),
            status_interval: Duration::from_secs(10),
            resync_interval: Duration::from_secs(5),
            relist_interval: Duration::from_secs(1),
            relist_interval_with_events: Duration::from_secs(10),
            busybox_path: PathBuf::from(DEFAULT_BUSYBOX),
            sandbox_image: format!("berth/pause:{}", env!("CARGO_PKG_VERSION")),
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            api_host: None,
            api_port: 6443,
            ca_pem: String::new(),
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
        }
    }

    /// Directory of a pod's files (volumes, service-account token).
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.data_dir.join("pods").join(uid)
    }

    /// Directory of the node-local PersistentVolumeClaim directories, which outlive pods.
    pub fn claim_root(&self) -> PathBuf {
        self.data_dir.join("claims")
    }

    /// Name of this node's Docker network.
    pub fn network_name(&self, cluster_uid: &str) -> String {
        let short: String = cluster_uid.chars().filter(|c| *c != '-').take(12).collect();
        format!("berth-{short}-{}", self.node_name)
    }
}
