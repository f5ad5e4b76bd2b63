//! ControllerRevisions of StatefulSets and DaemonSets: the revision data (the pod template as
//! Kubernetes stores it, `{"spec":{"template":{..., "$patch":"replace"}}}`), its hash and name,
//! finding the update revision among the history (reusing an equal one, as a rollback does),
//! and which old revisions to prune.
//!
//! Owns only pure functions. Must not write to the API; the controllers do.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};

/// The label holding a revision's hash (on revisions, and on pods: the hash for DaemonSets,
/// the revision name for StatefulSets).
pub const HASH_LABEL: &str = "controller-revision-hash";

/// The alphabet Kubernetes encodes hashes with (no vowels, no look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The revision data of a pod template.
pub fn data(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({ "spec": { "template": t } })
}

/// The pod template a revision holds.
pub fn template(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// The hash of revision data (FNV-1a over its JSON, plus the collision count), encoded as
/// Kubernetes encodes it.
pub fn hash(data: &Value, collision_count: i32) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(serde_json::to_string(data).unwrap_or_default().as_bytes());
    if collision_count != 0 {
        feed(&collision_count.to_le_bytes());
    }
    h.to_string()
        .bytes()
        .map(|c| ALPHANUMS[usize::from(c) % ALPHANUMS.len()] as char)
        .collect()
}

/// Whether a revision holds `data`.
pub fn equal(rev: &ControllerRevision, data: &Value) -> bool {
    rev.data.as_ref().is_some_and(|d| &d.0 == data)
}

/// The next revision number after `revisions`.
pub fn next_number(revisions: &[&ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// A new revision of `owner` named `<owner>-<hash>`.
pub fn new_revision(
    owner_name: &str,
    namespace: &str,
    owner: OwnerReference,
    template_labels: Option<&BTreeMap<String, String>>,
    data: Value,
    number: i64,
    collision_count: i32,
) -> ControllerRevision {
    let h = hash(&data, collision_count);
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(HASH_LABEL.into(), h.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{owner_name}-{h}")),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    }
}

/// Where the update revision comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateRevision {
    /// The latest revision already holds the template.
    Latest(String),
    /// An older revision holds it: its number must be raised to `number` (a rollback).
    Reuse {
        /// The revision's name.
        name: String,
        /// Its new number.
        number: i64,
    },
    /// No revision holds it: create one.
    Create,
}

/// Finds the revision holding `data` among `revisions` (sorted or not).
pub fn find_update(revisions: &[&ControllerRevision], data: &Value) -> UpdateRevision {
    let mut sorted: Vec<&ControllerRevision> = revisions.to_vec();
    sorted.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let Some(last_equal) = sorted.iter().rev().find(|r| equal(r, data)) else {
        return UpdateRevision::Create;
    };
    let name = last_equal.metadata.name.clone().unwrap_or_default();
    if sorted
        .last()
        .is_some_and(|l| l.metadata.name == last_equal.metadata.name)
    {
        UpdateRevision::Latest(name)
    } else {
        UpdateRevision::Reuse {
            name,
            number: next_number(&sorted),
        }
    }
}

/// The revisions to delete so that at most `limit` revisions besides the `live` ones remain,
/// oldest first.
pub fn to_prune(
    revisions: &[&ControllerRevision],
    live: &HashSet<String>,
    limit: i32,
) -> Vec<String> {
    let mut old: Vec<&ControllerRevision> = revisions
        .iter()
        .copied()
        .filter(|r| r.metadata.name.as_ref().is_some_and(|n| !live.contains(n)))
        .collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    if old.len() <= limit {
        return Vec::new();
    }
    old.sort_by_key(|r| r.revision);
    let excess = old.len() - limit;
    old.into_iter()
        .take(excess)
        .filter_map(|r| r.metadata.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn tpl(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    fn rev(name: &str, number: i64, image: &str) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(data(&tpl(image)))),
            revision: number,
        }
    }

    #[test]
    fn data_round_trips_and_hashes_differ() {
        let t = tpl("a:1");
        let d = data(&t);
        assert_eq!(d["spec"]["template"]["$patch"], "replace");
        let r = new_revision(
            "web",
            "ns",
            OwnerReference::default(),
            None,
            d.clone(),
            1,
            0,
        );
        assert_eq!(template(&r), Some(t));
        let h = hash(&d, 0);
        assert!(r.metadata.name.as_deref() == Some(&format!("web-{h}")));
        assert!(h.bytes().all(|c| ALPHANUMS.contains(&c)));
        assert_ne!(h, hash(&d, 1), "a collision count changes the hash");
        assert_ne!(h, hash(&data(&tpl("a:2")), 0));
        assert_eq!(h, hash(&data(&tpl("a:1")), 0), "stable");
    }

    #[test]
    fn the_update_revision_is_reused_or_created() {
        let r1 = rev("web-1", 1, "a:1");
        let r2 = rev("web-2", 2, "a:2");
        let revs = [&r1, &r2];
        assert_eq!(
            find_update(&revs, &data(&tpl("a:2"))),
            UpdateRevision::Latest("web-2".into())
        );
        assert_eq!(
            find_update(&revs, &data(&tpl("a:1"))),
            UpdateRevision::Reuse {
                name: "web-1".into(),
                number: 3
            }
        );
        assert_eq!(
            find_update(&revs, &data(&tpl("a:3"))),
            UpdateRevision::Create
        );
    }

    #[test]
    fn pruning_keeps_live_revisions_and_the_newest_old_ones() {
        let rs: Vec<ControllerRevision> = (1..=5)
            .map(|i| rev(&format!("r{i}"), i, &format!("a:{i}")))
            .collect();
        let refs: Vec<&ControllerRevision> = rs.iter().collect();
        let live = HashSet::from(["r5".to_string(), "r1".to_string()]);
        assert_eq!(to_prune(&refs, &live, 2), vec!["r2".to_string()]);
        assert!(to_prune(&refs, &live, 3).is_empty());
        assert_eq!(to_prune(&refs, &live, 0).len(), 3);
    }
}
