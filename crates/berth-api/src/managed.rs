//! Server-side apply and managed fields (`metadata.managedFields`), with the semantics of
//! Kubernetes 1.33 (the API server's field manager over structured-merge-diff).
//!
//! This module owns the ownership bookkeeping: which manager owns which fields, conflicts, the
//! merge of applied configurations and the removal of fields an applier dropped. It must not do
//! I/O, defaulting or validation: the API server defaults and validates the objects it returns.
//!
//! - [`apply`]: a server-side apply (`PATCH` with `application/apply-patch+yaml`).
//! - [`update`]: the bookkeeping of every other write (create, update, patch).
//! - [`fieldpath`]: the `FieldsV1` sets; `typed`: the schema-aware walks.

pub mod fieldpath;
mod typed;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use crate::kinds::ResourceKind;
use crate::meta;
use crate::schema::{self, Node};
use crate::status::{ApiError, Reason, StatusCause};
use fieldpath::{FieldSet, FieldsError, Path, PathElement};
use typed::TypedError;

/// The annotation `kubectl apply` (client-side) keeps its last configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The manager that owns an object's fields when it is first applied to without managed fields.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The manager that old `Update` entries are merged into beyond [`MAX_UPDATE_MANAGERS`].
pub const ANCIENT_CHANGES: &str = "ancient-changes";
/// How many `Update` entries an object keeps before the oldest are merged.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The operation of a managed fields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedEntry {
    /// The field manager.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The API version the fields are expressed in.
    pub api_version: String,
    /// The subresource written (`""` for the main resource).
    pub subresource: String,
    /// The time of the last change, as written (`RFC 3339`).
    pub time: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn is(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.api_version == api_version
            && self.subresource == subresource
    }

    /// The manager as Kubernetes names it in conflict messages.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// The identity Kubernetes sorts and keys entries by.
    fn identity(&self) -> String {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m).to_string()
    }
}

/// Errors decoding `metadata.managedFields`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManagedFieldsError {
    /// `managedFields` is not a list.
    #[error("metadata.managedFields must be a list")]
    NotAList,
    /// An entry is malformed.
    #[error("metadata.managedFields[{index}]: {reason}")]
    Entry {
        /// The entry's position.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// An entry's `fieldsV1` does not decode.
    #[error("metadata.managedFields[{index}].fieldsV1: {source}")]
    Fields {
        /// The entry's position.
        index: usize,
        /// The decoding error.
        #[source]
        source: FieldsError,
    },
}

/// Decodes a `managedFields` list. Entries with the same identity are merged.
pub fn decode(list: &Value) -> Result<Vec<ManagedEntry>, ManagedFieldsError> {
    let Value::Array(items) = list else {
        return Err(ManagedFieldsError::NotAList);
    };
    let mut out: Vec<ManagedEntry> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let bad = |reason: &str| ManagedFieldsError::Entry {
            index,
            reason: reason.to_string(),
        };
        let Value::Object(entry) = item else {
            return Err(bad("not an object"));
        };
        let text = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let operation = match entry.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            _ => return Err(bad("operation must be Apply or Update")),
        };
        match entry.get("fieldsType").and_then(Value::as_str) {
            Some("FieldsV1") | None => {}
            Some(_) => return Err(bad("fieldsType must be FieldsV1")),
        }
        let fields = match entry.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => FieldSet::from_fields_v1(v)
                .map_err(|source| ManagedFieldsError::Fields { index, source })?,
        };
        let decoded = ManagedEntry {
            manager: text("manager"),
            operation,
            api_version: text("apiVersion"),
            subresource: text("subresource"),
            time: entry
                .get("time")
                .and_then(Value::as_str)
                .map(str::to_string),
            fields,
        };
        if let Some(existing) = out.iter_mut().find(|e| {
            e.is(
                &decoded.manager,
                decoded.operation,
                &decoded.api_version,
                &decoded.subresource,
            )
        }) {
            existing.fields = existing.fields.union(&decoded.fields);
        } else {
            out.push(decoded);
        }
    }
    Ok(out)
}

/// Encodes entries as `managedFields`, dropping empty ones, in Kubernetes' order (operation,
/// time, manager, apiVersion, subresource).
pub fn encode(entries: &[ManagedEntry]) -> Value {
    let mut sorted: Vec<&ManagedEntry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    sorted.sort_by(|a, b| {
        let at = a.time.as_deref().and_then(meta::parse_time);
        let bt = b.time.as_deref().and_then(meta::parse_time);
        a.operation
            .cmp(&b.operation)
            .then_with(|| at.cmp(&bt))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(e.manager));
                m.insert("operation".into(), json!(e.operation.as_str()));
                m.insert("apiVersion".into(), json!(e.api_version));
                if let Some(t) = &e.time {
                    m.insert("time".into(), json!(t));
                }
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                if !e.subresource.is_empty() {
                    m.insert("subresource".into(), json!(e.subresource));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// The metadata fields no manager ever owns (Kubernetes' `stripMeta`, plus the deletion
/// timestamp the server sets).
fn strip_set() -> &'static FieldSet {
    static STRIP: std::sync::LazyLock<FieldSet> = std::sync::LazyLock::new(|| {
        let mut s = FieldSet::new();
        s.insert(&Path::fields(&["apiVersion"]).0);
        s.insert(&Path::fields(&["kind"]).0);
        s.insert(&Path::fields(&["metadata"]).0);
        for f in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
            "deletionTimestamp",
        ] {
            s.insert(&Path::fields(&["metadata", f]).0);
        }
        s
    });
    &STRIP
}

/// The fields a write to `subresource` resets (the strategy's reset fields): `status` for the
/// main resource of kinds with a status subresource, `spec` for status writes. Also
/// `metadata.managedFields`, the record itself, which no manager owns.
fn reset_fields(kind: &ResourceKind, subresource: Option<&str>) -> FieldSet {
    let mut s = FieldSet::new();
    s.insert(&Path::fields(&["metadata", "managedFields"]).0);
    match subresource {
        None if kind.has_status() => s.insert(&Path::fields(&["status"]).0),
        Some("status") => s.insert(&Path::fields(&["spec"]).0),
        _ => {}
    }
    s
}

fn entry_mut<'a>(
    entries: &'a mut Vec<ManagedEntry>,
    manager: &str,
    operation: Operation,
    api_version: &str,
    subresource: &str,
) -> &'a mut ManagedEntry {
    let pos = entries
        .iter()
        .position(|e| e.is(manager, operation, api_version, subresource));
    let pos = match pos {
        Some(p) => p,
        None => {
            entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation,
                api_version: api_version.to_string(),
                subresource: subresource.to_string(),
                time: None,
                fields: FieldSet::new(),
            });
            entries.len() - 1
        }
    };
    &mut entries[pos]
}

/// An object without its `metadata.managedFields`.
fn without_managed_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    out
}

/// Fields Kubernetes' zero-valued objects always carry (non-pointer structs, lists without
/// `omitempty`), by struct definition suffix: a create does not record them as added themselves.
const ALWAYS_PRESENT: &[(&str, &str)] = &[
    (".DeploymentSpec", "strategy"),
    (".DeploymentSpec", "template"),
    (".ReplicaSetSpec", "template"),
    (".StatefulSetSpec", "template"),
    (".StatefulSetSpec", "updateStrategy"),
    (".DaemonSetSpec", "template"),
    (".DaemonSetSpec", "updateStrategy"),
    (".JobSpec", "template"),
    (".CronJobSpec", "jobTemplate"),
    (".JobTemplateSpec", "metadata"),
    (".JobTemplateSpec", "spec"),
    (".PodTemplateSpec", "metadata"),
    (".PodTemplateSpec", "spec"),
    (".PodTemplate", "template"),
    (".ReplicationControllerSpec", "template"),
    (".PodSpec", "containers"),
];

/// What a created object is compared with: the parts of Kubernetes' zero-valued object of the
/// kind that `new` fills (top-level objects, non-pointer structs, non-omitempty lists), so that
/// for example `spec` itself is not recorded as added.
fn creation_base(node: &Node, new: &Value) -> Value {
    creation_skeleton(node, new, true)
}

fn creation_skeleton(node: &Node, new: &Value, top: bool) -> Value {
    let mut out = Map::new();
    if let Value::Object(fields) = new {
        let name = match node {
            Node::Struct(name) => name.as_str(),
            _ => "",
        };
        for (key, value) in fields {
            let always = (top && value.is_object())
                || ALWAYS_PRESENT
                    .iter()
                    .any(|(suffix, field)| name.ends_with(suffix) && key == field);
            if !always {
                continue;
            }
            let child = match node {
                Node::Struct(name) => schema::field(name, key).unwrap_or(Node::Untyped),
                _ => Node::Untyped,
            };
            match value {
                Value::Object(_) => {
                    out.insert(key.clone(), creation_skeleton(&child, value, false));
                }
                Value::Array(_) => {
                    out.insert(key.clone(), Value::Null);
                }
                _ => {}
            }
        }
    }
    Value::Object(out)
}

/// Records a non-apply write from `old` to `new` as `manager`'s (operation Update): it gains
/// what changed, other managers lose what changed or was removed.
#[allow(clippy::too_many_arguments)]
fn record_update(
    node: &Node,
    old: &Value,
    new: &Value,
    entries: &mut Vec<ManagedEntry>,
    manager: &str,
    api_version: &str,
    subresource: &str,
    ignored: &FieldSet,
    time: &str,
) -> Result<(), TypedError> {
    let cmp = typed::compare_ignoring(node, Some(old), Some(new), ignored)?;
    let mut changed = cmp.modified;
    changed.absorb(&cmp.added);
    // Every manager loses what changed and what is gone (in place: a status write must not
    // copy the spec's field sets of every other manager).
    for e in entries.iter_mut() {
        e.fields.subtract(&changed);
        e.fields.subtract(&cmp.removed);
    }
    let mut owned = changed;
    owned.subtract(&cmp.removed);
    owned.subtract(strip_set());
    if !owned.is_empty() {
        let e = entry_mut(
            entries,
            manager,
            Operation::Update,
            api_version,
            subresource,
        );
        e.fields.absorb(&owned);
        e.fields.subtract(strip_set());
        e.time = Some(time.to_string());
    }
    entries.retain(|e| !e.fields.is_empty());
    cap_update_managers(entries);
    Ok(())
}

/// Merges the oldest `Update` entries into `ancient-changes` entries while there are more than
/// [`MAX_UPDATE_MANAGERS`].
fn cap_update_managers(entries: &mut Vec<ManagedEntry>) {
    loop {
        let mut updates: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].operation == Operation::Update)
            .collect();
        if updates.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        updates.sort_by(|&a, &b| {
            let at = entries[a].time.as_deref().and_then(meta::parse_time);
            let bt = entries[b].time.as_deref().and_then(meta::parse_time);
            at.cmp(&bt)
                .then_with(|| entries[a].identity().cmp(&entries[b].identity()))
        });
        let oldest = entries[updates[0]].clone();
        let bucket = entries
            .iter()
            .position(|e| e.is(ANCIENT_CHANGES, Operation::Update, &oldest.api_version, ""));
        match bucket {
            Some(b) if b != updates[0] => {
                entries[b].fields = entries[b].fields.union(&oldest.fields);
                if entries[b].time < oldest.time {
                    entries[b].time = oldest.time.clone();
                }
                entries.remove(updates[0]);
            }
            _ => {
                // Merge the two oldest into a bucket.
                let second = entries[updates[1]].clone();
                let merged = ManagedEntry {
                    manager: ANCIENT_CHANGES.to_string(),
                    operation: Operation::Update,
                    api_version: second.api_version.clone(),
                    subresource: String::new(),
                    time: second.time.clone(),
                    fields: oldest.fields.union(&second.fields),
                };
                let (a, b) = (updates[0].max(updates[1]), updates[0].min(updates[1]));
                entries.remove(a);
                entries.remove(b);
                entries.push(merged);
            }
        }
    }
}

fn managed_list(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/managedFields")
        .filter(|v| !v.is_null())
}

fn decode_or_empty(obj: Option<&Value>) -> Vec<ManagedEntry> {
    obj.and_then(managed_list)
        .and_then(|l| decode(l).ok())
        .unwrap_or_default()
}

fn manager_name(manager: &str) -> &str {
    if manager.is_empty() {
        "unknown"
    } else {
        manager
    }
}

/// Records, for a non-apply write (create, update, patch; operation Update), the fields whose
/// values changed from `old` (None for create: every field set) to `new` as owned by `manager`,
/// taking them from other managers; updates `new`'s managedFields. `subresource` is e.g.
/// `Some("status")` for status writes (recorded in the entry as Kubernetes does).
///
/// As in Kubernetes, managedFields sent in `new` replace the live ones when they decode (an
/// empty list resets them), except on subresources; if the objects cannot be walked with the
/// schema, `new` is left without managedFields.
pub fn update(
    kind: &ResourceKind,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: jiff::Timestamp,
) {
    if !new.is_object() {
        return;
    }
    let mut entries = if subresource.is_some() {
        decode_or_empty(old)
    } else {
        match managed_list(new) {
            Some(Value::Array(list)) if list.is_empty() => Vec::new(),
            Some(Value::Array(list))
                if list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty) =>
            {
                Vec::new()
            }
            Some(list) => match decode(list) {
                Ok(d) if !d.is_empty() => d,
                _ => decode_or_empty(old),
            },
            None => decode_or_empty(old),
        }
    };
    let node = schema::root(kind);
    // The objects are walked as they are: `reset_fields` keeps their managedFields out.
    let base;
    let old = match old {
        Some(o) => o,
        None => {
            base = creation_base(&node, new);
            &base
        }
    };
    let recorded = record_update(
        &node,
        old,
        new,
        &mut entries,
        manager_name(manager),
        &kind.api_version(),
        subresource.unwrap_or(""),
        &reset_fields(kind, subresource),
        &meta::format_time(now),
    );
    let encoded = match recorded {
        Ok(()) => Some(encode(&entries)),
        Err(_) => None,
    };
    meta::set(
        new,
        "managedFields",
        encoded.filter(|v| v.as_array().is_some_and(|a| !a.is_empty())),
    );
}

/// A field another manager owns with a different value than the one applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Conflict {
    owner: ManagedEntry,
    path: Path,
}

enum ApplyFailure {
    Conflicts(Vec<Conflict>),
    Typed(TypedError),
}

impl From<TypedError> for ApplyFailure {
    fn from(e: TypedError) -> Self {
        ApplyFailure::Typed(e)
    }
}

/// The 409 Kubernetes returns for apply conflicts.
fn conflict_error(conflicts: &[Conflict]) -> ApiError {
    let causes: Vec<StatusCause> = conflicts
        .iter()
        .map(|c| {
            StatusCause::new(
                "FieldManagerConflict",
                c.path.to_string(),
                format!("conflict with {}", c.owner.describe()),
            )
        })
        .collect();
    let message = match conflicts {
        [one] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.owner.describe(),
            one.path
        ),
        _ => {
            let mut lines = Vec::new();
            let mut current: Option<String> = None;
            for c in conflicts {
                let id = c.owner.identity();
                if current.as_deref() != Some(id.as_str()) {
                    lines.push(format!("conflicts with {}:", c.owner.describe()));
                    current = Some(id);
                }
                lines.push(format!("- {}", c.path));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    let mut e = ApiError::new(409, Reason::Conflict, message);
    e.causes = causes;
    e
}

/// The core of apply over objects without managedFields.
#[allow(clippy::too_many_arguments)]
fn apply_fields(
    node: &Node,
    live: &Value,
    config: &Value,
    entries: &mut Vec<ManagedEntry>,
    manager: &str,
    api_version: &str,
    force: bool,
    ignored: &FieldSet,
    time: &str,
) -> Result<Value, ApplyFailure> {
    let mut merged = typed::merge(node, live, config)?;
    let config_set = typed::to_field_set(node, config)?.recursive_difference(ignored);
    let applier = entry_mut(entries, manager, Operation::Apply, api_version, "");
    let last = std::mem::replace(&mut applier.fields, config_set);
    if !last.is_empty() {
        let keep = entries
            .iter()
            .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
        typed::prune(node, &mut merged, &last, Some(&keep));
    }
    let cmp = typed::compare_ignoring(node, Some(live), Some(&merged), ignored)?;
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for e in entries.iter() {
        if e.is(manager, Operation::Apply, api_version, "") {
            continue;
        }
        for path in e.fields.intersection(&changed).paths() {
            conflicts.push(Conflict {
                owner: e.clone(),
                path,
            });
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by_key(|c| c.owner.identity());
        return Err(ApplyFailure::Conflicts(conflicts));
    }
    let strip = strip_set();
    for e in entries.iter_mut() {
        if e.is(manager, Operation::Apply, api_version, "") {
            e.fields.subtract(&cmp.removed);
            e.fields.subtract(strip);
            if merged != *live || e.time.is_none() {
                e.time = Some(time.to_string());
            }
        } else {
            e.fields.subtract(&changed);
            e.fields.subtract(&cmp.removed);
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    Ok(merged)
}

#[allow(clippy::result_large_err)] // the API server's error type
fn check_applied(kind: &ResourceKind, applied: &Value) -> Result<(), ApiError> {
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let applied_kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || applied_kind.is_empty() {
        return Err(ApiError::bad_request(
            "apiVersion and kind must be set in the applied configuration",
        ));
    }
    if api_version != kind.api_version() || applied_kind != kind.kind {
        return Err(ApiError::bad_request(format!(
            "the applied configuration is {api_version}, Kind={applied_kind}; this resource is {}, Kind={}",
            kind.api_version(),
            kind.kind
        )));
    }
    if meta::name(applied).is_empty() {
        return Err(ApiError::bad_request(
            "metadata.name must be set in the applied configuration",
        ));
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request(
            "metadata.managedFields must be nil in an applied configuration",
        ));
    }
    Ok(())
}

/// The fields of the client-side apply configuration kept in `obj`'s annotation.
fn last_applied_fields(node: &Node, obj: &Value) -> Option<FieldSet> {
    let text = meta::annotation(obj, LAST_APPLIED_ANNOTATION)?;
    let parsed: Value = serde_json::from_str(text).ok()?;
    typed::to_field_set(node, &parsed).ok()
}

/// Server-side apply (PATCH with application/apply-patch+yaml). `applied` is the configuration
/// as sent (already parsed; it must have apiVersion, kind, metadata.name). `live` is None when
/// the object does not exist yet (then the result is what gets created). Returns the new object
/// with updated `metadata.managedFields`.
///
/// Conflicts are a 409 listing every conflicting field; `force` takes the fields over instead.
/// As in Kubernetes, the manager `kubectl` may take over, without `force`, fields that
/// `kubectl apply` (client-side) last applied, and keeps the client-side annotation in step.
#[allow(clippy::result_large_err)] // the API server's error type
pub fn apply(
    kind: &ResourceKind,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: jiff::Timestamp,
) -> Result<Value, ApiError> {
    check_applied(kind, applied)?;
    let manager = manager_name(manager);
    let node = schema::root(kind);
    let api_version = kind.api_version();
    let time = meta::format_time(now);
    let ignored = reset_fields(kind, None);
    let live_plain = live
        .map(without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let mut entries = decode_or_empty(live);
    if live.is_some() && entries.is_empty() {
        record_update(
            &node,
            &creation_base(&node, &live_plain),
            &live_plain,
            &mut entries,
            BEFORE_FIRST_APPLY,
            &api_version,
            "",
            &ignored,
            &time,
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let attempt = |force: bool| {
        let mut trial = entries.clone();
        apply_fields(
            &node,
            &live_plain,
            applied,
            &mut trial,
            manager,
            &api_version,
            force,
            &ignored,
            &time,
        )
        .map(|obj| (obj, trial))
    };
    let (mut result, entries) = match attempt(force) {
        Ok(done) => done,
        Err(ApplyFailure::Typed(e)) => return Err(ApiError::bad_request(e.to_string())),
        Err(ApplyFailure::Conflicts(conflicts)) => {
            let allowed = (manager == "kubectl")
                .then(|| live.and_then(|l| last_applied_fields(&node, l)))
                .flatten();
            let Some(allowed) = allowed else {
                return Err(conflict_error(&conflicts));
            };
            let remaining: Vec<Conflict> = conflicts
                .into_iter()
                .filter(|c| !allowed.has(&c.path.0))
                .collect();
            if !remaining.is_empty() {
                return Err(conflict_error(&remaining));
            }
            match attempt(true) {
                Ok(done) => done,
                Err(ApplyFailure::Typed(e)) => return Err(ApiError::bad_request(e.to_string())),
                Err(ApplyFailure::Conflicts(c)) => return Err(conflict_error(&c)),
            }
        }
    };
    if manager == "kubectl" && meta::annotation(&result, LAST_APPLIED_ANNOTATION).is_some() {
        let mut config = applied.clone();
        if let Some(annotations) = config
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove(LAST_APPLIED_ANNOTATION);
        }
        if let Some(annotations) = result
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.insert(
                LAST_APPLIED_ANNOTATION.to_string(),
                json!(config.to_string()),
            );
        }
    }
    let encoded = encode(&entries);
    let encoded = encoded
        .as_array()
        .is_some_and(|a| !a.is_empty())
        .then_some(encoded);
    meta::set(&mut result, "managedFields", encoded);
    Ok(result)
}

/// The path of nested struct fields `names` (for callers building [`FieldSet`]s).
pub fn field_path(names: &[&str]) -> Vec<PathElement> {
    Path::fields(names).0
}
