//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch, with the
//! errors kube-apiserver answers for bad or inapplicable patches.
//!
//! Strategic merge patch follows apimachinery's `strategicpatch.StrategicMergePatch` (the
//! `MergeParallelList` + `IgnoreUnmatchedNulls` mode the API server uses), walking the object in
//! step with the nodes of [`crate::schema`]. This module applies patches to JSON values only: it
//! does not decode request bodies, default, validate or prune the result, and it does not compute
//! patches (kubectl does that).

use serde_json::{Map, Value};

use crate::kinds::ResourceKind;
use crate::schema::{self, Node};
use crate::status::{ApiError, Reason};

/// Kubernetes' cap on the operations of one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed (not the right JSON shape, bad directive format):
    /// `400 BadRequest` with this message.
    #[error("{0}")]
    Malformed(String),
    /// The patch is well formed but cannot be applied to this object (a failed JSON-patch
    /// `test`, a path that does not exist, a list of lists): `422 Invalid`.
    #[error("{0}")]
    NotApplicable(String),
    /// The patch contradicts the schema in a way kube-apiserver reports as a server error (a
    /// merge-list item without its merge key, an unknown `$patch` directive): `500`.
    #[error("{0}")]
    Failed(String),
    /// A JSON patch with more operations than [`MAX_JSON_PATCH_OPERATIONS`]: `413`.
    #[error(
        "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {0}"
    )]
    TooManyOperations(usize),
}

impl From<PatchError> for ApiError {
    fn from(err: PatchError) -> Self {
        match err {
            PatchError::Malformed(message) => ApiError::bad_request(message),
            // kube-apiserver answers these with NewGenericServerResponse(422, ...), whose message
            // is fixed and does not carry the cause.
            PatchError::NotApplicable(_) => ApiError::new(
                422,
                Reason::Invalid,
                "the server rejected our request due to an error in our request",
            ),
            PatchError::Failed(message) => ApiError::new(500, Reason::InternalError, message),
            e @ PatchError::TooManyOperations(_) => {
                ApiError::new(413, Reason::RequestEntityTooLarge, e.to_string())
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch (an array of operations) to `original`.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = match patch {
        Value::Array(ops) => ops,
        other => {
            return Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                go_json_type(other)
            )));
        }
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations(ops.len()));
    }
    let parsed: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Malformed(format!("invalid JSON patch: {e}")))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &parsed.0).map_err(|e| PatchError::NotApplicable(e.to_string()))?;
    Ok(doc)
}

/// Applies an RFC 7386 JSON merge patch to `original`; the patch must be an object.
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Malformed("Invalid JSON Patch".into()));
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

/// Applies a strategic merge patch to an object of `kind`, as kube-apiserver does.
pub fn strategic_merge_patch(
    kind: &ResourceKind,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Malformed(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_json_type(patch)
        )));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch.clone(), &schema::root(kind)).map(Value::Object)
}

/// The node of field `key` of a value of `node`.
fn child(node: &Node, key: &str) -> Node {
    match node {
        Node::Struct(name) => schema::field(name, key).unwrap_or(Node::Untyped),
        Node::Map { value, .. } => (**value).clone(),
        _ => Node::Untyped,
    }
}

/// The patch strategy of field `key` of a value of `node`.
fn strategy(node: &Node, key: &str) -> schema::PatchStrategy {
    match node {
        Node::Struct(name) => schema::field_patch_strategy(name, key),
        _ => schema::PatchStrategy::default(),
    }
}

/// The element node of a list node.
fn element(node: &Node) -> Node {
    match node {
        Node::List { element, .. } => (**element).clone(),
        _ => Node::Untyped,
    }
}

/// `mergeMap`: merges `patch` into `original`, both objects of `node`.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    node: &Node,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(DIRECTIVE);
                merge_map(Map::new(), patch, node)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    apply_set_element_order(&mut original, &mut patch, node)?;

    // Deletions from primitive lists first, so that a value both deleted and re-added stays.
    let keys: Vec<String> = patch.keys().cloned().collect();
    let (deletions, others): (Vec<String>, Vec<String>) = keys
        .into_iter()
        .partition(|k| k.starts_with(DELETE_FROM_PRIMITIVE_LIST));
    for key in deletions.into_iter().chain(others) {
        let Some(patch_value) = patch.remove(&key) else {
            continue;
        };
        let (field, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (
                extract_key(
                    &key,
                    DELETE_FROM_PRIMITIVE_LIST,
                    "invalid patch format of primitive list",
                )?,
                true,
            )
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.shift_remove(&field);
            continue;
        }
        let field_node = child(node, &field);
        let field_strategy = strategy(node, &field);
        // Taken out and put back in place, so that fields keep their order.
        let Some(slot) = original.get_mut(&field) else {
            if !is_delete_list {
                let cleaned = clean(patch_value, &field_node, &field_strategy)?;
                original.insert(field, cleaned);
            }
            continue;
        };
        let current = std::mem::take(slot);
        let merged = match (current, patch_value) {
            (Value::Object(cur), Value::Object(p)) => {
                if field_strategy.replace {
                    Value::Object(merge_map(Map::new(), p, &field_node)?)
                } else {
                    Value::Object(merge_map(cur, p, &field_node)?)
                }
            }
            (Value::Array(cur), Value::Array(p)) => {
                if field_strategy.merge {
                    Value::Array(merge_slice(
                        cur,
                        p,
                        &element(&field_node),
                        field_strategy.merge_key.as_deref(),
                        is_delete_list,
                    )?)
                } else if is_delete_list {
                    Value::Array(delete_from_slice(cur, &p))
                } else {
                    clean(Value::Array(p), &field_node, &field_strategy)?
                }
            }
            (_, p) => clean(p, &field_node, &field_strategy)?,
        };
        if let Some(slot) = original.get_mut(&field) {
            *slot = merged;
        }
    }
    Ok(original)
}

/// A patch value placed where the original has nothing: merged into an empty value, so that its
/// directives are processed and its nulls dropped (what decoding into a typed object does).
fn clean(
    value: Value,
    node: &Node,
    field_strategy: &schema::PatchStrategy,
) -> Result<Value, PatchError> {
    match value {
        Value::Object(m) => Ok(Value::Object(merge_map(Map::new(), m, node)?)),
        // Arbitrary JSON keeps lists as they are, as JSON merge patch does.
        Value::Array(items) if *node == Node::Untyped => Ok(Value::Array(items)),
        Value::Array(items) => {
            let elem = element(node);
            if field_strategy.merge {
                return Ok(Value::Array(merge_slice(
                    Vec::new(),
                    items,
                    &elem,
                    field_strategy.merge_key.as_deref(),
                    false,
                )?));
            }
            items
                .into_iter()
                .map(|item| match item {
                    Value::Object(m) => Ok(Value::Object(merge_map(Map::new(), m, &elem)?)),
                    other => Ok(other),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        other => Ok(other),
    }
}

/// `applyRetainKeysDirective`: clears the fields of `original` that `$retainKeys` does not list.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let bad = || PatchError::Malformed("invalid patch format of retainKeys".into());
    let Value::Array(retain) = retain else {
        return Err(bad());
    };
    let listed = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(bad());
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `mergePatchIntoOriginal`: merges each list that has a `$setElementOrder/<field>` directive and
/// orders it as the directive says.
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    node: &Node,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    let bad = "invalid patch format of setElementOrder list";
    for key in directives {
        let Some(order) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(PatchError::Malformed(bad.into()));
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER, bad)?;
        let original_list = match original.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type(other)),
        };
        let patch_list = match patch.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type(other)),
        };
        let field_node = child(node, &field);
        let field_strategy = strategy(node, &field);
        let merge_key = field_strategy.merge_key.as_deref();
        if let Some(p) = &patch_list {
            validate_patch_with_set_order(p, &order, merge_key)?;
        }
        let elem = element(&field_node);
        let mut server_order = None;
        let merged = match (&original_list, patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => match clean(Value::Array(p), &field_node, &field_strategy)? {
                Value::Array(a) => a,
                _ => Vec::new(),
            },
            (Some(o), Some(p)) => {
                if field_strategy.merge {
                    let (merged, aliased) =
                        merge_slice_tracking(o.clone(), p, &elem, merge_key, false)?;
                    server_order = aliased;
                    merged
                } else {
                    match clean(Value::Array(p), &field_node, &field_strategy)? {
                        Value::Array(a) => a,
                        _ => Vec::new(),
                    }
                }
            }
            (None, None) => continue,
        };
        let maps = element_kind(&[&merged])? == ElementKind::Map;
        let key = if maps { merge_key } else { None };
        let (in_order, server_only) = partition(merged, &order, key)?;
        let server_order = server_order.or(original_list).unwrap_or_default();
        let result = normalize_element_order(in_order, server_only, &order, &server_order, key)?;
        original.insert(field.clone(), Value::Array(result));
        patch.remove(&field);
    }
    Ok(())
}

/// `validatePatchWithSetOrderList`: the patch list's items appear in the order list, in order.
fn validate_patch_with_set_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = match merge_key {
        Some(_) => patch_list
            .iter()
            .filter(|v| !is_delete_directive(v))
            .collect(),
        None => patch_list.iter().collect(),
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        if merge_key_equal(non_delete[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(PatchError::Failed(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_fmt(&Value::Array(patch_list.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_equal(
    left: &Value,
    right: &Value,
    merge_key: Option<&str>,
) -> Result<bool, PatchError> {
    let Some(key) = merge_key else {
        return Ok(scalar_eq(left, right));
    };
    let l = left.get(key).ok_or_else(|| no_merge_key(left, key))?;
    let r = right.get(key).ok_or_else(|| no_merge_key(right, key))?;
    Ok(scalar_eq(l, r))
}

/// `mergeSlice`: merges two lists of a field with the `merge` strategy.
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem: &Node,
    merge_key: Option<&str>,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    merge_slice_tracking(original, patch, elem, merge_key, is_delete_list).map(|(merged, _)| merged)
}

/// The original list as apimachinery's later `$setElementOrder` step sees it.
///
/// apimachinery deletes list items in place (`append(s[:i], s[i+1:]...)`) and appends new items
/// to the shortened slice, so both write into the original list's backing array: the original
/// list value it later uses as the server order holds the remaining items, then the first new
/// items, then stale copies. This decides where server-only items land when an apply both
/// deletes and adds items, so it is reproduced here.
struct AliasedOriginal {
    slots: Vec<Value>,
    len: usize,
    live: bool,
}

impl AliasedOriginal {
    fn new(original: &[Value]) -> Self {
        AliasedOriginal {
            slots: original.to_vec(),
            len: original.len(),
            live: true,
        }
    }

    fn delete_matching(&mut self, key: &str, value: &Value) {
        while let Some(i) = self.slots[..self.len]
            .iter()
            .position(|o| o.get(key).is_some_and(|v| scalar_eq(v, value)))
        {
            for j in i..self.len - 1 {
                self.slots[j] = self.slots[j + 1].clone();
            }
            self.len -= 1;
        }
    }

    fn append(&mut self, item: &Value) {
        if self.live && self.len < self.slots.len() {
            self.slots[self.len] = item.clone();
        }
        self.len += 1;
    }
}

/// [`merge_slice`], also returning the server order the `$setElementOrder` step uses (see
/// [`AliasedOriginal`]); `None` when that is the original list unchanged.
fn merge_slice_tracking(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem: &Node,
    merge_key: Option<&str>,
    is_delete_list: bool,
) -> Result<(Vec<Value>, Option<Vec<Value>>), PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok((original, None));
    }
    let kind = element_kind(&[&original, &patch])?;
    if kind != ElementKind::Map {
        if is_delete_list {
            return Ok((delete_from_slice(original, &patch), None));
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.iter().any(|m| scalar_eq(m, v)) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = partition(merged, &patch, None)?;
        return normalize_element_order(in_patch, server_only, &patch, &original, None)
            .map(|merged| (merged, None));
    }
    let Some(key) = merge_key else {
        return Err(PatchError::Failed(
            "cannot merge lists without merge key for type struct".into(),
        ));
    };

    // mergeSliceWithSpecialElements
    let mut aliased = AliasedOriginal::new(&original);
    let mut original = original;
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        match item.get(DIRECTIVE) {
            None => plain.push(item),
            Some(directive) => match directive.as_str() {
                Some("delete") => {
                    let value = item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
                    original.retain(|o| !o.get(key).is_some_and(|v| scalar_eq(v, value)));
                    aliased.delete_matching(key, value);
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(PatchError::Failed(
                        "merging lists cannot yet be specified in the patch".into(),
                    ));
                }
                _ => {
                    let map = item.as_object().cloned().unwrap_or_default();
                    return Err(bad_patch_type(directive, &map));
                }
            },
        }
    }
    let patch = if replace {
        aliased.live = false;
        original = plain
            .into_iter()
            .map(|item| match item {
                Value::Object(m) => merge_map(Map::new(), m, elem).map(Value::Object),
                other => Ok(other),
            })
            .collect::<Result<_, _>>()?;
        Vec::new()
    } else {
        plain
    };

    // mergeSliceWithoutSpecialElements
    let mut merged = original.clone();
    for item in &patch {
        let value = item.get(key).ok_or_else(|| no_merge_key(item, key))?;
        let Value::Object(item_map) = item else {
            return Err(bad_arg_type(item));
        };
        match merged
            .iter()
            .position(|o| o.get(key).is_some_and(|v| scalar_eq(v, value)))
        {
            Some(i) => {
                let current = match std::mem::take(&mut merged[i]) {
                    Value::Object(m) => m,
                    other => return Err(bad_arg_type(&other)),
                };
                merged[i] = Value::Object(merge_map(current, item_map.clone(), elem)?);
            }
            None => {
                let added = Value::Object(merge_map(Map::new(), item_map.clone(), elem)?);
                aliased.append(&added);
                merged.push(added);
            }
        }
    }
    let (in_patch, server_only) = partition(merged, &patch, Some(key))?;
    let merged = normalize_element_order(in_patch, server_only, &patch, &original, Some(key))?;
    Ok((merged, Some(aliased.slots)))
}

/// `deleteFromSlice`: `current` without the values in `to_delete`.
fn delete_from_slice(current: Vec<Value>, to_delete: &[Value]) -> Vec<Value> {
    current
        .into_iter()
        .filter(|v| !to_delete.iter().any(|d| scalar_eq(d, v)))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Map,
    String,
    Number,
    Bool,
    Null,
}

/// `sliceElementType`: the common kind of the elements of the lists.
fn element_kind(lists: &[&Vec<Value>]) -> Result<ElementKind, PatchError> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = match v {
            Value::Object(_) => ElementKind::Map,
            Value::String(_) => ElementKind::String,
            Value::Number(_) => ElementKind::Number,
            Value::Bool(_) => ElementKind::Bool,
            Value::Null => ElementKind::Null,
            Value::Array(_) => {
                return Err(PatchError::NotApplicable(
                    "lists of lists are not supported".into(),
                ));
            }
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array((*l).clone())).collect();
                return Err(PatchError::Failed(format!(
                    "list element types are not identical: {}",
                    go_fmt(&Value::Array(all))
                )));
            }
            Some(_) => {}
        }
    }
    // Empty lists are merged as scalars; nothing is ordered by key.
    Ok(kind.unwrap_or(ElementKind::String))
}

/// The merge-key value of a list item, or the item itself for scalars.
fn identity<'a>(item: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(k) => item.get(k),
        None => Some(item),
    }
}

/// The index of `item` in `list`, by merge key (or value for scalars).
fn index_of(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let wanted = identity(item, key);
    list.iter().position(|v| match (identity(v, key), wanted) {
        (Some(a), Some(b)) => scalar_eq(a, b),
        (None, None) => true,
        _ => false,
    })
}

/// Splits `items` into those present in `by` and the others, keeping their order.
fn partition(
    items: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut absent = Vec::new();
    for item in items {
        if let Some(k) = key
            && item.get(k).is_none()
        {
            return Err(no_merge_key(&item, k));
        }
        if index_of(by, &item, key).is_some() {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// `normalizeElementOrder`: sorts the patch items by `patch_order` and the server-only items by
/// `server_order`, then interleaves them by their positions in `server_order`.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(patch, patch_order, key)?;
    let server_only = normalize_slice_order(server_only, server_order, key)?;
    let mut out = Vec::with_capacity(patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, key), index_of(server_order, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

/// `normalizeSliceOrder`: stable-sorts `items` by their position in `order` (items not in it
/// last), with `$patch: delete` items at the end.
fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let (mut keep, deletes): (Vec<Value>, Vec<Value>) = match key {
        Some(k) => {
            for v in items.iter().chain(order.iter()) {
                if !v.is_object() {
                    return Err(bad_arg_type(v));
                }
                if v.get(k).is_none() {
                    return Err(no_merge_key(v, k));
                }
            }
            items.into_iter().partition(|v| !is_delete_directive(v))
        }
        None => (items, Vec::new()),
    };
    keep.sort_by_key(|v| index_of(order, v, key).unwrap_or(usize::MAX));
    keep.extend(deletes);
    Ok(keep)
}

fn is_delete_directive(v: &Value) -> bool {
    v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

/// `extractKey`: the field named by a `<prefix>/<field>` directive key.
fn extract_key(key: &str, prefix: &str, bad: &str) -> Result<String, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field.to_string()),
        _ => Err(PatchError::Malformed(bad.into())),
    }
}

/// Equality as Go's `==` on decoded JSON: numbers compare by value.
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::Failed(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(item)
    ))
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::Failed(format!(
        "Unknown patch type: {} in map: {}",
        go_fmt(directive),
        go_fmt(&Value::Object(map.clone()))
    ))
}

fn bad_arg_type(actual: &Value) -> PatchError {
    PatchError::Failed(format!(
        "expected a {}, but received a {}",
        "map[string]interface {}",
        go_type(actual)
    ))
}

/// The Go type a JSON value decodes to, for error messages.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The JSON type name Go's decoder uses in "cannot unmarshal X" messages.
fn go_json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as Go's `%v` prints decoded JSON (`map[a:1 b:[x y]]`), for error messages.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_fmt).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_fmt(&m[k])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

#[cfg(test)]
mod tests;
