//! Registered target clusters.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::labels::Labels;
use super::names::{DnsName, Name, VersionName};
use super::values::{Cidr, HostAddress, Port};
use super::violations::Violations;

/// A kubeconfig (YAML). Write-only: never serialized, never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Kubeconfig(String);

impl Kubeconfig {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<String> for Kubeconfig {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        // An empty string removes a stored kubeconfig (see ClusterSpec::kubeconfig).
        if value.is_empty() {
            return Ok(Kubeconfig(value));
        }
        // The parser's message may quote the content; never echo it back.
        let parsed = kube::config::Kubeconfig::from_yaml(&value)
            .map_err(|_| "must be a kubeconfig in YAML (it did not parse)".to_string())?;
        if parsed.clusters.is_empty() {
            return Err("must be a kubeconfig with at least one cluster".into());
        }
        if parsed.current_context.is_none() && parsed.contexts.len() != 1 {
            return Err("must name a current-context (or hold exactly one context)".into());
        }
        Ok(Kubeconfig(value))
    }
}

/// Never written out; should it ever be serialized, only a marker appears.
impl Serialize for Kubeconfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

fn always<T>(_: &T) -> bool {
    true
}

impl fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kubeconfig(<redacted>)")
    }
}

/// How clients on this cluster reach services on other clusters.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum CrossClusterMode {
    /// Sidecar-to-sidecar mutual TLS through the server cluster's ingress gateway (AUTO_PASSTHROUGH).
    #[default]
    Direct,
    /// Through this cluster's egress gateway and the server's ingress gateway, TLS between gateways.
    EgressGateway,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CrossClusterSettings {
    #[serde(default)]
    pub mode: CrossClusterMode,
    /// Range that virtual IPs for remote services are allocated from.
    #[serde(default = "default_vip_range")]
    #[schema(default = "240.240.0.0/16")]
    pub vip_range: Cidr,
}

fn default_vip_range() -> Cidr {
    "240.240.0.0/16".parse().expect("valid default")
}

impl Default for CrossClusterSettings {
    fn default() -> Self {
        Self {
            mode: CrossClusterMode::default(),
            vip_range: default_vip_range(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressGatewaySettings {
    /// Public address of the ingress gateway; needed when services of this cluster are called
    /// from other clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<HostAddress>,
    /// AUTO_PASSTHROUGH port (cross-cluster mode `direct`).
    #[serde(default = "default_passthrough_port")]
    #[schema(default = 15443)]
    pub port: Port,
    /// MUTUAL TLS port (cross-cluster mode `egressGateway`).
    #[serde(default = "default_tls_port")]
    #[schema(default = 443)]
    pub tls_port: Port,
    #[serde(default = "default_istio_namespace")]
    #[schema(default = "istio-system")]
    pub namespace: Name,
    #[serde(default = "default_ingress_selector")]
    pub selector: Labels,
    #[serde(default = "default_ingress_service_account")]
    #[schema(default = "istio-ingressgateway-service-account")]
    pub service_account: DnsName,
    /// Secret (in the gateway namespace) with the server certificate for MUTUAL.
    #[serde(default = "default_ingress_credential")]
    #[schema(default = "meshintent-ingress-cert")]
    pub credential_name: DnsName,
}

impl Default for IngressGatewaySettings {
    fn default() -> Self {
        Self {
            address: None,
            port: default_passthrough_port(),
            tls_port: default_tls_port(),
            namespace: default_istio_namespace(),
            selector: default_ingress_selector(),
            service_account: default_ingress_service_account(),
            credential_name: default_ingress_credential(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgressGatewaySettings {
    /// FQDN of the egress gateway Service.
    #[serde(default = "default_egress_service")]
    #[schema(default = "istio-egressgateway.istio-system.svc.cluster.local")]
    pub service: DnsName,
    #[serde(default = "default_istio_namespace")]
    #[schema(default = "istio-system")]
    pub namespace: Name,
    #[serde(default = "default_egress_selector")]
    pub selector: Labels,
    /// Secret (in the gateway namespace) with the client certificate presented to remote clusters.
    #[serde(default = "default_egress_credential")]
    #[schema(default = "meshintent-egress-cert")]
    pub credential_name: DnsName,
}

impl Default for EgressGatewaySettings {
    fn default() -> Self {
        Self {
            service: default_egress_service(),
            namespace: default_istio_namespace(),
            selector: default_egress_selector(),
            credential_name: default_egress_credential(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IstioSettings {
    /// Istio revision; objects for this cluster get the label `istio.io/rev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<VersionName>,
    #[serde(default)]
    pub ingress_gateway: IngressGatewaySettings,
    #[serde(default)]
    pub egress_gateway: EgressGatewaySettings,
}

/// A target cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSpec {
    #[serde(default)]
    pub labels: Labels,
    /// Kubeconfig used to reach the cluster. Write-only: stored encrypted, never returned.
    /// Omit it on PUT to keep the stored one; send "" to remove it.
    // `skip_serializing_if` (rather than `skip_serializing`) keeps the field in the OpenAPI schema.
    #[serde(default, skip_serializing_if = "always")]
    #[schema(value_type = Option<String>, format = Password, write_only)]
    pub kubeconfig: Option<Kubeconfig>,
    /// Use the service account of the pod meshintent runs in instead of a kubeconfig.
    #[serde(default)]
    pub in_cluster: bool,
    /// The cluster's global identity: SNI suffix and SAN for cross-cluster TLS.
    pub identity: DnsName,
    /// Istio trust domain of the cluster's workloads.
    #[serde(default = "default_trust_domain")]
    #[schema(default = "cluster.local")]
    pub trust_domain: DnsName,
    #[serde(default)]
    pub istio: IstioSettings,
    #[serde(default)]
    pub cross_cluster: CrossClusterSettings,
}

impl ClusterSpec {
    /// Rules between fields that the types alone cannot express.
    pub fn check(&self, v: &mut Violations) {
        v.check(
            self.in_cluster && self.kubeconfig.as_ref().is_some_and(|k| !k.is_empty()),
            "/spec/kubeconfig",
            "give either a kubeconfig or inCluster: true, not both",
        );
        let range = self.cross_cluster.vip_range.net();
        v.check(
            range.max_prefix_len() - range.prefix_len() < 2,
            "/spec/crossCluster/vipRange",
            "must hold at least 4 addresses",
        );
    }
}

/// Read-only facts about a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Whether a kubeconfig is stored (its content is never returned).
    pub kubeconfig_stored: bool,
    /// What the last cluster check found (`POST /v2/clusters/{cluster}/check`, and after each
    /// write with a kubeconfig): `Reachable`, `IstioServed`, `Permitted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<super::cluster_check::ClusterCondition>,
    /// The API server's `gitVersion`, from the last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// The image tag of istiod's Deployment, from the last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio_version: Option<String>,
    /// When the cluster was last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ClusterStatus {
    /// The status from the stored facts.
    pub fn new(kubeconfig_stored: bool, check: Option<&super::cluster_check::StoredCheck>) -> Self {
        Self {
            kubeconfig_stored,
            conditions: check.map(|c| c.conditions.clone()).unwrap_or_default(),
            kubernetes_version: check.and_then(|c| c.kubernetes_version.clone()),
            istio_version: check.and_then(|c| c.istio_version.clone()),
            last_checked_at: check.map(|c| c.checked_at),
        }
    }
}

fn default_trust_domain() -> DnsName {
    DnsName::from_static("cluster.local")
}
fn default_passthrough_port() -> Port {
    Port::new_static(15443)
}
fn default_tls_port() -> Port {
    Port::new_static(443)
}
fn default_istio_namespace() -> Name {
    Name::from_static("istio-system")
}
fn default_ingress_selector() -> Labels {
    Labels::from_static(&[("istio", "ingressgateway")])
}
fn default_egress_selector() -> Labels {
    Labels::from_static(&[("istio", "egressgateway")])
}
fn default_ingress_service_account() -> DnsName {
    DnsName::from_static("istio-ingressgateway-service-account")
}
fn default_ingress_credential() -> DnsName {
    DnsName::from_static("meshintent-ingress-cert")
}
fn default_egress_credential() -> DnsName {
    DnsName::from_static("meshintent-egress-cert")
}
fn default_egress_service() -> DnsName {
    DnsName::from_static("istio-egressgateway.istio-system.svc.cluster.local")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: secret-token}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
"#;

    #[test]
    fn defaults_are_applied() {
        let spec: ClusterSpec =
            serde_json::from_str(r#"{"identity":"cluster01.mesh.example.com"}"#).unwrap();
        assert_eq!(spec.trust_domain.as_str(), "cluster.local");
        assert_eq!(spec.istio.ingress_gateway.port.get(), 15443);
        assert_eq!(spec.istio.ingress_gateway.tls_port.get(), 443);
        assert_eq!(
            spec.istio.egress_gateway.service.as_str(),
            "istio-egressgateway.istio-system.svc.cluster.local"
        );
        assert_eq!(spec.cross_cluster.mode, CrossClusterMode::Direct);
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["crossCluster"]["vipRange"], "240.240.0.0/16");
        assert_eq!(
            json["istio"]["ingressGateway"]["selector"]["istio"],
            "ingressgateway"
        );
    }

    #[test]
    fn kubeconfig_is_never_serialized_or_printed() {
        let spec: ClusterSpec = serde_json::from_value(serde_json::json!({
            "identity": "c.example.com", "kubeconfig": KUBECONFIG
        }))
        .unwrap();
        assert!(spec.kubeconfig.is_some());
        let json = serde_json::to_string(&spec).unwrap();
        assert!(!json.contains("secret-token"));
        assert!(!json.contains("kubeconfig"));
        assert!(!format!("{spec:?}").contains("secret-token"));
    }

    #[test]
    fn invalid_kubeconfig_is_rejected_without_echo() {
        let err = Kubeconfig::try_from("secret-token: [unclosed".to_string()).unwrap_err();
        assert!(!err.contains("secret-token"));
    }
}
