//! Patches applied to a resource's JSON form: RFC 7386 merge patch and RFC 6902 JSON patch.
//!
//! calicoctl's default "strategic" patch type behaves as a merge patch for Calico v3 resources
//! (they carry no strategic-merge list keys), so both map to [`Patch::Merge`].

use serde_json::Value;

/// A patch to apply with [`crate::Store::patch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// RFC 7386 JSON merge patch: objects merge, `null` removes, anything else replaces.
    Merge(Value),
    /// RFC 6902 JSON patch: a list of `add`/`remove`/`replace`/`move`/`copy`/`test` operations.
    Json(Value),
}

/// Why a patch could not be applied; the message names the operation index and path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);

/// Applies `patch` to `target` in place.
pub fn apply_patch(target: &mut Value, patch: &Patch) -> Result<(), PatchError> {
    match patch {
        Patch::Merge(p) => {
            merge_patch(target, p);
            Ok(())
        }
        Patch::Json(ops) => json_patch(target, ops),
    }
}

/// RFC 7386 section 2: the MergePatch algorithm.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// RFC 6902 section 4: applies each operation in order; any failure leaves `target` unchanged.
fn json_patch(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let Value::Array(ops) = ops else {
        return Err(PatchError(
            "a JSON patch must be an array of operations".into(),
        ));
    };
    let mut work = target.clone();
    for (index, op) in ops.iter().enumerate() {
        apply_op(&mut work, op).map_err(|e| PatchError(format!("patch operation {index}: {e}")))?;
    }
    *target = work;
    Ok(())
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let field = |name: &str| -> Result<&str, String> {
        op.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing string member {name:?}"))
    };
    let kind = field("op")?;
    let path = parse_pointer(field("path")?)?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| "missing member \"value\"".to_string())
    };
    match kind {
        "add" => add(doc, &path, value()?),
        "remove" => remove(doc, &path).map(|_| ()),
        "replace" => {
            let slot = lookup_mut(doc, &path)?;
            *slot = value()?;
            Ok(())
        }
        "move" => {
            let from = parse_pointer(field("from")?)?;
            let moved = remove(doc, &from)?;
            add(doc, &path, moved)
        }
        "copy" => {
            let from = parse_pointer(field("from")?)?;
            let copied = lookup_mut(doc, &from)?.clone();
            add(doc, &path, copied)
        }
        "test" => {
            if *lookup_mut(doc, &path)? == value()? {
                Ok(())
            } else {
                Err(format!("test failed at {}", show(&path)))
            }
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

/// RFC 6901 JSON pointer: `/a/b~1c` -> ["a", "b/c"].
fn parse_pointer(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(format!("path {text:?} must start with '/'"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn show(path: &[String]) -> String {
    format!("/{}", path.join("/"))
}

fn lookup_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut current = doc;
    for token in path {
        current = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path {} does not exist", show(path)))?;
    }
    Ok(current)
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_path)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match lookup_mut(doc, parent_path)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= items.len())
                    .ok_or_else(|| format!("bad array index at {}", show(path)))?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("parent of {} is not a container", show(path))),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    let missing = || format!("path {} does not exist", show(path));
    match lookup_mut(doc, parent_path)? {
        Value::Object(map) => map.remove(last).ok_or_else(missing),
        Value::Array(items) => {
            let index = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < items.len())
                .ok_or_else(missing)?;
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386_examples() {
        // RFC 7386 appendix A, a selection.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            apply_patch(&mut target, &Patch::Merge(patch)).unwrap();
            assert_eq!(target, expected);
        }
    }

    #[test]
    fn json_patch_operations() {
        let mut doc = json!({"spec": {"nets": ["a"], "x": 1}, "m": {"a/b": 2}});
        let ops = json!([
            {"op": "add", "path": "/spec/nets/-", "value": "b"},
            {"op": "replace", "path": "/spec/x", "value": 5},
            {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
            {"op": "move", "from": "/m/a~1b", "path": "/spec/z"},
            {"op": "test", "path": "/spec/nets/1", "value": "b"},
            {"op": "remove", "path": "/spec/nets/0"}
        ]);
        apply_patch(&mut doc, &Patch::Json(ops)).unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"nets": ["b"], "x": 5, "y": 5, "z": 2}, "m": {}})
        );
    }

    #[test]
    fn failed_json_patch_changes_nothing_and_names_the_operation() {
        let original = json!({"spec": {"x": 1}});
        let mut doc = original.clone();
        let ops = json!([
            {"op": "replace", "path": "/spec/x", "value": 2},
            {"op": "remove", "path": "/spec/nope"}
        ]);
        let err = apply_patch(&mut doc, &Patch::Json(ops)).unwrap_err();
        assert_eq!(err.0, "patch operation 1: path /spec/nope does not exist");
        assert_eq!(doc, original);
        let err = apply_patch(&mut doc, &Patch::Json(json!({"op": "add"}))).unwrap_err();
        assert!(err.0.contains("array"));
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-100i64..100).prop_map(Value::from),
            "[a-z~/]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c~/]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// A merge patch is idempotent (RFC 7386 section 1 relies on this for retries).
        #[test]
        fn merge_patch_is_idempotent(target in json_value(), patch in json_value()) {
            let mut once = target.clone();
            apply_patch(&mut once, &Patch::Merge(patch.clone())).unwrap();
            let mut twice = once.clone();
            apply_patch(&mut twice, &Patch::Merge(patch)).unwrap();
            proptest::prop_assert_eq!(once, twice);
        }

        /// `add` then `remove` at the same (escaped) object path restores the document.
        #[test]
        fn add_then_remove_restores(key in "[a-z~/]{1,5}", value in json_value()) {
            let original = json!({"spec": {"x": 1}});
            let pointer = format!("/spec/{}", key.replace('~', "~0").replace('/', "~1"));
            let mut doc = original.clone();
            let ops = json!([{"op": "add", "path": pointer, "value": value}]);
            apply_patch(&mut doc, &Patch::Json(ops)).unwrap();
            proptest::prop_assert_eq!(&doc["spec"][&key], &value);
            if key != "x" {
                let ops = json!([{"op": "remove", "path": pointer}]);
                apply_patch(&mut doc, &Patch::Json(ops)).unwrap();
                proptest::prop_assert_eq!(doc, original);
            }
        }
    }
}
