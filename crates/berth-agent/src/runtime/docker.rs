//! [`DockerRuntime`]: the [`ContainerRuntime`] over Docker Engine's API (bollard) on the local
//! socket.
//!
//! Owns the translation between this layer's types and Docker's API: labels, names, host config,
//! sandbox networking (`network_mode: container:<sandbox>`), stop/exec/log plumbing and the
//! mapping of engine errors to [`RuntimeError`]. The API version is negotiated at connect time
//! (bollard speaks 1.53; Debian's dockerd 20.10 speaks 1.41), so only fields that API 1.41 knows
//! are used.
//!
//! Must not: decide policy (pull, restart, naming of pods), keep state of its own beyond the
//! connection and its cluster/node identity, or list objects without its cluster and node labels.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
    ContainerSummaryStateEnum, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, CreateImageOptions, EventsOptions,
    ListContainersOptions, ListNetworksOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;

use super::{
    ContainerRuntime, ContainerSpec, ContainerState, ContainerStatus, ContainerSummary, CpuLimit,
    ENGINE_EVENT_ACTIONS, EngineEvent, EngineEvents, ExecSession, ExecSpec, ImageInfo, Ipv4Cidr,
    LogChunk, LogOptions, NetworkInfo, NetworkSpec, OutputChunk, PullDecision, RegistryAuth,
    RuntimeError, RuntimeVersion, SandboxId, SandboxSpec, StreamKind, SummaryState,
    container_engine_name, exit_reason, labels, sandbox_engine_name,
};

/// Time limit for ordinary engine requests (until the response headers arrive).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How far back a new event subscription starts.
const EVENTS_REPLAY: Duration = Duration::from_secs(2);

/// Docker Engine behind the [`ContainerRuntime`] trait.
#[derive(Clone, Debug)]
pub struct DockerRuntime {
    docker: Docker,
    cluster_uid: String,
    node_name: String,
}

impl DockerRuntime {
    /// Connects to the local engine (`DOCKER_HOST` or `/var/run/docker.sock`) and negotiates the
    /// API version. Everything this runtime creates carries `cluster_uid` and `node_name` labels,
    /// and [`ContainerRuntime::list`] returns only objects that carry both.
    pub async fn connect(
        cluster_uid: impl Into<String>,
        node_name: impl Into<String>,
    ) -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| RuntimeError::Unavailable {
                message: format!("connecting to the Docker socket: {e}"),
            })?
            .with_timeout(REQUEST_TIMEOUT)
            .negotiate_version()
            .await
            .map_err(|e| RuntimeError::Unavailable {
                message: format!("negotiating the Docker API version: {e}"),
            })?;
        Ok(Self {
            docker,
            cluster_uid: cluster_uid.into(),
            node_name: node_name.into(),
        })
    }

    /// The cluster UID this runtime labels with.
    pub fn cluster_uid(&self) -> &str {
        &self.cluster_uid
    }

    /// The node name this runtime labels with.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Labels for a new object: the caller's, then ours (ours win).
    fn owned_labels(
        &self,
        extra: &BTreeMap<String, String>,
        kind: Option<&str>,
    ) -> HashMap<String, String> {
        let mut out: HashMap<String, String> =
            extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.insert(labels::CLUSTER.to_owned(), self.cluster_uid.clone());
        out.insert(labels::NODE.to_owned(), self.node_name.clone());
        if let Some(kind) = kind {
            out.insert(labels::KIND.to_owned(), kind.to_owned());
        }
        out
    }

    async fn inspect_raw(&self, id: &str) -> Result<ContainerInspectResponse, RuntimeError> {
        self.docker
            .inspect_container(id, None)
            .await
            .map_err(|e| engine_error(&format!("container {id:?}"), "inspect container", e))
    }

    async fn inspect_image(&self, reference: &str) -> Result<ImageInfo, RuntimeError> {
        let image = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(|e| engine_error(&format!("image {reference:?}"), "inspect image", e))?;
        Ok(ImageInfo {
            id: image.id.unwrap_or_default(),
            repo_tags: image.repo_tags.unwrap_or_default(),
            repo_digests: image.repo_digests.unwrap_or_default(),
            size: image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        })
    }

    /// Networks whose name is exactly `name` (Docker's name filter matches substrings), oldest
    /// first.
    async fn networks_named(&self, name: &str) -> Result<Vec<NetworkInfoRaw>, RuntimeError> {
        let mut filters = HashMap::new();
        filters.insert("name".to_owned(), vec![name.to_owned()]);
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| engine_error(&format!("network {name:?}"), "list networks", e))?;
        let mut out: Vec<NetworkInfoRaw> = networks
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .map(|n| NetworkInfoRaw {
                created: n
                    .created
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                info: network_info(
                    n.id.unwrap_or_default(),
                    n.name.unwrap_or_default(),
                    n.ipam.as_ref(),
                ),
            })
            .collect();
        out.sort_by(|a, b| {
            (a.created.as_str(), a.info.id.as_str()).cmp(&(b.created.as_str(), b.info.id.as_str()))
        });
        Ok(out)
    }

    async fn stop_raw(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let t = i32::try_from(secs).unwrap_or(i32::MAX);
        // The engine answers once the container has exited; allow for the grace period.
        let docker = self
            .docker
            .clone()
            .with_timeout(REQUEST_TIMEOUT + Duration::from_secs(secs));
        match docker
            .stop_container(
                id,
                Some(StopContainerOptions {
                    signal: None,
                    t: Some(t),
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err(engine_error(
                &format!("container {id:?}"),
                "stop container",
                e,
            )),
        }
    }
}

struct NetworkInfoRaw {
    created: String,
    info: NetworkInfo,
}

fn network_info(id: String, name: String, ipam: Option<&Ipam>) -> NetworkInfo {
    let configs: Vec<&IpamConfig> = ipam
        .and_then(|i| i.config.as_ref())
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let v4: Vec<(Ipv4Cidr, Option<Ipv4Addr>)> = configs
        .iter()
        .filter_map(|c| {
            let subnet = c.subnet.as_deref()?.parse::<Ipv4Cidr>().ok()?;
            let gateway = c.gateway.as_deref().and_then(|g| g.parse().ok());
            Some((subnet, gateway))
        })
        .collect();
    let (subnet, gateway) = match v4.as_slice() {
        [(subnet, gateway)] => (Some(*subnet), *gateway),
        _ => (None, None),
    };
    NetworkInfo {
        id,
        name,
        subnet,
        gateway,
    }
}

/// Maps a bollard error to ours. `what` names the object, `op` the operation.
fn engine_error(what: &str, op: &str, e: bollard::errors::Error) -> RuntimeError {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError {
            status_code: 404,
            message,
        } => RuntimeError::NotFound {
            what: format!("{what} ({message})"),
        },
        B::DockerResponseServerError {
            status_code: 409,
            message,
        } => RuntimeError::Conflict {
            what: what.to_owned(),
            message,
        },
        B::DockerResponseServerError {
            status_code,
            message,
        } => RuntimeError::Engine {
            op: format!("{op} {what}"),
            status: status_code,
            message,
        },
        B::RequestTimeoutError => RuntimeError::Timeout {
            op: format!("{op} {what}"),
            after: REQUEST_TIMEOUT,
        },
        other => RuntimeError::Unavailable {
            message: format!("{op} {what}: {other}"),
        },
    }
}

fn parse_time(s: Option<&str>) -> Option<Timestamp> {
    let s = s?;
    let t: Timestamp = s.parse().ok()?;
    // Docker writes the zero time for "never".
    (t.as_second() > 0).then_some(t)
}

/// `repo[:tag]` and whether the reference names a tag or digest.
fn split_reference(reference: &str) -> (String, Option<String>) {
    if reference.contains('@') {
        return (reference.to_owned(), None);
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (
                reference[..at].to_owned(),
                Some(reference[at + 1..].to_owned()),
            )
        }
        None => (reference.to_owned(), Some("latest".to_owned())),
    }
}

fn port_key(port: u16, protocol: super::Protocol) -> String {
    format!("{port}/{}", protocol.as_str())
}

fn state_of(inspect: &ContainerInspectResponse) -> ContainerState {
    let Some(state) = inspect.state.as_ref() else {
        return ContainerState::Unknown {
            status: String::new(),
        };
    };
    let started_at = parse_time(state.started_at.as_deref());
    let finished_at = parse_time(state.finished_at.as_deref());
    match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running { started_at },
        Some(ContainerStateStatusEnum::EXITED) | Some(ContainerStateStatusEnum::DEAD) => {
            let code = state.exit_code.unwrap_or(0);
            let oom = state.oom_killed.unwrap_or(false);
            ContainerState::Exited {
                code,
                reason: exit_reason(code, oom).to_owned(),
                message: state.error.clone().filter(|e| !e.is_empty()),
                started_at,
                finished_at,
            }
        }
        Some(other) => ContainerState::Unknown {
            status: other.to_string(),
        },
        None => ContainerState::Unknown {
            status: String::new(),
        },
    }
}

fn status_of(inspect: ContainerInspectResponse) -> ContainerStatus {
    let state = state_of(&inspect);
    let labels: BTreeMap<String, String> = inspect
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let restart_count = labels
        .get(labels::RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ip = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|n| {
            n.values()
                .filter_map(|e| e.ip_address.as_deref())
                .find_map(|ip| ip.parse::<Ipv4Addr>().ok())
        });
    ContainerStatus {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        state,
        image: inspect
            .config
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        image_id: inspect.image.unwrap_or_default(),
        restart_count,
        created_at: inspect
            .created
            .as_ref()
            .and_then(|c| parse_time(Some(&c.to_string()))),
        labels,
        ip,
    }
}

/// Splits log data into lines and takes off Docker's RFC 3339 timestamp prefix of each.
fn split_timestamps(stream: StreamKind, data: &Bytes) -> Vec<LogChunk> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let end = data[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(data.len(), |i| start + i + 1);
        let line = data.slice(start..end);
        let (timestamp, rest) = match line.iter().position(|b| *b == b' ') {
            Some(space) => match std::str::from_utf8(&line[..space])
                .ok()
                .and_then(|s| s.parse::<Timestamp>().ok())
            {
                Some(t) => (Some(t), line.slice(space + 1..)),
                None => (None, line.clone()),
            },
            None => (None, line.clone()),
        };
        out.push(LogChunk {
            stream,
            data: rest,
            timestamp,
        });
        start = end;
    }
    out
}

fn log_stream_kind(output: &LogOutput) -> (StreamKind, Bytes) {
    match output {
        LogOutput::StdErr { message } => (StreamKind::Stderr, message.clone()),
        LogOutput::StdOut { message }
        | LogOutput::Console { message }
        | LogOutput::StdIn { message } => (StreamKind::Stdout, message.clone()),
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn ping(&self) -> Result<(), RuntimeError> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| engine_error("engine", "ping", e))
    }

    async fn version(&self) -> Result<RuntimeVersion, RuntimeError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|e| engine_error("engine", "version", e))?;
        let negotiated = self.docker.client_version().to_string();
        Ok(RuntimeVersion {
            runtime: "docker".to_owned(),
            version: v.version.unwrap_or_default(),
            api_version: negotiated,
        })
    }

    async fn image_present(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        match self.inspect_image(reference).await {
            Ok(info) => Ok(Some(info)),
            Err(RuntimeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn ensure_image(
        &self,
        reference: &str,
        pull: PullDecision,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        if pull == PullDecision::NoPull {
            return self.image_present(reference).await?.ok_or_else(|| {
                RuntimeError::ImageNotPresent {
                    reference: reference.to_owned(),
                }
            });
        }
        let (from_image, tag) = split_reference(reference);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag,
            ..Default::default()
        };
        let credentials = auth.map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let mut progress = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = progress.next().await {
            if let Err(e) = item {
                let message = match e {
                    bollard::errors::Error::DockerResponseServerError { message, .. }
                    | bollard::errors::Error::DockerStreamError { error: message } => message,
                    other => other.to_string(),
                };
                return Err(RuntimeError::PullFailed {
                    reference: reference.to_owned(),
                    message,
                });
            }
        }
        self.inspect_image(reference).await
    }

    async fn build_image_from_tar(&self, tag: &str, tar: Bytes) -> Result<ImageInfo, RuntimeError> {
        let options = BuildImageOptions {
            t: Some(tag.to_owned()),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let mut progress = self
            .docker
            .build_image(options, None, Some(bollard::body_full(tar)));
        let mut log = String::new();
        while let Some(item) = progress.next().await {
            match item {
                Ok(info) => {
                    if let Some(stream) = info.stream {
                        log.push_str(&stream);
                    }
                    if let Some(error) = info.error_detail.and_then(|d| d.message) {
                        return Err(RuntimeError::BuildFailed {
                            tag: tag.to_owned(),
                            message: format!("{error}\n{log}"),
                        });
                    }
                }
                Err(e) => {
                    return Err(RuntimeError::BuildFailed {
                        tag: tag.to_owned(),
                        message: format!("{e}\n{log}"),
                    });
                }
            }
        }
        self.inspect_image(tag).await
    }

    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError> {
        if !spec.subnet.contains(spec.gateway) {
            return Err(RuntimeError::InvalidSpec(format!(
                "gateway {} is outside subnet {}",
                spec.gateway, spec.subnet
            )));
        }
        let check = |info: NetworkInfo| {
            if info.subnet == Some(spec.subnet) {
                Ok(info)
            } else {
                Err(RuntimeError::Conflict {
                    what: format!("network {:?}", spec.name),
                    message: format!(
                        "exists with subnet {:?}, wanted {}",
                        info.subnet.map(|s| s.to_string()),
                        spec.subnet
                    ),
                })
            }
        };
        if let Some(existing) = self.networks_named(&spec.name).await?.into_iter().next() {
            return check(existing.info);
        }
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".to_owned()),
            ipam: Some(Ipam {
                driver: Some("default".to_owned()),
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.to_string()),
                    gateway: Some(spec.gateway.to_string()),
                    ..Default::default()
                }]),
                options: None,
            }),
            labels: Some(self.owned_labels(&spec.labels, None)),
            ..Default::default()
        };
        let created_id = match self.docker.create_network(request).await {
            Ok(response) => Some(response.id),
            Err(e) => {
                // A concurrent caller may have won the race: newer engines answer 409 for the
                // name, 20.10 answers 403 "Pool overlaps" for the winner's subnet.
                // The winner may not be listed yet for a moment.
                let contended = matches!(
                    e,
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 403 | 409,
                        ..
                    }
                );
                let attempts = if contended { 20 } else { 1 };
                for attempt in 0..attempts {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(winner) = self.networks_named(&spec.name).await?.into_iter().next()
                    {
                        return check(winner.info);
                    }
                }
                return Err(engine_error(
                    &format!("network {:?}", spec.name),
                    "create network",
                    e,
                ));
            }
        };
        // API 1.41 engines accept duplicate names unless asked to check (a field newer API
        // versions dropped): keep the oldest network of the name and remove ours if we lost.
        let all = self.networks_named(&spec.name).await?;
        let Some(winner) = all.first() else {
            return Err(RuntimeError::NotFound {
                what: format!("network {:?} right after creating it", spec.name),
            });
        };
        if let Some(ours) = created_id.filter(|id| *id != winner.info.id) {
            let _ = self.docker.remove_network(&ours).await;
        }
        check(winner.info.clone())
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        for network in self.networks_named(name).await? {
            match self.docker.remove_network(&network.info.id).await {
                Ok(()) => {}
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => {
                    return Err(engine_error(
                        &format!("network {name:?}"),
                        "remove network",
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<SandboxId, RuntimeError> {
        let mut extra = spec.labels.clone();
        extra.insert(labels::POD_UID.to_owned(), spec.pod_uid.clone());
        extra.insert(labels::POD_NAME.to_owned(), spec.pod_name.clone());
        extra.insert(labels::POD_NAMESPACE.to_owned(), spec.pod_namespace.clone());
        let container_labels = self.owned_labels(&extra, Some(labels::KIND_SANDBOX));

        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for mapping in &spec.port_mappings {
            let key = port_key(mapping.container_port, mapping.protocol);
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: mapping.host_ip.map(|ip| ip.to_string()),
                    host_port: Some(mapping.host_port.to_string()),
                });
        }
        let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let host_config = HostConfig {
            network_mode: Some(spec.network.clone()),
            ipc_mode: Some("shareable".to_owned()),
            dns: non_empty(&spec.dns.servers),
            dns_search: non_empty(&spec.dns.searches),
            dns_options: non_empty(&spec.dns.options),
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            cgroup_parent: spec.cgroup_parent.clone(),
            ..Default::default()
        };
        let endpoint = EndpointSettings {
            ipam_config: spec.ip.map(|ip| EndpointIpamConfig {
                ipv4_address: Some(ip.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            hostname: Some(spec.hostname.clone()).filter(|h| !h.is_empty()),
            labels: Some(container_labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            stop_signal: Some("SIGTERM".to_owned()),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let name = sandbox_engine_name(spec);
        let what = format!("sandbox {name:?}");
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| engine_error(&what, "create sandbox", e))?;
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            let _ = self
                .docker
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await;
            return Err(engine_error(&what, "start sandbox", e));
        }
        Ok(SandboxId(created.id))
    }

    async fn remove_sandbox(&self, id: &SandboxId, grace: Duration) -> Result<(), RuntimeError> {
        match self.stop_raw(&id.0, grace).await {
            Ok(()) | Err(RuntimeError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.remove(&id.0).await
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let sandbox = match self.inspect_raw(&spec.sandbox.0).await {
            Ok(s) => s,
            Err(RuntimeError::NotFound { .. }) => {
                return Err(RuntimeError::NotFound {
                    what: format!("sandbox {}", spec.sandbox),
                });
            }
            Err(e) => return Err(e),
        };
        let sandbox_labels = sandbox
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if sandbox_labels.get(labels::KIND).map(String::as_str) != Some(labels::KIND_SANDBOX) {
            return Err(RuntimeError::InvalidSpec(format!(
                "{} is not a Berth sandbox",
                spec.sandbox
            )));
        }
        let pod = |key: &str| sandbox_labels.get(key).cloned().unwrap_or_default();
        let (pod_uid, pod_name, pod_namespace) = (
            pod(labels::POD_UID),
            pod(labels::POD_NAME),
            pod(labels::POD_NAMESPACE),
        );
        let sandbox_id = sandbox.id.clone().unwrap_or_else(|| spec.sandbox.0.clone());

        let mut extra = spec.labels.clone();
        extra.insert(labels::POD_UID.to_owned(), pod_uid.clone());
        extra.insert(labels::POD_NAME.to_owned(), pod_name.clone());
        extra.insert(labels::POD_NAMESPACE.to_owned(), pod_namespace.clone());
        extra.insert(labels::CONTAINER_NAME.to_owned(), spec.name.clone());
        extra.insert(
            labels::RESTART_COUNT.to_owned(),
            spec.restart_count.to_string(),
        );
        extra.insert(labels::SANDBOX_ID.to_owned(), sandbox_id.clone());
        let container_labels = self.owned_labels(&extra, Some(labels::KIND_CONTAINER));

        let mut binds = Vec::new();
        for mount in &spec.mounts {
            let host = mount.host_path.to_str().ok_or_else(|| {
                RuntimeError::InvalidSpec(format!(
                    "host path {} is not UTF-8",
                    mount.host_path.display()
                ))
            })?;
            if !mount.host_path.is_absolute() || !mount.container_path.starts_with('/') {
                return Err(RuntimeError::InvalidSpec(format!(
                    "mount {host} -> {} needs absolute paths",
                    mount.container_path
                )));
            }
            let mode = if mount.read_only { ":ro" } else { "" };
            binds.push(format!("{host}:{}{mode}", mount.container_path));
        }
        let (cpu_quota, cpu_period, nano_cpus) = match spec.cpu {
            Some(CpuLimit::Quota { quota, period }) => (Some(quota), Some(period), None),
            Some(CpuLimit::NanoCpus(n)) => (None, None, Some(n)),
            None => (None, None, None),
        };
        let host_config = HostConfig {
            network_mode: Some(format!("container:{sandbox_id}")),
            ipc_mode: Some(format!("container:{sandbox_id}")),
            binds: (!binds.is_empty()).then_some(binds),
            memory: spec.memory_limit_bytes,
            // As the kubelet does: no swap beyond the memory limit.
            memory_swap: spec.memory_limit_bytes,
            cpu_quota,
            cpu_period,
            nano_cpus,
            privileged: Some(spec.privileged),
            readonly_rootfs: Some(spec.read_only_rootfs),
            cgroup_parent: sandbox
                .host_config
                .as_ref()
                .and_then(|h| h.cgroup_parent.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: (!spec.command.is_empty()).then(|| spec.command.clone()),
            cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
            env: (!spec.env.is_empty())
                .then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            labels: Some(container_labels),
            stop_signal: spec.stop_signal.clone(),
            tty: Some(spec.tty),
            open_stdin: Some(spec.stdin),
            stdin_once: Some(spec.stdin_once),
            attach_stdin: Some(spec.stdin),
            host_config: Some(host_config),
            ..Default::default()
        };
        let name = container_engine_name(
            &spec.name,
            &pod_name,
            &pod_namespace,
            &pod_uid,
            spec.restart_count,
        );
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| engine_error(&format!("container {name:?}"), "create container", e))?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| engine_error(&format!("container {id:?}"), "start container", e))
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        self.stop_raw(id, grace).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        match self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            // "removal of container ... is already in progress"
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(engine_error(
                &format!("container {id:?}"),
                "remove container",
                e,
            )),
        }
    }

    async fn inspect(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        self.inspect_raw(id).await.map(status_of)
    }

    async fn events(&self) -> Result<Option<EngineEvents>, RuntimeError> {
        // From a little before now: the engine replays what it saw since, so that nothing that
        // happens while the subscription is being made is missed (a repeat only wakes a worker).
        let since = Timestamp::now().as_second() - EVENTS_REPLAY.as_secs() as i64;
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "event".to_owned(),
                ENGINE_EVENT_ACTIONS
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect(),
            ),
            (
                "label".to_owned(),
                vec![
                    format!("{}={}", labels::CLUSTER, self.cluster_uid),
                    format!("{}={}", labels::NODE, self.node_name),
                ],
            ),
        ]);
        let stream = self
            .docker
            .events(Some(EventsOptions {
                since: Some(since.to_string()),
                until: None,
                filters: Some(filters),
            }))
            .map(|r| {
                let ev = r.map_err(|e| engine_error("events", "follow", e))?;
                let actor = ev.actor.unwrap_or_default();
                let attributes = actor.attributes.unwrap_or_default();
                Ok(EngineEvent {
                    container_id: actor.id.unwrap_or_default(),
                    pod_uid: attributes.get(labels::POD_UID).cloned(),
                    action: ev.action.unwrap_or_default(),
                })
            });
        Ok(Some(stream.boxed()))
    }

    async fn list(
        &self,
        label_filters: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerSummary>, RuntimeError> {
        let mut wanted: Vec<String> = vec![
            format!("{}={}", labels::CLUSTER, self.cluster_uid),
            format!("{}={}", labels::NODE, self.node_name),
        ];
        wanted.extend(label_filters.iter().map(|(k, v)| format!("{k}={v}")));
        let filters = HashMap::from([("label".to_owned(), wanted)]);
        let listed = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| engine_error("containers", "list", e))?;
        Ok(listed
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                state: match c.state {
                    Some(ContainerSummaryStateEnum::CREATED) => SummaryState::Created,
                    Some(ContainerSummaryStateEnum::RUNNING) => SummaryState::Running,
                    Some(ContainerSummaryStateEnum::EXITED)
                    | Some(ContainerSummaryStateEnum::DEAD) => SummaryState::Exited,
                    Some(other) => SummaryState::Other(other.to_string()),
                    None => SummaryState::Other(String::new()),
                },
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                created_unix: c.created.unwrap_or(0),
            })
            .collect())
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecSession, RuntimeError> {
        if spec.cmd.is_empty() {
            return Err(RuntimeError::InvalidSpec("exec needs a command".to_owned()));
        }
        let what = format!("container {id:?}");
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    attach_stdin: Some(spec.stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(spec.tty),
                    cmd: Some(spec.cmd.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| engine_error(&what, "create exec", e))?;
        let started = self
            .docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: spec.tty,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| engine_error(&what, "start exec", e))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(RuntimeError::Engine {
                op: format!("start exec in {what}"),
                status: 0,
                message: "the engine detached an attached exec".to_owned(),
            });
        };
        let op_what = what.clone();
        let output = output
            .map_ok(|o| {
                let (stream, data) = log_stream_kind(&o);
                OutputChunk { stream, data }
            })
            .map_err(move |e| engine_error(&op_what, "exec output", e))
            .boxed();
        let docker = self.docker.clone();
        let exec_id = created.id.clone();
        let exit_code = Box::pin(async move {
            let mut delay = Duration::from_millis(5);
            loop {
                let inspected = docker
                    .inspect_exec(&exec_id)
                    .await
                    .map_err(|e| engine_error(&what, "inspect exec", e))?;
                if inspected.running != Some(true) {
                    return Ok(inspected.exit_code.unwrap_or(-1));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(200));
            }
        });
        Ok(ExecSession {
            id: created.id,
            output,
            stdin: spec.stdin.then_some(input),
            exit_code,
        })
    }

    async fn resize_exec(
        &self,
        exec_id: &str,
        width: u16,
        height: u16,
    ) -> Result<(), RuntimeError> {
        self.docker
            .resize_exec(exec_id, bollard::exec::ResizeExecOptions { height, width })
            .await
            .map_err(|e| engine_error(&format!("exec {exec_id:?}"), "resize exec", e))
    }

    async fn logs(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogChunk, RuntimeError>>, RuntimeError> {
        // Fail early (NotFound) instead of in the first stream item.
        self.inspect_raw(id).await?;
        let since = match options.since {
            Some(t) => i32::try_from(t.as_second()).map_err(|_| {
                RuntimeError::InvalidSpec(format!("log start time {t} is out of range"))
            })?,
            None => 0,
        };
        let query = LogsOptions {
            follow: options.follow,
            stdout: true,
            stderr: true,
            since,
            until: 0,
            timestamps: options.timestamps,
            tail: options
                .tail
                .map_or_else(|| "all".to_owned(), |n| n.to_string()),
        };
        let timestamps = options.timestamps;
        let what = format!("container {id:?}");
        let stream = self
            .docker
            .logs(id, Some(query))
            .map(move |item| match item {
                Ok(output) => {
                    let (stream, data) = log_stream_kind(&output);
                    let chunks = if timestamps {
                        split_timestamps(stream, &data)
                    } else {
                        vec![LogChunk {
                            stream,
                            data,
                            timestamp: None,
                        }]
                    };
                    futures::stream::iter(chunks.into_iter().map(Ok).collect::<Vec<_>>())
                }
                Err(e) => futures::stream::iter(vec![Err(engine_error(&what, "logs", e))]),
            })
            .flatten()
            .boxed();
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_get_a_tag_unless_they_have_one() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".to_owned(), Some("latest".to_owned()))
        );
        assert_eq!(
            split_reference("localhost:5000/app:v1"),
            ("localhost:5000/app".to_owned(), Some("v1".to_owned()))
        );
        assert_eq!(
            split_reference("localhost:5000/app"),
            ("localhost:5000/app".to_owned(), Some("latest".to_owned()))
        );
        assert_eq!(
            split_reference("app@sha256:abcd"),
            ("app@sha256:abcd".to_owned(), None)
        );
    }

    #[test]
    fn timestamps_are_split_per_line() {
        let data = Bytes::from_static(
            b"2026-11-25T08:27:30.123456789Z hello\n2026-11-25T08:27:31Z world\n",
        );
        let chunks = split_timestamps(StreamKind::Stdout, &data);
        assert_eq!(chunks.len(), 2);
        assert_eq!(&chunks[0].data[..], b"hello\n");
        assert_eq!(
            chunks[0].timestamp.map(|t| t.to_string()),
            Some("2026-11-25T08:27:30.123456789Z".to_owned())
        );
        assert_eq!(&chunks[1].data[..], b"world\n");
        let plain = split_timestamps(StreamKind::Stderr, &Bytes::from_static(b"no stamp\n"));
        assert_eq!(plain[0].timestamp, None);
        assert_eq!(&plain[0].data[..], b"no stamp\n");
    }

    #[test]
    fn inspect_of_an_exited_container_from_dockerd_20_10() {
        // `docker inspect` of `docker run -m 32m --label ... busybox sh -c 'exit 3'`, API 1.41.
        let raw = include_str!("testdata/inspect_exited_1.41.json");
        let inspect: ContainerInspectResponse = serde_json::from_str(raw).expect("deserialize");
        let status = status_of(inspect);
        assert_eq!(
            status.id,
            "26231d47f933f032a3ca4c31119fc88f0b2b3e434cb1358427e43456de640809"
        );
        assert_eq!(status.name, "fixture-exited");
        assert_eq!(status.image, "berth-test/busybox:1");
        assert_eq!(
            status.image_id,
            "sha256:c07d6d2fa6c996649270fbb395b70bfca75f7f9e7ae271281485f5d90d52ae4f"
        );
        assert_eq!(status.restart_count, 4);
        assert_eq!(status.labels[labels::CLUSTER], "c1");
        let started: Timestamp = "2026-11-25T08:41:14.722253425Z".parse().expect("ts");
        let finished: Timestamp = "2026-11-25T08:41:14.724391905Z".parse().expect("ts");
        assert_eq!(
            status.state,
            ContainerState::Exited {
                code: 3,
                reason: "Error".to_owned(),
                message: None,
                started_at: Some(started),
                finished_at: Some(finished),
            }
        );
        assert_eq!(
            status.created_at,
            Some("2026-11-25T08:41:14.502650312Z".parse().expect("ts"))
        );
        // An exited container has no address any more.
        assert_eq!(status.ip, None);
    }

    #[test]
    fn engine_errors_map_by_status() {
        let server = |status_code: u16| bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: "msg".to_owned(),
        };
        assert!(matches!(
            engine_error("container \"x\"", "inspect", server(404)),
            RuntimeError::NotFound { what } if what.contains("container \"x\"")
        ));
        assert!(matches!(
            engine_error("x", "create", server(409)),
            RuntimeError::Conflict { .. }
        ));
        assert!(matches!(
            engine_error("x", "create", server(500)),
            RuntimeError::Engine { status: 500, .. }
        ));
        assert!(matches!(
            engine_error("x", "create", bollard::errors::Error::RequestTimeoutError),
            RuntimeError::Timeout { .. }
        ));
    }

    #[test]
    fn network_info_takes_the_single_ipv4_subnet() {
        let ipam = Ipam {
            driver: Some("default".to_owned()),
            config: Some(vec![IpamConfig {
                subnet: Some("10.244.9.0/24".to_owned()),
                gateway: Some("10.244.9.1".to_owned()),
                ..Default::default()
            }]),
            options: None,
        };
        let info = network_info("id".to_owned(), "n".to_owned(), Some(&ipam));
        assert_eq!(info.subnet, Some("10.244.9.0/24".parse().expect("cidr")));
        assert_eq!(info.gateway, Some(Ipv4Addr::new(10, 244, 9, 1)));
        assert_eq!(
            network_info("id".to_owned(), "n".to_owned(), None).subnet,
            None
        );
    }

    #[test]
    fn zero_time_is_none() {
        assert_eq!(parse_time(Some("0001-01-01T00:00:00Z")), None);
        assert!(parse_time(Some("2026-11-25T08:27:30.5Z")).is_some());
        assert_eq!(parse_time(Some("garbage")), None);
    }
}
