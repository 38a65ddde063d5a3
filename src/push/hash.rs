//! The content hash of an object: what meshintent decides about it (labels, annotations, spec),
//! kept in an annotation so that an unchanged object is recognised without a write.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const ANNOTATION_HASH: &str = "meshintent.io/spec-hash";

/// Object keys sorted at every level, so that equal content hashes equally whatever the order
/// a server returns it in; whole-number floats as integers, because the API server stores a
/// custom resource's `10.0` as `10` and the two must compare equal.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Number(n) => match n.as_f64() {
            // Below 2^53 every whole float is exactly an i64.
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

/// The hash of `object`'s spec and of the labels and annotations that `reference` sets (other
/// actors may add their own), ignoring the hash annotation itself.
pub fn content_hash(object: &Value, reference: &Value) -> String {
    let pick = |field: &str| -> Value {
        let wanted = reference["metadata"][field].as_object();
        let mut out = Map::new();
        if let Some(wanted) = wanted {
            for key in wanted.keys().filter(|k| *k != ANNOTATION_HASH) {
                out.insert(
                    key.clone(),
                    object["metadata"][field]
                        .get(key)
                        .cloned()
                        .unwrap_or(Value::Null),
                );
            }
        }
        Value::Object(out)
    };
    let content = serde_json::json!({
        "labels": pick("labels"),
        "annotations": pick("annotations"),
        "spec": object.get("spec").cloned().unwrap_or(Value::Null),
    });
    let digest = Sha256::digest(canonical(&content).to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of a desired object (against itself).
pub fn desired_hash(object: &Value) -> String {
    content_hash(object, object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_content_in_any_key_order_hashes_equally() {
        let a = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1, "y": {"p": 1, "q": 2}}});
        let b = json!({"spec": {"y": {"q": 2, "p": 1}, "x": 1}, "metadata": {"labels": {"b": "2", "a": "1"}}});
        assert_eq!(desired_hash(&a), desired_hash(&b));
    }

    #[test]
    fn whole_number_floats_hash_as_the_integers_the_api_server_stores() {
        let sent = json!({"spec": {"fault": {"abort": {"percentage": {"value": 10.0}}}}});
        let stored = json!({"spec": {"fault": {"abort": {"percentage": {"value": 10}}}}});
        assert_eq!(desired_hash(&sent), desired_hash(&stored));
        let fraction = json!({"spec": {"fault": {"abort": {"percentage": {"value": 10.5}}}}});
        assert_ne!(desired_hash(&fraction), desired_hash(&stored));
    }

    #[test]
    fn changes_to_spec_or_our_labels_change_the_hash() {
        let desired = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}});
        let mut live = desired.clone();
        live["metadata"]["labels"]["other"] = json!("added by someone");
        live["metadata"]["annotations"] = json!({ANNOTATION_HASH: "whatever"});
        assert_eq!(
            content_hash(&live, &desired),
            desired_hash(&desired),
            "others' labels are not ours"
        );
        live["spec"]["x"] = json!(2);
        assert_ne!(content_hash(&live, &desired), desired_hash(&desired));
    }
}
