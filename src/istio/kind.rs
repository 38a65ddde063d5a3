//! `IstioKind`: the one table of the Istio kinds meshintent writes: group, version, kind,
//! plural and apply order.

use super::{GROUP_NETWORKING, GROUP_SECURITY, VERSION};

/// A kind meshintent writes. The variants are in apply order: hosts and their policies first
/// (ServiceEntry, DestinationRule), then what routes to them (Gateway, VirtualService),
/// authorization last. Deletes go in reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IstioKind {
    ServiceEntry,
    DestinationRule,
    Gateway,
    VirtualService,
    PeerAuthentication,
    AuthorizationPolicy,
}

/// Why an `apiVersion`/`kind` pair is not a kind meshintent writes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("meshintent does not write {kind} ({api_version})")]
pub struct UnknownKind {
    pub api_version: String,
    pub kind: String,
}

impl IstioKind {
    /// Every kind, in apply order.
    pub const ALL: [IstioKind; 6] = [
        IstioKind::ServiceEntry,
        IstioKind::DestinationRule,
        IstioKind::Gateway,
        IstioKind::VirtualService,
        IstioKind::PeerAuthentication,
        IstioKind::AuthorizationPolicy,
    ];

    /// The API group: `networking.istio.io` or `security.istio.io`.
    pub fn group(self) -> &'static str {
        match self {
            Self::ServiceEntry | Self::DestinationRule | Self::Gateway | Self::VirtualService => {
                GROUP_NETWORKING
            }
            Self::PeerAuthentication | Self::AuthorizationPolicy => GROUP_SECURITY,
        }
    }

    /// The version (the CRDs' storage version).
    pub fn version(self) -> &'static str {
        VERSION
    }

    /// `apiVersion`: `networking.istio.io/v1` or `security.istio.io/v1`.
    pub fn api_version(self) -> &'static str {
        match self.group() {
            GROUP_NETWORKING => "networking.istio.io/v1",
            _ => "security.istio.io/v1",
        }
    }

    /// `kind`, e.g. `DestinationRule`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ServiceEntry => "ServiceEntry",
            Self::DestinationRule => "DestinationRule",
            Self::Gateway => "Gateway",
            Self::VirtualService => "VirtualService",
            Self::PeerAuthentication => "PeerAuthentication",
            Self::AuthorizationPolicy => "AuthorizationPolicy",
        }
    }

    /// The resource name used in Kubernetes API paths, e.g. `destinationrules`.
    pub fn plural(self) -> &'static str {
        match self {
            Self::ServiceEntry => "serviceentries",
            Self::DestinationRule => "destinationrules",
            Self::Gateway => "gateways",
            Self::VirtualService => "virtualservices",
            Self::PeerAuthentication => "peerauthentications",
            Self::AuthorizationPolicy => "authorizationpolicies",
        }
    }

    /// The position in the apply order (deletes go in reverse).
    pub fn apply_order(self) -> usize {
        self as usize
    }

    /// The kind of an `apiVersion` and `kind` pair.
    pub fn of(api_version: &str, kind: &str) -> Result<IstioKind, UnknownKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.name() == kind)
            .ok_or_else(|| UnknownKind {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            })
    }
}

impl std::fmt::Display for IstioKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_rules_before_routes_before_policies() {
        use IstioKind::*;
        assert!(ServiceEntry.apply_order() < VirtualService.apply_order());
        assert!(DestinationRule.apply_order() < Gateway.apply_order());
        assert!(VirtualService.apply_order() < AuthorizationPolicy.apply_order());
        assert_eq!(
            IstioKind::of("networking.istio.io/v1", "Gateway")
                .unwrap()
                .plural(),
            "gateways"
        );
        assert!(IstioKind::of("networking.istio.io/v1beta1", "Gateway").is_err());
        assert!(IstioKind::of("v1", "ConfigMap").is_err());
        for (i, kind) in IstioKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.apply_order(), i);
            assert_eq!(IstioKind::of(kind.api_version(), kind.name()), Ok(kind));
            assert_eq!(
                kind.api_version(),
                format!("{}/{}", kind.group(), kind.version())
            );
        }
    }
}
