//! Berth's placement core: where a pod goes, decided as kube-scheduler's default profile
//! decides it, as a pure function of a [`Snapshot`] of the nodes and the pods already placed.
//!
//! No I/O and no clock: the caller (the scheduler controller in `berth-controllers`) keeps the
//! snapshot up to date from the API, asks [`Scheduler::schedule`] for a node, records the
//! choice with [`Snapshot::assume`] and binds the pod; or writes the [`FitError`] message into
//! the pod's `PodScheduled` condition.
//!
//! Layout:
//! - [`resources`]: amounts and the effective requests of a pod.
//! - [`selector`]: label selectors, namespaces, node selector terms, tolerations.
//! - [`pod`]: a pod parsed once into what the plugins read ([`PodInfo`]).
//! - [`snapshot`]: nodes, placed pods, and the per-domain counts of pods matching the
//!   selectors in use, kept up to date incrementally.
//! - [`cycle`], [`filter`], [`score`]: Kubernetes' PreFilter/PreScore, Filter and Score
//!   plugins, with Kubernetes' reason strings, normalisation and weights.
//! - [`schedule`]: the cycle ([`Scheduler`]) and the unschedulable message.
//! - [`synthetic`]: generated clusters for tests and benchmarks.
//!
//! Differences from Kubernetes, by design: no preemption (so no `preemption:` sentence in the
//! message), no volume or image-locality plugins, nodes that are not Ready are treated as
//! carrying the `not-ready`/`unreachable` `NoSchedule` taint the node lifecycle controller
//! would add, and a workload's default spreading groups pods by their controller's UID (and
//! the Services selecting them) rather than by the controller's label selector.

pub mod cycle;
pub mod filter;
pub mod pod;
pub mod resources;
pub mod schedule;
pub mod score;
pub mod selector;
pub mod snapshot;
pub mod synthetic;

pub use pod::{HostPort, PodInfo, PodKey};
pub use resources::Resources;
pub use schedule::{Config, FitError, Placement, Scheduler};
pub use snapshot::{NodeFacts, Readiness, Snapshot};

#[cfg(test)]
mod tests;
