//! The etcd backend against a real single-member etcd (Debian's `etcd-server`), started in a
//! temporary directory on free loopback ports. Skips loudly without etcd, except in CI.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_store::etcd::EtcdStore;
use berth_store::{EventType, ListOptions, Store, StoreError};
use bytes::Bytes;
use futures::StreamExt;

struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    url: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_etcd() -> Option<Etcd> {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("etcd is required in CI (Debian package etcd-server)");
        }
        eprintln!("SKIPPED: etcd is not installed; this test runs in CI");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .args(["--name", "berth-test", "--data-dir"])
        .arg(dir.path())
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("berth-test={peer_url}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Etcd {
        child,
        _dir: dir,
        url,
    })
}

async fn connect(url: &str) -> EtcdStore {
    for _ in 0..100 {
        if let Ok(s) = EtcdStore::connect(&[url.to_string()]).await
            && s.current_revision().await.is_ok()
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("etcd did not come up at {url}");
}

#[tokio::test]
async fn etcd_backend_has_the_store_semantics() {
    let Some(etcd) = start_etcd() else { return };
    let s = connect(&etcd.url).await;
    let a = s.create("/registry/t/a", Bytes::from("1")).await.unwrap();
    assert!(matches!(
        s.create("/registry/t/a", Bytes::from("x")).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let a2 = s
        .update("/registry/t/a", a.mod_revision, Bytes::from("2"))
        .await
        .unwrap();
    assert_eq!(a2.create_revision, a.create_revision);
    assert!(
        matches!(s.update("/registry/t/a", a.mod_revision, Bytes::from("3")).await, Err(StoreError::Conflict { actual, .. }) if actual == a2.mod_revision)
    );
    assert!(matches!(
        s.update("/registry/t/none", 1, Bytes::from("3")).await,
        Err(StoreError::NotFound { .. })
    ));
    s.create("/registry/t/b", Bytes::from("b")).await.unwrap();
    s.create("/registry/u/c", Bytes::from("c")).await.unwrap();

    let page = s
        .list(ListOptions {
            prefix: "/registry/t/".into(),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.more);
    let rest = s
        .list(ListOptions {
            prefix: "/registry/t/".into(),
            start_after: Some(page.items[0].key.clone()),
            revision: Some(page.revision),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].key, "/registry/t/b");
    let old = s
        .list(ListOptions {
            prefix: "/registry/t/".into(),
            revision: Some(a.mod_revision),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(old.items.len(), 1);
    assert_eq!(old.items[0].value, Bytes::from("1"));

    let mut w = s.watch("/registry/t/", a.mod_revision).await.unwrap();
    let first = w.next().await.unwrap().unwrap();
    assert_eq!(first.revision(), a2.mod_revision);
    let (prev, drev) = s.delete("/registry/t/b", None).await.unwrap();
    assert_eq!(prev.value, Bytes::from("b"));
    loop {
        let e = w.next().await.unwrap().unwrap();
        if e.event_type == EventType::Delete {
            assert_eq!(e.revision(), drev);
            assert_eq!(e.prev.unwrap().value, Bytes::from("b"));
            break;
        }
    }
    let now = s.current_revision().await.unwrap();
    s.compact(now).await.unwrap();
    let gone = s
        .list(ListOptions {
            prefix: "/registry/t/".into(),
            revision: Some(a.mod_revision),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(gone, Err(StoreError::Compacted { .. })),
        "{gone:?}"
    );
    let mut w = s.watch("/registry/t/", a.mod_revision).await.unwrap();
    assert!(matches!(
        w.next().await,
        Some(Err(StoreError::Compacted { .. }))
    ));
}
