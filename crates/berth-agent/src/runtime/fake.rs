//! [`FakeRuntime`]: an in-memory [`ContainerRuntime`] for testing the layers above it.
//!
//! Owns a small model of an engine (images, networks, sandboxes, containers and their states), a
//! record of every call ([`FakeRuntime::calls`]) and the scripting hooks tests use: images that
//! exist or can be pulled, container exits, exec results, logs and injected failures.
//!
//! Must not: guess. Anything a test did not set up (an unknown image, an unscripted exec, logs
//! never scripted) is a [`RuntimeError::NotScripted`] naming the call and what to set up; library
//! code here never panics. It must not touch the real engine.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use jiff::Timestamp;

use super::{
    ContainerRuntime, ContainerSpec, ContainerState, ContainerStatus, ContainerSummary,
    EngineEvent, EngineEvents, ExecOutput, ExecSession, ExecSpec, ImageInfo, LogChunk, LogOptions,
    NetworkInfo, NetworkSpec, OutputChunk, PullDecision, RegistryAuth, RuntimeError,
    RuntimeVersion, SandboxId, SandboxSpec, StreamKind, SummaryState, container_engine_name,
    exit_reason, labels, sandbox_engine_name,
};

/// In-memory container runtime that records calls and follows a script.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// A simulated node: every image can be pulled, and calls are not recorded (a long run
    /// must not grow without bound).
    simulated: bool,
    calls: Vec<String>,
    images: BTreeMap<String, ImageInfo>,
    pullable: BTreeMap<String, ImageInfo>,
    networks: BTreeMap<String, NetworkInfo>,
    containers: BTreeMap<String, FakeContainer>,
    next_id: u64,
    failures: BTreeMap<String, VecDeque<String>>,
    execs: Vec<(Vec<String>, ExecOutput)>,
    logs: BTreeMap<String, Vec<LogChunk>>,
    /// Where exits and removals are announced once somebody follows the events.
    events: Option<tokio::sync::broadcast::Sender<EngineEvent>>,
}

#[derive(Debug, Clone)]
struct FakeContainer {
    status: ContainerStatus,
    /// Exit code the container reports when stopped.
    stop_exit_code: i64,
}

impl State {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("fake-{prefix}-{}", self.next_id)
    }

    /// Records the call and returns a scripted failure of `op` if one is queued.
    fn enter(&mut self, op: &str, call: String) -> Result<(), RuntimeError> {
        if !self.simulated {
            self.calls.push(call.clone());
        }
        if let Some(queue) = self.failures.get_mut(op)
            && let Some(message) = queue.pop_front()
        {
            return Err(RuntimeError::Scripted { call, message });
        }
        Ok(())
    }

    /// Announces `action` on container `id` to the followers of the events, as the engine does.
    fn emit(&self, id: &str, action: &str) {
        if let Some(tx) = &self.events {
            let pod_uid = self
                .containers
                .get(id)
                .and_then(|c| c.status.labels.get(labels::POD_UID).cloned());
            let _ = tx.send(EngineEvent {
                container_id: id.to_owned(),
                pod_uid,
                action: action.to_owned(),
            });
        }
    }

    /// Removes a container, announcing its exit (if it ran) and its removal.
    fn remove_container(&mut self, id: &str) {
        if self
            .containers
            .get(id)
            .is_some_and(|c| matches!(c.status.state, ContainerState::Running { .. }))
        {
            self.emit(id, "die");
        }
        self.emit(id, "destroy");
        self.containers.remove(id);
    }

    fn container(&mut self, id: &str) -> Result<&mut FakeContainer, RuntimeError> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound {
                what: format!("container {id:?}"),
            })
    }
}

impl FakeRuntime {
    /// An empty engine: no images, networks or containers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The engine of a simulated node (`berth agent --simulate`): any image can be pulled, and
    /// calls are not recorded.
    pub fn simulated() -> Self {
        let rt = Self::default();
        rt.lock().simulated = true;
        rt
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide its own failure.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far, in order, e.g. `start fake-container-2`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Makes an image present on the node.
    pub fn add_image(&self, reference: &str, id: &str) {
        self.lock()
            .images
            .insert(reference.to_owned(), fake_image(reference, id));
    }

    /// Makes an image pullable from its registry.
    pub fn add_pullable_image(&self, reference: &str, id: &str) {
        self.lock()
            .pullable
            .insert(reference.to_owned(), fake_image(reference, id));
    }

    /// Makes the next call of `op` (a trait method name such as `start`) fail with `message`.
    /// Several calls queue several failures.
    pub fn fail_next(&self, op: &str, message: &str) {
        self.lock()
            .failures
            .entry(op.to_owned())
            .or_default()
            .push_back(message.to_owned());
    }

    /// Scripts the result of an exec of exactly `cmd` in any container.
    pub fn script_exec(&self, cmd: &[&str], output: ExecOutput) {
        let cmd = cmd.iter().map(|s| (*s).to_owned()).collect();
        self.lock().execs.push((cmd, output));
    }

    /// Scripts the logs of a container (all of them; `tail` applies).
    pub fn script_logs(&self, id: &str, chunks: Vec<LogChunk>) {
        self.lock().logs.insert(id.to_owned(), chunks);
    }

    /// Sets the exit code a container reports when it is stopped (0 unless set).
    pub fn set_stop_exit_code(&self, id: &str, code: i64) -> Result<(), RuntimeError> {
        self.lock().container(id)?.stop_exit_code = code;
        Ok(())
    }

    /// Makes a running container exit by itself with `code` (`oom_killed` for an OOM kill).
    pub fn exit_container(
        &self,
        id: &str,
        code: i64,
        oom_killed: bool,
    ) -> Result<(), RuntimeError> {
        let mut state = self.lock();
        let container = state.container(id)?;
        let ContainerState::Running { started_at } = container.status.state else {
            return Err(RuntimeError::Conflict {
                what: format!("container {id:?}"),
                message: format!(
                    "only a running container can exit, it is {:?}",
                    container.status.state
                ),
            });
        };
        container.status.state = ContainerState::Exited {
            code,
            reason: exit_reason(code, oom_killed).to_owned(),
            message: None,
            started_at,
            finished_at: Some(Timestamp::now()),
        };
        if oom_killed {
            state.emit(id, "oom");
        }
        state.emit(id, "die");
        Ok(())
    }

    /// Status of every container and sandbox, in ID order.
    pub fn containers(&self) -> Vec<ContainerStatus> {
        self.lock()
            .containers
            .values()
            .map(|c| c.status.clone())
            .collect()
    }
}

fn fake_image(reference: &str, id: &str) -> ImageInfo {
    ImageInfo {
        id: id.to_owned(),
        repo_tags: vec![reference.to_owned()],
        repo_digests: Vec::new(),
        size: 0,
    }
}

fn summary_state(state: &ContainerState) -> SummaryState {
    match state {
        ContainerState::Created => SummaryState::Created,
        ContainerState::Running { .. } => SummaryState::Running,
        ContainerState::Exited { .. } => SummaryState::Exited,
        ContainerState::Unknown { status } => SummaryState::Other(status.clone()),
    }
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn ping(&self) -> Result<(), RuntimeError> {
        self.lock().enter("ping", "ping".to_owned())
    }

    async fn version(&self) -> Result<RuntimeVersion, RuntimeError> {
        self.lock().enter("version", "version".to_owned())?;
        Ok(RuntimeVersion {
            runtime: "fake".to_owned(),
            version: "0.0.0".to_owned(),
            api_version: "1.41".to_owned(),
        })
    }

    async fn image_present(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        let mut state = self.lock();
        state.enter("image_present", format!("image_present {reference}"))?;
        Ok(state.images.get(reference).cloned())
    }

    async fn ensure_image(
        &self,
        reference: &str,
        pull: PullDecision,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        let mut state = self.lock();
        let call = format!(
            "ensure_image {reference} {pull:?}{}",
            auth.map(|a| format!(" auth={}@{}", a.username, a.server))
                .unwrap_or_default()
        );
        state.enter("ensure_image", call.clone())?;
        match pull {
            PullDecision::NoPull => {
                state
                    .images
                    .get(reference)
                    .cloned()
                    .ok_or_else(|| RuntimeError::ImageNotPresent {
                        reference: reference.to_owned(),
                    })
            }
            PullDecision::Pull => {
                let simulated = state
                    .simulated
                    .then(|| fake_image(reference, &format!("sha256:simulated-{reference}")));
                let Some(image) = state.pullable.get(reference).cloned().or(simulated) else {
                    return Err(RuntimeError::NotScripted {
                        call,
                        hint: format!("add_pullable_image({reference:?}, id)"),
                    });
                };
                state.images.insert(reference.to_owned(), image.clone());
                Ok(image)
            }
        }
    }

    async fn build_image_from_tar(&self, tag: &str, tar: Bytes) -> Result<ImageInfo, RuntimeError> {
        let mut state = self.lock();
        state.enter(
            "build_image_from_tar",
            format!("build_image_from_tar {tag} {} bytes", tar.len()),
        )?;
        let id = format!("sha256:fake-build-{}", state.images.len() + 1);
        let image = fake_image(tag, &id);
        state.images.insert(tag.to_owned(), image.clone());
        Ok(image)
    }

    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError> {
        let mut state = self.lock();
        state.enter(
            "ensure_network",
            format!("ensure_network {} {}", spec.name, spec.subnet),
        )?;
        if let Some(existing) = state.networks.get(&spec.name) {
            if existing.subnet != Some(spec.subnet) {
                return Err(RuntimeError::Conflict {
                    what: format!("network {:?}", spec.name),
                    message: format!("exists with subnet {:?}", existing.subnet),
                });
            }
            return Ok(existing.clone());
        }
        let info = NetworkInfo {
            id: state.new_id("network"),
            name: spec.name.clone(),
            subnet: Some(spec.subnet),
            gateway: Some(spec.gateway),
        };
        state.networks.insert(spec.name.clone(), info.clone());
        Ok(info)
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        let mut state = self.lock();
        state.enter("remove_network", format!("remove_network {name}"))?;
        state.networks.remove(name);
        Ok(())
    }

    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<SandboxId, RuntimeError> {
        let mut state = self.lock();
        let call = format!(
            "create_sandbox {}/{} attempt={}",
            spec.pod_namespace, spec.pod_name, spec.attempt
        );
        state.enter("create_sandbox", call.clone())?;
        let Some(image) = state.images.get(&spec.image).cloned() else {
            return Err(RuntimeError::NotScripted {
                call,
                hint: format!("add_image({:?}, id) for the sandbox image", spec.image),
            });
        };
        let Some(network) = state.networks.get(&spec.network).cloned() else {
            return Err(RuntimeError::NotFound {
                what: format!("network {:?}", spec.network),
            });
        };
        if let (Some(ip), Some(subnet)) = (spec.ip, network.subnet)
            && !subnet.contains(ip)
        {
            return Err(RuntimeError::InvalidSpec(format!(
                "IP {ip} is outside {subnet}"
            )));
        }
        let name = sandbox_engine_name(spec);
        if state.containers.values().any(|c| c.status.name == name) {
            return Err(RuntimeError::Conflict {
                what: format!("sandbox {name:?}"),
                message: "name in use".to_owned(),
            });
        }
        // Like the engine's IPAM: the asked-for address, else the first free one after the
        // gateway.
        let ip = spec.ip.or_else(|| {
            let subnet = network.subnet?;
            let used: Vec<std::net::Ipv4Addr> = state
                .containers
                .values()
                .filter_map(|c| c.status.ip)
                .collect();
            (2..(1u32 << (32 - u32::from(subnet.prefix))) - 1)
                .map(|o| std::net::Ipv4Addr::from(u32::from(subnet.addr) + o))
                .find(|ip| !used.contains(ip))
        });
        let id = state.new_id("sandbox");
        let mut all_labels = spec.labels.clone();
        all_labels.insert(labels::KIND.to_owned(), labels::KIND_SANDBOX.to_owned());
        all_labels.insert(labels::POD_UID.to_owned(), spec.pod_uid.clone());
        all_labels.insert(labels::POD_NAME.to_owned(), spec.pod_name.clone());
        all_labels.insert(labels::POD_NAMESPACE.to_owned(), spec.pod_namespace.clone());
        let now = Timestamp::now();
        state.containers.insert(
            id.clone(),
            FakeContainer {
                status: ContainerStatus {
                    id: id.clone(),
                    name,
                    state: ContainerState::Running {
                        started_at: Some(now),
                    },
                    image: spec.image.clone(),
                    image_id: image.id,
                    restart_count: 0,
                    created_at: Some(now),
                    labels: all_labels,
                    ip,
                },
                stop_exit_code: 0,
            },
        );
        Ok(SandboxId(id))
    }

    async fn remove_sandbox(&self, id: &SandboxId, grace: Duration) -> Result<(), RuntimeError> {
        let mut state = self.lock();
        state.enter("remove_sandbox", format!("remove_sandbox {id} {grace:?}"))?;
        state.remove_container(&id.0);
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut state = self.lock();
        let call = format!(
            "create_container {} in {} restart={}",
            spec.name, spec.sandbox, spec.restart_count
        );
        state.enter("create_container", call.clone())?;
        let Some(sandbox) = state.containers.get(&spec.sandbox.0).cloned() else {
            return Err(RuntimeError::NotFound {
                what: format!("sandbox {}", spec.sandbox),
            });
        };
        let Some(image) = state.images.get(&spec.image).cloned() else {
            return Err(RuntimeError::NotScripted {
                call,
                hint: format!(
                    "add_image({:?}, id) (or ensure_image before create_container)",
                    spec.image
                ),
            });
        };
        let pod = |key: &str| sandbox.status.labels.get(key).cloned().unwrap_or_default();
        let name = container_engine_name(
            &spec.name,
            &pod(labels::POD_NAME),
            &pod(labels::POD_NAMESPACE),
            &pod(labels::POD_UID),
            spec.restart_count,
        );
        if state.containers.values().any(|c| c.status.name == name) {
            return Err(RuntimeError::Conflict {
                what: format!("container {name:?}"),
                message: "name in use".to_owned(),
            });
        }
        let mut all_labels = spec.labels.clone();
        for key in [labels::POD_UID, labels::POD_NAME, labels::POD_NAMESPACE] {
            all_labels.insert(key.to_owned(), pod(key));
        }
        all_labels.insert(labels::KIND.to_owned(), labels::KIND_CONTAINER.to_owned());
        all_labels.insert(labels::CONTAINER_NAME.to_owned(), spec.name.clone());
        all_labels.insert(
            labels::RESTART_COUNT.to_owned(),
            spec.restart_count.to_string(),
        );
        all_labels.insert(labels::SANDBOX_ID.to_owned(), spec.sandbox.0.clone());
        let id = state.new_id("container");
        state.containers.insert(
            id.clone(),
            FakeContainer {
                status: ContainerStatus {
                    id: id.clone(),
                    name,
                    state: ContainerState::Created,
                    image: spec.image.clone(),
                    image_id: image.id,
                    restart_count: spec.restart_count,
                    created_at: Some(Timestamp::now()),
                    labels: all_labels,
                    ip: None,
                },
                stop_exit_code: 0,
            },
        );
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.lock();
        state.enter("start", format!("start {id}"))?;
        let container = state.container(id)?;
        match container.status.state {
            ContainerState::Running { .. } => Ok(()),
            _ => {
                container.status.state = ContainerState::Running {
                    started_at: Some(Timestamp::now()),
                };
                Ok(())
            }
        }
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let mut state = self.lock();
        state.enter("stop", format!("stop {id} {grace:?}"))?;
        let container = state.container(id)?;
        if let ContainerState::Running { started_at } = container.status.state {
            let code = container.stop_exit_code;
            container.status.state = ContainerState::Exited {
                code,
                reason: exit_reason(code, false).to_owned(),
                message: None,
                started_at,
                finished_at: Some(Timestamp::now()),
            };
            state.emit(id, "die");
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.lock();
        state.enter("remove", format!("remove {id}"))?;
        state.remove_container(id);
        Ok(())
    }

    async fn events(&self) -> Result<Option<EngineEvents>, RuntimeError> {
        let mut state = self.lock();
        state.enter("events", "events".to_owned())?;
        let tx = state
            .events
            .get_or_insert_with(|| tokio::sync::broadcast::channel(1024).0);
        let rx = tx.subscribe();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(ev) => Some((Ok(ev), rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => Some((
                    Err(RuntimeError::Engine {
                        op: "follow events".into(),
                        status: 0,
                        message: format!("{n} events were missed"),
                    }),
                    rx,
                )),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok(Some(stream.boxed()))
    }

    async fn inspect(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        let mut state = self.lock();
        state.enter("inspect", format!("inspect {id}"))?;
        Ok(state.container(id)?.status.clone())
    }

    async fn list(
        &self,
        label_filters: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerSummary>, RuntimeError> {
        let mut state = self.lock();
        let filters: Vec<String> = label_filters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        state.enter("list", format!("list {}", filters.join(",")))?;
        Ok(state
            .containers
            .values()
            .filter(|c| {
                label_filters
                    .iter()
                    .all(|(k, v)| c.status.labels.get(k) == Some(v))
            })
            .map(|c| ContainerSummary {
                id: c.status.id.clone(),
                name: c.status.name.clone(),
                image: c.status.image.clone(),
                image_id: c.status.image_id.clone(),
                state: summary_state(&c.status.state),
                labels: c.status.labels.clone(),
                created_unix: c.status.created_at.map_or(0, |t| t.as_second()),
            })
            .collect())
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecSession, RuntimeError> {
        let mut state = self.lock();
        let call = format!("exec {id} {:?}", spec.cmd);
        state.enter("exec", call.clone())?;
        let container = state.container(id)?;
        if !matches!(container.status.state, ContainerState::Running { .. }) {
            return Err(RuntimeError::Conflict {
                what: format!("container {id:?}"),
                message: "is not running".to_owned(),
            });
        }
        let Some((_, output)) = state.execs.iter().find(|(cmd, _)| *cmd == spec.cmd) else {
            return Err(RuntimeError::NotScripted {
                call,
                hint: format!("script_exec(&{:?}, output)", spec.cmd),
            });
        };
        let output = output.clone();
        let exec_id = state.new_id("exec");
        let mut chunks = Vec::new();
        if !output.stdout.is_empty() {
            chunks.push(Ok(OutputChunk {
                stream: StreamKind::Stdout,
                data: Bytes::from(output.stdout),
            }));
        }
        if !output.stderr.is_empty() {
            chunks.push(Ok(OutputChunk {
                stream: if spec.tty {
                    StreamKind::Stdout
                } else {
                    StreamKind::Stderr
                },
                data: Bytes::from(output.stderr),
            }));
        }
        let code = output.exit_code;
        Ok(ExecSession {
            id: exec_id,
            output: futures::stream::iter(chunks).boxed(),
            stdin: spec
                .stdin
                .then(|| Box::pin(tokio::io::sink()) as std::pin::Pin<Box<_>>),
            exit_code: Box::pin(async move { Ok(code) }),
        })
    }

    async fn resize_exec(
        &self,
        exec_id: &str,
        width: u16,
        height: u16,
    ) -> Result<(), RuntimeError> {
        self.lock().enter(
            "resize_exec",
            format!("resize_exec {exec_id} {width}x{height}"),
        )
    }

    async fn logs(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogChunk, RuntimeError>>, RuntimeError> {
        let mut state = self.lock();
        let call = format!(
            "logs {id} follow={} tail={:?}",
            options.follow, options.tail
        );
        state.enter("logs", call.clone())?;
        state.container(id)?;
        let Some(chunks) = state.logs.get(id) else {
            return Err(RuntimeError::NotScripted {
                call,
                hint: format!("script_logs({id:?}, chunks)"),
            });
        };
        let skip = options.tail.map_or(0, |n| chunks.len().saturating_sub(n));
        let since = options.since;
        let timestamps = options.timestamps;
        let selected: Vec<Result<LogChunk, RuntimeError>> = chunks
            .iter()
            .skip(skip)
            .filter(|c| match (since, c.timestamp) {
                (Some(since), Some(t)) => t >= since,
                _ => true,
            })
            .map(|c| {
                let mut c = c.clone();
                if !timestamps {
                    c.timestamp = None;
                }
                Ok(c)
            })
            .collect();
        Ok(futures::stream::iter(selected).boxed())
    }
}
