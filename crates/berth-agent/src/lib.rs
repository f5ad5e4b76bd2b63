//! Berth's node agent (`berth agent`): runs the pods bound to this node on Docker Engine.
//!
//! Layout:
//! - [`runtime`]: the container runtime layer: the [`runtime::ContainerRuntime`] trait, its
//!   Docker implementation over bollard and an in-memory fake for tests. It knows nothing of the
//!   Kubernetes API.
//! - [`pod`]: pods on this node: the pure translation into runtime specs, status computation,
//!   probes, back-off, volume files, the per-pod worker and the manager that runs the workers.
//! - [`node`]: the Node object and its Lease; [`host`]: facts about the machine.
//! - [`api`]: the calls the agent makes to the API server, behind a trait with a fake;
//!   [`events`]: the pod events it records.
//! - [`agent`]: the agent's life from registration to shutdown; [`config`]: its settings.
//! - [`join`]: joining a cluster with a token, and the node credentials it leaves behind.
//! - [`stream`]: the TLS endpoint the API server proxies logs, exec and port-forward to.
//!
//! The agent is an API client like any other: it never imports the server crates.

pub mod agent;
pub mod api;
pub mod config;
pub mod events;
pub mod host;
pub mod join;
pub mod node;
pub mod pod;
pub mod runtime;
pub mod stream;
