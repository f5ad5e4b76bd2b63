//! Shared by the in-process API server tests: a server on 127.0.0.1:0 in a temp dir over the
//! embedded store, and an HTTPS client with the admin credential.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use berth_apiserver::{Config, RunningServer};

/// A started server, its data directory and an admin client.
pub struct Harness {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

impl Harness {
    /// The server's base URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }
}

/// Starts a server with the given compaction interval.
pub async fn start(compaction: Duration) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = berth_store::redb::RedbStore::open(&dir.path().join("state.redb")).unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        bind_address: "127.0.0.1".parse().unwrap(),
        port: 0,
        tls_sans: vec![],
        service_cidr: "10.43.0.0/16".into(),
        cluster_cidr: "10.42.0.0/16".into(),
        compaction_interval: compaction,
        watch_history: berth_apiserver::cache::DEFAULT_HISTORY,
        default_tolerations: Default::default(),
    };
    let server = berth_apiserver::start(config, Arc::new(store))
        .await
        .unwrap();
    let (tls, _) = berth_apiserver::pki::client_config_from_kubeconfig(&server.kubeconfig).unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .unwrap();
    Harness {
        server,
        dir,
        client,
    }
}

/// Creates ConfigMaps `{prefix}0..{prefix}{n-1}` at `collection` (a configmaps URL), asserting
/// each is created.
pub async fn create_configmaps(client: &reqwest::Client, collection: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{prefix}{i}")}});
        let status = client
            .post(collection)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 201, "creating {prefix}{i}");
    }
}
