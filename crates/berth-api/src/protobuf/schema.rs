//! The shape of the protobuf schema Berth encodes and decodes with: message types, fields and
//! their JSON names and types, and lookups into the generated table (`generated.rs`, produced
//! by `scripts/gen-protobuf-schema.py` from Kubernetes' `generated.proto` files and Go types).
//! Must not contain encoding or decoding logic, nor hand-written field tables.

use super::generated;

/// How a field's value is encoded and rendered in JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// A string.
    Str,
    /// Bytes, base64 in JSON.
    Bytes,
    /// A varint int32 (sign-extended to 64 bits on the wire).
    I32,
    /// A varint int64.
    I64,
    /// A varint bool.
    Bool,
    /// A nested message, a JSON object.
    Msg(&'static Message),
    /// `metav1.Time {1 seconds, 2 nanos}`, RFC 3339 in whole seconds.
    Time,
    /// `metav1.MicroTime {1 seconds, 2 nanos}`, RFC 3339 with microseconds.
    MicroTime,
    /// `resource.Quantity {1 string}`, a string.
    Quantity,
    /// `intstr.IntOrString {1 type, 2 intVal, 3 strVal}`, a number or a string.
    IntOrString,
    /// A message whose field 1 holds JSON bytes (`metav1.FieldsV1`, `runtime.RawExtension`),
    /// rendered as that JSON value.
    RawJson,
}

/// How often a field occurs and how it maps to JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    /// A singular field.
    One,
    /// A `repeated` field (a JSON array), never packed (proto2).
    Many,
    /// A `map<string, ty>` (a JSON object), entries `{1 key, 2 value}`.
    Map,
    /// A message whose fields are inlined into the parent's JSON object (`json:",inline"`).
    Inline,
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// The protobuf field number.
    pub(crate) num: u32,
    /// The JSON field name (the proto name for inlined fields, which have none).
    pub(crate) name: &'static str,
    /// The value type (of the values, for maps and repeated fields).
    pub(crate) ty: Ty,
    /// Singular, repeated, map or inlined.
    pub(crate) card: Card,
    /// Whether JSON shows the zero value (a Go pointer, or no `omitempty`); otherwise zero means
    /// unset.
    pub(crate) keep_zero: bool,
}

/// A message type.
#[derive(Debug)]
pub(crate) struct Message {
    /// The full proto name, e.g. `k8s.io.api.core.v1.ConfigMap`.
    pub(crate) name: &'static str,
    /// Whether the Go type embeds `TypeMeta` (JSON `apiVersion` and `kind`, not in protobuf).
    pub(crate) type_meta: bool,
    /// The fields, sorted by number.
    pub(crate) fields: &'static [Field],
}

impl Message {
    /// The field numbered `num`.
    pub(crate) fn field(&self, num: u32) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields
            .binary_search_by_key(&num, |f| f.num)
            .ok()
            .map(|i| &fields[i])
    }

    /// The field whose JSON name is `name` (inlined fields excluded).
    pub(crate) fn field_named(&self, name: &str) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields
            .iter()
            .find(|f| f.card != Card::Inline && f.name == name)
    }

    /// The short name for messages: `core.v1.ConfigMap`.
    pub(crate) fn short_name(&self) -> &'static str {
        let name: &'static str = self.name;
        name.strip_prefix("k8s.io.api.")
            .or_else(|| name.strip_prefix("k8s.io.apimachinery.pkg.apis."))
            .unwrap_or(name)
    }
}

/// A field (for the generated table).
pub(crate) const fn f(num: u32, name: &'static str, ty: Ty, card: Card, keep_zero: bool) -> Field {
    Field {
        num,
        name,
        ty,
        card,
        keep_zero,
    }
}

/// The message of `kind` (or of a list kind such as `PodList`) in `api_version`, if the table
/// has it.
pub(crate) fn top_level(api_version: &str, kind: &str) -> Option<&'static Message> {
    generated::KINDS
        .binary_search_by(|(v, k, _)| (*v, *k).cmp(&(api_version, kind)))
        .ok()
        .map(|i| generated::KINDS[i].2)
}

/// `metav1.ListMeta`.
pub(crate) fn list_meta() -> &'static Message {
    &generated::META_V1_LIST_META
}

#[cfg(test)]
pub(crate) fn all_kinds() -> &'static [(&'static str, &'static str, &'static Message)] {
    generated::KINDS
}
