//! The matching rules the plugins share: label selectors of pod affinity terms and spread
//! constraints (with their namespaces and namespace selectors), node selector terms of node
//! affinity, and tolerations against taints.
//!
//! Owns parsing these parts of a pod into matchers and the matching itself, with Kubernetes'
//! rules for null and empty selectors. Must not know which pods or nodes exist.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use berth_api::selectors::{LabelSelector, Operator, Requirement};
use k8s_openapi::api::core::v1::{NodeSelectorTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

/// Labels of a pod, node or namespace.
pub type Labels = BTreeMap<String, String>;

/// The `metav1.LabelSelector` of an API object as a matcher: `None` (null) matches nothing,
/// an empty selector matches everything. An unknown operator makes it match nothing, as a
/// selector that fails to parse does in Kubernetes.
pub fn label_selector(s: Option<&metav1::LabelSelector>) -> LabelSelector {
    let Some(s) = s else {
        return LabelSelector::nothing();
    };
    let mut requirements = Vec::new();
    for (k, v) in s.match_labels.iter().flatten() {
        requirements.push(Requirement {
            key: k.clone(),
            operator: Operator::In,
            values: vec![v.clone()],
        });
    }
    for e in s.match_expressions.iter().flatten() {
        let operator = match e.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            _ => return LabelSelector::nothing(),
        };
        let values = e.values.clone().unwrap_or_default();
        if matches!(operator, Operator::In | Operator::NotIn) && values.is_empty() {
            return LabelSelector::nothing();
        }
        requirements.push(Requirement {
            key: e.key.clone(),
            operator,
            values,
        });
    }
    LabelSelector {
        requirements,
        nothing: false,
    }
}

/// A selector that matches labels equal to every pair of `set` (a Service's selector);
/// `None` for an empty set, which selects nothing for a Service.
pub fn set_selector(set: &Labels) -> Option<LabelSelector> {
    if set.is_empty() {
        return None;
    }
    Some(LabelSelector {
        requirements: set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::In,
                values: vec![v.clone()],
            })
            .collect(),
        nothing: false,
    })
}

/// Adds `key in (value)` (or `notin` when `negate`) for each key of `keys` that `labels` has, as
/// `matchLabelKeys` and `mismatchLabelKeys` do.
pub fn merge_label_keys(sel: &mut LabelSelector, keys: &[String], labels: &Labels, negate: bool) {
    if sel.nothing {
        return;
    }
    for k in keys {
        if let Some(v) = labels.get(k) {
            sel.requirements.push(Requirement {
                key: k.clone(),
                operator: if negate {
                    Operator::NotIn
                } else {
                    Operator::In
                },
                values: vec![v.clone()],
            });
        }
    }
}

/// True if `labels` satisfy `sel`.
pub fn matches_labels(sel: &LabelSelector, labels: &Labels) -> bool {
    sel.matches_with(|k| labels.get(k).map(String::as_str))
}

fn write_selector_key(out: &mut String, sel: &LabelSelector) {
    if sel.nothing {
        out.push('!');
        return;
    }
    for r in &sel.requirements {
        let op = match r.operator {
            Operator::In => '=',
            Operator::NotIn => '~',
            Operator::Exists => '+',
            Operator::DoesNotExist => '-',
            Operator::GreaterThan => '>',
            Operator::LessThan => '<',
        };
        let _ = write!(out, "{}{op}{}&", r.key, r.values.join(","));
    }
}

/// What a pod is, for matching: its namespace, labels and controller.
#[derive(Debug, Clone, Copy)]
pub struct PodView<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The labels.
    pub labels: &'a Labels,
    /// The UID of its controller (the ownerReference with `controller: true`), if any.
    pub owner: Option<&'a str>,
}

/// One part of a [`Matcher`]: pods in some namespaces whose labels match a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The namespaces named explicitly (sorted).
    pub namespaces: Vec<String>,
    /// Namespaces whose labels match this selector are included too (`{}` is every
    /// namespace).
    pub namespace_selector: Option<LabelSelector>,
    /// The pod label selector.
    pub selector: LabelSelector,
}

impl Clause {
    /// The clause of a pod affinity term written by a pod in `own_namespace`: with neither
    /// namespaces nor a namespace selector, the pod's own namespace.
    pub fn of_term(
        own_namespace: &str,
        namespaces: Option<&Vec<String>>,
        namespace_selector: Option<&metav1::LabelSelector>,
        selector: LabelSelector,
    ) -> Self {
        let mut ns: Vec<String> = namespaces.cloned().unwrap_or_default();
        if ns.is_empty() && namespace_selector.is_none() {
            ns.push(own_namespace.to_owned());
        }
        ns.sort();
        ns.dedup();
        Self {
            namespaces: ns,
            namespace_selector: namespace_selector.map(|s| label_selector(Some(s))),
            selector,
        }
    }

    fn matches(&self, pod: &PodView<'_>, ns_labels: Option<&Labels>) -> bool {
        let in_ns =
            self.namespaces
                .binary_search_by(|n| n.as_str().cmp(pod.namespace))
                .is_ok()
                || self.namespace_selector.as_ref().is_some_and(|s| {
                    s.is_empty() || ns_labels.is_some_and(|l| matches_labels(s, l))
                });
        in_ns && matches_labels(&self.selector, pod.labels)
    }

    fn write_key(&self, out: &mut String) {
        out.push_str(&self.namespaces.join(","));
        out.push('|');
        match &self.namespace_selector {
            Some(s) => write_selector_key(out, s),
            None => out.push('.'),
        }
        out.push('|');
        write_selector_key(out, &self.selector);
    }
}

/// Which pods count: those that match every clause and, when `owner` is set, are controlled
/// by that object. Affinity terms, spread constraints and a workload's default spreading are
/// all matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// The clauses, all of which must match.
    pub clauses: Vec<Clause>,
    /// The controller UID the pods must have, if any.
    pub owner: Option<String>,
}

/// A label pair or controller every pod a matcher accepts must have: the index that finds the
/// matchers a new pod may affect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The pods' controller UID.
    Owner(String),
    /// A label key and the values it may have.
    Label(String, Vec<String>),
    /// Nothing narrows it down: every pod must be checked.
    None,
}

impl Matcher {
    /// True if `pod` (whose namespace has `ns_labels`) is one of the matched pods.
    pub fn matches(&self, pod: &PodView<'_>, ns_labels: Option<&Labels>) -> bool {
        if let Some(o) = &self.owner
            && pod.owner != Some(o.as_str())
        {
            return false;
        }
        self.clauses.iter().all(|c| c.matches(pod, ns_labels))
    }

    /// True if some clause uses a namespace selector (matching reads namespace labels).
    pub fn uses_namespace_labels(&self) -> bool {
        self.clauses.iter().any(|c| c.namespace_selector.is_some())
    }

    /// A string equal for equal matchers.
    pub fn key(&self) -> String {
        let mut out = String::new();
        for c in &self.clauses {
            c.write_key(&mut out);
            out.push(';');
        }
        if let Some(o) = &self.owner {
            out.push('@');
            out.push_str(o);
        }
        out
    }

    /// A property every matched pod has, if one can be named.
    pub fn anchor(&self) -> Anchor {
        if let Some(o) = &self.owner {
            return Anchor::Owner(o.clone());
        }
        for c in &self.clauses {
            if c.selector.nothing {
                return Anchor::Label(String::new(), Vec::new());
            }
            if let Some(r) = c
                .selector
                .requirements
                .iter()
                .find(|r| r.operator == Operator::In)
            {
                return Anchor::Label(r.key.clone(), r.values.clone());
            }
        }
        Anchor::None
    }
}

/// An operator of a node selector requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeOp {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeReq {
    key: String,
    op: NodeOp,
    values: Vec<String>,
}

impl NodeReq {
    fn matches(&self, value: Option<&str>) -> bool {
        match self.op {
            NodeOp::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            NodeOp::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            NodeOp::Exists => value.is_some(),
            NodeOp::DoesNotExist => value.is_none(),
            NodeOp::Gt(b) => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > b),
            NodeOp::Lt(b) => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < b),
        }
    }
}

/// A node selector term (`matchExpressions` on labels and `matchFields` on `metadata.name`,
/// all of which must hold). A term that is empty or malformed matches no node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTerm {
    exprs: Vec<NodeReq>,
    fields: Vec<NodeReq>,
    valid: bool,
}

impl NodeTerm {
    /// Parses a term.
    pub fn new(t: &NodeSelectorTerm) -> Self {
        let mut valid = true;
        let mut exprs = Vec::new();
        for r in t.match_expressions.iter().flatten() {
            let values = r.values.clone().unwrap_or_default();
            let op = match r.operator.as_str() {
                "In" if !values.is_empty() => NodeOp::In,
                "NotIn" if !values.is_empty() => NodeOp::NotIn,
                "Exists" if values.is_empty() => NodeOp::Exists,
                "DoesNotExist" if values.is_empty() => NodeOp::DoesNotExist,
                "Gt" | "Lt" if values.len() == 1 => match values[0].parse::<i64>() {
                    Ok(b) if r.operator == "Gt" => NodeOp::Gt(b),
                    Ok(b) => NodeOp::Lt(b),
                    Err(_) => {
                        valid = false;
                        continue;
                    }
                },
                _ => {
                    valid = false;
                    continue;
                }
            };
            exprs.push(NodeReq {
                key: r.key.clone(),
                op,
                values,
            });
        }
        let mut fields = Vec::new();
        for r in t.match_fields.iter().flatten() {
            let values = r.values.clone().unwrap_or_default();
            let op = match r.operator.as_str() {
                "In" if values.len() == 1 => NodeOp::In,
                "NotIn" if values.len() == 1 => NodeOp::NotIn,
                _ => {
                    valid = false;
                    continue;
                }
            };
            if r.key != "metadata.name" {
                valid = false;
                continue;
            }
            fields.push(NodeReq {
                key: r.key.clone(),
                op,
                values,
            });
        }
        valid &= !(exprs.is_empty() && fields.is_empty());
        Self {
            exprs,
            fields,
            valid,
        }
    }

    /// True if the node `name` with `labels` satisfies the term.
    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        self.valid
            && self
                .exprs
                .iter()
                .all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
            && self.fields.iter().all(|r| r.matches(Some(name)))
    }
}

/// A taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// `NoSchedule`.
    NoSchedule,
    /// `PreferNoSchedule`.
    PreferNoSchedule,
    /// `NoExecute`.
    NoExecute,
    /// Anything else (never filters or scores).
    Other,
}

impl Effect {
    /// Parses an effect name.
    pub fn parse(s: &str) -> Self {
        match s {
            "NoSchedule" => Self::NoSchedule,
            "PreferNoSchedule" => Self::PreferNoSchedule,
            "NoExecute" => Self::NoExecute,
            _ => Self::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::NoSchedule => "NoSchedule",
            Self::PreferNoSchedule => "PreferNoSchedule",
            Self::NoExecute => "NoExecute",
            Self::Other => "",
        }
    }
}

/// A taint of a node, as the scheduler reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaintRef {
    /// The key.
    pub key: String,
    /// The value (empty when absent).
    pub value: String,
    /// The effect.
    pub effect: Effect,
}

impl TaintRef {
    /// A taint.
    pub fn new(key: impl Into<String>, value: impl Into<String>, effect: Effect) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    /// The scheduler's view of an API taint.
    pub fn of(t: &Taint) -> Self {
        Self::new(
            t.key.clone(),
            t.value.clone().unwrap_or_default(),
            Effect::parse(&t.effect),
        )
    }
}

/// True if `tol` tolerates `taint` (Kubernetes' `Toleration.ToleratesTaint`): the effect (if
/// set) and key (if set) are equal and the operator is `Exists` or `Equal` with an equal
/// value. An empty key with `Exists` tolerates every taint.
pub fn tolerates(tol: &Toleration, taint: &TaintRef) -> bool {
    if let Some(e) = tol.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect.name()
    {
        return false;
    }
    if let Some(k) = tol.key.as_deref().filter(|k| !k.is_empty())
        && k != taint.key
    {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("") {
        "" | "Equal" => tol.value.as_deref().unwrap_or("") == taint.value,
        "Exists" => true,
        _ => false,
    }
}

/// True if any of `tols` tolerates `taint`.
pub fn tolerated(tols: &[Toleration], taint: &TaintRef) -> bool {
    tols.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(v: serde_json::Value) -> LabelSelector {
        let s: metav1::LabelSelector = serde_json::from_value(v).unwrap();
        label_selector(Some(&s))
    }

    #[test]
    fn null_selects_nothing_and_empty_everything() {
        let l = labels(&[("app", "web")]);
        assert!(!matches_labels(&label_selector(None), &l));
        assert!(matches_labels(&sel(serde_json::json!({})), &l));
        assert!(matches_labels(
            &sel(serde_json::json!({"matchLabels": {"app": "web"}})),
            &l
        ));
        assert!(!matches_labels(
            &sel(serde_json::json!({"matchExpressions": [{"key": "app", "operator": "Bogus"}]})),
            &l
        ));
        let expr = sel(serde_json::json!({"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["web", "api"]},
            {"key": "tier", "operator": "DoesNotExist"}
        ]}));
        assert!(matches_labels(&expr, &l));
        assert!(!matches_labels(
            &expr,
            &labels(&[("app", "web"), ("tier", "x")])
        ));
    }

    #[test]
    fn match_label_keys_narrow_the_selector() {
        let mut s = sel(serde_json::json!({"matchLabels": {"app": "web"}}));
        let me = labels(&[("app", "web"), ("pod-template-hash", "abc")]);
        merge_label_keys(
            &mut s,
            &["pod-template-hash".into(), "absent".into()],
            &me,
            false,
        );
        assert!(matches_labels(&s, &me));
        assert!(!matches_labels(
            &s,
            &labels(&[("app", "web"), ("pod-template-hash", "old")])
        ));
        let mut m = sel(serde_json::json!({}));
        merge_label_keys(&mut m, &["pod-template-hash".into()], &me, true);
        assert!(!matches_labels(&m, &me));
        assert!(matches_labels(&m, &labels(&[("pod-template-hash", "x")])));
    }

    #[test]
    fn clauses_default_to_the_own_namespace() {
        let l = labels(&[("app", "web")]);
        let c = Clause::of_term("ns1", None, None, sel(serde_json::json!({})));
        let m = Matcher {
            clauses: vec![c],
            owner: None,
        };
        let pod = |ns| PodView {
            namespace: ns,
            labels: &l,
            owner: None,
        };
        assert!(m.matches(&pod("ns1"), None));
        assert!(!m.matches(&pod("ns2"), None));
        let any: metav1::LabelSelector = serde_json::from_value(serde_json::json!({})).unwrap();
        let all = Matcher {
            clauses: vec![Clause::of_term(
                "ns1",
                None,
                Some(&any),
                sel(serde_json::json!({})),
            )],
            owner: None,
        };
        assert!(
            all.matches(&pod("ns2"), None),
            "{{}} selects every namespace"
        );
        let prod: metav1::LabelSelector =
            serde_json::from_value(serde_json::json!({"matchLabels": {"env": "prod"}})).unwrap();
        let by_label = Matcher {
            clauses: vec![Clause::of_term(
                "ns1",
                Some(&vec!["ns3".into()]),
                Some(&prod),
                sel(serde_json::json!({})),
            )],
            owner: None,
        };
        assert!(by_label.matches(&pod("ns2"), Some(&labels(&[("env", "prod")]))));
        assert!(!by_label.matches(&pod("ns2"), Some(&labels(&[("env", "dev")]))));
        assert!(by_label.matches(&pod("ns3"), None));
        assert!(!by_label.matches(&pod("ns1"), None));
        assert_ne!(m.key(), all.key());
        assert_ne!(all.key(), by_label.key());
    }

    #[test]
    fn owners_and_anchors() {
        let l = labels(&[("app", "web")]);
        let m = Matcher {
            clauses: vec![],
            owner: Some("u1".into()),
        };
        let p = |owner| PodView {
            namespace: "ns",
            labels: &l,
            owner,
        };
        assert!(m.matches(&p(Some("u1")), None));
        assert!(!m.matches(&p(Some("u2")), None));
        assert!(!m.matches(&p(None), None));
        assert_eq!(m.anchor(), Anchor::Owner("u1".into()));
        let s = Matcher {
            clauses: vec![Clause::of_term(
                "ns",
                None,
                None,
                sel(serde_json::json!({"matchExpressions": [
                    {"key": "x", "operator": "Exists"},
                    {"key": "app", "operator": "In", "values": ["a", "b"]}]})),
            )],
            owner: None,
        };
        assert_eq!(
            s.anchor(),
            Anchor::Label("app".into(), vec!["a".into(), "b".into()])
        );
    }

    fn term(exprs: &[(&str, &str, &[&str])], fields: &[(&str, &str, &[&str])]) -> NodeTerm {
        let req = |(k, op, vals): &(&str, &str, &[&str])| NodeSelectorRequirement {
            key: k.to_string(),
            operator: op.to_string(),
            values: Some(vals.iter().map(|v| v.to_string()).collect()),
        };
        NodeTerm::new(&NodeSelectorTerm {
            match_expressions: Some(exprs.iter().map(req).collect()),
            match_fields: Some(fields.iter().map(req).collect()),
        })
    }

    #[test]
    fn node_terms_use_every_operator() {
        let l = labels(&[("zone", "a"), ("cores", "8"), ("ssd", "")]);
        assert!(term(&[("zone", "In", &["a", "b"])], &[]).matches("n", &l));
        assert!(!term(&[("zone", "NotIn", &["a"])], &[]).matches("n", &l));
        assert!(term(&[("gpu", "NotIn", &["x"])], &[]).matches("n", &l));
        assert!(term(&[("ssd", "Exists", &[])], &[]).matches("n", &l));
        assert!(term(&[("gpu", "DoesNotExist", &[])], &[]).matches("n", &l));
        assert!(term(&[("cores", "Gt", &["4"])], &[]).matches("n", &l));
        assert!(!term(&[("cores", "Lt", &["4"])], &[]).matches("n", &l));
        assert!(
            !term(&[("zone", "Gt", &["4"])], &[]).matches("n", &l),
            "not a number"
        );
        assert!(
            !term(&[("cores", "Gt", &["x"])], &[]).matches("n", &l),
            "bad bound"
        );
        assert!(term(&[], &[("metadata.name", "In", &["n"])]).matches("n", &l));
        assert!(!term(&[], &[("metadata.name", "In", &["n"])]).matches("m", &l));
        assert!(term(&[], &[("metadata.name", "NotIn", &["m"])]).matches("n", &l));
        assert!(!term(&[], &[("metadata.uid", "In", &["n"])]).matches("n", &l));
        assert!(
            !term(&[], &[]).matches("n", &l),
            "an empty term matches nothing"
        );
        assert!(!term(&[("zone", "In", &[])], &[]).matches("n", &l));
    }

    #[test]
    fn tolerations_follow_kubernetes() {
        let t = TaintRef::new("k", "v", Effect::NoSchedule);
        let tol = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(tolerates(
            &tol(serde_json::json!({"key": "k", "value": "v"})),
            &t
        ));
        assert!(tolerates(
            &tol(
                serde_json::json!({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"})
            ),
            &t
        ));
        assert!(!tolerates(
            &tol(serde_json::json!({"key": "k", "value": "w"})),
            &t
        ));
        assert!(tolerates(
            &tol(serde_json::json!({"key": "k", "operator": "Exists"})),
            &t
        ));
        assert!(tolerates(
            &tol(serde_json::json!({"operator": "Exists"})),
            &t
        ));
        assert!(!tolerates(
            &tol(serde_json::json!({"operator": "Exists", "effect": "NoExecute"})),
            &t
        ));
        assert!(!tolerates(
            &tol(serde_json::json!({"key": "k", "operator": "Gt"})),
            &t
        ));
        assert!(!tolerates(
            &tol(serde_json::json!({"key": "j", "operator": "Exists"})),
            &t
        ));
    }
}
