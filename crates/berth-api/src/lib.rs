//! Berth's model of the Kubernetes API. Pure: no I/O, no clock reads (callers pass the time or a
//! [`clock::Clock`]), no global state beyond static tables.
//!
//! Layout:
//! - [`kinds`] and `registry`: which resources exist (group, version, kind, scope, names, verbs).
//! - [`meta`]: reading and writing `metadata` of objects held as JSON values.
//! - [`defaults`], [`validation`]: what the server fills in and what it rejects, per kind.
//! - [`table`]: the server-side printing columns `kubectl get` shows.
//! - [`selectors`], [`fields`]: label and field selectors.
//! - [`schema`]: the OpenAPI schemas of the built-in kinds and the list merge strategies that
//!   strategic merge patch and server-side apply need; [`openapi`] the documents served from them.
//! - [`patch`]: JSON patch, merge patch and strategic merge patch.
//! - [`managed`]: server-side apply and managed fields.
//! - [`protobuf`]: Kubernetes protobuf, request bodies decoded and responses encoded.
//! - [`status`]: errors as Kubernetes `Status` objects.
//! - [`quota`]: ResourceQuota usage and checks, LimitRange defaults and checks.
//!
//! Objects are `serde_json::Value`s throughout: the API server is generic over kinds, and typed
//! structs are used only where a module needs them internally.

pub mod clock;
pub mod defaults;
pub mod discovery;
pub mod fields;
pub mod kinds;
pub mod managed;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod quota;
mod registry;
pub mod schema;
pub mod selectors;
pub mod status;
pub mod table;
#[cfg(test)]
mod testutil;
pub mod validation;

pub use kinds::ResourceKind;
pub use status::{ApiError, StatusCause};
