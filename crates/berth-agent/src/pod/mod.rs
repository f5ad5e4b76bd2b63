//! Pods on this node.
//!
//! - [`spec`]: pure translation of a pod into the runtime layer's specs.
//! - [`status`]: pure computation of a pod's status from what runs.
//! - [`probe`]: liveness, readiness and startup probes; [`backoff`]: restart back-off.
//! - [`volumes`]: the pod's files on the node; [`sources`]: the ConfigMaps and Secrets pods use,
//!   each kept current by a watch.
//! - [`engine`]: what the agent remembers of the engine between calls.
//! - [`worker`]: one task per pod making the engine match it; [`manager`]: the workers, fed by
//!   the API watch and the engine's relist.

pub mod backoff;
pub mod engine;
pub mod manager;
pub mod probe;
pub mod sources;
pub mod spec;
pub mod status;
#[cfg(test)]
pub(crate) mod testing;
pub mod volumes;
pub mod worker;
