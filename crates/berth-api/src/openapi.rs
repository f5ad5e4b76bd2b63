//! The OpenAPI v3 documents served on `/openapi/v3` (the index) and
//! `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}` (one per group-version), as
//! `kubectl apply` (field validation discovery) and `kubectl explain` read them.
//!
//! Paths and operations are generated from the kind registry ([`crate::kinds::all`]) the way
//! kube-apiserver names them (operation ids, `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind`, query parameters); component schemas come from
//! [`crate::schema::definitions`], keeping only the definitions each document references.
//! Documents are built once, serialized and cached with a content hash. This module does not do
//! HTTP and does not own the schemas.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use crate::discovery;
use crate::kinds::{self, ResourceKind, Subresource};
use crate::schema::{self, REF_PREFIX};

/// The Kubernetes version written in `info.version`.
const KUBERNETES_VERSION: &str = "v1.33.0";

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// Subresources served as `connect` operations (streams, not objects).
const CONNECT_SUBRESOURCES: &[&str] = &["attach", "exec", "portforward", "proxy"];

/// Every document by path (`api/v1`, `apis/apps/v1`): serialized bytes and content hash.
static DOCUMENTS: LazyLock<BTreeMap<String, (Vec<u8>, String)>> = LazyLock::new(|| {
    let mut out = BTreeMap::new();
    for (group, versions) in discovery::groups() {
        for version in versions {
            let doc = document(kinds::all(), group, version);
            // Serializing a `Value` cannot fail; an empty body would only make kubectl refetch.
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = content_hash(&bytes);
            out.insert(gv_path(group, version), (bytes, hash));
        }
    }
    out
});

/// The document path of a group-version, without the `/openapi/v3/` prefix: `api/v1` or
/// `apis/apps/v1`.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: every group-version document with its `serverRelativeURL` carrying the
/// content hash (clients cache by URL).
pub fn v3_index() -> Value {
    let paths: Map<String, Value> = DOCUMENTS
        .iter()
        .map(|(path, (_, hash))| {
            (
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            )
        })
        .collect();
    json!({ "paths": paths })
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}` (`path` without the
/// `/openapi/v3/` prefix, without query): the serialized JSON document and its hash (as in the
/// index). `None` if the group-version is not served.
pub fn v3_document(path: &str) -> Option<&'static (Vec<u8>, String)> {
    DOCUMENTS.get(path.trim_matches('/'))
}

/// A stable content hash: 128 bits of two FNV-1a passes, uppercase hex.
fn content_hash(bytes: &[u8]) -> String {
    let a = discovery::fnv1a64(bytes);
    let mut salted = Vec::with_capacity(bytes.len() + 1);
    salted.push(0x5a);
    salted.extend_from_slice(bytes);
    let b = discovery::fnv1a64(&salted);
    format!("{a:016X}{b:016X}")
}

/// `apps` -> `Apps`, `rbac.authorization.k8s.io` -> `RbacAuthorization`, `""` -> `Core`, as in
/// kube-apiserver operation ids.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed.split(['.', '-']).map(capitalize).collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The tag of a group-version: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    let lower: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

/// The definition name serving `(group, version, kind)`, found through
/// `x-kubernetes-group-version-kind`.
fn definition_for(group: &str, version: &str, kind: &str) -> Option<String> {
    let want = gvk(group, version, kind);
    schema::definitions().iter().find_map(|(name, def)| {
        def.get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|g| gvk_eq(g, &want)))
            .then(|| name.clone())
    })
}

fn gvk_eq(a: &Value, b: &Value) -> bool {
    ["group", "version", "kind"]
        .iter()
        .all(|f| a.get(f).and_then(Value::as_str) == b.get(f).and_then(Value::as_str))
}

/// The list definition of a kind: `io.k8s.api.apps.v1.DeploymentList`.
fn list_definition(k: &ResourceKind) -> String {
    definition_for(k.group, k.version, &k.list_kind()).unwrap_or_else(|| {
        match k.schema_name.rsplit_once('.') {
            Some((prefix, _)) => format!("{prefix}.{}", k.list_kind()),
            None => k.list_kind(),
        }
    })
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": schema,
    })
}

fn string_schema() -> Value {
    json!({"type": "string", "uniqueItems": true})
}

fn bool_schema() -> Value {
    json!({"type": "boolean", "uniqueItems": true})
}

fn int_schema() -> Value {
    json!({"type": "integer", "uniqueItems": true})
}

fn param(name: &str) -> Value {
    match name {
        "pretty" => query(
            name,
            string_schema(),
            "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
        ),
        "dryRun" => query(
            name,
            string_schema(),
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        "fieldManager" => query(
            name,
            string_schema(),
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        ),
        "fieldValidation" => query(
            name,
            string_schema(),
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
        ),
        "force" => query(
            name,
            bool_schema(),
            "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        ),
        "allowWatchBookmarks" => query(
            name,
            bool_schema(),
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
        ),
        "continue" => query(
            name,
            string_schema(),
            "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize.",
        ),
        "fieldSelector" => query(
            name,
            string_schema(),
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        "labelSelector" => query(
            name,
            string_schema(),
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        "limit" => query(
            name,
            int_schema(),
            "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
        ),
        "resourceVersion" => query(
            name,
            string_schema(),
            "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        "resourceVersionMatch" => query(
            name,
            string_schema(),
            "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        "sendInitialEvents" => query(
            name,
            bool_schema(),
            "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent.",
        ),
        "timeoutSeconds" => query(
            name,
            int_schema(),
            "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        ),
        "watch" => query(
            name,
            bool_schema(),
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        ),
        "gracePeriodSeconds" => query(
            name,
            int_schema(),
            "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
        ),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => query(
            name,
            bool_schema(),
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it",
        ),
        "orphanDependents" => query(
            name,
            bool_schema(),
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
        ),
        "propagationPolicy" => query(
            name,
            string_schema(),
            "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
        ),
        "container" => query(
            name,
            string_schema(),
            "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
        ),
        "follow" => query(
            name,
            bool_schema(),
            "Follow the log stream of the pod. Defaults to false.",
        ),
        "previous" => query(
            name,
            bool_schema(),
            "Return previous terminated container logs. Defaults to false.",
        ),
        "sinceSeconds" => query(
            name,
            int_schema(),
            "A relative time in seconds before the current time from which to show logs.",
        ),
        "tailLines" => query(
            name,
            int_schema(),
            "If set, the number of lines from the end of the logs to show.",
        ),
        "timestamps" => query(
            name,
            bool_schema(),
            "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
        ),
        "command" => query(
            name,
            string_schema(),
            "Command is the remote command to execute. argv array. Not executed within a shell.",
        ),
        "stdin" => query(
            name,
            bool_schema(),
            "Redirect the standard input stream of the pod for this call. Defaults to false.",
        ),
        "stdout" => query(
            name,
            bool_schema(),
            "Redirect the standard output stream of the pod for this call.",
        ),
        "stderr" => query(
            name,
            bool_schema(),
            "Redirect the standard error stream of the pod for this call.",
        ),
        "tty" => query(
            name,
            bool_schema(),
            "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false.",
        ),
        "ports" => query(
            name,
            int_schema(),
            "List of ports to forward Required when using WebSockets",
        ),
        _ => query(name, string_schema(), ""),
    }
}

fn params(names: &[&str]) -> Vec<Value> {
    names.iter().map(|n| param(n)).collect()
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETE_COLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": string_schema(),
    })
}

fn namespace_param() -> Value {
    path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects",
    )
}

const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const STREAM_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn content(types: &[&str], schema: &Value) -> Value {
    let map: Map<String, Value> = types
        .iter()
        .map(|t| ((*t).to_string(), json!({"schema": schema})))
        .collect();
    Value::Object(map)
}

/// `responses` with the given codes all returning `schema` in `types`, plus 401.
fn responses(codes: &[(&str, &str)], types: &[&str], schema: &Value) -> Value {
    let mut map = Map::new();
    for (code, description) in codes {
        map.insert(
            (*code).to_string(),
            json!({"description": description, "content": content(types, schema)}),
        );
    }
    map.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(map)
}

/// Everything an operation needs to be written.
struct Op<'a> {
    description: String,
    operation_id: String,
    action: &'a str,
    gvk: Value,
    parameters: Vec<Value>,
    request: Option<Value>,
    responses: Value,
}

impl Op<'_> {
    fn into_value(self, tag: &str) -> Value {
        let mut op = json!({
            "tags": [tag],
            "description": self.description,
            "operationId": self.operation_id,
        });
        if !self.parameters.is_empty() {
            op["parameters"] = Value::Array(self.parameters);
        }
        if let Some(body) = self.request {
            op["requestBody"] = body;
        }
        op["responses"] = self.responses;
        op["x-kubernetes-action"] = json!(self.action);
        op["x-kubernetes-group-version-kind"] = self.gvk;
        op
    }
}

fn request_body(types: &[&str], schema: &Value) -> Value {
    json!({"content": content(types, schema), "required": true})
}

/// The operations that read or write one whole object (or subresource) and return it.
#[derive(Clone, Copy)]
enum ObjectOp {
    /// `get`: read it.
    Read,
    /// `put`: replace it with the request body.
    Replace,
    /// `post`: create it from the request body.
    Create,
    /// `patch`: patch it with a body of any of the patch types.
    Patch,
}

impl Op<'static> {
    /// The operation `which` on an object whose schema is `obj`: its action, parameters, request
    /// body and responses are fixed by `which`.
    fn on_object(
        which: ObjectOp,
        description: String,
        operation_id: String,
        gvk: Value,
        obj: &Value,
    ) -> Self {
        let (action, parameters, request, codes): (_, _, _, &[(&str, &str)]) = match which {
            ObjectOp::Read => ("get", Vec::new(), None, &[("200", "OK")]),
            ObjectOp::Replace => (
                "put",
                params(WRITE_PARAMS),
                Some(request_body(&["*/*"], obj)),
                &[("200", "OK"), ("201", "Created")],
            ),
            ObjectOp::Create => (
                "post",
                params(WRITE_PARAMS),
                Some(request_body(&["*/*"], obj)),
                &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
            ),
            ObjectOp::Patch => (
                "patch",
                params(PATCH_PARAMS),
                Some(request_body(PATCH_TYPES, &schema_ref(PATCH))),
                &[("200", "OK"), ("201", "Created")],
            ),
        };
        Op {
            description,
            operation_id,
            action,
            gvk,
            parameters,
            request,
            responses: responses(codes, OBJECT_TYPES, obj),
        }
    }
}

/// Builds the paths of one kind into `paths`.
fn kind_paths(k: &ResourceKind, prefix: &str, tag: &str, paths: &mut Map<String, Value>) {
    let gc = group_camel(k.group);
    let vc = capitalize(k.version);
    let ns = if k.namespaced { "Namespaced" } else { "" };
    let kind = k.kind;
    let has = |verb: &str| k.verbs.contains(&verb);
    let gvk_v = gvk(k.group, k.version, kind);
    let obj = schema_ref(k.schema_name);
    let list = schema_ref(&list_definition(k));
    let status = schema_ref(STATUS);
    let event = schema_ref(WATCH_EVENT);
    let scope = if k.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", k.plural)
    } else {
        format!("{prefix}/{}", k.plural)
    };
    let watch_scope = if k.namespaced {
        format!("{prefix}/watch/namespaces/{{namespace}}/{}", k.plural)
    } else {
        format!("{prefix}/watch/{}", k.plural)
    };
    let scope_params = |extra: &[&str]| {
        let mut p = Vec::new();
        if k.namespaced {
            p.push(namespace_param());
        }
        p.extend(params(extra));
        p
    };
    let name_param = path_param("name", &format!("name of the {kind}"));
    let item_params = |extra: &[&str]| {
        let mut p = vec![name_param.clone()];
        p.extend(scope_params(extra));
        p
    };

    // The collection: list, create, deletecollection.
    let mut collection = Map::new();
    if has("list") {
        let op = Op {
            description: format!("list or watch objects of kind {kind}"),
            operation_id: format!("list{gc}{vc}{ns}{kind}"),
            action: "list",
            gvk: gvk_v.clone(),
            parameters: params(LIST_PARAMS),
            request: None,
            responses: responses(&[("200", "OK")], STREAM_TYPES, &list),
        };
        collection.insert("get".into(), op.into_value(tag));
    }
    if has("create") {
        let op = Op::on_object(
            ObjectOp::Create,
            format!("create a {kind}"),
            format!("create{gc}{vc}{ns}{kind}"),
            gvk_v.clone(),
            &obj,
        );
        collection.insert("post".into(), op.into_value(tag));
    }
    if has("deletecollection") {
        let op = Op {
            description: format!("delete collection of {kind}"),
            operation_id: format!("delete{gc}{vc}Collection{ns}{kind}"),
            action: "deletecollection",
            gvk: gvk_v.clone(),
            parameters: params(DELETE_COLLECTION_PARAMS),
            request: Some(request_body(&["*/*"], &schema_ref(DELETE_OPTIONS))),
            responses: responses(&[("200", "OK")], OBJECT_TYPES, &status),
        };
        collection.insert("delete".into(), op.into_value(tag));
    }
    put(paths, scope.clone(), collection, scope_params(&["pretty"]));

    // One object: read, replace, delete, patch.
    let mut item = Map::new();
    if has("get") {
        let op = Op::on_object(
            ObjectOp::Read,
            format!("read the specified {kind}"),
            format!("read{gc}{vc}{ns}{kind}"),
            gvk_v.clone(),
            &obj,
        );
        item.insert("get".into(), op.into_value(tag));
    }
    if has("update") {
        let op = Op::on_object(
            ObjectOp::Replace,
            format!("replace the specified {kind}"),
            format!("replace{gc}{vc}{ns}{kind}"),
            gvk_v.clone(),
            &obj,
        );
        item.insert("put".into(), op.into_value(tag));
    }
    if has("delete") {
        let op = Op {
            description: format!("delete a {kind}"),
            operation_id: format!("delete{gc}{vc}{ns}{kind}"),
            action: "delete",
            gvk: gvk_v.clone(),
            parameters: params(DELETE_PARAMS),
            request: Some(request_body(&["*/*"], &schema_ref(DELETE_OPTIONS))),
            responses: responses(&[("200", "OK"), ("202", "Accepted")], OBJECT_TYPES, &status),
        };
        item.insert("delete".into(), op.into_value(tag));
    }
    if has("patch") {
        let op = Op::on_object(
            ObjectOp::Patch,
            format!("partially update the specified {kind}"),
            format!("patch{gc}{vc}{ns}{kind}"),
            gvk_v.clone(),
            &obj,
        );
        item.insert("patch".into(), op.into_value(tag));
    }
    put(
        paths,
        format!("{scope}/{{name}}"),
        item,
        item_params(&["pretty"]),
    );

    // Subresources.
    for s in k.subresources {
        subresource_paths(k, s, &scope, tag, item_params(&["pretty"]), paths);
    }

    // All namespaces and the deprecated watch paths.
    if k.namespaced && has("list") {
        let mut all = Map::new();
        let op = Op {
            description: format!("list or watch objects of kind {kind}"),
            operation_id: format!("list{gc}{vc}{kind}ForAllNamespaces"),
            action: "list",
            gvk: gvk_v.clone(),
            parameters: Vec::new(),
            request: None,
            responses: responses(&[("200", "OK")], STREAM_TYPES, &list),
        };
        all.insert("get".into(), op.into_value(tag));
        put(
            paths,
            format!("{prefix}/{}", k.plural),
            all,
            list_path_params(),
        );
    }
    if has("watch") {
        let watch_op = |operation_id: String, action: &str, description: String| {
            Op {
                description,
                operation_id,
                action,
                gvk: gvk_v.clone(),
                parameters: Vec::new(),
                request: None,
                responses: responses(&[("200", "OK")], STREAM_TYPES, &event),
            }
            .into_value(tag)
        };
        let list_params = list_path_params();
        let with = |mut extra: Vec<Value>| {
            extra.extend(list_params.iter().cloned());
            extra
        };
        let mut scoped = Map::new();
        scoped.insert(
            "get".into(),
            watch_op(
                format!("watch{gc}{vc}{ns}{kind}List"),
                "watchlist",
                format!(
                    "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
                ),
            ),
        );
        let scope_path = if k.namespaced {
            vec![namespace_param()]
        } else {
            Vec::new()
        };
        put(paths, watch_scope.clone(), scoped, with(scope_path.clone()));
        let mut one = Map::new();
        one.insert(
            "get".into(),
            watch_op(
                format!("watch{gc}{vc}{ns}{kind}"),
                "watch",
                format!(
                    "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
                ),
            ),
        );
        let mut one_path = vec![name_param.clone()];
        one_path.extend(scope_path);
        put(
            paths,
            format!("{watch_scope}/{{name}}"),
            one,
            with(one_path),
        );
        if k.namespaced {
            let mut all = Map::new();
            all.insert(
                "get".into(),
                watch_op(
                    format!("watch{gc}{vc}{kind}ListForAllNamespaces"),
                    "watchlist",
                    format!(
                        "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
                    ),
                ),
            );
            put(
                paths,
                format!("{prefix}/watch/{}", k.plural),
                all,
                list_params.clone(),
            );
        }
    }
}

/// Inserts a path item with its common parameters, unless it has no operation.
fn put(
    paths: &mut Map<String, Value>,
    path: String,
    mut item: Map<String, Value>,
    common: Vec<Value>,
) {
    if item.is_empty() {
        return;
    }
    item.insert("parameters".into(), Value::Array(common));
    paths.insert(path, Value::Object(item));
}

/// The common parameters of a list or watch path: the list parameters and `pretty`, sorted.
fn list_path_params() -> Vec<Value> {
    let mut p = params(LIST_PARAMS);
    p.push(param("pretty"));
    sort_params(&mut p);
    p
}

fn sort_params(params: &mut [Value]) {
    params.sort_by(|a, b| {
        a["name"]
            .as_str()
            .unwrap_or_default()
            .cmp(b["name"].as_str().unwrap_or_default())
    });
}

/// The paths of one subresource: `{scope}/{name}/{sub}`.
fn subresource_paths(
    k: &ResourceKind,
    s: &Subresource,
    scope: &str,
    tag: &str,
    common: Vec<Value>,
    paths: &mut Map<String, Value>,
) {
    let gc = group_camel(k.group);
    let vc = capitalize(k.version);
    let ns = if k.namespaced { "Namespaced" } else { "" };
    let kind = k.kind;
    let sub = capitalize(s.name);
    let (rg, rv, rk) = s.response_kind;
    let gvk_v = gvk(rg, rv, rk);
    let has = |verb: &str| s.verbs.contains(&verb);
    let path = format!("{scope}/{{name}}/{}", s.name);
    let mut item = Map::new();

    if CONNECT_SUBRESOURCES.contains(&s.name) {
        let extra: &[&str] = match s.name {
            "exec" => &["command", "container", "stderr", "stdin", "stdout", "tty"],
            "attach" => &["container", "stderr", "stdin", "stdout", "tty"],
            "portforward" => &["ports"],
            _ => &[],
        };
        let text = json!({"type": "string"});
        for (verb, method, http) in [("get", "get", "Get"), ("create", "post", "Post")] {
            if !has(verb) {
                continue;
            }
            let op = Op {
                description: format!(
                    "connect {} requests to {} of {kind}",
                    http.to_uppercase(),
                    s.name
                ),
                operation_id: format!("connect{gc}{vc}{http}{ns}{kind}{sub}"),
                action: "connect",
                gvk: gvk_v.clone(),
                parameters: Vec::new(),
                request: None,
                responses: responses(&[("200", "OK")], &["*/*"], &text),
            }
            .into_value(tag);
            item.insert(method.into(), op);
        }
        let mut common = common;
        common.extend(params(extra));
        sort_params(&mut common);
        put(paths, path, item, common);
        return;
    }

    if s.name == "log" {
        if has("get") {
            let op = Op {
                description: format!("read log of the specified {kind}"),
                operation_id: format!("read{gc}{vc}{ns}{kind}Log"),
                action: "get",
                gvk: gvk_v,
                parameters: Vec::new(),
                request: None,
                responses: responses(
                    &[("200", "OK")],
                    &[
                        "text/plain",
                        "application/json",
                        "application/yaml",
                        "application/vnd.kubernetes.protobuf",
                    ],
                    &json!({"type": "string"}),
                ),
            }
            .into_value(tag);
            item.insert("get".into(), op);
            let mut common = common;
            common.extend(params(&[
                "container",
                "follow",
                "previous",
                "sinceSeconds",
                "tailLines",
                "timestamps",
            ]));
            sort_params(&mut common);
            put(paths, path, item, common);
        }
        return;
    }

    let definition = if (rg, rv, rk) == (k.group, k.version, k.kind) {
        Some(k.schema_name.to_string())
    } else {
        definition_for(rg, rv, rk)
    };
    let obj = match &definition {
        Some(d) => schema_ref(d),
        None => json!({"type": "object"}),
    };
    let what = if s.name == "status" {
        format!("status of the specified {kind}")
    } else {
        format!("{} of the specified {kind}", s.name)
    };
    if has("get") {
        let op = Op::on_object(
            ObjectOp::Read,
            format!("read {what}"),
            format!("read{gc}{vc}{ns}{kind}{sub}"),
            gvk_v.clone(),
            &obj,
        );
        item.insert("get".into(), op.into_value(tag));
    }
    if has("update") {
        let op = Op::on_object(
            ObjectOp::Replace,
            format!("replace {what}"),
            format!("replace{gc}{vc}{ns}{kind}{sub}"),
            gvk_v.clone(),
            &obj,
        );
        item.insert("put".into(), op.into_value(tag));
    }
    if has("create") {
        let op = Op::on_object(
            ObjectOp::Create,
            format!("create {} of a {kind}", s.name),
            format!("create{gc}{vc}{ns}{kind}{sub}"),
            gvk_v.clone(),
            &obj,
        );
        item.insert("post".into(), op.into_value(tag));
    }
    if has("patch") {
        let op = Op::on_object(
            ObjectOp::Patch,
            format!("partially update {what}"),
            format!("patch{gc}{vc}{ns}{kind}{sub}"),
            gvk_v,
            &obj,
        );
        item.insert("patch".into(), op.into_value(tag));
    }
    put(paths, path, item, common);
}

/// The paths of one group-version, sorted by path.
fn gv_paths(kinds: &[ResourceKind], group: &str, version: &str) -> Map<String, Value> {
    let prefix = format!("/{}", gv_path(group, version));
    let tag = tag(group, version);
    let mut paths = Map::new();
    paths.insert(
        format!("{prefix}/"),
        json!({"get": {
            "tags": [tag],
            "description": "get available resources",
            "operationId": format!("get{}{}APIResources", group_camel(group), capitalize(version)),
            "responses": responses(&[("200", "OK")], OBJECT_TYPES, &schema_ref(API_RESOURCE_LIST)),
        }}),
    );
    for k in kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        kind_paths(k, &prefix, &tag, &mut paths);
    }
    paths.sort_keys();
    paths
}

/// Collects the definition names `$ref`ed anywhere in `value`.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    if let Some(name) = v.as_str().and_then(|r| r.strip_prefix(REF_PREFIX)) {
                        out.push(name.to_string());
                    }
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The component schemas a document needs: the definitions its paths reference and, transitively,
/// everything those reference. Definitions missing from [`schema::definitions`] get a generic
/// object schema so that every `$ref` resolves.
fn components(paths: &Map<String, Value>) -> Map<String, Value> {
    let definitions = schema::definitions();
    let mut pending = Vec::new();
    for p in paths.values() {
        collect_refs(p, &mut pending);
    }
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    while let Some(name) = pending.pop() {
        if out.contains_key(&name) {
            continue;
        }
        let def = match definitions.get(&name) {
            Some(def) => def.clone(),
            None if name == WATCH_EVENT => watch_event(),
            None => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        };
        collect_refs(&def, &mut pending);
        out.insert(name, def);
    }
    out.into_iter().collect()
}

/// `WatchEvent`, which the schema module does not generate.
fn watch_event() -> Value {
    json!({
        "description": "Event represents a single event to a watched resource.",
        "type": "object",
        "required": ["type", "object"],
        "properties": {
            "object": {
                "description": "Object is:\n * If Type is Added or Modified: the new state of the object.\n * If Type is Deleted: the state of the object immediately before deletion.\n * If Type is Error: *Status is recommended; other types may make sense\n   depending on context.",
                "type": "object"
            },
            "type": {"type": "string", "default": ""}
        }
    })
}

/// The OpenAPI v3 document of one group-version over `kinds`.
fn document(kinds: &[ResourceKind], group: &str, version: &str) -> Value {
    let paths = gv_paths(kinds, group, version);
    let schemas = components(&paths);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header"
                }
            }
        },
        "security": [{"BearerToken": []}]
    })
}

#[cfg(test)]
mod tests;
