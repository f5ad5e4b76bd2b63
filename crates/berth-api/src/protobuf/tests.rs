//! Tests of the protobuf decoder against bodies captured from kubectl 1.33.

use super::decode::decode_into;
use super::schema::{self, Message};
use super::*;
use proptest::prelude::*;
use serde_json::{Map, json};
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf")
}

/// Normalizes the two JSON forms for comparison: drops `null`s (kubectl's JSON has
/// `creationTimestamp: null`, protobuf has a zero Time), empty objects and empty arrays
/// (protobuf encodes present-but-empty messages such as `resources: {}` and `status: {}`, and
/// JSON keeps some and omits others). Everything else must be equal.
fn normalize(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let out: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => {
            let out: Vec<Value> = a
                .iter()
                .map(|v| normalize(v).unwrap_or(Value::Object(Map::new())))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        v => Some(v.clone()),
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn len_field(num: u32, payload: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(num) << 3 | 2, out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut tm = Vec::new();
    len_field(1, api_version.as_bytes(), &mut tm);
    len_field(2, kind.as_bytes(), &mut tm);
    let mut out = MAGIC.to_vec();
    len_field(1, &tm, &mut out);
    len_field(2, raw, &mut out);
    out
}

#[test]
fn kubectl_fixtures_decode_to_the_json_kubectl_prints() {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".pb").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 25, "fixtures missing: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let dir = fixture_dir();
        let body = std::fs::read(dir.join(format!("{name}.pb"))).expect("pb");
        let want: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).expect("json"))
                .expect("json parses");
        match decode(&body) {
            Ok(got) => {
                if normalize(&got) != normalize(&want) {
                    failures.push(format!("{name}:\n got  {got}\n want {want}"));
                }
            }
            Err(e) => failures.push(format!("{name}: {e:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn configmap_fixture_exact() {
    let body = std::fs::read(fixture_dir().join("configmap.pb")).expect("pb");
    let got = decode(&body).expect("decodes");
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c1"}, "data": {"a": "b", "x": "y"}})
    );
}

#[test]
fn bad_magic_is_400() {
    let err = decode(b"k9s\0\x0a\x00").expect_err("bad magic");
    assert_eq!(err.code, 400);
    assert_eq!(decode(b"").expect_err("empty").code, 400);
}

#[test]
fn truncated_input_is_400() {
    let body = std::fs::read(fixture_dir().join("deployment.pb")).expect("pb");
    let full = decode(&body).expect("full body decodes");
    for cut in 4..body.len() {
        match decode(&body[..cut]) {
            Err(e) => assert!(e.code == 400 || e.code == 415, "cut {cut}: {e:?}"),
            // Cutting only the trailing empty envelope fields 3/4 leaves a valid body.
            Ok(v) => assert!(
                v == full && cut + 4 >= body.len(),
                "cut {cut} decoded to {v}"
            ),
        }
    }
}

#[test]
fn unknown_kind_is_415_naming_it() {
    let err = decode(&envelope("example.com/v1", "Widget", b"")).expect_err("unknown kind");
    assert_eq!(err.code, 415);
    assert!(format!("{err:?}").contains("Widget"), "{err:?}");
}

#[test]
fn unknown_field_is_415_naming_message_and_number() {
    // ConfigMap field 99 (length-delimited).
    let mut raw = Vec::new();
    len_field(99, b"x", &mut raw);
    let err = decode(&envelope("v1", "ConfigMap", &raw)).expect_err("unknown field");
    assert_eq!(err.code, 415);
    let text = format!("{err:?}");
    assert!(text.contains("ConfigMap") && text.contains("99"), "{text}");
}

#[test]
fn groups_and_wrong_wire_types_are_400() {
    // Field 1 as a start-group (wire type 3).
    let err = decode(&envelope("v1", "ConfigMap", &[0x0b])).expect_err("group");
    assert_eq!(err.code, 400);
    // ConfigMap.immutable (4) as length-delimited instead of varint.
    let mut raw = Vec::new();
    len_field(4, b"x", &mut raw);
    assert_eq!(
        decode(&envelope("v1", "ConfigMap", &raw))
            .expect_err("wt")
            .code,
        400
    );
}

#[test]
fn content_encoding_is_415() {
    let mut out = envelope("v1", "ConfigMap", b"");
    len_field(3, b"gzip", &mut out);
    assert_eq!(decode(&out).expect_err("gzip").code, 415);
}

#[test]
fn nesting_depth_is_bounded() {
    let mut m = Map::new();
    let err = decode_into(schema_config_map(), b"", MAX_DEPTH + 1, &mut m).expect_err("deep");
    assert_eq!(err.code, 400);
    // A very deep chain of length-delimited fields is rejected without exhausting the stack.
    let mut raw = Vec::new();
    for _ in 0..10_000 {
        let mut outer = Vec::new();
        len_field(1, &raw, &mut outer);
        raw = outer;
    }
    assert!(decode(&envelope("apps/v1", "Deployment", &raw)).is_err());
}

fn schema_config_map() -> &'static Message {
    schema::top_level("v1", "ConfigMap").expect("ConfigMap known")
}

#[test]
fn special_types_render_as_json() {
    // Time 2024-01-02T03:04:05Z in ObjectMeta.creationTimestamp, IntOrString string in a PDB.
    let mut time = Vec::new();
    varint(1 << 3, &mut time);
    varint(1_704_164_645, &mut time);
    let mut meta = Vec::new();
    len_field(1, b"p", &mut meta);
    len_field(8, &time, &mut meta);
    let mut ios = Vec::new();
    varint(1 << 3, &mut ios);
    varint(1, &mut ios);
    len_field(3, b"50%", &mut ios);
    let mut spec = Vec::new();
    len_field(3, &ios, &mut spec);
    let mut raw = Vec::new();
    len_field(1, &meta, &mut raw);
    len_field(2, &spec, &mut raw);
    let got = decode(&envelope("policy/v1", "PodDisruptionBudget", &raw)).expect("decodes");
    assert_eq!(got["metadata"]["creationTimestamp"], "2024-01-02T03:04:05Z");
    assert_eq!(got["spec"]["maxUnavailable"], "50%");
}

#[test]
fn fields_beyond_the_fixtures_use_the_real_numbers() {
    // ServiceSpec.ipFamilyPolicy = 17, trafficDistribution = 23.
    let mut spec = Vec::new();
    len_field(17, b"SingleStack", &mut spec);
    len_field(23, b"PreferClose", &mut spec);
    let mut raw = Vec::new();
    len_field(2, &spec, &mut raw);
    let got = decode(&envelope("v1", "Service", &raw)).expect("service");
    assert_eq!(
        got["spec"],
        json!({"ipFamilyPolicy": "SingleStack", "trafficDistribution": "PreferClose"})
    );
    // JobSpec.managedBy = 15.
    let mut spec = Vec::new();
    len_field(15, b"example.com/ctl", &mut spec);
    let mut raw = Vec::new();
    len_field(2, &spec, &mut raw);
    let got = decode(&envelope("batch/v1", "Job", &raw)).expect("job");
    assert_eq!(got["spec"], json!({"managedBy": "example.com/ctl"}));
    // ObjectMeta.managedFields = 17 with FieldsV1 JSON.
    let mut fields_v1 = Vec::new();
    len_field(1, br#"{"f:data":{}}"#, &mut fields_v1);
    let mut entry = Vec::new();
    len_field(1, b"kubectl", &mut entry);
    len_field(2, b"Apply", &mut entry);
    len_field(6, b"FieldsV1", &mut entry);
    len_field(7, &fields_v1, &mut entry);
    let mut meta = Vec::new();
    len_field(17, &entry, &mut meta);
    let mut raw = Vec::new();
    len_field(1, &meta, &mut raw);
    let got = decode(&envelope("v1", "ConfigMap", &raw)).expect("configmap");
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {}}}])
    );
}

#[test]
fn singular_message_fields_merge_and_empty_map_values_stay() {
    let mut m1 = Vec::new();
    len_field(1, b"c", &mut m1);
    let mut entry = Vec::new();
    len_field(1, b"app", &mut entry);
    len_field(2, b"", &mut entry);
    let mut m2 = Vec::new();
    len_field(11, &entry, &mut m2);
    let mut raw = Vec::new();
    len_field(1, &m1, &mut raw);
    len_field(1, &m2, &mut raw);
    let got = decode(&envelope("v1", "ConfigMap", &raw)).expect("configmap");
    assert_eq!(got["metadata"], json!({"name": "c", "labels": {"app": ""}}));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut body = MAGIC.to_vec();
        body.extend_from_slice(&bytes);
        let _ = decode(&body);
        let _ = decode(&bytes);
    }

    #[test]
    fn random_object_bytes_never_panic(
        kind in any::<usize>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let kinds = schema::all_kinds();
        let (v, k, _) = kinds[kind % kinds.len()];
        let _ = decode(&envelope(v, k, &bytes));
    }

    #[test]
    fn mutated_fixtures_never_panic(idx in any::<usize>(), byte in any::<u8>()) {
        let body = std::fs::read(fixture_dir().join("ingress.pb")).expect("pb");
        let mut body = body;
        let i = idx % body.len();
        body[i] = byte;
        let _ = decode(&body);
    }
}
