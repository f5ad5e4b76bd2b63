//! Controllers that run inside the API server process and act through its object pipeline:
//! the garbage collector (owner references, foreground and orphan deletion) and the namespace
//! lifecycle (a deleted namespace is emptied, then removed).
//!
//! Both are level-triggered: each pass compares the whole cached state with what it should be
//! and acts, so a restart at any moment is safe. A pass runs shortly after any change and at
//! least every few seconds.

pub mod garbage_collector;
pub mod namespace;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::Api;
use crate::objects::{FieldValidation, WriteOptions};

/// Write options of a controller.
pub(crate) fn options(manager: &str) -> WriteOptions {
    WriteOptions {
        field_manager: manager.to_string(),
        field_validation: FieldValidation::Ignore,
        dry_run: false,
    }
}

/// Runs `pass` after changes (debounced) and every `resync`, until shutdown.
pub(crate) async fn run_loop<F, Fut>(
    api: Arc<Api>,
    resync: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut pass: F,
) where
    F: FnMut(Arc<Api>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut changes = api.cache.subscribe();
    loop {
        pass(Arc::clone(&api)).await;
        let deadline = tokio::time::sleep(resync);
        tokio::pin!(deadline);
        tokio::select! {
            r = changes.recv() => match r {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Let a burst of changes settle into one pass.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while changes.try_recv().is_ok() {}
                }
                Err(broadcast::error::RecvError::Closed) => changes = api.cache.subscribe(),
            },
            _ = &mut deadline => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Starts the in-process controllers.
pub fn start(api: &Arc<Api>, shutdown: watch::Receiver<bool>) {
    tokio::spawn(run_loop(
        Arc::clone(api),
        Duration::from_secs(5),
        shutdown.clone(),
        garbage_collector::pass,
    ));
    tokio::spawn(run_loop(
        Arc::clone(api),
        Duration::from_secs(5),
        shutdown,
        namespace::pass,
    ));
}
