//! What the pod tests share: a worker's shared state over the fake engine and the fake API.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use crate::api::FakeApi;
use crate::config::AgentConfig;
use crate::events::Recorder;
use crate::pod::worker::Shared;
use crate::runtime::{ContainerRuntime, FakeRuntime, NetworkSpec};

/// The fakes and the shared state a worker or a manager runs on (the data dir lives as long).
pub struct Setup {
    pub rt: Arc<FakeRuntime>,
    pub api: Arc<FakeApi>,
    pub shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

/// Node `n1` with images `app:1` and the sandbox's present, network `net` made, backoffs short.
pub async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// The same, with `configure` applied to the agent's settings first.
pub async fn setup_with(configure: impl FnOnce(&mut AgentConfig)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let rt = Arc::new(FakeRuntime::new());
    let api = FakeApi::new();
    let mut config = AgentConfig::new("n1", dir.path(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    config.backoff_initial = Duration::from_millis(300);
    config.backoff_max = Duration::from_secs(2);
    config.ca_pem = "CA".into();
    configure(&mut config);
    rt.add_image(&config.sandbox_image, "sha256:pause");
    rt.add_image("app:1", "sha256:app");
    rt.ensure_network(&NetworkSpec {
        name: "net".into(),
        subnet: "10.42.0.0/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 42, 0, 1),
        labels: BTreeMap::new(),
    })
    .await
    .unwrap();
    let shared = Arc::new(Shared {
        runtime: rt.clone(),
        api: api.clone(),
        recorder: Recorder::new(api.clone(), "n1"),
        sources: crate::pod::sources::Sources::new(api.clone()),
        config,
        network: "net".into(),
        node_allocatable: BTreeMap::new(),
        engine: crate::pod::engine::EngineView::new(),
    });
    Setup {
        rt,
        api,
        shared,
        _dir: dir,
    }
}
