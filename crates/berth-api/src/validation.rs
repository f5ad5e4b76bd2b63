//! Validation: what the API server rejects on create and update, per kind, with Kubernetes'
//! field paths and messages; and the name validators (DNS labels and subdomains, qualified
//! names, label values, config keys) the rest of the crate uses.
//!
//! This module only reports problems as [`StatusCause`]s; it must not modify objects (that is
//! `defaults`) nor decide the HTTP response (the caller wraps causes in `ApiError::invalid`).

use serde_json::Value;

use crate::kinds::ResourceKind;
use crate::status::StatusCause;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const QUALIFIED_NAME_FULL_MSG: &str = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_dns_label(s: &str, first_alpha: bool) -> bool {
    let b = s.as_bytes();
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            (if first_alpha {
                f.is_ascii_lowercase()
            } else {
                f != b'-'
            }) && l != b'-'
                && b.iter().all(|&c| ok_char(c))
        }
        _ => false,
    }
}

/// Checks an RFC 1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters), returning
/// Kubernetes' messages.
pub fn dns1123_label(s: &str) -> Vec<String> {
    length_and_format(s, 63, is_dns_label(s, false), DNS1123_LABEL_MSG)
}

/// Checks an RFC 1123 subdomain (dot-separated labels, at most 253 characters).
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let format_ok = s.split('.').all(|l| is_dns_label(l, false));
    length_and_format(s, 253, format_ok, DNS1123_SUBDOMAIN_MSG)
}

/// Checks an RFC 1035 label (`[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters).
pub fn dns1035_label(s: &str) -> Vec<String> {
    length_and_format(s, 63, is_dns_label(s, true), DNS1035_LABEL_MSG)
}

/// Kubernetes' two messages for a name-like string, in its order: longer than `max` bytes, then
/// `format_msg` unless `format_ok`.
fn length_and_format(s: &str, max: usize, format_ok: bool, format_msg: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > max {
        errs.push(max_len(max));
    }
    if !format_ok {
        errs.push(format_msg.to_string());
    }
    errs
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Checks a qualified name (`[prefix/]name`, e.g. a label or annotation key), returning
/// Kubernetes' messages.
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for e in dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {e}"));
                }
            }
            *name
        }
        _ => {
            errs.push(QUALIFIED_NAME_FULL_MSG.to_string());
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len(63)));
    }
    // Like Kubernetes, the pattern is checked even for an empty name.
    if !is_name_part(name) {
        errs.push(QUALIFIED_NAME_MSG.to_string());
    }
    errs
}

/// Checks a label key (a qualified name).
pub fn label_key(s: &str) -> Vec<String> {
    qualified_name(s)
}

/// Checks a label value (empty, or a name part of at most 63 characters).
pub fn label_value(s: &str) -> Vec<String> {
    length_and_format(s, 63, s.is_empty() || is_name_part(s), LABEL_VALUE_MSG)
}

/// Checks a ConfigMap or Secret data key (`[-._a-zA-Z0-9]+`, not `.` or `..`, at most 253).
pub fn config_key(s: &str) -> Vec<String> {
    let format_ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    let mut errs = length_and_format(s, 253, format_ok, CONFIG_KEY_MSG);
    if s == "." {
        errs.push("must not be '.'".to_string());
    } else if s == ".." {
        errs.push("must not be '..'".to_string());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// Checks a port name (IANA service name: at most 15 characters, lowercase alphanumerics and
/// `-`, at least one letter, no `--`, no leading or trailing `-`).
pub fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push(max_len(15));
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// Checks an environment variable name (Kubernetes 1.33 relaxed rule: printable ASCII other
/// than `=`).
pub fn env_var_name(s: &str) -> Vec<String> {
    if !s.is_empty() && s.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'=') {
        Vec::new()
    } else {
        vec![
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        ]
    }
}

/// Checks a name that is used as a path segment (RBAC objects): not `.` or `..`, no `/` or `%`.
pub fn path_segment_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s == "." || s == ".." {
        errs.push(format!("may not be '{s}'"));
    }
    for c in ["/", "%"] {
        if s.contains(c) {
            errs.push(format!("may not contain '{c}'"));
        }
    }
    errs
}

/// Checks a cron schedule as Kubernetes' CronJob validation does: five fields (minute, hour,
/// day of month, month, day of week, with `*`, ranges, lists, steps and month/day names) or a
/// macro (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`,
/// `@every <duration>`). Returns the parser's message on error.
pub fn cron_schedule(s: &str) -> Result<(), String> {
    let s = s.trim();
    if s.contains("TZ") {
        return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".to_string());
    }
    if let Some(macro_) = s.strip_prefix('@') {
        return match macro_ {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            m if m.starts_with("every ") && go_duration(m.trim_start_matches("every ")) => Ok(()),
            m if m.starts_with("every ") => Err(format!(
                "failed to parse duration @{m}: time: invalid duration \"{}\"",
                m.trim_start_matches("every ")
            )),
            _ => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u32, u32, &[&str], u32); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (i, (field, (min, max, names, name_base))) in fields.iter().zip(bounds).enumerate() {
        for part in field.split(',') {
            cron_part(part, min, max, names, name_base, i == 2 || i == 4)?;
        }
    }
    Ok(())
}

fn cron_part(
    part: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
    question_ok: bool,
) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((r, st)) => (r, Some(st)),
        None => (part, None),
    };
    let value = |v: &str| -> Result<u32, String> {
        if let Some(pos) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Ok(pos as u32 + name_base);
        }
        v.parse::<u32>().map_err(|_| {
            format!("failed to parse int from {v}: strconv.Atoi: parsing \"{v}\": invalid syntax")
        })
    };
    let (lo, hi) = if range == "*" || (question_ok && range == "?") {
        (min, max)
    } else if let Some((a, b)) = range.split_once('-') {
        (value(a)?, value(b)?)
    } else {
        let v = value(range)?;
        (v, if step.is_some() { max } else { v })
    };
    if lo < min {
        return Err(format!(
            "beginning of range ({lo}) below minimum ({min}): {part}"
        ));
    }
    if hi > max {
        return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
    }
    if lo > hi {
        return Err(format!(
            "beginning of range ({lo}) beyond end of range ({hi}): {part}"
        ));
    }
    if let Some(st) = step {
        match st.parse::<u32>() {
            Ok(0) => return Err(format!("step of range should be a positive number: {part}")),
            Ok(_) => {}
            Err(_) => {
                return Err(format!(
                    "failed to parse int from {st}: strconv.Atoi: parsing \"{st}\": invalid syntax"
                ));
            }
        }
    }
    Ok(())
}

/// True for a Go duration such as `1h30m`, `90s`, `1.5h`.
fn go_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Object validation

fn not_found(field: impl Into<String>, value: &Value) -> StatusCause {
    let shown = match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    StatusCause::new("FieldValueNotFound", field, format!("Not found: {shown}"))
}

fn too_long(field: impl Into<String>, limit: usize) -> StatusCause {
    StatusCause::new(
        "FieldValueTooLong",
        field,
        format!("Too long: may not be more than {limit} bytes"),
    )
}

fn required_msg(field: impl Into<String>, detail: &str) -> StatusCause {
    StatusCause::new(
        "FieldValueRequired",
        field,
        format!("Required value: {detail}"),
    )
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Checks the non-empty name of a list item at `field`: `check` gives its format errors, and a
/// name already in `seen` is a duplicate. The name is then added to `seen`.
fn unique_name<'a>(
    name: &'a str,
    field: String,
    check: fn(&str) -> Vec<String>,
    seen: &mut Vec<&'a str>,
    errs: &mut Vec<StatusCause>,
) {
    for m in check(name) {
        errs.push(StatusCause::invalid(field.clone(), &Value::from(name), m));
    }
    if seen.contains(&name) {
        errs.push(StatusCause::duplicate(field, &Value::from(name)));
    }
    seen.push(name);
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn obj_entries<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    v.get(key).and_then(Value::as_object).into_iter().flatten()
}

fn is_set(v: Option<&Value>) -> bool {
    v.is_some_and(|x| !x.is_null())
}

/// Validates `obj` of `kind` for create (`old` is `None`) or update (`old` is the stored
/// object). Returns the causes with Kubernetes' field paths, empty if the object is valid.
pub fn validate(kind: &ResourceKind, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    metadata(kind, obj, &mut errs);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match (kind.group, kind.kind) {
        ("", "Pod") => pod_spec(spec, "spec", PodContext::Pod, &mut errs),
        ("", "PodTemplate") => template(obj.get("template"), "template", None, &mut errs),
        ("", "ReplicationController") => {
            non_negative(spec, "replicas", "spec", &mut errs);
            template(
                spec.get("template"),
                "spec.template",
                Some(&["Always"]),
                &mut errs,
            );
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            workload(kind.kind, spec, &mut errs)
        }
        ("batch", "Job") => {
            job_spec(spec, "spec", true, &mut errs);
            generated_job_selector(obj, spec, &mut errs);
        }
        ("batch", "CronJob") => cron_job(obj, spec, &mut errs),
        ("", "Service") => service(spec, &mut errs),
        ("", "ConfigMap") => config_map(obj, &mut errs),
        ("", "Secret") => secret(obj, &mut errs),
        ("", "PersistentVolumeClaim") => pvc(spec, &mut errs),
        ("coordination.k8s.io", "Lease") => {
            if let Some(d) = spec.get("leaseDurationSeconds").and_then(Value::as_i64)
                && d <= 0
            {
                errs.push(StatusCause::invalid(
                    "spec.leaseDurationSeconds",
                    &Value::from(d),
                    "must be greater than 0",
                ));
            }
            non_negative(spec, "leaseTransitions", "spec", &mut errs);
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let plural = spec
                .pointer("/names/plural")
                .and_then(Value::as_str)
                .unwrap_or("");
            let group = str_of(spec, "group");
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !name.is_empty() && name != format!("{plural}.{group}") {
                errs.push(StatusCause::invalid(
                    "metadata.name",
                    &Value::from(name),
                    "must be spec.names.plural+\".\"+spec.group",
                ));
            }
        }
        ("", "Event") => event(obj, "involvedObject", &mut errs),
        ("events.k8s.io", "Event") => {
            event(obj, "regarding", &mut errs);
            for k in [
                "eventTime",
                "reportingController",
                "reportingInstance",
                "action",
                "reason",
            ] {
                if obj.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                    errs.push(StatusCause::required(k));
                }
            }
            not_supported(obj, "type", "", &["Normal", "Warning"], false, &mut errs);
        }
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            rbac_rules(obj, kind.kind == "Role", &mut errs)
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            role_binding(obj, kind.kind == "ClusterRoleBinding", &mut errs)
        }
        _ => {}
    }
    if let Some(old) = old {
        update(kind, obj, old, &mut errs);
    }
    errs
}

fn name_validator(kind: &ResourceKind) -> fn(&str) -> Vec<String> {
    match (kind.group, kind.kind) {
        ("", "Namespace") => dns1123_label,
        ("", "Service") => dns1035_label,
        ("rbac.authorization.k8s.io", _) => path_segment_name,
        _ => dns1123_subdomain,
    }
}

fn metadata(kind: &ResourceKind, obj: &Value, errs: &mut Vec<StatusCause>) {
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    let name = str_of(meta, "name");
    let generate = str_of(meta, "generateName");
    let check = name_validator(kind);
    if name.is_empty() {
        if generate.is_empty() {
            errs.push(required_msg(
                "metadata.name",
                "name or generateName is required",
            ));
        } else {
            // A prefix may end in `-`: validate it as if the dash were a letter.
            let masked = match generate.strip_suffix('-') {
                Some(p) => format!("{p}a"),
                None => generate.to_string(),
            };
            for m in check(&masked) {
                errs.push(StatusCause::invalid(
                    "metadata.generateName",
                    &Value::from(generate),
                    m,
                ));
            }
        }
    } else {
        for m in check(name) {
            errs.push(StatusCause::invalid("metadata.name", &Value::from(name), m));
        }
    }
    let ns = str_of(meta, "namespace");
    if kind.namespaced {
        if ns.is_empty() {
            errs.push(StatusCause::required("metadata.namespace"));
        } else {
            for m in dns1123_label(ns) {
                errs.push(StatusCause::invalid(
                    "metadata.namespace",
                    &Value::from(ns),
                    m,
                ));
            }
        }
    } else if !ns.is_empty() {
        errs.push(StatusCause::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    labels(meta.get("labels"), "metadata.labels", errs);
    let mut total = 0usize;
    for (k, v) in obj_entries(meta, "annotations") {
        for m in qualified_name(&k.to_ascii_lowercase()) {
            errs.push(StatusCause::invalid(
                "metadata.annotations",
                &Value::from(k.as_str()),
                m,
            ));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > 256 * 1024 {
        errs.push(too_long("metadata.annotations", 256 * 1024));
    }
    for (i, f) in items(meta, "finalizers").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        for m in qualified_name(f) {
            errs.push(StatusCause::invalid(
                format!("metadata.finalizers[{i}]"),
                &Value::from(f),
                m,
            ));
        }
    }
}

fn labels(labels: Option<&Value>, field: &str, errs: &mut Vec<StatusCause>) {
    for (k, v) in labels.and_then(Value::as_object).into_iter().flatten() {
        for m in label_key(k) {
            errs.push(StatusCause::invalid(field, &Value::from(k.as_str()), m));
        }
        match v.as_str() {
            Some(s) => {
                for m in label_value(s) {
                    errs.push(StatusCause::invalid(field, v, m));
                }
            }
            None => errs.push(StatusCause::invalid(field, v, "must be a string")),
        }
    }
}

fn non_negative(v: &Value, key: &str, path: &str, errs: &mut Vec<StatusCause>) {
    if let Some(n) = v.get(key).and_then(Value::as_i64)
        && n < 0
    {
        errs.push(StatusCause::invalid(
            format!("{path}.{key}"),
            &Value::from(n),
            "must be greater than or equal to 0",
        ));
    }
}

fn not_supported(
    v: &Value,
    key: &str,
    path: &str,
    allowed: &[&str],
    required: bool,
    errs: &mut Vec<StatusCause>,
) {
    let field = if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    };
    match v.get(key) {
        None | Some(Value::Null) => {
            if required {
                errs.push(StatusCause::required(field.clone()));
            }
        }
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(Value::String(s)) if s.is_empty() && required => {
            errs.push(StatusCause::required(field.clone()));
        }
        Some(x) => errs.push(StatusCause::not_supported(field, x, allowed)),
    }
}

// --- pods ------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum PodContext {
    Pod,
    /// A template whose restart policy must be one of these.
    Template(&'static [&'static str]),
}

/// Validates a pod template at `path` (`spec.template`), its labels and its spec.
fn template(
    t: Option<&Value>,
    path: &str,
    restart: Option<&'static [&'static str]>,
    errs: &mut Vec<StatusCause>,
) {
    let Some(t) = t.filter(|t| t.is_object()) else {
        errs.push(StatusCause::required(path.to_string()));
        return;
    };
    if let Some(meta) = t.get("metadata") {
        labels(meta.get("labels"), &format!("{path}.metadata.labels"), errs);
    }
    let spec = t.get("spec").unwrap_or(&Value::Null);
    pod_spec(
        spec,
        &format!("{path}.spec"),
        PodContext::Template(restart.unwrap_or(&["Always", "OnFailure", "Never"])),
        errs,
    );
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
/// The fields of a core/v1 `Volume` that each name a volume source; a volume sets exactly one
/// (defaulting fills in `emptyDir` when none is set).
pub(crate) const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn pod_spec(spec: &Value, path: &str, ctx: PodContext, errs: &mut Vec<StatusCause>) {
    // Volumes.
    let mut volume_names: Vec<&str> = Vec::new();
    for (i, v) in items(spec, "volumes").iter().enumerate() {
        let vp = format!("{path}.volumes[{i}]");
        let name = str_of(v, "name");
        if name.is_empty() {
            errs.push(StatusCause::required(format!("{vp}.name")));
        } else {
            unique_name(
                name,
                format!("{vp}.name"),
                dns1123_label,
                &mut volume_names,
                errs,
            );
        }
        let sources = VOLUME_SOURCES.iter().filter(|s| is_set(v.get(**s))).count();
        if sources == 0 {
            errs.push(required_msg(vp.clone(), "must specify a volume type"));
        } else if sources > 1 {
            errs.push(StatusCause::forbidden(
                vp.clone(),
                "may not specify more than 1 volume type",
            ));
        }
    }
    // Containers.
    let containers = items(spec, "containers");
    if containers.is_empty() {
        errs.push(StatusCause::required(format!("{path}.containers")));
    }
    let mut names: Vec<&str> = Vec::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for (i, c) in items(spec, list).iter().enumerate() {
            container(
                c,
                &format!("{path}.{list}[{i}]"),
                list,
                &volume_names,
                &mut names,
                errs,
            );
        }
    }
    // Policies.
    match ctx {
        PodContext::Pod => not_supported(
            spec,
            "restartPolicy",
            path,
            &["Always", "OnFailure", "Never"],
            true,
            errs,
        ),
        PodContext::Template(allowed) => {
            not_supported(spec, "restartPolicy", path, allowed, true, errs)
        }
    }
    not_supported(
        spec,
        "dnsPolicy",
        path,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        false,
        errs,
    );
    non_negative(spec, "terminationGracePeriodSeconds", path, errs);
    if let Some(a) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && a <= 0
    {
        errs.push(StatusCause::invalid(
            format!("{path}.activeDeadlineSeconds"),
            &Value::from(a),
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    for (k, v) in obj_entries(spec, "nodeSelector") {
        for m in label_key(k) {
            errs.push(StatusCause::invalid(
                format!("{path}.nodeSelector"),
                &Value::from(k.as_str()),
                m,
            ));
        }
        for m in label_value(v.as_str().unwrap_or("")) {
            errs.push(StatusCause::invalid(format!("{path}.nodeSelector"), v, m));
        }
    }
}

fn container<'a>(
    c: &'a Value,
    cp: &str,
    list: &str,
    volumes: &[&str],
    names: &mut Vec<&'a str>,
    errs: &mut Vec<StatusCause>,
) {
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(StatusCause::required(format!("{cp}.name")));
    } else {
        unique_name(name, format!("{cp}.name"), dns1123_label, names, errs);
    }
    if str_of(c, "image").trim().is_empty() {
        errs.push(StatusCause::required(format!("{cp}.image")));
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (j, p) in items(c, "ports").iter().enumerate() {
        let pp = format!("{cp}.ports[{j}]");
        let pname = str_of(p, "name");
        if !pname.is_empty() {
            unique_name(
                pname,
                format!("{pp}.name"),
                port_name,
                &mut port_names,
                errs,
            );
        }
        match p.get("containerPort").and_then(Value::as_i64) {
            None | Some(0) => errs.push(StatusCause::required(format!("{pp}.containerPort"))),
            Some(n) => port_range(n, &format!("{pp}.containerPort"), errs),
        }
        if let Some(h) = p.get("hostPort").and_then(Value::as_i64)
            && h != 0
        {
            port_range(h, &format!("{pp}.hostPort"), errs);
        }
        not_supported(p, "protocol", &pp, PROTOCOLS, true, errs);
    }
    for (j, e) in items(c, "env").iter().enumerate() {
        let ep = format!("{cp}.env[{j}]");
        let ename = str_of(e, "name");
        if ename.is_empty() {
            errs.push(StatusCause::required(format!("{ep}.name")));
        } else {
            for m in env_var_name(ename) {
                errs.push(StatusCause::invalid(
                    format!("{ep}.name"),
                    &Value::from(ename),
                    m,
                ));
            }
        }
        if is_set(e.get("valueFrom"))
            && e.get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        {
            errs.push(StatusCause::invalid(
                format!("{ep}.valueFrom"),
                &Value::from(""),
                "may not be specified when `value` is not empty",
            ));
        }
    }
    let mut mount_paths: Vec<&str> = Vec::new();
    for (j, m) in items(c, "volumeMounts").iter().enumerate() {
        let mp = format!("{cp}.volumeMounts[{j}]");
        let vname = str_of(m, "name");
        if vname.is_empty() {
            errs.push(StatusCause::required(format!("{mp}.name")));
        } else if !volumes.contains(&vname) {
            errs.push(not_found(format!("{mp}.name"), &Value::from(vname)));
        }
        let path = str_of(m, "mountPath");
        if path.is_empty() {
            errs.push(StatusCause::required(format!("{mp}.mountPath")));
        } else {
            if mount_paths.contains(&path) {
                errs.push(StatusCause::invalid(
                    format!("{mp}.mountPath"),
                    &Value::from(path),
                    "must be unique",
                ));
            }
            mount_paths.push(path);
        }
    }
    resources(c.get("resources"), &format!("{cp}.resources"), errs);
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(p) = c.get(probe).filter(|p| p.is_object()) else {
            continue;
        };
        let pp = format!("{cp}.{probe}");
        if list == "ephemeralContainers" {
            errs.push(StatusCause::forbidden(
                pp.clone(),
                "may not be set for ephemeral containers",
            ));
        }
        handler(p, &pp, errs);
        for k in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            non_negative(p, k, &pp, errs);
        }
        if probe != "readinessProbe"
            && let Some(s) = p.get("successThreshold").and_then(Value::as_i64)
            && s != 1
        {
            errs.push(StatusCause::invalid(
                format!("{pp}.successThreshold"),
                &Value::from(s),
                "must be 1",
            ));
        }
    }
    if let Some(lc) = c.get("lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get(hook).filter(|h| h.is_object()) {
                handler(h, &format!("{cp}.lifecycle.{hook}"), errs);
            }
        }
    }
    not_supported(
        c,
        "imagePullPolicy",
        cp,
        &["Always", "IfNotPresent", "Never"],
        false,
        errs,
    );
    not_supported(
        c,
        "terminationMessagePolicy",
        cp,
        &["File", "FallbackToLogsOnError"],
        false,
        errs,
    );
}

fn port_range(n: i64, field: &str, errs: &mut Vec<StatusCause>) {
    if !(1..=65535).contains(&n) {
        errs.push(StatusCause::invalid(
            field.to_string(),
            &Value::from(n),
            "must be between 1 and 65535, inclusive",
        ));
    }
}

fn handler(p: &Value, path: &str, errs: &mut Vec<StatusCause>) {
    let n = ["exec", "httpGet", "tcpSocket", "grpc", "sleep"]
        .iter()
        .filter(|h| is_set(p.get(**h)))
        .count();
    if n == 0 {
        errs.push(required_msg(
            path.to_string(),
            "must specify a handler type",
        ));
    } else if n > 1 {
        errs.push(StatusCause::forbidden(
            path.to_string(),
            "may not specify more than 1 handler type",
        ));
    }
}

fn quantity_of(v: &Value) -> Option<crate::quantity::Quantity> {
    match v {
        Value::String(s) => crate::quantity::parse_quantity(s),
        Value::Number(n) => crate::quantity::parse_quantity(&n.to_string()),
        _ => None,
    }
}

const QUANTITY_MSG: &str = "must match the regex '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

fn resources(r: Option<&Value>, path: &str, errs: &mut Vec<StatusCause>) {
    let Some(r) = r else { return };
    let mut limits = Vec::new();
    for part in ["limits", "requests"] {
        for (k, v) in obj_entries(r, part) {
            let field = format!("{path}.{part}[{k}]");
            if !k.contains('/') {
                let standard = matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage")
                    || k.starts_with("hugepages-");
                if !standard {
                    errs.push(StatusCause::invalid(
                        field,
                        &Value::from(k.as_str()),
                        "must be a standard resource for containers",
                    ));
                    continue;
                }
            } else {
                let name_errs = qualified_name(k);
                if !name_errs.is_empty() {
                    for m in name_errs {
                        errs.push(StatusCause::invalid(
                            field.clone(),
                            &Value::from(k.as_str()),
                            m,
                        ));
                    }
                    continue;
                }
            }
            match quantity_of(v) {
                None => errs.push(StatusCause::invalid(field, v, QUANTITY_MSG)),
                Some(q) if q.is_negative() => errs.push(StatusCause::invalid(
                    field,
                    v,
                    "must be greater than or equal to 0",
                )),
                Some(q) => {
                    if part == "limits" {
                        limits.push((k.as_str(), q, v));
                    } else if let Some((_, lq, lv)) = limits.iter().find(|(lk, _, _)| *lk == k)
                        && q > *lq
                    {
                        let shown = lv.as_str().map_or_else(|| lv.to_string(), str::to_string);
                        errs.push(StatusCause::invalid(
                            field,
                            v,
                            format!("must be less than or equal to {k} limit of {shown}"),
                        ));
                    }
                }
            }
        }
    }
}

/// A label map as Go prints a `map[string]string` with `%#v` (sorted keys), as Kubernetes
/// shows such values in messages.
fn go_string_map(v: &Value) -> String {
    let mut pairs: Vec<(&String, &Value)> = v.as_object().into_iter().flatten().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let body = pairs
        .iter()
        .map(|(k, v)| format!("{:?}:{:?}", k, v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(", ");
    format!("map[string]string{{{body}}}")
}

// --- workloads -------------------------------------------------------------------------------

fn selector_matches_template(
    spec: &Value,
    template_path: &str,
    selector_required: bool,
    what: &str,
    errs: &mut Vec<StatusCause>,
) {
    let sel = spec.get("selector").filter(|s| !s.is_null());
    let Some(sel) = sel else {
        if selector_required {
            errs.push(StatusCause::required("spec.selector"));
        }
        return;
    };
    match crate::selectors::from_json(sel) {
        Err(e) => errs.push(StatusCause::invalid("spec.selector", sel, e.to_string())),
        Ok(s) if s.is_empty() => errs.push(StatusCause::invalid(
            "spec.selector",
            sel,
            format!("empty selector is invalid for {what}"),
        )),
        Ok(s) => {
            let labels = spec
                .pointer("/template/metadata/labels")
                .cloned()
                .unwrap_or(Value::Object(Default::default()));
            let ok = s.matches_with(|k| labels.get(k).and_then(Value::as_str));
            if !ok {
                errs.push(StatusCause::new(
                    "FieldValueInvalid",
                    format!("{template_path}.metadata.labels"),
                    format!(
                        "Invalid value: {}: `selector` does not match template `labels`",
                        go_string_map(&labels)
                    ),
                ));
            }
        }
    }
}

fn workload(kind: &str, spec: &Value, errs: &mut Vec<StatusCause>) {
    let what = match kind {
        "Deployment" => "deployment",
        "ReplicaSet" => "replicaset",
        "StatefulSet" => "statefulset",
        _ => "daemonset",
    };
    selector_matches_template(spec, "spec.template", true, what, errs);
    non_negative(spec, "replicas", "spec", errs);
    non_negative(spec, "minReadySeconds", "spec", errs);
    non_negative(spec, "revisionHistoryLimit", "spec", errs);
    // A StatefulSet's claim templates are volumes of its pods: validate the template with them.
    let with_claims = (kind == "StatefulSet")
        .then(|| stateful_set_template(spec))
        .flatten();
    template(
        with_claims.as_ref().or(spec.get("template")),
        "spec.template",
        Some(&["Always"]),
        errs,
    );
    match kind {
        "Deployment" => {
            let strategy = spec.get("strategy").unwrap_or(&Value::Null);
            not_supported(
                strategy,
                "type",
                "spec.strategy",
                &["Recreate", "RollingUpdate"],
                false,
                errs,
            );
            let ru = strategy.get("rollingUpdate").filter(|r| !r.is_null());
            if str_of(strategy, "type") == "Recreate" && ru.is_some() {
                errs.push(StatusCause::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
            if let Some(ru) = ru {
                rolling_update(ru, "spec.strategy.rollingUpdate", spec, errs);
            }
            if let Some(p) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
                let min_ready = spec
                    .get("minReadySeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if p <= min_ready {
                    errs.push(StatusCause::invalid(
                        "spec.progressDeadlineSeconds",
                        &Value::from(p),
                        "must be greater than minReadySeconds",
                    ));
                }
            }
        }
        "StatefulSet" => {
            not_supported(
                spec,
                "podManagementPolicy",
                "spec",
                &["OrderedReady", "Parallel"],
                false,
                errs,
            );
            let us = spec.get("updateStrategy").unwrap_or(&Value::Null);
            not_supported(
                us,
                "type",
                "spec.updateStrategy",
                &["OnDelete", "RollingUpdate"],
                false,
                errs,
            );
            if let Some(ru) = us.get("rollingUpdate").filter(|r| !r.is_null()) {
                non_negative(ru, "partition", "spec.updateStrategy.rollingUpdate", errs);
            }
            let pol = spec
                .get("persistentVolumeClaimRetentionPolicy")
                .unwrap_or(&Value::Null);
            for k in ["whenDeleted", "whenScaled"] {
                not_supported(
                    pol,
                    k,
                    "spec.persistentVolumeClaimRetentionPolicy",
                    &["Retain", "Delete"],
                    false,
                    errs,
                );
            }
        }
        "DaemonSet" => {
            let us = spec.get("updateStrategy").unwrap_or(&Value::Null);
            not_supported(
                us,
                "type",
                "spec.updateStrategy",
                &["OnDelete", "RollingUpdate"],
                false,
                errs,
            );
            if let Some(ru) = us.get("rollingUpdate").filter(|r| !r.is_null()) {
                rolling_update(ru, "spec.updateStrategy.rollingUpdate", spec, errs);
            }
        }
        _ => {}
    }
}

/// The pod template of a StatefulSet with a volume for each volume claim template, or `None`
/// if it has no claim templates (or no template object).
fn stateful_set_template(spec: &Value) -> Option<Value> {
    let claims = items(spec, "volumeClaimTemplates");
    if claims.is_empty() {
        return None;
    }
    let mut t = spec.get("template").filter(|t| t.is_object())?.clone();
    let vols = t
        .as_object_mut()?
        .entry("spec")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()?
        .entry("volumes")
        .or_insert_with(|| Value::Array(Vec::new()));
    let vols = vols.as_array_mut()?;
    for c in claims {
        let name = c
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !name.is_empty() && !vols.iter().any(|v| str_of(v, "name") == name) {
            vols.push(
                serde_json::json!({"name": name, "persistentVolumeClaim": {"claimName": name}}),
            );
        }
    }
    Some(t)
}

/// An int-or-percent value: `Some((value, is_percent))`, `None` if malformed.
fn int_or_percent(v: &Value) -> Option<(i64, bool)> {
    match v {
        Value::Number(n) => n.as_i64().map(|n| (n, false)),
        Value::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map(|p| (p, true)),
        _ => None,
    }
}

fn rolling_update(ru: &Value, path: &str, _spec: &Value, errs: &mut Vec<StatusCause>) {
    let mut zero = [false, false];
    for (i, k) in ["maxUnavailable", "maxSurge"].iter().enumerate() {
        let Some(v) = ru.get(*k).filter(|v| !v.is_null()) else {
            continue;
        };
        let field = format!("{path}.{k}");
        match int_or_percent(v) {
            None => errs.push(StatusCause::invalid(
                field,
                v,
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )),
            Some((n, _)) if n < 0 => errs.push(StatusCause::invalid(
                field,
                v,
                "must be greater than or equal to 0",
            )),
            Some((n, true)) if n > 100 && *k == "maxUnavailable" => errs.push(
                StatusCause::invalid(field, v, "must not be greater than 100%"),
            ),
            Some((n, _)) => zero[i] = n == 0,
        }
    }
    let present = |k: &str| ru.get(k).is_some_and(|v| !v.is_null());
    if present("maxUnavailable") && present("maxSurge") && zero[0] && zero[1] {
        errs.push(StatusCause::invalid(
            format!("{path}.maxUnavailable"),
            ru.get("maxUnavailable").unwrap_or(&Value::Null),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

fn job_spec(spec: &Value, path: &str, top_level: bool, errs: &mut Vec<StatusCause>) {
    for k in [
        "parallelism",
        "completions",
        "backoffLimit",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
    ] {
        non_negative(spec, k, path, errs);
    }
    not_supported(
        spec,
        "completionMode",
        path,
        &["NonIndexed", "Indexed"],
        false,
        errs,
    );
    if top_level {
        selector_matches_template(spec, &format!("{path}.template"), false, "job", errs);
    }
    template(
        spec.get("template"),
        &format!("{path}.template"),
        Some(&["OnFailure", "Never"]),
        errs,
    );
}

/// Without `manualSelector`, a job's selector must select its own UID (the one the server
/// generated). Checked only once the object has a UID.
fn generated_job_selector(obj: &Value, spec: &Value, errs: &mut Vec<StatusCause>) {
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) else {
        return;
    };
    if uid.is_empty() {
        return;
    }
    let Ok(selector) = crate::selectors::from_json(sel) else {
        return;
    };
    let matches = selector.matches(&[
        ("batch.kubernetes.io/controller-uid", uid),
        ("controller-uid", uid),
    ]);
    if !matches {
        errs.push(StatusCause::invalid(
            "spec.selector",
            sel,
            "`selector` not auto-generated",
        ));
    }
}

fn cron_job(obj: &Value, spec: &Value, errs: &mut Vec<StatusCause>) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > 52 {
        errs.push(StatusCause::invalid(
            "metadata.name",
            &Value::from(name),
            "must be no more than 52 characters",
        ));
    }
    match spec.get("schedule").and_then(Value::as_str) {
        None | Some("") => errs.push(StatusCause::required("spec.schedule")),
        Some(s) => {
            if let Err(e) = cron_schedule(s) {
                errs.push(StatusCause::invalid("spec.schedule", &Value::from(s), e));
            }
        }
    }
    not_supported(
        spec,
        "concurrencyPolicy",
        "spec",
        &["Allow", "Forbid", "Replace"],
        false,
        errs,
    );
    non_negative(spec, "startingDeadlineSeconds", "spec", errs);
    non_negative(spec, "successfulJobsHistoryLimit", "spec", errs);
    non_negative(spec, "failedJobsHistoryLimit", "spec", errs);
    match spec.pointer("/jobTemplate/spec") {
        Some(js) if js.is_object() => job_spec(js, "spec.jobTemplate.spec", false, errs),
        _ => errs.push(StatusCause::required("spec.jobTemplate.spec")),
    }
}

// --- services --------------------------------------------------------------------------------

fn service(spec: &Value, errs: &mut Vec<StatusCause>) {
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    not_supported(
        spec,
        "type",
        "spec",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        false,
        errs,
    );
    not_supported(
        spec,
        "sessionAffinity",
        "spec",
        &["ClientIP", "None"],
        false,
        errs,
    );
    let cluster_ip = str_of(spec, "clusterIP");
    let ports = items(spec, "ports");
    if ty == "ExternalName" {
        let en = str_of(spec, "externalName");
        if en.is_empty() {
            errs.push(StatusCause::required("spec.externalName"));
        } else {
            for m in dns1123_subdomain(en.trim_end_matches('.')) {
                errs.push(StatusCause::invalid(
                    "spec.externalName",
                    &Value::from(en),
                    m,
                ));
            }
        }
        if !cluster_ip.is_empty() {
            errs.push(StatusCause::forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            ));
        }
    } else if cluster_ip != "None" && ports.is_empty() {
        errs.push(StatusCause::required("spec.ports"));
    }
    if cluster_ip == "None" && (ty == "NodePort" || ty == "LoadBalancer") {
        errs.push(StatusCause::invalid(
            "spec.clusterIPs[0]",
            &Value::from(cluster_ip),
            format!("may not be set to 'None' for {ty} services"),
        ));
    } else if !cluster_ip.is_empty()
        && cluster_ip != "None"
        && cluster_ip.parse::<std::net::IpAddr>().is_err()
    {
        errs.push(StatusCause::invalid(
            "spec.clusterIPs[0]",
            &Value::from(cluster_ip),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        let name = str_of(p, "name");
        if name.is_empty() {
            if ports.len() > 1 {
                errs.push(StatusCause::required(format!("{pp}.name")));
            }
        } else {
            unique_name(name, format!("{pp}.name"), dns1123_label, &mut names, errs);
        }
        match p.get("port").and_then(Value::as_i64) {
            Some(n) => port_range(n, &format!("{pp}.port"), errs),
            None => errs.push(StatusCause::required(format!("{pp}.port"))),
        }
        not_supported(p, "protocol", &pp, PROTOCOLS, true, errs);
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                if let Some(n) = n.as_i64() {
                    port_range(n, &format!("{pp}.targetPort"), errs);
                }
            }
            Some(Value::String(s)) => {
                for m in port_name(s) {
                    errs.push(StatusCause::invalid(
                        format!("{pp}.targetPort"),
                        &Value::from(s.as_str()),
                        m,
                    ));
                }
            }
            _ => {}
        }
        if let Some(np) = p.get("nodePort").and_then(Value::as_i64)
            && np != 0
        {
            if ty == "ClusterIP" || ty == "ExternalName" {
                errs.push(StatusCause::forbidden(
                    format!("{pp}.nodePort"),
                    format!("may not be used when `type` is '{ty}'"),
                ));
            } else if !(30000..=32767).contains(&np) {
                errs.push(StatusCause::invalid(
                    format!("{pp}.nodePort"),
                    &Value::from(np),
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ));
            }
        }
    }
    if is_set(spec.get("externalTrafficPolicy")) && ty != "NodePort" && ty != "LoadBalancer" {
        errs.push(StatusCause::invalid(
            "spec.externalTrafficPolicy",
            spec.get("externalTrafficPolicy").unwrap_or(&Value::Null),
            "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
        ));
    } else {
        not_supported(
            spec,
            "externalTrafficPolicy",
            "spec",
            &["Cluster", "Local"],
            false,
            errs,
        );
    }
    not_supported(
        spec,
        "internalTrafficPolicy",
        "spec",
        &["Cluster", "Local"],
        false,
        errs,
    );
    if ty != "ExternalName" {
        not_supported(
            spec,
            "ipFamilyPolicy",
            "spec",
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
            false,
            errs,
        );
    }
    let families = items(spec, "ipFamilies");
    for (i, f) in families.iter().enumerate() {
        if !matches!(f.as_str(), Some("IPv4" | "IPv6")) {
            errs.push(StatusCause::not_supported(
                format!("spec.ipFamilies[{i}]"),
                f,
                &["IPv4", "IPv6"],
            ));
        } else if families[..i].contains(f) {
            errs.push(StatusCause::duplicate(format!("spec.ipFamilies[{i}]"), f));
        }
    }
    for (k, v) in obj_entries(spec, "selector") {
        for m in label_key(k) {
            errs.push(StatusCause::invalid(
                "spec.selector",
                &Value::from(k.as_str()),
                m,
            ));
        }
        for m in label_value(v.as_str().unwrap_or("")) {
            errs.push(StatusCause::invalid("spec.selector", v, m));
        }
    }
}

// --- config ----------------------------------------------------------------------------------

const MAX_DATA_SIZE: usize = 1024 * 1024;

fn config_map(obj: &Value, errs: &mut Vec<StatusCause>) {
    let mut total = 0usize;
    for (k, v) in obj_entries(obj, "data") {
        for m in config_key(k) {
            errs.push(StatusCause::invalid(
                format!("data[{k}]"),
                &Value::from(k.as_str()),
                m,
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in obj_entries(obj, "binaryData") {
        for m in config_key(k) {
            errs.push(StatusCause::invalid(
                format!("binaryData[{k}]"),
                &Value::from(k.as_str()),
                m,
            ));
        }
        if obj.get("data").and_then(|d| d.get(k)).is_some() {
            errs.push(StatusCause::invalid(
                format!("binaryData[{k}]"),
                &Value::from(k.as_str()),
                "duplicate of key present in data",
            ));
        }
        total += v.as_str().map_or(0, |s| s.len() * 3 / 4);
    }
    if total > MAX_DATA_SIZE {
        errs.push(too_long("[]", MAX_DATA_SIZE));
    }
}

fn secret(obj: &Value, errs: &mut Vec<StatusCause>) {
    use base64::Engine as _;
    let mut total = 0usize;
    let mut keys: Vec<&str> = Vec::new();
    for (k, v) in obj_entries(obj, "data") {
        for m in config_key(k) {
            errs.push(StatusCause::invalid(
                format!("data[{k}]"),
                &Value::from(k.as_str()),
                m,
            ));
        }
        let s = v.as_str().unwrap_or("");
        match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(b) => total += b.len(),
            Err(e) => errs.push(StatusCause::invalid(
                format!("data[{k}]"),
                &Value::from("<secret contents redacted>"),
                format!("{e}"),
            )),
        }
        keys.push(k);
    }
    for (k, v) in obj_entries(obj, "stringData") {
        for m in config_key(k) {
            errs.push(StatusCause::invalid(
                format!("stringData[{k}]"),
                &Value::from(k.as_str()),
                m,
            ));
        }
        total += v.as_str().map_or(0, str::len);
        keys.push(k);
    }
    if total > MAX_DATA_SIZE {
        errs.push(too_long("data", MAX_DATA_SIZE));
    }
    let need = |key: &str, errs: &mut Vec<StatusCause>| {
        if !keys.contains(&key) {
            errs.push(StatusCause::required(format!("data[{key}]")));
        }
    };
    match obj.get("type").and_then(Value::as_str).unwrap_or("Opaque") {
        "kubernetes.io/service-account-token" => {
            let ann = obj
                .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if ann.is_empty() {
                errs.push(StatusCause::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                ));
            }
        }
        "kubernetes.io/dockercfg" => need(".dockercfg", errs),
        "kubernetes.io/dockerconfigjson" => need(".dockerconfigjson", errs),
        "kubernetes.io/basic-auth"
            if !keys.contains(&"username") && !keys.contains(&"password") =>
        {
            errs.push(StatusCause::required("data[username]"));
            errs.push(StatusCause::required("data[password]"));
        }
        "kubernetes.io/ssh-auth" => need("ssh-privatekey", errs),
        "kubernetes.io/tls" => {
            need("tls.crt", errs);
            need("tls.key", errs);
        }
        _ => {}
    }
}

fn pvc(spec: &Value, errs: &mut Vec<StatusCause>) {
    if items(spec, "accessModes").is_empty() && !is_set(spec.get("dataSourceRef")) {
        errs.push(required_msg(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    for (i, m) in items(spec, "accessModes").iter().enumerate() {
        if !matches!(
            m.as_str(),
            Some("ReadWriteOnce" | "ReadOnlyMany" | "ReadWriteMany" | "ReadWriteOncePod")
        ) {
            errs.push(StatusCause::not_supported(
                format!("spec.accessModes[{i}]"),
                m,
                &[
                    "ReadOnlyMany",
                    "ReadWriteMany",
                    "ReadWriteOnce",
                    "ReadWriteOncePod",
                ],
            ));
        }
    }
    match spec.pointer("/resources/requests/storage") {
        None | Some(Value::Null) => errs.push(StatusCause::required("spec.resources[storage]")),
        Some(v) => match quantity_of(v) {
            Some(q) if q.0 > 0 => {}
            Some(_) => errs.push(StatusCause::invalid(
                "spec.resources[storage]",
                v,
                "must be greater than zero",
            )),
            None => errs.push(StatusCause::invalid(
                "spec.resources[storage]",
                v,
                QUANTITY_MSG,
            )),
        },
    }
    not_supported(
        spec,
        "volumeMode",
        "spec",
        &["Block", "Filesystem"],
        false,
        errs,
    );
}

/// The regarding object (`involvedObject` in core/v1, `regarding` in events.k8s.io/v1) must be
/// in the event's namespace, or in `default` for cluster-scoped objects. Kubernetes reports it
/// under the internal name `involvedObject` for both.
fn event(obj: &Value, regarding: &str, errs: &mut Vec<StatusCause>) {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(io) = obj.get(regarding).filter(|v| v.is_object()) else {
        return;
    };
    let ions = str_of(io, "namespace");
    let mismatch = if ions.is_empty() {
        !ns.is_empty() && ns != "default"
    } else {
        ions != ns
    };
    if mismatch {
        errs.push(StatusCause::invalid(
            "involvedObject.namespace",
            &Value::from(ions),
            "does not match event.namespace",
        ));
    }
}

// --- rbac ------------------------------------------------------------------------------------

fn rbac_rules(obj: &Value, namespaced: bool, errs: &mut Vec<StatusCause>) {
    for (i, r) in items(obj, "rules").iter().enumerate() {
        let rp = format!("rules[{i}]");
        if items(r, "verbs").is_empty() {
            errs.push(required_msg(
                format!("{rp}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let non_resource = !items(r, "nonResourceURLs").is_empty();
        if non_resource && namespaced {
            errs.push(StatusCause::invalid(
                format!("{rp}.nonResourceURLs"),
                r.get("nonResourceURLs").unwrap_or(&Value::Null),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if non_resource && (!items(r, "resources").is_empty() || !items(r, "apiGroups").is_empty())
        {
            errs.push(StatusCause::invalid(
                format!("{rp}.nonResourceURLs"),
                r.get("nonResourceURLs").unwrap_or(&Value::Null),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        if !non_resource {
            if items(r, "apiGroups").is_empty() {
                errs.push(required_msg(
                    format!("{rp}.apiGroups"),
                    "resource rules must supply at least one api group",
                ));
            }
            if items(r, "resources").is_empty() {
                errs.push(required_msg(
                    format!("{rp}.resources"),
                    "resource rules must supply at least one resource",
                ));
            }
        }
    }
}

fn role_binding(obj: &Value, cluster: bool, errs: &mut Vec<StatusCause>) {
    let rr = obj.get("roleRef").unwrap_or(&Value::Null);
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["ClusterRole", "Role"]
    };
    not_supported(rr, "kind", "roleRef", kinds, true, errs);
    not_supported(
        rr,
        "apiGroup",
        "roleRef",
        &["rbac.authorization.k8s.io"],
        false,
        errs,
    );
    let name = str_of(rr, "name");
    if name.is_empty() {
        errs.push(StatusCause::required("roleRef.name"));
    } else {
        for m in path_segment_name(name) {
            errs.push(StatusCause::invalid("roleRef.name", &Value::from(name), m));
        }
    }
    for (i, s) in items(obj, "subjects").iter().enumerate() {
        let sp = format!("subjects[{i}]");
        if str_of(s, "name").is_empty() {
            errs.push(StatusCause::required(format!("{sp}.name")));
        }
        match str_of(s, "kind") {
            "ServiceAccount" => {
                if !str_of(s, "apiGroup").is_empty() {
                    errs.push(StatusCause::not_supported(
                        format!("{sp}.apiGroup"),
                        s.get("apiGroup").unwrap_or(&Value::Null),
                        &[""],
                    ));
                }
                if cluster && str_of(s, "namespace").is_empty() {
                    errs.push(StatusCause::required(format!("{sp}.namespace")));
                }
            }
            "User" | "Group" => {
                not_supported(
                    s,
                    "apiGroup",
                    &sp,
                    &["rbac.authorization.k8s.io"],
                    false,
                    errs,
                );
            }
            _ => not_supported(
                s,
                "kind",
                &sp,
                &["Group", "ServiceAccount", "User"],
                true,
                errs,
            ),
        }
    }
}

// --- updates ---------------------------------------------------------------------------------

fn immutable(new: Option<&Value>, old: Option<&Value>, field: &str, errs: &mut Vec<StatusCause>) {
    let n = new.unwrap_or(&Value::Null);
    let o = old.unwrap_or(&Value::Null);
    if n != o {
        errs.push(StatusCause::invalid(
            field.to_string(),
            n,
            "field is immutable",
        ));
    }
}

/// A copy of `v` without the named top-level keys (for "everything else is immutable").
fn without(v: Option<&Value>, keys: &[&str]) -> Value {
    let mut v = v.cloned().unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        for k in keys {
            m.remove(*k);
        }
    }
    v
}

fn at<'a>(v: Option<&'a Value>, k: &str) -> Option<&'a Value> {
    v.and_then(|s| s.get(k)).filter(|x| !x.is_null())
}

fn update(kind: &ResourceKind, obj: &Value, old: &Value, errs: &mut Vec<StatusCause>) {
    let meta = |v: &Value, k: &str| v.pointer(&format!("/metadata/{k}")).cloned();
    for k in ["name", "namespace"] {
        let (n, o) = (meta(obj, k), meta(old, k));
        if n.is_some() && o.is_some() {
            immutable(n.as_ref(), o.as_ref(), &format!("metadata.{k}"), errs);
        }
    }
    let spec = obj.get("spec");
    let old_spec = old.get("spec");
    match (kind.group, kind.kind) {
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            immutable(
                at(spec, "selector"),
                at(old_spec, "selector"),
                "spec.selector",
                errs,
            );
        }
        ("apps", "StatefulSet") => {
            immutable(
                at(spec, "selector"),
                at(old_spec, "selector"),
                "spec.selector",
                errs,
            );
            let mutable = [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
                "selector",
            ];
            if without(spec, &mutable) != without(old_spec, &mutable) {
                errs.push(StatusCause::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        ("batch", "Job") => {
            immutable(
                at(spec, "selector"),
                at(old_spec, "selector"),
                "spec.selector",
                errs,
            );
            immutable(
                at(spec, "completionMode"),
                at(old_spec, "completionMode"),
                "spec.completionMode",
                errs,
            );
            let suspended = at(old_spec, "suspend").and_then(Value::as_bool) == Some(true);
            let (nt, ot) = (at(spec, "template"), at(old_spec, "template"));
            if nt != ot {
                // A suspended job may change its pod template's scheduling directives.
                let sched = ["nodeSelector", "tolerations", "affinity", "schedulingGates"];
                let strip = |t: Option<&Value>| {
                    let mut t = t.cloned().unwrap_or(Value::Null);
                    if let Some(m) = t.as_object_mut() {
                        m.remove("metadata");
                        if let Some(s) = m.get_mut("spec").and_then(Value::as_object_mut) {
                            for k in sched {
                                s.remove(k);
                            }
                        }
                    }
                    t
                };
                if !(suspended && strip(nt) == strip(ot)) {
                    errs.push(StatusCause::invalid(
                        "spec.template",
                        nt.unwrap_or(&Value::Null),
                        "field is immutable",
                    ));
                }
            }
        }
        ("", "Pod") => pod_update(spec, old_spec, errs),
        ("", "Service") => {
            let (nt, ot) = (
                str_of(spec.unwrap_or(&Value::Null), "type"),
                str_of(old_spec.unwrap_or(&Value::Null), "type"),
            );
            let (nip, oip) = (
                str_of(spec.unwrap_or(&Value::Null), "clusterIP"),
                str_of(old_spec.unwrap_or(&Value::Null), "clusterIP"),
            );
            if nt != "ExternalName"
                && ot != "ExternalName"
                && !nip.is_empty()
                && !oip.is_empty()
                && nip != oip
            {
                errs.push(StatusCause::invalid(
                    "spec.clusterIPs[0]",
                    &Value::from(nip),
                    "may not change once set",
                ));
            }
        }
        ("", "ConfigMap" | "Secret") => {
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
                    errs.push(StatusCause::forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
                for k in ["data", "binaryData", "stringData"] {
                    let n = obj.get(k).filter(|v| !v.is_null());
                    let o = old.get(k).filter(|v| !v.is_null());
                    let empty = |v: Option<&Value>| {
                        v.is_none_or(|v| v.as_object().is_some_and(|m| m.is_empty()))
                    };
                    if n != o && !(empty(n) && empty(o)) && !(k == "stringData" && n.is_none()) {
                        errs.push(StatusCause::forbidden(
                            k,
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
            }
            if kind.kind == "Secret" {
                let t = |v: &Value| {
                    v.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("Opaque")
                        .to_string()
                };
                if t(obj) != t(old) {
                    errs.push(StatusCause::invalid(
                        "type",
                        &Value::from(t(obj)),
                        "field is immutable",
                    ));
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            let mutable = ["resources", "volumeAttributesClassName", "volumeName"];
            let mut n = without(spec, &mutable);
            let mut o = without(old_spec, &mutable);
            // volumeName may be set once (binding).
            if let (Some(nm), Some(om)) = (n.as_object_mut(), o.as_object_mut()) {
                nm.remove("volumeName");
                om.remove("volumeName");
            }
            if n != o {
                errs.push(StatusCause::forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                ));
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding")
            if obj.get("roleRef") != old.get("roleRef") =>
        {
            errs.push(StatusCause::invalid(
                "roleRef",
                obj.get("roleRef").unwrap_or(&Value::Null),
                "cannot change roleRef",
            ));
        }
        _ => {}
    }
}

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn pod_update(spec: Option<&Value>, old_spec: Option<&Value>, errs: &mut Vec<StatusCause>) {
    let strip = |s: Option<&Value>| {
        let mut s = s.cloned().unwrap_or(Value::Null);
        if let Some(m) = s.as_object_mut() {
            for k in [
                "activeDeadlineSeconds",
                "tolerations",
                "schedulingGates",
                "ephemeralContainers",
            ] {
                m.remove(k);
            }
            for list in ["containers", "initContainers"] {
                if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs {
                        if let Some(cm) = c.as_object_mut() {
                            cm.remove("image");
                        }
                    }
                }
            }
        }
        s
    };
    if strip(spec) != strip(old_spec) {
        errs.push(StatusCause::forbidden("spec", POD_UPDATE_MSG));
    }
    // Tolerations may only be added.
    let old_tols = old_spec.map(|s| items(s, "tolerations")).unwrap_or(&[]);
    let new_tols = spec.map(|s| items(s, "tolerations")).unwrap_or(&[]);
    if old_tols.iter().any(|t| !new_tols.contains(t)) {
        errs.push(StatusCause::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    let ads = |s: Option<&Value>| {
        s.and_then(|s| s.get("activeDeadlineSeconds"))
            .and_then(Value::as_i64)
    };
    if let (Some(o), n) = (ads(old_spec), ads(spec)) {
        match n {
            None => errs.push(StatusCause::invalid(
                "spec.activeDeadlineSeconds",
                &Value::Null,
                "must not update from a positive integer to nil value",
            )),
            Some(n) if n > o => errs.push(StatusCause::invalid(
                "spec.activeDeadlineSeconds",
                &Value::from(n),
                "must be less than or equal to previous value",
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
