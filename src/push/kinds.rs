//! The Istio kinds meshintent writes, as Kubernetes API resources, and their apply order.

use kube::discovery::ApiResource;

use crate::istio::{GROUP_NETWORKING, GROUP_SECURITY, VERSION};

/// (group, kind, plural) in apply order: hosts and their policies first (ServiceEntry,
/// DestinationRule), then what routes to them (Gateway, VirtualService), authorization last.
/// Deletes go in reverse.
pub const KINDS: [(&str, &str, &str); 6] = [
    (GROUP_NETWORKING, "ServiceEntry", "serviceentries"),
    (GROUP_NETWORKING, "DestinationRule", "destinationrules"),
    (GROUP_NETWORKING, "Gateway", "gateways"),
    (GROUP_NETWORKING, "VirtualService", "virtualservices"),
    (GROUP_SECURITY, "PeerAuthentication", "peerauthentications"),
    (
        GROUP_SECURITY,
        "AuthorizationPolicy",
        "authorizationpolicies",
    ),
];

/// The API resource of a kind meshintent writes (None for any other kind).
pub fn api_resource(api_version: &str, kind: &str) -> Option<ApiResource> {
    KINDS
        .iter()
        .find(|(group, k, _)| *k == kind && api_version == format!("{group}/{VERSION}"))
        .map(|(group, kind, plural)| resource(group, kind, plural))
}

pub fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.to_owned(),
        version: VERSION.to_owned(),
        api_version: format!("{group}/{VERSION}"),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

/// The position of a kind in the apply order.
pub fn rank(kind: &str) -> usize {
    KINDS
        .iter()
        .position(|(_, k, _)| *k == kind)
        .unwrap_or(KINDS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_rules_before_routes_before_policies() {
        assert!(rank("ServiceEntry") < rank("VirtualService"));
        assert!(rank("DestinationRule") < rank("Gateway"));
        assert!(rank("VirtualService") < rank("AuthorizationPolicy"));
        assert_eq!(
            api_resource("networking.istio.io/v1", "Gateway")
                .unwrap()
                .plural,
            "gateways"
        );
        assert!(api_resource("networking.istio.io/v1beta1", "Gateway").is_none());
        assert!(api_resource("v1", "ConfigMap").is_none());
    }
}
