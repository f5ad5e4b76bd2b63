//! Field paths and sets of them, with the `FieldsV1` wire encoding used in
//! `metadata.managedFields`.
//!
//! A [`FieldSet`] is a trie: at every level a set of *members* (paths owned as a whole, leaves or
//! list items) and a map of *children* (path elements with something owned below them). The
//! ordering of path elements and the JSON encoding follow Kubernetes (structured-merge-diff
//! `fieldpath`) so that encoded sets compare byte for byte with what a real API server writes.
//! This module knows nothing about schemas or objects.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// Errors decoding a `FieldsV1` document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldsError {
    /// The document (or a nested level) is not a JSON object.
    #[error("expected a JSON object in FieldsV1 at {0:?}")]
    NotAnObject(String),
    /// A key does not start with `f:`, `k:`, `v:`, `i:` or is not `.`.
    #[error("unknown path element {0:?} in FieldsV1")]
    UnknownElement(String),
    /// The JSON after `k:` or `v:` does not parse, or `k:` is not an object, or `i:` no integer.
    #[error("malformed path element {0:?} in FieldsV1")]
    Malformed(String),
}

/// A JSON value with the total order structured-merge-diff uses for values (numbers, then
/// strings, booleans, lists, maps, null).
#[derive(Debug, Clone)]
pub struct OrdValue(pub Value);

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// Compares two JSON values in structured-merge-diff's total order.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let ix = x.as_i64().map(i128::from).or(x.as_u64().map(i128::from));
            let iy = y.as_i64().map(i128::from).or(y.as_u64().map(i128::from));
            match (ix, iy) {
                (Some(ix), Some(iy)) => ix.cmp(&iy),
                _ => {
                    let fx = x.as_f64().unwrap_or(0.0);
                    let fy = y.as_f64().unwrap_or(0.0);
                    fx.partial_cmp(&fy).unwrap_or(Ordering::Equal)
                }
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y) {
                let c = compare_values(l, r);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|l, r| l.0.cmp(r.0));
            ys.sort_by(|l, r| l.0.cmp(r.0));
            for ((lk, lv), (rk, rv)) in xs.iter().zip(&ys) {
                let c = lk.cmp(rk).then_with(|| compare_values(lv, rv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

impl PartialEq for OrdValue {
    fn eq(&self, other: &Self) -> bool {
        compare_values(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for OrdValue {}
impl PartialOrd for OrdValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdValue {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_values(&self.0, &other.0)
    }
}

/// One step of a field path. The variant order is the sort order Kubernetes uses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElement {
    /// A struct field or map key: `f:name`.
    Field(String),
    /// An item of an associative list, by its key fields sorted by name: `k:{"name":"web"}`.
    Key(Vec<(String, OrdValue)>),
    /// An item of a set list, by value: `v:"a"`.
    Value(OrdValue),
    /// An item of a list by position: `i:0` (not produced for atomic lists).
    Index(i64),
}

/// Renders a value as structured-merge-diff prints it in paths (JSON).
fn value_string(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl PathElement {
    /// A key element from key fields in any order (they are sorted by name).
    pub fn key(fields: Vec<(String, Value)>) -> Self {
        let mut fields: Vec<(String, OrdValue)> =
            fields.into_iter().map(|(k, v)| (k, OrdValue(v))).collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    /// The `FieldsV1` key of this element (`f:x`, `k:{...}`, `v:...`, `i:0`).
    pub fn to_fields_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{}:{}",
                            value_string(&Value::from(k.as_str())),
                            value_string(&v.0)
                        )
                    })
                    .collect();
                format!("k:{{{}}}", parts.join(","))
            }
            PathElement::Value(v) => format!("v:{}", value_string(&v.0)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key (not `.`).
    pub fn from_fields_key(key: &str) -> Result<Self, FieldsError> {
        let malformed = || FieldsError::Malformed(key.to_string());
        if let Some(name) = key.strip_prefix("f:") {
            Ok(PathElement::Field(name.to_string()))
        } else if let Some(json) = key.strip_prefix("k:") {
            let parsed: Value = serde_json::from_str(json).map_err(|_| malformed())?;
            let Value::Object(map) = parsed else {
                return Err(malformed());
            };
            Ok(PathElement::key(map.into_iter().collect()))
        } else if let Some(json) = key.strip_prefix("v:") {
            let parsed: Value = serde_json::from_str(json).map_err(|_| malformed())?;
            Ok(PathElement::Value(OrdValue(parsed)))
        } else if let Some(index) = key.strip_prefix("i:") {
            index
                .parse()
                .map(PathElement::Index)
                .map_err(|_| malformed())
        } else {
            Err(FieldsError::UnknownElement(key.to_string()))
        }
    }
}

impl fmt::Display for PathElement {
    /// The form Kubernetes uses in conflict messages: `.spec`, `[name="web"]`, `[="a"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", value_string(&v.0)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value_string(&v.0)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

impl Path {
    /// A path of struct fields, e.g. `Path::fields(&["spec", "replicas"])`.
    pub fn fields(names: &[&str]) -> Self {
        Path(
            names
                .iter()
                .map(|n| PathElement::Field((*n).to_string()))
                .collect(),
        )
    }
}

/// A set of field paths (Kubernetes' `fieldpath.Set`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    /// Never holds an empty set.
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// True if `pe` is a member at this level.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The paths below `pe`, if any.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// Adds a path. The empty path is ignored.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => {
                self.children.entry(first.clone()).or_default().insert(rest);
            }
        }
    }

    /// True if the set holds exactly this path.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| {
                let theirs = other.children.get(pe)?;
                let both = child.intersection(theirs);
                (!both.is_empty()).then(|| (pe.clone(), both))
            })
            .collect();
        FieldSet { members, children }
    }

    /// Paths of `self` that are not paths of `other` (exact paths: a member of `other` does not
    /// remove paths below it).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| match other.children.get(pe) {
                Some(theirs) => {
                    let rest = child.difference(theirs);
                    (!rest.is_empty()).then(|| (pe.clone(), rest))
                }
                None => Some((pe.clone(), child.clone())),
            })
            .collect();
        FieldSet { members, children }
    }

    /// Adds the paths of `other` in place (the [`FieldSet::union`] of the two), cloning only
    /// what `self` lacks.
    pub fn absorb(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.absorb(child),
                None => {
                    self.children.insert(pe.clone(), child.clone());
                }
            }
        }
    }

    /// Removes the paths of `other` in place (the [`FieldSet::difference`] of the two), in
    /// time proportional to `other`: a write that changes a few fields costs little however
    /// many fields the set holds.
    pub fn subtract(&mut self, other: &FieldSet) {
        for pe in &other.members {
            self.members.remove(pe);
        }
        for (pe, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(pe) {
                mine.subtract(theirs);
                if mine.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    /// Paths of `self` that are neither paths of `other` nor below a member of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| {
                if other.members.contains(pe) {
                    return None;
                }
                match other.children.get(pe) {
                    Some(theirs) => {
                        let rest = child.recursive_difference(theirs);
                        (!rest.is_empty()).then(|| (pe.clone(), rest))
                    }
                    None => Some((pe.clone(), child.clone())),
                }
            })
            .collect();
        FieldSet { members, children }
    }

    /// Every path of the set, in Kubernetes' iteration order (members of a level before the
    /// paths below it).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(Path(p));
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of the set, keys in Kubernetes' order.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".to_string(), Value::Object(Map::new()));
        }
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let order = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(m), Some((c, _))) => (*m).cmp(*c),
            };
            match order {
                Ordering::Less => {
                    if let Some(m) = members.next() {
                        out.insert(m.to_fields_key(), Value::Object(Map::new()));
                    }
                }
                Ordering::Greater => {
                    if let Some((pe, child)) = children.next() {
                        out.insert(pe.to_fields_key(), Value::Object(child.emit(false)));
                    }
                }
                Ordering::Equal => {
                    members.next();
                    if let Some((pe, child)) = children.next() {
                        out.insert(pe.to_fields_key(), Value::Object(child.emit(true)));
                    }
                }
            }
        }
        out
    }

    /// Parses a `FieldsV1` JSON document.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, FieldsError> {
        let Value::Object(map) = value else {
            return Err(FieldsError::NotAnObject(String::new()));
        };
        Self::parse_level(map)
    }

    fn parse_level(map: &Map<String, Value>) -> Result<FieldSet, FieldsError> {
        let mut set = FieldSet::new();
        for (key, nested) in map {
            if key == "." {
                continue;
            }
            let pe = PathElement::from_fields_key(key)?;
            let Value::Object(inner) = nested else {
                return Err(FieldsError::NotAnObject(key.clone()));
            };
            if inner.is_empty() || inner.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let child = Self::parse_level(inner)?;
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.to_string())
    }

    /// managedFields of a Deployment created by `kubectl create deployment nginx --image=nginx`
    /// on Kubernetes 1.33, as the API server returns it.
    fn kubernetes_example() -> &'static str {
        r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}"#
    }

    #[test]
    fn fields_v1_round_trips_kubernetes_output_byte_for_byte() {
        let parsed: Value = serde_json::from_str(kubernetes_example()).unwrap();
        let set = FieldSet::from_fields_v1(&parsed).unwrap();
        assert!(set.has(&[f("spec"), f("replicas")]));
        let container = PathElement::key(vec![("name".into(), json!("nginx"))]);
        let port = PathElement::key(vec![
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        let base = [f("spec"), f("template"), f("spec"), f("containers")];
        assert!(set.has(&[&base[..], std::slice::from_ref(&container)].concat()));
        assert!(set.has(&[&base[..], &[container.clone(), f("ports"), port.clone()]].concat()));
        assert!(set.has(&[&base[..], &[container, f("ports")]].concat()));
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(!set.has(&[f("spec")]));
        let encoded = serde_json::to_string(&set.to_fields_v1()).unwrap();
        assert_eq!(encoded, kubernetes_example());
    }

    #[test]
    fn keys_and_values_sort_like_kubernetes() {
        let mut set = FieldSet::new();
        for port in [443, 80, 8080] {
            set.insert(&[
                f("ports"),
                PathElement::key(vec![
                    ("containerPort".into(), json!(port)),
                    ("protocol".into(), json!("TCP")),
                ]),
            ]);
        }
        set.insert(&[f("finalizers"), PathElement::Value(OrdValue(json!("b")))]);
        set.insert(&[f("finalizers"), PathElement::Value(OrdValue(json!("a")))]);
        let encoded = serde_json::to_string(&set.to_fields_v1()).unwrap();
        assert_eq!(
            encoded,
            r#"{"f:finalizers":{"v:\"a\"":{},"v:\"b\"":{}},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{},"k:{\"containerPort\":443,\"protocol\":\"TCP\"}":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{}}}"#
        );
        let back = FieldSet::from_fields_v1(&set.to_fields_v1()).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn paths_print_like_kubernetes() {
        let p = Path(vec![
            f("spec"),
            f("containers"),
            PathElement::key(vec![("name".into(), json!("web"))]),
            f("ports"),
            PathElement::key(vec![
                ("protocol".into(), json!("TCP")),
                ("containerPort".into(), json!(80)),
            ]),
        ]);
        assert_eq!(
            p.to_string(),
            r#".spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]"#
        );
        let v = Path(vec![
            f("finalizers"),
            PathElement::Value(OrdValue(json!("x"))),
        ]);
        assert_eq!(v.to_string(), r#".finalizers[="x"]"#);
    }

    fn set_of(paths: &[&[&str]]) -> FieldSet {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(&Path::fields(p).0);
        }
        s
    }

    #[test]
    fn set_algebra() {
        let a = set_of(&[
            &["spec", "replicas"],
            &["spec", "template", "x"],
            &["metadata"],
        ]);
        let b = set_of(&[
            &["spec", "replicas"],
            &["spec", "paused"],
            &["spec", "template"],
        ]);
        assert_eq!(a.intersection(&b), set_of(&[&["spec", "replicas"]]));
        assert_eq!(
            a.union(&b),
            set_of(&[
                &["spec", "replicas"],
                &["spec", "template", "x"],
                &["metadata"],
                &["spec", "paused"],
                &["spec", "template"],
            ])
        );
        // Difference is exact: `spec.template` in b does not remove `spec.template.x`.
        assert_eq!(
            a.difference(&b),
            set_of(&[&["spec", "template", "x"], &["metadata"]])
        );
        // Recursive difference removes everything below a member of the other set.
        assert_eq!(a.recursive_difference(&b), set_of(&[&["metadata"]]));
        assert!(a.difference(&a).is_empty());
        assert_eq!(
            a.paths().iter().map(Path::to_string).collect::<Vec<_>>(),
            vec![".metadata", ".spec.replicas", ".spec.template.x"]
        );
    }

    fn arb_element() -> impl proptest::strategy::Strategy<Value = PathElement> {
        use proptest::prelude::*;
        prop_oneof![
            "[a-z.:/\\\"-]{1,8}".prop_map(PathElement::Field),
            ("[a-z]{1,4}", 0i64..100_000, "[A-Z]{1,4}").prop_map(|(n, p, proto)| {
                PathElement::key(vec![
                    ("name".into(), json!(n)),
                    ("port".into(), json!(p)),
                    ("protocol".into(), json!(proto)),
                ])
            }),
            any::<i64>().prop_map(|v| PathElement::Value(OrdValue(json!(v)))),
            "[ -~]{0,6}".prop_map(|v| PathElement::Value(OrdValue(json!(v)))),
        ]
    }

    proptest::proptest! {
        #[test]
        fn fields_v1_round_trips_any_set(
            paths in proptest::collection::vec(proptest::collection::vec(arb_element(), 1..5), 0..20)
        ) {
            let mut set = FieldSet::new();
            for p in &paths {
                set.insert(p);
            }
            let encoded = serde_json::to_string(&set.to_fields_v1()).unwrap();
            let parsed: Value = serde_json::from_str(&encoded).unwrap();
            let back = FieldSet::from_fields_v1(&parsed).unwrap();
            proptest::prop_assert_eq!(&back, &set);
            for p in &paths {
                proptest::prop_assert!(back.has(p));
            }
            proptest::prop_assert!(set.difference(&set).is_empty());
            proptest::prop_assert_eq!(set.union(&set), set.clone());
            proptest::prop_assert_eq!(set.intersection(&set), set.clone());
        }

        #[test]
        fn in_place_union_and_difference_match_the_copying_ones(
            a in proptest::collection::vec(proptest::collection::vec(arb_element(), 1..4), 0..16),
            b in proptest::collection::vec(proptest::collection::vec(arb_element(), 1..4), 0..16),
        ) {
            let set = |paths: &[Vec<PathElement>]| {
                let mut s = FieldSet::new();
                for p in paths {
                    s.insert(p);
                }
                s
            };
            // Half of a's paths are in b too, so that the sets overlap at every level.
            let (a, mut b) = (set(&a), set(&b));
            let half: Vec<Vec<PathElement>> = a.paths().into_iter().step_by(2).map(|p| p.0).collect();
            b.absorb(&set(&half));
            let mut absorbed = a.clone();
            absorbed.absorb(&b);
            proptest::prop_assert_eq!(&absorbed, &a.union(&b));
            let mut subtracted = a.clone();
            subtracted.subtract(&b);
            proptest::prop_assert_eq!(&subtracted, &a.difference(&b));
            let mut emptied = a.clone();
            emptied.subtract(&a);
            proptest::prop_assert!(emptied.is_empty());
            proptest::prop_assert_eq!(emptied, FieldSet::new());
        }
    }

    #[test]
    fn malformed_fields_are_errors_not_panics() {
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"x:a": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:{bad": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:[1]": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"i:x": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
    }
}
