//! Which policy action every `/v2` operation is: the one table the guard consults. An
//! operation missing here is refused (403), and a test fails for it, so a new endpoint cannot
//! be open by accident.

use actix_web::http::Method;
use utoipa::openapi::OpenApi;

use crate::domain::access::Action;

/// Every `/v2` operation id with its action.
const POLICY: &[(&str, Action)] = &[
    ("credentials_adapt", Action::AdaptCredentials),
    ("cluster_list", Action::ReadClusters),
    ("cluster_get", Action::ReadClusters),
    ("cluster_create", Action::WriteClusters),
    ("cluster_replace", Action::WriteClusters),
    ("cluster_delete", Action::WriteClusters),
    ("project_list", Action::ListProjects),
    ("project_create", Action::CreateProject),
    ("project_get", Action::ReadProject),
    ("project_replace", Action::UpdateProject),
    ("project_delete", Action::DeleteProject),
    ("composite_app_list", Action::ReadProject),
    ("composite_app_get", Action::ReadProject),
    ("composite_app_create", Action::WriteProject),
    ("composite_app_replace", Action::WriteProject),
    ("composite_app_delete", Action::WriteProject),
    ("app_list", Action::ReadProject),
    ("app_get", Action::ReadProject),
    ("app_create", Action::WriteProject),
    ("app_replace", Action::WriteProject),
    ("app_delete", Action::WriteProject),
    ("traffic_intent_set_list", Action::ReadProject),
    ("traffic_intent_set_get", Action::ReadProject),
    ("traffic_intent_set_create", Action::WriteProject),
    ("traffic_intent_set_replace", Action::WriteProject),
    ("traffic_intent_set_delete", Action::WriteProject),
    ("traffic_intent_set_manifests", Action::ReadProject),
    ("traffic_intent_set_replace_document", Action::WriteProject),
    ("traffic_intent_set_status", Action::ReadProject),
    ("traffic_intent_set_deploy", Action::WriteProject),
    ("traffic_intent_set_terminate", Action::WriteProject),
    ("traffic_intent_set_reconcile", Action::WriteProject),
    ("deployment_list", Action::ReadProject),
    ("deployment_get", Action::ReadProject),
    ("traffic_intent_set_events", Action::ReadProject),
    ("project_events", Action::ReadProject),
    // Like `status?verify=true`: the stored set's own objects, read (and dry-run applied) with
    // meshintent's credentials; what is sent was decided by the project's writers.
    ("traffic_intent_set_plan", Action::ReadProject),
    // A proposed set: a server-side dry run needs the permission of the write it tries (as
    // `kubectl diff` needs `patch`), and the trial write locks the set.
    ("traffic_intent_set_plan_document", Action::WriteProject),
    ("inbound_intent_list", Action::ReadProject),
    ("inbound_intent_get", Action::ReadProject),
    ("inbound_intent_create", Action::WriteProject),
    ("inbound_intent_replace", Action::WriteProject),
    ("inbound_intent_delete", Action::WriteProject),
    ("client_list", Action::ReadProject),
    ("client_get", Action::ReadProject),
    ("client_binding", Action::ReadProject),
    ("client_create", Action::WriteProject),
    ("client_replace", Action::WriteProject),
    ("client_delete", Action::WriteProject),
    ("security_intent_list", Action::ReadProject),
    ("security_intent_get", Action::ReadProject),
    ("security_intent_create", Action::WriteProject),
    ("security_intent_replace", Action::WriteProject),
    ("security_intent_delete", Action::WriteProject),
    ("outbound_intent_list", Action::ReadProject),
    ("outbound_intent_get", Action::ReadProject),
    ("outbound_intent_create", Action::WriteProject),
    ("outbound_intent_replace", Action::WriteProject),
    ("outbound_intent_delete", Action::WriteProject),
    ("route_intent_list", Action::ReadProject),
    ("route_intent_get", Action::ReadProject),
    ("route_intent_create", Action::WriteProject),
    ("route_intent_replace", Action::WriteProject),
    ("route_intent_delete", Action::WriteProject),
    ("global_role_binding_list", Action::AdministerGlobal),
    ("global_role_binding_get", Action::AdministerGlobal),
    ("global_role_binding_create", Action::AdministerGlobal),
    ("global_role_binding_replace", Action::AdministerGlobal),
    ("global_role_binding_delete", Action::AdministerGlobal),
    ("global_token_list", Action::AdministerGlobal),
    ("global_token_get", Action::AdministerGlobal),
    ("global_token_create", Action::AdministerGlobal),
    ("global_token_delete", Action::AdministerGlobal),
    ("project_role_binding_list", Action::AdministerProject),
    ("project_role_binding_get", Action::AdministerProject),
    ("project_role_binding_create", Action::AdministerProject),
    ("project_role_binding_replace", Action::AdministerProject),
    ("project_role_binding_delete", Action::AdministerProject),
    ("project_token_list", Action::AdministerProject),
    ("project_token_get", Action::AdministerProject),
    ("project_token_create", Action::AdministerProject),
    ("project_token_delete", Action::AdministerProject),
    ("audit_event_list", Action::ReadAllAudit),
    ("project_audit_event_list", Action::AdministerProject),
    ("traffic_intent_set_analysis", Action::ReadProject),
    ("cluster_check", Action::WriteClusters),
    ("traffic_intent_set_access", Action::ReadProject),
    ("traffic_intent_set_graph", Action::ReadProject),
];

/// The action of an operation; `None` means no decision was made for it (refused).
pub fn action_of(operation_id: &str) -> Option<Action> {
    POLICY
        .iter()
        .find(|(id, _)| *id == operation_id)
        .map(|(_, action)| *action)
}

/// A documented operation a request path matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    /// The `{project}` segment of the path, when the template has one.
    pub project: Option<String>,
}

/// One documented operation: its path template's segments (`None` for a parameter), method,
/// id, and which segment is `{project}`.
struct Template {
    segments: Vec<Option<String>>,
    method: Method,
    id: String,
    project: Option<usize>,
}

/// The documented operations, for finding which one a request is before routing.
pub struct OperationTable {
    operations: Vec<Template>,
}

impl OperationTable {
    pub fn from_openapi(api: &OpenApi) -> Self {
        let mut operations = Vec::new();
        for (template, item) in &api.paths.paths {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            let segments: Vec<Option<String>> = parts
                .iter()
                .map(|s| (!s.starts_with('{')).then(|| (*s).to_owned()))
                .collect();
            let project = parts.iter().position(|s| *s == "{project}");
            let methods = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, op) in methods {
                if let Some(id) = op.as_ref().and_then(|o| o.operation_id.clone()) {
                    operations.push(Template {
                        segments: segments.clone(),
                        method,
                        id,
                        project,
                    });
                }
            }
        }
        Self { operations }
    }

    /// Every operation id in the document.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.operations.iter().map(|t| t.id.as_str())
    }

    /// The operation `method path` is, preferring templates with more literal segments (as
    /// the router does). HEAD is GET.
    pub fn find(&self, method: &Method, path: &str) -> Option<Operation> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let parts = split(path);
        self.best(&parts, |t| t.method == method)
            .map(|t| Operation {
                id: t.id.clone(),
                project: t.project.map(|i| parts[i].to_owned()),
            })
    }

    /// The methods allowed on `path` (HEAD where GET is), if a documented path matches it: the
    /// `Allow` of a 405.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let parts = split(path);
        let template = &self.best(&parts, |_| true)?.segments;
        let mut methods: Vec<String> = self
            .operations
            .iter()
            .filter(|t| &t.segments == template)
            .map(|t| t.method.to_string())
            .collect();
        if methods.iter().any(|m| m == "GET") {
            methods.push("HEAD".into());
        }
        Some(methods)
    }

    /// The template matching `parts` with the most literal segments, among those `wanted`.
    fn best(&self, parts: &[&str], wanted: impl Fn(&Template) -> bool) -> Option<&Template> {
        self.operations
            .iter()
            .filter(|t| {
                wanted(t)
                    && t.segments.len() == parts.len()
                    && t.segments
                        .iter()
                        .zip(parts)
                        .all(|(s, p)| !p.is_empty() && s.as_deref().is_none_or(|s| s == *p))
            })
            .max_by_key(|t| t.segments.iter().filter(|s| s.is_some()).count())
    }
}

/// A path's segments. A trailing slash leaves an empty last segment, which no template
/// matches: `/v2/projects/` is not `/v2/projects` (see `fallback::not_routed`).
fn split(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v2_operation_has_a_policy_decision() {
        let api = super::super::openapi();
        let table = OperationTable::from_openapi(&api);
        let v2: Vec<(String, String)> = api
            .paths
            .paths
            .iter()
            .filter(|(p, _)| p.starts_with("/v2/"))
            .flat_map(|(p, item)| {
                [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                    .into_iter()
                    .flatten()
                    .map(move |op| (p.clone(), op.operation_id.clone().unwrap_or_default()))
            })
            .collect();
        assert!(v2.len() > 60, "{} operations", v2.len());
        let missing: Vec<&(String, String)> = v2
            .iter()
            .filter(|(_, id)| action_of(id).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "operations without a policy decision: {missing:?}"
        );
        // And the table names no operation that does not exist.
        let ids: Vec<&str> = table.ids().collect();
        for (id, _) in POLICY {
            assert!(ids.contains(id), "policy for unknown operation {id}");
        }
    }

    #[test]
    fn finds_operations_and_their_project() {
        let table = OperationTable::from_openapi(&super::super::openapi());
        let op = table
            .find(&Method::GET, "/v2/projects/shop/role-bindings")
            .unwrap();
        assert_eq!(op.id, "project_role_binding_list");
        assert_eq!(op.project.as_deref(), Some("shop"));
        let op = table.find(&Method::PUT, "/v2/projects/shop").unwrap();
        assert_eq!(op.id, "project_replace");
        let op = table
            .find(
                &Method::POST,
                "/v2/projects/p/composite-apps/ca/v1/traffic-intent-sets/s/deploy",
            )
            .unwrap();
        assert_eq!(op.id, "traffic_intent_set_deploy");
        assert_eq!(
            table.find(&Method::HEAD, "/v2/clusters").unwrap().id,
            "cluster_list"
        );
        assert!(table.find(&Method::PUT, "/v2/tokens/t").is_none());
        assert!(table.find(&Method::GET, "/v2/nothing").is_none());
    }
}
