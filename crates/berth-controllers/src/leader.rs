//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does:
//! the holder renews `renewTime` every retry period; a candidate takes the Lease over only when
//! it has seen the same record unchanged for a whole `leaseDurationSeconds` (measured on its own
//! monotonic clock, so clocks of different machines need not agree). Every write is a
//! compare-and-swap on `resourceVersion`, so two candidates never both win.
//!
//! Owns the Lease and the terms of leadership. Must not know what the leader does: the work of
//! a term is a closure that stops when its shutdown channel turns true.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_api::clock::Clock;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// Errors of one election step.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The API call failed.
    #[error("lease {lease}: {source}")]
    Api {
        /// `namespace/name` of the Lease.
        lease: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// Which Lease, who we are, and the timing.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This candidate's identity (unique per process).
    pub identity: String,
    /// How long a record must stay unchanged before another candidate may take over.
    pub lease_duration: Duration,
    /// How long the holder keeps acting without a successful renewal.
    pub renew_deadline: Duration,
    /// How often the holder renews and a candidate retries.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// Berth's defaults: fast take-over (lease 8 s, renew deadline 6 s, retry every 2 s).
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(8),
            renew_deadline: Duration::from_secs(6),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What a candidate knows of the Lease between steps.
struct Observed {
    /// The record last seen (holder, renew time, transitions).
    record: Option<(Option<String>, Option<MicroTime>, Option<i32>)>,
    /// When it last changed, on our monotonic clock.
    since: Instant,
}

/// One candidate.
pub struct Elector {
    api: Api<Lease>,
    config: LeaderConfig,
    clock: Arc<dyn Clock>,
    observed: Observed,
}

impl Elector {
    /// A candidate for `config`'s Lease.
    pub fn new(client: kube::Client, config: LeaderConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            clock,
            observed: Observed {
                record: None,
                since: Instant::now(),
            },
        }
    }

    fn err(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            lease: format!("{}/{}", self.config.namespace, self.config.name),
            source,
        }
    }

    fn now(&self) -> MicroTime {
        MicroTime(self.clock.now())
    }

    /// One attempt to acquire or renew: true when we hold the Lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaderError> {
        let duration_secs =
            i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let current = match self.api.get_opt(&self.config.name).await {
            Ok(c) => c,
            Err(e) => return Err(self.err(e)),
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(self.now()),
                    renew_time: Some(self.now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(self.err(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let record = (
            spec.holder_identity.clone(),
            spec.renew_time.clone(),
            spec.lease_transitions,
        );
        if self.observed.record.as_ref() != Some(&record) {
            self.observed = Observed {
                record: Some(record),
                since: Instant::now(),
            };
        }
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.config.identity;
        let held_for = spec
            .lease_duration_seconds
            .map_or(self.config.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s.max(0)).unwrap_or(0))
            });
        let expired = holder.is_empty() || self.observed.since.elapsed() >= held_for;
        if !ours && !expired {
            return Ok(false);
        }
        let mut next = spec;
        if !ours {
            next.holder_identity = Some(self.config.identity.clone());
            next.acquire_time = Some(self.now());
            next.lease_transitions = Some(next.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        next.lease_duration_seconds = Some(duration_secs);
        next.renew_time = Some(self.now());
        lease.spec = Some(next);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Gives the Lease up (so another candidate need not wait for it to expire), if we hold it.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(self.now());
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::debug!(error = %e, "releasing the lease failed");
        }
    }

    /// Campaigns until `shutdown`: whenever this candidate holds the Lease, runs `work` with a
    /// channel that turns true when the term ends (renewal failed past the deadline, or
    /// shutdown), and waits for it to finish before campaigning again.
    pub async fn run<F, Fut>(mut self, mut shutdown: watch::Receiver<bool>, mut work: F)
    where
        F: FnMut(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let retry = self.config.retry_period;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.try_acquire_or_renew().await {
                Ok(true) => {}
                Ok(false) => {
                    if sleep_or_shutdown(retry, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leader election failed; retrying");
                    if sleep_or_shutdown(retry, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            }
            tracing::info!(
                lease = %self.config.name,
                identity = %self.config.identity,
                "became the leader"
            );
            let (stop, stopped) = watch::channel(false);
            let term = tokio::spawn(work(stopped));
            let mut last_renewal = Instant::now();
            let lost = loop {
                if sleep_or_shutdown(retry, &mut shutdown).await {
                    break false;
                }
                match self.try_acquire_or_renew().await {
                    Ok(true) => last_renewal = Instant::now(),
                    Ok(false) => break true,
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the lease failed");
                        if last_renewal.elapsed() >= self.config.renew_deadline {
                            break true;
                        }
                    }
                }
            };
            let _ = stop.send(true);
            let _ = term.await;
            if !lost {
                self.release().await;
                return;
            }
            tracing::warn!(lease = %self.config.name, "lost the lease; stopped leading");
        }
    }
}

/// Sleeps for `d`; true if shutdown came first.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}
