//! The work queue of a controller: keys to reconcile, each handed to one worker at a time.
//!
//! Owns de-duplication (a key queued twice is reconciled once), the rule that a key being
//! reconciled is not handed out again until it is done (a change meanwhile queues it once
//! more afterwards), delayed re-queueing and per-key exponential back-off after failures.
//! Must not know what a key means.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::{self, Display};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// The key of a namespaced or cluster-scoped object (`namespace` empty for the latter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl Key {
    /// The key `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an object.
    pub fn of<K: kube::Resource>(o: &K) -> Self {
        Self::new(
            o.meta().namespace.clone().unwrap_or_default(),
            o.meta().name.clone().unwrap_or_default(),
        )
    }
}

impl Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// The first delay after a failure; it doubles with each further failure of the same key.
const BACKOFF_BASE: Duration = Duration::from_millis(10);
/// The longest delay after failures.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

struct State<T> {
    ready: VecDeque<T>,
    queued: HashSet<T>,
    active: HashSet<T>,
    again: HashSet<T>,
    failures: HashMap<T, u32>,
}

/// A de-duplicating work queue.
pub struct Queue<T> {
    state: Mutex<State<T>>,
    notify: Notify,
}

impl<T: Clone + Eq + Hash + Send + 'static> Queue<T> {
    /// An empty queue.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                active: HashSet::new(),
                again: HashSet::new(),
                failures: HashMap::new(),
            }),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless it is queued already.
    pub fn add(&self, key: T) {
        let mut s = self.lock();
        if s.active.contains(&key) {
            s.again.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.ready.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: T, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(q) = queue.upgrade() {
                q.add(key);
            }
        });
    }

    /// Queues `key` after a delay that grows with its consecutive failures.
    pub fn add_backoff(self: &Arc<Self>, key: T) {
        let n = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        self.add_after(key, backoff(n));
    }

    /// Forgets the failures of `key` (it reconciled).
    pub fn forget(&self, key: &T) {
        self.lock().failures.remove(key);
    }

    /// How many keys wait.
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    /// True when no key waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the next key, marking it active; waits while none is ready.
    pub async fn next(&self) -> T {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.ready.pop_front() {
                    s.queued.remove(&key);
                    s.active.insert(key.clone());
                    if !s.ready.is_empty() {
                        // Let another worker take the next one.
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` done; if it changed while active, it is queued again.
    pub fn done(&self, key: &T) {
        let again = {
            let mut s = self.lock();
            s.active.remove(key);
            s.again.remove(key)
        };
        if again {
            self.add(key.clone());
        }
    }
}

/// The delay after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(20);
    BACKOFF_BASE.saturating_mul(1 << shift).min(BACKOFF_MAX)
}

/// What a reconcile asks for after it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Next {
    /// Nothing until the next change.
    #[default]
    Done,
    /// Look again after this long even without a change (a time-based condition).
    After(Duration),
}

/// Calls `f` every `period` (the first time one period from now) until `shutdown`: the
/// periodic pass of a controller over state that changes without an event.
pub async fn every(period: Duration, shutdown: &watch::Receiver<bool>, f: impl Fn()) {
    let mut shutdown = shutdown.clone();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => f(),
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs `workers` loops that take keys from `queue` and reconcile them until `shutdown`.
/// A failed reconcile is retried with back-off; its error is logged under `controller`.
pub async fn run_workers<T, E, F, Fut>(
    controller: &'static str,
    queue: Arc<Queue<T>>,
    workers: usize,
    shutdown: watch::Receiver<bool>,
    reconcile: F,
) where
    T: Clone + Eq + Hash + Send + Sync + Display + 'static,
    E: Display,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Next, E>> + Send,
{
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let queue = Arc::clone(&queue);
        let reconcile = reconcile.clone();
        let mut shutdown = shutdown.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let key = tokio::select! {
                    k = queue.next() => k,
                    _ = shutdown.changed() => return,
                };
                if *shutdown.borrow() {
                    return;
                }
                match reconcile(key.clone()).await {
                    Ok(next) => {
                        queue.forget(&key);
                        if let Next::After(d) = next {
                            queue.add_after(key.clone(), d);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(controller, key = %key, error = %e, "reconcile failed; retrying");
                        queue.add_backoff(key.clone());
                    }
                }
                queue.done(&key);
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_calls_after_each_period_until_shutdown() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (stop, shutdown) = watch::channel(false);
        let count = || calls.load(std::sync::atomic::Ordering::SeqCst);
        let ticking = every(Duration::from_secs(2), &shutdown, || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let watching = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(count(), 0, "not at once");
            tokio::time::sleep(Duration::from_secs(4)).await;
            assert_eq!(count(), 2);
            stop.send(true).unwrap();
        };
        tokio::join!(ticking, watching);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(count(), 2, "nothing after shutdown");
    }

    #[tokio::test]
    async fn a_key_queued_twice_is_handed_out_once() {
        let q = Queue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        assert_eq!(q.next().await, "a");
        assert_eq!(q.next().await, "b");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_key_changed_while_active_comes_back_after_done() {
        let q = Queue::new();
        q.add("a");
        let k = q.next().await;
        q.add("a");
        assert!(q.is_empty(), "not handed out twice at once");
        q.done(&k);
        assert_eq!(q.next().await, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_and_backed_off_keys_arrive_later() {
        let q = Queue::new();
        q.add_after("late", Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(q.next().await, "late");
        q.done(&"late");
        q.add_backoff("x");
        q.add_backoff("x");
        // The second failure waits twice the base.
        tokio::time::sleep(BACKOFF_BASE).await;
        tokio::task::yield_now().await;
        assert_eq!(q.len(), 1, "the first back-off fired");
        assert_eq!(q.next().await, "x");
        q.done(&"x");
        tokio::time::sleep(BACKOFF_BASE * 2).await;
        tokio::task::yield_now().await;
        assert_eq!(q.next().await, "x");
        q.forget(&"x");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(2), BACKOFF_BASE * 2);
        assert_eq!(backoff(5), BACKOFF_BASE * 16);
        assert_eq!(backoff(100), BACKOFF_MAX);
    }
}
