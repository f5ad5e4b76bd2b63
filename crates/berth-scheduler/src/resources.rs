//! Resource amounts as the scheduler compares them: CPU in millicores, memory and ephemeral
//! storage in bytes, other (extended) resources as whole units, and the effective requests of a
//! pod computed the way Kubernetes does (init containers' maximum against the sum of the app
//! containers, sidecars added to both, overhead on top).
//!
//! Owns the arithmetic only; it must not decide whether a pod fits (that is [`crate::filter`]).

use std::collections::BTreeMap;

use berth_api::quantity::parse_quantity;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The CPU a container that requests none is counted as when scoring (Kubernetes'
/// `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory a container that requests none is counted as when scoring (Kubernetes'
/// `DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Every other resource (extended resources, hugepages), in whole units, sorted by name.
    pub scalars: Vec<(String, i64)>,
}

impl Resources {
    /// An amount of CPU (millicores) and memory (bytes) only.
    pub fn cpu_memory(milli_cpu: i64, memory: i64) -> Self {
        Self {
            milli_cpu,
            memory,
            ..Self::default()
        }
    }

    /// Parses a resource list (`requests`, `allocatable`), ignoring `pods` and unparsable
    /// quantities.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Self::default();
        for (name, q) in list {
            let Some(v) = parse_quantity(&q.0) else {
                continue;
            };
            match name.as_str() {
                "cpu" => r.milli_cpu = milli(v.0),
                "memory" => r.memory = units(v.0),
                "ephemeral-storage" => r.ephemeral_storage = units(v.0),
                "pods" => {}
                other => r.set_scalar(other, units(v.0)),
            }
        }
        r
    }

    /// The amount of the scalar resource `name` (0 if absent).
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalars
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map(|i| self.scalars[i].1)
            .unwrap_or(0)
    }

    fn set_scalar(&mut self, name: &str, v: i64) {
        match self.scalars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalars[i].1 = v,
            Err(i) => self.scalars.insert(i, (name.to_owned(), v)),
        }
    }

    /// True if every amount is zero.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalars.iter().all(|(_, v)| *v == 0)
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_add(other.ephemeral_storage);
        for (n, v) in &other.scalars {
            let cur = self.scalar(n);
            self.set_scalar(n, cur.saturating_add(*v));
        }
    }

    /// Subtracts `other` from `self`; scalars that reach zero are dropped.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_sub(other.ephemeral_storage);
        for (n, v) in &other.scalars {
            let cur = self.scalar(n);
            self.set_scalar(n, cur.saturating_sub(*v));
        }
        self.scalars.retain(|(_, v)| *v != 0);
    }

    /// Raises each amount of `self` to at least the one in `other`.
    fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (n, v) in &other.scalars {
            if *v > self.scalar(n) {
                self.set_scalar(n, *v);
            }
        }
    }
}

/// Nano-units to millicores, rounding up as `Quantity.MilliValue` does.
fn milli(nanos: i128) -> i64 {
    ceil_div(nanos, 1_000_000)
}

/// Nano-units to whole units, rounding up as `Quantity.Value` does.
fn units(nanos: i128) -> i64 {
    ceil_div(nanos, 1_000_000_000)
}

fn ceil_div(n: i128, d: i128) -> i64 {
    let q = n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0);
    i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX })
}

/// How missing container requests are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// As zero (what the filters use).
    Zero,
    /// As the scoring defaults, for CPU and memory.
    Defaults,
}

fn container_requests(c: &Container, missing: Missing) -> Resources {
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = requests.map(Resources::from_list).unwrap_or_default();
    if missing == Missing::Defaults {
        if !requests.is_some_and(|m| m.contains_key("cpu")) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !requests.is_some_and(|m| m.contains_key("memory")) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn pod_requests_with(spec: &PodSpec, missing: Missing) -> Resources {
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&container_requests(c, missing));
    }
    // Init containers run one after the other before the app containers; sidecars (init
    // containers that restart always) keep running beside everything that follows them.
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, missing);
        let at_start = if is_sidecar(c) {
            total.add(&r);
            sidecars.add(&r);
            sidecars.clone()
        } else {
            let mut with = r;
            with.add(&sidecars);
            with
        };
        init_peak.max_with(&at_start);
    }
    total.max_with(&init_peak);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resources::from_list(overhead));
    }
    total
}

/// The effective requests of a pod, as the resource filter compares them.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    pod_requests_with(spec, Missing::Zero)
}

/// The CPU (millicores) and memory (bytes) a pod counts for when scoring: like
/// [`pod_requests`], but a container that requests no CPU or memory counts as
/// [`DEFAULT_MILLI_CPU_REQUEST`] and [`DEFAULT_MEMORY_REQUEST`], so that pods without requests
/// still spread.
pub fn pod_nonzero_requests(spec: &PodSpec) -> (i64, i64) {
    let r = pod_requests_with(spec, Missing::Defaults);
    (r.milli_cpu, r.memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn spec(v: serde_json::Value) -> PodSpec {
        let pod: Pod = serde_json::from_value(serde_json::json!({ "spec": v })).unwrap();
        pod.spec.unwrap()
    }

    fn c(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
        serde_json::json!({"name": name, "resources": {"requests": {"cpu": cpu, "memory": mem}}})
    }

    #[test]
    fn app_containers_add_up() {
        let s = spec(
            serde_json::json!({"containers": [c("a", "100m", "1Gi"), c("b", "0.5", "512Mi")]}),
        );
        let r = pod_requests(&s);
        assert_eq!(r.milli_cpu, 600);
        assert_eq!(r.memory, 1536 * 1024 * 1024);
    }

    #[test]
    fn init_containers_count_by_their_maximum() {
        let s = spec(serde_json::json!({
            "containers": [c("a", "100m", "100Mi"), c("b", "100m", "100Mi")],
            "initContainers": [c("i1", "1", "50Mi"), c("i2", "300m", "150Mi")]
        }));
        let r = pod_requests(&s);
        assert_eq!(r.milli_cpu, 1000, "the biggest init container wins for CPU");
        assert_eq!(
            r.memory,
            200 * 1024 * 1024,
            "the app containers' sum wins for memory"
        );
    }

    #[test]
    fn sidecars_add_to_the_app_containers_and_to_later_init_containers() {
        let mut side = c("side", "200m", "10Mi");
        side["restartPolicy"] = "Always".into();
        let s = spec(serde_json::json!({
            "containers": [c("a", "100m", "10Mi")],
            "initContainers": [side, c("i", "500m", "10Mi")]
        }));
        let r = pod_requests(&s);
        // App phase: 100m + 200m = 300m; the init container after the sidecar: 500m + 200m.
        assert_eq!(r.milli_cpu, 700);
        assert_eq!(r.memory, 20 * 1024 * 1024);
    }

    #[test]
    fn overhead_and_extended_resources() {
        let s = spec(serde_json::json!({
            "containers": [{"name": "a", "resources": {"requests": {
                "cpu": "1", "ephemeral-storage": "1G", "example.com/gpu": "2"}}}],
            "overhead": {"cpu": "250m"}
        }));
        let r = pod_requests(&s);
        assert_eq!(r.milli_cpu, 1250);
        assert_eq!(r.ephemeral_storage, 1_000_000_000);
        assert_eq!(r.scalar("example.com/gpu"), 2);
        assert_eq!(r.scalar("example.com/fpga"), 0);
    }

    #[test]
    fn missing_requests_count_as_defaults_for_scoring_only() {
        let s = spec(serde_json::json!({"containers": [{"name": "a"}, c("b", "10m", "1Mi")]}));
        assert!(pod_requests(&s).milli_cpu == 10);
        assert_eq!(
            pod_nonzero_requests(&s),
            (110, DEFAULT_MEMORY_REQUEST + 1024 * 1024)
        );
        let zero = spec(serde_json::json!({"containers": [c("a", "0", "0")]}));
        assert_eq!(
            pod_nonzero_requests(&zero),
            (0, 0),
            "an explicit zero stays zero"
        );
    }

    #[test]
    fn quantities_round_up() {
        let list = BTreeMap::from([
            ("cpu".to_owned(), Quantity("1n".into())),
            ("memory".to_owned(), Quantity("1.5".into())),
        ]);
        let r = Resources::from_list(&list);
        assert_eq!(r.milli_cpu, 1);
        assert_eq!(r.memory, 2);
    }

    #[test]
    fn add_and_sub_round_trip() {
        let mut a = Resources::cpu_memory(100, 200);
        a.set_scalar("x", 1);
        let mut b = Resources::default();
        b.add(&a);
        b.add(&a);
        b.sub(&a);
        assert_eq!(a, b);
        b.sub(&a);
        assert!(b.is_zero());
        assert!(b.scalars.is_empty());
    }
}
