//! The Istio kinds meshintent writes as Kubernetes API resources. The table itself is
//! `crate::istio::IstioKind` (group, version, plural, apply order).

use kube::discovery::ApiResource;

pub use crate::istio::IstioKind;

/// The API resource of a kind meshintent writes.
pub fn api_resource(kind: IstioKind) -> ApiResource {
    ApiResource {
        group: kind.group().to_owned(),
        version: kind.version().to_owned(),
        api_version: kind.api_version().to_owned(),
        kind: kind.name().to_owned(),
        plural: kind.plural().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_resources_follow_the_table() {
        let ar = api_resource(IstioKind::Gateway);
        assert_eq!(ar.plural, "gateways");
        assert_eq!(ar.api_version, "networking.istio.io/v1");
        assert_eq!(
            api_resource(IstioKind::AuthorizationPolicy).group,
            "security.istio.io"
        );
    }
}
