//! Tests of the redb backend: operation semantics, history, restart, concurrency with a watcher,
//! and crash durability on a simulated disk.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::RedbStore;
use crate::{EventType, ListOptions, Store, StoreError};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn list_opts(prefix: &str) -> ListOptions {
    ListOptions {
        prefix: prefix.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_update_delete_semantics() {
    let store = RedbStore::in_memory().unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 0);

    let kv = store.create("/a", b("1")).await.unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (1, 1));
    assert!(matches!(
        store.create("/a", b("x")).await,
        Err(StoreError::AlreadyExists { key }) if key == "/a"
    ));
    // A failed op does not consume a revision.
    assert_eq!(store.current_revision().await.unwrap(), 1);

    let kv = store.update("/a", 1, b("2")).await.unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (1, 2));
    assert_eq!(kv.value, b("2"));
    assert!(matches!(
        store.update("/a", 1, b("3")).await,
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    assert!(matches!(
        store.update("/nope", 1, b("3")).await,
        Err(StoreError::NotFound { .. })
    ));

    let (got, rev) = store.get("/a").await.unwrap();
    assert_eq!(rev, 2);
    let got = got.unwrap();
    assert_eq!(
        (got.value, got.create_revision, got.mod_revision),
        (b("2"), 1, 2)
    );

    assert!(matches!(
        store.delete("/a", Some(1)).await,
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    let (prev, rev) = store.delete("/a", Some(2)).await.unwrap();
    assert_eq!(rev, 3);
    assert_eq!(
        (prev.key.as_str(), prev.value, prev.mod_revision),
        ("/a", b("2"), 2)
    );
    assert!(matches!(
        store.delete("/a", None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.get("/a").await.unwrap(), (None, 3));

    // Re-creating gets a fresh create_revision; unconditional delete works.
    let kv = store.create("/a", b("again")).await.unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (4, 4));
    let (_, rev) = store.delete("/a", None).await.unwrap();
    assert_eq!(rev, 5);
}

#[tokio::test]
async fn list_paging_and_prefix() {
    let store = RedbStore::in_memory().unwrap();
    for k in ["/p/a", "/p/b", "/p/c", "/p/d", "/pz", "/q/a"] {
        store.create(k, b(k)).await.unwrap();
    }
    let all = store.list(list_opts("/p/")).await.unwrap();
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/a", "/p/b", "/p/c", "/p/d"]);
    assert_eq!((all.revision, all.more), (6, false));

    let mut opts = list_opts("/p/");
    opts.limit = 2;
    let page1 = store.list(opts.clone()).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    assert!(page1.more);
    opts.start_after = Some(page1.items[1].key.clone());
    let page2 = store.list(opts.clone()).await.unwrap();
    let keys: Vec<_> = page2.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/c", "/p/d"]);
    assert!(!page2.more, "exactly the remaining items is not 'more'");

    assert!(matches!(
        store
            .list(ListOptions {
                revision: Some(7),
                ..list_opts("/")
            })
            .await,
        Err(StoreError::FutureRevision {
            requested: 7,
            current: 6
        })
    ));
}

#[tokio::test]
async fn list_at_past_revisions() {
    let store = RedbStore::in_memory().unwrap();
    store.create("/r/a", b("a1")).await.unwrap(); // 1
    store.create("/r/b", b("b1")).await.unwrap(); // 2
    store.update("/r/a", 1, b("a2")).await.unwrap(); // 3
    store.delete("/r/b", None).await.unwrap(); // 4
    store.create("/r/c", b("c1")).await.unwrap(); // 5
    store.create("/other", b("o")).await.unwrap(); // 6

    let at = |rev| {
        let store = store.clone();
        async move {
            store
                .list(ListOptions {
                    revision: Some(rev),
                    ..list_opts("/r/")
                })
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|kv| (kv.key, kv.value, kv.create_revision, kv.mod_revision))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(at(1).await, [("/r/a".into(), b("a1"), 1, 1)]);
    assert_eq!(
        at(2).await,
        [
            ("/r/a".into(), b("a1"), 1, 1),
            ("/r/b".into(), b("b1"), 2, 2)
        ]
    );
    assert_eq!(
        at(3).await,
        [
            ("/r/a".into(), b("a2"), 1, 3),
            ("/r/b".into(), b("b1"), 2, 2)
        ]
    );
    assert_eq!(at(4).await, [("/r/a".into(), b("a2"), 1, 3)]);
    assert_eq!(
        at(6).await,
        [
            ("/r/a".into(), b("a2"), 1, 3),
            ("/r/c".into(), b("c1"), 5, 5)
        ]
    );

    // Paging at a past revision.
    let page = store
        .list(ListOptions {
            revision: Some(3),
            limit: 1,
            start_after: Some("/r/a".into()),
            ..list_opts("/r/")
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].key, "/r/b");
    assert_eq!((page.revision, page.more), (3, false));
}

#[tokio::test]
async fn compaction() {
    let store = RedbStore::in_memory().unwrap();
    store.create("/c/a", b("1")).await.unwrap(); // 1
    store.update("/c/a", 1, b("2")).await.unwrap(); // 2
    store.create("/c/b", b("3")).await.unwrap(); // 3
    store.update("/c/b", 3, b("4")).await.unwrap(); // 4

    assert!(matches!(
        store.compact(9).await,
        Err(StoreError::FutureRevision { .. })
    ));
    store.compact(3).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 3);
    assert!(matches!(
        store.compact(2).await,
        Err(StoreError::Compacted {
            requested: 2,
            compacted: 3
        })
    ));

    let past = |rev| ListOptions {
        revision: Some(rev),
        ..list_opts("/c/")
    };
    assert!(matches!(
        store.list(past(2)).await,
        Err(StoreError::Compacted {
            requested: 2,
            compacted: 3
        })
    ));
    let at3 = store.list(past(3)).await.unwrap();
    assert_eq!(at3.items.len(), 2);
    assert_eq!(at3.items[1].value, b("3"));
    assert!(matches!(
        store.watch("/c/", 2).await,
        Err(StoreError::Compacted {
            requested: 2,
            compacted: 3
        })
    ));
    let mut w = store.watch("/c/", 3).await.unwrap();
    let e = w.next().await.unwrap().unwrap();
    assert_eq!(e.revision(), 4);
    // Current values survive.
    assert_eq!(store.get("/c/a").await.unwrap().0.unwrap().value, b("2"));
    assert_eq!(store.list(list_opts("/c/")).await.unwrap().items.len(), 2);
}

#[tokio::test]
async fn compaction_of_long_history_is_chunked_and_completes() {
    let store = RedbStore::in_memory().unwrap();
    let mut rev = store.create("/h", b("0")).await.unwrap().mod_revision;
    for i in 0..(super::COMPACT_CHUNK * 2 + 10) {
        rev = store
            .update("/h", rev, b(&i.to_string()))
            .await
            .unwrap()
            .mod_revision;
    }
    store.compact(rev - 1).await.unwrap();
    // The writer deletes the rest in the background, in chunks.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let txn = store.read().unwrap();
        let log = txn.open_table(super::LOG).unwrap();
        let n = redb::ReadableTableMetadata::len(&log).unwrap();
        if n == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{n} log entries left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut w = store.watch("/h", rev - 1).await.unwrap();
    assert_eq!(w.next().await.unwrap().unwrap().revision(), rev);
}

#[tokio::test]
async fn restart_keeps_revision_history_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        store.create("/k/a", b("1")).await.unwrap();
        store.create("/k/b", b("2")).await.unwrap();
        store.update("/k/a", 1, b("3")).await.unwrap();
        store.delete("/k/b", None).await.unwrap();
        store.compact(1).await.unwrap();
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 4);
    assert_eq!(store.compacted_revision().await.unwrap(), 1);
    let kv = store.get("/k/a").await.unwrap().0.unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (b("3"), 1, 3)
    );
    let at2 = store
        .list(ListOptions {
            revision: Some(2),
            ..list_opts("/k/")
        })
        .await
        .unwrap();
    assert_eq!(at2.items.len(), 2);
    let kv = store.create("/k/c", b("4")).await.unwrap();
    assert_eq!(kv.mod_revision, 5);
    let mut w = store.watch("/k/", 1).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(w.next().await.unwrap().unwrap().revision());
    }
    assert_eq!(seen, [2, 3, 4, 5]);
}

#[tokio::test]
async fn watch_ends_when_store_dropped() {
    let store = RedbStore::in_memory().unwrap();
    store.create("/w/a", b("1")).await.unwrap();
    let mut w = store.watch("/w/", 0).await.unwrap();
    drop(store);
    assert_eq!(w.next().await.unwrap().unwrap().revision(), 1);
    let end = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap();
    assert!(end.is_none());
}

/// 50 writers create, update and delete while a watcher, started from a list's revision taken
/// mid-way, must see exactly the acknowledged changes after that revision, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_watch_see_every_change_once() {
    let store = RedbStore::in_memory().unwrap();
    let mut tasks = Vec::new();
    for t in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..20 {
                let key = format!("/cc/{t}/{i}");
                let kv = store.create(&key, b("v1")).await.unwrap();
                acked.push((kv.mod_revision, EventType::Put, key.clone()));
                let kv = store.update(&key, kv.mod_revision, b("v2")).await.unwrap();
                acked.push((kv.mod_revision, EventType::Put, key.clone()));
                if i % 3 == 0 {
                    let (_, rev) = store.delete(&key, Some(kv.mod_revision)).await.unwrap();
                    acked.push((rev, EventType::Delete, key));
                }
                // A failing op in the same batches must not disturb anything.
                assert!(store.update("/cc/missing", 1, b("x")).await.is_err());
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let start = store.list(list_opts("/cc/")).await.unwrap().revision;
    let mut watch = store.watch("/cc/", start).await.unwrap();

    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked.sort_by_key(|a| a.0);
    let revs: Vec<_> = acked.iter().map(|a| a.0).collect();
    let mut dedup = revs.clone();
    dedup.dedup();
    assert_eq!(revs, dedup, "every acknowledged write has its own revision");
    assert_eq!(*revs.last().unwrap(), acked.len() as i64);

    let expected: Vec<_> = acked.into_iter().filter(|a| a.0 > start).collect();
    assert!(!expected.is_empty());
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("watch stalled")
            .expect("watch ended")
            .expect("watch error");
        seen.push((event.revision(), event.event_type, event.kv.key));
    }
    assert_eq!(seen, expected);
    // Nothing extra arrives.
    store.create("/cc/last", b("x")).await.unwrap();
    let next = watch.next().await.unwrap().unwrap();
    assert_eq!(next.kv.key, "/cc/last");
}

// ---- crash durability ----

#[derive(Default)]
struct Disk {
    /// What the OS would show: every write so far.
    live: Vec<u8>,
    /// What survives power loss: the image as of the last `sync_data`.
    synced: Vec<u8>,
    /// Mutating calls left before the power fails; `None` is never.
    ops_left: Option<u64>,
    crashed: bool,
    syncs: u64,
}

/// A disk in memory where only `sync_data` makes bytes durable, and the power can be cut after a
/// given number of mutating calls: from then on every call fails.
#[derive(Clone, Default)]
struct CrashDisk(Arc<Mutex<Disk>>);

impl std::fmt::Debug for CrashDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrashDisk")
    }
}

fn power_lost() -> io::Error {
    io::Error::other("power lost")
}

impl CrashDisk {
    fn disk(&self) -> std::sync::MutexGuard<'_, Disk> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a mutating call; fails once the power is out.
    fn tick(disk: &mut Disk) -> io::Result<()> {
        if disk.crashed {
            return Err(power_lost());
        }
        if let Some(left) = disk.ops_left.as_mut() {
            if *left == 0 {
                disk.crashed = true;
                return Err(power_lost());
            }
            *left -= 1;
        }
        Ok(())
    }

    /// After a crash: a fresh disk holding only what had been synced.
    fn after_power_loss(&self) -> CrashDisk {
        let synced = self.disk().synced.clone();
        CrashDisk(Arc::new(Mutex::new(Disk {
            live: synced.clone(),
            synced,
            ..Default::default()
        })))
    }
}

impl redb::StorageBackend for CrashDisk {
    fn len(&self) -> io::Result<u64> {
        let disk = self.disk();
        if disk.crashed {
            return Err(power_lost());
        }
        Ok(disk.live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let disk = self.disk();
        if disk.crashed {
            return Err(power_lost());
        }
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let src = disk
            .live
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut disk = self.disk();
        Self::tick(&mut disk)?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        disk.live.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut disk = self.disk();
        Self::tick(&mut disk)?;
        disk.synced = disk.live.clone();
        disk.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = self.disk();
        Self::tick(&mut disk)?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + data.len();
        if disk.live.len() < end {
            disk.live.resize(end, 0);
        }
        disk.live[start..end].copy_from_slice(data);
        Ok(())
    }
}

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// Creates from concurrent callers until the power fails at a seed-chosen point; after reopening
/// the synced image, every acknowledged create is present with its revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_power_loss() {
    let mut total_acked = 0;
    let mut natural_crashes = 0;
    for seed in 1..=8u64 {
        let mut rng = seed;
        let disk = CrashDisk::default();
        let store = RedbStore::open_with_backend(disk.clone()).unwrap();
        // Some history before the crash window.
        for i in 0..(lcg(&mut rng) % 20) {
            store.create(&format!("/pre/{i}"), b("p")).await.unwrap();
        }
        let syncs_before = disk.disk().syncs;
        disk.disk().ops_left = Some(lcg(&mut rng) % 400 + 1);

        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..150 {
                    let key = format!("/crash/{t}/{i}");
                    let value = b(&format!("value of {key}"));
                    match store.create(&key, value.clone()).await {
                        Ok(kv) => acked.push((key, value, kv.mod_revision)),
                        Err(StoreError::Backend { .. }) => break,
                        Err(other) => panic!("unexpected error {other}"),
                    }
                }
                acked
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        // Cut the power now if the writes did not reach the chosen point.
        if disk.disk().crashed {
            natural_crashes += 1;
        } else {
            disk.disk().crashed = true;
        }
        assert!(disk.disk().syncs >= syncs_before);
        drop(store);

        let reopened = RedbStore::open_with_backend(disk.after_power_loss())
            .unwrap_or_else(|e| panic!("seed {seed}: database does not open after crash: {e}"));
        let max_acked = acked.iter().map(|a| a.2).max().unwrap_or(0);
        assert!(reopened.current_revision().await.unwrap() >= max_acked);
        for (key, value, rev) in &acked {
            let kv = reopened
                .get(key)
                .await
                .unwrap()
                .0
                .unwrap_or_else(|| panic!("seed {seed}: acknowledged {key} lost"));
            assert_eq!((&kv.value, kv.mod_revision), (value, *rev), "seed {seed}");
        }
        // The reopened store keeps working and continues the revision sequence.
        let next = reopened.create("/after", b("x")).await.unwrap();
        assert!(next.mod_revision > max_acked);
        total_acked += acked.len();
    }
    assert!(
        total_acked > 0,
        "some creates were acknowledged before the crashes"
    );
    assert!(
        natural_crashes >= 4,
        "most power cuts hit mid-write ({natural_crashes})"
    );
}

/// Durable creates per second with 64 concurrent callers on a real file (prints the figure).
/// Run with `cargo test -p berth-store --lib redb::tests::throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_of_durable_creates() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("bench.redb")).unwrap();
    let value = Bytes::from(vec![b'x'; 1024]);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..100 {
                let begin = std::time::Instant::now();
                store
                    .create(&format!("/bench/{t}/{i}"), value.clone())
                    .await
                    .unwrap();
                latencies.push(begin.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!(
        "{} creates in {elapsed:?}: {:.0}/s, p99 {p99:?}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
}
