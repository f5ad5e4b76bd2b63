//! Server-side apply and managed fields (`metadata.managedFields`), with the semantics of
//! Kubernetes 1.33 (the API server's field manager over structured-merge-diff).
//!
//! This module owns the ownership bookkeeping: which manager owns which fields, conflicts, the
//! merge of applied configurations and the removal of fields an applier dropped. It must not do
//! I/O, defaulting or validation: the API server defaults and validates the objects it returns.

pub mod fieldpath;
