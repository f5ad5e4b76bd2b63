//! An in-memory [`Store`] for unit tests: the same semantics as the real backends (revisions,
//! compare-and-swap, consistent lists at past revisions, watches, compaction), no durability,
//! and a record of every call so tests can assert what a component did. Failures can be
//! injected to test error paths.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use crate::{
    Event, EventType, KeyValue, ListOptions, ListResult, Revision, Store, StoreError, WatchStream,
};

#[derive(Default)]
struct Inner {
    current: BTreeMap<String, KeyValue>,
    log: Vec<Event>,
    revision: Revision,
    compacted: Revision,
    calls: Vec<String>,
    fail_next: VecDeque<StoreError>,
}

/// The in-memory store (see the module documentation).
#[derive(Clone)]
pub struct FakeStore {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<Event>,
}

impl Default for FakeStore {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeStore {
    /// An empty store.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        FakeStore {
            inner: Arc::new(Mutex::new(Inner::default())),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call made so far, as `op key` strings (e.g. `create /registry/core/pods/a/b`).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Makes the next call fail with `error`.
    pub fn fail_next(&self, error: StoreError) {
        self.lock().fail_next.push_back(error);
    }

    fn begin(&self, call: String) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        let mut g = self.lock();
        g.calls.push(call);
        match g.fail_next.pop_front() {
            Some(e) => Err(e),
            None => Ok(g),
        }
    }

    fn commit(&self, g: &mut Inner, event: Event) {
        g.revision = event.revision();
        match event.event_type {
            EventType::Put => {
                g.current.insert(event.kv.key.clone(), event.kv.clone());
            }
            EventType::Delete => {
                g.current.remove(&event.kv.key);
            }
        }
        g.log.push(event.clone());
        let _ = self.events.send(event);
    }
}

#[async_trait]
impl Store for FakeStore {
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        let mut g = self.begin(format!("create {key}"))?;
        if g.current.contains_key(key) {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        let rev = g.revision + 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: rev,
            mod_revision: rev,
        };
        self.commit(
            &mut g,
            Event {
                event_type: EventType::Put,
                kv: kv.clone(),
                prev: None,
            },
        );
        Ok(kv)
    }

    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
    ) -> Result<KeyValue, StoreError> {
        let mut g = self.begin(format!("update {key}"))?;
        let prev = g
            .current
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
            })?;
        if prev.mod_revision != expected {
            return Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                actual: prev.mod_revision,
            });
        }
        let rev = g.revision + 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: prev.create_revision,
            mod_revision: rev,
        };
        self.commit(
            &mut g,
            Event {
                event_type: EventType::Put,
                kv: kv.clone(),
                prev: Some(prev),
            },
        );
        Ok(kv)
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        let mut g = self.begin(format!("delete {key}"))?;
        let prev = g
            .current
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
            })?;
        if let Some(e) = expected
            && prev.mod_revision != e
        {
            return Err(StoreError::Conflict {
                key: key.to_string(),
                expected: e,
                actual: prev.mod_revision,
            });
        }
        let rev = g.revision + 1;
        let kv = KeyValue {
            key: key.to_string(),
            value: Bytes::new(),
            create_revision: 0,
            mod_revision: rev,
        };
        self.commit(
            &mut g,
            Event {
                event_type: EventType::Delete,
                kv,
                prev: Some(prev.clone()),
            },
        );
        Ok((prev, rev))
    }

    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision), StoreError> {
        let g = self.begin(format!("get {key}"))?;
        Ok((g.current.get(key).cloned(), g.revision))
    }

    async fn list(&self, options: ListOptions) -> Result<ListResult, StoreError> {
        let g = self.begin(format!("list {}", options.prefix))?;
        let at = options.revision.unwrap_or(g.revision);
        if at < g.compacted {
            return Err(StoreError::Compacted {
                requested: at,
                compacted: g.compacted,
            });
        }
        if at > g.revision {
            return Err(StoreError::FutureRevision {
                requested: at,
                current: g.revision,
            });
        }
        // The state at `at`: undo newer events.
        let mut state = g.current.clone();
        for e in g.log.iter().rev().take_while(|e| e.revision() > at) {
            match &e.prev {
                Some(p) => state.insert(p.key.clone(), p.clone()),
                None => state.remove(&e.kv.key),
            };
        }
        let mut items: Vec<KeyValue> = state
            .into_values()
            .filter(|kv| kv.key.starts_with(&options.prefix))
            .filter(|kv| {
                options
                    .start_after
                    .as_ref()
                    .is_none_or(|s| kv.key.as_str() > s.as_str())
            })
            .collect();
        let more = options.limit > 0 && items.len() > options.limit;
        if more {
            items.truncate(options.limit);
        }
        Ok(ListResult {
            items,
            revision: at,
            more,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let g = self.begin(format!("watch {prefix}"))?;
        if after < g.compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: g.compacted,
            });
        }
        let rx = self.events.subscribe();
        let backlog: Vec<Event> = g
            .log
            .iter()
            .filter(|e| e.revision() > after && e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        let last = g.revision;
        drop(g);
        let prefix = prefix.to_string();
        let live = tokio_stream::wrappers::BroadcastStream::new(rx);
        use futures::StreamExt;
        let live = live.filter_map(move |r| {
            let prefix = prefix.clone();
            async move {
                match r {
                    Ok(e) if e.revision() > last && e.kv.key.starts_with(&prefix) => Some(Ok(e)),
                    Ok(_) => None,
                    Err(_) => Some(Err(StoreError::WatchLagged)),
                }
            }
        });
        Ok(Box::pin(
            futures::stream::iter(backlog.into_iter().map(Ok)).chain(live),
        ))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.begin("current_revision".into())?.revision)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut g = self.begin(format!("compact {revision}"))?;
        if revision > g.compacted {
            g.compacted = revision.min(g.revision);
            let c = g.compacted;
            g.log.retain(|e| e.revision() > c);
        }
        Ok(())
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.begin("compacted_revision".into())?.compacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn semantics_and_recorded_calls() {
        let s = FakeStore::new();
        let a = s.create("/a", Bytes::from("1")).await.unwrap();
        assert!(matches!(
            s.create("/a", Bytes::from("x")).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        let a2 = s
            .update("/a", a.mod_revision, Bytes::from("2"))
            .await
            .unwrap();
        assert!(matches!(
            s.update("/a", a.mod_revision, Bytes::from("3")).await,
            Err(StoreError::Conflict { .. })
        ));
        let old = s
            .list(ListOptions {
                prefix: "/".into(),
                revision: Some(a.mod_revision),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(old.items[0].value, Bytes::from("1"));
        let mut w = s.watch("/", 0).await.unwrap();
        assert_eq!(w.next().await.unwrap().unwrap().revision(), 1);
        assert_eq!(w.next().await.unwrap().unwrap().revision(), a2.mod_revision);
        s.compact(a2.mod_revision).await.unwrap();
        assert!(matches!(
            s.watch("/", 0).await,
            Err(StoreError::Compacted { .. })
        ));
        assert_eq!(s.calls()[0], "create /a");
        s.fail_next(StoreError::Closed);
        assert!(matches!(s.get("/a").await, Err(StoreError::Closed)));
    }
}
