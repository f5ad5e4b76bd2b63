//! The embedded backend of the [`Store`]: one redb database file.
//!
//! Owns the on-disk layout (a current-state table, an event log keyed by revision, a meta table
//! holding the current and compacted revisions), the single writer thread that group-commits
//! writes, and the live fan-out of events to watchers. It must not interpret values (they are
//! opaque bytes) and must not acknowledge a write before its transaction committed durably.
//!
//! Writes go through one dedicated `std::thread`: it drains every pending request (up to
//! [`MAX_BATCH`]) from a channel, applies them in order in one write transaction (each successful
//! op gets its own revision; a failed precondition fails only that op), commits once with
//! [`redb::Durability::Immediate`] (fsync), then answers each caller and publishes the events.
//! Reads use redb read transactions directly, so a list is consistent at one revision.
//!
//! Shutdown: drop every clone of the [`RedbStore`]. The last drop stops the writer thread (after
//! the batch in progress) and waits for it, which closes the file; open watch streams then end.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use crate::{
    Event, EventType, KeyValue, ListOptions, ListResult, Revision, Store, StoreError, WatchStream,
};

/// The most write requests committed in one transaction.
pub const MAX_BATCH: usize = 1000;
/// The most log entries deleted by compaction in one transaction.
const COMPACT_CHUNK: usize = 2000;
/// Live events buffered per watcher before it is declared lagged.
const BROADCAST_CAPACITY: usize = 16 * 1024;

/// key -> encoded (create_revision, mod_revision, value).
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
/// revision -> encoded event.
const LOG: TableDefinition<i64, &[u8]> = TableDefinition::new("log");
/// name -> revision.
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// The embedded, durable store. Cheap to clone: clones share one database and writer.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    requests: Option<mpsc::Sender<Request>>,
    events: broadcast::Sender<Arc<Event>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel stops the writer after its current batch.
        self.requests.take();
        let handle = match self.writer.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        expected: Revision,
        value: Bytes,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

/// What a successful op produced.
enum OpOutput {
    Put(KeyValue),
    Deleted(KeyValue, Revision),
    Compacted,
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<OpOutput, StoreError>>,
}

fn backend<E: std::error::Error + Send + Sync + 'static>(what: &str, err: E) -> StoreError {
    StoreError::Backend {
        message: format!("{what}: {err}"),
        source: Some(Box::new(err)),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend {
        message: format!("corrupt record: {what}"),
        source: None,
    }
}

// ---- encoding ----

fn encode_state(create: Revision, modr: Revision, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modr.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn read_i64(buf: &[u8], at: usize) -> Result<i64, StoreError> {
    let bytes: [u8; 8] = buf
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| corrupt("short integer"))?;
    Ok(i64::from_le_bytes(bytes))
}

fn read_u32(buf: &[u8], at: usize) -> Result<usize, StoreError> {
    let bytes: [u8; 4] = buf
        .get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| corrupt("short length"))?;
    Ok(u32::from_le_bytes(bytes) as usize)
}

fn decode_state(key: &str, buf: &[u8]) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: key.to_string(),
        create_revision: read_i64(buf, 0)?,
        mod_revision: read_i64(buf, 8)?,
        value: Bytes::copy_from_slice(buf.get(16..).ok_or_else(|| corrupt("state"))?),
    })
}

fn len_u32(n: usize) -> Result<[u8; 4], StoreError> {
    u32::try_from(n)
        .map(u32::to_le_bytes)
        .map_err(|_| StoreError::Backend {
            message: format!("record of {n} bytes is too large"),
            source: None,
        })
}

/// Layout: type u8, has_prev u8, create i64, mod i64, prev_create i64, prev_mod i64,
/// key_len u32, key, value_len u32, value, prev_value (rest).
fn encode_event(event: &Event) -> Result<Vec<u8>, StoreError> {
    let kv = &event.kv;
    let mut out = Vec::with_capacity(50 + kv.key.len() + kv.value.len());
    out.push(match event.event_type {
        EventType::Put => 0,
        EventType::Delete => 1,
    });
    out.push(u8::from(event.prev.is_some()));
    out.extend_from_slice(&kv.create_revision.to_le_bytes());
    out.extend_from_slice(&kv.mod_revision.to_le_bytes());
    let (pc, pm, pv): (Revision, Revision, &[u8]) = match &event.prev {
        Some(p) => (p.create_revision, p.mod_revision, &p.value),
        None => (0, 0, &[]),
    };
    out.extend_from_slice(&pc.to_le_bytes());
    out.extend_from_slice(&pm.to_le_bytes());
    out.extend_from_slice(&len_u32(kv.key.len())?);
    out.extend_from_slice(kv.key.as_bytes());
    out.extend_from_slice(&len_u32(kv.value.len())?);
    out.extend_from_slice(&kv.value);
    out.extend_from_slice(pv);
    Ok(out)
}

fn decode_event(buf: &[u8]) -> Result<Event, StoreError> {
    let event_type = match buf.first() {
        Some(0) => EventType::Put,
        Some(1) => EventType::Delete,
        _ => return Err(corrupt("event type")),
    };
    let has_prev = matches!(buf.get(1), Some(1));
    let create = read_i64(buf, 2)?;
    let modr = read_i64(buf, 10)?;
    let pc = read_i64(buf, 18)?;
    let pm = read_i64(buf, 26)?;
    let key_len = read_u32(buf, 34)?;
    let key_end = 38usize
        .checked_add(key_len)
        .ok_or_else(|| corrupt("key length"))?;
    let key = std::str::from_utf8(buf.get(38..key_end).ok_or_else(|| corrupt("key"))?)
        .map_err(|_| corrupt("key utf-8"))?
        .to_string();
    let value_len = read_u32(buf, key_end)?;
    let value_end = (key_end + 4)
        .checked_add(value_len)
        .ok_or_else(|| corrupt("value length"))?;
    let value = Bytes::copy_from_slice(
        buf.get(key_end + 4..value_end)
            .ok_or_else(|| corrupt("value"))?,
    );
    let prev = if has_prev {
        Some(KeyValue {
            key: key.clone(),
            value: Bytes::copy_from_slice(buf.get(value_end..).unwrap_or_default()),
            create_revision: pc,
            mod_revision: pm,
        })
    } else {
        None
    };
    Ok(Event {
        event_type,
        kv: KeyValue {
            key,
            value,
            create_revision: create,
            mod_revision: modr,
        },
        prev,
    })
}

// ---- the writer thread ----

struct Writer {
    db: Arc<Database>,
    requests: mpsc::Receiver<Request>,
    events: broadcast::Sender<Arc<Event>>,
    /// The last committed revision.
    revision: Revision,
    /// The compacted revision as committed.
    compacted: Revision,
    /// Log entries at or below `compacted` may remain to be deleted.
    cleanup_pending: bool,
}

impl Writer {
    fn run(mut self) {
        loop {
            let first = if self.cleanup_pending {
                match self.requests.try_recv() {
                    Ok(r) => Some(r),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            } else {
                match self.requests.recv() {
                    Ok(r) => Some(r),
                    Err(_) => return,
                }
            };
            let mut batch = Vec::new();
            batch.extend(first);
            while batch.len() < MAX_BATCH {
                match self.requests.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<Request>) {
        match self.apply(&batch) {
            Ok((results, events, revision, compacted, cleanup_pending)) => {
                self.revision = revision;
                self.compacted = compacted;
                self.cleanup_pending = cleanup_pending;
                for (request, result) in batch.into_iter().zip(results) {
                    let _ = request.reply.send(result);
                }
                for event in events {
                    // No receivers is fine.
                    let _ = self.events.send(Arc::new(event));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "state store write transaction failed");
                let message = err.to_string();
                for request in batch {
                    let _ = request.reply.send(Err(StoreError::Backend {
                        message: message.clone(),
                        source: None,
                    }));
                }
                // Stop background cleanup until the next successful write.
                self.cleanup_pending = false;
            }
        }
    }

    /// Applies a batch in one transaction and commits it. Returns per-op results, the events,
    /// the new revision and compacted revision, and whether compaction cleanup remains.
    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        batch: &[Request],
    ) -> Result<
        (
            Vec<Result<OpOutput, StoreError>>,
            Vec<Event>,
            Revision,
            Revision,
            bool,
        ),
        StoreError,
    > {
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| backend("begin write", e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| backend("set durability", e))?;
        let mut revision = self.revision;
        let mut compacted = self.compacted;
        let mut results = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let cleanup_pending;
        {
            let mut state = txn
                .open_table(STATE)
                .map_err(|e| backend("open state", e))?;
            let mut log = txn.open_table(LOG).map_err(|e| backend("open log", e))?;
            let mut meta = txn.open_table(META).map_err(|e| backend("open meta", e))?;
            for request in batch {
                let result = apply_op(
                    &request.op,
                    &mut state,
                    &mut log,
                    &mut revision,
                    &mut compacted,
                )?;
                results.push(result.map(|(output, event)| {
                    events.extend(event);
                    output
                }));
            }
            // Compaction cleanup, bounded per transaction.
            let doomed: Vec<i64> = log
                .range(..=compacted)
                .map_err(|e| backend("scan log", e))?
                .take(COMPACT_CHUNK + 1)
                .map(|entry| entry.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()
                .map_err(|e| backend("scan log", e))?;
            cleanup_pending = doomed.len() > COMPACT_CHUNK;
            for rev in doomed.iter().take(COMPACT_CHUNK) {
                log.remove(*rev).map_err(|e| backend("compact log", e))?;
            }
            meta.insert(META_REVISION, revision)
                .map_err(|e| backend("write meta", e))?;
            meta.insert(META_COMPACTED, compacted)
                .map_err(|e| backend("write meta", e))?;
        }
        txn.commit().map_err(|e| backend("commit", e))?;
        Ok((results, events, revision, compacted, cleanup_pending))
    }
}

type Applied = Result<(OpOutput, Option<Event>), StoreError>;

/// Applies one op. The outer error aborts the whole batch (backend failure); the inner one fails
/// only this op.
fn apply_op(
    op: &Op,
    state: &mut redb::Table<&str, &[u8]>,
    log: &mut redb::Table<i64, &[u8]>,
    revision: &mut Revision,
    compacted: &mut Revision,
) -> Result<Applied, StoreError> {
    let current =
        |state: &redb::Table<&str, &[u8]>, key: &str| -> Result<Option<KeyValue>, StoreError> {
            match state.get(key).map_err(|e| backend("read state", e))? {
                Some(guard) => Ok(Some(decode_state(key, guard.value())?)),
                None => Ok(None),
            }
        };
    let (event_type, key, value, prev) = match op {
        Op::Compact { revision: target } => {
            if *target > *revision {
                return Ok(Err(StoreError::FutureRevision {
                    requested: *target,
                    current: *revision,
                }));
            }
            if *target < *compacted {
                return Ok(Err(StoreError::Compacted {
                    requested: *target,
                    compacted: *compacted,
                }));
            }
            *compacted = *target;
            return Ok(Ok((OpOutput::Compacted, None)));
        }
        Op::Create { key, value } => {
            if current(state, key)?.is_some() {
                return Ok(Err(StoreError::AlreadyExists { key: key.clone() }));
            }
            (EventType::Put, key, value.clone(), None)
        }
        Op::Update {
            key,
            expected,
            value,
        } => {
            let Some(prev) = current(state, key)? else {
                return Ok(Err(StoreError::NotFound { key: key.clone() }));
            };
            if prev.mod_revision != *expected {
                return Ok(Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    actual: prev.mod_revision,
                }));
            }
            (EventType::Put, key, value.clone(), Some(prev))
        }
        Op::Delete { key, expected } => {
            let Some(prev) = current(state, key)? else {
                return Ok(Err(StoreError::NotFound { key: key.clone() }));
            };
            if let Some(expected) = expected
                && prev.mod_revision != *expected
            {
                return Ok(Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    actual: prev.mod_revision,
                }));
            }
            (EventType::Delete, key, Bytes::new(), Some(prev))
        }
    };
    let rev = revision
        .checked_add(1)
        .ok_or_else(|| corrupt("revision overflow"))?;
    let create_revision = match (&event_type, &prev) {
        (EventType::Put, Some(p)) => p.create_revision,
        (EventType::Put, None) => rev,
        (EventType::Delete, Some(p)) => p.create_revision,
        (EventType::Delete, None) => 0,
    };
    let kv = KeyValue {
        key: key.clone(),
        value,
        create_revision,
        mod_revision: rev,
    };
    let event = Event {
        event_type,
        kv,
        prev,
    };
    let encoded = encode_event(&event)?;
    log.insert(rev, encoded.as_slice())
        .map_err(|e| backend("write log", e))?;
    let output = match event_type {
        EventType::Put => {
            let record = encode_state(create_revision, rev, &event.kv.value);
            state
                .insert(key.as_str(), record.as_slice())
                .map_err(|e| backend("write state", e))?;
            OpOutput::Put(event.kv.clone())
        }
        EventType::Delete => {
            state
                .remove(key.as_str())
                .map_err(|e| backend("delete state", e))?;
            let mut deleted = event.prev.clone().unwrap_or_else(|| event.kv.clone());
            deleted.key = key.clone();
            OpOutput::Deleted(deleted, rev)
        }
    };
    *revision = rev;
    Ok(Ok((output, Some(event))))
}

/// redb's page cache. Its default (1 GiB) would let the cache grow to a multiple of the data;
/// the API server's watch cache already holds every current object, so the store's cache only
/// needs to cover writes and point reads.
const PAGE_CACHE_BYTES: usize = 32 * 1024 * 1024;

// ---- the store ----

impl RedbStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create(path)
            .map_err(|e| backend("open database", e))?;
        Self::start(db)
    }

    /// Opens a database on a custom storage backend (tests simulate crashes with one).
    pub fn open_with_backend(backend_impl: impl redb::StorageBackend) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create_with_backend(backend_impl)
            .map_err(|e| backend("open database", e))?;
        Self::start(db)
    }

    /// A store held in memory only (for tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::open_with_backend(redb::backends::InMemoryBackend::new())
    }

    fn start(db: Database) -> Result<Self, StoreError> {
        // Create the tables and read the persisted revisions.
        let txn = db.begin_write().map_err(|e| backend("begin write", e))?;
        let (revision, compacted) = {
            txn.open_table(STATE)
                .map_err(|e| backend("open state", e))?;
            txn.open_table(LOG).map_err(|e| backend("open log", e))?;
            let meta = txn.open_table(META).map_err(|e| backend("open meta", e))?;
            let get = |name: &str| -> Result<i64, StoreError> {
                Ok(meta
                    .get(name)
                    .map_err(|e| backend("read meta", e))?
                    .map(|g| g.value())
                    .unwrap_or(0))
            };
            (get(META_REVISION)?, get(META_COMPACTED)?)
        };
        txn.commit().map_err(|e| backend("commit", e))?;
        let db = Arc::new(db);
        let (requests, receiver) = mpsc::channel();
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let writer = Writer {
            db: db.clone(),
            requests: receiver,
            events: events.clone(),
            revision,
            compacted,
            cleanup_pending: true,
        };
        let handle = std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| backend("spawn writer thread", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                requests: Some(requests),
                events,
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    async fn submit(&self, op: Op) -> Result<OpOutput, StoreError> {
        let (reply, answer) = oneshot::channel();
        let sender = self.inner.requests.as_ref().ok_or(StoreError::Closed)?;
        sender
            .send(Request { op, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.inner
            .db
            .begin_read()
            .map_err(|e| backend("begin read", e))
    }
}

fn read_meta(txn: &redb::ReadTransaction) -> Result<(Revision, Revision), StoreError> {
    let meta = txn.open_table(META).map_err(|e| backend("open meta", e))?;
    let get = |name: &str| -> Result<i64, StoreError> {
        Ok(meta
            .get(name)
            .map_err(|e| backend("read meta", e))?
            .map(|g| g.value())
            .unwrap_or(0))
    };
    Ok((get(META_REVISION)?, get(META_COMPACTED)?))
}

fn unexpected() -> StoreError {
    StoreError::Backend {
        message: "writer returned an unexpected result".into(),
        source: None,
    }
}

/// Log events with revision > `after` (and <= the read transaction's revision) under `prefix`.
fn events_after(
    txn: &redb::ReadTransaction,
    prefix: &str,
    after: Revision,
) -> Result<Vec<Event>, StoreError> {
    let log = txn.open_table(LOG).map_err(|e| backend("open log", e))?;
    let mut out = Vec::new();
    let start = after.saturating_add(1);
    for entry in log.range(start..).map_err(|e| backend("scan log", e))? {
        let (_, value) = entry.map_err(|e| backend("scan log", e))?;
        let event = decode_event(value.value())?;
        if event.kv.key.starts_with(prefix) {
            out.push(event);
        }
    }
    Ok(out)
}

#[async_trait]
impl Store for RedbStore {
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        match self
            .submit(Op::Create {
                key: key.to_string(),
                value,
            })
            .await?
        {
            OpOutput::Put(kv) => Ok(kv),
            _ => Err(unexpected()),
        }
    }

    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
    ) -> Result<KeyValue, StoreError> {
        match self
            .submit(Op::Update {
                key: key.to_string(),
                expected,
                value,
            })
            .await?
        {
            OpOutput::Put(kv) => Ok(kv),
            _ => Err(unexpected()),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        match self
            .submit(Op::Delete {
                key: key.to_string(),
                expected,
            })
            .await?
        {
            OpOutput::Deleted(kv, rev) => Ok((kv, rev)),
            _ => Err(unexpected()),
        }
    }

    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision), StoreError> {
        let txn = self.read()?;
        let (revision, _) = read_meta(&txn)?;
        let state = txn
            .open_table(STATE)
            .map_err(|e| backend("open state", e))?;
        let kv = match state.get(key).map_err(|e| backend("read state", e))? {
            Some(guard) => Some(decode_state(key, guard.value())?),
            None => None,
        };
        Ok((kv, revision))
    }

    async fn list(&self, options: ListOptions) -> Result<ListResult, StoreError> {
        let txn = self.read()?;
        let (current, compacted) = read_meta(&txn)?;
        let target = match options.revision {
            None | Some(0) => current,
            Some(r) if r > current => {
                return Err(StoreError::FutureRevision {
                    requested: r,
                    current,
                });
            }
            Some(r) if r < compacted => {
                return Err(StoreError::Compacted {
                    requested: r,
                    compacted,
                });
            }
            Some(r) => r,
        };
        let state = txn
            .open_table(STATE)
            .map_err(|e| backend("open state", e))?;
        let start: &str = match &options.start_after {
            Some(s) if s.as_str() > options.prefix.as_str() => s,
            _ => &options.prefix,
        };
        let skip_start = options.start_after.as_deref() == Some(start);
        let limit = if options.limit == 0 {
            usize::MAX
        } else {
            options.limit
        };
        let mut items = Vec::new();
        let mut more = false;
        if target == current {
            for entry in state.range(start..).map_err(|e| backend("scan state", e))? {
                let (key, value) = entry.map_err(|e| backend("scan state", e))?;
                let key = key.value();
                if !key.starts_with(&options.prefix) {
                    break;
                }
                if skip_start && key == start {
                    continue;
                }
                if items.len() >= limit {
                    more = true;
                    break;
                }
                items.push(decode_state(key, value.value())?);
            }
        } else {
            // Current state under the prefix, then undo every newer event.
            let mut view: BTreeMap<String, KeyValue> = BTreeMap::new();
            for entry in state
                .range(options.prefix.as_str()..)
                .map_err(|e| backend("scan state", e))?
            {
                let (key, value) = entry.map_err(|e| backend("scan state", e))?;
                let key = key.value();
                if !key.starts_with(&options.prefix) {
                    break;
                }
                view.insert(key.to_string(), decode_state(key, value.value())?);
            }
            let log = txn.open_table(LOG).map_err(|e| backend("open log", e))?;
            let newer = log
                .range(target.saturating_add(1)..)
                .map_err(|e| backend("scan log", e))?;
            for entry in newer.rev() {
                let (_, value) = entry.map_err(|e| backend("scan log", e))?;
                let event = decode_event(value.value())?;
                if !event.kv.key.starts_with(&options.prefix) {
                    continue;
                }
                match event.prev {
                    Some(prev) => {
                        view.insert(prev.key.clone(), prev);
                    }
                    None => {
                        view.remove(&event.kv.key);
                    }
                }
            }
            for (key, kv) in view {
                if key.as_str() < start || (skip_start && key == start) {
                    continue;
                }
                if items.len() >= limit {
                    more = true;
                    break;
                }
                items.push(kv);
            }
        }
        Ok(ListResult {
            items,
            revision: target,
            more,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        // Subscribe first so nothing committed after the replay's snapshot is missed.
        let live = self.inner.events.subscribe();
        let txn = self.read()?;
        let (_, compacted) = read_meta(&txn)?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let replay: VecDeque<Event> = events_after(&txn, prefix, after)?.into();
        drop(txn);
        let state = WatchState {
            replay,
            live,
            last: after,
            prefix: prefix.to_string(),
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, next_event)))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let txn = self.read()?;
        Ok(read_meta(&txn)?.0)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self.submit(Op::Compact { revision }).await? {
            OpOutput::Compacted => Ok(()),
            _ => Err(unexpected()),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        let txn = self.read()?;
        Ok(read_meta(&txn)?.1)
    }
}

struct WatchState {
    replay: VecDeque<Event>,
    live: broadcast::Receiver<Arc<Event>>,
    last: Revision,
    prefix: String,
    done: bool,
}

async fn next_event(mut s: WatchState) -> Option<(Result<Event, StoreError>, WatchState)> {
    if s.done {
        return None;
    }
    if let Some(event) = s.replay.pop_front() {
        s.last = event.revision();
        return Some((Ok(event), s));
    }
    loop {
        match s.live.recv().await {
            Ok(event) => {
                if event.revision() <= s.last || !event.kv.key.starts_with(&s.prefix) {
                    continue;
                }
                s.last = event.revision();
                let event = Event::clone(&event);
                return Some((Ok(event), s));
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                s.done = true;
                return Some((Err(StoreError::WatchLagged), s));
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

#[cfg(test)]
mod tests;
