//! Publishes the cluster CA in every namespace as the ConfigMap `kube-root-ca.crt` (key
//! `ca.crt`), which projected service-account volumes and in-cluster clients read, and puts it
//! back when it is changed or deleted.
//!
//! Owns only those ConfigMaps. Must not touch namespaces that are being deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::Context;
use crate::informer::Change;
use crate::queue::{self, Key, Next, Queue};

/// The ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
/// The key holding the PEM.
pub const KEY: &str = "ca.crt";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum RootCaError {
    /// Writing the ConfigMap failed.
    #[error("writing {namespace}/{NAME}: {source}")]
    Write {
        /// The namespace.
        namespace: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let Some(pem) = ctx.config.root_ca_pem.clone() else {
        return;
    };
    let namespaces = ctx.informers.get::<Namespace>();
    let configmaps = ctx.informers.get::<ConfigMap>();
    let queue: Arc<Queue<String>> = Queue::new();

    let feed = {
        let queue = Arc::clone(&queue);
        let namespaces = Arc::clone(&namespaces);
        let shutdown = shutdown.clone();
        async move {
            let all = || {
                for ns in namespaces.list() {
                    queue.add(Key::of(ns.as_ref()).name);
                }
            };
            let follow_namespaces = namespaces.follow(&shutdown, |c| match c {
                Change::Applied { new, .. } => queue.add(Key::of(new.as_ref()).name),
                Change::Deleted(_) => {}
                Change::Resynced => all(),
            });
            let follow_configmaps = configmaps.follow(&shutdown, |c| match c {
                Change::Applied { new: cm, .. } | Change::Deleted(cm) => {
                    if cm.metadata.name.as_deref() == Some(NAME) {
                        queue.add(cm.metadata.namespace.clone().unwrap_or_default());
                    }
                }
                Change::Resynced => all(),
            });
            namespaces.ready().await;
            configmaps.ready().await;
            all();
            tokio::join!(follow_namespaces, follow_configmaps);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers("root-ca-configmap", queue, 1, shutdown, move |ns| {
            let ctx = Arc::clone(&ctx);
            let pem = pem.clone();
            async move { reconcile(&ctx, &ns, &pem).await }
        })
    };
    tokio::join!(feed, worker);
}

/// Makes `namespace/kube-root-ca.crt` hold `pem`.
async fn reconcile(ctx: &Context, namespace: &str, pem: &str) -> Result<Next, RootCaError> {
    let Some(ns) = ctx.informers.get::<Namespace>().get("", namespace) else {
        return Ok(Next::Done);
    };
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Next::Done);
    }
    let want = BTreeMap::from([(KEY.to_owned(), pem.to_owned())]);
    let existing = ctx.informers.get::<ConfigMap>().get(namespace, NAME);
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let err = |source| RootCaError::Write {
        namespace: namespace.to_owned(),
        source,
    };
    match existing {
        Some(cm) if cm.data.as_ref() == Some(&want) => Ok(Next::Done),
        Some(cm) => {
            let mut cm = (*cm).clone();
            cm.data = Some(want);
            match api.replace(NAME, &PostParams::default(), &cm).await {
                Ok(_) => Ok(Next::Done),
                // A newer version is on its way through the informer; it queues us again.
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(Next::Done),
                Err(e) => Err(err(e)),
            }
        }
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(NAME.to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..ObjectMeta::default()
                },
                data: Some(want),
                ..ConfigMap::default()
            };
            match api.create(&PostParams::default(), &cm).await {
                Ok(_) => Ok(Next::Done),
                // Exists already (the informer lags) or the namespace is going away.
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 || s.code == 404 => {
                    Ok(Next::Done)
                }
                Err(e) => Err(err(e)),
            }
        }
    }
}
