//! Descriptions where client generators and Swagger UI look for them: on every operation, and on
//! a nullable property rather than inside its `oneOf` branch (utoipa puts an `Option` field's doc
//! comment on the branch, where generators drop it).

use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::{OpenApi, RefOr};

/// Moves the description of a `oneOf` branch onto the `oneOf` itself when it has none, in every
/// component schema.
pub fn hoist_branch_descriptions(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for schema in components.schemas.values_mut() {
        hoist_in(schema);
    }
}

fn hoist_in(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => {
            for property in object.properties.values_mut() {
                hoist_in(property);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                hoist_in(items);
            }
        }
        Schema::OneOf(one_of) => {
            for item in &mut one_of.items {
                let taken = take_description(item);
                if one_of.description.is_none() {
                    one_of.description = taken;
                }
                hoist_in(item);
            }
        }
        _ => {}
    }
}

fn take_description(item: &mut RefOr<Schema>) -> Option<String> {
    match item {
        RefOr::Ref(reference) if !reference.description.is_empty() => {
            Some(std::mem::take(&mut reference.description))
        }
        RefOr::T(Schema::Object(object)) => object.description.take(),
        RefOr::T(Schema::Array(array)) => array.description.take(),
        _ => None,
    }
}

/// Gives the resource tree's create, get and delete operations (and the health checks) the
/// description the macros leave out, from the noun in their summary.
pub fn describe_operations(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post, &mut item.delete]
            .into_iter()
            .flatten()
        {
            if op.description.is_some() {
                continue;
            }
            let id = op.operation_id.as_deref().unwrap_or_default();
            let noun = op
                .summary
                .as_deref()
                .and_then(|s| s.split_once(' ').map(|(_, rest)| rest))
                .map(|rest| {
                    rest.trim_start_matches("a ")
                        .trim_start_matches("an ")
                        .to_owned()
                });
            let conflicts = op.responses.responses.contains_key("409");
            op.description = describe(id, noun.as_deref(), conflicts);
        }
    }
}

/// `conflicts`: whether the operation documents a 409.
fn describe(operation_id: &str, noun: Option<&str>, conflicts: bool) -> Option<String> {
    let text = match operation_id {
        "health_live" => "200 while the process serves requests; it reads nothing else, so an \
                          orchestrator restarts only a process that stopped answering."
            .to_owned(),
        "health_ready" => "200 when the database answers; 503 (problem+json) while it does not, \
                           so a load balancer sends no requests to this replica meanwhile."
            .to_owned(),
        _ if operation_id.ends_with("_create") => {
            let noun = noun?;
            let mut text = format!(
                "Creates the {noun} named by `metadata.name` under the path's parent: 201 with the \
                 stored {noun} (defaults filled in), its `ETag` (the revision, for `If-Match`) and \
                 `Location`. The body is checked whole: every invalid field is listed in the 422's \
                 `errors`, and nothing is written."
            );
            if conflicts {
                text.push_str(" A name already taken is 409.");
            }
            if operation_id.ends_with("token_create") {
                text.push_str(
                    " The token's secret is in this answer only: it is stored as a hash and never \
                     returned again.",
                );
            }
            text
        }
        _ if operation_id.ends_with("_get") => {
            let noun = noun?;
            format!(
                "Reads one {noun}, with its `ETag` (the revision) for a later `If-Match`. One the \
                 caller may not see answers 404, as one that does not exist does."
            )
        }
        _ if operation_id.ends_with("_delete") => {
            let noun = noun?;
            let mut text = format!(
                "Deletes the {noun}: 204. With `If-Match`, only at that revision (412 otherwise)."
            );
            if conflicts {
                text.push_str(
                    " Refused with 409, and nothing deleted, while something still depends on it \
                     (children, references, a deployment); the detail names what.",
                );
            }
            text
        }
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_description_moves_to_its_one_of() {
        let mut api: OpenApi = serde_json::from_value(serde_json::json!({
            "openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
            "components": {"schemas": {"S": {"type": "object", "properties": {
                "mtls": {"oneOf": [
                    {"$ref": "#/components/schemas/M", "description": "TLS towards it."},
                    {"type": "null"}
                ]},
                "port": {"oneOf": [{"type": "integer", "description": "The port."}, {"type": "null"}]}
            }}}}
        }))
        .unwrap();
        hoist_branch_descriptions(&mut api);
        let out = serde_json::to_value(&api).unwrap();
        let props = &out["components"]["schemas"]["S"]["properties"];
        assert_eq!(props["mtls"]["description"], "TLS towards it.");
        assert!(props["mtls"]["oneOf"][0].get("description").is_none());
        assert_eq!(props["port"]["description"], "The port.");
        assert!(props["port"]["oneOf"][0].get("description").is_none());
    }

    #[test]
    fn tree_operations_are_described_by_their_noun() {
        let create = describe("project_token_create", Some("project API token"), true).unwrap();
        assert!(
            create.starts_with("Creates the project API token"),
            "{create}"
        );
        assert!(create.contains("in this answer only"), "{create}");
        assert!(create.contains("409"), "{create}");
        let delete = describe("route_intent_delete", Some("route intent"), false).unwrap();
        assert!(!delete.contains("409"), "{delete}");
        let get = describe("inbound_intent_get", Some("inbound intent"), false).unwrap();
        assert!(get.starts_with("Reads one inbound intent"), "{get}");
        assert!(describe("something_else", Some("x"), true).is_none());
    }
}
