//! Berth's state store.
//!
//! This crate owns the [`Store`] trait, which follows etcd's data model so that the embedded
//! backend and an etcd backend are interchangeable behind it:
//!
//! - every successful write gets the next value of one global, monotonic **revision** (the
//!   Kubernetes `resourceVersion`);
//! - writes are create-if-absent, compare-and-swap update and delete, each on one key;
//! - a list is consistent: it returns the keys under a prefix as they were at one revision;
//! - a watch streams every change under a prefix after a given revision, in revision order,
//!   exactly once;
//! - old history is compacted; reading or watching from a compacted revision fails with
//!   [`StoreError::Compacted`] (the API server turns it into `410 Gone`).
//!
//! Backends: [`redb::RedbStore`] (embedded, durable, the default) and [`fake::FakeStore`]
//! (in memory, recording calls, for tests), and [`etcd::EtcdStore`] for highly
//! available control planes. Values are opaque bytes: this
//! crate knows nothing about Kubernetes objects, and must not learn.

pub mod etcd;
pub mod fake;
pub mod redb;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// A store revision. Revision 0 means "none"; the first write gets revision 1.
pub type Revision = i64;

/// One key with its value and the revisions that created and last modified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, e.g. `/registry/core/pods/default/web`.
    pub key: String,
    /// The value as written.
    pub value: Bytes,
    /// The revision of the write that created this key (since its last deletion).
    pub create_revision: Revision,
    /// The revision of the last write to this key.
    pub mod_revision: Revision,
}

/// The result of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// The items in key order.
    pub items: Vec<KeyValue>,
    /// The revision the list reflects.
    pub revision: Revision,
    /// True when `limit` cut the list short; continue after the last item's key.
    pub more: bool,
}

/// What a list asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only keys starting with this prefix.
    pub prefix: String,
    /// Only keys strictly greater than this one (for paging).
    pub start_after: Option<String>,
    /// At most this many items; 0 means no limit.
    pub limit: usize,
    /// The state as of this revision; `None` is the current revision. A revision older than the
    /// compacted one fails with [`StoreError::Compacted`]; one newer than the current one with
    /// [`StoreError::FutureRevision`].
    pub revision: Option<Revision>,
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub event_type: EventType,
    /// For a put, the new key-value. For a delete, the key with an empty value, its
    /// `mod_revision` being the revision of the delete.
    pub kv: KeyValue,
    /// The key-value before the change, if the key existed.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of changes, in revision order. It ends with an error item if the store cannot keep
/// up with it (the watcher then lists again) or when the store shuts down.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;

/// Errors of the store. Every variant names the key or revision it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create found the key already present.
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// An update or delete found no such key.
    #[error("key {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// A compare-and-swap found another revision than expected.
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The revision the key has.
        actual: Revision,
    },
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compacted revision: history at or below it is gone.
        compacted: Revision,
    },
    /// The requested revision is newer than the store's current one.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The current revision.
        current: Revision,
    },
    /// A watcher fell too far behind and was dropped; it must list again.
    #[error("watch fell behind the store and was closed; list again")]
    WatchLagged,
    /// The store is shutting down or its writer has stopped.
    #[error("the store is closed")]
    Closed,
    /// The backend failed (I/O, corruption). Nothing was acknowledged.
    #[error("storage backend failure: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// The state store, with etcd's model (see the crate documentation).
///
/// All writes are durable when they return `Ok`: a crash afterwards does not lose them.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates `key` if it does not exist. Returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError>;

    /// Replaces `key`'s value if its `mod_revision` is `expected` (compare-and-swap). Returns the
    /// new key-value.
    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
    ) -> Result<KeyValue, StoreError>;

    /// Deletes `key`, if `expected` is given only when its `mod_revision` matches. Returns the
    /// deleted key-value and the revision of the delete.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError>;

    /// Reads `key` at the current revision. Returns it (if present) and the current revision.
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision), StoreError>;

    /// Lists keys under a prefix, consistently at one revision.
    async fn list(&self, options: ListOptions) -> Result<ListResult, StoreError>;

    /// Streams every change under `prefix` with a revision greater than `after`. Fails with
    /// [`StoreError::Compacted`] if `after` is older than the compacted revision.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// The current revision: that of the latest write.
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Discards history at and before `revision`: afterwards lists and watches can no longer go
    /// back that far. The current value of every key is kept.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// The compacted revision (0 if never compacted).
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;
}
