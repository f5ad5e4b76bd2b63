//! The pod worker: one task per pod bound to this node, making the engine match the pod.
//!
//! Each sync is level-triggered and idempotent: it lists what runs for the pod's UID, and from
//! that alone decides the next step: create the sandbox (with the pod's volumes and
//! service-account files), run init containers one after another, start or restart app
//! containers per `restartPolicy` with back-off, kill containers whose liveness or startup probe
//! failed, pull images per `imagePullPolicy` with `imagePullSecrets`, keep one previous
//! container per name for `logs --previous`, and write the status when it changed. A pod being
//! deleted is stopped (preStop, SIGTERM, grace period, SIGKILL), its containers and files are
//! removed, and then its object is deleted.
//!
//! Owns [`PodWorker`] and [`Shared`] (what all workers use). Must not watch the API (the
//! manager feeds it) or touch containers of other pods.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Container, LifecycleHandler, Pod, Secret};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::api::ClusterApi;
use crate::config::AgentConfig;
use crate::events::{NORMAL, Recorder, WARNING};
use crate::pod::backoff::Backoff;
use crate::pod::engine::EngineView;
use crate::pod::probe::{FailureHook, ProbeKind, ProbeResults, Prober};
use crate::pod::spec::{self, PodContext};
use crate::pod::status::{Observed, StatusInput, Waiting, pod_status};
use crate::pod::volumes::{PodDirs, file_volumes, prepare_claims};
use crate::runtime::{
    self, ContainerRuntime, ContainerState, PullDecision, RegistryAuth, RuntimeError, SandboxId,
    labels,
};

/// How long a service-account token is asked for, and when it is renewed.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(2400);

/// What every pod worker uses.
pub struct Shared {
    /// The container engine.
    pub runtime: Arc<dyn ContainerRuntime>,
    /// The API server.
    pub api: Arc<dyn ClusterApi>,
    /// Event recorder.
    pub recorder: Recorder,
    /// The ConfigMaps and Secrets the pods use, watched.
    pub sources: crate::pod::sources::Sources,
    /// Agent settings.
    pub config: AgentConfig,
    /// The node's pod network on the engine.
    pub network: String,
    /// Node allocatable, for `resourceFieldRef` defaults.
    pub node_allocatable: BTreeMap<String, String>,
    /// What the agent remembers of the engine between calls.
    pub engine: EngineView,
}

/// What starting a container of the pod needs, fixed for one sync.
struct Launch<'a> {
    ctx: &'a PodContext,
    sandbox: &'a SandboxId,
    pull_secrets: &'a [Secret],
    now: Timestamp,
}

/// The state one pod's worker keeps between syncs.
pub struct PodWorker {
    shared: Arc<Shared>,
    uid: String,
    first_seen: Timestamp,
    restart_backoff: Backoff,
    pull_backoff: Backoff,
    pull_failures: HashMap<String, (Timestamp, String)>,
    probers: HashMap<String, (String, Prober)>,
    inspected: HashMap<String, runtime::ContainerStatus>,
    last_status: Option<Value>,
    token_at: Option<Instant>,
    reported: HashSet<String>,
    wake: Arc<Notify>,
    last_pod: Option<Arc<Pod>>,
    /// Whether the current sync changed the pod's containers on the engine.
    mutated: bool,
    /// Whether that change stopped, started or removed something that existed (not only
    /// created new containers).
    destructive: bool,
    /// What the current sync created.
    created: Vec<String>,
    /// The list the last look at the engine used.
    listed: Vec<runtime::ContainerSummary>,
    /// When the look that `listed` comes from began (its list, or the relist it took).
    listed_at: Option<Instant>,
    /// When the last sync that changed them finished.
    last_mutation: Option<Instant>,
    /// Whether `listed` is as new as that change: the sync only created containers and looked
    /// at them afterwards (its own view then stands in for a list until a relist is newer).
    view_is_current: bool,
}

fn pod_key(pod: &Pod) -> (String, String) {
    (
        pod.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// Whether a container that exited with `code` is started again under `policy`.
pub fn should_restart(policy: &str, code: i64) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => code != 0,
        _ => true,
    }
}

/// The coarse state a list reports for a container in `state`.
fn summary_state(state: &ContainerState) -> runtime::SummaryState {
    match state {
        ContainerState::Running { .. } => runtime::SummaryState::Running,
        ContainerState::Exited { .. } => runtime::SummaryState::Exited,
        _ => runtime::SummaryState::Created,
    }
}

/// The attempt number at the end of a sandbox's engine name (`k8s_POD_..._<attempt>`).
fn sandbox_attempt(name: &str) -> u32 {
    name.rsplit('_')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The registry host of an image reference (`docker.io` when it names none).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

/// Credentials for `image` from `.dockerconfigjson` / `.dockercfg` secrets.
pub fn registry_auth(image: &str, secrets: &[Secret]) -> Option<RegistryAuth> {
    let registry = registry_of(image);
    let normalize = |key: &str| {
        let k = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        k.split('/').next().unwrap_or(k).to_string()
    };
    for s in secrets {
        let data = s.data.clone().unwrap_or_default();
        let (auths, raw) = if let Some(b) = data.get(".dockerconfigjson") {
            (true, b.0.clone())
        } else if let Some(b) = data.get(".dockercfg") {
            (false, b.0.clone())
        } else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&raw) else {
            continue;
        };
        let entries = if auths {
            v.get("auths").cloned()
        } else {
            Some(v)
        };
        let Some(Value::Object(entries)) = entries else {
            continue;
        };
        for (key, entry) in entries {
            let host = normalize(&key);
            let matches = host == registry
                || (registry == "docker.io"
                    && (host == "index.docker.io" || host == "registry-1.docker.io"));
            if !matches {
                continue;
            }
            let mut username = entry["username"].as_str().unwrap_or_default().to_string();
            let mut password = entry["password"].as_str().unwrap_or_default().to_string();
            if let Some(auth) = entry["auth"].as_str()
                && username.is_empty()
            {
                use base64::Engine as _;
                if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth)
                    && let Ok(text) = String::from_utf8(decoded)
                    && let Some((u, p)) = text.split_once(':')
                {
                    username = u.to_string();
                    password = p.to_string();
                }
            }
            return Some(RegistryAuth {
                username,
                password,
                server: registry.to_string(),
            });
        }
    }
    None
}

/// Names of the ConfigMaps and Secrets a pod refers to.
pub fn referenced_sources(pod: &Pod) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut cms = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    let Some(spec) = &pod.spec else {
        return (cms, secrets);
    };
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            cms.insert(cm.name.clone());
        }
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.insert(s);
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(cm) = &src.config_map {
                cms.insert(cm.name.clone());
            }
            if let Some(s) = &src.secret {
                secrets.insert(s.name.clone());
            }
        }
    }
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for e in c.env.iter().flatten() {
            if let Some(vf) = &e.value_from {
                if let Some(r) = &vf.config_map_key_ref {
                    cms.insert(r.name.clone());
                }
                if let Some(r) = &vf.secret_key_ref {
                    secrets.insert(r.name.clone());
                }
            }
        }
        for ef in c.env_from.iter().flatten() {
            if let Some(r) = &ef.config_map_ref {
                cms.insert(r.name.clone());
            }
            if let Some(r) = &ef.secret_ref {
                secrets.insert(r.name.clone());
            }
        }
    }
    for r in spec.image_pull_secrets.iter().flatten() {
        secrets.insert(r.name.clone());
    }
    cms.remove("");
    secrets.remove("");
    (cms, secrets)
}

fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// The grace period of a pod being stopped.
fn grace_period(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn all_containers(pod: &Pod) -> Vec<Container> {
    pod.spec
        .iter()
        .flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        })
        .cloned()
        .collect()
}

impl Drop for PodWorker {
    /// The pod's ConfigMaps and Secrets need no watching for it any more.
    fn drop(&mut self) {
        self.shared.sources.release(&self.uid);
    }
}

impl PodWorker {
    /// A worker for the pod with `uid`.
    pub fn new(shared: Arc<Shared>, uid: String, wake: Arc<Notify>) -> Self {
        let b = Backoff::new(shared.config.backoff_initial, shared.config.backoff_max);
        Self {
            uid,
            first_seen: Timestamp::now(),
            restart_backoff: b.clone(),
            pull_backoff: b,
            pull_failures: HashMap::new(),
            probers: HashMap::new(),
            inspected: HashMap::new(),
            mutated: false,
            destructive: false,
            created: Vec::new(),
            listed: Vec::new(),
            listed_at: None,
            last_mutation: None,
            view_is_current: false,
            last_status: None,
            token_at: None,
            reported: HashSet::new(),
            wake,
            last_pod: None,
            shared,
        }
    }

    /// Runs until the pod is gone (then stops and removes everything it had) or until `pods`
    /// is closed (the agent is stopping: containers keep running and are adopted at restart).
    pub async fn run(mut self, mut pods: watch::Receiver<Option<Arc<Pod>>>) {
        loop {
            let pod = pods.borrow_and_update().clone();
            self.mutated = false;
            // A teardown stops and removes: only a sync's own look may stand in after it.
            self.view_is_current &=
                matches!(&pod, Some(p) if p.metadata.deletion_timestamp.is_none());
            let wait = match pod {
                None => {
                    let last = self.last_pod.take();
                    self.teardown(last.as_deref(), None).await;
                    return;
                }
                Some(p) if p.metadata.deletion_timestamp.is_some() => {
                    let grace = grace_period(&p);
                    self.teardown(Some(&p), Some(grace)).await;
                    let (ns, name) = pod_key(&p);
                    match self.shared.api.delete_pod(&ns, &name, &self.uid).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "could not remove the pod object");
                            Duration::from_secs(2)
                        }
                    }
                }
                Some(p) => {
                    self.last_pod = Some(Arc::clone(&p));
                    match self.sync(&p).await {
                        Ok(d) => d,
                        Err(e) => {
                            let (ns, name) = pod_key(&p);
                            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "pod sync failed");
                            Duration::from_secs(2)
                        }
                    }
                }
            };
            if self.mutated {
                self.last_mutation = Some(Instant::now());
            }
            tokio::select! {
                r = pods.changed() => if r.is_err() { return; },
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The pod's containers on the engine (sandboxes first-class), inspected.
    /// The manager's last relist stands in for a list when it began after this worker's last
    /// change to the engine and after the engine's last report on the pod; until such a relist
    /// comes, the worker's own look after a change that only created containers does, unless
    /// the engine reported a change since that look began (and the relist wakes the worker).
    async fn observe(&mut self) -> Result<(Observed, Vec<runtime::ContainerStatus>), RuntimeError> {
        let engine = &self.shared.engine;
        let known = if self.destructive {
            None
        } else if self.mutated {
            // Only new containers since the last look: that list and them.
            let mut list = self.listed.clone();
            list.extend(self.created.iter().map(|id| self.created_summary(id)));
            Some(list)
        } else if let Some((began, list)) = engine.containers_of(&self.uid, self.last_mutation) {
            self.listed_at = Some(began);
            Some(list)
        } else if self.view_is_current && !engine.reported_since(&self.uid, self.listed_at) {
            engine.await_relist(&self.uid);
            Some(self.listed.clone())
        } else {
            None
        };
        let list = match known {
            Some(list) => list,
            None => {
                self.listed_at = Some(Instant::now());
                let filter = BTreeMap::from([(labels::POD_UID.to_string(), self.uid.clone())]);
                self.shared.runtime.list(&filter).await?
            }
        };
        let mut listed = Vec::with_capacity(list.len());
        let mut obs = Observed::default();
        let mut dead_sandboxes = Vec::new();
        let mut seen = HashSet::new();
        for summary in list {
            seen.insert(summary.id.clone());
            let cached = self.inspected.get(&summary.id).filter(|c| {
                matches!(
                    (&c.state, &summary.state),
                    (ContainerState::Exited { .. }, runtime::SummaryState::Exited)
                        | (
                            ContainerState::Running { .. },
                            runtime::SummaryState::Running
                        )
                )
            });
            let status = match cached {
                Some(c) => c.clone(),
                None => match self.shared.runtime.inspect(&summary.id).await {
                    Ok(s) => {
                        self.inspected.insert(s.id.clone(), s.clone());
                        s
                    }
                    Err(RuntimeError::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                },
            };
            // Remembered as inspected, so that this view can stand in for a later list.
            listed.push(runtime::ContainerSummary {
                state: summary_state(&status.state),
                ..summary
            });
            let kind = status.labels.get(labels::KIND).map(String::as_str);
            if kind == Some(labels::KIND_SANDBOX) {
                let running = matches!(status.state, ContainerState::Running { .. });
                let newer = obs
                    .sandbox
                    .as_ref()
                    .is_none_or(|s| sandbox_attempt(&status.name) > sandbox_attempt(&s.name));
                if running && newer {
                    if let Some(old) = obs.sandbox.replace(status) {
                        dead_sandboxes.push(old);
                    }
                } else {
                    dead_sandboxes.push(status);
                }
            } else if let Some(name) = status.labels.get(labels::CONTAINER_NAME).cloned() {
                obs.containers.entry(name).or_default().push(status);
            }
        }
        self.inspected.retain(|id, _| seen.contains(id));
        self.listed = listed;
        for v in obs.containers.values_mut() {
            v.sort_by(|a, b| {
                b.restart_count
                    .cmp(&a.restart_count)
                    .then(b.created_at.cmp(&a.created_at))
            });
        }
        Ok((obs, dead_sandboxes))
    }

    /// A list entry for a container this sync created: its state as inspected, if it was.
    fn created_summary(&self, id: &str) -> runtime::ContainerSummary {
        let state = self
            .inspected
            .get(id)
            .map_or(runtime::SummaryState::Created, |c| summary_state(&c.state));
        runtime::ContainerSummary {
            id: id.to_owned(),
            name: String::new(),
            image: String::new(),
            image_id: String::new(),
            state,
            labels: BTreeMap::new(),
            created_unix: 0,
        }
    }

    async fn fetch_sources(&self, pod: &Pod, ctx: &mut PodContext) -> Vec<Secret> {
        let (ns, _) = pod_key(pod);
        let (cms, secrets) = referenced_sources(pod);
        let sources = &self.shared.sources;
        for name in cms {
            match sources.config_map(&self.uid, &self.wake, &ns, &name).await {
                Ok(Some(cm)) => {
                    ctx.config_maps.insert(name, config_map_data(&cm));
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(configmap = %name, error = %e, "could not read"),
            }
        }
        let mut pull_secrets = Vec::new();
        let wanted: BTreeSet<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten())
            .map(|r| r.name.clone())
            .collect();
        for name in secrets {
            match sources.secret(&self.uid, &self.wake, &ns, &name).await {
                Ok(Some(s)) => {
                    ctx.secrets.insert(name.clone(), secret_data(&s));
                    if wanted.contains(&name) {
                        pull_secrets.push(Secret::clone(&s));
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(secret = %name, error = %e, "could not read"),
            }
        }
        pull_secrets
    }

    fn context(&self, pod_ip: Option<IpAddr>, dirs: &PodDirs, attempt: u32) -> PodContext {
        let c = &self.shared.config;
        PodContext {
            node_name: c.node_name.clone(),
            host_ip: Some(c.node_ip),
            pod_ip,
            cluster_dns: c.cluster_dns.clone(),
            cluster_domain: c.cluster_domain.clone(),
            service_host: c.api_host.clone(),
            service_port: c.api_port,
            network: self.shared.network.clone(),
            sandbox_image: c.sandbox_image.clone(),
            sandbox_attempt: attempt,
            volume_root: dirs.volumes(),
            service_account_dir: dirs.service_account(),
            claim_root: c.claim_root(),
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
            node_allocatable: self.shared.node_allocatable.clone(),
        }
    }

    async fn refresh_token(&mut self, pod: &Pod, dirs: &PodDirs) {
        let automount = pod
            .spec
            .as_ref()
            .and_then(|s| s.automount_service_account_token)
            .unwrap_or(true);
        let fresh = self
            .token_at
            .is_some_and(|t| t.elapsed() < TOKEN_RENEW_AFTER);
        if fresh {
            return;
        }
        let (ns, _) = pod_key(pod);
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let token = if automount {
            match self
                .shared
                .api
                .request_token(&ns, &sa, pod, TOKEN_LIFETIME.as_secs() as i64)
                .await
            {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::debug!(serviceaccount = %sa, error = %e, "no service-account token");
                    None
                }
            }
        } else {
            None
        };
        let written = dirs.sync_service_account(
            token.as_deref().unwrap_or_default(),
            &self.shared.config.ca_pem,
            &ns,
        );
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not write service-account files");
        } else if token.is_some() {
            self.token_at = Some(Instant::now());
        }
    }

    /// One level-triggered pass; returns when to look again at the latest.
    pub async fn sync(&mut self, pod: &Arc<Pod>) -> Result<Duration, RuntimeError> {
        self.mutated = false;
        self.destructive = false;
        self.created.clear();
        let r = self.sync_once(pod).await;
        if self.mutated {
            self.last_mutation = Some(Instant::now());
            self.view_is_current = r.is_ok() && !self.destructive;
        }
        r
    }

    async fn sync_once(&mut self, pod: &Arc<Pod>) -> Result<Duration, RuntimeError> {
        let now = Timestamp::now();
        let mut next = self.shared.config.resync_interval;
        let (mut obs, dead_sandboxes) = self.observe().await?;
        let dirs = PodDirs::new(self.shared.config.pod_dir(&self.uid));
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let terminal = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let mut waiting: BTreeMap<String, Waiting> = BTreeMap::new();
        let attempt = obs
            .sandbox
            .as_ref()
            .map(|s| sandbox_attempt(&s.name))
            .or_else(|| {
                dead_sandboxes
                    .iter()
                    .map(|s| sandbox_attempt(&s.name) + 1)
                    .max()
            })
            .unwrap_or(0);
        let mut ctx = self.context(
            obs.sandbox.as_ref().and_then(|s| s.ip).map(IpAddr::V4),
            &dirs,
            attempt,
        );
        let pull_secrets = self.fetch_sources(pod, &mut ctx).await;

        if !terminal {
            // Files first: a new sandbox's containers need them, a running one's see updates.
            let files_ok = self.sync_files(pod, &dirs, &ctx).await;
            if obs.sandbox.is_none() {
                if !files_ok {
                    return self
                        .finish(pod, &obs, &waiting, now, Duration::from_secs(2))
                        .await;
                }
                self.mutated = true;
                // A dead sandbox takes its containers with it.
                for list in obs.containers.values() {
                    for c in list {
                        if matches!(c.state, ContainerState::Running { .. }) {
                            self.destructive = true;
                            self.shared.runtime.stop(&c.id, Duration::ZERO).await?;
                        }
                    }
                }
                for s in &dead_sandboxes {
                    self.destructive = true;
                    self.shared
                        .runtime
                        .remove_sandbox(&SandboxId(s.id.clone()), Duration::ZERO)
                        .await?;
                }
                let sb = spec::sandbox_spec(pod, &ctx)
                    .map_err(|e| RuntimeError::InvalidSpec(e.to_string()))?;
                let engine = &self.shared.engine;
                if engine.image(&ctx.sandbox_image).is_none() {
                    let image = self
                        .shared
                        .runtime
                        .ensure_image(&ctx.sandbox_image, PullDecision::NoPull, None)
                        .await?;
                    engine.image_seen(&ctx.sandbox_image, &image);
                }
                let id = match self.shared.runtime.create_sandbox(&sb).await {
                    Ok(id) => id,
                    Err(e) => {
                        engine.image_gone(&ctx.sandbox_image);
                        return Err(e);
                    }
                };
                self.created.push(id.0.clone());
                let st = self.shared.runtime.inspect(&id.0).await?;
                self.inspected.insert(st.id.clone(), st.clone());
                ctx.pod_ip = st.ip.map(IpAddr::V4);
                obs.sandbox = Some(st);
                // Container restarts after a sandbox change count from the old containers.
                for list in obs.containers.values_mut() {
                    for c in list.iter_mut() {
                        if let Ok(s) = self.shared.runtime.inspect(&c.id).await {
                            *c = s;
                        }
                    }
                }
            }
            let sandbox = SandboxId(
                obs.sandbox
                    .as_ref()
                    .map(|s| s.id.clone())
                    .unwrap_or_default(),
            );
            self.refresh_token(pod, &dirs).await;
            let launch = Launch {
                ctx: &ctx,
                sandbox: &sandbox,
                pull_secrets: &pull_secrets,
                now,
            };

            // Init containers, one after another.
            let mut init_done = true;
            for c in spec.init_containers.iter().flatten() {
                match obs.current(&c.name).map(|s| s.state.clone()) {
                    Some(ContainerState::Exited { code: 0, .. }) => continue,
                    Some(ContainerState::Exited { finished_at, .. }) => {
                        init_done = false;
                        if policy == "Never" {
                            break;
                        }
                        let restart = obs.current(&c.name).map_or(0, |s| s.restart_count + 1);
                        if let Some(d) = self
                            .restart_when_due(pod, c, &launch, restart, finished_at, &mut waiting)
                            .await
                        {
                            next = next.min(d);
                        }
                        break;
                    }
                    Some(ContainerState::Running { .. }) => {
                        init_done = false;
                        break;
                    }
                    Some(_) | None => {
                        init_done = false;
                        let restart = obs.current(&c.name).map_or(0, |s| s.restart_count + 1);
                        self.start_container(pod, c, &launch, restart, &mut waiting)
                            .await;
                        break;
                    }
                }
            }
            if !init_done {
                for c in &spec.containers {
                    waiting.entry(c.name.clone()).or_insert(Waiting {
                        reason: "PodInitializing".into(),
                        message: String::new(),
                    });
                }
            } else {
                for c in &spec.containers {
                    let current = obs.current(&c.name).cloned();
                    match current.as_ref().map(|s| s.state.clone()) {
                        None => {
                            self.start_container(pod, c, &launch, 0, &mut waiting).await;
                        }
                        Some(ContainerState::Running { started_at }) => {
                            let cur = current.as_ref().map(|s| s.id.clone()).unwrap_or_default();
                            self.ensure_prober(pod, c, &cur, ctx.pod_ip, started_at, now);
                            let verdict = self.probers.get(&c.name).map(|(_, p)| p.results());
                            if let Some(kind) = verdict.as_ref().and_then(|r| r.kill) {
                                let msg = format!(
                                    "Container {} failed {} probe, will be restarted",
                                    c.name,
                                    kind.title().to_lowercase()
                                );
                                self.shared.recorder.record(
                                    pod,
                                    Some(&c.name),
                                    NORMAL,
                                    "Killing",
                                    &msg,
                                );
                                self.probers.remove(&c.name);
                                let grace = grace_period(pod);
                                self.mutated = true;
                                self.destructive = true;
                                self.kill_container(pod, Some(c), &cur, grace).await;
                                next = Duration::ZERO;
                            }
                        }
                        Some(ContainerState::Exited {
                            code, finished_at, ..
                        }) => {
                            self.probers.remove(&c.name);
                            if should_restart(&policy, code) {
                                let restart = current.as_ref().map_or(0, |s| s.restart_count + 1);
                                if let Some(d) = self
                                    .restart_when_due(
                                        pod,
                                        c,
                                        &launch,
                                        restart,
                                        finished_at,
                                        &mut waiting,
                                    )
                                    .await
                                {
                                    next = next.min(d);
                                }
                            }
                        }
                        Some(_) => {
                            // Created but never started (a start that failed): start it again.
                            let id = current.as_ref().map(|s| s.id.clone()).unwrap_or_default();
                            self.mutated = true;
                            self.destructive = true;
                            if let Err(e) = self.shared.runtime.start(&id).await {
                                waiting.insert(
                                    c.name.clone(),
                                    Waiting {
                                        reason: "RunContainerError".into(),
                                        message: e.to_string(),
                                    },
                                );
                            }
                        }
                    }
                }
            }
        } else if let Some(sb) = &obs.sandbox {
            // A finished pod keeps its containers (for logs) but not its sandbox running.
            if matches!(sb.state, ContainerState::Running { .. }) {
                self.mutated = true;
                self.destructive = true;
                self.shared.runtime.stop(&sb.id, Duration::ZERO).await?;
            }
        }
        for (name, d) in self.pull_wait(now) {
            if waiting.contains_key(&name) {
                next = next.min(d);
            }
        }
        let (obs, _) = self.observe().await?;
        if self.collect_garbage(pod, &obs).await {
            self.mutated = true;
            self.destructive = true;
        }
        self.finish(pod, &obs, &waiting, now, next).await
    }

    /// Writes the status if it changed; returns `next`.
    async fn finish(
        &mut self,
        pod: &Pod,
        obs: &Observed,
        waiting: &BTreeMap<String, Waiting>,
        now: Timestamp,
        next: Duration,
    ) -> Result<Duration, RuntimeError> {
        let probes: BTreeMap<String, ProbeResults> = self
            .probers
            .iter()
            .filter(|(name, (id, _))| obs.current(name).is_some_and(|c| &c.id == id))
            .map(|(name, (_, p))| (name.clone(), p.results()))
            .collect();
        let status = pod_status(&StatusInput {
            pod,
            observed: obs,
            waiting,
            probes: &probes,
            host_ip: Some(self.shared.config.node_ip),
            start_time: self.first_seen,
            now,
        });
        let value = serde_json::to_value(&status).unwrap_or(Value::Null);
        // Compare without transition times, which only change along with what they describe.
        let comparable = strip_times(&value);
        if self.last_status.as_ref() != Some(&comparable) || status_differs(pod, &value) {
            let (ns, name) = pod_key(pod);
            match self
                .shared
                .api
                .patch_pod_status(&ns, &name, &json!({ "status": value }))
                .await
            {
                Ok(()) => self.last_status = Some(comparable),
                Err(e) => {
                    tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "status update failed");
                    return Ok(next.min(Duration::from_secs(1)));
                }
            }
        }
        Ok(next)
    }

    async fn sync_files(&self, pod: &Pod, dirs: &PodDirs, ctx: &PodContext) -> bool {
        if let Err(e) = dirs
            .prepare(pod)
            .and_then(|()| prepare_claims(&ctx.claim_root, pod))
        {
            self.shared
                .recorder
                .record(pod, None, WARNING, "FailedMount", &e.to_string());
            return false;
        }
        match spec::volume_files(pod, ctx) {
            Ok(files) => match dirs.sync_files(&file_volumes(pod), &files) {
                Ok(_) => true,
                Err(e) => {
                    self.shared
                        .recorder
                        .record(pod, None, WARNING, "FailedMount", &e.to_string());
                    false
                }
            },
            Err(e) => {
                let key = format!("mount:{e}");
                if !self.reported.contains(&key) {
                    self.shared.recorder.record(
                        pod,
                        None,
                        WARNING,
                        "FailedMount",
                        &format!("MountVolume.SetUp failed: {e}"),
                    );
                }
                false
            }
        }
    }

    /// Starts an exited container again (as attempt `restart`) once its back-off allows, and
    /// then advances the back-off; while it must wait, records the CrashLoopBackOff waiting
    /// reason and returns the time left.
    async fn restart_when_due(
        &mut self,
        pod: &Pod,
        c: &Container,
        launch: &Launch<'_>,
        restart: u32,
        finished_at: Option<Timestamp>,
        waiting: &mut BTreeMap<String, Waiting>,
    ) -> Option<Duration> {
        let now = launch.now;
        let failed_at = finished_at.unwrap_or(now);
        if let Some(left) = self.restart_backoff.remaining(&c.name, failed_at, now) {
            let (ns, name) = pod_key(pod);
            let delay = self.restart_backoff.current(&c.name);
            let message = format!(
                "back-off {} restarting failed container={} pod={name}_{ns}({})",
                format_duration(delay),
                c.name,
                self.uid
            );
            let key = format!("backoff:{}:{}", c.name, failed_at);
            if self.reported.insert(key) {
                self.shared.recorder.record(
                    pod,
                    Some(&c.name),
                    WARNING,
                    "BackOff",
                    "Back-off restarting failed container",
                );
            }
            waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message,
                },
            );
            return Some(left);
        }
        self.restart_backoff.next(&c.name, now);
        self.start_container(pod, c, launch, restart, waiting).await;
        None
    }

    fn pull_wait(&self, now: Timestamp) -> Vec<(String, Duration)> {
        self.pull_failures
            .iter()
            .filter_map(|(name, (at, _))| {
                self.pull_backoff
                    .remaining(name, *at, now)
                    .map(|d| (name.clone(), d))
            })
            .collect()
    }

    /// Makes the image present per the pull policy; a waiting reason when it is not.
    async fn ensure_image(
        &mut self,
        pod: &Pod,
        c: &Container,
        pull_secrets: &[Secret],
    ) -> Result<String, Waiting> {
        let image = c.image.clone().unwrap_or_default();
        let now = Timestamp::now();
        if let Some((at, msg)) = self.pull_failures.get(&c.name).cloned()
            && self.pull_backoff.remaining(&c.name, at, now).is_some()
        {
            let key = format!("pullbackoff:{}:{at}", c.name);
            if self.reported.insert(key) {
                self.shared.recorder.record(
                    pod,
                    Some(&c.name),
                    NORMAL,
                    "BackOff",
                    &format!("Back-off pulling image \"{image}\""),
                );
            }
            return Err(Waiting {
                reason: "ImagePullBackOff".into(),
                message: format!("Back-off pulling image \"{image}\": {msg}"),
            });
        }
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            if image.ends_with(":latest") || !image.rsplit('/').next().unwrap_or("").contains(':') {
                "Always".into()
            } else {
                "IfNotPresent".into()
            }
        });
        let runtime = &self.shared.runtime;
        let present = match self.shared.engine.image(&image) {
            Some(i) if policy != "Always" => Some(i),
            _ => {
                let found = runtime.image_present(&image).await.ok().flatten();
                if let Some(i) = &found {
                    self.shared.engine.image_seen(&image, i);
                }
                found
            }
        };
        let decision = match (policy.as_str(), &present) {
            ("Never", None) => {
                let msg =
                    format!("Container image \"{image}\" is not present with pull policy of Never");
                self.shared
                    .recorder
                    .record(pod, Some(&c.name), WARNING, "ErrImageNeverPull", &msg);
                return Err(Waiting {
                    reason: "ErrImageNeverPull".into(),
                    message: msg,
                });
            }
            ("Never", Some(_)) | ("IfNotPresent", Some(_)) => PullDecision::NoPull,
            _ => PullDecision::Pull,
        };
        if decision == PullDecision::NoPull {
            self.shared.recorder.record(
                pod,
                Some(&c.name),
                NORMAL,
                "Pulled",
                &format!("Container image \"{image}\" already present on machine"),
            );
            return Ok(image);
        }
        self.shared.recorder.record(
            pod,
            Some(&c.name),
            NORMAL,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        );
        let auth = registry_auth(&image, pull_secrets);
        let started = Instant::now();
        match runtime
            .ensure_image(&image, PullDecision::Pull, auth.as_ref())
            .await
        {
            Ok(_) => {
                self.pull_failures.remove(&c.name);
                self.pull_backoff.reset(&c.name);
                self.shared.recorder.record(
                    pod,
                    Some(&c.name),
                    NORMAL,
                    "Pulled",
                    &format!(
                        "Successfully pulled image \"{image}\" in {}",
                        format_duration(started.elapsed())
                    ),
                );
                Ok(image)
            }
            Err(e) => {
                let msg = format!("Failed to pull image \"{image}\": {e}");
                self.shared
                    .recorder
                    .record(pod, Some(&c.name), WARNING, "Failed", &msg);
                self.shared.recorder.record(
                    pod,
                    Some(&c.name),
                    WARNING,
                    "Failed",
                    "Error: ErrImagePull",
                );
                self.pull_failures
                    .insert(c.name.clone(), (now, e.to_string()));
                self.pull_backoff.next(&c.name, now);
                Err(Waiting {
                    reason: "ErrImagePull".into(),
                    message: msg,
                })
            }
        }
    }

    /// Pulls the image as the policy says, creates and starts the container as attempt
    /// `restart_count`, and runs its postStart hook; failures become waiting reasons.
    async fn start_container(
        &mut self,
        pod: &Pod,
        c: &Container,
        launch: &Launch<'_>,
        restart_count: u32,
        waiting: &mut BTreeMap<String, Waiting>,
    ) {
        let (ctx, sandbox) = (launch.ctx, launch.sandbox);
        if let Err(w) = self.ensure_image(pod, c, launch.pull_secrets).await {
            waiting.insert(c.name.clone(), w);
            return;
        }
        let spec = match spec::container_spec(pod, c, ctx, sandbox, restart_count) {
            Ok(s) => s,
            Err(e) => {
                let key = format!("config:{}:{e}", c.name);
                if self.reported.insert(key) {
                    self.shared.recorder.record(
                        pod,
                        Some(&c.name),
                        WARNING,
                        "Failed",
                        &format!("Error: {e}"),
                    );
                }
                waiting.insert(
                    c.name.clone(),
                    Waiting {
                        reason: "CreateContainerConfigError".into(),
                        message: e.to_string(),
                    },
                );
                return;
            }
        };
        self.mutated = true;
        let runtime = &self.shared.runtime;
        let id = match runtime.create_container(&spec).await {
            Ok(id) => {
                self.created.push(id.clone());
                id
            }
            Err(e) => {
                self.shared.engine.image_gone(&spec.image);
                self.container_failed(pod, c, "CreateContainerError", &e, waiting);
                return;
            }
        };
        self.shared.recorder.record(
            pod,
            Some(&c.name),
            NORMAL,
            "Created",
            &format!("Created container: {}", c.name),
        );
        if let Err(e) = runtime.start(&id).await {
            self.container_failed(pod, c, "RunContainerError", &e, waiting);
            return;
        }
        self.shared.recorder.record(
            pod,
            Some(&c.name),
            NORMAL,
            "Started",
            &format!("Started container {}", c.name),
        );
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())
            && let Err(msg) = self
                .run_hook(&id, ctx.pod_ip, c, hook, grace_period(pod))
                .await
        {
            self.shared
                .recorder
                .record(pod, Some(&c.name), WARNING, "FailedPostStartHook", &msg);
            self.destructive = true;
            self.kill_container(pod, Some(c), &id, Duration::ZERO).await;
        }
    }

    /// Records a `Failed` event and the waiting `reason` of a container the engine refused.
    fn container_failed(
        &self,
        pod: &Pod,
        c: &Container,
        reason: &str,
        error: &RuntimeError,
        waiting: &mut BTreeMap<String, Waiting>,
    ) {
        self.shared.recorder.record(
            pod,
            Some(&c.name),
            WARNING,
            "Failed",
            &format!("Error: {error}"),
        );
        waiting.insert(
            c.name.clone(),
            Waiting {
                reason: reason.into(),
                message: error.to_string(),
            },
        );
    }

    fn ensure_prober(
        &mut self,
        pod: &Pod,
        c: &Container,
        id: &str,
        pod_ip: Option<IpAddr>,
        started_at: Option<Timestamp>,
        now: Timestamp,
    ) {
        if self.probers.get(&c.name).is_some_and(|(pid, _)| pid == id) {
            return;
        }
        let since = started_at
            .map(|s| now.duration_since(s))
            .filter(|d| d.is_positive())
            .map(|d| d.unsigned_abs())
            .unwrap_or(Duration::ZERO);
        let recorder = self.shared.recorder.clone();
        let pod_for_events = pod.clone();
        let name = c.name.clone();
        let hook: FailureHook = Arc::new(move |kind: ProbeKind, msg: &str| {
            recorder.record(
                &pod_for_events,
                Some(&name),
                WARNING,
                "Unhealthy",
                &format!("{} probe failed: {msg}", kind.title()),
            );
        });
        let prober = Prober::start(
            Arc::clone(&self.shared.runtime),
            c.clone(),
            id.to_string(),
            pod_ip,
            since,
            Arc::clone(&self.wake),
            hook,
        );
        self.probers
            .insert(c.name.clone(), (id.to_string(), prober));
    }

    /// Runs a lifecycle hook; the failure message when it fails.
    async fn run_hook(
        &self,
        id: &str,
        pod_ip: Option<IpAddr>,
        c: &Container,
        hook: &LifecycleHandler,
        timeout: Duration,
    ) -> Result<(), String> {
        let probe = k8s_openapi::api::core::v1::Probe {
            exec: hook.exec.clone(),
            http_get: hook.http_get.clone(),
            tcp_socket: hook.tcp_socket.clone(),
            timeout_seconds: Some(i32::try_from(timeout.as_secs().max(1)).unwrap_or(30)),
            ..Default::default()
        };
        if let Some(sleep) = &hook.sleep {
            tokio::time::sleep(
                Duration::from_secs(u64::try_from(sleep.seconds).unwrap_or(0)).min(timeout),
            )
            .await;
            return Ok(());
        }
        match crate::pod::probe::check(self.shared.runtime.as_ref(), id, c, pod_ip, &probe).await {
            crate::pod::probe::Outcome::Success => Ok(()),
            crate::pod::probe::Outcome::Failure(m) => Err(m),
        }
    }

    /// preStop, then the stop signal, `grace`, SIGKILL.
    async fn kill_container(&self, pod: &Pod, c: Option<&Container>, id: &str, grace: Duration) {
        let started = Instant::now();
        if let Some(c) = c
            && let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref())
        {
            let ip = self.last_pod_ip(pod);
            if let Err(msg) = self.run_hook(id, ip, c, hook, grace).await {
                self.shared
                    .recorder
                    .record(pod, Some(&c.name), WARNING, "FailedPreStopHook", &msg);
            }
        }
        let left = grace.saturating_sub(started.elapsed());
        if let Err(e) = self.shared.runtime.stop(id, left).await {
            tracing::warn!(container = %id, error = %e, "could not stop a container");
        }
    }

    fn last_pod_ip(&self, pod: &Pod) -> Option<IpAddr> {
        pod.status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok())
    }

    /// Keeps the newest and one previous container per name; removes the rest and containers
    /// no longer in the spec.
    /// True if it removed any.
    async fn collect_garbage(&self, pod: &Pod, obs: &Observed) -> bool {
        let mut removed = false;
        let names: HashSet<String> = all_containers(pod).into_iter().map(|c| c.name).collect();
        for (name, list) in &obs.containers {
            let keep = if names.contains(name) { 2 } else { 0 };
            for c in list.iter().skip(keep) {
                if matches!(c.state, ContainerState::Running { .. }) && keep > 0 {
                    continue;
                }
                removed = true;
                if let Err(e) = self.shared.runtime.remove(&c.id).await {
                    tracing::debug!(container = %c.id, error = %e, "could not remove an old container");
                }
            }
        }
        removed
    }

    /// Stops the pod's containers (with `grace`, or the pod's own grace period), removes them,
    /// the sandbox and the pod's files.
    async fn teardown(&mut self, pod: Option<&Pod>, grace: Option<Duration>) {
        self.probers.clear();
        // Whatever the relist saw, this acts on a fresh list and changes everything.
        self.mutated = true;
        self.destructive = true;
        let grace = grace
            .or_else(|| pod.map(grace_period))
            .unwrap_or(Duration::from_secs(30));
        let Ok((obs, dead)) = self.observe().await else {
            tracing::warn!(pod_uid = %self.uid, "cannot list the pod's containers to stop them");
            return;
        };
        let specs: HashMap<String, Container> = pod
            .map(all_containers)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        let mut stops = Vec::new();
        for (name, list) in &obs.containers {
            for c in list {
                if matches!(c.state, ContainerState::Running { .. }) {
                    if let Some(pod) = pod {
                        self.shared.recorder.record(
                            pod,
                            Some(name),
                            NORMAL,
                            "Killing",
                            &format!("Stopping container {name}"),
                        );
                        stops.push(
                            self.kill_container(pod, specs.get(name), &c.id, grace)
                                .boxed(),
                        );
                    } else {
                        let id = c.id.clone();
                        let rt = Arc::clone(&self.shared.runtime);
                        stops.push(
                            async move {
                                let _ = rt.stop(&id, grace).await;
                            }
                            .boxed(),
                        );
                    }
                }
            }
        }
        futures::future::join_all(stops).await;
        for list in obs.containers.values() {
            for c in list {
                let _ = self.shared.runtime.remove(&c.id).await;
            }
        }
        for s in obs.sandbox.iter().chain(dead.iter()) {
            let _ = self
                .shared
                .runtime
                .remove_sandbox(&SandboxId(s.id.clone()), Duration::ZERO)
                .await;
        }
        let dirs = PodDirs::new(self.shared.config.pod_dir(&self.uid));
        if let Err(e) = dirs.remove() {
            tracing::warn!(error = %e, "could not remove the pod's files");
        }
    }
}

/// `10s`, `1m20s`, `1.5s` as Go prints short durations.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        let (m, s) = (secs / 60, secs % 60);
        if s == 0 {
            format!("{m}m0s")
        } else {
            format!("{m}m{s}s")
        }
    } else if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{secs}s")
    } else {
        let text = format!("{:.3}", d.as_secs_f64());
        format!("{}s", text.trim_end_matches('0'))
    }
}

/// The status without `lastTransitionTime`s, for change detection.
fn strip_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "lastTransitionTime")
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}

/// Whether the stored status contradicts what the agent computed in what the agent owns: the
/// phase, or the status of a condition it sets (another writer, e.g. the node lifecycle
/// controller marking pods of an unreachable node not Ready, may have changed it since the
/// agent last wrote). Fields others own are not compared, so this cannot start a write loop.
fn status_differs(pod: &Pod, computed: &Value) -> bool {
    let Some(stored) = pod.status.as_ref() else {
        return false;
    };
    if stored.phase.is_some()
        && stored.phase.as_deref() != computed.get("phase").and_then(Value::as_str)
    {
        return true;
    }
    let stored_conditions = stored.conditions.as_deref().unwrap_or_default();
    computed
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            let (Some(kind), Some(status)) = (
                c.get("type").and_then(Value::as_str),
                c.get("status").and_then(Value::as_str),
            ) else {
                return false;
            };
            stored_conditions
                .iter()
                .find(|s| s.type_ == kind)
                .is_some_and(|s| s.status != status)
        })
}

#[cfg(test)]
mod tests;
