//! The resource types the fake serves, and the discovery documents describing them.

use serde_json::{Value, json};

/// One served custom resource (all are namespaced, like the Istio CRDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
}

impl ResourceType {
    /// `group/version`, the objects' `apiVersion`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// `plural.group`, as used in API server messages (`destinationrules.networking.istio.io`).
    pub fn resource_group(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

const VERBS: [&str; 8] = [
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

const fn istio(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        kind,
        plural,
        singular,
        short_names,
    }
}

/// Every resource type served: Istio `networking.istio.io/v1` and `security.istio.io/v1`.
pub const RESOURCES: &[ResourceType] = &[
    istio(
        "networking.istio.io",
        "DestinationRule",
        "destinationrules",
        "destinationrule",
        &["dr"],
    ),
    istio(
        "networking.istio.io",
        "Gateway",
        "gateways",
        "gateway",
        &["gw"],
    ),
    istio(
        "networking.istio.io",
        "ServiceEntry",
        "serviceentries",
        "serviceentry",
        &["se"],
    ),
    istio(
        "networking.istio.io",
        "VirtualService",
        "virtualservices",
        "virtualservice",
        &["vs"],
    ),
    istio(
        "security.istio.io",
        "AuthorizationPolicy",
        "authorizationpolicies",
        "authorizationpolicy",
        &["ap"],
    ),
    istio(
        "security.istio.io",
        "PeerAuthentication",
        "peerauthentications",
        "peerauthentication",
        &["pa"],
    ),
    istio(
        "security.istio.io",
        "RequestAuthentication",
        "requestauthentications",
        "requestauthentication",
        &["ra"],
    ),
];

pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

/// Group names, sorted and deduplicated.
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&str> = RESOURCES.iter().map(|r| r.group).collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

pub fn group_versions(group: &str) -> Vec<&'static str> {
    let mut versions: Vec<&str> = RESOURCES
        .iter()
        .filter(|r| r.group == group)
        .map(|r| r.version)
        .collect();
    versions.dedup();
    versions
}

fn group_version_for_discovery(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// `GET /apis/{group}`: an `APIGroup`.
pub fn api_group(group: &str) -> Value {
    let versions = group_versions(group);
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions.iter().map(|v| group_version_for_discovery(group, v)).collect::<Vec<_>>(),
        "preferredVersion": group_version_for_discovery(group, versions[0]),
    })
}

/// `GET /apis`: an `APIGroupList`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|g| {
            let mut group = api_group(g);
            let obj = group.as_object_mut().expect("object");
            obj.remove("kind");
            obj.remove("apiVersion");
            group
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}/{version}`: an `APIResourceList`.
pub fn api_resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": true,
                "kind": r.kind,
                "verbs": VERBS,
                "shortNames": r.short_names,
                "categories": ["istio-io", r.group.replace('.', "-")],
            })
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{group}/{version}"),
        "resources": resources,
    })
}

/// `GET /api`: `APIVersions` of the core group.
pub fn core_api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `GET /api/v1`: the core group serves no resources in the fake.
pub fn core_resource_list() -> Value {
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": []})
}

/// The `Content-Type` of an aggregated discovery answer.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `GET /apis` with `Accept: ...;as=APIGroupDiscoveryList`: aggregated discovery (v2).
pub fn aggregated_apis() -> Value {
    let items: Vec<Value> = groups()
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = group_versions(g)
                .into_iter()
                .map(|v| {
                    let resources: Vec<Value> = RESOURCES
                        .iter()
                        .filter(|r| r.group == g && r.version == v)
                        .map(|r| {
                            json!({
                                "resource": r.plural,
                                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                                "scope": "Namespaced",
                                "singularResource": r.singular,
                                "verbs": VERBS,
                                "shortNames": r.short_names,
                                "categories": ["istio-io", r.group.replace('.', "-")],
                            })
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `GET /api` with the aggregated `Accept`: the core group with no resources.
pub fn aggregated_core() -> Value {
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [{"metadata": {}, "versions": [{"version": "v1", "resources": [], "freshness": "Current"}]}],
    })
}

/// `GET /version`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "emulationMajor": "1",
        "emulationMinor": "36",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "35",
        "gitVersion": "v1.36.0-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.26.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}
