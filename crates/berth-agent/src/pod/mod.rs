//! Pod-level logic of the agent: turning Kubernetes pods into runtime specs.
//!
//! Owns the translation from `k8s_openapi` pod objects to the runtime layer's value types
//! ([`spec`]). Must not perform I/O or talk to the API server: callers resolve ConfigMaps,
//! Secrets, IPs and paths beforehand and pass them in.

pub mod spec;
