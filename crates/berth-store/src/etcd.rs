//! The etcd backend: the [`Store`] trait over etcd's v3 API, for highly available control
//! planes. Every trait operation maps to one etcd request (a transaction where a comparison is
//! involved), so etcd's revision is Berth's revision.
//!
//! This module translates; it adds no semantics of its own.

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;

use crate::{
    Event, EventType, KeyValue, ListOptions, ListResult, Revision, Store, StoreError, WatchStream,
};

/// A store backed by an etcd cluster.
pub struct EtcdStore {
    client: Client,
    compacted: AtomicI64,
}

fn backend(e: etcd_client::Error) -> StoreError {
    StoreError::Backend {
        message: format!("etcd: {e}"),
        source: Some(Box::new(e)),
    }
}

fn convert(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

fn header_revision(h: Option<&etcd_client::ResponseHeader>) -> Revision {
    h.map(|h| h.revision()).unwrap_or(0)
}

/// The first key after every key starting with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn map_compacted(e: etcd_client::Error, requested: Revision, compacted: Revision) -> StoreError {
    let text = e.to_string();
    if text.contains("compacted") {
        StoreError::Compacted {
            requested,
            compacted,
        }
    } else if text.contains("future rev") {
        StoreError::FutureRevision {
            requested,
            current: 0,
        }
    } else {
        backend(e)
    }
}

impl EtcdStore {
    /// Connects to the given endpoints (e.g. `http://127.0.0.1:2379`).
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        let client = Client::connect(endpoints, None).await.map_err(backend)?;
        Ok(EtcdStore {
            client,
            compacted: AtomicI64::new(0),
        })
    }

    /// The current value of `key` from a transaction's else-branch.
    fn else_get(resp: &etcd_client::TxnResponse) -> Option<KeyValue> {
        resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(convert),
            _ => None,
        })
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.client.clone().txn(txn).await.map_err(backend)?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        let rev = header_revision(resp.header());
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: rev,
            mod_revision: rev,
        })
    }

    async fn update(
        &self,
        key: &str,
        expected: Revision,
        value: Bytes,
    ) -> Result<KeyValue, StoreError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(etcd_client::PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.client.clone().txn(txn).await.map_err(backend)?;
        if !resp.succeeded() {
            return Err(match Self::else_get(&resp) {
                Some(kv) => StoreError::Conflict {
                    key: key.to_string(),
                    expected,
                    actual: kv.mod_revision,
                },
                None => StoreError::NotFound {
                    key: key.to_string(),
                },
            });
        }
        let rev = header_revision(resp.header());
        let create_revision = resp
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Put(p) => p.prev_key().map(|kv| kv.create_revision()),
                _ => None,
            })
            .unwrap_or(rev);
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision,
            mod_revision: rev,
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        let compare = match expected {
            Some(rev) => Compare::mod_revision(key, CompareOp::Equal, rev),
            None => Compare::create_revision(key, CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::delete(
                key,
                Some(etcd_client::DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.client.clone().txn(txn).await.map_err(backend)?;
        if !resp.succeeded() {
            return Err(match (Self::else_get(&resp), expected) {
                (Some(kv), Some(e)) => StoreError::Conflict {
                    key: key.to_string(),
                    expected: e,
                    actual: kv.mod_revision,
                },
                _ => StoreError::NotFound {
                    key: key.to_string(),
                },
            });
        }
        let rev = header_revision(resp.header());
        let prev = resp
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().map(convert),
                _ => None,
            })
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
            })?;
        Ok((prev, rev))
    }

    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision), StoreError> {
        let resp = self.client.clone().get(key, None).await.map_err(backend)?;
        Ok((
            resp.kvs().first().map(convert),
            header_revision(resp.header()),
        ))
    }

    async fn list(&self, options: ListOptions) -> Result<ListResult, StoreError> {
        let start = match &options.start_after {
            Some(after) => {
                let mut k = after.as_bytes().to_vec();
                k.push(0);
                k
            }
            None => options.prefix.as_bytes().to_vec(),
        };
        let mut get = GetOptions::new().with_range(prefix_end(&options.prefix));
        if options.limit > 0 {
            get = get.with_limit(i64::try_from(options.limit).unwrap_or(i64::MAX));
        }
        if let Some(rev) = options.revision {
            get = get.with_revision(rev);
        }
        let requested = options.revision.unwrap_or(0);
        let resp = self
            .client
            .clone()
            .get(start, Some(get))
            .await
            .map_err(|e| map_compacted(e, requested, self.compacted.load(Ordering::Relaxed)))?;
        let revision = options
            .revision
            .unwrap_or_else(|| header_revision(resp.header()));
        Ok(ListResult {
            items: resp.kvs().iter().map(convert).collect(),
            revision,
            more: resp.more(),
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(after + 1);
        let stream = self
            .client
            .clone()
            .watch(prefix, Some(opts))
            .await
            .map_err(backend)?;
        let mapped = stream.flat_map(move |r| {
            let items: Vec<Result<Event, StoreError>> = match r {
                Err(e) => vec![Err(backend(e))],
                Ok(resp) if resp.canceled() && resp.compact_revision() > 0 => {
                    vec![Err(StoreError::Compacted {
                        requested: after,
                        compacted: resp.compact_revision(),
                    })]
                }
                Ok(resp) if resp.canceled() => vec![Err(StoreError::Closed)],
                Ok(resp) => resp
                    .events()
                    .iter()
                    .filter_map(|e| {
                        let kv = e.kv().map(convert)?;
                        let prev = e.prev_kv().map(convert);
                        Some(Ok(match e.event_type() {
                            etcd_client::EventType::Put => Event {
                                event_type: EventType::Put,
                                kv,
                                prev,
                            },
                            etcd_client::EventType::Delete => Event {
                                event_type: EventType::Delete,
                                kv: KeyValue {
                                    value: Bytes::new(),
                                    create_revision: 0,
                                    ..kv
                                },
                                prev,
                            },
                        }))
                    })
                    .collect(),
            };
            futures::stream::iter(items)
        });
        Ok(Box::pin(mapped))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let resp = self
            .client
            .clone()
            .get("/", Some(GetOptions::new().with_keys_only().with_limit(1)))
            .await
            .map_err(backend)?;
        Ok(header_revision(resp.header()))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self.client.clone().compact(revision, None).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("compacted") => {}
            Err(e) => return Err(backend(e)),
        }
        self.compacted.fetch_max(revision, Ordering::Relaxed);
        Ok(())
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.compacted.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }
}
