//! Schema-aware walks over objects for server-side apply: the field set of an object, the
//! comparison of two objects, the merge of an applied configuration into a live object, and the
//! pruning of fields an applier stopped applying.
//!
//! Semantics follow structured-merge-diff (`typed/tofieldset.go`, `compare.go`, `merge.go`,
//! `remove.go`): structs and granular maps are walked field by field, associative lists by key,
//! set lists by value; scalars, atomic lists, atomic maps and atomic structs are leaves, and so
//! is an empty (or null) map or list. This module owns no ownership bookkeeping; `managed` does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, OrdValue, PathElement};
use crate::schema::{self, ListType, Node};

/// Errors walking an object with its schema.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TypedError {
    /// An associative list item lacks one of its key fields.
    #[error("{path}: associative list with keys has an element that omits key field {key:?}")]
    MissingKey {
        /// The path of the list, as Kubernetes prints it.
        path: String,
        /// The missing key field.
        key: String,
    },
    /// An associative list item is not an object.
    #[error("{0}: associative list with keys may not have non-map elements")]
    NotAnObject(String),
    /// An associative list of an applied configuration holds two items with the same key.
    #[error("{path}: duplicate entries for key {key}")]
    Duplicate {
        /// The path of the list.
        path: String,
        /// The duplicated key, as printed in paths.
        key: String,
    },
}

/// What a node of the schema means for a given value.
enum Shape<'a> {
    /// Walked as a whole.
    Leaf,
    /// Walked field by field.
    Fields { map: &'a Map<String, Value> },
    /// Walked item by item.
    Items {
        element: &'a Node,
        list_type: ListType,
        items: &'a [Value],
    },
}

/// The element node and granular list type of a list node; `None` for atomic lists. As
/// Kubernetes does when it converts OpenAPI to structured-merge-diff schemas, a list without
/// `x-kubernetes-list-type` but with patch strategy `merge` is associative by its merge key, or a
/// set without one.
fn granular_list(node: &Node) -> Option<(&Node, ListType)> {
    let Node::List {
        element,
        list_type,
        patch,
    } = node
    else {
        return None;
    };
    match list_type {
        ListType::Atomic if patch.merge => match &patch.merge_key {
            Some(key) => Some((
                element,
                ListType::Map {
                    keys: vec![key.clone()],
                },
            )),
            None => Some((element, ListType::Set)),
        },
        ListType::Atomic => None,
        other => Some((element, other.clone())),
    }
}

fn shape<'a>(node: &'a Node, value: &'a Value) -> Shape<'a> {
    match (node, value) {
        (Node::Struct(name), Value::Object(map)) if !schema::is_atomic_struct(name) => {
            Shape::Fields { map }
        }
        (Node::Map { atomic: false, .. } | Node::Untyped, Value::Object(map)) => {
            Shape::Fields { map }
        }
        (Node::List { .. }, Value::Array(items)) => match granular_list(node) {
            Some((element, list_type)) => Shape::Items {
                element,
                list_type,
                items,
            },
            None => Shape::Leaf,
        },
        _ => Shape::Leaf,
    }
}

/// The schema of field `key` of a value of `node`.
fn child_node(node: &Node, key: &str) -> Node {
    match node {
        Node::Struct(name) => schema::field(name, key).unwrap_or(Node::Untyped),
        Node::Map { value, .. } => (**value).clone(),
        _ => Node::Untyped,
    }
}

/// True if `key` is a declared field of the struct `struct_name`.
fn is_named_field(struct_name: Option<&str>, key: &str) -> bool {
    struct_name.is_some_and(|s| schema::field(s, key).is_some())
}

fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// Defaults of associative list keys that the schema defines (Kubernetes fills them in when an
/// item omits the key).
fn key_default(key: &str) -> Option<Value> {
    (key == "protocol").then(|| Value::from("TCP"))
}

/// The path element of a list item.
pub fn item_element(
    list_type: &ListType,
    item: &Value,
    path: &[PathElement],
) -> Result<PathElement, TypedError> {
    match list_type {
        ListType::Map { keys } => {
            let Value::Object(map) = item else {
                return Err(TypedError::NotAnObject(path_string(path)));
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match map.get(key) {
                    Some(v) if !v.is_null() => v.clone(),
                    _ => key_default(key).ok_or_else(|| TypedError::MissingKey {
                        path: path_string(path),
                        key: key.clone(),
                    })?,
                };
                fields.push((key.clone(), value));
            }
            Ok(PathElement::key(fields))
        }
        _ => Ok(PathElement::Value(OrdValue(item.clone()))),
    }
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The set of fields `value` sets: leaves, and the items of associative and set lists.
pub fn to_field_set(node: &Node, value: &Value) -> Result<FieldSet, TypedError> {
    let mut set = FieldSet::new();
    let mut path = Vec::new();
    collect_fields(node, value, &mut path, &mut set)?;
    Ok(set)
}

fn collect_fields(
    node: &Node,
    value: &Value,
    path: &mut Vec<PathElement>,
    set: &mut FieldSet,
) -> Result<(), TypedError> {
    match shape(node, value) {
        Shape::Leaf => set.insert(path),
        Shape::Fields { map, .. } if map.is_empty() => set.insert(path),
        Shape::Items { items: [], .. } => set.insert(path),
        Shape::Fields { map, .. } => {
            for (key, child) in map {
                path.push(PathElement::Field(key.clone()));
                collect_fields(&child_node(node, key), child, path, set)?;
                path.pop();
            }
        }
        Shape::Items {
            element,
            list_type,
            items,
        } => {
            for item in items {
                let pe = item_element(&list_type, item, path)?;
                path.push(pe);
                set.insert(path);
                collect_fields(element, item, path, set)?;
                path.pop();
            }
        }
    }
    Ok(())
}

/// What changed between two objects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Paths present only in the new object.
    pub added: FieldSet,
    /// Leaves present in both with different values.
    pub modified: FieldSet,
    /// Paths present only in the old object.
    pub removed: FieldSet,
}

/// Compares `old` with `new` (either may be absent).
#[cfg(test)]
pub fn compare(
    node: &Node,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<Comparison, TypedError> {
    compare_ignoring(node, old, new, &FieldSet::new())
}

/// Compares `old` with `new` leaving out every path at or below a member of `ignored`: those
/// parts of the objects are not walked at all (a status write does not walk the spec).
pub fn compare_ignoring(
    node: &Node,
    old: Option<&Value>,
    new: Option<&Value>,
    ignored: &FieldSet,
) -> Result<Comparison, TypedError> {
    let mut cmp = Comparison::default();
    let mut path = Vec::new();
    compare_at(node, old, new, Some(ignored), &mut path, &mut cmp)?;
    Ok(cmp)
}

/// The part of `ignored` below `pe`, or `Err(())` when `pe` itself is ignored.
fn ignored_below<'a>(
    ignored: Option<&'a FieldSet>,
    pe: &PathElement,
) -> Result<Option<&'a FieldSet>, ()> {
    match ignored {
        Some(i) if i.has_member(pe) => Err(()),
        Some(i) => Ok(i.child(pe)),
        None => Ok(None),
    }
}

fn compare_leaf(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &[PathElement],
    cmp: &mut Comparison,
) {
    match (old, new) {
        (None, Some(_)) => cmp.added.insert(path),
        (Some(_), None) => cmp.removed.insert(path),
        (Some(a), Some(b)) if a != b => cmp.modified.insert(path),
        _ => {}
    }
}

fn compare_at(
    node: &Node,
    old: Option<&Value>,
    new: Option<&Value>,
    ignored: Option<&FieldSet>,
    path: &mut Vec<PathElement>,
    cmp: &mut Comparison,
) -> Result<(), TypedError> {
    if old.is_some() && old == new {
        return Ok(());
    }
    // A null facing a map or list is walked as absent, but the path itself is not recorded as
    // added or removed (it was there, as null).
    let is_container = |v: Option<&Value>| v.is_some_and(|v| v.is_object() || v.is_array());
    let null_to_container = matches!(old, Some(Value::Null)) && is_container(new)
        || matches!(new, Some(Value::Null)) && is_container(old);
    if null_to_container && !(is_empty_container(old) && is_empty_container(new)) {
        let old = old.filter(|v| !v.is_null());
        let new = new.filter(|v| !v.is_null());
        let mut inner = Comparison::default();
        compare_at(node, old, new, ignored, path, &mut inner)?;
        // Drop the self path the walk recorded for the absent side.
        let mut self_path = FieldSet::new();
        self_path.insert(path);
        cmp.added = cmp.added.union(&inner.added.difference(&self_path));
        cmp.removed = cmp.removed.union(&inner.removed.difference(&self_path));
        cmp.modified = cmp.modified.union(&inner.modified);
        return Ok(());
    }
    let old_shape = old.map(|v| shape(node, v));
    let new_shape = new.map(|v| shape(node, v));
    let both_empty = is_empty_container(old) && is_empty_container(new);
    match (&old_shape, &new_shape) {
        (None | Some(Shape::Fields { .. }), None | Some(Shape::Fields { .. })) if !both_empty => {
            let empty = Map::new();
            let old_map = match &old_shape {
                Some(Shape::Fields { map, .. }) => *map,
                _ => &empty,
            };
            let new_map = match &new_shape {
                Some(Shape::Fields { map, .. }) => *map,
                _ => &empty,
            };
            let keys: BTreeSet<&String> = old_map.keys().chain(new_map.keys()).collect();
            for key in keys {
                let pe = PathElement::Field(key.clone());
                let Ok(below) = ignored_below(ignored, &pe) else {
                    continue;
                };
                path.push(pe);
                compare_at(
                    &child_node(node, key),
                    old_map.get(key),
                    new_map.get(key),
                    below,
                    path,
                    cmp,
                )?;
                path.pop();
            }
        }
        (None | Some(Shape::Items { .. }), None | Some(Shape::Items { .. })) if !both_empty => {
            let (element, list_type) = match (&old_shape, &new_shape) {
                (
                    Some(Shape::Items {
                        element, list_type, ..
                    }),
                    _,
                )
                | (
                    _,
                    Some(Shape::Items {
                        element, list_type, ..
                    }),
                ) => (*element, list_type.clone()),
                _ => return Ok(()),
            };
            let old_items = match &old_shape {
                Some(Shape::Items { items, .. }) => *items,
                _ => &[],
            };
            let new_items = match &new_shape {
                Some(Shape::Items { items, .. }) => *items,
                _ => &[],
            };
            let old_index = index_items(&list_type, old_items, path)?;
            let new_index = index_items(&list_type, new_items, path)?;
            let pes: BTreeSet<&PathElement> = old_index.keys().chain(new_index.keys()).collect();
            for pe in pes {
                let Ok(below) = ignored_below(ignored, pe) else {
                    continue;
                };
                path.push(pe.clone());
                compare_at(
                    element,
                    old_index.get(pe).copied(),
                    new_index.get(pe).copied(),
                    below,
                    path,
                    cmp,
                )?;
                path.pop();
            }
        }
        _ => {
            compare_leaf(old, new, path, cmp);
            return Ok(());
        }
    }
    match (old, new) {
        (None, Some(_)) => cmp.added.insert(path),
        (Some(_), None) => cmp.removed.insert(path),
        _ => {}
    }
    Ok(())
}

/// Items of a list by path element (the first of duplicates wins).
fn index_items<'a>(
    list_type: &ListType,
    items: &'a [Value],
    path: &[PathElement],
) -> Result<BTreeMap<PathElement, &'a Value>, TypedError> {
    let mut out = BTreeMap::new();
    for item in items {
        let pe = item_element(list_type, item, path)?;
        out.entry(pe).or_insert(item);
    }
    Ok(out)
}

/// Merges an applied configuration into a live object: fields merged recursively, associative
/// lists by key, set lists by value, leaves replaced. A `null` in the configuration unsets the
/// field.
pub fn merge(node: &Node, live: &Value, config: &Value) -> Result<Value, TypedError> {
    let mut path = Vec::new();
    merge_at(node, live, config, &mut path)
}

fn merge_at(
    node: &Node,
    live: &Value,
    config: &Value,
    path: &mut Vec<PathElement>,
) -> Result<Value, TypedError> {
    match (shape(node, live), shape(node, config)) {
        (Shape::Fields { map: lmap, .. }, Shape::Fields { map: cmap, .. }) => {
            let mut out = lmap.clone();
            for (key, cv) in cmap {
                if cv.is_null() {
                    out.remove(key);
                    continue;
                }
                let merged = match lmap.get(key) {
                    Some(lv) => {
                        path.push(PathElement::Field(key.clone()));
                        let m = merge_at(&child_node(node, key), lv, cv, path)?;
                        path.pop();
                        m
                    }
                    None => strip_nulls(cv),
                };
                out.insert(key.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (
            Shape::Items {
                element,
                list_type,
                items: litems,
            },
            Shape::Items { items: citems, .. },
        ) => merge_lists(element, &list_type, litems, citems, path),
        _ => Ok(strip_nulls(config)),
    }
}

/// A configuration value with its `null` fields dropped (they mean "unset").
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_lists(
    element: &Node,
    list_type: &ListType,
    lhs: &[Value],
    rhs: &[Value],
    path: &mut Vec<PathElement>,
) -> Result<Value, TypedError> {
    let lhs_pes: Vec<PathElement> = lhs
        .iter()
        .map(|i| item_element(list_type, i, path))
        .collect::<Result<_, _>>()?;
    let rhs_pes: Vec<PathElement> = rhs
        .iter()
        .map(|i| item_element(list_type, i, path))
        .collect::<Result<_, _>>()?;
    let mut rhs_index: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for (i, pe) in rhs_pes.iter().enumerate() {
        if rhs_index.insert(pe, i).is_some() && matches!(list_type, ListType::Map { .. }) {
            return Err(TypedError::Duplicate {
                path: path_string(path),
                key: pe.to_string(),
            });
        }
    }
    let mut lhs_index: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for (i, pe) in lhs_pes.iter().enumerate() {
        lhs_index.entry(pe).or_insert(i);
    }
    // Items in both lists, in the configuration's order: they are emitted when the
    // configuration reaches them, so that the configuration's order wins among them.
    let shared: Vec<&PathElement> = rhs_pes
        .iter()
        .filter(|pe| lhs_index.contains_key(pe))
        .collect();
    let mut next_shared = 0usize;
    let mut emitted: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len() + rhs.len());
    let (mut li, mut ri) = (0usize, 0usize);
    let mut merge_item =
        |pe: &PathElement, l: Option<&Value>, r: &Value| -> Result<Value, TypedError> {
            match l {
                Some(l) => {
                    path.push(pe.clone());
                    let m = merge_at(element, l, r, path);
                    path.pop();
                    m
                }
                None => Ok(strip_nulls(r)),
            }
        };
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lhs_pes[li];
            if *pe == rhs_pes[ri] {
                if !emitted.contains(pe) {
                    let l = lhs_index.get(pe).map(|&i| &lhs[i]);
                    out.push(merge_item(pe, l, &rhs[ri])?);
                    emitted.insert(pe);
                }
                if shared.get(next_shared) == Some(&pe) {
                    next_shared += 1;
                }
                li += 1;
                ri += 1;
                continue;
            }
            if rhs_index.contains_key(pe) && shared.get(next_shared).is_some_and(|s| *s != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let pe = &lhs_pes[li];
            if !rhs_index.contains_key(pe) {
                out.push(lhs[li].clone());
                li += 1;
                continue;
            }
            if emitted.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let pe = &rhs_pes[ri];
            if !emitted.contains(pe) {
                let l = lhs_index.get(pe).map(|&i| &lhs[i]);
                out.push(merge_item(pe, l, &rhs[ri])?);
                emitted.insert(pe);
            }
            if shared.get(next_shared) == Some(&pe) {
                next_shared += 1;
            }
            ri += 1;
        }
    }
    Ok(Value::Array(out))
}

/// Removes from `value` what `last` (the applier's previous set) holds and `keep` (every
/// manager's current set, the applier's new one included) does not. A struct field with paths
/// below it counts as a member of a set (Kubernetes' `EnsureNamedFieldsAreMembers`), so a struct
/// the applier filled and nobody owns anything in any more goes as a whole.
pub fn prune(node: &Node, value: &mut Value, last: &FieldSet, keep: Option<&FieldSet>) {
    let empty = FieldSet::new();
    let keep = keep.unwrap_or(&empty);
    match value {
        Value::Object(map) => {
            let (struct_name, granular) = match node {
                Node::Struct(name) => (Some(name.as_str()), !schema::is_atomic_struct(name)),
                Node::Map { atomic, .. } => (None, !atomic),
                Node::Untyped => (None, true),
                _ => (None, false),
            };
            if !granular {
                return;
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let pe = PathElement::Field(key.clone());
                let last_child = last.child(&pe);
                let named = is_named_field(struct_name, &key);
                let in_last = last.has_member(&pe) || (named && last_child.is_some());
                let in_keep = keep.has_member(&pe) || (named && keep.child(&pe).is_some());
                if in_last && !in_keep {
                    map.remove(&key);
                } else if let (Some(lc), Some(child)) = (last_child, map.get_mut(&key)) {
                    prune(&child_node(node, &key), child, lc, keep.child(&pe));
                }
            }
        }
        Value::Array(items) => {
            let Some((element, list_type)) = granular_list(node) else {
                return;
            };
            let mut kept = Vec::with_capacity(items.len());
            for mut item in std::mem::take(items) {
                let Ok(pe) = item_element(&list_type, &item, &[]) else {
                    kept.push(item);
                    continue;
                };
                if last.has_member(&pe) && !keep.has_member(&pe) {
                    continue;
                }
                if let Some(lc) = last.child(&pe) {
                    prune(element, &mut item, lc, keep.child(&pe));
                }
                kept.push(item);
            }
            *items = kept;
        }
        _ => {}
    }
}
