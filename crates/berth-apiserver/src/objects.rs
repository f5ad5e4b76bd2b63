//! The object write pipeline shared by every verb that changes an object: create, update,
//! patch, server-side apply, status and scale writes, binding, deletion and finalization.
//!
//! Each write reads the stored object, computes the new one (metadata bookkeeping,
//! defaulting, validation, admission, managed fields), and stores it with compare-and-swap.
//! This module owns those object semantics; it knows nothing about HTTP.

use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_api::{ApiError, ResourceKind, StatusCause, kinds, meta};
use berth_store::{KeyValue, Revision, Store, StoreError};
use bytes::Bytes;
use jiff::Timestamp;
use rand::Rng;
use serde_json::{Value, json};

use crate::alloc::{self, Allocators};
use crate::clock::Clock;

/// How unknown fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Ignore them silently.
    Ignore,
    /// Drop them and warn (the server default).
    #[default]
    Warn,
    /// Reject the request.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter.
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, got {other:?}"
            ))),
        }
    }
}

/// Who writes, and how.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The field manager recorded in managedFields.
    pub field_manager: String,
    /// Unknown-field handling.
    pub field_validation: FieldValidation,
    /// `dryRun=All`: do everything but store.
    pub dry_run: bool,
}

/// The outcome of a write: the object and the warnings to send back.
#[derive(Debug)]
pub struct Written {
    /// The object as stored (or as it would be, for dry runs).
    pub object: Value,
    /// True if a new object was created.
    pub created: bool,
    /// `Warning` header values.
    pub warnings: Vec<String>,
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: `status` is kept from the stored object (when the kind has a status
    /// subresource).
    Main,
    /// The `status` subresource: everything but `status` is kept.
    Status,
    /// A write the server makes on behalf of a subresource that Kubernetes implements below
    /// the update path (`pods/binding`): the produced object is taken whole, spec and status,
    /// and checked as a valid object rather than against update rules such as pod spec
    /// immutability.
    Internal,
}

/// The object store with Kubernetes object semantics.
pub struct Objects {
    /// The state store.
    pub store: Arc<dyn Store>,
    /// The service allocators.
    pub alloc: Allocators,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The `tolerationSeconds` given to new pods' not-ready and unreachable tolerations.
    pub default_tolerations: DefaultTolerations,
}

/// The DefaultTolerationSeconds admission settings: how long a new pod stays on a node that
/// turned not-ready or unreachable, unless the pod says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTolerations {
    /// Seconds for `node.kubernetes.io/not-ready:NoExecute`.
    pub not_ready_seconds: i64,
    /// Seconds for `node.kubernetes.io/unreachable:NoExecute`.
    pub unreachable_seconds: i64,
}

impl Default for DefaultTolerations {
    /// Berth's defaults, short for fast failover (Kubernetes' are 300 s).
    fn default() -> Self {
        Self {
            not_ready_seconds: DEFAULT_TOLERATION_SECONDS,
            unreachable_seconds: DEFAULT_TOLERATION_SECONDS,
        }
    }
}

/// Berth's default `tolerationSeconds` for the not-ready and unreachable taints.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 2;

/// How often a read-modify-write is retried on a revision conflict.
const CONFLICT_RETRIES: usize = 8;

/// Maps a store error about `kind`/`name` to an API error.
pub fn store_error(kind: &ResourceKind, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::AlreadyExists { .. } => ApiError::already_exists(kind.group, kind.plural, name),
        StoreError::NotFound { .. } => ApiError::not_found(kind.group, kind.plural, name),
        StoreError::Conflict { .. } => ApiError::conflict(
            kind.group,
            kind.plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ),
        StoreError::Compacted { .. } => ApiError::gone(format!("too old resource version: {e}")),
        StoreError::FutureRevision { .. } => ApiError::new(
            504,
            berth_api::status::Reason::Timeout,
            format!("Too large resource version: {e}"),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

/// Decodes a stored value, setting its `resourceVersion`.
pub fn decode_stored(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is undecodable: {e}", kv.key)))?;
    meta::set(
        &mut v,
        "resourceVersion",
        Some(Value::String(kv.mod_revision.to_string())),
    );
    Ok(v)
}

/// The bytes stored for an object: without `resourceVersion` (the store's revision is the
/// truth) and without `selfLink`. Both are removed from `obj` itself; a successful write sets
/// the new `resourceVersion` afterwards.
fn encode_for_store(obj: &mut Value) -> Bytes {
    let m = meta::metadata_mut(obj);
    m.remove("resourceVersion");
    m.remove("selfLink");
    Bytes::from(serde_json::to_vec(obj).unwrap_or_default())
}

fn set_resource_version(obj: &mut Value, rev: Revision) {
    meta::set(obj, "resourceVersion", Some(Value::String(rev.to_string())));
}

/// True for kinds whose `metadata.generation` tracks spec changes.
pub fn tracks_generation(kind: &ResourceKind) -> bool {
    matches!(
        (kind.group, kind.kind),
        ("apps", _)
            | ("batch", _)
            | ("autoscaling", _)
            | ("networking.k8s.io", _)
            | ("policy", "PodDisruptionBudget")
            | ("", "Pod")
            | ("", "Service")
            | ("", "ResourceQuota")
            | ("storage.k8s.io", _)
            | ("rbac.authorization.k8s.io", _)
    ) && !matches!(kind.kind, "ControllerRevision")
}

/// True when two objects differ in nothing but `metadata` and `status`: what a generation
/// bump looks at.
fn same_spec(old: &Value, new: &Value) -> bool {
    same_fields(
        old,
        new,
        &["metadata", "status", "apiVersion", "kind"],
        &|_, a, b| a == b,
    )
}

/// Compares two JSON objects key by key without copying them: the keys in `skip` are passed
/// over, the others must be in both and `eq` must hold for their values. Values that are not
/// objects are compared whole.
fn same_fields(
    a: &Value,
    b: &Value,
    skip: &[&str],
    eq: &dyn Fn(&str, &Value, &Value) -> bool,
) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let kept = |m: &serde_json::Map<String, Value>| {
        m.keys().filter(|k| !skip.contains(&k.as_str())).count()
    };
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .all(|(k, v)| b.get(k).is_some_and(|w| eq(k, v, w)))
}

/// Checks `apiVersion` and `kind` of a body against the endpoint; fills them when absent.
pub fn check_type_meta(kind: &ResourceKind, obj: &mut Value) -> Result<(), ApiError> {
    let want_version = kind.api_version();
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body must be an object"))?;
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::String(want_version.clone()));
        }
        Some(v) if v == want_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want_version})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::String(kind.kind.to_string()));
        }
        Some(k) if k == kind.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.kind
            )));
        }
    }
    if map
        .get("metadata")
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// Checks the body's namespace against the path's and fills it in.
pub fn check_namespace(
    kind: &ResourceKind,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let body_ns = meta::namespace(obj).to_string();
    if kind.namespaced {
        let Some(ns) = namespace else {
            return Err(ApiError::bad_request(format!(
                "{} is a namespaced resource: the request must name a namespace",
                kind.plural
            )));
        };
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta::set(obj, "namespace", Some(Value::String(ns.to_string())));
    } else if !body_ns.is_empty() {
        meta::set(obj, "namespace", None);
    }
    Ok(())
}

/// Handles unknown fields per the field validation mode: Strict rejects the request, Warn
/// drops them and warns, Ignore drops them silently (as Kubernetes' typed decoding does).
fn check_unknown_fields(
    kind: &ResourceKind,
    obj: &mut Value,
    mode: FieldValidation,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    if mode == FieldValidation::Strict {
        let unknown = berth_api::schema::unknown_fields(kind, obj);
        if !unknown.is_empty() {
            let listed: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                listed.join(", ")
            )));
        }
        return Ok(());
    }
    let dropped = berth_api::schema::prune_unknown_fields(kind, obj);
    if mode == FieldValidation::Warn {
        warnings.extend(dropped.iter().map(|f| format!("unknown field \"{f}\"")));
    }
    Ok(())
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A name from `generateName`, as Kubernetes makes them (five random characters).
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let prefix: String = prefix.chars().take(63 - 5).collect();
    let suffix: String = (0..5)
        .map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

fn validation_error(kind: &ResourceKind, obj: &Value, causes: Vec<StatusCause>) -> ApiError {
    ApiError::invalid(kind.group, kind.kind, meta::name(obj), causes)
}

/// Checks ownerReferences: every entry complete, at most one controller.
fn validate_owner_references(obj: &Value) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let Some(refs) = obj.pointer("/metadata/ownerReferences") else {
        return causes;
    };
    let Some(refs) = refs.as_array() else {
        causes.push(StatusCause::invalid(
            "metadata.ownerReferences",
            refs,
            "must be a list",
        ));
        return causes;
    };
    let mut controllers = 0;
    for (i, r) in refs.iter().enumerate() {
        for f in ["apiVersion", "kind", "name", "uid"] {
            if r.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                causes.push(StatusCause::required(format!(
                    "metadata.ownerReferences[{i}].{f}"
                )));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            controllers += 1;
        }
    }
    if controllers > 1 {
        causes.push(StatusCause::invalid(
            "metadata.ownerReferences",
            &Value::from(controllers),
            "Only one reference can have Controller set to true",
        ));
    }
    causes
}

/// The status a new object starts with (status written by clients on create is reset, as
/// Kubernetes' strategies do, for kinds with a status subresource). Pods and Namespaces then
/// get their initial phase (and a pod its QoS class) from defaulting.
fn initial_status(kind: &ResourceKind, obj: &mut Value) {
    if !kind.has_status() {
        return;
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    match (kind.group, kind.kind) {
        // Nodes, PersistentVolumes and Services may be created with status (agents register
        // nodes that way; load balancer status is empty anyway).
        ("", "Node") | ("", "PersistentVolume") => {}
        ("", "PersistentVolumeClaim") => {
            map.insert("status".into(), json!({ "phase": "Pending" }));
        }
        _ => {
            map.insert("status".into(), json!({}));
        }
    }
}

impl Objects {
    /// Reads one stored object.
    pub async fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(Value, Revision), ApiError> {
        let (kv, obj) = self.load(kind, &kind.key(namespace, name), name).await?;
        Ok((obj, kv.mod_revision))
    }

    /// Reads the stored key-value at `key` and decodes it; 404 when absent.
    async fn load(
        &self,
        kind: &ResourceKind,
        key: &str,
        name: &str,
    ) -> Result<(KeyValue, Value), ApiError> {
        let (kv, _) = self
            .store
            .get(key)
            .await
            .map_err(|e| store_error(kind, name, e))?;
        let kv = kv.ok_or_else(|| ApiError::not_found(kind.group, kind.plural, name))?;
        let obj = decode_stored(&kv)?;
        Ok((kv, obj))
    }

    /// Checks that `namespace` exists and accepts new content.
    async fn admit_namespace(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let (true, Some(ns)) = (kind.namespaced, namespace) else {
            return Ok(());
        };
        let key = kinds::by_kind("v1", "Namespace")
            .map(|k| k.key(None, ns))
            .unwrap_or_else(|| format!("/registry/core/namespaces/{ns}"));
        let (kv, _) = self
            .store
            .get(&key)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let Some(kv) = kv else {
            return Err(ApiError::not_found("", "namespaces", ns));
        };
        let nsobj = decode_stored(&kv)?;
        if meta::is_deleting(&nsobj) {
            return Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                berth_api::status::qualified(kind.group, kind.plural)
            )));
        }
        Ok(())
    }

    /// Creates an object. `obj` is the decoded body. `managed_fields_set` is true when
    /// server-side apply already recorded the managed fields.
    pub async fn create(
        &self,
        kind: &'static ResourceKind,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        managed_fields_set: bool,
    ) -> Result<Written, ApiError> {
        let mut warnings = Vec::new();
        check_type_meta(kind, &mut obj)?;
        check_namespace(kind, namespace, &mut obj)?;
        check_unknown_fields(kind, &mut obj, opts.field_validation, &mut warnings)?;
        let now = self.clock.now();
        if meta::name(&obj).is_empty() {
            let prefix = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    kind.group,
                    kind.kind,
                    "",
                    vec![StatusCause::new(
                        "FieldValueRequired",
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
            let name = generate_name(prefix);
            meta::set(&mut obj, "name", Some(Value::String(name)));
        }
        let applied_managed_fields = if managed_fields_set {
            obj.pointer("/metadata/managedFields").cloned()
        } else {
            None
        };
        self.prepare_new(kind, &mut obj, now);
        if kind.group.is_empty() && kind.kind == "Pod" {
            let t = self.default_tolerations;
            berth_api::defaults::default_toleration_seconds(
                &mut obj,
                t.not_ready_seconds,
                t.unreachable_seconds,
            );
        }
        berth_api::defaults::apply(kind, &mut obj);
        let limit_ranges = crate::admission::mutate(self, kind, namespace, &mut obj).await?;
        let mut causes = berth_api::validation::validate(kind, &obj, None);
        causes.extend(validate_owner_references(&obj));
        if !causes.is_empty() {
            return Err(validation_error(kind, &obj, causes));
        }
        self.admit_namespace(kind, namespace, meta::name(&obj))
            .await?;
        crate::admission::validate(self, kind, namespace, &obj, &limit_ranges, opts.dry_run)
            .await?;
        match applied_managed_fields {
            Some(mf) => meta::set(&mut obj, "managedFields", Some(mf)),
            None => {
                berth_api::managed::update(kind, None, &mut obj, &opts.field_manager, None, now)
            }
        }
        if opts.dry_run {
            return Ok(Written {
                object: obj,
                created: true,
                warnings,
            });
        }
        let allocated = self.allocate(kind, None, &mut obj).await?;
        let key = kind.key(namespace, meta::name(&obj));
        match self.store.create(&key, encode_for_store(&mut obj)).await {
            Ok(kv) => {
                set_resource_version(&mut obj, kv.mod_revision);
                Ok(Written {
                    object: obj,
                    created: true,
                    warnings,
                })
            }
            Err(e) => {
                self.release(&allocated).await;
                Err(store_error(kind, meta::name(&obj), e))
            }
        }
    }

    /// Metadata of a new object: uid, creation time, generation; client-set server fields
    /// dropped.
    fn prepare_new(&self, kind: &ResourceKind, obj: &mut Value, now: Timestamp) {
        let m = meta::metadata_mut(obj);
        for f in [
            "resourceVersion",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ] {
            m.remove(f);
        }
        m.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        m.insert(
            "creationTimestamp".into(),
            Value::String(meta::format_time(now)),
        );
        if tracks_generation(kind) {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        initial_status(kind, obj);
    }

    /// Updates an object with read-modify-write: `produce` gets the stored object and returns
    /// the wanted one (for PUT, the body; for PATCH, the patched object). A
    /// `resourceVersion` in the produced object is a precondition. Conflicts caused by
    /// concurrent writers are retried when the request had no precondition.
    pub async fn update(
        &self,
        kind: &'static ResourceKind,
        namespace: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        mut produce: impl FnMut(&Value) -> Result<Produced, ApiError>,
    ) -> Result<Written, ApiError> {
        let key = kind.key(namespace, name);
        for _ in 0..CONFLICT_RETRIES {
            let (current, old) = self.load(kind, &key, name).await?;
            let produced = produce(&old)?;
            let (mut new, managed_done) = match produced {
                Produced::Object(v) => (v, false),
                Produced::Applied(v) => (v, true),
            };
            let mut warnings = Vec::new();
            check_type_meta(kind, &mut new)?;
            check_namespace(kind, namespace, &mut new)?;
            let body_name = meta::name(&new);
            if body_name.is_empty() {
                meta::set(&mut new, "name", Some(Value::String(name.to_string())));
            } else if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            let precondition = meta::resource_version(&new).to_string();
            if !precondition.is_empty() && precondition != current.mod_revision.to_string() {
                return Err(ApiError::conflict(
                    kind.group,
                    kind.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
            check_unknown_fields(kind, &mut new, opts.field_validation, &mut warnings)?;
            let mut new = merge_part(kind, part, &old, new);
            preserve_server_metadata(&old, &mut new);
            berth_api::defaults::apply(kind, &mut new);
            if tracks_generation(kind) {
                let generation = meta::generation(&old).max(1);
                let bumped = if !same_spec(&old, &new) {
                    generation + 1
                } else {
                    generation
                };
                meta::set(&mut new, "generation", Some(json!(bumped)));
            }
            let update_rules = (part != Part::Internal).then_some(&old);
            let mut causes = berth_api::validation::validate(kind, &new, update_rules);
            causes.extend(validate_owner_references(&new));
            if !causes.is_empty() {
                return Err(validation_error(kind, &new, causes));
            }
            if unchanged(&old, &new) && !managed_done {
                return Ok(Written {
                    object: old,
                    created: false,
                    warnings,
                });
            }
            let now = self.clock.now();
            if !managed_done {
                let sub = (part == Part::Status).then_some("status");
                berth_api::managed::update(
                    kind,
                    Some(&old),
                    &mut new,
                    &opts.field_manager,
                    sub,
                    now,
                );
            }
            if unchanged_with_managed(&old, &new) {
                return Ok(Written {
                    object: old,
                    created: false,
                    warnings,
                });
            }
            if opts.dry_run {
                return Ok(Written {
                    object: new,
                    created: false,
                    warnings,
                });
            }
            // The last finalizer removed from an object being deleted: delete it now.
            let finalized = meta::is_deleting(&new)
                && meta::finalizers(&new).is_empty()
                && !namespace_pending(kind, &new)
                && (!meta::finalizers(&old).is_empty() || namespace_pending(kind, &old));
            if finalized {
                return match self.store.delete(&key, Some(current.mod_revision)).await {
                    Ok((_, rev)) => {
                        self.release_held(kind, &new).await;
                        set_resource_version(&mut new, rev);
                        Ok(Written {
                            object: new,
                            created: false,
                            warnings,
                        })
                    }
                    Err(StoreError::Conflict { .. }) if precondition.is_empty() => continue,
                    Err(e) => Err(store_error(kind, name, e)),
                };
            }
            let allocated = self.allocate(kind, Some(&old), &mut new).await?;
            match self
                .store
                .update(&key, current.mod_revision, encode_for_store(&mut new))
                .await
            {
                Ok(kv) => {
                    self.release_dropped(kind, &old, &new).await;
                    set_resource_version(&mut new, kv.mod_revision);
                    return Ok(Written {
                        object: new,
                        created: false,
                        warnings,
                    });
                }
                Err(StoreError::Conflict { .. }) if precondition.is_empty() => {
                    self.release(&allocated).await;
                    continue;
                }
                Err(e) => {
                    self.release(&allocated).await;
                    return Err(store_error(kind, name, e));
                }
            }
        }
        Err(ApiError::conflict(
            kind.group,
            kind.plural,
            name,
            "the object is being changed by many writers; please try again",
        ))
    }

    /// Deletes an object per Kubernetes' rules: preconditions, graceful deletion of pods
    /// bound to nodes, finalizers (deletion waits for them), propagation policy (foreground
    /// and orphan add their finalizers). Returns the object (deleted or now terminating).
    pub async fn delete(
        &self,
        kind: &'static ResourceKind,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let key = kind.key(namespace, name);
        for _ in 0..CONFLICT_RETRIES {
            let (current, mut obj) = self.load(kind, &key, name).await?;
            if let Some(uid) = &options.precondition_uid
                && uid != meta::uid(&obj)
            {
                return Err(ApiError::conflict(
                    kind.group,
                    kind.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta::uid(&obj)
                    ),
                ));
            }
            if let Some(rv) = &options.precondition_resource_version
                && *rv != current.mod_revision.to_string()
            {
                return Err(ApiError::conflict(
                    kind.group,
                    kind.plural,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        current.mod_revision
                    ),
                ));
            }
            let now = self.clock.now();
            let grace = graceful_period(kind, &obj, options.grace_period_seconds);
            let mut finalizers: Vec<String> = meta::finalizers(&obj)
                .iter()
                .map(|s| s.to_string())
                .collect();
            let add = match options.propagation_policy.as_deref() {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                _ => None,
            };
            if let Some(f) = add
                && !finalizers.iter().any(|x| x == f)
            {
                finalizers.push(f.to_string());
            }
            let ns_pending = namespace_pending(kind, &obj);
            let wait = !finalizers.is_empty() || grace.is_some_and(|g| g > 0) || ns_pending;
            if options.dry_run {
                return Ok(obj);
            }
            if wait {
                let already = meta::is_deleting(&obj);
                let m = meta::metadata_mut(&mut obj);
                if !already {
                    let when = match grace {
                        Some(g) if g > 0 => now
                            .checked_add(jiff::SignedDuration::from_secs(g))
                            .unwrap_or(now),
                        _ => now,
                    };
                    m.insert(
                        "deletionTimestamp".into(),
                        Value::String(meta::format_time(when)),
                    );
                    m.insert(
                        "deletionGracePeriodSeconds".into(),
                        json!(grace.unwrap_or(0)),
                    );
                } else if let Some(g) = grace {
                    // A shorter grace period may replace a longer one.
                    let old = m
                        .get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MAX);
                    if g < old {
                        let when = now
                            .checked_add(jiff::SignedDuration::from_secs(g))
                            .unwrap_or(now);
                        m.insert(
                            "deletionTimestamp".into(),
                            Value::String(meta::format_time(when)),
                        );
                        m.insert("deletionGracePeriodSeconds".into(), json!(g));
                    }
                }
                if !finalizers.is_empty() {
                    m.insert("finalizers".into(), json!(finalizers));
                }
                if kind.kind == "Namespace" && kind.group.is_empty() {
                    obj["status"] = json!({ "phase": "Terminating" });
                }
                match self
                    .store
                    .update(&key, current.mod_revision, encode_for_store(&mut obj))
                    .await
                {
                    Ok(kv) => {
                        set_resource_version(&mut obj, kv.mod_revision);
                        return Ok(obj);
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(store_error(kind, name, e)),
                }
            }
            match self.store.delete(&key, Some(current.mod_revision)).await {
                Ok((_, rev)) => {
                    self.release_held(kind, &obj).await;
                    set_resource_version(&mut obj, rev);
                    return Ok(obj);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(kind, name, e)),
            }
        }
        Err(ApiError::conflict(
            kind.group,
            kind.plural,
            name,
            "the object is being changed by many writers; please try again",
        ))
    }

    /// Allocates the ClusterIPs and NodePorts a Service needs, or the pod CIDR of a Node (on
    /// create, `old` is None). Returns what was allocated, to release if the write fails.
    async fn allocate(
        &self,
        kind: &ResourceKind,
        old: Option<&Value>,
        obj: &mut Value,
    ) -> Result<Allocated, ApiError> {
        let mut allocated = Allocated::default();
        if !kind.group.is_empty() {
            return Ok(allocated);
        }
        let result = match kind.kind {
            "Service" => self.allocate_service(old, obj, &mut allocated).await,
            "Node" => self.allocate_pod_cidr(old, obj, &mut allocated).await,
            _ => return Ok(allocated),
        };
        if let Err(e) = result {
            self.release(&allocated).await;
            return Err(e);
        }
        Ok(allocated)
    }

    /// A new Node gets a pod CIDR from the cluster CIDR (the one it asks for, if free); the
    /// CIDR of an existing Node is immutable.
    async fn allocate_pod_cidr(
        &self,
        old: Option<&Value>,
        node: &mut Value,
        allocated: &mut Allocated,
    ) -> Result<(), ApiError> {
        if let Some(old) = old {
            let held = alloc::node_pod_cidrs(old);
            if !held.is_empty() {
                node["spec"]["podCIDR"] = old["spec"]["podCIDR"].clone();
                node["spec"]["podCIDRs"] = old["spec"]["podCIDRs"].clone();
                return Ok(());
            }
        }
        let requested = node
            .pointer("/spec/podCIDR")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let name = meta::name(node).to_string();
        let cidr = self
            .alloc
            .allocate_pod_cidr(requested.as_deref(), &name)
            .await?;
        allocated.pod_cidrs.push(cidr);
        if !node["spec"].is_object() {
            node["spec"] = json!({});
        }
        node["spec"]["podCIDR"] = json!(cidr.to_string());
        node["spec"]["podCIDRs"] = json!([cidr.to_string()]);
        Ok(())
    }

    async fn allocate_service(
        &self,
        old: Option<&Value>,
        svc: &mut Value,
        allocated: &mut Allocated,
    ) -> Result<(), ApiError> {
        let name = meta::name(svc).to_string();
        let svc_type = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if svc_type == "ExternalName" {
            return Ok(());
        }
        let had_ips = old.map(alloc::service_ips).unwrap_or_default();
        let cluster_ip = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if cluster_ip != "None" {
            if had_ips.is_empty() {
                let requested = if cluster_ip.is_empty() {
                    None
                } else {
                    Some(cluster_ip.parse::<Ipv4Addr>().map_err(|_| {
                        ApiError::invalid(
                            "",
                            "Service",
                            meta::name(svc),
                            vec![StatusCause::invalid(
                                "spec.clusterIPs[0]",
                                &Value::String(cluster_ip.clone()),
                                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                            )],
                        )
                    })?)
                };
                let ip = self.alloc.allocate_ip(requested, &name).await?;
                allocated.ips.push(ip);
                svc["spec"]["clusterIP"] = json!(ip.to_string());
                svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
            } else if let Some(old) = old {
                // The address is immutable: keep it.
                svc["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
                svc["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
        } else {
            svc["spec"]["clusterIPs"] = json!(["None"]);
        }
        if svc_type == "NodePort" || svc_type == "LoadBalancer" {
            let held = old.map(alloc::service_node_ports).unwrap_or_default();
            let old_ports = old
                .and_then(|o| o.pointer("/spec/ports"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for (i, p) in ports.iter_mut().enumerate() {
                    let requested = p
                        .get("nodePort")
                        .and_then(Value::as_u64)
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|n| *n != 0);
                    match requested {
                        Some(n) if held.contains(&n) => {}
                        Some(n) => {
                            let got = self
                                .alloc
                                .allocate_port(Some(n), &format!("spec.ports[{i}].nodePort"), &name)
                                .await?;
                            allocated.ports.push(got);
                        }
                        None => {
                            // Keep the port the same service port had before.
                            let kept = old_ports
                                .iter()
                                .find(|op| {
                                    op.get("port") == p.get("port")
                                        && op.get("protocol") == p.get("protocol")
                                })
                                .and_then(|op| op.get("nodePort"))
                                .and_then(Value::as_u64)
                                .and_then(|n| u16::try_from(n).ok());
                            let got = match kept {
                                Some(n) => n,
                                None => {
                                    let n = self
                                        .alloc
                                        .allocate_port(
                                            None,
                                            &format!("spec.ports[{i}].nodePort"),
                                            &name,
                                        )
                                        .await?;
                                    allocated.ports.push(n);
                                    n
                                }
                            };
                            p["nodePort"] = json!(got);
                        }
                    }
                }
            }
        } else if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
            }
        }
        Ok(())
    }

    async fn release(&self, allocated: &Allocated) {
        for ip in &allocated.ips {
            if let Err(e) = self.alloc.release_ip(*ip).await {
                tracing::warn!(%ip, error = %e, "could not release a service IP");
            }
        }
        for p in &allocated.ports {
            if let Err(e) = self.alloc.release_port(*p).await {
                tracing::warn!(port = p, error = %e, "could not release a node port");
            }
        }
        for c in &allocated.pod_cidrs {
            if let Err(e) = self.alloc.release_pod_cidr(*c).await {
                tracing::warn!(cidr = %c, error = %e, "could not release a node pod CIDR");
            }
        }
    }

    /// Releases what a deleted Service or Node held.
    async fn release_held(&self, kind: &ResourceKind, obj: &Value) {
        if !kind.group.is_empty() {
            return;
        }
        let held = match kind.kind {
            "Service" => Allocated {
                ips: alloc::service_ips(obj)
                    .into_iter()
                    .map(|(ip, _)| ip)
                    .collect(),
                ports: alloc::service_node_ports(obj),
                pod_cidrs: Vec::new(),
            },
            "Node" => Allocated {
                pod_cidrs: alloc::node_pod_cidrs(obj),
                ..Allocated::default()
            },
            _ => return,
        };
        self.release(&held).await;
    }

    /// Releases NodePorts an updated Service no longer holds.
    async fn release_dropped(&self, kind: &ResourceKind, old: &Value, new: &Value) {
        if kind.group.is_empty() && kind.kind == "Service" {
            let now = alloc::service_node_ports(new);
            let dropped = Allocated {
                ports: alloc::service_node_ports(old)
                    .into_iter()
                    .filter(|p| !now.contains(p))
                    .collect(),
                ..Allocated::default()
            };
            self.release(&dropped).await;
        }
    }
}

/// What a write produces from the stored object.
#[derive(Debug)]
pub enum Produced {
    /// The wanted object; managed fields are recorded as an Update by the writer.
    Object(Value),
    /// The result of server-side apply; managed fields are already set.
    Applied(Value),
}

#[derive(Debug, Default)]
struct Allocated {
    ips: Vec<Ipv4Addr>,
    ports: Vec<u16>,
    pod_cidrs: Vec<alloc::Cidr>,
}

/// Delete options from the body or the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy`: Orphan, Background or Foreground.
    pub propagation_policy: Option<String>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads options from a DeleteOptions body (may be empty) and query parameters (which
    /// win when both are given).
    pub fn parse(body: &[u8], query: &crate::query::Query) -> Result<Self, ApiError> {
        let mut o = DeleteOptions::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let v: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("couldn't decode DeleteOptions: {e}"))
            })?;
            o.grace_period_seconds = v.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.propagation_policy = v
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string);
            // orphanDependents is the deprecated spelling of propagation.
            if o.propagation_policy.is_none() {
                match v.get("orphanDependents").and_then(Value::as_bool) {
                    Some(true) => o.propagation_policy = Some("Orphan".into()),
                    Some(false) => o.propagation_policy = Some("Background".into()),
                    None => {}
                }
            }
            o.precondition_uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.precondition_resource_version = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.dry_run = v
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All"));
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            o.grace_period_seconds =
                Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}"))
                })?);
        }
        if let Some(p) = query.get("propagationPolicy") {
            o.propagation_policy = Some(p.to_string());
        }
        if query.dry_run()? {
            o.dry_run = true;
        }
        if let Some(p) = &o.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy must be one of Orphan, Background or Foreground, got {p:?}"
            )));
        }
        if o.grace_period_seconds.is_some_and(|g| g < 0) {
            o.grace_period_seconds = Some(0);
        }
        Ok(o)
    }
}

/// True for a namespace that still waits for its content to be removed (`spec.finalizers`).
fn namespace_pending(kind: &ResourceKind, obj: &Value) -> bool {
    kind.kind == "Namespace"
        && kind.group.is_empty()
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

/// The grace period of a delete: only pods bound to a node and still running are deleted
/// gracefully (the node agent stops them, then removes the object).
fn graceful_period(kind: &ResourceKind, obj: &Value, asked: Option<i64>) -> Option<i64> {
    if !(kind.group.is_empty() && kind.kind == "Pod") {
        return None;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return Some(0);
    }
    let default = obj
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    Some(asked.unwrap_or(default).max(0))
}

/// Sets `target.status` to `source.status`, or removes it when `source` has none.
fn copy_status(target: &mut Value, source: &Value) {
    if let Some(m) = target.as_object_mut() {
        match source.get("status") {
            Some(s) => {
                m.insert("status".into(), s.clone());
            }
            None => {
                m.remove("status");
            }
        }
    }
}

/// Combines the stored object with a written one per the part written.
fn merge_part(kind: &ResourceKind, part: Part, old: &Value, new: Value) -> Value {
    if !kind.has_status() {
        return new;
    }
    match part {
        Part::Internal => new,
        // Writes to the main resource keep the stored status.
        Part::Main => {
            let mut new = new;
            copy_status(&mut new, old);
            new
        }
        // Status writers change the status only: the stored object but its status, and the
        // written status.
        Part::Status => {
            let (Some(stored), Value::Object(mut written)) = (old.as_object(), new) else {
                return old.clone();
            };
            let mut merged: serde_json::Map<String, Value> = stored
                .iter()
                .filter(|(k, _)| k.as_str() != "status")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if let Some(status) = written.remove("status") {
                merged.insert("status".into(), status);
            }
            Value::Object(merged)
        }
    }
}

/// Keeps metadata the server owns from the stored object.
fn preserve_server_metadata(old: &Value, new: &mut Value) {
    let om = old.get("metadata").unwrap_or(&Value::Null);
    let m = meta::metadata_mut(new);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match om.get(f) {
            Some(v) => {
                m.insert(f.to_string(), v.clone());
            }
            None => {
                m.remove(f);
            }
        }
    }
    if !m.contains_key("managedFields")
        && let Some(mf) = om.get("managedFields")
    {
        m.insert("managedFields".into(), mf.clone());
    }
    m.remove("selfLink");
}

/// True if two objects are equal but for the metadata fields `meta_skip`, with `eq` comparing
/// the metadata fields that are not skipped.
fn same_but_metadata(
    old: &Value,
    new: &Value,
    meta_skip: &[&str],
    eq: &dyn Fn(&str, &Value, &Value) -> bool,
) -> bool {
    same_fields(old, new, &[], &|k, a, b| {
        if k == "metadata" {
            same_fields(a, b, meta_skip, eq)
        } else {
            a == b
        }
    })
}

/// True if nothing but server bookkeeping differs (a no-op write is not stored).
fn unchanged(old: &Value, new: &Value) -> bool {
    same_but_metadata(
        old,
        new,
        &["resourceVersion", "managedFields"],
        &|_, a, b| a == b,
    )
}

/// True if nothing differs but the managed fields' timestamps.
fn unchanged_with_managed(old: &Value, new: &Value) -> bool {
    same_but_metadata(old, new, &["resourceVersion"], &|k, a, b| {
        if k != "managedFields" {
            return a == b;
        }
        match (a.as_array(), b.as_array()) {
            (Some(a), Some(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| same_fields(x, y, &["time"], &|_, p, q| p == q))
            }
            _ => a == b,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_have_five_random_characters() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
        assert!(n[4..].bytes().all(|b| NAME_CHARS.contains(&b)));
    }

    #[test]
    fn owner_references_are_checked() {
        let o = json!({"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"X","name":"a"}]}});
        let causes = validate_owner_references(&o);
        assert_eq!(causes[0].field, "metadata.ownerReferences[0].uid");
    }

    fn pod(rv: &str, time: &str, image: &str, phase: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "resourceVersion": rv, "labels": {"a": "1"},
                "managedFields": [{"manager": "m", "operation": "Update", "time": time}]},
            "spec": {"containers": [{"name": "c", "image": image}]},
            "status": {"phase": phase},
        })
    }

    #[test]
    fn comparisons_pass_over_only_the_bookkeeping_fields() {
        let base = pod("1", "t1", "i:1", "Pending");
        // Another resourceVersion and managed-fields time: unchanged either way.
        let touched = pod("2", "t2", "i:1", "Pending");
        assert!(unchanged(&base, &touched));
        assert!(unchanged_with_managed(&base, &touched));
        // Another manager: unchanged for the content, changed with the managed fields.
        let mut managed = base.clone();
        managed["metadata"]["managedFields"][0]["manager"] = json!("other");
        assert!(unchanged(&base, &managed));
        assert!(!unchanged_with_managed(&base, &managed));
        // A label more, or one less, is a change.
        let mut labelled = base.clone();
        labelled["metadata"]["labels"]["b"] = json!("2");
        assert!(!unchanged(&base, &labelled) && !unchanged(&labelled, &base));
        let mut unlabelled = base.clone();
        meta::metadata_mut(&mut unlabelled).remove("labels");
        assert!(!unchanged(&base, &unlabelled) && !unchanged(&unlabelled, &base));
        // The spec decides the generation; status and metadata do not.
        assert!(same_spec(&base, &pod("3", "t3", "i:1", "Running")));
        assert!(same_spec(&base, &labelled));
        assert!(!same_spec(&base, &pod("1", "t1", "i:2", "Pending")));
        assert!(!unchanged(&base, &pod("1", "t1", "i:1", "Running")));
        let mut extra = base.clone();
        extra["spec"]["nodeName"] = json!("n");
        assert!(!same_spec(&base, &extra) && !same_spec(&extra, &base));
    }

    #[test]
    fn a_status_write_keeps_the_stored_object_but_its_status() {
        let kind = kinds::by_kind("v1", "Pod").unwrap();
        let stored = pod("1", "t1", "i:1", "Pending");
        let written = pod("1", "t1", "i:2", "Running");
        let merged = merge_part(kind, Part::Status, &stored, written);
        assert_eq!(merged["spec"], stored["spec"]);
        assert_eq!(merged["status"]["phase"], "Running");
        let mut no_status = stored.clone();
        no_status.as_object_mut().unwrap().remove("status");
        let merged = merge_part(kind, Part::Status, &stored, no_status.clone());
        assert_eq!(merged, no_status);
    }
}
