//! Outbound intents: external services the mesh may reach, directly or through the egress gateway.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::hosts::HostPattern;
use super::labels::Labels;
use super::names::{DnsName, Name};
use super::values::{HostAddress, Port};
use super::violations::Violations;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum PortProtocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTP2")]
    Http2,
    #[serde(rename = "GRPC")]
    Grpc,
    #[serde(rename = "HTTPS")]
    Https,
    #[serde(rename = "TLS")]
    Tls,
    #[serde(rename = "TCP")]
    Tcp,
}

impl PortProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Http => "HTTP",
            PortProtocol::Http2 => "HTTP2",
            PortProtocol::Grpc => "GRPC",
            PortProtocol::Https => "HTTPS",
            PortProtocol::Tls => "TLS",
            PortProtocol::Tcp => "TCP",
        }
    }

    pub fn is_http(self) -> bool {
        matches!(
            self,
            PortProtocol::Http | PortProtocol::Http2 | PortProtocol::Grpc
        )
    }

    /// TLS on the wire from the application (so the proxy can only route by SNI).
    pub fn is_tls(self) -> bool {
        matches!(self, PortProtocol::Https | PortProtocol::Tls)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePort {
    pub number: Port,
    /// Port name; endpoints map names to their own port numbers.
    pub name: Name,
    pub protocol: PortProtocol,
}

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
#[serde(rename_all = "UPPERCASE")]
pub enum Resolution {
    #[default]
    Dns,
    Static,
    None,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Dns => "DNS",
            Resolution::Static => "STATIC",
            Resolution::None => "NONE",
        }
    }
}

/// One address of an external service (a ServiceEntry endpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OutboundEndpoint)]
pub struct Endpoint {
    /// An IP address (resolution STATIC) or a host name (resolution DNS).
    pub address: HostAddress,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Port name to the endpoint's own port number, e.g. `{http: 443}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, u16>)]
    pub ports: BTreeMap<Name, Port>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutboundSubset {
    pub name: Name,
    pub labels: Labels,
    /// With TLS passthrough: server names routed to this subset, e.g. `*.v1.nginx.example.org`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni_hosts: Vec<HostPattern>,
    /// With TLS origination: the server name used towards this subset's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<DnsName>,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTlsMode {
    /// The application speaks TLS; the mesh routes by SNI.
    Passthrough,
    /// The application speaks plain HTTP; the mesh originates TLS.
    OriginateSimple,
    /// Like ORIGINATE_SIMPLE, presenting a client certificate.
    OriginateMutual,
}

impl OutboundTlsMode {
    pub fn originates(self) -> bool {
        !matches!(self, OutboundTlsMode::Passthrough)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutboundTls {
    pub mode: OutboundTlsMode,
    /// Secret with the client certificate (ORIGINATE_MUTUAL), in the egress gateway namespace
    /// (or the client's namespace without an egress gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<DnsName>,
    /// Server name for origination (subsets may override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<DnsName>,
    /// Names the server certificate must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<DnsName>,
}

/// An external service the mesh may reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutboundIntentSpec {
    /// FQDNs, or one wildcard such as `*.nginx.example.org`.
    pub hosts: Vec<HostPattern>,
    pub ports: Vec<ServicePort>,
    #[serde(default)]
    pub resolution: Resolution,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<OutboundSubset>,
    /// Route the traffic through the egress gateway.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub egress_gateway: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<OutboundTls>,
    /// Apps allowed to use the service. Empty: every app of the composite app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<Name>,
}

fn yes() -> bool {
    true
}

impl OutboundIntentSpec {
    pub fn port_named(&self, name: &Name) -> Option<&ServicePort> {
        self.ports.iter().find(|p| &p.name == name)
    }

    pub fn check(&self, v: &mut Violations) {
        self.check_hosts(v);
        self.check_ports(v);
        self.check_endpoints(v);
        self.check_subsets(v);
        self.check_tls(v);
        v.no_repeats(&self.clients, "/spec/clients", "app");
    }

    fn check_hosts(&self, v: &mut Violations) {
        v.check(
            self.hosts.is_empty(),
            "/spec/hosts",
            "must name at least one host",
        );
        let wildcards: Vec<usize> = (0..self.hosts.len())
            .filter(|i| self.hosts[*i].is_wildcard())
            .collect();
        if let Some(second) = wildcards.get(1) {
            v.add(
                format!("/spec/hosts/{second}"),
                "only one wildcard host is allowed per outbound intent",
            );
        }
        for (i, h) in self.hosts.iter().enumerate() {
            v.check(
                self.hosts[..i].contains(h),
                format!("/spec/hosts/{i}"),
                format!("host \"{h}\" is listed twice"),
            );
            v.check(
                h.is_wildcard() && self.resolution == Resolution::Dns && self.endpoints.is_empty(),
                format!("/spec/hosts/{i}"),
                "a wildcard host cannot be resolved by DNS; give endpoints or use resolution NONE",
            );
            v.check(
                self.resolution == Resolution::Dns
                    && self.endpoints.is_empty()
                    && !h.is_qualified(),
                format!("/spec/hosts/{i}"),
                "must be a fully qualified name when resolution is DNS without endpoints",
            );
        }
    }

    /// The first host without a wildcard: the name used as SNI towards the egress gateway.
    pub fn concrete_host(&self) -> Option<&HostPattern> {
        self.hosts.iter().find(|h| !h.is_wildcard())
    }

    /// Whether some sidecar-to-egress-gateway leg is mutual TLS: every port but those where the
    /// application's own TLS passes through (TLS and HTTPS ports).
    pub fn has_mutual_egress_leg(&self) -> bool {
        self.egress_gateway && self.ports.iter().any(|p| !p.protocol.is_tls())
    }

    fn check_ports(&self, v: &mut Violations) {
        v.check(
            self.ports.is_empty(),
            "/spec/ports",
            "must declare at least one port",
        );
        for (i, p) in self.ports.iter().enumerate() {
            if p.protocol == PortProtocol::Tcp {
                v.check(
                    self.hosts.iter().any(HostPattern::is_wildcard),
                    format!("/spec/ports/{i}/protocol"),
                    "a TCP port cannot be told apart by host name: the intent's hosts must not be wildcards (TCP is matched by a virtual IP)",
                );
                v.check(
                    self.resolution == Resolution::None,
                    format!("/spec/ports/{i}/protocol"),
                    "a TCP port needs resolution DNS or STATIC: with NONE, traffic to the virtual IP has nowhere to go",
                );
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            v.check(
                self.ports[..i].iter().any(|o| o.number == p.number),
                format!("/spec/ports/{i}/number"),
                format!("port {} is declared twice", p.number),
            );
            v.check(
                self.ports[..i].iter().any(|o| o.name == p.name),
                format!("/spec/ports/{i}/name"),
                format!("port name \"{}\" is used twice", p.name),
            );
        }
    }

    fn check_endpoints(&self, v: &mut Violations) {
        match self.resolution {
            Resolution::Static => v.check(
                self.endpoints.is_empty(),
                "/spec/endpoints",
                "resolution STATIC needs endpoints with IP addresses",
            ),
            Resolution::None => v.check(
                !self.endpoints.is_empty(),
                "/spec/endpoints",
                "resolution NONE takes no endpoints",
            ),
            Resolution::Dns => {}
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            let at = format!("/spec/endpoints/{i}");
            match (&e.address, self.resolution) {
                (HostAddress::Dns(_), Resolution::Static) => v.add(
                    format!("{at}/address"),
                    "resolution STATIC needs an IP address",
                ),
                (HostAddress::Ip(_), Resolution::Dns) => v.add(
                    format!("{at}/address"),
                    "resolution DNS needs a host name (use STATIC for IP addresses)",
                ),
                (HostAddress::Ip(ip), _) => v.check(
                    is_unroutable(ip),
                    format!("{at}/address"),
                    format!("{ip} is not a usable endpoint address"),
                ),
                _ => {}
            }
            for name in e.ports.keys() {
                v.check(
                    self.port_named(name).is_none(),
                    format!("{at}/ports/{name}"),
                    format!("names no declared port (declared: {})", self.port_names()),
                );
            }
        }
    }

    fn check_subsets(&self, v: &mut Violations) {
        for (i, s) in self.subsets.iter().enumerate() {
            let at = format!("/spec/subsets/{i}");
            v.check(
                self.subsets[..i].iter().any(|o| o.name == s.name),
                format!("{at}/name"),
                format!("subset \"{}\" is defined twice", s.name),
            );
            v.check(
                s.labels.is_empty(),
                format!("{at}/labels"),
                "must hold at least one label",
            );
            v.check(
                !self.endpoints.is_empty()
                    && !self.endpoints.iter().any(|e| e.labels.matches(&s.labels)),
                format!("{at}/labels"),
                "selects no endpoint",
            );
            let passthrough = self
                .tls
                .as_ref()
                .is_some_and(|t| t.mode == OutboundTlsMode::Passthrough);
            v.check(
                !s.sni_hosts.is_empty() && !passthrough,
                format!("{at}/sniHosts"),
                "only applies with tls.mode PASSTHROUGH",
            );
            for (j, sni) in s.sni_hosts.iter().enumerate() {
                v.check(
                    !self
                        .hosts
                        .iter()
                        .any(|h| h.covers(sni.as_str()) || h == sni),
                    format!("{at}/sniHosts/{j}"),
                    format!("\"{sni}\" is not covered by the intent's hosts"),
                );
            }
            v.check(
                s.sni.is_some() && !self.tls.as_ref().is_some_and(|t| t.mode.originates()),
                format!("{at}/sni"),
                "only applies when TLS is originated (tls.mode ORIGINATE_SIMPLE or ORIGINATE_MUTUAL)",
            );
        }
    }

    fn check_tls(&self, v: &mut Violations) {
        v.check(
            self.has_mutual_egress_leg() && self.concrete_host().is_none(),
            "/spec/hosts",
            "through the egress gateway, traffic other than passed-through TLS is sent with mutual TLS whose SNI is a host name: give at least one host without a wildcard",
        );
        let Some(tls) = &self.tls else { return };
        match tls.mode {
            OutboundTlsMode::Passthrough => {
                v.check(
                    !self.ports.iter().any(|p| p.protocol.is_tls()),
                    "/spec/tls/mode",
                    "PASSTHROUGH needs a TLS or HTTPS port",
                );
                v.check(
                    tls.credential_name.is_some() || tls.sni.is_some() || !tls.subject_alt_names.is_empty(),
                    "/spec/tls",
                    "PASSTHROUGH takes no credentialName, sni or subjectAltNames (the application does TLS itself)",
                );
            }
            OutboundTlsMode::OriginateSimple | OutboundTlsMode::OriginateMutual => {
                v.check(
                    !self.ports.iter().any(|p| p.protocol.is_http()),
                    "/spec/tls/mode",
                    "TLS origination needs an HTTP port that the application calls in plain text",
                );
                v.check(
                    tls.mode == OutboundTlsMode::OriginateMutual && tls.credential_name.is_none(),
                    "/spec/tls/credentialName",
                    "is required with ORIGINATE_MUTUAL (the Secret with the client certificate)",
                );
                v.check(
                    tls.mode == OutboundTlsMode::OriginateSimple && tls.credential_name.is_some(),
                    "/spec/tls/credentialName",
                    "only applies with ORIGINATE_MUTUAL",
                );
            }
        }
    }

    fn port_names(&self) -> String {
        self.ports
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn is_unroutable(ip: &IpAddr) -> bool {
    ip.is_unspecified() || ip.is_multicast() || ip.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(spec: serde_json::Value) -> Vec<String> {
        let spec: OutboundIntentSpec = serde_json::from_value(spec).unwrap();
        let mut v = Violations::new();
        spec.check(&mut v);
        v.into_result()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn passthrough_with_labelled_static_endpoints_is_valid() {
        let e = errors(json!({
            "hosts": ["*.nginx.example.org"],
            "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}],
            "resolution": "STATIC",
            "endpoints": [
                {"address": "192.168.0.63", "labels": {"version": "v1"}, "ports": {"https": 443}},
                {"address": "192.168.0.64", "labels": {"version": "v2"}}],
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}, "sniHosts": ["*.v1.nginx.example.org"]},
                {"name": "v2", "labels": {"version": "v2"}, "sniHosts": ["*.v2.nginx.example.org"]}],
            "tls": {"mode": "PASSTHROUGH"}
        }));
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn static_needs_ips_and_dns_needs_names() {
        let e = errors(json!({
            "hosts": ["api.example.org"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "resolution": "STATIC", "endpoints": [{"address": "api.example.org"}]}));
        assert_eq!(
            e,
            ["/spec/endpoints/0/address: resolution STATIC needs an IP address"]
        );
        let e = errors(json!({
            "hosts": ["api.example.org"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "endpoints": [{"address": "10.0.0.1"}]}));
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("/spec/endpoints/0/address"));
    }

    #[test]
    fn one_wildcard_and_declared_port_names() {
        let e = errors(json!({
            "hosts": ["*.a.org", "*.b.org"], "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
            "resolution": "NONE"}));
        assert_eq!(
            e,
            ["/spec/hosts/1: only one wildcard host is allowed per outbound intent"]
        );
        let e = errors(json!({
            "hosts": ["a.org"], "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
            "resolution": "DNS", "endpoints": [{"address": "x.a.org", "ports": {"http": 80}}]}));
        assert_eq!(
            e,
            ["/spec/endpoints/0/ports/http: names no declared port (declared: https)"]
        );
    }

    #[test]
    fn tls_mode_rules() {
        let e = errors(json!({
            "hosts": ["a.org"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "tls": {"mode": "PASSTHROUGH"}}));
        assert_eq!(e, ["/spec/tls/mode: PASSTHROUGH needs a TLS or HTTPS port"]);
        let e = errors(json!({
            "hosts": ["a.org"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "tls": {"mode": "ORIGINATE_MUTUAL"}}));
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("/spec/tls/credentialName: is required"));
    }
}
