//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for, with the
//! columns and cell values a Kubernetes 1.33 API server produces for each built-in kind
//! (mirroring `pkg/printers/internalversion/printers.go`; the server always prints the wide
//! columns, kubectl hides priority 1 columns unless `-o wide`). Kinds without a Kubernetes
//! printer get the API server's default table (Name, Created At).
//!
//! This module owns column definitions, cell computation and the Table envelope. It must not
//! read the store or the clock: callers pass the objects and `now`.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::kinds::ResourceKind;
use crate::meta;

#[cfg(test)]
mod tests;

/// One column definition of a Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name as Kubernetes spells it (`Name`, `Ready`, `Port(s)`); kubectl upper-cases it.
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    pub kind: &'static str,
    /// `name` for the column holding the object's name, else empty.
    pub format: &'static str,
    /// Human-readable description of the column.
    pub description: &'static str,
    /// 0 for default columns, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

/// What each Table row carries besides its cells (`includeObject` of the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` with the object's metadata (kubectl's default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";
const SELECTOR_DESC: &str = "A label query over pods that should match the replica count.";

const fn c(
    name: &'static str,
    kind: &'static str,
    description: &'static str,
    priority: i32,
) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority,
    }
}

const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
const AGE: Column = c("Age", "string", AGE_DESC, 0);
const CONTAINERS: Column = c("Containers", "string", CONTAINERS_DESC, 1);
const IMAGES: Column = c("Images", "string", IMAGES_DESC, 1);
const SELECTOR: Column = c("Selector", "string", SELECTOR_DESC, 1);

/// The printer of one kind: its columns and how to compute a row's cells.
struct Printer {
    columns: &'static [Column],
    cells: CellsFn,
}

/// Computes the cells of one row.
type CellsFn = fn(&Value, Timestamp) -> Vec<Value>;

const POD: &[Column] = &[
    NAME,
    c(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
        0,
    ),
    c(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
        0,
    ),
    c(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        0,
    ),
    AGE,
    c(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        1,
    ),
    c(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled.",
        1,
    ),
    c(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
        1,
    ),
    c(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
        1,
    ),
];

const NAMESPACE: &[Column] = &[
    NAME,
    c("Status", "string", "The status of the namespace", 0),
    AGE,
];

const NODE: &[Column] = &[
    NAME,
    c("Status", "string", "The status of the node", 0),
    c("Roles", "string", "The roles of the node", 0),
    AGE,
    c(
        "Version",
        "string",
        "Kubelet Version reported by the node.",
        0,
    ),
    c(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node.",
        1,
    ),
    c(
        "External-IP",
        "string",
        "List of addresses reachable to the node.",
        1,
    ),
    c(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        1,
    ),
    c(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        1,
    ),
    c(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        1,
    ),
];

const SERVICE: &[Column] = &[
    NAME,
    c(
        "Type",
        "string",
        "type determines how the Service is exposed.",
        0,
    ),
    c(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly.",
        0,
    ),
    c(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        0,
    ),
    c(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service.",
        0,
    ),
    AGE,
    c(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
        1,
    ),
];

const ENDPOINTS: &[Column] = &[
    NAME,
    c(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
        0,
    ),
    AGE,
];

const CONFIG_MAP: &[Column] = &[
    NAME,
    c("Data", "string", "Data contains the configuration data.", 0),
    AGE,
];

const SECRET: &[Column] = &[
    NAME,
    c(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
        0,
    ),
    c("Data", "string", "Data contains the secret data.", 0),
    AGE,
];

const EVENT: &[Column] = &[
    c(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
        0,
    ),
    c(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
        0,
    ),
    c(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        0,
    ),
    c(
        "Object",
        "string",
        "The object that this event is about.",
        0,
    ),
    c(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
        1,
    ),
    c(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
        1,
    ),
    c(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
        0,
    ),
    c(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        1,
    ),
    c(
        "Count",
        "string",
        "The number of times this event has occurred.",
        1,
    ),
    Column {
        priority: 1,
        ..NAME
    },
];

const SERVICE_ACCOUNT: &[Column] = &[
    NAME,
    c(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
        0,
    ),
    AGE,
];

const PERSISTENT_VOLUME: &[Column] = &[
    NAME,
    c(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity.",
        0,
    ),
    c(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted.",
        0,
    ),
    c(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
        0,
    ),
    c(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim.",
        0,
    ),
    c(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
        0,
    ),
    c("StorageClass", "string", "StorageClass of the pv", 0),
    c(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
        0,
    ),
    c(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
        0,
    ),
    AGE,
    c(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
        1,
    ),
];

const PERSISTENT_VOLUME_CLAIM: &[Column] = &[
    NAME,
    c(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
        0,
    ),
    c(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
        0,
    ),
    c(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
        0,
    ),
    c(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
        0,
    ),
    c("StorageClass", "string", "StorageClass of the pvc", 0),
    c(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
        0,
    ),
    AGE,
    c(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
        1,
    ),
];

const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    c(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
        0,
    ),
    c(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        0,
    ),
    AGE,
];

const DEPLOYMENT: &[Column] = &[
    NAME,
    c("Ready", "string", "Number of the pod with ready state", 0),
    c(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
        0,
    ),
    c(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
        0,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const REPLICA_SET: &[Column] = &[
    NAME,
    c(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
        0,
    ),
    c(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
        0,
    ),
    c(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
        0,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const STATEFUL_SET: &[Column] = &[
    NAME,
    c("Ready", "string", "Number of the pod with ready state", 0),
    AGE,
    CONTAINERS,
    IMAGES,
];

const DAEMON_SET: &[Column] = &[
    NAME,
    c(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
        0,
    ),
    c(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
        0,
    ),
    c(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
        0,
    ),
    c(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
        0,
    ),
    c(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
        0,
    ),
    c(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
        0,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const CONTROLLER_REVISION: &[Column] = &[
    NAME,
    c("Controller", "string", "Controller of the object", 0),
    c(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
        0,
    ),
    AGE,
];

const JOB: &[Column] = &[
    NAME,
    c("Status", "string", "Status of the job.", 0),
    c(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
        0,
    ),
    c(
        "Duration",
        "string",
        "Time required to complete the job.",
        0,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const CRON_JOB: &[Column] = &[
    NAME,
    c(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
        0,
    ),
    c(
        "Timezone",
        "string",
        "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
        0,
    ),
    c(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.",
        0,
    ),
    c(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
        0,
    ),
    c(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
        0,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

const HPA: &[Column] = &[
    NAME,
    c(
        "Reference",
        "string",
        "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource.",
        0,
    ),
    c(
        "Targets",
        "string",
        "metrics contains the specifications for which to use to calculate the desired replica count.",
        0,
    ),
    c(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
        0,
    ),
    c(
        "MaxPods",
        "string",
        "maxReplicas is the upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.",
        0,
    ),
    c(
        "Replicas",
        "string",
        "currentReplicas is current number of replicas of pods managed by this autoscaler.",
        0,
    ),
    AGE,
];

const LEASE: &[Column] = &[
    NAME,
    c(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
        0,
    ),
    AGE,
];

const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    c(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
        0,
    ),
    c(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
        0,
    ),
    c(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice.",
        0,
    ),
    AGE,
];

const INGRESS: &[Column] = &[
    NAME,
    c(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
        0,
    ),
    c(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
        0,
    ),
    c(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
        0,
    ),
    c(
        "Ports",
        "string",
        "Ports of TLS configurations that open",
        0,
    ),
    AGE,
];

const INGRESS_CLASS: &[Column] = &[
    NAME,
    c(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
        0,
    ),
    c(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
        0,
    ),
    AGE,
];

const NETWORK_POLICY: &[Column] = &[
    NAME,
    c(
        "Pod-Selector",
        "string",
        "Selects the pods to which this NetworkPolicy object applies.",
        0,
    ),
    AGE,
];

const ROLE_BINDING: &[Column] = &[
    NAME,
    c(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
        0,
    ),
    AGE,
    c("Users", "string", "Users in the roleBinding", 1),
    c("Groups", "string", "Groups in the roleBinding", 1),
    c(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
        1,
    ),
];

const CLUSTER_ROLE_BINDING: &[Column] = &[
    NAME,
    c(
        "Role",
        "string",
        "RoleRef can only reference a ClusterRole in the global namespace.",
        0,
    ),
    AGE,
    c("Users", "string", "Users in the clusterRoleBinding", 1),
    c("Groups", "string", "Groups in the clusterRoleBinding", 1),
    c(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
        1,
    ),
];

const POD_DISRUPTION_BUDGET: &[Column] = &[
    NAME,
    c(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
        0,
    ),
    c(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
        0,
    ),
    c(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
        0,
    ),
    AGE,
];

const STORAGE_CLASS: &[Column] = &[
    NAME,
    c(
        "Provisioner",
        "string",
        "provisioner indicates the type of the provisioner.",
        0,
    ),
    c(
        "ReclaimPolicy",
        "string",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
        0,
    ),
    c(
        "VolumeBindingMode",
        "string",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
        0,
    ),
    c(
        "AllowVolumeExpansion",
        "string",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
        0,
    ),
    AGE,
];

/// The API server's default table for kinds without a printer.
const DEFAULT: &[Column] = &[NAME, c("Created At", "date", AGE_DESC, 0)];

fn printer(kind: &ResourceKind) -> Printer {
    let (columns, cells): (&'static [Column], CellsFn) = match (kind.group, kind.kind) {
        ("", "Pod") => (POD, pod_cells),
        ("", "Namespace") => (NAMESPACE, namespace_cells),
        ("", "Node") => (NODE, node_cells),
        ("", "Service") => (SERVICE, service_cells),
        ("", "Endpoints") => (ENDPOINTS, endpoints_cells),
        ("", "ConfigMap") => (CONFIG_MAP, config_map_cells),
        ("", "Secret") => (SECRET, secret_cells),
        ("", "Event") | ("events.k8s.io", "Event") => (EVENT, event_cells),
        ("", "ServiceAccount") => (SERVICE_ACCOUNT, service_account_cells),
        ("", "PersistentVolume") => (PERSISTENT_VOLUME, persistent_volume_cells),
        ("", "PersistentVolumeClaim") => (PERSISTENT_VOLUME_CLAIM, pvc_cells),
        ("", "ResourceQuota") => (RESOURCE_QUOTA, resource_quota_cells),
        ("apps", "Deployment") => (DEPLOYMENT, deployment_cells),
        ("apps", "ReplicaSet") => (REPLICA_SET, replica_set_cells),
        ("apps", "StatefulSet") => (STATEFUL_SET, stateful_set_cells),
        ("apps", "DaemonSet") => (DAEMON_SET, daemon_set_cells),
        ("apps", "ControllerRevision") => (CONTROLLER_REVISION, controller_revision_cells),
        ("batch", "Job") => (JOB, job_cells),
        ("batch", "CronJob") => (CRON_JOB, cron_job_cells),
        ("autoscaling", "HorizontalPodAutoscaler") => (HPA, hpa_cells),
        ("coordination.k8s.io", "Lease") => (LEASE, lease_cells),
        ("discovery.k8s.io", "EndpointSlice") => (ENDPOINT_SLICE, endpoint_slice_cells),
        ("networking.k8s.io", "Ingress") => (INGRESS, ingress_cells),
        ("networking.k8s.io", "IngressClass") => (INGRESS_CLASS, ingress_class_cells),
        ("networking.k8s.io", "NetworkPolicy") => (NETWORK_POLICY, network_policy_cells),
        ("rbac.authorization.k8s.io", "RoleBinding") => (ROLE_BINDING, binding_cells),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            (CLUSTER_ROLE_BINDING, binding_cells)
        }
        ("policy", "PodDisruptionBudget") => (POD_DISRUPTION_BUDGET, pdb_cells),
        ("storage.k8s.io", "StorageClass") => (STORAGE_CLASS, storage_class_cells),
        // Role, ClusterRole, LimitRange and custom resources have no printer.
        _ => (DEFAULT, default_cells),
    };
    Printer { columns, cells }
}

/// The columns the server reports for `kind` (wide ones included, with priority 1).
pub fn columns(kind: &ResourceKind) -> Vec<Column> {
    printer(kind).columns.to_vec()
}

/// The cells of one object's row, in the order of [`columns`]. Never panics on malformed
/// objects: missing or mistyped fields print as Kubernetes prints their zero values.
pub fn cells(kind: &ResourceKind, obj: &Value, now: Timestamp) -> Vec<Value> {
    (printer(kind).cells)(obj, now)
}

/// A whole `meta.k8s.io/v1` Table for `objects`. `list_metadata` becomes the Table's
/// `metadata` (`resourceVersion`, `continue`, `remainingItemCount`).
pub fn table(
    kind: &ResourceKind,
    objects: &[&Value],
    now: Timestamp,
    include: IncludeObject,
    list_metadata: Value,
) -> Value {
    let p = printer(kind);
    let column_definitions: Vec<Value> = p
        .columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array((p.cells)(obj, now)));
            if let Some(conditions) = row_conditions(kind, obj) {
                row.insert("conditions".into(), conditions);
            }
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    let metadata = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
                    row.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": metadata,
                        }),
                    );
                }
                IncludeObject::Object => {
                    row.insert("object".into(), (*obj).clone());
                }
            }
            Value::Object(row)
        })
        .collect();
    let metadata = if list_metadata.is_object() {
        list_metadata
    } else {
        json!({})
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

/// Row conditions: pods that succeeded or failed are marked `Completed`.
fn row_conditions(kind: &ResourceKind, obj: &Value) -> Option<Value> {
    if (kind.group, kind.kind) != ("", "Pod") {
        return None;
    }
    let (reason, message) = match st(obj, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

// ---------------------------------------------------------------------------------------------
// JSON access helpers: absent or mistyped fields read as the Go zero value.

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn st<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, path: &[&str]) -> i64 {
    get(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn boolean(v: &Value, path: &[&str]) -> bool {
    get(v, path).and_then(Value::as_bool).unwrap_or(false)
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(v, path).and_then(Value::as_object)
}

fn map_len(v: &Value, path: &[&str]) -> i64 {
    map(v, path).map_or(0, |m| m.len() as i64)
}

fn time(v: &Value, path: &[&str]) -> Option<Timestamp> {
    get(v, path)
        .and_then(Value::as_str)
        .and_then(meta::parse_time)
}

/// A quantity or int-or-string as text (`1Gi`, `500m`, `2`, `50%`).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A quantity at `path`, printed as Kubernetes prints a zero quantity when absent.
fn quantity(v: &Value, path: &[&str]) -> String {
    text(get(v, path)).unwrap_or_else(|| "0".to_string())
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting shared by the printers.

/// `duration.HumanDuration` of apimachinery, from a signed number of nanoseconds.
pub fn human_duration(nanos: i128) -> String {
    const SEC: i128 = 1_000_000_000;
    const MIN: i128 = 60 * SEC;
    const HOUR: i128 = 60 * MIN;
    let seconds = nanos / SEC;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MIN;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// `translateTimestampSince`: the age of `t` at `now`, `<unknown>` for an unset time.
pub fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t).as_nanos()),
        None => "<unknown>".to_string(),
    }
}

fn age(obj: &Value, now: Timestamp) -> Value {
    Value::String(since(time(obj, &["metadata", "creationTimestamp"]), now))
}

fn name(obj: &Value) -> Value {
    Value::String(meta::name(obj).to_string())
}

/// `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key.
fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = map(sel, &["matchLabels"]) {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in arr(sel, &["matchExpressions"]) {
        let key = st(e, &["key"]);
        let mut values: Vec<&str> = arr(e, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let values = values.join(",");
        let r = match st(e, &["operator"]) {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key.to_string(), r));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when it selects everything or
/// nothing.
fn format_label_selector(sel: Option<&Value>) -> String {
    or_none(&selector_string(sel))
}

/// `layoutContainerCells`: container names and images, comma-separated.
fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| st(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| st(c, &["image"])).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

/// `helper.GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, s)| *s)
    .collect::<Vec<_>>()
    .join(",")
}

/// `a,b,c + N more...` lists of endpoints and ports; `<unset>` when empty.
fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count.saturating_sub(max))
    } else if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

/// The addresses of a load balancer status, sorted and de-duplicated (never clipped: the
/// server prints wide).
fn load_balancer(status: Option<&Value>) -> String {
    let mut set: Vec<&str> = status
        .map(|s| arr(s, &["ingress"]))
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| {
            let ip = st(i, &["ip"]);
            let host = st(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.sort_unstable();
    set.dedup();
    set.join(",")
}

// ---------------------------------------------------------------------------------------------
// Printers.

fn default_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let created = time(obj, &["metadata", "creationTimestamp"])
        .map(meta::format_time)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![name(obj), json!(created)]
}

fn is_restartable_init(spec: &Value) -> bool {
    st(spec, &["restartPolicy"]) == "Always"
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn condition_true(conditions: &[Value], kind: &str) -> bool {
    conditions
        .iter()
        .find(|c| st(c, &["type"]) == kind)
        .is_some_and(|c| st(c, &["status"]) == "True")
}

fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let init_specs = arr(pod, &["spec", "initContainers"]);
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| st(c, &["name"]) == name && is_restartable_init(c))
    };
    let total = arr(pod, &["spec", "containers"]).len()
        + init_specs.iter().filter(|c| is_restartable_init(c)).count();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let phase = st(pod, &["status", "phase"]);
    let status_reason = st(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.to_string()
    } else {
        status_reason.to_string()
    };
    let conditions = arr(pod, &["status", "conditions"]);
    if conditions
        .iter()
        .any(|c| st(c, &["type"]) == "PodScheduled" && st(c, &["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    for (i, cs) in arr(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int(cs, &["restartCount"]);
        let finished = time(cs, &["lastState", "terminated", "finishedAt"]);
        restarts += count;
        last_restart = later(last_restart, finished);
        let is_sidecar = restartable(st(cs, &["name"]));
        if is_sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, finished);
        }
        let terminated = get(cs, &["state", "terminated"]).filter(|t| t.is_object());
        let waiting_reason = get(cs, &["state", "waiting"])
            .filter(|w| w.is_object())
            .map(|w| st(w, &["reason"]));
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && boolean(cs, &["started"]) {
            if boolean(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = st(t, &["reason"]);
            reason = if r.is_empty() {
                let signal = int(t, &["signal"]);
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int(t, &["exitCode"]))
                }
            } else {
                format!("Init:{r}")
            };
        } else if let Some(w) = waiting_reason.filter(|w| !w.is_empty() && *w != "PodInitializing")
        {
            reason = format!("Init:{w}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in arr(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(cs, &["restartCount"]);
            last_restart = later(
                last_restart,
                time(cs, &["lastState", "terminated", "finishedAt"]),
            );
            let waiting = get(cs, &["state", "waiting"]).filter(|w| w.is_object());
            let terminated = get(cs, &["state", "terminated"]).filter(|t| t.is_object());
            let running = get(cs, &["state", "running"]).is_some_and(Value::is_object);
            if let Some(w) = waiting.filter(|w| !st(w, &["reason"]).is_empty()) {
                reason = st(w, &["reason"]).to_string();
            } else if let Some(t) = terminated {
                let r = st(t, &["reason"]);
                reason = if !r.is_empty() {
                    r.to_string()
                } else if int(t, &["signal"]) != 0 {
                    format!("Signal:{}", int(t, &["signal"]))
                } else {
                    format!("ExitCode:{}", int(t, &["exitCode"]))
                };
            } else if boolean(cs, &["ready"]) && running {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = get(pod, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null());
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    // v1 objects that only carry `podIP` convert to a one-entry `podIPs`.
    let pod_ip = arr(pod, &["status", "podIPs"])
        .first()
        .map_or_else(|| st(pod, &["status", "podIP"]), |ip| st(ip, &["ip"]));
    let gates = arr(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| {
                let t = st(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| st(c, &["type"]) == t)
                    .is_some_and(|c| st(c, &["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };
    vec![
        name(pod),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        age(pod, now),
        json!(or_none(pod_ip)),
        json!(or_none(st(pod, &["spec", "nodeName"]))),
        json!(or_none(st(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ]
}

fn namespace_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(st(obj, &["status", "phase"])),
        age(obj, now),
    ]
}

fn node_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(ready) = arr(obj, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| st(c, &["type"]) == "Ready")
    {
        status.push(if st(ready, &["status"]) == "True" {
            "Ready".to_string()
        } else {
            "NotReady".to_string()
        });
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if boolean(obj, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled".to_string());
    }
    let mut roles: Vec<&str> = map(obj, &["metadata", "labels"])
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                (!role.is_empty()).then_some(role)
            } else if k == "kubernetes.io/role" {
                v.as_str().filter(|v| !v.is_empty())
            } else {
                None
            }
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    let address = |kind: &str| {
        arr(obj, &["status", "addresses"])
            .iter()
            .find(|a| st(a, &["type"]) == kind)
            .map_or_else(|| "<none>".to_string(), |a| st(a, &["address"]).to_string())
    };
    let info = |field: &str| {
        let v = st(obj, &["status", "nodeInfo", field]);
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        name(obj),
        json!(status.join(",")),
        json!(or_none(&roles.join(","))),
        age(obj, now),
        json!(st(obj, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

fn service_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let svc_type = st(obj, &["spec", "type"]);
    // v1 objects that only carry `clusterIP` convert to a one-entry `clusterIPs`.
    let cluster_ip = arr(obj, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| {
            get(obj, &["spec", "clusterIP"])
                .and_then(Value::as_str)
                .filter(|ip| !ip.is_empty())
        })
        .unwrap_or("<none>");
    let external_ips: Vec<&str> = arr(obj, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" => or_none(&external_ips.join(",")),
        "LoadBalancer" => {
            let lb = load_balancer(get(obj, &["status", "loadBalancer"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').collect()
                };
                all.extend(external_ips.iter().copied());
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => st(obj, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(obj, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let protocol = st(p, &["protocol"]);
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    vec![
        name(obj),
        json!(svc_type),
        json!(cluster_ip),
        json!(external),
        json!(or_none(&ports.join(","))),
        age(obj, now),
        json!(format_labels(map(obj, &["spec", "selector"]))),
    ]
}

/// `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn endpoints_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let subsets = arr(obj, &["subsets"]);
    let text = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        const MAX: usize = 3;
        let mut list: Vec<String> = Vec::new();
        let mut more = false;
        let mut count = 0usize;
        for ss in subsets {
            let addresses = arr(ss, &["addresses"]);
            let ports = arr(ss, &["ports"]);
            if ports.is_empty() {
                count += addresses.len();
                for a in addresses {
                    if list.len() == MAX {
                        more = true;
                        break;
                    }
                    list.push(st(a, &["ip"]).to_string());
                }
                continue;
            }
            for p in ports {
                count += addresses.len();
                for a in addresses {
                    if list.len() == MAX {
                        more = true;
                        break;
                    }
                    list.push(join_host_port(st(a, &["ip"]), int(p, &["port"])));
                }
            }
        }
        let ret = list.join(",");
        if more {
            format!("{ret} + {} more...", count.saturating_sub(MAX))
        } else {
            ret
        }
    };
    vec![name(obj), json!(text), age(obj, now)]
}

fn config_map_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let n = map_len(obj, &["data"]) + map_len(obj, &["binaryData"]);
    vec![name(obj), json!(n), age(obj, now)]
}

fn secret_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(st(obj, &["type"])),
        json!(map_len(obj, &["data"])),
        age(obj, now),
    ]
}

/// Core and `events.k8s.io` events: the latter's fields are read under their new names.
fn event_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let new_api = st(obj, &["apiVersion"]).starts_with("events.k8s.io/");
    let field = |core: &'static str, events: &'static str| if new_api { events } else { core };
    let micro_since = |path: &[&str]| since(time(obj, path), now);

    let first_ts = time(obj, &[field("firstTimestamp", "deprecatedFirstTimestamp")]);
    let first = match first_ts {
        Some(t) => since(Some(t), now),
        None => micro_since(&["eventTime"]),
    };
    let mut last = match time(obj, &[field("lastTimestamp", "deprecatedLastTimestamp")]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int(obj, &[field("count", "deprecatedCount")]);
    if get(obj, &["series"]).is_some_and(Value::is_object) {
        last = micro_since(&["series", "lastObservedTime"]);
        count = int(obj, &["series", "count"]);
    } else if count == 0 {
        count = 1;
    }
    let regarding = get(obj, &[field("involvedObject", "regarding")]).unwrap_or(&Value::Null);
    let kind = st(regarding, &["kind"]).to_lowercase();
    let target_name = st(regarding, &["name"]);
    let target = if target_name.is_empty() {
        kind
    } else {
        format!("{kind}/{target_name}")
    };
    let source = get(obj, &[field("source", "deprecatedSource")]).unwrap_or(&Value::Null);
    let component = first_non_empty(
        st(source, &["component"]),
        st(obj, &[field("reportingComponent", "reportingController")]),
    );
    let host = first_non_empty(st(source, &["host"]), st(obj, &["reportingInstance"]));
    let source_text = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(st(obj, &["type"])),
        json!(st(obj, &["reason"])),
        json!(target),
        json!(st(regarding, &["fieldPath"])),
        json!(source_text),
        json!(st(obj, &[field("message", "note")]).trim()),
        json!(first),
        json!(count),
        name(obj),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

fn service_account_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(arr(obj, &["secrets"]).len()),
        age(obj, now),
    ]
}

const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn persistent_volume_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match get(obj, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", st(c, &["namespace"]), st(c, &["name"])),
        None => String::new(),
    };
    let deleting = get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null());
    let phase = if deleting {
        "Terminating"
    } else {
        st(obj, &["status", "phase"])
    };
    let class = meta::annotation(obj, BETA_STORAGE_CLASS)
        .unwrap_or_else(|| st(obj, &["spec", "storageClassName"]));
    let vac = get(obj, &["spec", "volumeAttributesClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    let volume_mode = get(obj, &["spec", "volumeMode"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    vec![
        name(obj),
        json!(quantity(obj, &["spec", "capacity", "storage"])),
        json!(access_modes(arr(obj, &["spec", "accessModes"]))),
        json!(st(obj, &["spec", "persistentVolumeReclaimPolicy"])),
        json!(phase),
        json!(claim),
        json!(class),
        json!(vac),
        json!(st(obj, &["status", "reason"])),
        age(obj, now),
        json!(volume_mode),
    ]
}

fn pvc_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let deleting = get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null());
    let phase = if deleting {
        "Terminating"
    } else {
        st(obj, &["status", "phase"])
    };
    let volume_name = st(obj, &["spec", "volumeName"]);
    let (capacity, modes) = if volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(obj, &["status", "capacity", "storage"]),
            access_modes(arr(obj, &["status", "accessModes"])),
        )
    };
    let class = meta::annotation(obj, BETA_STORAGE_CLASS)
        .unwrap_or_else(|| st(obj, &["spec", "storageClassName"]));
    let vac = get(obj, &["spec", "volumeAttributesClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    let volume_mode = get(obj, &["spec", "volumeMode"])
        .and_then(Value::as_str)
        .unwrap_or("<unset>");
    vec![
        name(obj),
        json!(phase),
        json!(volume_name),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(vac),
        age(obj, now),
        json!(volume_mode),
    ]
}

fn resource_quota_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut requests: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    if let Some(hard) = map(obj, &["status", "hard"]) {
        let mut resources: Vec<&String> = hard.keys().collect();
        resources.sort();
        for r in resources {
            let used = quantity(obj, &["status", "used", r]);
            let hard = quantity(obj, &["status", "hard", r]);
            let entry = format!("{r}: {used}/{hard}");
            match r.split_once('.') {
                Some(("limits", _)) => limits.push(entry),
                _ => requests.push(entry),
            }
        }
    }
    vec![
        name(obj),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
        age(obj, now),
    ]
}

fn replicas(obj: &Value) -> i64 {
    get(obj, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn deployment_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        json!(format!(
            "{}/{}",
            int(obj, &["status", "readyReplicas"]),
            replicas(obj)
        )),
        json!(int(obj, &["status", "updatedReplicas"])),
        json!(int(obj, &["status", "availableReplicas"])),
        age(obj, now),
        names,
        images,
        json!(selector_string(get(obj, &["spec", "selector"]))),
    ]
}

fn replica_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        json!(replicas(obj)),
        json!(int(obj, &["status", "replicas"])),
        json!(int(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        json!(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

fn stateful_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        json!(format!(
            "{}/{}",
            int(obj, &["status", "readyReplicas"]),
            replicas(obj)
        )),
        age(obj, now),
        names,
        images,
    ]
}

fn daemon_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        json!(int(obj, &["status", "desiredNumberScheduled"])),
        json!(int(obj, &["status", "currentNumberScheduled"])),
        json!(int(obj, &["status", "numberReady"])),
        json!(int(obj, &["status", "updatedNumberScheduled"])),
        json!(int(obj, &["status", "numberAvailable"])),
        json!(format_labels(map(
            obj,
            &["spec", "template", "spec", "nodeSelector"]
        ))),
        age(obj, now),
        names,
        images,
        json!(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

fn controller_revision_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let controller = arr(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| boolean(r, &["controller"]))
        .map_or_else(
            || "<none>".to_string(),
            |r| {
                let (group, _) = crate::kinds::split_api_version(st(r, &["apiVersion"]));
                let kind = st(r, &["kind"]);
                let group_kind = if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                };
                if group_kind.is_empty() {
                    st(r, &["name"]).to_string()
                } else {
                    format!("{}/{}", group_kind.to_lowercase(), st(r, &["name"]))
                }
            },
        );
    vec![
        name(obj),
        json!(controller),
        json!(int(obj, &["revision"])),
        age(obj, now),
    ]
}

fn job_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int(obj, &["status", "succeeded"]);
    let completions = match get(obj, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = int(obj, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = time(obj, &["status", "startTime"]);
    let duration = match (start, time(obj, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now.duration_since(s).as_nanos()),
        (Some(s), Some(c)) => human_duration(c.duration_since(s).as_nanos()),
    };
    let conditions = arr(obj, &["status", "conditions"]);
    let deleting = get(obj, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null());
    let status = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if deleting {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(arr(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        json!(status),
        json!(completions),
        json!(duration),
        age(obj, now),
        names,
        images,
        json!(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

fn cron_job_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match time(obj, &["status", "lastScheduleTime"]) {
        Some(t) => since(Some(t), now),
        None => "<none>".to_string(),
    };
    let time_zone = get(obj, &["spec", "timeZone"])
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let suspend = match get(obj, &["spec", "suspend"]).and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let template = get(obj, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
    let (names, images) = container_cells(arr(template, &["template", "spec", "containers"]));
    vec![
        name(obj),
        json!(st(obj, &["spec", "schedule"])),
        json!(time_zone),
        json!(suspend),
        json!(arr(obj, &["status", "active"]).len()),
        json!(last_schedule),
        age(obj, now),
        names,
        images,
        json!(format_label_selector(get(template, &["selector"]))),
    ]
}

/// `formatHPAMetrics` over `autoscaling/v2` metric specs and statuses.
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let q = |v: &Value, path: &[&str]| text(get(v, path));
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let entry = match st(spec, &["type"]) {
            kind @ ("External" | "Object") => {
                let field = if kind == "External" {
                    "external"
                } else {
                    "object"
                };
                let current_of = |what: &str| {
                    status
                        .and_then(|s| get(s, &[field]))
                        .filter(|s| s.is_object())
                        .and_then(|s| q(s, &["current", what]))
                };
                match q(spec, &[field, "target", "averageValue"]) {
                    Some(target) => {
                        let current =
                            current_of("averageValue").unwrap_or_else(|| "<unknown>".into());
                        format!("{current}/{target} (avg)")
                    }
                    None => {
                        let has_status = status
                            .and_then(|s| get(s, &[field]))
                            .is_some_and(Value::is_object);
                        let current = if has_status {
                            current_of("value").unwrap_or_else(|| "0".into())
                        } else {
                            "<unknown>".into()
                        };
                        let target =
                            q(spec, &[field, "target", "value"]).unwrap_or_else(|| "0".into());
                        format!("{current}/{target}")
                    }
                }
            }
            "Pods" => {
                let current = match status
                    .and_then(|s| get(s, &["pods"]))
                    .filter(|s| s.is_object())
                {
                    Some(s) => q(s, &["current", "averageValue"]).unwrap_or_else(|| "0".into()),
                    None => "<unknown>".into(),
                };
                let target =
                    q(spec, &["pods", "target", "averageValue"]).unwrap_or_else(|| "0".into());
                format!("{current}/{target}")
            }
            kind @ ("Resource" | "ContainerResource") => {
                let field = if kind == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let resource = st(spec, &[field, "name"]);
                let current_status = status
                    .and_then(|s| get(s, &[field]))
                    .filter(|s| s.is_object());
                match q(spec, &[field, "target", "averageValue"]) {
                    Some(target) => {
                        let current = match current_status {
                            Some(s) => {
                                q(s, &["current", "averageValue"]).unwrap_or_else(|| "0".into())
                            }
                            None => "<unknown>".into(),
                        };
                        format!("{resource}: {current}/{target}")
                    }
                    None => {
                        let current = current_status
                            .and_then(|s| get(s, &["current", "averageUtilization"]))
                            .and_then(Value::as_i64)
                            .map_or_else(|| "<unknown>".to_string(), |u| format!("{u}%"));
                        let target = get(spec, &[field, "target", "averageUtilization"])
                            .and_then(Value::as_i64)
                            .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                        format!("{resource}: {current}/{target}")
                    }
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        format!("{} + {} more...", list.join(", "), count - MAX)
    } else {
        list.join(", ")
    }
}

fn hpa_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        st(obj, &["spec", "scaleTargetRef", "kind"]),
        st(obj, &["spec", "scaleTargetRef", "name"])
    );
    let min_pods = get(obj, &["spec", "minReplicas"])
        .and_then(Value::as_i64)
        .map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    vec![
        name(obj),
        json!(reference),
        json!(hpa_metrics(
            arr(obj, &["spec", "metrics"]),
            arr(obj, &["status", "currentMetrics"])
        )),
        json!(min_pods),
        json!(int(obj, &["spec", "maxReplicas"])),
        json!(int(obj, &["status", "currentReplicas"])),
        age(obj, now),
    ]
}

fn lease_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(st(obj, &["spec", "holderIdentity"])),
        age(obj, now),
    ]
}

fn endpoint_slice_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let mut ports: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for p in arr(obj, &["ports"]) {
        if ports.len() < MAX {
            let num = match (
                get(p, &["port"]).and_then(Value::as_i64),
                get(p, &["name"]).and_then(Value::as_str),
            ) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            };
            ports.push(num);
        } else if ports.len() == MAX {
            more = true;
        }
        count += 1;
    }
    let ports = list_with_more(&ports, more, count, MAX);
    let mut endpoints: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in arr(obj, &["endpoints"]) {
        for a in arr(e, &["addresses"]).iter().filter_map(Value::as_str) {
            if endpoints.len() < MAX {
                endpoints.push(a.to_string());
            } else if endpoints.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    let endpoints = list_with_more(&endpoints, more, count, MAX);
    vec![
        name(obj),
        json!(st(obj, &["addressType"])),
        json!(ports),
        json!(endpoints),
        age(obj, now),
    ]
}

fn ingress_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let class = get(obj, &["spec", "ingressClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let rules = arr(obj, &["spec", "rules"]);
    const MAX: usize = 3;
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = st(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!(
            "{} + {} more...",
            hosts.join(","),
            rules.len().saturating_sub(MAX)
        )
    } else {
        hosts.join(",")
    };
    let ports = if arr(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj),
        json!(class),
        json!(hosts),
        json!(load_balancer(get(obj, &["status", "loadBalancer"]))),
        json!(ports),
        age(obj, now),
    ]
}

fn ingress_class_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match get(obj, &["spec", "parameters"]).filter(|p| p.is_object()) {
        Some(p) => {
            let mut s = st(p, &["kind"]).to_string();
            if let Some(group) = get(p, &["apiGroup"]).and_then(Value::as_str) {
                s = format!("{s}.{group}");
            }
            format!("{s}/{}", st(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    vec![
        name(obj),
        json!(st(obj, &["spec", "controller"])),
        json!(parameters),
        age(obj, now),
    ]
}

fn network_policy_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let selector = get(obj, &["spec", "podSelector"])
        .cloned()
        .unwrap_or_else(|| json!({}));
    vec![
        name(obj),
        json!(format_label_selector(Some(&selector))),
        age(obj, now),
    ]
}

fn binding_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        st(obj, &["roleRef", "kind"]),
        st(obj, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr(obj, &["subjects"]) {
        match st(s, &["kind"]) {
            "User" => users.push(st(s, &["name"]).to_string()),
            "Group" => groups.push(st(s, &["name"]).to_string()),
            "ServiceAccount" => {
                sas.push(format!("{}/{}", st(s, &["namespace"]), st(s, &["name"])));
            }
            _ => {}
        }
    }
    vec![
        name(obj),
        json!(role),
        age(obj, now),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

fn pdb_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let int_or_string =
        |field: &str| text(get(obj, &["spec", field])).unwrap_or_else(|| "N/A".to_string());
    vec![
        name(obj),
        json!(int_or_string("minAvailable")),
        json!(int_or_string("maxUnavailable")),
        json!(int(obj, &["status", "disruptionsAllowed"])),
        age(obj, now),
    ]
}

fn storage_class_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let is_default = meta::annotation(obj, "storageclass.kubernetes.io/is-default-class")
        == Some("true")
        || meta::annotation(obj, "storageclass.beta.kubernetes.io/is-default-class")
            == Some("true");
    let mut shown = meta::name(obj).to_string();
    if is_default {
        shown.push_str(" (default)");
    }
    let reclaim = get(obj, &["reclaimPolicy"])
        .and_then(Value::as_str)
        .unwrap_or("Delete");
    let binding = get(obj, &["volumeBindingMode"])
        .and_then(Value::as_str)
        .unwrap_or("Immediate");
    vec![
        json!(shown),
        json!(st(obj, &["provisioner"])),
        json!(reclaim),
        json!(binding),
        json!(boolean(obj, &["allowVolumeExpansion"])),
        age(obj, now),
    ]
}
