//! The resource endpoints: get, list, watch, create, update, patch, delete and
//! deletecollection on every kind of the registry, and the subresources `status`, `scale`,
//! `pods/binding` and `pods/eviction`.
//!
//! Handlers translate HTTP (query, headers, body) into calls of the object pipeline
//! ([`crate::objects`]) and the watch cache, and render the results (JSON, protobuf or Table).
//! They own no object semantics of their own.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use berth_api::fields::FieldSelector;
use berth_api::selectors::LabelSelector;
use berth_api::table::{self, IncludeObject};
use berth_api::{ApiError, ResourceKind, meta};
use berth_store::{ListOptions, Revision};
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::body::{self, Output, PatchType};
use crate::cache::{CacheError, CacheEvent, CachedObject, WatchEventType, WatchStart};
use crate::objects::{DeleteOptions, FieldValidation, Part, Produced, WriteOptions, store_error};
use crate::query::Query;
use crate::request::RequestInfo;
use crate::{Api, Reply};

/// How long a consistent read waits for the watch cache to catch up.
const CACHE_WAIT: Duration = Duration::from_secs(5);
/// How often a watch sends a bookmark when asked to.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(15);

/// Everything a resource handler needs from the request.
pub struct ResourceRequest<'a> {
    /// The parsed path.
    pub info: &'a RequestInfo,
    /// The resource.
    pub kind: &'static ResourceKind,
    /// The query.
    pub query: &'a Query,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Accept` header.
    pub accept: Option<&'a str>,
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// The request body.
    pub body: Bytes,
}

impl ResourceRequest<'_> {
    fn namespace(&self) -> Option<&str> {
        if self.kind.namespaced {
            self.info.namespace.as_deref()
        } else {
            None
        }
    }

    fn name(&self) -> &str {
        self.info.name.as_deref().unwrap_or("")
    }

    /// The negotiated representation; protobuf only for kinds the protobuf schema covers.
    fn output(&self) -> Result<Output, ApiError> {
        let output = body::negotiate(self.accept, self.query.get("includeObject"))?;
        if output == Output::Protobuf
            && !berth_api::protobuf::supports(&self.kind.api_version(), self.kind.kind)
        {
            return Ok(Output::Json);
        }
        Ok(output)
    }

    /// The write options of the request (field manager, validation, dry run).
    pub fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let field_manager = match self.query.get("fieldManager") {
            Some(m) if !m.is_empty() => {
                if m.len() > 128 {
                    return Err(ApiError::bad_request(
                        "fieldManager must not be longer than 128 characters",
                    ));
                }
                m.to_string()
            }
            _ => default_manager(self.user_agent),
        };
        Ok(WriteOptions {
            field_manager,
            field_validation: FieldValidation::parse(self.query.get("fieldValidation"))?,
            dry_run: self.query.dry_run()?,
        })
    }
}

/// Kubernetes' default field manager: the user agent up to its first `/`.
fn default_manager(user_agent: Option<&str>) -> String {
    let ua = user_agent.unwrap_or("unknown");
    let m: String = ua
        .split('/')
        .next()
        .unwrap_or(ua)
        .chars()
        .take(128)
        .collect();
    if m.is_empty() { "unknown".into() } else { m }
}

/// Dispatches a resource request by verb and subresource.
pub async fn handle(api: &Arc<Api>, req: ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let kind = req.kind;
    if kind.namespaced && req.info.namespace.is_none() && req.info.name.is_some() {
        return Err(ApiError::no_such_path(&format!(
            "{} must be addressed within a namespace",
            kind.plural
        )));
    }
    if let Some(ns) = req.namespace() {
        let problems = berth_api::validation::dns1123_label(ns);
        if !problems.is_empty() {
            return Err(ApiError::bad_request(format!(
                "invalid namespace {ns:?}: {}",
                problems.join("; ")
            )));
        }
    }
    match req.info.subresource.as_deref() {
        None => match req.info.verb.as_str() {
            "get" => get(api, &req).await,
            "list" => list(api, &req).await,
            "watch" => watch(api, &req).await,
            "create" => create(api, &req).await,
            "update" => update(api, &req, Part::Main).await,
            "patch" => patch(api, &req, Part::Main).await,
            "delete" => delete(api, &req).await,
            "deletecollection" => delete_collection(api, &req).await,
            verb => Err(ApiError::method_not_allowed(format!(
                "{verb} is not supported on {}",
                kind.plural
            ))),
        },
        Some(sub) => {
            let Some(s) = kind.subresource(sub) else {
                return Err(ApiError::no_such_path(&format!("{}/{sub}", kind.plural)));
            };
            if !s.verbs.contains(&req.info.verb.as_str()) {
                return Err(ApiError::method_not_allowed(format!(
                    "{} is not supported on {}/{sub}",
                    req.info.verb, kind.plural
                )));
            }
            match (sub, req.info.verb.as_str()) {
                ("status", "get") => get(api, &req).await,
                ("status", "update") => update(api, &req, Part::Status).await,
                ("status", "patch") => patch(api, &req, Part::Status).await,
                ("scale", _) => crate::subresources::scale(api, &req).await,
                ("binding", "create") => crate::subresources::binding(api, &req).await,
                ("eviction", "create") => crate::subresources::eviction(api, &req).await,
                ("token", "create") => crate::serviceaccount::token_request(api, &req).await,
                (sub, verb) => Err(ApiError::method_not_allowed(format!(
                    "{verb} is not supported on {}/{sub}",
                    kind.plural
                ))),
            }
        }
    }
}

/// Renders one object per the negotiated output.
fn object_reply(
    status: StatusCode,
    kind: &ResourceKind,
    obj: &Value,
    output: Output,
    warnings: Vec<String>,
) -> Reply {
    let mut reply = match output {
        Output::Protobuf => match berth_api::protobuf::encode(obj) {
            Ok(body) => protobuf_reply(status, body),
            Err(e) => {
                tracing::warn!(error = %e, "object does not encode as protobuf; answering JSON");
                Reply::json_value(status, obj)
            }
        },
        Output::Json => Reply::json_value(status, obj),
        Output::Table { include, beta } => {
            let rv = meta::resource_version(obj).to_string();
            let t = table_for(
                kind,
                &[obj],
                include,
                beta,
                json!({ "resourceVersion": rv }),
            );
            Reply::json_value(status, &t)
        }
    };
    reply.warnings = warnings;
    reply
}

/// A protobuf reply.
fn protobuf_reply(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut reply = Reply::json(status, Bytes::from(body));
    reply.content_type = body::PROTOBUF;
    reply
}

fn table_for(
    kind: &ResourceKind,
    objs: &[&Value],
    include: IncludeObject,
    beta: bool,
    list_meta: Value,
) -> Value {
    let mut t = table::table(kind, objs, Timestamp::now(), include, list_meta);
    if beta {
        t["apiVersion"] = json!("meta.k8s.io/v1beta1");
    }
    t
}

async fn get(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let output = req.output()?;
    let (obj, _) = api
        .objects
        .get(req.kind, req.namespace(), req.name())
        .await?;
    Ok(object_reply(
        StatusCode::OK,
        req.kind,
        &obj,
        output,
        Vec::new(),
    ))
}

/// The key prefix a list or watch covers.
fn scope_prefix(kind: &ResourceKind, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if kind.namespaced => kind.namespace_prefix(ns),
        _ => kind.key_prefix(),
    }
}

/// Label and field selectors of a list or watch.
struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    fn from_query(kind: &ResourceKind, q: &Query) -> Result<Self, ApiError> {
        let labels =
            match q.get("labelSelector").filter(|s| !s.trim().is_empty()) {
                Some(s) => Some(berth_api::selectors::parse(s).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse requirement: {e}"))
                })?),
                None => None,
            };
        let fields = match q.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let f = FieldSelector::parse(s).map_err(ApiError::from)?;
                f.validate(kind)?;
                Some(f)
            }
            None => None,
        };
        Ok(Filter { labels, fields })
    }

    fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    fn matches(&self, o: &CachedObject) -> bool {
        if let Some(l) = &self.labels
            && !l.matches_with(|k| o.label(k))
        {
            return false;
        }
        if let Some(f) = &self.fields
            && !f.matches_with(|k| o.field(k))
        {
            return false;
        }
        true
    }
}

/// A continue token: where a paginated list resumes, at which revision.
fn encode_continue(rev: Revision, key: &str) -> String {
    let v = json!({ "v": "berth/v1", "rv": rev, "start": key });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(Revision, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: the token is malformed; start a new list without it",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rev = v["rv"].as_i64().filter(|r| *r > 0).ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?.to_string();
    if !start.starts_with(prefix) {
        return Err(ApiError::bad_request(
            "continue key is not valid: it belongs to another list",
        ));
    }
    Ok((rev, start))
}

/// Waits until the cache reflects what the request may see: the store's current revision for
/// a consistent read (no resourceVersion), at least `rv` for `resourceVersion=rv`, anything
/// for `resourceVersion=0`.
pub(crate) async fn wait_consistent(api: &Api, rv: Option<&str>) -> Result<(), ApiError> {
    let target = match rv {
        None | Some("") => api
            .store
            .current_revision()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?,
        Some("0") => return Ok(()),
        Some(s) => s
            .parse::<Revision>()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {s:?}")))?,
    };
    if api.cache.revision() >= target {
        return Ok(());
    }
    api.cache.wait_for(target, CACHE_WAIT).await.map_err(|_| {
        ApiError::new(
            504,
            berth_api::status::Reason::Timeout,
            format!(
                "Too large resource version: {target}, current: {}",
                api.cache.revision()
            ),
        )
    })
}

async fn list(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let kind = req.kind;
    let output = req.output()?;
    let filter = Filter::from_query(kind, req.query)?;
    let limit = req.query.number("limit")?.unwrap_or(0) as usize;
    let prefix = scope_prefix(kind, req.namespace());
    let (items, rev, cont, remaining) = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rev, start) = decode_continue(token, &prefix)?;
            list_from_store(api, kind, &prefix, &filter, rev, start, limit).await?
        }
        None if req.query.get("resourceVersionMatch") == Some("Exact") => {
            let rv = req.query.get("resourceVersion").unwrap_or("");
            let rev: Revision = rv.parse().ok().filter(|r| *r > 0).ok_or_else(|| {
                ApiError::bad_request(
                    "resourceVersionMatch=Exact requires a non-zero resourceVersion",
                )
            })?;
            list_from_store(api, kind, &prefix, &filter, rev, String::new(), limit).await?
        }
        None => {
            match req.query.get("resourceVersionMatch") {
                None | Some("") | Some("NotOlderThan") => {}
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "resourceVersionMatch must be Exact or NotOlderThan, got {other:?}"
                    )));
                }
            }
            wait_consistent(api, req.query.get("resourceVersion")).await?;
            let (mut items, rev) = api.cache.list(&prefix, |o| filter.matches(o));
            let mut cont = None;
            let mut remaining = None;
            if limit > 0 && items.len() > limit {
                let rest = items.len() - limit;
                items.truncate(limit);
                cont = items.last().map(|o| encode_continue(rev, &o.key));
                if filter.is_empty() {
                    remaining = Some(rest);
                }
            }
            (items, rev, cont, remaining)
        }
    };
    let mut list_meta = json!({ "resourceVersion": rev.to_string() });
    if let Some(c) = &cont {
        list_meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        list_meta["remainingItemCount"] = json!(r);
    }
    if output == Output::Protobuf
        && let Some(reply) = protobuf_list(kind, &items, &list_meta)
    {
        return Ok(reply);
    }
    match output {
        Output::Json | Output::Protobuf => {
            let mut buf =
                BytesMut::with_capacity(64 + items.iter().map(|o| o.json.len() + 1).sum::<usize>());
            buf.put_slice(b"{\"kind\":");
            buf.put_slice(json!(kind.list_kind()).to_string().as_bytes());
            buf.put_slice(b",\"apiVersion\":");
            buf.put_slice(json!(kind.api_version()).to_string().as_bytes());
            buf.put_slice(b",\"metadata\":");
            buf.put_slice(list_meta.to_string().as_bytes());
            buf.put_slice(b",\"items\":[");
            for (i, o) in items.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b',');
                }
                buf.put_slice(&external_json(kind, o));
            }
            buf.put_slice(b"]}");
            Ok(Reply::json(StatusCode::OK, buf.freeze()))
        }
        Output::Table { include, beta } => {
            let values: Vec<Value> = items.iter().map(|o| external_value(kind, o)).collect();
            let refs: Vec<&Value> = values.iter().collect();
            Ok(Reply::json_value(
                StatusCode::OK,
                &table_for(kind, &refs, include, beta, list_meta),
            ))
        }
    }
}

/// A protobuf list: the items' cached object messages concatenated; `None` (answer JSON) when
/// an item does not encode.
fn protobuf_list(
    kind: &ResourceKind,
    items: &[Arc<CachedObject>],
    list_meta: &Value,
) -> Option<Reply> {
    let raws: Vec<Bytes> = items
        .iter()
        .map(|o| external_protobuf(kind, o))
        .collect::<Option<_>>()?;
    match berth_api::protobuf::encode_list(&kind.api_version(), &kind.list_kind(), list_meta, &raws)
    {
        Ok(body) => Some(protobuf_reply(StatusCode::OK, body)),
        Err(e) => {
            tracing::warn!(error = %e, "list does not encode as protobuf; answering JSON");
            None
        }
    }
}

/// A later page of a paginated list, read from the store at the list's revision.
async fn list_from_store(
    api: &Api,
    kind: &'static ResourceKind,
    prefix: &str,
    filter: &Filter,
    rev: Revision,
    start: String,
    limit: usize,
) -> Result<
    (
        Vec<Arc<CachedObject>>,
        Revision,
        Option<String>,
        Option<usize>,
    ),
    ApiError,
> {
    let mut items = Vec::new();
    let mut after = start;
    let page = if limit == 0 { 0 } else { limit.max(100) };
    loop {
        let res = api
            .store
            .list(ListOptions { prefix: prefix.to_string(), start_after: Some(after.clone()), limit: page, revision: Some(rev) })
            .await
            .map_err(|e| match e {
                berth_store::StoreError::Compacted { .. } => ApiError::gone(format!(
                    "The resourceVersion {rev} of this list has been compacted: it is too old to display a consistent list result. Start a new list without it."
                )),
                other => store_error(kind, "", other),
            })?;
        for kv in &res.items {
            after.clone_from(&kv.key);
            let Ok(o) = CachedObject::from_kv(kind, kv) else {
                continue;
            };
            if filter.matches(&o) {
                items.push(Arc::new(o));
                if limit > 0 && items.len() == limit {
                    // More may follow; the client learns by asking.
                    let more = res.more
                        || kv.key != res.items.last().map(|k| k.key.clone()).unwrap_or_default();
                    let cont = more.then(|| encode_continue(rev, &kv.key));
                    return Ok((items, rev, cont, None));
                }
            }
        }
        if !res.more {
            return Ok((items, rev, None, None));
        }
    }
}

/// The object JSON as the requested kind shows it (conversion between served versions of one
/// stored kind, e.g. events.k8s.io/v1 Events stored as core Events).
fn external_json(kind: &ResourceKind, o: &CachedObject) -> Bytes {
    if std::ptr::eq(kind, o.kind) || kind == o.kind {
        o.json.clone()
    } else {
        Bytes::from(serde_json::to_vec(&external_value(kind, o)).unwrap_or_default())
    }
}

fn external_value(kind: &ResourceKind, o: &CachedObject) -> Value {
    crate::convert::from_storage(kind, o.value())
}

/// The object as the requested kind's protobuf object message (cached for the stored kind).
fn external_protobuf(kind: &ResourceKind, o: &CachedObject) -> Option<Bytes> {
    if std::ptr::eq(kind, o.kind) || kind == o.kind {
        o.protobuf()
    } else {
        berth_api::protobuf::encode_raw(&kind.api_version(), kind.kind, &external_value(kind, o))
            .ok()
            .map(Bytes::from)
    }
}

async fn watch(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let kind = req.kind;
    let output = req.output()?;
    let filter = Filter::from_query(kind, req.query)?;
    let prefix = scope_prefix(kind, req.namespace());
    let bookmarks = req.query.flag("allowWatchBookmarks")?;
    let send_initial = req.query.flag("sendInitialEvents")?;
    let timeout = match req.query.number("timeoutSeconds")? {
        Some(s) => Duration::from_secs(s.min(24 * 3600)),
        None => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let rv = req.query.get("resourceVersion").filter(|s| !s.is_empty());
    let start = match rv {
        None => {
            wait_consistent(api, None).await?;
            WatchStart::WithState
        }
        Some("0") => WatchStart::WithState,
        Some(s) => {
            let r: Revision = s
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {s:?}")))?;
            if send_initial {
                wait_consistent(api, Some(s)).await?;
                WatchStart::WithState
            } else {
                if r > api.cache.revision() {
                    wait_consistent(api, Some(s)).await?;
                }
                WatchStart::After(r)
            }
        }
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let renderer = Renderer { kind, output };
    // A watch that requires a value of its kind's trigger field (a node watching its pods) hears
    // only the changes of the objects with that value.
    let trigger = crate::cache::trigger_field(storage_kind(kind))
        .and_then(|field| filter.fields.as_ref()?.required(field));
    match api.cache.watch(&prefix, start, trigger) {
        Ok(w) => {
            let task = WatchTask {
                tx,
                renderer,
                filter,
                live: w.live,
                start_revision: w.revision,
                initial: w.initial,
                bookmarks,
                initial_end_bookmark: send_initial,
                timeout,
                cache: Arc::clone(&api.cache),
                scope: prefix.clone(),
            };
            tokio::spawn(task.run());
        }
        Err(CacheError::TooOld { requested, oldest }) => {
            let gone = ApiError::gone(format!("too old resource version: {requested} ({oldest})"));
            let _ = tx.try_send(Ok(renderer.error(&gone)));
        }
        Err(e) => return Err(ApiError::internal(e.to_string())),
    }
    let mut reply = Reply::stream(rx);
    if output == Output::Protobuf {
        reply.content_type = berth_api::protobuf::WATCH_CONTENT_TYPE;
    }
    Ok(reply)
}

#[derive(Clone, Copy)]
struct Renderer {
    kind: &'static ResourceKind,
    output: Output,
}

impl Renderer {
    fn event(&self, event_type: WatchEventType, o: &CachedObject) -> Bytes {
        match self.output {
            Output::Protobuf => match external_protobuf(self.kind, o) {
                Some(raw) => Bytes::from(berth_api::protobuf::watch_frame(
                    event_type.as_str(),
                    &self.kind.api_version(),
                    self.kind.kind,
                    &raw,
                )),
                None => self.error(&ApiError::internal(format!(
                    "{} {:?} cannot be encoded as protobuf; watch with Accept: application/json",
                    self.kind.kind, o.name
                ))),
            },
            Output::Json => {
                let obj = external_json(self.kind, o);
                let mut buf = BytesMut::with_capacity(obj.len() + 32);
                buf.put_slice(b"{\"type\":\"");
                buf.put_slice(event_type.as_str().as_bytes());
                buf.put_slice(b"\",\"object\":");
                buf.put_slice(&obj);
                buf.put_slice(b"}\n");
                buf.freeze()
            }
            Output::Table { include, beta } => {
                let v = external_value(self.kind, o);
                let rv = meta::resource_version(&v).to_string();
                let t = table_for(
                    self.kind,
                    &[&v],
                    include,
                    beta,
                    json!({ "resourceVersion": rv }),
                );
                Bytes::from(format!(
                    "{}\n",
                    json!({ "type": event_type.as_str(), "object": t })
                ))
            }
        }
    }

    fn bookmark(&self, rev: Revision, initial_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": rev.to_string() });
        if initial_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let obj = match self.output {
            Output::Protobuf => {
                let api_version = self.kind.api_version();
                let obj = json!({ "kind": self.kind.kind, "apiVersion": api_version, "metadata": metadata });
                return match berth_api::protobuf::encode_raw(&api_version, self.kind.kind, &obj) {
                    Ok(raw) => Bytes::from(berth_api::protobuf::watch_frame(
                        "BOOKMARK",
                        &api_version,
                        self.kind.kind,
                        &raw,
                    )),
                    Err(e) => self.error(&ApiError::internal(e.to_string())),
                };
            }
            Output::Json => {
                json!({ "kind": self.kind.kind, "apiVersion": self.kind.api_version(), "metadata": metadata })
            }
            Output::Table { beta, .. } => json!({
                "kind": "Table",
                "apiVersion": if beta { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
                "metadata": metadata,
                "columnDefinitions": [],
                "rows": [],
            }),
        };
        Bytes::from(format!(
            "{}\n",
            json!({ "type": "BOOKMARK", "object": obj })
        ))
    }

    /// An ERROR event carrying the error's Status.
    fn error(&self, e: &ApiError) -> Bytes {
        let status = e.to_status();
        if self.output == Output::Protobuf
            && let Ok(raw) = berth_api::protobuf::encode_raw("v1", "Status", &status)
        {
            return Bytes::from(berth_api::protobuf::watch_frame(
                "ERROR", "v1", "Status", &raw,
            ));
        }
        Bytes::from(format!(
            "{}\n",
            json!({ "type": "ERROR", "object": status })
        ))
    }
}

struct WatchTask {
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    renderer: Renderer,
    filter: Filter,
    live: broadcast::Receiver<Arc<CacheEvent>>,
    start_revision: Revision,
    initial: Vec<Arc<CacheEvent>>,
    bookmarks: bool,
    initial_end_bookmark: bool,
    timeout: Duration,
    cache: Arc<crate::cache::WatchCache>,
    scope: String,
}

impl WatchTask {
    /// What a watcher with this filter sees of a change: events that leave the selection are
    /// DELETED, events that enter it ADDED.
    fn visible(&self, e: &CacheEvent, prefix_ok: bool) -> Option<WatchEventType> {
        if !prefix_ok {
            return None;
        }
        let now = self.filter.matches(&e.object);
        let before = e.prev.as_ref().map(|p| self.filter.matches(p));
        match (e.event_type, before, now) {
            (WatchEventType::Deleted, Some(true), _) => Some(WatchEventType::Deleted),
            (WatchEventType::Deleted, _, _) => None,
            (t, None, true) => Some(t),
            (_, Some(true), true) => Some(WatchEventType::Modified),
            (_, Some(false), true) => Some(WatchEventType::Added),
            (_, Some(true), false) => Some(WatchEventType::Deleted),
            _ => None,
        }
    }

    async fn run(mut self) {
        // One timer for the watch's life, not one per event.
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut last = self.start_revision;
        let initial = std::mem::take(&mut self.initial);
        for e in &initial {
            if let Some(t) = self.visible(e, true)
                && self
                    .tx
                    .send(Ok(self.renderer.event(t, &e.object)))
                    .await
                    .is_err()
            {
                return;
            }
        }
        if self.initial_end_bookmark
            && self
                .tx
                .send(Ok(self.renderer.bookmark(last, true)))
                .await
                .is_err()
        {
            return;
        }
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_INTERVAL,
            BOOKMARK_INTERVAL,
        );
        loop {
            tokio::select! {
                ev = self.live.recv() => match ev {
                    Ok(e) => {
                        if e.revision <= last {
                            continue;
                        }
                        last = e.revision;
                        let in_scope = e.object.key.starts_with(&self.scope);
                        if let Some(t) = self.visible(&e, in_scope)
                            && self.tx.send(Ok(self.renderer.event(t, &e.object))).await.is_err() {
                                return;
                            }
                    }
                    // Fell behind: end the watch; the client resumes from its last revision.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if self.bookmarks => {
                    let rev = self.cache.revision();
                    if self.live.is_empty() && rev > last {
                        last = rev;
                    }
                    if self.tx.send(Ok(self.renderer.bookmark(last, false))).await.is_err() {
                        return;
                    }
                }
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
            }
        }
    }
}

/// Decodes the body as an object of the request's kind, converting served versions to the
/// stored form.
fn decode_body(req: &ResourceRequest<'_>) -> Result<Value, ApiError> {
    let v = body::decode_object(req.content_type, &req.body)?;
    Ok(crate::convert::to_storage(req.kind, v))
}

/// The kind objects of `kind` are stored and processed as.
fn storage_kind(kind: &'static ResourceKind) -> &'static ResourceKind {
    crate::convert::storage_kind(kind)
}

fn written_reply(
    req: &ResourceRequest<'_>,
    w: crate::objects::Written,
    status: StatusCode,
) -> Result<Reply, ApiError> {
    let output = req.output()?;
    let obj = crate::convert::from_storage(req.kind, w.object);
    Ok(object_reply(status, req.kind, &obj, output, w.warnings))
}

async fn create(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    if req.info.name.is_some() {
        return Err(ApiError::method_not_allowed(
            "POST is not allowed on a named object; use PUT or PATCH",
        ));
    }
    let obj = decode_body(req)?;
    let opts = req.write_options()?;
    let w = api
        .objects
        .create(storage_kind(req.kind), req.namespace(), obj, &opts, false)
        .await?;
    written_reply(req, w, StatusCode::CREATED)
}

async fn update(api: &Arc<Api>, req: &ResourceRequest<'_>, part: Part) -> Result<Reply, ApiError> {
    let obj = decode_body(req)?;
    let opts = req.write_options()?;
    let w = api
        .objects
        .update(
            storage_kind(req.kind),
            req.namespace(),
            req.name(),
            part,
            &opts,
            |_| Ok(Produced::Object(obj.clone())),
        )
        .await?;
    written_reply(req, w, StatusCode::OK)
}

async fn patch(api: &Arc<Api>, req: &ResourceRequest<'_>, part: Part) -> Result<Reply, ApiError> {
    let patch_type = PatchType::from_content_type(req.content_type)?;
    let patch = patch_type.decode(&req.body)?;
    let opts = req.write_options()?;
    let kind = storage_kind(req.kind);
    let name = req.name().to_string();
    if patch_type == PatchType::Apply {
        if req.query.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                "PATCH with application/apply-patch+yaml requires the fieldManager query parameter",
            ));
        }
        let force = req.query.flag("force")?;
        if !patch.is_object() {
            return Err(ApiError::bad_request(
                "the apply configuration must be an object",
            ));
        }
        let applied = crate::convert::to_storage(req.kind, patch);
        let now = api.objects.clock.now();
        let applied_ref = &applied;
        let manager = opts.field_manager.clone();
        let result = api
            .objects
            .update(kind, req.namespace(), &name, part, &opts, |live| {
                let mut live_for_apply = live.clone();
                // The stored resourceVersion is not part of what apply owns.
                meta::set(&mut live_for_apply, "resourceVersion", None);
                let mut out = berth_api::managed::apply(
                    kind,
                    Some(&live_for_apply),
                    applied_ref,
                    &manager,
                    force,
                    now,
                )?;
                // A resourceVersion in the configuration is a precondition; otherwise none.
                let rv = meta::resource_version(applied_ref).to_string();
                meta::set(
                    &mut out,
                    "resourceVersion",
                    (!rv.is_empty()).then(|| Value::String(rv)),
                );
                Ok(Produced::Applied(out))
            })
            .await;
        return match result {
            Err(e) if e.code == 404 && part == Part::Main => {
                let created =
                    berth_api::managed::apply(kind, None, &applied, &manager, force, now)?;
                let w = api
                    .objects
                    .create(kind, req.namespace(), created, &opts, true)
                    .await?;
                written_reply(req, w, StatusCode::CREATED)
            }
            Err(e) => Err(e),
            Ok(w) => written_reply(req, w, StatusCode::OK),
        };
    }
    let w = api
        .objects
        .update(kind, req.namespace(), &name, part, &opts, |current| {
            let patched = match patch_type {
                PatchType::Json => berth_api::patch::json_patch(current, &patch)?,
                PatchType::Merge => berth_api::patch::merge_patch(current, &patch)?,
                PatchType::Strategic => {
                    berth_api::patch::strategic_merge_patch(kind, current, &patch)?
                }
                PatchType::Apply => {
                    return Err(ApiError::internal("apply patches take the apply path"));
                }
            };
            // The stored version is what was patched: keep it as the precondition only if the
            // patch itself set one.
            let mut patched = patched;
            let patch_rv = patch
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            meta::set(&mut patched, "resourceVersion", patch_rv.map(Value::String));
            Ok(Produced::Object(patched))
        })
        .await?;
    written_reply(req, w, StatusCode::OK)
}

async fn delete(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let options = DeleteOptions::parse(&req.body, req.query)?;
    let obj = api
        .objects
        .delete(
            storage_kind(req.kind),
            req.namespace(),
            req.name(),
            &options,
        )
        .await?;
    let obj = crate::convert::from_storage(req.kind, obj);
    let status = if meta::is_deleting(&obj) && !meta::finalizers(&obj).is_empty() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(Reply::json_value(status, &obj))
}

async fn delete_collection(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let kind = storage_kind(req.kind);
    let options = DeleteOptions::parse(&req.body, req.query)?;
    let filter = Filter::from_query(req.kind, req.query)?;
    wait_consistent(api, None).await?;
    let prefix = scope_prefix(kind, req.namespace());
    let (items, _) = api.cache.list(&prefix, |o| filter.matches(o));
    let mut deleted = Vec::new();
    for o in items {
        let ns = (!o.namespace.is_empty()).then_some(o.namespace.as_str());
        match api.objects.delete(kind, ns, &o.name, &options).await {
            Ok(v) => deleted.push(crate::convert::from_storage(req.kind, v)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let rev = api.cache.revision();
    Ok(Reply::json_value(
        StatusCode::OK,
        &json!({
            "kind": req.kind.list_kind(),
            "apiVersion": req.kind.api_version(),
            "metadata": { "resourceVersion": rev.to_string() },
            "items": deleted,
        }),
    ))
}
