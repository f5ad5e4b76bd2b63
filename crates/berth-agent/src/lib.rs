//! Berth's node agent (`berth agent`): runs the pods bound to this node on Docker Engine.
//!
//! Layout:
//! - [`runtime`]: the container runtime layer: the [`runtime::ContainerRuntime`] trait, its
//!   Docker implementation over bollard and an in-memory fake for tests. It knows nothing of the
//!   Kubernetes API.
//! - [`pod`]: pure translation of Kubernetes pods into runtime specs (no I/O).
//!
//! The agent is an API client like any other: it never imports the server crates.

pub mod pod;
pub mod runtime;
