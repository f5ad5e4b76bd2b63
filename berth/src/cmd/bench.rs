//! `berth bench`: load generators that print the figures recorded in BENCHMARKS.md.
//!
//! `berth bench api` loads a running API server over HTTPS with the admin kubeconfig:
//! concurrent creates and gets of 1 KB ConfigMaps, one unpaginated LIST of many 2 KB pods
//! (including the client's parsing, in JSON and in protobuf as client-go asks for it), and the
//! delivery latency of changes to many watchers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use futures::StreamExt;
use prost::Message as _;
use serde_json::{Value, json};

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load a running API server (creates, gets, list, watch latency).
    Api(ApiArgs),
    /// Durable creates against a state store backend: the embedded one or an etcd.
    Store(StoreArgs),
    /// Pod start latency on a node, beside the same containers made straight through Docker.
    Pods(crate::cmd::bench_pods::PodsArgs),
    /// The placement core alone on synthetic nodes and pods, on one thread.
    Scheduler(crate::cmd::bench_scheduler::SchedulerArgs),
    /// Pods bound per second through the API, end to end (scheduler and API server).
    Scheduling(crate::cmd::bench_scheduling::SchedulingArgs),
}

/// Flags of `berth bench store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// `redb` (the embedded store, in --data-dir) or `etcd` (at --etcd-endpoint).
    #[arg(long, default_value = "redb")]
    pub backend: String,
    /// Directory of the embedded store's file (on the disk to measure).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The etcd endpoint.
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    pub etcd_endpoint: String,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How many creates.
    #[arg(long, default_value_t = 30_000)]
    pub count: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
}

/// Flags of `berth bench api`.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The admin kubeconfig of the server to load.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How many ConfigMaps to create.
    #[arg(long, default_value_t = 20_000)]
    pub creates: usize,
    /// How many gets to make.
    #[arg(long, default_value_t = 40_000)]
    pub gets: usize,
    /// How many pods the LIST returns.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// How many watchers.
    #[arg(long, default_value_t = 1_000)]
    pub watchers: usize,
    /// How many changes the watchers receive.
    #[arg(long, default_value_t = 100)]
    pub watch_events: usize,
}

/// Runs a benchmark.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Api(args) => api(args).await,
        BenchCommand::Store(args) => store(args).await,
        BenchCommand::Pods(args) => crate::cmd::bench_pods::run(args).await,
        BenchCommand::Scheduler(args) => crate::cmd::bench_scheduler::run(args),
        BenchCommand::Scheduling(args) => crate::cmd::bench_scheduling::run(args).await,
    }
}

/// Latency percentiles of a sample, in milliseconds.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_unstable();
    let at = |p: f64| {
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(kubeconfig: &std::path::Path) -> anyhow::Result<Self> {
        let (tls, base) = berth_apiserver::pki::client_config_from_kubeconfig(kubeconfig)
            .with_context(|| format!("reading {}", kubeconfig.display()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .pool_max_idle_per_host(256)
            .build()
            .context("building the HTTP client")?;
        Ok(Client { http, base })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req.send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            bail!("{status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }
}

/// Runs `total` operations with `concurrency` workers; returns the elapsed time and latencies.
async fn load<F, Fut>(
    concurrency: usize,
    total: usize,
    op: F,
) -> anyhow::Result<(Duration, Vec<Duration>)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let op = Arc::clone(&op);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                op(i).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((start.elapsed(), all))
}

/// Durable creates of `value_size` values with `concurrency` writers through the Store trait,
/// so that the embedded store and etcd are loaded by the same client code.
async fn store(args: StoreArgs) -> anyhow::Result<()> {
    let _tmp;
    let store: Arc<dyn berth_store::Store> = match args.backend.as_str() {
        "redb" => {
            let dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => {
                    let t = tempfile::tempdir()?;
                    let p = t.path().to_path_buf();
                    _tmp = t;
                    p
                }
            };
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("bench-{}.redb", std::process::id()));
            let _ = std::fs::remove_file(&path);
            Arc::new(berth_store::redb::RedbStore::open(&path)?)
        }
        "etcd" => Arc::new(
            berth_store::etcd::EtcdStore::connect(std::slice::from_ref(&args.etcd_endpoint))
                .await?,
        ),
        other => bail!("unknown backend {other:?}: expected redb or etcd"),
    };
    let value = bytes::Bytes::from(vec![b'x'; args.value_size]);
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let s = Arc::clone(&store);
    let (elapsed, mut lat) = load(args.concurrency, args.count, move |i| {
        let s = Arc::clone(&s);
        let v = value.clone();
        async move {
            s.create(&format!("/bench/{run}/{i:08}"), v).await?;
            Ok(())
        }
    })
    .await?;
    let (p50, p99) = percentiles(&mut lat);
    println!(
        "store {}: {} durable creates of {} B with {} writers in {:.2}s = {:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms",
        args.backend,
        args.count,
        args.value_size,
        args.concurrency,
        elapsed.as_secs_f64(),
        args.count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let client = Arc::new(Client::new(&args.kubeconfig)?);
    let run_id = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let ns = format!("bench-{run_id}");
    client
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":ns}}),
        )
        .await?;
    println!("namespace {ns}; concurrency {}", args.concurrency);

    // Creates of 1 KB ConfigMaps.
    let payload = "x".repeat(1000);
    let c = Arc::clone(&client);
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let (elapsed, mut lat) = load(args.concurrency, args.creates, move |i| {
        let c = Arc::clone(&c);
        let path = path.clone();
        let body = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":format!("cm-{i}")},"data":{"payload":payload}});
        async move { c.post(&path, &body).await.map(|_| ()) }
    })
    .await?;
    let (p50, p99) = percentiles(&mut lat);
    println!(
        "creates: {} in {:.2}s = {:.0}/s, p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.creates,
        elapsed.as_secs_f64(),
        args.creates as f64 / elapsed.as_secs_f64()
    );

    // Gets of the same objects.
    let c = Arc::clone(&client);
    let (n, nsc) = (args.creates.max(1), ns.clone());
    let (elapsed, mut lat) = load(args.concurrency, args.gets, move |i| {
        let c = Arc::clone(&c);
        let path = format!("/api/v1/namespaces/{nsc}/configmaps/cm-{}", (i * 7919) % n);
        async move { c.get(&path).await.map(|_| ()) }
    })
    .await?;
    let (p50, p99) = percentiles(&mut lat);
    println!(
        "gets: {} in {:.2}s = {:.0}/s, p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.gets,
        elapsed.as_secs_f64(),
        args.gets as f64 / elapsed.as_secs_f64()
    );

    // LIST of many 2 KB pods.
    let c = Arc::clone(&client);
    let nsc = ns.clone();
    // Sized so that a stored pod (with defaults and managed fields) is about 2 KB. The pods are
    // stored, not run: a scheduler name that no scheduler serves keeps the server's own
    // scheduler from trying to place 10,000 pods on no node (a status write and an event each)
    // while the LIST and the watches are measured.
    let annotation = "a".repeat(300);
    load(args.concurrency, args.pods, move |i| {
        let c = Arc::clone(&c);
        let path = format!("/api/v1/namespaces/{nsc}/pods");
        let body = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("pod-{i}"), "labels": {"app": "bench", "index": i.to_string()}, "annotations": {"bench/padding": annotation}},
            "spec": {"schedulerName": "berth-bench-unscheduled", "containers": [{"name": "app", "image": "registry.local/bench:1", "command": ["sleep", "3600"], "ports": [{"containerPort": 8080}]}]},
        });
        async move { c.post(&path, &body).await.map(|_| ()) }
    })
    .await?;
    // One unpaginated LIST, received and decoded into typed pods as a client does.
    let mut samples = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let resp = client
            .http
            .get(format!("{}/api/v1/namespaces/{ns}/pods", client.base))
            .send()
            .await?;
        let body = resp.bytes().await?;
        let received = t.elapsed();
        let list: k8s_openapi::List<k8s_openapi::api::core::v1::Pod> =
            serde_json::from_slice(&body)?;
        let total = t.elapsed();
        size = body.len();
        if list.items.len() != args.pods {
            bail!(
                "the LIST returned {} pods, expected {}",
                list.items.len(),
                args.pods
            );
        }
        samples.push((total, received));
    }
    samples.sort_unstable();
    let (total, received) = samples[samples.len() / 2];
    // The same LIST in protobuf, decoded into typed (prost) pods as client-go does: the first
    // after the writes encodes every pod once and caches it, the later ones concatenate.
    let url = format!("{}/api/v1/namespaces/{ns}/pods", client.base);
    let (cold, cold_received, pb_size) = list_protobuf(&client, &url, args.pods).await?;
    let mut pb_samples = Vec::new();
    for _ in 0..5 {
        let (t, r, _) = list_protobuf(&client, &url, args.pods).await?;
        pb_samples.push((t, r));
    }
    pb_samples.sort_unstable();
    let (pb_total, pb_received) = pb_samples[pb_samples.len() / 2];
    // Where the decoding time goes: the same list without managedFields.
    let body = client
        .http
        .get(format!("{}/api/v1/namespaces/{ns}/pods", client.base))
        .send()
        .await?
        .bytes()
        .await?;
    let mut value: Value = serde_json::from_slice(&body)?;
    if let Some(items) = value["items"].as_array_mut() {
        for item in items {
            if let Some(m) = item["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
    }
    let stripped = serde_json::to_vec(&value)?;
    drop(value);
    let best_decode = |bytes: &[u8]| -> anyhow::Result<Duration> {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let _: k8s_openapi::List<k8s_openapi::api::core::v1::Pod> =
                serde_json::from_slice(bytes)?;
            best = best.min(t.elapsed());
        }
        Ok(best)
    };
    let decode_full = best_decode(&body)?;
    let decode_stripped = best_decode(&stripped)?;
    println!(
        "list: {} pods ({:.1} MB, {:.2} KB each) in {:.1} ms including typed decoding ({:.1} ms to receive), median of 5",
        args.pods,
        size as f64 / 1e6,
        size as f64 / args.pods.max(1) as f64 / 1000.0,
        total.as_secs_f64() * 1000.0,
        received.as_secs_f64() * 1000.0
    );
    println!(
        "list protobuf: {} pods ({:.1} MB) in {:.1} ms including typed decoding ({:.1} ms to receive), median of 5; first after the writes (encoding every pod): {:.1} ms ({:.1} ms to receive)",
        args.pods,
        pb_size as f64 / 1e6,
        pb_total.as_secs_f64() * 1000.0,
        pb_received.as_secs_f64() * 1000.0,
        cold.as_secs_f64() * 1000.0,
        cold_received.as_secs_f64() * 1000.0
    );
    println!(
        "list decoding alone (best of 3): {:.1} ms; without managedFields ({:.1} of {:.1} MB are managedFields): {:.1} ms",
        decode_full.as_secs_f64() * 1000.0,
        (body.len() - stripped.len()) as f64 / 1e6,
        body.len() as f64 / 1e6,
        decode_stripped.as_secs_f64() * 1000.0
    );

    watch_latency(&args, &ns).await
}

/// One unpaginated LIST of pods asked for as client-go asks (protobuf, else JSON), received
/// and decoded into k8s-pb's prost `PodList`; returns the total time, the time to receive and
/// the body size.
async fn list_protobuf(
    client: &Client,
    url: &str,
    expected: usize,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let t = Instant::now();
    let resp = client
        .http
        .get(url)
        .header(
            "accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .send()
        .await?;
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.bytes().await?;
    let received = t.elapsed();
    if content_type != "application/vnd.kubernetes.protobuf" {
        bail!("the LIST was answered as {content_type:?}, not protobuf");
    }
    let envelope = body
        .strip_prefix(b"k8s\0".as_slice())
        .context("the protobuf LIST lacks the k8s\\0 prefix")?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(envelope)?;
    let list = k8s_pb::api::core::v1::PodList::decode(unknown.raw.as_deref().unwrap_or_default())?;
    let total = t.elapsed();
    if list.items.len() != expected {
        bail!(
            "the protobuf LIST returned {} pods, expected {expected}",
            list.items.len()
        );
    }
    Ok((total, received, body.len()))
}

/// Opens many watchers, then changes one ConfigMap repeatedly; each watcher measures the time
/// from the write to the event's arrival.
async fn watch_latency(args: &ApiArgs, ns: &str) -> anyhow::Result<()> {
    let writer = Client::new(&args.kubeconfig)?;
    let cm = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"watched"},"data":{"t":"0"}});
    let created = writer
        .post(&format!("/api/v1/namespaces/{ns}/configmaps"), &cm)
        .await?;
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    // Several connections: an HTTP/2 connection carries a bounded number of streams.
    let per_conn = 100;
    let conns: Vec<Arc<Client>> = (0..args.watchers.div_ceil(per_conn))
        .map(|_| Client::new(&args.kubeconfig).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.watchers);
    let mut tasks = Vec::new();
    let expected = args.watch_events;
    for w in 0..args.watchers {
        let c = Arc::clone(&conns[w / per_conn]);
        let url = format!(
            "{}/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dwatched&timeoutSeconds=300",
            c.base
        );
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let resp = c.http.get(url).send().await?;
            if !resp.status().is_success() {
                bail!("watch failed: {}", resp.status());
            }
            let _ = ready.send(()).await;
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            while lat.len() < expected {
                let Some(chunk) = stream.next().await else {
                    break;
                };
                buf.extend_from_slice(&chunk?);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let arrived = SystemTime::now().duration_since(UNIX_EPOCH)?;
                    let ev: Value = serde_json::from_slice(&line)?;
                    if let Some(sent) = ev["object"]["data"]["t"]
                        .as_str()
                        .and_then(|s| s.parse::<u128>().ok())
                        .filter(|t| *t > 0)
                    {
                        let micros = arrived.as_micros().saturating_sub(sent);
                        lat.push(Duration::from_micros(
                            u64::try_from(micros).unwrap_or(u64::MAX),
                        ));
                    }
                }
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    drop(ready_tx);
    for _ in 0..args.watchers {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let path = format!("/api/v1/namespaces/{ns}/configmaps/watched");
    for _ in 0..args.watch_events {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)?
            .as_micros()
            .to_string();
        let patch = json!({"data": {"t": t}});
        let resp = writer
            .http
            .patch(format!("{}{path}", writer.base))
            .header("content-type", "application/merge-patch+json")
            .body(patch.to_string())
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("patch failed: {}", resp.status());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(
            tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .context("watchers did not receive every event")???,
        );
    }
    let delivered = all.len();
    let (p50, p99) = percentiles(&mut all);
    println!(
        "watch: {} watchers, {} changes, {delivered} deliveries, latency p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.watchers, args.watch_events
    );
    Ok(())
}
