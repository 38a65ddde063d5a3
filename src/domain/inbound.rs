//! Inbound intents: a service exposed in the mesh, with its traffic policy and subsets.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::http::HeaderName;
use super::labels::Labels;
use super::names::{DnsName, Name, ServiceName};
use super::values::{Amount, Count, GoDuration, Port, WholePercent};
use super::violations::Violations;

/// Application protocol of the exposed port.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Protocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTP2")]
    Http2,
    #[serde(rename = "GRPC")]
    Grpc,
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "TLS")]
    Tls,
    #[serde(rename = "HTTPS")]
    Https,
}

impl Protocol {
    /// Whether the sidecar sees HTTP requests (so methods, paths and HTTP routes apply).
    /// HTTPS is TLS from the application itself: to the sidecar it is opaque, like TLS.
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Http2 | Protocol::Grpc)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Http2 => "HTTP2",
            Protocol::Grpc => "GRPC",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
            Protocol::Https => "HTTPS",
        }
    }
}

/// TLS used by clients towards the service.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    IstioMutual,
    Simple,
    Mutual,
    Disable,
}

impl MtlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::IstioMutual => "ISTIO_MUTUAL",
            MtlsMode::Simple => "SIMPLE",
            MtlsMode::Mutual => "MUTUAL",
            MtlsMode::Disable => "DISABLE",
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLoadBalancer {
    RoundRobin,
    LeastRequest,
    Random,
    Passthrough,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpCookie {
    pub name: HeaderName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<GoDuration>,
}

/// Session affinity: exactly one hash key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsistentHash {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header_name: Option<HeaderName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_cookie: Option<HttpCookie>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_source_ip: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_query_parameter_name: Option<HeaderName>,
}

/// Load balancing: `simple` or `consistentHash`, not both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple: Option<SimpleLoadBalancer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_hash: Option<ConsistentHash>,
}

/// Connection limits (circuit breaking), as Istio's `connectionPool.tcp` and `.http`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<Count>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1_max_pending_requests: Option<Count>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_max_requests: Option<Count>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<Count>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<GoDuration>,
}

impl ConnectionPool {
    pub fn is_empty(&self) -> bool {
        *self == ConnectionPool::default()
    }

    pub fn has_http_settings(&self) -> bool {
        self.http1_max_pending_requests.is_some()
            || self.http2_max_requests.is_some()
            || self.max_requests_per_connection.is_some()
            || self.max_retries.is_some()
            || self.idle_timeout.is_some()
    }
}

/// Ejection of failing endpoints (circuit breaking), as Istio's `outlierDetection`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutlierDetection {
    #[serde(
        default,
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<Amount>,
    /// Time between ejection sweeps (the original design's `intervalSweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<WholePercent>,
}

impl OutlierDetection {
    pub fn is_empty(&self) -> bool {
        *self == OutlierDetection::default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
}

impl TrafficPolicy {
    pub fn is_empty(&self) -> bool {
        self.load_balancer.is_none()
            && self.connection_pool.is_none()
            && self.outlier_detection.is_none()
    }

    pub fn check(&self, at: &str, protocol: Protocol, v: &mut Violations) {
        if let Some(lb) = &self.load_balancer {
            let at = format!("{at}/loadBalancer");
            match (&lb.simple, &lb.consistent_hash) {
                (Some(_), Some(_)) | (None, None) => {
                    v.add(&at, "give exactly one of simple or consistentHash")
                }
                (None, Some(hash)) => {
                    check_consistent_hash(hash, &format!("{at}/consistentHash"), protocol, v)
                }
                (Some(_), None) => {}
            }
        }
        if let Some(pool) = &self.connection_pool {
            let at = format!("{at}/connectionPool");
            v.check(
                pool.is_empty(),
                &at,
                "must set at least one limit (or be left out)",
            );
            v.check(
                pool.has_http_settings() && !protocol.is_http(),
                &at,
                format!(
                    "HTTP limits (http1MaxPendingRequests, http2MaxRequests, maxRequestsPerConnection, maxRetries, idleTimeout) do not apply to {} services; use maxConnections and connectTimeout",
                    protocol.as_str()
                ),
            );
        }
        if let Some(od) = &self.outlier_detection {
            v.check(
                od.is_empty(),
                format!("{at}/outlierDetection"),
                "must set at least one field (or be left out)",
            );
        }
    }
}

fn check_consistent_hash(hash: &ConsistentHash, at: &str, protocol: Protocol, v: &mut Violations) {
    let keys = [
        hash.http_header_name.is_some(),
        hash.http_cookie.is_some(),
        hash.use_source_ip.is_some(),
        hash.http_query_parameter_name.is_some(),
    ];
    v.check(
        keys.iter().filter(|k| **k).count() != 1,
        at,
        "give exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName",
    );
    v.check(
        hash.use_source_ip == Some(false),
        format!("{at}/useSourceIp"),
        "must be true when given (leave it out otherwise)",
    );
    let http_keyed = hash.http_header_name.is_some()
        || hash.http_cookie.is_some()
        || hash.http_query_parameter_name.is_some();
    v.check(
        http_keyed && !protocol.is_http(),
        at,
        format!(
            "{} services can only hash on useSourceIp",
            protocol.as_str()
        ),
    );
    if let Some(cookie) = &hash.http_cookie
        && let Some(path) = &cookie.path
    {
        v.check(
            !path.starts_with('/') || path.chars().any(char::is_control),
            format!("{at}/httpCookie/path"),
            "must start with / and contain no control characters",
        );
    }
}

/// A named group of the service's endpoints, selected by labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subset {
    pub name: Name,
    pub labels: Labels,
}

/// Checks a list of subsets at `at` (e.g. `/spec/subsets`): unique names, non-empty labels.
pub fn check_subsets(subsets: &[Subset], at: &str, v: &mut Violations) {
    for (i, s) in subsets.iter().enumerate() {
        v.check(
            subsets[..i].iter().any(|o| o.name == s.name),
            format!("{at}/{i}/name"),
            format!("subset \"{}\" is defined twice", s.name),
        );
        v.check(
            s.labels.is_empty(),
            format!("{at}/{i}/labels"),
            "must hold at least one label",
        );
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GatewayTlsMode {
    /// Server certificate only.
    Simple,
    /// Server certificate, and clients must present a certificate.
    Mutual,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayTls {
    pub mode: GatewayTlsMode,
    /// Secret in the ingress gateway namespace with the certificate (and CA for MUTUAL).
    pub credential_name: DnsName,
}

/// Exposure through the ingress gateway to clients outside the mesh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalAccess {
    /// Host names clients use, e.g. `httpbin.example.com` (or a wildcard `*.example.com`).
    pub hosts: Vec<super::hosts::HostPattern>,
    /// Gateway port. Default: 443 with tls, 80 without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// TLS at the gateway. Without it the gateway serves plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GatewayTls>,
}

impl ExternalAccess {
    pub fn port(&self) -> Port {
        self.port.unwrap_or(if self.tls.is_some() {
            Port::new_static(443)
        } else {
            Port::new_static(80)
        })
    }
}

/// TLS the client sidecars originate when `mtls` is SIMPLE or MUTUAL (the service terminates TLS itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientTls {
    /// Secret (in each client's namespace) with the client certificate, key and CA. Required for MUTUAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<DnsName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<DnsName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<DnsName>,
}

/// A service exposed in the mesh (the server side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InboundIntentSpec {
    /// The app (of this composite app version) that runs the service.
    pub app: Name,
    /// The Kubernetes Service in the app's namespace.
    pub service_name: ServiceName,
    /// The Service port exposed in the mesh.
    pub port: Port,
    pub protocol: Protocol,
    /// Every instance is addressed (as for a StatefulSet).
    #[serde(default)]
    pub headless: bool,
    /// With `headless`: the instance host names (e.g. StatefulSet pod names `redis-0`, `redis-1`),
    /// addressed as `<instance>.<service FQDN>`. Clients on other clusters get each instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Name>,
    /// Whether the service's pods run an Istio sidecar. Without one only routing is possible:
    /// no mTLS, load balancing or circuit breaking.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub sidecar: bool,
    /// TLS towards the service. Default: ISTIO_MUTUAL with a sidecar, DISABLE without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<ClientTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    /// Namespaces whose workloads may call the service (in addition to the clients).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_namespaces: Vec<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_access: Option<ExternalAccess>,
}

fn yes() -> bool {
    true
}

impl InboundIntentSpec {
    pub fn with_defaults(mut self) -> Self {
        self.mtls = Some(self.mtls());
        self
    }

    /// The TLS towards the service: as given, else ISTIO_MUTUAL with a sidecar, DISABLE without.
    pub fn mtls(&self) -> MtlsMode {
        self.mtls.unwrap_or(if self.sidecar {
            MtlsMode::IstioMutual
        } else {
            MtlsMode::Disable
        })
    }

    pub fn check(&self, v: &mut Violations) {
        let mtls = self.mtls();
        if !self.sidecar {
            v.check(
                mtls != MtlsMode::Disable,
                "/spec/mtls",
                "needs a sidecar: without one only routing is possible (leave mtls out or set DISABLE)",
            );
            v.check(
                self.traffic_policy.is_some(),
                "/spec/trafficPolicy",
                "needs a sidecar: without one there is no load balancing or circuit breaking",
            );
        }
        match mtls {
            MtlsMode::Mutual => v.check(
                self.client_tls
                    .as_ref()
                    .is_none_or(|t| t.credential_name.is_none()),
                "/spec/clientTls/credentialName",
                "is required when mtls is MUTUAL (the Secret with the client certificate)",
            ),
            MtlsMode::Simple => {}
            MtlsMode::IstioMutual | MtlsMode::Disable => v.check(
                self.client_tls.is_some(),
                "/spec/clientTls",
                "only applies when mtls is SIMPLE or MUTUAL",
            ),
        }
        if let Some(policy) = &self.traffic_policy {
            policy.check("/spec/trafficPolicy", self.protocol, v);
        }
        check_subsets(&self.subsets, "/spec/subsets", v);
        v.check(
            self.headless && self.instances.is_empty(),
            "/spec/instances",
            "is required with headless: list the instance host names (e.g. StatefulSet pod names) so each stays addressable across clusters",
        );
        v.check(
            !self.headless && !self.instances.is_empty(),
            "/spec/instances",
            "only applies to headless services",
        );
        v.no_repeats(&self.instances, "/spec/instances", "instance");
        v.no_repeats(
            &self.access_namespaces,
            "/spec/accessNamespaces",
            "namespace",
        );
        if let Some(access) = &self.external_access {
            v.check(
                access.hosts.is_empty(),
                "/spec/externalAccess/hosts",
                "must name at least one host",
            );
            v.check(
                matches!(self.protocol, Protocol::Tls | Protocol::Https),
                "/spec/externalAccess",
                "is not supported for TLS or HTTPS services (the gateway would have to pass TLS through); use HTTP, HTTP2, GRPC or TCP",
            );
            v.check(
                self.protocol == Protocol::Tcp && access.tls.is_none(),
                "/spec/externalAccess/tls",
                "is required for TCP services (the gateway routes TCP by its TLS server name)",
            );
            v.no_repeats(&access.hosts, "/spec/externalAccess/hosts", "host");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> InboundIntentSpec {
        let mut base =
            json!({"app":"httpbin","serviceName":"httpbin","port":8000,"protocol":"HTTP"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn fields(s: &InboundIntentSpec) -> Vec<String> {
        let mut v = Violations::new();
        s.check(&mut v);
        v.into_result()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn mtls_defaults_follow_the_sidecar() {
        assert_eq!(spec(json!({})).mtls(), MtlsMode::IstioMutual);
        assert_eq!(spec(json!({"sidecar": false})).mtls(), MtlsMode::Disable);
        let shown = serde_json::to_value(spec(json!({})).with_defaults()).unwrap();
        assert_eq!(shown["mtls"], "ISTIO_MUTUAL");
        assert_eq!(shown["sidecar"], true);
    }

    #[test]
    fn without_sidecar_no_mtls_or_policy() {
        let s = spec(json!({"sidecar": false, "mtls": "ISTIO_MUTUAL",
            "trafficPolicy": {"connectionPool": {"maxConnections": 10}}}));
        assert_eq!(fields(&s), ["/spec/mtls", "/spec/trafficPolicy"]);
    }

    #[test]
    fn circuit_breaking_is_valid() {
        let s = spec(json!({"trafficPolicy": {
            "connectionPool": {"maxConnections": 10, "connectTimeout": "10s"},
            "outlierDetection": {"consecutive5xxErrors": 7, "interval": "5m", "baseEjectionTime": "15m"},
            "loadBalancer": {"consistentHash": {"httpCookie": {"name": "user", "ttl": "0.5s"}}}
        }}));
        assert!(fields(&s).is_empty(), "{:?}", fields(&s));
    }

    #[test]
    fn load_balancer_needs_one_form() {
        let s = spec(json!({"trafficPolicy": {"loadBalancer": {
            "simple": "RANDOM", "consistentHash": {"useSourceIp": true}}}}));
        assert_eq!(fields(&s), ["/spec/trafficPolicy/loadBalancer"]);
        let s = spec(json!({"trafficPolicy": {"loadBalancer": {"consistentHash": {}}}}));
        assert_eq!(
            fields(&s),
            ["/spec/trafficPolicy/loadBalancer/consistentHash"]
        );
    }

    #[test]
    fn http_limits_do_not_fit_tcp() {
        let s = spec(
            json!({"protocol": "TCP", "trafficPolicy": {"connectionPool": {"http2MaxRequests": 5}}}),
        );
        assert_eq!(fields(&s), ["/spec/trafficPolicy/connectionPool"]);
    }

    #[test]
    fn duplicate_subsets_are_rejected() {
        let s = spec(json!({"subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v1", "labels": {"version": "v2"}}]}));
        assert_eq!(fields(&s), ["/spec/subsets/1/name"]);
    }

    #[test]
    fn mutual_needs_a_credential() {
        let s = spec(json!({"mtls": "MUTUAL"}));
        assert_eq!(fields(&s), ["/spec/clientTls/credentialName"]);
        let s = spec(json!({"mtls": "MUTUAL", "clientTls": {"credentialName": "client-cert"}}));
        assert!(fields(&s).is_empty());
    }

    #[test]
    fn headless_needs_instances() {
        assert_eq!(
            fields(&spec(json!({"headless": true}))),
            ["/spec/instances"]
        );
        assert_eq!(
            fields(&spec(json!({"instances": ["a-0"]}))),
            ["/spec/instances"]
        );
        assert!(
            fields(&spec(
                json!({"headless": true, "instances": ["a-0", "a-1"]})
            ))
            .is_empty()
        );
    }

    #[test]
    fn external_access_port_defaults() {
        let s = spec(json!({"externalAccess": {"hosts": ["httpbin.example.com"]}}));
        assert_eq!(s.external_access.unwrap().port().get(), 80);
        let s = spec(json!({"externalAccess": {"hosts": ["httpbin.example.com"],
            "tls": {"mode": "SIMPLE", "credentialName": "httpbin-cert"}}}));
        assert_eq!(s.external_access.unwrap().port().get(), 443);
    }
}
