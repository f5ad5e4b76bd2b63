//! Translation of a Kubernetes Pod into the runtime layer's specs: the sandbox
//! ([`sandbox_spec`]), each container ([`container_spec`]) and the files of its ConfigMap,
//! Secret, downward API and projected volumes ([`volume_files`]).
//!
//! Owns the kubelet's rules for hostname, DNS policy, `hostPort` publishing, command and args,
//! environment (order, `$(VAR)` expansion, `valueFrom`, `envFrom`, the downward API and the
//! `KUBERNETES_SERVICE_*` variables), resource limits, the basic security context, bind mounts
//! and the service-account mount, and the single [`SpecError`] enum.
//!
//! Must not: perform I/O (no files, no engine, no API calls). Everything the rules need
//! (ConfigMaps, Secrets, IPs, paths) is resolved by the caller and passed in a [`PodContext`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use berth_api::quantity::{Quantity as Nano, parse_quantity};
use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, KeyToPath, Pod, PodSpec, Volume,
};

use crate::runtime::{
    ContainerSpec, CpuLimit, DnsConfig, Mount, PortMapping, Protocol, SandboxId, SandboxSpec,
    labels,
};

/// Where the service-account token, CA and namespace are mounted in every container.
pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Default file mode of ConfigMap and Secret volume files (`0644`, `420` in JSON).
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// Smallest CPU limit Docker accepts, in nano-CPUs (0.01 CPU).
const MIN_NANO_CPUS: i64 = 10_000_000;

/// Errors of the pod-to-spec translation. Messages follow the kubelet's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A required ConfigMap was not among the resolved inputs.
    #[error("configmaps \"{name}\" not found")]
    ConfigMapNotFound {
        /// Name of the ConfigMap.
        name: String,
    },
    /// A required Secret was not among the resolved inputs.
    #[error("secrets \"{name}\" not found")]
    SecretNotFound {
        /// Name of the Secret.
        name: String,
    },
    /// A required key of a ConfigMap referenced by an env var is missing.
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        /// The key.
        key: String,
        /// Namespace of the pod.
        namespace: String,
        /// Name of the ConfigMap.
        name: String,
    },
    /// A required key of a Secret referenced by an env var is missing.
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        /// The key.
        key: String,
        /// Namespace of the pod.
        namespace: String,
        /// Name of the Secret.
        name: String,
    },
    /// A ConfigMap volume's item names a key the ConfigMap lacks.
    #[error("configmap references non-existent config key: {key}")]
    ConfigMapVolumeKey {
        /// The key.
        key: String,
    },
    /// A Secret volume's item names a key the Secret lacks.
    #[error("references non-existent secret key: {key}")]
    SecretVolumeKey {
        /// The key.
        key: String,
    },
    /// A `fieldRef` path the agent does not know.
    #[error("unsupported fieldPath: {path}")]
    UnsupportedFieldPath {
        /// The field path.
        path: String,
    },
    /// A `resourceFieldRef` resource the agent does not know.
    #[error("unsupported container resource : {resource}")]
    UnsupportedResource {
        /// The resource, e.g. `limits.gpu`.
        resource: String,
    },
    /// A limit is needed (by `resourceFieldRef`) but neither the container nor the node has one.
    #[error("no value for {resource} of container {container:?}: no limit and no node allocatable")]
    NoResourceValue {
        /// The resource.
        resource: String,
        /// The container.
        container: String,
    },
    /// A container named by `resourceFieldRef.containerName` does not exist in the pod.
    #[error("container {name:?} not found in pod")]
    ContainerNotFound {
        /// The container name.
        name: String,
    },
    /// A quantity could not be parsed.
    #[error("invalid quantity {value:?} in {field}")]
    InvalidQuantity {
        /// Where it was.
        field: String,
        /// The text.
        value: String,
    },
    /// A volume mount names a volume the pod does not define.
    #[error("cannot find volume {volume:?} to mount into container {container:?}")]
    VolumeNotFound {
        /// The volume name.
        volume: String,
        /// The container.
        container: String,
    },
    /// A volume of a type this agent cannot provide.
    #[error("volume {volume:?} has a type this agent does not support")]
    UnsupportedVolume {
        /// The volume name.
        volume: String,
    },
    /// A `subPath`, `subPathExpr` or item path that is absolute or leaves its volume.
    #[error("invalid path {path:?} in {field}: must be relative and must not contain '..'")]
    InvalidPath {
        /// Where it was.
        field: String,
        /// The path.
        path: String,
    },
    /// A port or host IP out of range.
    #[error("invalid {field}: {value}")]
    InvalidPort {
        /// Where it was.
        field: String,
        /// The value.
        value: String,
    },
    /// `runAsNonRoot` is set but the container would run as UID 0.
    #[error("container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container})")]
    NonRootViolation {
        /// `namespace/name` of the pod.
        pod: String,
        /// The container.
        container: String,
    },
    /// The pod lacks something every pod has (name, namespace, uid, spec).
    #[error("pod has no {field}")]
    MissingField {
        /// The field.
        field: String,
    },
}

/// Everything the translation needs besides the pod, resolved by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodContext {
    /// Name of this node (`spec.nodeName` when the pod lacks it).
    pub node_name: String,
    /// The node's IP (`status.hostIP`).
    pub host_ip: Option<IpAddr>,
    /// The pod's IP (`status.podIP`): the sandbox's IP once it has one, or the IPv4 address the
    /// agent wants the sandbox to get (then also [`SandboxSpec::ip`]).
    pub pod_ip: Option<IpAddr>,
    /// Cluster DNS servers; empty means `ClusterFirst` falls back to `Default`.
    pub cluster_dns: Vec<IpAddr>,
    /// Cluster domain, e.g. `cluster.local`.
    pub cluster_domain: String,
    /// Address of the `kubernetes` Service (`KUBERNETES_SERVICE_HOST`); not set when `None`.
    pub service_host: Option<String>,
    /// Port of the `kubernetes` Service (`KUBERNETES_SERVICE_PORT`).
    pub service_port: u16,
    /// Runtime network the sandbox joins.
    pub network: String,
    /// Sandbox image.
    pub sandbox_image: String,
    /// Sandbox attempt number.
    pub sandbox_attempt: u32,
    /// Directory on the node holding one directory per pod volume, e.g.
    /// `<data-dir>/pods/<uid>/volumes`.
    pub volume_root: PathBuf,
    /// Directory on the node holding `token`, `ca.crt` and `namespace`.
    pub service_account_dir: PathBuf,
    /// Directory on the node holding one directory per PersistentVolumeClaim,
    /// `<claim root>/<namespace>/<claim>` ([`claim_dir`]), e.g. `<data-dir>/claims`.
    pub claim_root: PathBuf,
    /// ConfigMaps of the pod's namespace it refers to: name → key → value (`data` and
    /// `binaryData` merged). Absent ones are missing.
    pub config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Secrets of the pod's namespace it refers to: name → key → decoded value.
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Node allocatable (`cpu`, `memory`, `ephemeral-storage`), used by `resourceFieldRef` for
    /// limits the container does not set.
    pub node_allocatable: BTreeMap<String, String>,
}

/// A file of a ConfigMap or Secret volume, for the agent to write under
/// `<volume root>/<volume>/<path>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeFile {
    /// Name of the volume.
    pub volume: String,
    /// Path relative to the volume's directory.
    pub path: PathBuf,
    /// Content.
    pub bytes: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

fn pod_spec(pod: &Pod) -> Result<&PodSpec, SpecError> {
    pod.spec.as_ref().ok_or_else(|| SpecError::MissingField {
        field: "spec".into(),
    })
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, SpecError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(SpecError::MissingField {
            field: field.into(),
        }),
    }
}

fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

fn identity_labels(pod: &Pod) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    out.insert(
        labels::POD_UID.to_string(),
        required(&pod.metadata.uid, "metadata.uid")?.to_string(),
    );
    out.insert(
        labels::POD_NAME.to_string(),
        required(&pod.metadata.name, "metadata.name")?.to_string(),
    );
    out.insert(
        labels::POD_NAMESPACE.to_string(),
        pod_namespace(pod).to_string(),
    );
    Ok(out)
}

/// The pod's hostname: `spec.hostname` or the pod name, cut to 63 characters without a
/// trailing `-` or `.` (as the kubelet does).
fn hostname(pod: &Pod, spec: &PodSpec) -> Result<String, SpecError> {
    let name = match spec.hostname.as_deref() {
        Some(h) if !h.is_empty() => h,
        _ => required(&pod.metadata.name, "metadata.name")?,
    };
    let mut cut: String = name.chars().take(63).collect();
    if name.len() > 63 {
        while cut.ends_with('-') || cut.ends_with('.') {
            cut.pop();
        }
    }
    Ok(cut)
}

/// DNS configuration per `dnsPolicy` and `dnsConfig`.
fn dns_config(pod: &Pod, spec: &PodSpec, ctx: &PodContext) -> DnsConfig {
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut dns = DnsConfig::default();
    if cluster && !ctx.cluster_dns.is_empty() {
        let domain = &ctx.cluster_domain;
        dns.servers = ctx.cluster_dns.iter().map(ToString::to_string).collect();
        dns.searches = vec![
            format!("{}.svc.{domain}", pod_namespace(pod)),
            format!("svc.{domain}"),
            domain.clone(),
        ];
        dns.options = vec!["ndots:5".to_string()];
    }
    if let Some(extra) = &spec.dns_config {
        for server in extra.nameservers.iter().flatten() {
            if !dns.servers.contains(server) {
                dns.servers.push(server.clone());
            }
        }
        for search in extra.searches.iter().flatten() {
            if !dns.searches.contains(search) {
                dns.searches.push(search.clone());
            }
        }
        for option in extra.options.iter().flatten() {
            let Some(name) = option.name.as_deref() else {
                continue;
            };
            let text = match option.value.as_deref() {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            dns.options
                .retain(|o| o.split_once(':').map_or(o.as_str(), |(n, _)| n) != name);
            dns.options.push(text);
        }
    }
    dns
}

fn port_u16(value: i32, field: &str) -> Result<u16, SpecError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| SpecError::InvalidPort {
            field: field.into(),
            value: value.to_string(),
        })
}

/// `hostPort` mappings of all the pod's containers.
fn port_mappings(spec: &PodSpec) -> Result<Vec<PortMapping>, SpecError> {
    let mut out: Vec<PortMapping> = Vec::new();
    for container in &spec.containers {
        for port in container.ports.iter().flatten() {
            let Some(host_port) = port.host_port.filter(|p| *p != 0) else {
                continue;
            };
            let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            let host_ip = match port.host_ip.as_deref() {
                None | Some("") => None,
                Some(text) => Some(text.parse::<IpAddr>().map_err(|_| SpecError::InvalidPort {
                    field: "hostIP".into(),
                    value: text.to_string(),
                })?),
            };
            let mapping = PortMapping {
                container_port: port_u16(port.container_port, "containerPort")?,
                host_port: port_u16(host_port, "hostPort")?,
                protocol,
                host_ip,
            };
            if !out.contains(&mapping) {
                out.push(mapping);
            }
        }
    }
    Ok(out)
}

/// The sandbox for a pod: identity, hostname, DNS and `hostPort` publishing.
pub fn sandbox_spec(pod: &Pod, ctx: &PodContext) -> Result<SandboxSpec, SpecError> {
    let spec = pod_spec(pod)?;
    let ip = match ctx.pod_ip {
        Some(IpAddr::V4(v4)) => Some(v4),
        _ => None,
    };
    Ok(SandboxSpec {
        pod_uid: required(&pod.metadata.uid, "metadata.uid")?.to_string(),
        pod_name: required(&pod.metadata.name, "metadata.name")?.to_string(),
        pod_namespace: pod_namespace(pod).to_string(),
        attempt: ctx.sandbox_attempt,
        labels: identity_labels(pod)?,
        image: ctx.sandbox_image.clone(),
        network: ctx.network.clone(),
        ip,
        hostname: hostname(pod, spec)?,
        dns: dns_config(pod, spec, ctx),
        port_mappings: port_mappings(spec)?,
        cgroup_parent: None,
    })
}

/// Expands `$(NAME)` references as the kubelet does: defined names are replaced, undefined ones
/// are kept verbatim, `$$` is an escaped `$`, and any other `$` stays as it is.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// An ordered environment: a redefined name keeps its first position and takes the new value.
#[derive(Default)]
struct Env {
    order: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Env {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.order[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.order.len());
                self.order.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.order[i].1.as_str())
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value of a downward-API `fieldRef` for env vars.
fn field_ref_value(pod: &Pod, ctx: &PodContext, path: &str) -> Result<String, SpecError> {
    let spec = pod_spec(pod)?;
    let meta = &pod.metadata;
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
    };
    if let Some(key) = subscript("metadata.labels") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(key) = subscript("metadata.annotations") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default());
    }
    let status = pod.status.as_ref();
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => pod_namespace(pod).to_string(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec
            .node_name
            .clone()
            .unwrap_or_else(|| ctx.node_name.clone()),
        "spec.serviceAccountName" => spec.service_account_name.clone().unwrap_or_default(),
        "status.podIP" | "status.podIPs" => match ctx.pod_ip {
            Some(ip) => ip.to_string(),
            None => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        },
        "status.hostIP" | "status.hostIPs" => match ctx.host_ip {
            Some(ip) => ip.to_string(),
            None => status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        },
        _ => {
            return Err(SpecError::UnsupportedFieldPath {
                path: path.to_string(),
            });
        }
    };
    Ok(value)
}

fn parse_nano(text: &str, field: &str) -> Result<Nano, SpecError> {
    parse_quantity(text).ok_or_else(|| SpecError::InvalidQuantity {
        field: field.into(),
        value: text.to_string(),
    })
}

/// `ceil(a / b)` for positive nano quantities, as a decimal string.
fn ceil_div(value: Nano, divisor: Nano) -> String {
    if divisor.0 <= 0 {
        return "0".into();
    }
    let q = value.0 / divisor.0;
    let r = value.0 % divisor.0;
    let q = if r > 0 { q + 1 } else { q };
    q.to_string()
}

/// The value of a `resourceFieldRef`, rounded up in units of its divisor.
fn resource_ref_value(
    pod: &Pod,
    own: Option<&Container>,
    ctx: &PodContext,
    selector: &k8s_openapi::api::core::v1::ResourceFieldSelector,
) -> Result<String, SpecError> {
    let spec = pod_spec(pod)?;
    let container = match selector.container_name.as_deref() {
        None | Some("") => own.ok_or_else(|| SpecError::MissingField {
            field: "resourceFieldRef.containerName".into(),
        })?,
        Some(name) => spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == name)
            .ok_or_else(|| SpecError::ContainerNotFound {
                name: name.to_string(),
            })?,
    };
    let resource = selector.resource.as_str();
    let (kind, name) = resource
        .split_once('.')
        .filter(|(k, n)| {
            matches!(*k, "limits" | "requests")
                && matches!(*n, "cpu" | "memory" | "ephemeral-storage")
        })
        .ok_or_else(|| SpecError::UnsupportedResource {
            resource: resource.to_string(),
        })?;
    let resources = container.resources.as_ref();
    let limit = resources
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get(name));
    let request = resources
        .and_then(|r| r.requests.as_ref())
        .and_then(|l| l.get(name));
    let text = match kind {
        "limits" => match limit {
            Some(q) => q.0.clone(),
            None => ctx.node_allocatable.get(name).cloned().ok_or_else(|| {
                SpecError::NoResourceValue {
                    resource: resource.to_string(),
                    container: container.name.clone(),
                }
            })?,
        },
        _ => match request.or(limit) {
            Some(q) => q.0.clone(),
            None => "0".to_string(),
        },
    };
    let value = parse_nano(&text, resource)?;
    let divisor = match selector.divisor.as_ref() {
        Some(d) if !d.0.is_empty() => parse_nano(&d.0, "divisor")?,
        _ => Nano(1_000_000_000),
    };
    Ok(ceil_div(value, divisor))
}

fn is_optional(flag: Option<bool>) -> bool {
    flag.unwrap_or(false)
}

/// The kind of object an env var, `envFrom` entry or volume takes data from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    ConfigMap,
    Secret,
}

impl Source {
    /// The data of the named source; `None` when it is missing and optional.
    fn data<'a>(
        self,
        ctx: &'a PodContext,
        name: &str,
        optional: Option<bool>,
    ) -> Result<Option<&'a BTreeMap<String, Vec<u8>>>, SpecError> {
        let sources = match self {
            Source::ConfigMap => &ctx.config_maps,
            Source::Secret => &ctx.secrets,
        };
        match sources.get(name) {
            Some(d) => Ok(Some(d)),
            None if is_optional(optional) => Ok(None),
            None => {
                let name = name.to_string();
                Err(match self {
                    Source::ConfigMap => SpecError::ConfigMapNotFound { name },
                    Source::Secret => SpecError::SecretNotFound { name },
                })
            }
        }
    }

    /// The value of `key` in the named source for an env var; `None` when the source or the
    /// key is missing and the reference is optional.
    fn key(
        self,
        ctx: &PodContext,
        namespace: &str,
        name: &str,
        key: &str,
        optional: Option<bool>,
    ) -> Result<Option<String>, SpecError> {
        let Some(data) = self.data(ctx, name, optional)? else {
            return Ok(None);
        };
        match data.get(key) {
            Some(v) => Ok(Some(lossy(v))),
            None if is_optional(optional) => Ok(None),
            None => {
                let (key, namespace, name) =
                    (key.to_string(), namespace.to_string(), name.to_string());
                Err(match self {
                    Source::ConfigMap => SpecError::ConfigMapKeyNotFound {
                        key,
                        namespace,
                        name,
                    },
                    Source::Secret => SpecError::SecretKeyNotFound {
                        key,
                        namespace,
                        name,
                    },
                })
            }
        }
    }
}

/// The container's environment in the kubelet's order: `envFrom` sources, then `env` (each
/// expanded against what precedes it), then the `KUBERNETES_SERVICE_*` variables not defined.
fn environment(pod: &Pod, container: &Container, ctx: &PodContext) -> Result<Env, SpecError> {
    let namespace = pod_namespace(pod);
    let mut env = Env::default();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        let (kind, name, optional) = if let Some(r) = &source.config_map_ref {
            (Source::ConfigMap, &r.name, r.optional)
        } else if let Some(r) = &source.secret_ref {
            (Source::Secret, &r.name, r.optional)
        } else {
            continue;
        };
        let Some(data) = kind.data(ctx, name, optional)? else {
            continue;
        };
        for (key, value) in data {
            let name = format!("{prefix}{key}");
            // Keys that cannot be variable names are skipped, as the kubelet does.
            if name.is_empty() || name.contains('=') || name.chars().any(|c| c.is_control()) {
                continue;
            }
            env.set(name, lossy(value));
        }
    }
    let service = service_env(ctx);
    for var in container.env.iter().flatten() {
        let value = if let Some(from) = &var.value_from {
            let by_key = if let Some(r) = &from.config_map_key_ref {
                Some((Source::ConfigMap, &r.name, &r.key, r.optional))
            } else {
                from.secret_key_ref
                    .as_ref()
                    .map(|r| (Source::Secret, &r.name, &r.key, r.optional))
            };
            if let Some((kind, name, key, optional)) = by_key {
                match kind.key(ctx, namespace, name, key, optional)? {
                    Some(v) => v,
                    None => continue,
                }
            } else if let Some(r) = &from.field_ref {
                field_ref_value(pod, ctx, &r.field_path)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_ref_value(pod, Some(container), ctx, r)?
            } else {
                String::new()
            }
        } else {
            let raw = var.value.as_deref().unwrap_or("");
            expand(raw, &|name| {
                env.get(name).map(str::to_string).or_else(|| {
                    service
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                })
            })
        };
        env.set(var.name.clone(), value);
    }
    for (name, value) in service {
        if env.get(&name).is_none() {
            env.set(name, value);
        }
    }
    Ok(env)
}

/// The `kubernetes` Service's variables, as a Docker link would set them.
fn service_env(ctx: &PodContext) -> Vec<(String, String)> {
    let Some(host) = ctx.service_host.as_deref() else {
        return Vec::new();
    };
    let port = ctx.service_port;
    let url = format!("tcp://{host}:{port}");
    let family = format!("KUBERNETES_PORT_{port}_TCP");
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host.to_string()),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ("KUBERNETES_PORT".into(), url.clone()),
        (family.clone(), url),
        (format!("{family}_PROTO"), "tcp".into()),
        (format!("{family}_PORT"), port.to_string()),
        (format!("{family}_ADDR"), host.to_string()),
    ]
}

/// Checks that `path` is relative and stays inside its base.
fn checked_relative(path: &str, field: &str) -> Result<PathBuf, SpecError> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(SpecError::InvalidPath {
            field: field.into(),
            path: path.to_string(),
        })
    }
}

/// Whether a projected volume carries the service-account token (the admission plugin's
/// `kube-api-access-*` volume); it is served from [`PodContext::service_account_dir`].
fn is_service_account_volume(volume: &Volume) -> bool {
    volume.projected.as_ref().is_some_and(|p| {
        p.sources
            .iter()
            .flatten()
            .any(|s| s.service_account_token.is_some())
    })
}

/// The node-local directory of the PersistentVolumeClaim `claim` in `namespace`: it outlives
/// the pods that use it, so that a replaced pod on the same node finds its data.
pub fn claim_dir(claim_root: &Path, namespace: &str, claim: &str) -> PathBuf {
    claim_root.join(namespace).join(claim)
}

/// Host directory of a volume, and whether it must be mounted read-only regardless of the mount.
fn volume_host_path(
    pod: &Pod,
    volume: &Volume,
    ctx: &PodContext,
) -> Result<(PathBuf, bool), SpecError> {
    if let Some(host) = &volume.host_path {
        return Ok((PathBuf::from(&host.path), false));
    }
    if let Some(pvc) = &volume.persistent_volume_claim {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        checked_relative(&pvc.claim_name, "claimName")?;
        return Ok((
            claim_dir(&ctx.claim_root, namespace, &pvc.claim_name),
            pvc.read_only.unwrap_or(false),
        ));
    }
    if volume.empty_dir.is_some() {
        return Ok((ctx.volume_root.join(&volume.name), false));
    }
    if volume.config_map.is_some() || volume.secret.is_some() {
        return Ok((ctx.volume_root.join(&volume.name), true));
    }
    if is_service_account_volume(volume) {
        return Ok((ctx.service_account_dir.clone(), true));
    }
    if volume.downward_api.is_some() || volume.projected.is_some() {
        return Ok((ctx.volume_root.join(&volume.name), true));
    }
    Err(SpecError::UnsupportedVolume {
        volume: volume.name.clone(),
    })
}

fn mounts(
    pod: &Pod,
    container: &Container,
    ctx: &PodContext,
    env: &Env,
) -> Result<Vec<Mount>, SpecError> {
    let spec = pod_spec(pod)?;
    let mut out = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == vm.name)
            .ok_or_else(|| SpecError::VolumeNotFound {
                volume: vm.name.clone(),
                container: container.name.clone(),
            })?;
        let (mut host_path, forced_ro) = volume_host_path(pod, volume, ctx)?;
        let sub = match (vm.sub_path.as_deref(), vm.sub_path_expr.as_deref()) {
            (Some(p), _) if !p.is_empty() => Some(checked_relative(p, "subPath")?),
            (_, Some(e)) if !e.is_empty() => {
                let expanded = expand(e, &|name| env.get(name).map(str::to_string));
                Some(checked_relative(&expanded, "subPathExpr")?)
            }
            _ => None,
        };
        if let Some(sub) = sub {
            host_path = host_path.join(sub);
        }
        out.push(Mount {
            host_path,
            container_path: vm.mount_path.clone(),
            read_only: forced_ro || vm.read_only.unwrap_or(false),
        });
    }
    let automount = spec.automount_service_account_token.unwrap_or(true);
    let already = out
        .iter()
        .any(|m| m.container_path.trim_end_matches('/') == SERVICE_ACCOUNT_MOUNT_PATH);
    if automount && !already {
        out.push(Mount {
            host_path: ctx.service_account_dir.clone(),
            container_path: SERVICE_ACCOUNT_MOUNT_PATH.to_string(),
            read_only: true,
        });
    }
    Ok(out)
}

fn limit(container: &Container, name: &str) -> Result<Option<Nano>, SpecError> {
    match container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get(name))
    {
        Some(q) => Ok(Some(parse_nano(&q.0, &format!("limits.{name}"))?)),
        None => Ok(None),
    }
}

/// The spec of one container of the pod, in the given sandbox, for its `restart_count`th start.
pub fn container_spec(
    pod: &Pod,
    container: &Container,
    ctx: &PodContext,
    sandbox: &SandboxId,
    restart_count: u32,
) -> Result<ContainerSpec, SpecError> {
    let spec = pod_spec(pod)?;
    let env = environment(pod, container, ctx)?;
    let lookup = |name: &str| env.get(name).map(str::to_string);
    let mut out = ContainerSpec::new(
        container.name.clone(),
        sandbox.clone(),
        container.image.clone().unwrap_or_default(),
    );
    out.restart_count = restart_count;
    out.command = container
        .command
        .iter()
        .flatten()
        .map(|c| expand(c, &lookup))
        .collect();
    out.args = container
        .args
        .iter()
        .flatten()
        .map(|a| expand(a, &lookup))
        .collect();
    out.working_dir = container.working_dir.clone().filter(|w| !w.is_empty());
    out.mounts = mounts(pod, container, ctx, &env)?;
    out.env = env.order;

    let mut labels = identity_labels(pod)?;
    labels.insert(labels::CONTAINER_NAME.to_string(), container.name.clone());
    labels.insert(labels::RESTART_COUNT.to_string(), restart_count.to_string());
    labels.insert(labels::SANDBOX_ID.to_string(), sandbox.0.clone());
    out.labels = labels;

    if let Some(memory) = limit(container, "memory")? {
        let bytes = ceil_div(memory, Nano(1_000_000_000));
        out.memory_limit_bytes = bytes.parse::<i64>().ok().filter(|b| *b > 0);
    }
    if let Some(cpu) = limit(container, "cpu")?
        && let Ok(nano) = i64::try_from(cpu.0)
        && nano > 0
    {
        out.cpu = Some(CpuLimit::NanoCpus(nano.max(MIN_NANO_CPUS)));
    }

    let pod_sc = spec.security_context.as_ref();
    let sc = container.security_context.as_ref();
    let uid = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user));
    let gid = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_sc.and_then(|s| s.run_as_group));
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or_else(|| pod_sc.and_then(|s| s.run_as_non_root))
        .unwrap_or(false);
    if non_root && uid == Some(0) {
        return Err(SpecError::NonRootViolation {
            pod: format!(
                "{}/{}",
                pod_namespace(pod),
                pod.metadata.name.as_deref().unwrap_or("")
            ),
            container: container.name.clone(),
        });
    }
    out.user = uid.map(|u| match gid {
        Some(g) => format!("{u}:{g}"),
        None => u.to_string(),
    });
    out.read_only_rootfs = sc
        .and_then(|s| s.read_only_root_filesystem)
        .unwrap_or(false);
    out.privileged = sc.and_then(|s| s.privileged).unwrap_or(false);

    out.tty = container.tty.unwrap_or(false);
    out.stdin = container.stdin.unwrap_or(false);
    out.stdin_once = container.stdin_once.unwrap_or(false);
    Ok(out)
}

fn item_files(
    volume: &str,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
    missing_key: impl Fn(&str) -> SpecError,
) -> Result<Vec<VolumeFile>, SpecError> {
    let default_mode = default_mode
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(DEFAULT_FILE_MODE);
    let mut out = Vec::new();
    match items {
        Some(items) if !items.is_empty() => {
            for item in items {
                let Some(bytes) = data.get(&item.key) else {
                    if optional {
                        continue;
                    }
                    return Err(missing_key(&item.key));
                };
                out.push(VolumeFile {
                    volume: volume.to_string(),
                    path: checked_relative(&item.path, "items.path")?,
                    bytes: bytes.clone(),
                    mode: item
                        .mode
                        .and_then(|m| u32::try_from(m).ok())
                        .unwrap_or(default_mode),
                });
            }
        }
        _ => {
            for (key, bytes) in data {
                out.push(VolumeFile {
                    volume: volume.to_string(),
                    path: checked_relative(key, "key")?,
                    bytes: bytes.clone(),
                    mode: default_mode,
                });
            }
        }
    }
    Ok(out)
}

/// Files of a ConfigMap or Secret source (volume or projection).
fn source_files(
    kind: Source,
    volume: &str,
    name: &str,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: Option<bool>,
    ctx: &PodContext,
) -> Result<Vec<VolumeFile>, SpecError> {
    let Some(data) = kind.data(ctx, name, optional)? else {
        return Ok(Vec::new());
    };
    item_files(
        volume,
        data,
        items,
        default_mode,
        is_optional(optional),
        |key| match kind {
            Source::ConfigMap => SpecError::ConfigMapVolumeKey { key: key.into() },
            Source::Secret => SpecError::SecretVolumeKey { key: key.into() },
        },
    )
}

/// A map as the downward API writes it to a file: sorted `key="value"` lines.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Files of a downward API source (volume or projection).
fn downward_files(
    pod: &Pod,
    ctx: &PodContext,
    volume: &str,
    items: Option<&Vec<DownwardAPIVolumeFile>>,
    default_mode: Option<i32>,
) -> Result<Vec<VolumeFile>, SpecError> {
    let default_mode = default_mode
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(DEFAULT_FILE_MODE);
    let mut out = Vec::new();
    for item in items.into_iter().flatten() {
        let text = if let Some(r) = &item.field_ref {
            match r.field_path.as_str() {
                "metadata.labels" => format_map(pod.metadata.labels.as_ref()),
                "metadata.annotations" => format_map(pod.metadata.annotations.as_ref()),
                path => field_ref_value(pod, ctx, path)?,
            }
        } else if let Some(r) = &item.resource_field_ref {
            resource_ref_value(pod, None, ctx, r)?
        } else {
            continue;
        };
        out.push(VolumeFile {
            volume: volume.to_string(),
            path: checked_relative(&item.path, "items.path")?,
            bytes: text.into_bytes(),
            mode: item
                .mode
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(default_mode),
        });
    }
    Ok(out)
}

/// The files of the pod's ConfigMap, Secret, downward API and projected volumes, for the agent
/// to write under `<volume root>/<volume>` (and rewrite when the sources change). The projected
/// service-account volume is not included: its files live in
/// [`PodContext::service_account_dir`], which the agent fills.
pub fn volume_files(pod: &Pod, ctx: &PodContext) -> Result<Vec<VolumeFile>, SpecError> {
    let spec = pod_spec(pod)?;
    let mut out = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        let name = volume.name.as_str();
        if let Some(cm) = &volume.config_map {
            out.extend(source_files(
                Source::ConfigMap,
                name,
                &cm.name,
                cm.items.as_ref(),
                cm.default_mode,
                cm.optional,
                ctx,
            )?);
        } else if let Some(secret) = &volume.secret {
            out.extend(source_files(
                Source::Secret,
                name,
                secret.secret_name.as_deref().unwrap_or_default(),
                secret.items.as_ref(),
                secret.default_mode,
                secret.optional,
                ctx,
            )?);
        } else if let Some(downward) = &volume.downward_api {
            out.extend(downward_files(
                pod,
                ctx,
                name,
                downward.items.as_ref(),
                downward.default_mode,
            )?);
        } else if let Some(projected) = &volume.projected
            && !is_service_account_volume(volume)
        {
            let mode = projected.default_mode;
            for source in projected.sources.iter().flatten() {
                if let Some(cm) = &source.config_map {
                    out.extend(source_files(
                        Source::ConfigMap,
                        name,
                        &cm.name,
                        cm.items.as_ref(),
                        mode,
                        cm.optional,
                        ctx,
                    )?);
                } else if let Some(secret) = &source.secret {
                    out.extend(source_files(
                        Source::Secret,
                        name,
                        &secret.name,
                        secret.items.as_ref(),
                        mode,
                        secret.optional,
                        ctx,
                    )?);
                } else if let Some(downward) = &source.downward_api {
                    out.extend(downward_files(
                        pod,
                        ctx,
                        name,
                        downward.items.as_ref(),
                        mode,
                    )?);
                } else {
                    return Err(SpecError::UnsupportedVolume {
                        volume: name.to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
