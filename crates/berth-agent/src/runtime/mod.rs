//! Container runtime layer: what a kubelet-like agent needs from a container engine.
//!
//! Owns the [`ContainerRuntime`] trait, the value types it speaks in (image, sandbox, container,
//! exec and log types), the single [`RuntimeError`] enum, the label scheme that marks what Berth
//! created ([`labels`]), and a helper that builds the busybox sandbox/test image locally
//! ([`image`]). Implementations: [`docker::DockerRuntime`] (Docker Engine over bollard on the local
//! socket) and [`fake::FakeRuntime`] (in memory, for tests of the layers above).
//!
//! Must not: know the Kubernetes API (no pod objects, no API client), decide pull policy, restart
//! policy or naming of Kubernetes objects (callers decide and pass plain values), or touch
//! containers and networks that lack this runtime's cluster and node labels when listing.
//!
//! A pod is a *sandbox* (a small container that holds the pod's network namespace and its IP on a
//! user-defined bridge network) plus *containers* that join the sandbox's network (and IPC)
//! namespace with `network_mode: container:<sandbox id>`.

pub mod docker;
pub mod fake;
pub mod image;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use jiff::Timestamp;
use tokio::io::AsyncWrite;

pub use docker::DockerRuntime;
pub use fake::FakeRuntime;

/// Labels that the runtime puts on everything it creates.
///
/// The cluster and node labels scope [`ContainerRuntime::list`]: several clusters and nodes may
/// share one dockerd.
pub mod labels {
    /// UID of the cluster that owns the object.
    pub const CLUSTER: &str = "dev.berth.cluster";
    /// Name of the node (agent) that owns the object.
    pub const NODE: &str = "dev.berth.node";
    /// What the object is: [`KIND_SANDBOX`] or [`KIND_CONTAINER`].
    pub const KIND: &str = "dev.berth.kind";
    /// Value of [`KIND`] on pod sandbox containers.
    pub const KIND_SANDBOX: &str = "sandbox";
    /// Value of [`KIND`] on the containers of a pod.
    pub const KIND_CONTAINER: &str = "container";
    /// UID of the pod.
    pub const POD_UID: &str = "dev.berth.pod.uid";
    /// Name of the pod.
    pub const POD_NAME: &str = "dev.berth.pod.name";
    /// Namespace of the pod.
    pub const POD_NAMESPACE: &str = "dev.berth.pod.namespace";
    /// Name of the container in the pod spec.
    pub const CONTAINER_NAME: &str = "dev.berth.container.name";
    /// Restart count (attempt number) of the container, in decimal.
    pub const RESTART_COUNT: &str = "dev.berth.container.restart-count";
    /// ID of the sandbox a container runs in.
    pub const SANDBOX_ID: &str = "dev.berth.sandbox.id";
}

/// Errors of the container runtime layer.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be reached or its answer could not be understood.
    #[error("container engine unavailable: {message}")]
    Unavailable {
        /// What went wrong.
        message: String,
    },
    /// The named object does not exist.
    #[error("{what} not found")]
    NotFound {
        /// The object that was looked for, e.g. `container "abc"`.
        what: String,
    },
    /// The object exists already or is in a state that forbids the operation.
    #[error("conflict on {what}: {message}")]
    Conflict {
        /// The object concerned.
        what: String,
        /// The engine's message.
        message: String,
    },
    /// The image is not present and the caller did not allow pulling it.
    #[error("image {reference:?} is not present on the node and pulling was not allowed")]
    ImageNotPresent {
        /// The image reference.
        reference: String,
    },
    /// Pulling an image failed.
    #[error("pulling image {reference:?} failed: {message}")]
    PullFailed {
        /// The image reference.
        reference: String,
        /// The engine's message.
        message: String,
    },
    /// Building an image failed.
    #[error("building image {tag:?} failed: {message}")]
    BuildFailed {
        /// The tag being built.
        tag: String,
        /// The builder's message.
        message: String,
    },
    /// The caller's spec cannot be expressed to the engine.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// An operation did not finish in time.
    #[error("{op} did not finish within {after:?}")]
    Timeout {
        /// The operation.
        op: String,
        /// The time limit.
        after: Duration,
    },
    /// The engine refused or failed the operation.
    #[error("{op} failed (status {status}): {message}")]
    Engine {
        /// The operation.
        op: String,
        /// HTTP status code returned by the engine.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// Local I/O failed (reading the busybox binary, writing exec stdin, ...).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A fake runtime was asked for something it was not set up for.
    #[error("FakeRuntime was not set up for {call}: {hint}")]
    NotScripted {
        /// The call, as recorded in `calls()`.
        call: String,
        /// What the test should have set up.
        hint: String,
    },
    /// A failure a test scripted into a fake runtime.
    #[error("scripted failure of {call}: {message}")]
    Scripted {
        /// The call, as recorded in `calls()`.
        call: String,
        /// The scripted message.
        message: String,
    },
}

/// Credentials for a registry, from an image pull secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
    /// Registry server, e.g. `registry.example.com:5000`.
    pub server: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server", &self.server)
            .finish()
    }
}

/// Whether [`ContainerRuntime::ensure_image`] may pull; decided by the caller from the pod's
/// `imagePullPolicy` and [`ContainerRuntime::image_present`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullDecision {
    /// Pull the image (refreshing a present one).
    Pull,
    /// Use the local image only; fail with [`RuntimeError::ImageNotPresent`] if it is missing.
    NoPull,
}

/// An image present on the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image ID (`sha256:...`), what `imageID` in a container status reports.
    pub id: String,
    /// Tags, e.g. `busybox:latest`.
    pub repo_tags: Vec<String>,
    /// Digests, e.g. `busybox@sha256:...` (empty for locally built images).
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size: u64,
}

/// An IPv4 CIDR block such as `10.244.3.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// A CIDR block; fails when the prefix is over 32 or host bits are set.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, RuntimeError> {
        if prefix > 32 {
            return Err(RuntimeError::InvalidSpec(format!(
                "prefix length {prefix} is over 32"
            )));
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        if u32::from(addr) & !mask != 0 {
            return Err(RuntimeError::InvalidSpec(format!(
                "{addr}/{prefix} has host bits set"
            )));
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(ip) & mask == u32::from(self.addr)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RuntimeError::InvalidSpec(format!("{s:?} is not an IPv4 CIDR"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Self::new(addr, prefix)
    }
}

/// A pod network: a bridge network with IPAM for the node's pod CIDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Network name (unique on the engine).
    pub name: String,
    /// The node's pod CIDR.
    pub subnet: Ipv4Cidr,
    /// Gateway address inside `subnet` (the host side of the bridge).
    pub gateway: Ipv4Addr,
    /// Extra labels (the runtime adds its cluster and node labels).
    pub labels: BTreeMap<String, String>,
}

/// A network present on the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Engine ID of the network.
    pub id: String,
    /// Network name.
    pub name: String,
    /// Its subnet, when it has exactly one IPv4 subnet.
    pub subnet: Option<Ipv4Cidr>,
    /// Its gateway.
    pub gateway: Option<Ipv4Addr>,
}

/// Transport protocol of a port mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Lower-case name as the engine writes it (`tcp`, `udp`, `sctp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A `hostPort` mapping of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    /// Port in the pod.
    pub container_port: u16,
    /// Port on the node.
    pub host_port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Node address to bind; all addresses when `None`.
    pub host_ip: Option<IpAddr>,
}

/// DNS configuration of a pod (its `resolv.conf`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// Name servers.
    pub servers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// Options such as `ndots:5`.
    pub options: Vec<String>,
}

/// What the runtime needs to create a pod sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxSpec {
    /// Pod UID.
    pub pod_uid: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod namespace.
    pub pod_namespace: String,
    /// Attempt number, part of the engine name so that a replacement sandbox can be created while
    /// the old one is still being removed.
    pub attempt: u32,
    /// Extra labels (the runtime adds its own).
    pub labels: BTreeMap<String, String>,
    /// Sandbox image (see [`image::busybox_image_tar`]); its default command must wait for
    /// SIGTERM and exit.
    pub image: String,
    /// Network to join (made with [`ContainerRuntime::ensure_network`]).
    pub network: String,
    /// Fixed pod IP inside the network's subnet; the engine picks one when `None`.
    pub ip: Option<Ipv4Addr>,
    /// Hostname of the pod.
    pub hostname: String,
    /// DNS configuration shared by the pod's containers.
    pub dns: DnsConfig,
    /// `hostPort` mappings.
    pub port_mappings: Vec<PortMapping>,
    /// Cgroup parent for the sandbox.
    pub cgroup_parent: Option<String>,
}

/// Engine ID of a pod sandbox container.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(pub String);

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bind mount from the node into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Absolute path on the node.
    pub host_path: PathBuf,
    /// Absolute path in the container.
    pub container_path: String,
    /// Mount read-only.
    pub read_only: bool,
}

/// CPU limit of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuLimit {
    /// CFS quota and period in microseconds.
    Quota {
        /// Quota per period.
        quota: i64,
        /// Period.
        period: i64,
    },
    /// Billionths of a CPU (`1.5` CPUs is `1_500_000_000`).
    NanoCpus(i64),
}

/// What the runtime needs to create a container in a sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Name of the container in the pod spec.
    pub name: String,
    /// Sandbox whose namespaces the container joins.
    pub sandbox: SandboxId,
    /// Restart count (attempt number) of this container; recorded in a label.
    pub restart_count: u32,
    /// Image reference.
    pub image: String,
    /// Entrypoint override (Kubernetes `command`); the image's when empty.
    pub command: Vec<String>,
    /// Arguments (Kubernetes `args`); the image's `CMD` when empty and `command` is empty too.
    pub args: Vec<String>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// Extra labels (the runtime adds its own and the pod's identity from the sandbox).
    pub labels: BTreeMap<String, String>,
    /// Memory limit in bytes.
    pub memory_limit_bytes: Option<i64>,
    /// CPU limit.
    pub cpu: Option<CpuLimit>,
    /// User as `uid` or `uid:gid`.
    pub user: Option<String>,
    /// Mount the root filesystem read-only.
    pub read_only_rootfs: bool,
    /// Run privileged.
    pub privileged: bool,
    /// Signal sent first by [`ContainerRuntime::stop`], e.g. `SIGTERM` (the image's otherwise).
    pub stop_signal: Option<String>,
    /// Allocate a TTY.
    pub tty: bool,
    /// Keep stdin open.
    pub stdin: bool,
    /// Close stdin after the first attach disconnects.
    pub stdin_once: bool,
}

impl ContainerSpec {
    /// A spec with only the required fields set and everything else empty or off.
    pub fn new(name: impl Into<String>, sandbox: SandboxId, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            sandbox,
            restart_count: 0,
            image: image.into(),
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: None,
            mounts: Vec::new(),
            labels: BTreeMap::new(),
            memory_limit_bytes: None,
            cpu: None,
            user: None,
            read_only_rootfs: false,
            privileged: false,
            stop_signal: None,
            tty: false,
            stdin: false,
            stdin_once: false,
        }
    }
}

/// State of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running {
        /// When it started.
        started_at: Option<Timestamp>,
    },
    /// Exited (or dead).
    Exited {
        /// Exit code.
        code: i64,
        /// Kubernetes-style reason: `OOMKilled`, `Completed` (code 0) or `Error`.
        reason: String,
        /// The engine's error message, if any.
        message: Option<String>,
        /// When it started.
        started_at: Option<Timestamp>,
        /// When it finished.
        finished_at: Option<Timestamp>,
    },
    /// A state this layer does not model (`paused`, `restarting`, `removing`).
    Unknown {
        /// The engine's status word.
        status: String,
    },
}

/// Inspected status of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStatus {
    /// Engine ID.
    pub id: String,
    /// Engine name (without the leading `/`).
    pub name: String,
    /// State.
    pub state: ContainerState,
    /// Image reference it was created from.
    pub image: String,
    /// Image ID.
    pub image_id: String,
    /// Restart count from our label (0 when absent).
    pub restart_count: u32,
    /// Creation time.
    pub created_at: Option<Timestamp>,
    /// All labels.
    pub labels: BTreeMap<String, String>,
    /// IPv4 address on the network, for sandboxes.
    pub ip: Option<Ipv4Addr>,
}

/// Coarse state in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SummaryState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Exited or dead.
    Exited,
    /// Anything else, with the engine's word.
    Other(String),
}

/// One container in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Engine ID.
    pub id: String,
    /// Engine name (without the leading `/`).
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Image ID.
    pub image_id: String,
    /// Coarse state.
    pub state: SummaryState,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time (seconds since the epoch).
    pub created_unix: i64,
}

/// A change the engine reported on one of this node's containers, as it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineEvent {
    /// Engine ID of the container.
    pub container_id: String,
    /// The pod it belongs to (its [`labels::POD_UID`] label), if any.
    pub pod_uid: Option<String>,
    /// What happened: `die`, `oom` or `destroy` (see [`ENGINE_EVENT_ACTIONS`]).
    pub action: String,
}

/// The engine events the agent follows: a container exited, was killed for memory, or was
/// removed. Its own creates and starts it knows already.
pub const ENGINE_EVENT_ACTIONS: [&str; 3] = ["die", "oom", "destroy"];

/// A stream of [`EngineEvent`]s; it ends (or yields an error) when the engine connection drops.
pub type EngineEvents = BoxStream<'static, Result<EngineEvent, RuntimeError>>;

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Standard output (also everything when a TTY is allocated).
    Stdout,
    /// Standard error.
    Stderr,
}

/// A chunk of exec output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputChunk {
    /// Stream.
    pub stream: StreamKind,
    /// Bytes.
    pub data: Bytes,
}

/// A command to run in a running container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecSpec {
    /// Command and arguments.
    pub cmd: Vec<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Allocate a TTY.
    pub tty: bool,
}

/// A running exec: its output, its stdin and, at the end, its exit code.
pub struct ExecSession {
    /// Engine ID of the exec.
    pub id: String,
    /// Output chunks (stdout and stderr interleaved as they come); ends when the command exits.
    pub output: BoxStream<'static, Result<OutputChunk, RuntimeError>>,
    /// Stdin, when requested; shut it down to send EOF.
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// Resolves to the exit code once the command has exited (await it after `output` ends).
    pub exit_code: BoxFuture<'static, Result<i64, RuntimeError>>,
}

impl fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSession")
            .field("id", &self.id)
            .field("stdin", &self.stdin.is_some())
            .finish_non_exhaustive()
    }
}

/// Collected result of [`ContainerRuntime::exec_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code.
    pub exit_code: i64,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// Options of [`ContainerRuntime::logs`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the stream open and follow new output.
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Only lines from this time on (second precision).
    pub since: Option<Timestamp>,
    /// Report each line's timestamp in [`LogChunk::timestamp`].
    pub timestamps: bool,
}

/// A chunk (usually a line, with its newline) of container logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// Stream.
    pub stream: StreamKind,
    /// Bytes, without the engine's timestamp prefix.
    pub data: Bytes,
    /// When the line was written, when timestamps were asked for.
    pub timestamp: Option<Timestamp>,
}

/// Version of the engine, for `nodeInfo.containerRuntimeVersion` (`docker://VERSION`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// Engine name, `docker` for Docker Engine.
    pub runtime: String,
    /// Engine version, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// API version in use (after negotiation), e.g. `1.41`.
    pub api_version: String,
}

impl RuntimeVersion {
    /// The `containerRuntimeVersion` string of a node, e.g. `docker://20.10.24+dfsg1`.
    pub fn node_info_string(&self) -> String {
        format!("{}://{}", self.runtime, self.version)
    }
}

/// The container engine as the agent sees it. Object-safe: use `Arc<dyn ContainerRuntime>`.
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Checks that the engine answers.
    async fn ping(&self) -> Result<(), RuntimeError>;

    /// Engine and API version.
    async fn version(&self) -> Result<RuntimeVersion, RuntimeError>;

    /// The image if it is present on the node.
    async fn image_present(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError>;

    /// Makes `reference` present: pulls it when `pull` says so (with `auth` if given), otherwise
    /// requires it to be present already.
    async fn ensure_image(
        &self,
        reference: &str,
        pull: PullDecision,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError>;

    /// Builds an image from a tar build context (with a `Dockerfile` at its root) and tags it.
    async fn build_image_from_tar(&self, tag: &str, tar: Bytes) -> Result<ImageInfo, RuntimeError>;

    /// Creates the bridge network for the node's pod CIDR, or returns the existing one of that
    /// name when its subnet matches ([`RuntimeError::Conflict`] when it does not).
    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError>;

    /// Removes a network by name; absent networks are not an error.
    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError>;

    /// Creates and starts a pod sandbox.
    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<SandboxId, RuntimeError>;

    /// Stops (with `grace`) and removes a sandbox; absent sandboxes are not an error. The pod's
    /// containers should be removed first.
    async fn remove_sandbox(&self, id: &SandboxId, grace: Duration) -> Result<(), RuntimeError>;

    /// Creates (does not start) a container in a sandbox; returns its engine ID.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;

    /// Starts a created container.
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;

    /// Sends the stop signal, waits up to `grace`, then SIGKILL; returns once it has exited.
    /// Stopping a container that is not running is not an error.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;

    /// Removes a container (killing it if it still runs); absent containers are not an error.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;

    /// Status of one container (or sandbox).
    async fn inspect(&self, id: &str) -> Result<ContainerStatus, RuntimeError>;

    /// Containers and sandboxes of this cluster and node, running or not, whose labels include
    /// all of `label_filters`.
    async fn list(
        &self,
        label_filters: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerSummary>, RuntimeError>;

    /// Follows the changes in [`ENGINE_EVENT_ACTIONS`] on the containers of this cluster and
    /// node from now on. `Ok(None)` when the engine cannot report them: the agent then learns
    /// of changes only by listing.
    async fn events(&self) -> Result<Option<EngineEvents>, RuntimeError> {
        Ok(None)
    }

    /// Starts a command in a running container.
    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecSession, RuntimeError>;

    /// Resizes the TTY of an exec started with `tty: true` (`kubectl exec -t` window changes).
    async fn resize_exec(&self, exec_id: &str, width: u16, height: u16)
    -> Result<(), RuntimeError>;

    /// Runs a command without stdin and collects its output, failing with
    /// [`RuntimeError::Timeout`] after `timeout` (the command itself may go on running in the
    /// container: Docker cannot kill an exec).
    async fn exec_output(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let spec = ExecSpec {
            cmd: cmd.to_vec(),
            stdin: false,
            tty: false,
        };
        let run = async {
            let session = self.exec(id, &spec).await?;
            let ExecSession {
                mut output,
                exit_code,
                ..
            } = session;
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            while let Some(chunk) = output.next().await {
                let chunk = chunk?;
                match chunk.stream {
                    StreamKind::Stdout => stdout.extend_from_slice(&chunk.data),
                    StreamKind::Stderr => stderr.extend_from_slice(&chunk.data),
                }
            }
            let exit_code = exit_code.await?;
            Ok(ExecOutput {
                exit_code,
                stdout,
                stderr,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(RuntimeError::Timeout {
                op: format!("exec {cmd:?} in {id}"),
                after: timeout,
            }),
        }
    }

    /// Logs of a container.
    async fn logs(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogChunk, RuntimeError>>, RuntimeError>;
}

/// Docker's name for a sandbox, following the kubelet's `k8s_POD_<pod>_<ns>_<uid>_<attempt>`.
pub fn sandbox_engine_name(spec: &SandboxSpec) -> String {
    format!(
        "k8s_POD_{}_{}_{}_{}",
        spec.pod_name, spec.pod_namespace, spec.pod_uid, spec.attempt
    )
}

/// Docker's name for a container, `k8s_<container>_<pod>_<ns>_<uid>_<restart count>`.
pub fn container_engine_name(
    container: &str,
    pod_name: &str,
    pod_namespace: &str,
    pod_uid: &str,
    restart_count: u32,
) -> String {
    format!("k8s_{container}_{pod_name}_{pod_namespace}_{pod_uid}_{restart_count}")
}

/// Kubernetes' reason for an exited container.
pub fn exit_reason(code: i64, oom_killed: bool) -> &'static str {
    if oom_killed {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    }
}
