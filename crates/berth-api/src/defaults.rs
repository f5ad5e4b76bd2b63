//! Server-side defaulting: the fields Kubernetes 1.33 fills in when an object is created or
//! updated (its `SetDefaults_*` functions, plus the few values its create strategies and default
//! admission plugins always set, e.g. a new Pod's `status.phase`, `priority` and
//! `serviceAccountName`).
//!
//! Defaulting is idempotent: applying it twice gives the same object as applying it once. This
//! module must not allocate anything (cluster IPs, node ports, UIDs, names) nor validate; it
//! never removes or changes a value a client set.

use serde_json::{Map, Value, json};

use crate::kinds::ResourceKind;
use crate::validation::VOLUME_SOURCES;

/// Applies Kubernetes' defaults for `kind` to `obj` in place. Objects that are not JSON objects
/// are left alone.
pub fn apply(kind: &ResourceKind, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (kind.group, kind.kind) {
        ("", "Pod") => pod(obj),
        ("", "PodTemplate") => template_at(obj, &["template"]),
        ("", "ReplicationController") => replication_controller(obj),
        ("apps", "Deployment") => deployment(obj),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "replicas", json!(1));
            }
            template_at(obj, &["spec", "template"]);
        }
        ("apps", "StatefulSet") => stateful_set(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => cron_job(obj),
        ("", "Service") => service(obj),
        ("", "Secret") => {
            default_in(obj, "type", json!("Opaque"));
            merge_string_data(obj);
        }
        ("", "Namespace") => namespace(obj),
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = child(obj, "status") {
                default(status, "phase", json!("Pending"));
            }
        }
        ("", "PersistentVolume") => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = child(obj, "status") {
                default(status, "phase", json!("Pending"));
            }
        }
        ("", "Node") => {
            if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut)
                && let Some(capacity) = status.get("capacity").cloned()
            {
                default(status, "allocatable", capacity);
            }
        }
        ("", "Endpoints") => {
            for subset in array_items(obj, "subsets") {
                for port in array_items(subset, "ports") {
                    default_in(port, "protocol", json!("TCP"));
                }
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for port in array_items(obj, "ports") {
                default_in(port, "protocol", json!("TCP"));
                default_in(port, "name", json!(""));
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(obj, kind.version),
        ("", "LimitRange") => {
            if let Some(spec) = obj.get_mut("spec") {
                for item in array_items(spec, "limits") {
                    limit_range_item(item);
                }
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj),
        ("networking.k8s.io", "Ingress") => {}
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            for subject in array_items(obj, "subjects") {
                let Some(m) = subject.as_object_mut() else {
                    continue;
                };
                let group = match m.get("kind").and_then(Value::as_str) {
                    Some("ServiceAccount") => "",
                    Some("User" | "Group") => "rbac.authorization.k8s.io",
                    _ => continue,
                };
                if m.get("apiGroup")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    m.insert("apiGroup".to_string(), json!(group));
                }
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            default_in(obj, "reclaimPolicy", json!("Delete"));
            default_in(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("storage.k8s.io", "CSIDriver") => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "attachRequired", json!(true));
                default(spec, "podInfoOnMount", json!(false));
                default(spec, "storageCapacity", json!(false));
                default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
                default(spec, "requiresRepublish", json!(false));
                default(spec, "seLinuxMount", json!(false));
                default(spec, "volumeLifecycleModes", json!(["Persistent"]));
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            default_in(obj, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        _ => {}
    }
}

/// Inserts `value` at `key` if the key is absent or null, or, for string defaults, empty (Go's
/// zero value, which Kubernetes' defaulters treat as unset).
fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    let unset = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty() && value.is_string(),
        _ => false,
    };
    if unset {
        m.insert(key.to_string(), value);
    }
}

/// Inserts `value` at `key` if the key is absent, null or zero (non-pointer Go integers).
fn default_nonzero(m: &mut Map<String, Value>, key: &str, value: Value) {
    if is_unset(m.get(key)) {
        m.insert(key.to_string(), value);
    }
}

/// The object at `key` of `v`, created empty if absent or null; `None` if `v` is not an object
/// or the value at `key` is not an object.
fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    child_of(v.as_object_mut()?, key)
}

/// The object at `key` of `m`, created empty if absent or null; `None` if the value at `key` is
/// not an object.
fn child_of<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    default(m, key, json!({}));
    m.get_mut(key)?.as_object_mut()
}

/// The object at `path`, if every step exists and is an object (nothing is created).
fn existing<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = v;
    for p in path {
        cur = cur.get_mut(*p)?;
    }
    cur.as_object_mut()
}

/// Inserts `value` at `key` of `v` if `v` is an object and the key is absent or null.
fn default_in(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        default(m, key, value);
    }
}

/// The items of the array at `key` of `v` (empty if absent or not an array).
fn array_items<'a>(v: &'a mut Value, key: &str) -> std::slice::IterMut<'a, Value> {
    match v.get_mut(key).and_then(Value::as_array_mut) {
        Some(a) => a.iter_mut(),
        None => [].iter_mut(),
    }
}

fn is_unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// Kubernetes merges a Secret's write-only `stringData` into `data` (base64, overwriting) when
/// it decodes the request, so `stringData` is never stored nor returned.
fn merge_string_data(obj: &mut Value) {
    use base64::Engine as _;
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = m.remove("stringData") else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    if let Some(data) = child_of(m, "data") {
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(k, Value::String(encoded));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pods and pod templates

fn pod(obj: &mut Value) {
    if let Some(spec) = existing(obj, &["spec"]) {
        pod_spec(spec);
        let m = spec;
        default(m, "enableServiceLinks", json!(true));
        if m.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            for list in ["containers", "initContainers"] {
                for c in m
                    .get_mut(list)
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    for p in array_items(c, "ports") {
                        if let Some(pm) = p.as_object_mut()
                            && is_unset(pm.get("hostPort"))
                            && let Some(cp) = pm.get("containerPort").cloned()
                        {
                            pm.insert("hostPort".to_string(), cp);
                        }
                    }
                }
            }
        }
        // Set on every pod by the default admission plugins (ServiceAccount, Priority,
        // DefaultTolerationSeconds).
        default(m, "serviceAccountName", json!("default"));
        if let Some(sa) = m.get("serviceAccountName").cloned() {
            default(m, "serviceAccount", sa);
        }
        default(m, "priority", json!(0));
        default(m, "preemptionPolicy", json!("PreemptLowerPriority"));
        default_tolerations(m, DEFAULT_TOLERATION_SECONDS, DEFAULT_TOLERATION_SECONDS);
        // Requests default to limits, per resource, for pods (not templates).
        for list in ["containers", "initContainers"] {
            if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs {
                    requests_from_limits(c);
                }
            }
        }
    }
    let qos = obj.get("spec").map(qos_class).unwrap_or("BestEffort");
    if let Some(status) = child(obj, "status") {
        if status.get("phase").is_none_or(Value::is_null) {
            status.insert("phase".to_string(), json!("Pending"));
        }
        default(status, "qosClass", json!(qos));
    }
}

/// Kubernetes' default `tolerationSeconds` of the not-ready and unreachable tolerations that
/// the DefaultTolerationSeconds admission plugin adds to every pod.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// The DefaultTolerationSeconds admission plugin: gives a pod `node.kubernetes.io/not-ready`
/// and `node.kubernetes.io/unreachable` NoExecute tolerations for `not_ready` and
/// `unreachable` seconds unless it tolerates those taints already. The API server runs it on
/// every new pod with its configured times, before [`apply`] (which adds Kubernetes' 300 s to
/// a pod that still lacks them).
pub fn default_toleration_seconds(pod: &mut Value, not_ready: i64, unreachable: i64) {
    if let Some(spec) = existing(pod, &["spec"]) {
        default_tolerations(spec, not_ready, unreachable);
    }
}

fn default_tolerations(spec: &mut Map<String, Value>, not_ready: i64, unreachable: i64) {
    default(spec, "tolerations", json!([]));
    let Some(tols) = spec.get_mut("tolerations").and_then(Value::as_array_mut) else {
        return;
    };
    for (key, seconds) in [
        ("node.kubernetes.io/not-ready", not_ready),
        ("node.kubernetes.io/unreachable", unreachable),
    ] {
        let present = tols.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str);
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            (k == Some(key) || (k.is_none_or(str::is_empty) && op == "Exists"))
                && (effect.is_empty() || effect == "NoExecute")
        });
        if !present {
            tols.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": seconds
            }));
        }
    }
}

fn requests_from_limits(c: &mut Value) {
    let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    if limits.is_empty() {
        return;
    }
    if let Some(req) = child_of(res, "requests") {
        for (k, v) in limits {
            req.entry(k).or_insert(v);
        }
    }
}

/// The QoS class Kubernetes computes for a pod spec.
fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for list in ["initContainers", "containers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = c.pointer("/resources/requests").and_then(Value::as_object);
            let lim = c.pointer("/resources/limits").and_then(Value::as_object);
            let relevant = |m: Option<&Map<String, Value>>| {
                m.map(|m| m.keys().filter(|k| *k == "cpu" || *k == "memory").count())
                    .unwrap_or(0)
            };
            if relevant(req) > 0 || relevant(lim) > 0 {
                any = true;
            }
            for r in ["cpu", "memory"] {
                let l = lim.and_then(|m| m.get(r));
                let q = req.and_then(|m| m.get(r)).or(l);
                match (l, q) {
                    (Some(l), Some(q)) if same_quantity(l, q) => {}
                    _ => guaranteed = false,
                }
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn same_quantity(a: &Value, b: &Value) -> bool {
    let parse = |v: &Value| match v {
        Value::String(s) => crate::quantity::parse_quantity(s),
        Value::Number(n) => crate::quantity::parse_quantity(&n.to_string()),
        _ => None,
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn replication_controller(obj: &mut Value) {
    let labels = obj.pointer("/spec/template/metadata/labels").cloned();
    if let Some(m) = existing(obj, &["spec"]) {
        default(m, "replicas", json!(1));
        if let Some(labels) = labels.clone()
            && m.get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
        {
            m.insert("selector".to_string(), labels);
        }
    }
    if let Some(labels) = labels
        && obj.get("spec").is_some()
        && let Some(meta) = child(obj, "metadata")
        && meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        meta.insert("labels".to_string(), labels);
    }
    template_at(obj, &["spec", "template"]);
}

/// Applies pod spec defaults to the pod template at `path` (if present).
fn template_at(obj: &mut Value, path: &[&str]) {
    let mut full: Vec<&str> = path.to_vec();
    full.push("spec");
    if let Some(spec) = existing(obj, &full) {
        pod_spec(spec);
    }
}

fn pod_spec(m: &mut Map<String, Value>) {
    default(m, "dnsPolicy", json!("ClusterFirst"));
    default(m, "restartPolicy", json!("Always"));
    default(m, "terminationGracePeriodSeconds", json!(30));
    default(m, "schedulerName", json!("default-scheduler"));
    default(m, "securityContext", json!({}));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                container(c);
            }
        }
    }
    if let Some(vols) = m.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols {
            volume(v);
        }
    }
}

fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag),
        None if digest.is_some() => None,
        None => Some("latest"),
    }
}

fn container(c: &mut Value) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(m) = c.as_object_mut() else {
        return;
    };
    let policy = if image_tag(&image) == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    default(m, "imagePullPolicy", json!(policy));
    default(m, "terminationMessagePath", json!("/dev/termination-log"));
    default(m, "terminationMessagePolicy", json!("File"));
    default(m, "resources", json!({}));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(pm) = p.as_object_mut() {
                default(pm, "protocol", json!("TCP"));
            }
        }
    }
    if let Some(env) = m.get_mut("env").and_then(Value::as_array_mut) {
        for e in env {
            if let Some(fr) = e
                .pointer_mut("/valueFrom/fieldRef")
                .and_then(Value::as_object_mut)
            {
                default(fr, "apiVersion", json!("v1"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe).and_then(Value::as_object_mut) {
            default_nonzero(p, "timeoutSeconds", json!(1));
            default_nonzero(p, "periodSeconds", json!(10));
            default_nonzero(p, "successThreshold", json!(1));
            default_nonzero(p, "failureThreshold", json!(3));
            handler(p);
        }
    }
    if let Some(lc) = m.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook).and_then(Value::as_object_mut) {
                handler(h);
            }
        }
    }
}

fn handler(h: &mut Map<String, Value>) {
    if let Some(get) = h.get_mut("httpGet").and_then(Value::as_object_mut) {
        if get
            .get("path")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            get.insert("path".to_string(), json!("/"));
        }
        default(get, "scheme", json!("HTTP"));
    }
    if let Some(g) = h.get_mut("grpc").and_then(Value::as_object_mut) {
        default(g, "service", json!(""));
    }
}

fn volume(v: &mut Value) {
    let Some(m) = v.as_object_mut() else {
        return;
    };
    if !VOLUME_SOURCES
        .iter()
        .any(|s| m.get(*s).is_some_and(|x| !x.is_null()))
    {
        m.insert("emptyDir".to_string(), json!({}));
    }
    if let Some(hp) = m.get_mut("hostPath").and_then(Value::as_object_mut) {
        default(hp, "type", json!(""));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = m.get_mut(src).and_then(Value::as_object_mut) {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(items) = m
        .get_mut("downwardAPI")
        .and_then(|d| d.get_mut("items"))
        .and_then(Value::as_array_mut)
    {
        downward_items(items);
    }
    if let Some(sources) = m
        .get_mut("projected")
        .and_then(|d| d.get_mut("sources"))
        .and_then(Value::as_array_mut)
    {
        for s in sources {
            if let Some(t) = s
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                default(t, "expirationSeconds", json!(3600));
            }
            if let Some(items) = s
                .pointer_mut("/downwardAPI/items")
                .and_then(Value::as_array_mut)
            {
                downward_items(items);
            }
        }
    }
    if let Some(iscsi) = m.get_mut("iscsi").and_then(Value::as_object_mut) {
        default(iscsi, "iscsiInterface", json!("default"));
    }
    if let Some(ad) = m.get_mut("azureDisk").and_then(Value::as_object_mut) {
        default(ad, "cachingMode", json!("ReadWrite"));
        default(ad, "fsType", json!("ext4"));
        default(ad, "readOnly", json!(false));
        default(ad, "kind", json!("Shared"));
    }
}

fn downward_items(items: &mut [Value]) {
    for it in items {
        if let Some(fr) = it.get_mut("fieldRef").and_then(Value::as_object_mut) {
            default(fr, "apiVersion", json!("v1"));
        }
    }
}

/// Container limit defaults: the default limit falls back to the max, the default request to
/// the default limit and then to the min.
fn limit_range_item(item: &mut Value) {
    let Some(m) = item.as_object_mut() else {
        return;
    };
    if m.get("type").and_then(Value::as_str) != Some("Container") {
        return;
    }
    let get = |m: &Map<String, Value>, k: &str| {
        m.get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (max, min) = (get(m, "max"), get(m, "min"));
    let mut def = get(m, "default");
    for (k, v) in max {
        def.entry(k).or_insert(v);
    }
    let mut req = get(m, "defaultRequest");
    for (k, v) in def.iter().chain(min.iter()) {
        req.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if !def.is_empty() {
        m.insert("default".to_string(), Value::Object(def));
    }
    if !req.is_empty() {
        m.insert("defaultRequest".to_string(), Value::Object(req));
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads

fn deployment(obj: &mut Value) {
    if let Some(spec) = existing(obj, &["spec"]) {
        let m = spec;
        default(m, "replicas", json!(1));
        if let Some(s) = child_of(m, "strategy") {
            default(s, "type", json!("RollingUpdate"));
            if s.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = child_of(s, "rollingUpdate")
            {
                default(ru, "maxUnavailable", json!("25%"));
                default(ru, "maxSurge", json!("25%"));
            }
        }
        default(m, "revisionHistoryLimit", json!(10));
        default(m, "progressDeadlineSeconds", json!(600));
    }
    template_at(obj, &["spec", "template"]);
}

fn stateful_set(obj: &mut Value) {
    if let Some(spec) = existing(obj, &["spec"]) {
        let m = spec;
        default(m, "replicas", json!(1));
        default(m, "podManagementPolicy", json!("OrderedReady"));
        if let Some(s) = child_of(m, "updateStrategy") {
            // Only a defaulted type brings a default rollingUpdate; a given one keeps its own.
            if s.get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                s.insert("type".to_string(), json!("RollingUpdate"));
                default(s, "rollingUpdate", json!({}));
            }
            if s.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = s.get_mut("rollingUpdate").and_then(Value::as_object_mut)
            {
                default(ru, "partition", json!(0));
            }
        }
        default(m, "revisionHistoryLimit", json!(10));
        if let Some(p) = child_of(m, "persistentVolumeClaimRetentionPolicy") {
            default(p, "whenDeleted", json!("Retain"));
            default(p, "whenScaled", json!("Retain"));
        }
        if let Some(vcts) = m
            .get_mut("volumeClaimTemplates")
            .and_then(Value::as_array_mut)
        {
            for t in vcts {
                if let Some(s) = child(t, "spec") {
                    default(s, "volumeMode", json!("Filesystem"));
                }
                if let Some(st) = child(t, "status") {
                    default(st, "phase", json!("Pending"));
                }
            }
        }
    }
    template_at(obj, &["spec", "template"]);
}

fn daemon_set(obj: &mut Value) {
    if let Some(spec) = existing(obj, &["spec"]) {
        let m = spec;
        if let Some(s) = child_of(m, "updateStrategy") {
            default(s, "type", json!("RollingUpdate"));
            if s.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = child_of(s, "rollingUpdate")
            {
                default(ru, "maxUnavailable", json!(1));
                default(ru, "maxSurge", json!(0));
            }
        }
        default(m, "revisionHistoryLimit", json!(10));
    }
    template_at(obj, &["spec", "template"]);
}

fn job(obj: &mut Value) {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    copy_template_labels(obj);
    if let Some(spec) = existing(obj, &["spec"]) {
        let m = spec;
        default(m, "manualSelector", json!(false));
        if is_null(m.get("completions")) && is_null(m.get("parallelism")) {
            m.insert("completions".to_string(), json!(1));
        }
        default(m, "parallelism", json!(1));
        let backoff = if is_null(m.get("backoffLimitPerIndex")) {
            json!(6)
        } else {
            json!(i32::MAX)
        };
        default(m, "backoffLimit", backoff);
        default(m, "completionMode", json!("NonIndexed"));
        default(m, "suspend", json!(false));
        let replacement = if is_null(m.get("podFailurePolicy")) {
            "TerminatingOrFailed"
        } else {
            "Failed"
        };
        default(m, "podReplacementPolicy", json!(replacement));
        if let Some(rules) = m
            .get_mut("podFailurePolicy")
            .and_then(|p| p.get_mut("rules"))
            .and_then(Value::as_array_mut)
        {
            for r in rules {
                for c in array_items(r, "onPodConditions") {
                    default_in(c, "status", json!("True"));
                }
            }
        }
        // The job strategy generates the selector and the pod labels from the UID unless the
        // client asked for a manual selector; a client's selector gets the UID label added.
        let manual = m.get("manualSelector").and_then(Value::as_bool) == Some(true);
        if !manual && !uid.is_empty() {
            if let Some(tmeta) = m
                .get_mut("template")
                .and_then(|t| child(t, "metadata"))
                .and_then(|tm| child_of(tm, "labels"))
            {
                for (k, v) in [
                    ("batch.kubernetes.io/controller-uid", &uid),
                    ("batch.kubernetes.io/job-name", &name),
                    ("controller-uid", &uid),
                    ("job-name", &name),
                ] {
                    tmeta.entry(k).or_insert_with(|| json!(v));
                }
            }
            if let Some(sel) = child_of(m, "selector")
                && let Some(ml) = child_of(sel, "matchLabels")
            {
                ml.entry("batch.kubernetes.io/controller-uid")
                    .or_insert_with(|| json!(uid));
            }
        }
    }
    // Kubernetes copies the template's labels to a job without labels when it decodes the
    // request (before the selector is generated) and again when it reads the stored job back.
    copy_template_labels(obj);
    template_at(obj, &["spec", "template"]);
}

fn copy_template_labels(obj: &mut Value) {
    if let Some(labels) = obj.pointer("/spec/template/metadata/labels").cloned()
        && labels.is_object()
        && let Some(meta) = child(obj, "metadata")
        && meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        meta.insert("labels".to_string(), labels);
    }
}

fn is_null(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

fn cron_job(obj: &mut Value) {
    if let Some(spec) = existing(obj, &["spec"]) {
        let m = spec;
        default(m, "concurrencyPolicy", json!("Allow"));
        default(m, "suspend", json!(false));
        default(m, "successfulJobsHistoryLimit", json!(3));
        default(m, "failedJobsHistoryLimit", json!(1));
    }
    template_at(obj, &["spec", "jobTemplate", "spec", "template"]);
}

// ---------------------------------------------------------------------------------------------
// Services, namespaces, autoscaling, network policies

fn service(obj: &mut Value) {
    let Some(ty) = existing(obj, &["spec"]).map(service_spec) else {
        return;
    };
    if ty == "LoadBalancer" {
        for ing in obj
            .pointer_mut("/status/loadBalancer/ingress")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(im) = ing.as_object_mut()
                && im
                    .get("ip")
                    .and_then(Value::as_str)
                    .is_some_and(|ip| !ip.is_empty())
            {
                default(im, "ipMode", json!("VIP"));
            }
        }
    }
}

/// Service spec defaults; returns the (defaulted) type.
fn service_spec(m: &mut Map<String, Value>) -> String {
    default(m, "type", json!("ClusterIP"));
    default(m, "sessionAffinity", json!("None"));
    let ty = m
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            let Some(pm) = p.as_object_mut() else {
                continue;
            };
            default(pm, "protocol", json!("TCP"));
            if is_unset(pm.get("targetPort"))
                && let Some(port) = pm.get("port").cloned()
            {
                pm.insert("targetPort".to_string(), port);
            }
        }
    }
    match m.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            m.remove("sessionAffinityConfig");
        }
        Some("ClientIP")
            if m.get("sessionAffinityConfig")
                .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
                .is_none_or(Value::is_null) =>
        {
            m.insert(
                "sessionAffinityConfig".to_string(),
                json!({"clientIP": {"timeoutSeconds": 10800}}),
            );
        }
        _ => {}
    }
    if (ty == "NodePort" || ty == "LoadBalancer")
        && m.get("externalTrafficPolicy")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        m.insert("externalTrafficPolicy".to_string(), json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default(m, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        default(m, "internalTrafficPolicy", json!("Cluster"));
        let headless = m.get("clusterIP").and_then(Value::as_str) == Some("None");
        let selectorless = m
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        let policy = if headless && selectorless {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        default(m, "ipFamilyPolicy", json!(policy));
        if m.get("ipFamilies")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            m.insert("ipFamilies".to_string(), json!(["IPv4"]));
        }
    }
    ty
}

fn namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(name) = name
        && let Some(meta) = child(obj, "metadata")
        && let Some(labels) = child_of(meta, "labels")
    {
        labels.insert("kubernetes.io/metadata.name".to_string(), json!(name));
    }
    if let Some(spec) = child(obj, "spec") {
        default(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = child(obj, "status") {
        default(status, "phase", json!("Active"));
    }
}

fn hpa(obj: &mut Value, version: &str) {
    let Some(spec) = existing(obj, &["spec"]) else {
        return;
    };
    let m = spec;
    default(m, "minReplicas", json!(1));
    if version == "v1" {
        return;
    }
    if m.get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        m.insert(
            "metrics".to_string(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    // Behavior is completed only when the client gave one.
    let Some(b) = m.get_mut("behavior").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(up) = child_of(b, "scaleUp") {
        default(up, "stabilizationWindowSeconds", json!(0));
        default(up, "selectPolicy", json!("Max"));
        default(
            up,
            "policies",
            json!([
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}
            ]),
        );
    }
    if let Some(down) = child_of(b, "scaleDown") {
        // No default window: the controller's --horizontal-pod-autoscaler-downscale-
        // stabilization flag applies.
        default(down, "selectPolicy", json!("Max"));
        default(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

fn network_policy(obj: &mut Value) {
    let Some(spec) = existing(obj, &["spec"]) else {
        return;
    };
    let m = spec;
    for dir in ["ingress", "egress"] {
        if let Some(rules) = m.get_mut(dir).and_then(Value::as_array_mut) {
            for r in rules {
                for p in array_items(r, "ports") {
                    default_in(p, "protocol", json!("TCP"));
                }
            }
        }
    }
    if m.get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        let mut types = vec![json!("Ingress")];
        if m.get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        {
            types.push(json!("Egress"));
        }
        m.insert("policyTypes".to_string(), Value::Array(types));
    }
}

#[cfg(test)]
mod tests;
