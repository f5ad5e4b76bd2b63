//! The fuzz entry point for request bodies and patches, shared by the cargo-fuzz targets in
//! `fuzz/` and the bounded smoke run in the test suite.
//!
//! It feeds arbitrary bytes through what the API server does with a body: decoding by content
//! type (JSON, YAML, protobuf), every patch type against a real object, defaulting,
//! validation, unknown-field detection and table printing. Any panic is a bug.

use berth_api::{kinds, table};
use serde_json::{Value, json};

use crate::body::{self, PatchType};

/// A Deployment every patch is applied to.
fn target() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}]},
            },
        },
    })
}

/// Runs one input. The first byte picks the content type; the rest is the body.
pub fn run(data: &[u8]) {
    let Some((&selector, body_bytes)) = data.split_first() else {
        return;
    };
    let Some(deploy) = kinds::by_kind("apps/v1", "Deployment") else {
        return;
    };
    let now = jiff::Timestamp::UNIX_EPOCH;
    let content_type = match selector % 8 {
        0 => "application/json",
        1 => "application/yaml",
        2 => body::PROTOBUF,
        3 => "application/json-patch+json",
        4 => "application/merge-patch+json",
        5 => "application/strategic-merge-patch+json",
        6 => "application/apply-patch+yaml",
        _ => "text/plain",
    };
    let base = target();
    match PatchType::from_content_type(Some(content_type)) {
        Ok(pt) => {
            let Ok(patch) = pt.decode(body_bytes) else {
                return;
            };
            let patched = match pt {
                PatchType::Json => berth_api::patch::json_patch(&base, &patch).ok(),
                PatchType::Merge => berth_api::patch::merge_patch(&base, &patch).ok(),
                PatchType::Strategic => {
                    berth_api::patch::strategic_merge_patch(deploy, &base, &patch).ok()
                }
                PatchType::Apply => berth_api::managed::apply(
                    deploy,
                    Some(&base),
                    &patch,
                    "fuzz",
                    selector & 0x80 != 0,
                    now,
                )
                .ok(),
            };
            if let Some(mut obj) = patched {
                exercise(deploy, &mut obj, Some(&base), now);
            }
        }
        Err(_) => {
            let Ok(mut obj) = body::decode_object(Some(content_type), body_bytes) else {
                return;
            };
            let kind = obj
                .get("apiVersion")
                .and_then(Value::as_str)
                .zip(obj.get("kind").and_then(Value::as_str))
                .and_then(|(v, k)| kinds::by_kind(v, k))
                .unwrap_or(deploy);
            exercise(kind, &mut obj, None, now);
        }
    }
}

fn exercise(
    kind: &berth_api::ResourceKind,
    obj: &mut Value,
    old: Option<&Value>,
    now: jiff::Timestamp,
) {
    berth_api::defaults::apply(kind, obj);
    let _ = berth_api::validation::validate(kind, obj, old);
    let _ = berth_api::schema::unknown_fields(kind, obj);
    let _ = berth_api::fields::field_values(kind, obj);
    let mut managed = obj.clone();
    berth_api::managed::update(kind, old, &mut managed, "fuzz", None, now);
    let _ = table::table(
        kind,
        &[&*obj],
        now,
        table::IncludeObject::Metadata,
        json!({}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Seeds: well-formed inputs of every content type, which mutation starts from.
    fn seeds() -> Vec<Vec<u8>> {
        let mut s: Vec<Vec<u8>> = vec![
            [&[0u8][..], target().to_string().as_bytes()].concat(),
            [&[1u8][..], b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n"].concat(),
            [&[3u8][..], br#"[{"op":"replace","path":"/spec/replicas","value":5},{"op":"remove","path":"/metadata/labels"}]"#].concat(),
            [&[4u8][..], br#"{"spec":{"replicas":null,"template":{"spec":{"containers":null}}}}"#].concat(),
            [&[5u8][..], br#"{"$setElementOrder/containers":[{"name":"web"}],"spec":{"template":{"spec":{"containers":[{"name":"web","$patch":"delete"}]}}}}"#].concat(),
            [&[6u8][..], br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":3}}"#].concat(),
            [&[2u8][..], b"k8s\0\x0a\x0e\x0a\x02v1\x12\x08ConfigMap\x12\x00"].concat(),
        ];
        s.push(vec![0; 3]);
        s
    }

    #[test]
    fn seeds_run() {
        for s in seeds() {
            run(&s);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, max_shrink_iters: 200, .. ProptestConfig::default() })]

        /// A bounded smoke run of the fuzz target: mutated seeds and random bytes never panic.
        #[test]
        fn mutated_inputs_never_panic(seed in 0usize..8, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let seeds = seeds();
            let mut input = seeds[seed % seeds.len()].clone();
            for (pos, byte) in flips {
                if !input.is_empty() {
                    let i = pos % input.len();
                    input[i] = byte;
                }
            }
            input.extend(tail);
            run(&input);
        }
    }
}
