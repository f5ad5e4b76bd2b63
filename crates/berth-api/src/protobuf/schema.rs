//! Static description of the Kubernetes protobuf messages Berth decodes: field number → JSON
//! name and type. Numbers are those of Kubernetes' `generated.proto` files (k8s.io/api core/v1,
//! apps/v1, batch/v1, rbac/v1, networking/v1, policy/v1, scheduling/v1; apimachinery meta/v1,
//! resource, intstr). Covers what `kubectl create <generator>` emits, not whole APIs; must not
//! contain decoding logic.

/// How a field's value is encoded and rendered in JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// A string; `""` means unset.
    Str,
    /// Bytes, base64 in JSON.
    Bytes,
    /// int32 behind a pointer in Go: kept even when zero.
    I32,
    /// Plain int32 with `omitempty`: zero means unset.
    I32Z,
    /// int64 behind a pointer in Go: kept even when zero.
    I64,
    /// Plain int64 with `omitempty`: zero means unset.
    I64Z,
    /// bool behind a pointer: kept even when false.
    Bool,
    /// Plain bool with `omitempty`: false means unset.
    BoolZ,
    /// A nested message, a JSON object.
    Msg(&'static Message),
    /// A message whose fields are inlined into the parent's JSON object.
    Inline(&'static Message),
    /// `metav1.Time`, RFC 3339.
    Time,
    /// `resource.Quantity`, a string.
    Quantity,
    /// `intstr.IntOrString`, a number or a string.
    IntOrString,
    /// A message whose field 1 holds JSON bytes (`metav1.FieldsV1`, `runtime.RawExtension`),
    /// rendered as that JSON value.
    RawJson,
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>`, values base64.
    MapBytes,
    /// `map<string, Quantity>`.
    MapQuantity,
}

impl Ty {
    /// Whether the field is a protobuf map (repeated key/value entries).
    pub(crate) fn is_map(self) -> bool {
        matches!(self, Ty::MapStr | Ty::MapBytes | Ty::MapQuantity)
    }
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// The protobuf field number.
    pub(crate) num: u32,
    /// The JSON field name.
    pub(crate) name: &'static str,
    /// The value type.
    pub(crate) ty: Ty,
    /// Whether the field is `repeated` (a JSON array).
    pub(crate) repeated: bool,
}

/// A message type: its Go/proto name (for errors) and its known fields.
#[derive(Debug)]
pub(crate) struct Message {
    /// The message name, e.g. `k8s.io.api.core.v1.ConfigMap`.
    pub(crate) name: &'static str,
    /// The fields Berth understands.
    pub(crate) fields: &'static [Field],
}

const fn f(num: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn r(num: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

use Ty::*;

// ---- apimachinery meta/v1 ----

static OBJECT_META: Message = Message {
    name: "meta.v1.ObjectMeta",
    fields: &[
        f(1, "name", Str),
        f(2, "generateName", Str),
        f(3, "namespace", Str),
        f(4, "selfLink", Str),
        f(5, "uid", Str),
        f(6, "resourceVersion", Str),
        f(7, "generation", I64Z),
        f(8, "creationTimestamp", Time),
        f(9, "deletionTimestamp", Time),
        f(10, "deletionGracePeriodSeconds", I64),
        f(11, "labels", MapStr),
        f(12, "annotations", MapStr),
        r(13, "ownerReferences", Msg(&OWNER_REFERENCE)),
        r(14, "finalizers", Str),
        r(17, "managedFields", Msg(&MANAGED_FIELDS_ENTRY)),
    ],
};

static OWNER_REFERENCE: Message = Message {
    name: "meta.v1.OwnerReference",
    fields: &[
        f(1, "kind", Str),
        f(3, "name", Str),
        f(4, "uid", Str),
        f(5, "apiVersion", Str),
        f(6, "controller", Bool),
        f(7, "blockOwnerDeletion", Bool),
    ],
};

static MANAGED_FIELDS_ENTRY: Message = Message {
    name: "meta.v1.ManagedFieldsEntry",
    fields: &[
        f(1, "manager", Str),
        f(2, "operation", Str),
        f(3, "apiVersion", Str),
        f(4, "time", Time),
        f(6, "fieldsType", Str),
        f(7, "fieldsV1", RawJson),
        f(8, "subresource", Str),
    ],
};

static LABEL_SELECTOR: Message = Message {
    name: "meta.v1.LabelSelector",
    fields: &[
        f(1, "matchLabels", MapStr),
        r(2, "matchExpressions", Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "meta.v1.LabelSelectorRequirement",
    fields: &[f(1, "key", Str), f(2, "operator", Str), r(3, "values", Str)],
};

// ---- core/v1 ----

static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "core.v1.LocalObjectReference",
    fields: &[f(1, "name", Str)],
};

static OBJECT_REFERENCE: Message = Message {
    name: "core.v1.ObjectReference",
    fields: &[
        f(1, "kind", Str),
        f(2, "namespace", Str),
        f(3, "name", Str),
        f(4, "uid", Str),
        f(5, "apiVersion", Str),
        f(6, "resourceVersion", Str),
        f(7, "fieldPath", Str),
    ],
};

static CONFIG_MAP: Message = Message {
    name: "core.v1.ConfigMap",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "data", MapStr),
        f(3, "binaryData", MapBytes),
        f(4, "immutable", Bool),
    ],
};

static SECRET: Message = Message {
    name: "core.v1.Secret",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "data", MapBytes),
        f(3, "type", Str),
        f(4, "stringData", MapStr),
        f(5, "immutable", Bool),
    ],
};

static NAMESPACE: Message = Message {
    name: "core.v1.Namespace",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&NAMESPACE_SPEC)),
        f(3, "status", Msg(&NAMESPACE_STATUS)),
    ],
};

static NAMESPACE_SPEC: Message = Message {
    name: "core.v1.NamespaceSpec",
    fields: &[r(1, "finalizers", Str)],
};

static NAMESPACE_STATUS: Message = Message {
    name: "core.v1.NamespaceStatus",
    fields: &[f(1, "phase", Str)],
};

static SERVICE_ACCOUNT: Message = Message {
    name: "core.v1.ServiceAccount",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        r(2, "secrets", Msg(&OBJECT_REFERENCE)),
        r(3, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        f(4, "automountServiceAccountToken", Bool),
    ],
};

static POD_TEMPLATE_SPEC: Message = Message {
    name: "core.v1.PodTemplateSpec",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&POD_SPEC)),
    ],
};

static POD_SPEC: Message = Message {
    name: "core.v1.PodSpec",
    fields: &[
        r(2, "containers", Msg(&CONTAINER)),
        f(3, "restartPolicy", Str),
        f(4, "terminationGracePeriodSeconds", I64),
        f(5, "activeDeadlineSeconds", I64),
        f(6, "dnsPolicy", Str),
        f(7, "nodeSelector", MapStr),
        f(8, "serviceAccountName", Str),
        f(9, "serviceAccount", Str),
        f(10, "nodeName", Str),
        f(11, "hostNetwork", BoolZ),
        f(12, "hostPID", BoolZ),
        f(13, "hostIPC", BoolZ),
        r(15, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", Str),
        f(17, "subdomain", Str),
        f(19, "schedulerName", Str),
        r(20, "initContainers", Msg(&CONTAINER)),
        f(21, "automountServiceAccountToken", Bool),
        f(24, "priorityClassName", Str),
        f(25, "priority", I32),
        f(27, "shareProcessNamespace", Bool),
        f(29, "runtimeClassName", Str),
        f(30, "enableServiceLinks", Bool),
        f(31, "preemptionPolicy", Str),
        f(35, "setHostnameAsFQDN", Bool),
        f(37, "hostUsers", Bool),
    ],
};

static CONTAINER: Message = Message {
    name: "core.v1.Container",
    fields: &[
        f(1, "name", Str),
        f(2, "image", Str),
        r(3, "command", Str),
        r(4, "args", Str),
        f(5, "workingDir", Str),
        r(6, "ports", Msg(&CONTAINER_PORT)),
        r(7, "env", Msg(&ENV_VAR)),
        f(8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        r(9, "volumeMounts", Msg(&VOLUME_MOUNT)),
        f(13, "terminationMessagePath", Str),
        f(14, "imagePullPolicy", Str),
        f(16, "stdin", BoolZ),
        f(17, "stdinOnce", BoolZ),
        f(18, "tty", BoolZ),
        f(20, "terminationMessagePolicy", Str),
        f(24, "restartPolicy", Str),
    ],
};

static CONTAINER_PORT: Message = Message {
    name: "core.v1.ContainerPort",
    fields: &[
        f(1, "name", Str),
        f(2, "hostPort", I32Z),
        f(3, "containerPort", I32),
        f(4, "protocol", Str),
        f(5, "hostIP", Str),
    ],
};

static ENV_VAR: Message = Message {
    name: "core.v1.EnvVar",
    fields: &[f(1, "name", Str), f(2, "value", Str)],
};

static RESOURCE_REQUIREMENTS: Message = Message {
    name: "core.v1.ResourceRequirements",
    fields: &[f(1, "limits", MapQuantity), f(2, "requests", MapQuantity)],
};

static VOLUME_MOUNT: Message = Message {
    name: "core.v1.VolumeMount",
    fields: &[
        f(1, "name", Str),
        f(2, "readOnly", BoolZ),
        f(3, "mountPath", Str),
        f(4, "subPath", Str),
        f(5, "mountPropagation", Str),
        f(6, "subPathExpr", Str),
        f(7, "recursiveReadOnly", Str),
    ],
};

static SERVICE: Message = Message {
    name: "core.v1.Service",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&SERVICE_SPEC)),
        f(3, "status", Msg(&SERVICE_STATUS)),
    ],
};

static SERVICE_SPEC: Message = Message {
    name: "core.v1.ServiceSpec",
    fields: &[
        r(1, "ports", Msg(&SERVICE_PORT)),
        f(2, "selector", MapStr),
        f(3, "clusterIP", Str),
        f(4, "type", Str),
        r(5, "externalIPs", Str),
        f(7, "sessionAffinity", Str),
        f(8, "loadBalancerIP", Str),
        r(9, "loadBalancerSourceRanges", Str),
        f(10, "externalName", Str),
        f(11, "externalTrafficPolicy", Str),
        f(12, "healthCheckNodePort", I32Z),
        f(13, "publishNotReadyAddresses", BoolZ),
        r(18, "clusterIPs", Str),
        r(19, "ipFamilies", Str),
        f(17, "ipFamilyPolicy", Str),
        f(20, "allocateLoadBalancerNodePorts", Bool),
        f(21, "loadBalancerClass", Str),
        f(22, "internalTrafficPolicy", Str),
        f(23, "trafficDistribution", Str),
    ],
};

static SERVICE_PORT: Message = Message {
    name: "core.v1.ServicePort",
    fields: &[
        f(1, "name", Str),
        f(2, "protocol", Str),
        f(3, "port", I32),
        f(4, "targetPort", IntOrString),
        f(5, "nodePort", I32Z),
        f(6, "appProtocol", Str),
    ],
};

static SERVICE_STATUS: Message = Message {
    name: "core.v1.ServiceStatus",
    fields: &[f(1, "loadBalancer", Msg(&LOAD_BALANCER_STATUS))],
};

static LOAD_BALANCER_STATUS: Message = Message {
    name: "core.v1.LoadBalancerStatus",
    fields: &[],
};

static RESOURCE_QUOTA: Message = Message {
    name: "core.v1.ResourceQuota",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&RESOURCE_QUOTA_SPEC)),
        f(3, "status", Msg(&RESOURCE_QUOTA_STATUS)),
    ],
};

static RESOURCE_QUOTA_SPEC: Message = Message {
    name: "core.v1.ResourceQuotaSpec",
    fields: &[
        f(1, "hard", MapQuantity),
        r(2, "scopes", Str),
        f(3, "scopeSelector", Msg(&SCOPE_SELECTOR)),
    ],
};

static SCOPE_SELECTOR: Message = Message {
    name: "core.v1.ScopeSelector",
    fields: &[r(
        1,
        "matchExpressions",
        Msg(&SCOPED_RESOURCE_SELECTOR_REQUIREMENT),
    )],
};

static SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Message = Message {
    name: "core.v1.ScopedResourceSelectorRequirement",
    fields: &[
        f(1, "scopeName", Str),
        f(2, "operator", Str),
        r(3, "values", Str),
    ],
};

static RESOURCE_QUOTA_STATUS: Message = Message {
    name: "core.v1.ResourceQuotaStatus",
    fields: &[f(1, "hard", MapQuantity), f(2, "used", MapQuantity)],
};

// ---- apps/v1 ----

static DEPLOYMENT: Message = Message {
    name: "apps.v1.Deployment",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Msg(&DEPLOYMENT_STATUS)),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    name: "apps.v1.DeploymentSpec",
    fields: &[
        f(1, "replicas", I32),
        f(2, "selector", Msg(&LABEL_SELECTOR)),
        f(3, "template", Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", I32Z),
        f(6, "revisionHistoryLimit", I32),
        f(7, "paused", BoolZ),
        f(9, "progressDeadlineSeconds", I32),
    ],
};

static DEPLOYMENT_STRATEGY: Message = Message {
    name: "apps.v1.DeploymentStrategy",
    fields: &[
        f(1, "type", Str),
        f(2, "rollingUpdate", Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
};

static ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    name: "apps.v1.RollingUpdateDeployment",
    fields: &[
        f(1, "maxUnavailable", IntOrString),
        f(2, "maxSurge", IntOrString),
    ],
};

static DEPLOYMENT_STATUS: Message = Message {
    name: "apps.v1.DeploymentStatus",
    fields: &[
        f(1, "observedGeneration", I64Z),
        f(2, "replicas", I32Z),
        f(3, "updatedReplicas", I32Z),
        f(4, "availableReplicas", I32Z),
        f(5, "unavailableReplicas", I32Z),
        f(7, "readyReplicas", I32Z),
        f(8, "collisionCount", I32),
        f(9, "terminatingReplicas", I32),
    ],
};

// ---- batch/v1 ----

static JOB: Message = Message {
    name: "batch.v1.Job",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&JOB_SPEC)),
        f(3, "status", Msg(&JOB_STATUS)),
    ],
};

static JOB_SPEC: Message = Message {
    name: "batch.v1.JobSpec",
    fields: &[
        f(1, "parallelism", I32),
        f(2, "completions", I32),
        f(3, "activeDeadlineSeconds", I64),
        f(4, "selector", Msg(&LABEL_SELECTOR)),
        f(5, "manualSelector", Bool),
        f(6, "template", Msg(&POD_TEMPLATE_SPEC)),
        f(7, "backoffLimit", I32),
        f(8, "ttlSecondsAfterFinished", I32),
        f(9, "completionMode", Str),
        f(10, "suspend", Bool),
        f(12, "backoffLimitPerIndex", I32),
        f(13, "maxFailedIndexes", I32),
        f(14, "podReplacementPolicy", Str),
        f(15, "managedBy", Str),
    ],
};

static JOB_STATUS: Message = Message {
    name: "batch.v1.JobStatus",
    fields: &[
        f(2, "startTime", Time),
        f(3, "completionTime", Time),
        f(4, "active", I32Z),
        f(5, "succeeded", I32Z),
        f(6, "failed", I32Z),
        f(7, "completedIndexes", Str),
        f(9, "ready", I32),
        f(10, "failedIndexes", Str),
        f(11, "terminating", I32),
    ],
};

static CRON_JOB: Message = Message {
    name: "batch.v1.CronJob",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&CRON_JOB_SPEC)),
        f(3, "status", Msg(&CRON_JOB_STATUS)),
    ],
};

static CRON_JOB_SPEC: Message = Message {
    name: "batch.v1.CronJobSpec",
    fields: &[
        f(1, "schedule", Str),
        f(2, "startingDeadlineSeconds", I64),
        f(3, "concurrencyPolicy", Str),
        f(4, "suspend", Bool),
        f(5, "jobTemplate", Msg(&JOB_TEMPLATE_SPEC)),
        f(6, "successfulJobsHistoryLimit", I32),
        f(7, "failedJobsHistoryLimit", I32),
        f(8, "timeZone", Str),
    ],
};

static JOB_TEMPLATE_SPEC: Message = Message {
    name: "batch.v1.JobTemplateSpec",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&JOB_SPEC)),
    ],
};

static CRON_JOB_STATUS: Message = Message {
    name: "batch.v1.CronJobStatus",
    fields: &[
        r(1, "active", Msg(&OBJECT_REFERENCE)),
        f(4, "lastScheduleTime", Time),
        f(5, "lastSuccessfulTime", Time),
    ],
};

// ---- rbac/v1 ----

static POLICY_RULE: Message = Message {
    name: "rbac.v1.PolicyRule",
    fields: &[
        r(1, "verbs", Str),
        r(2, "apiGroups", Str),
        r(3, "resources", Str),
        r(4, "resourceNames", Str),
        r(5, "nonResourceURLs", Str),
    ],
};

static ROLE: Message = Message {
    name: "rbac.v1.Role",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        r(2, "rules", Msg(&POLICY_RULE)),
    ],
};

static CLUSTER_ROLE: Message = Message {
    name: "rbac.v1.ClusterRole",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        r(2, "rules", Msg(&POLICY_RULE)),
        f(3, "aggregationRule", Msg(&AGGREGATION_RULE)),
    ],
};

static AGGREGATION_RULE: Message = Message {
    name: "rbac.v1.AggregationRule",
    fields: &[r(1, "clusterRoleSelectors", Msg(&LABEL_SELECTOR))],
};

static SUBJECT: Message = Message {
    name: "rbac.v1.Subject",
    fields: &[
        f(1, "kind", Str),
        f(2, "apiGroup", Str),
        f(3, "name", Str),
        f(4, "namespace", Str),
    ],
};

static ROLE_REF: Message = Message {
    name: "rbac.v1.RoleRef",
    fields: &[f(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)],
};

static ROLE_BINDING: Message = Message {
    name: "rbac.v1.RoleBinding",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        r(2, "subjects", Msg(&SUBJECT)),
        f(3, "roleRef", Msg(&ROLE_REF)),
    ],
};

static CLUSTER_ROLE_BINDING: Message = Message {
    name: "rbac.v1.ClusterRoleBinding",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        r(2, "subjects", Msg(&SUBJECT)),
        f(3, "roleRef", Msg(&ROLE_REF)),
    ],
};

// ---- policy/v1 ----

static POD_DISRUPTION_BUDGET: Message = Message {
    name: "policy.v1.PodDisruptionBudget",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&POD_DISRUPTION_BUDGET_SPEC)),
        f(3, "status", Msg(&POD_DISRUPTION_BUDGET_STATUS)),
    ],
};

static POD_DISRUPTION_BUDGET_SPEC: Message = Message {
    name: "policy.v1.PodDisruptionBudgetSpec",
    fields: &[
        f(1, "minAvailable", IntOrString),
        f(2, "selector", Msg(&LABEL_SELECTOR)),
        f(3, "maxUnavailable", IntOrString),
        f(4, "unhealthyPodEvictionPolicy", Str),
    ],
};

static POD_DISRUPTION_BUDGET_STATUS: Message = Message {
    name: "policy.v1.PodDisruptionBudgetStatus",
    fields: &[
        f(1, "observedGeneration", I64Z),
        f(3, "disruptionsAllowed", I32),
        f(4, "currentHealthy", I32),
        f(5, "desiredHealthy", I32),
        f(6, "expectedPods", I32),
    ],
};

// ---- networking/v1 ----

static INGRESS: Message = Message {
    name: "networking.v1.Ingress",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "spec", Msg(&INGRESS_SPEC)),
        f(3, "status", Msg(&INGRESS_STATUS)),
    ],
};

static INGRESS_SPEC: Message = Message {
    name: "networking.v1.IngressSpec",
    fields: &[
        f(1, "defaultBackend", Msg(&INGRESS_BACKEND)),
        r(2, "tls", Msg(&INGRESS_TLS)),
        r(3, "rules", Msg(&INGRESS_RULE)),
        f(4, "ingressClassName", Str),
    ],
};

static INGRESS_BACKEND: Message = Message {
    name: "networking.v1.IngressBackend",
    fields: &[
        f(3, "resource", Msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
        f(4, "service", Msg(&INGRESS_SERVICE_BACKEND)),
    ],
};

static TYPED_LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "core.v1.TypedLocalObjectReference",
    fields: &[f(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)],
};

static INGRESS_SERVICE_BACKEND: Message = Message {
    name: "networking.v1.IngressServiceBackend",
    fields: &[f(1, "name", Str), f(2, "port", Msg(&SERVICE_BACKEND_PORT))],
};

static SERVICE_BACKEND_PORT: Message = Message {
    name: "networking.v1.ServiceBackendPort",
    fields: &[f(1, "name", Str), f(2, "number", I32Z)],
};

static INGRESS_TLS: Message = Message {
    name: "networking.v1.IngressTLS",
    fields: &[r(1, "hosts", Str), f(2, "secretName", Str)],
};

static INGRESS_RULE: Message = Message {
    name: "networking.v1.IngressRule",
    fields: &[
        f(1, "host", Str),
        f(2, "ingressRuleValue", Inline(&INGRESS_RULE_VALUE)),
    ],
};

static INGRESS_RULE_VALUE: Message = Message {
    name: "networking.v1.IngressRuleValue",
    fields: &[f(1, "http", Msg(&HTTP_INGRESS_RULE_VALUE))],
};

static HTTP_INGRESS_RULE_VALUE: Message = Message {
    name: "networking.v1.HTTPIngressRuleValue",
    fields: &[r(1, "paths", Msg(&HTTP_INGRESS_PATH))],
};

static HTTP_INGRESS_PATH: Message = Message {
    name: "networking.v1.HTTPIngressPath",
    fields: &[
        f(1, "path", Str),
        f(2, "backend", Msg(&INGRESS_BACKEND)),
        f(3, "pathType", Str),
    ],
};

static INGRESS_STATUS: Message = Message {
    name: "networking.v1.IngressStatus",
    fields: &[f(1, "loadBalancer", Msg(&INGRESS_LOAD_BALANCER_STATUS))],
};

static INGRESS_LOAD_BALANCER_STATUS: Message = Message {
    name: "networking.v1.IngressLoadBalancerStatus",
    fields: &[],
};

// ---- scheduling/v1 ----

static PRIORITY_CLASS: Message = Message {
    name: "scheduling.v1.PriorityClass",
    fields: &[
        f(1, "metadata", Msg(&OBJECT_META)),
        f(2, "value", I32),
        f(3, "globalDefault", BoolZ),
        f(4, "description", Str),
        f(5, "preemptionPolicy", Str),
    ],
};

/// The top-level kinds Berth decodes, by (apiVersion, kind).
pub(crate) static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "ConfigMap", &CONFIG_MAP),
    ("v1", "Secret", &SECRET),
    ("v1", "Namespace", &NAMESPACE),
    ("v1", "ServiceAccount", &SERVICE_ACCOUNT),
    ("v1", "Service", &SERVICE),
    ("v1", "ResourceQuota", &RESOURCE_QUOTA),
    ("apps/v1", "Deployment", &DEPLOYMENT),
    ("batch/v1", "Job", &JOB),
    ("batch/v1", "CronJob", &CRON_JOB),
    ("rbac.authorization.k8s.io/v1", "Role", &ROLE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", &CLUSTER_ROLE),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", &ROLE_BINDING),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &CLUSTER_ROLE_BINDING,
    ),
    ("policy/v1", "PodDisruptionBudget", &POD_DISRUPTION_BUDGET),
    ("networking.k8s.io/v1", "Ingress", &INGRESS),
    ("scheduling.k8s.io/v1", "PriorityClass", &PRIORITY_CLASS),
];

/// The message describing `kind` of `api_version`, if Berth decodes it.
pub(crate) fn top_level(api_version: &str, kind: &str) -> Option<&'static Message> {
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, m)| *m)
}
