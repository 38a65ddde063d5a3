//! SPEC section 7, enforcement on gateway paths: the AuthorizationPolicies on the egress gateway.
//!
//! A client allow-list must hold at the egress gateway too, not only at the service's sidecar:
//! without a policy there, any workload that can reach the gateway could use a route meshintent
//! made for someone else. Every leg from a sidecar to the egress gateway is Istio mutual TLS, so
//! the gateway knows the caller's principal, and per intent and cluster one ALLOW policy admits
//! the principals of the intent's allowed clients for the intent's hosts only:
//! `to.operation.hosts` where the gateway sees HTTP, `when: connection.sni` where it sees TLS
//! (passed-through TLS inside the mutual TLS, TCP, and cross-cluster traffic in mode
//! `egressGateway`).
//!
//! Istio semantics: once one ALLOW policy selects a workload, a request that matches no ALLOW
//! policy is denied. So every path through the egress gateway that meshintent renders gets its
//! policy (each outbound intent through the gateway, each inbound intent with clients in mode
//! `egressGateway`, on every cluster where it has clients), and no policy is emitted without
//! principals or without hosts (a rule-less ALLOW policy matches nothing).

use std::collections::BTreeSet;

use crate::domain::names::Name;
use crate::istio::{
    AuthorizationAction, AuthorizationPolicySpec, Condition, Operation, Rule, RuleFrom, RuleTo,
    Source, WorkloadSelector,
};

use super::emit::Emitter;
use super::naming::object_name;
use super::topology::Site;

/// The Istio attribute holding the server name of the TLS connection the gateway terminated.
pub const SNI_KEY: &str = "connection.sni";

/// `<intent>-egress-allow`: one per intent and cluster, in the egress gateway's namespace
/// (intent names are unique within a set across kinds, so inbound and outbound intents share
/// this form without clashing).
pub fn policy_name(intent: &Name) -> String {
    object_name(&[intent.as_str(), "egress", "allow"])
}

/// What the egress gateway of one cluster admits for one intent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// SPIFFE principals of the allowed clients on that cluster.
    pub principals: BTreeSet<String>,
    /// HTTP authorities (`to.operation.hosts`): each host, bare and with each HTTP port.
    pub hosts: BTreeSet<String>,
    /// TLS server names (`when: connection.sni`).
    pub server_names: BTreeSet<String>,
}

impl Admission {
    /// The ALLOW policy, selecting the cluster's egress gateway; None when it would admit
    /// nothing (no principals, or neither hosts nor server names).
    pub fn policy(&self, site: &Site) -> Option<AuthorizationPolicySpec> {
        if self.principals.is_empty() {
            return None;
        }
        let from = || {
            vec![RuleFrom {
                source: Some(Source {
                    principals: self.principals.iter().cloned().collect(),
                    ..Source::default()
                }),
            }]
        };
        let mut rules = Vec::new();
        if !self.hosts.is_empty() {
            rules.push(Rule {
                from: from(),
                to: vec![RuleTo {
                    operation: Some(Operation {
                        hosts: self.hosts.iter().cloned().collect(),
                        ..Operation::default()
                    }),
                }],
                when: Vec::new(),
            });
        }
        if !self.server_names.is_empty() {
            rules.push(Rule {
                from: from(),
                to: Vec::new(),
                when: vec![Condition {
                    key: SNI_KEY.to_owned(),
                    values: self.server_names.iter().cloned().collect(),
                    not_values: Vec::new(),
                }],
            });
        }
        if rules.is_empty() {
            return None;
        }
        Some(AuthorizationPolicySpec {
            selector: Some(WorkloadSelector {
                match_labels: site.spec.istio.egress_gateway.selector.to_map(),
            }),
            action: Some(AuthorizationAction::Allow),
            rules,
            ..AuthorizationPolicySpec::default()
        })
    }

    /// Emits the policy on `site` in the egress gateway's namespace (nothing when it would admit
    /// nothing).
    pub fn emit(&self, intent: &Name, site: &Site, url: &str, out: &mut Emitter) {
        let Some(spec) = self.policy(site) else {
            return;
        };
        let meta = out.meta(
            site.name,
            policy_name(intent),
            site.spec.istio.egress_gateway.namespace.as_str(),
            url,
        );
        out.push(site.name, meta, spec);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::generate::Manifests;
    use crate::istio::{AuthorizationPolicySpec, GatewaySpec, IstioObject};
    use crate::offline::render_document;

    /// Two clusters; `a` runs on both, `b` and `c` on cluster01 only, `d` on cluster02 only.
    fn outbound_document(clients: &str, port: &str, tls: &str) -> String {
        format!(
            r#"
clusters:
  - metadata: {{name: cluster01}}
    spec: {{identity: cluster01.mesh.example.com}}
  - metadata: {{name: cluster02}}
    spec: {{identity: cluster02.mesh.example.com, trustDomain: two.example.org}}
projects:
  - metadata: {{name: p}}
    compositeApps:
      - metadata: {{name: ca}}
        spec: {{version: v1}}
        apps:
          - metadata: {{name: a}}
            spec: {{namespace: ns-a, placement: {{clusters: [cluster01, cluster02]}}}}
          - metadata: {{name: b}}
            spec: {{namespace: ns-b, placement: {{clusters: [cluster01]}}, serviceAccount: b-sa}}
          - metadata: {{name: c}}
            spec: {{namespace: ns-a, placement: {{clusters: [cluster01]}}}}
          - metadata: {{name: d}}
            spec: {{namespace: ns-d, placement: {{clusters: [cluster02]}}}}
        trafficIntentSets:
          - metadata: {{name: s}}
            outboundIntents:
              - metadata: {{name: api}}
                spec:
                  hosts: [api.example.com]
                  ports: [{port}]
                  resolution: DNS
                  {tls}
                  clients: [{clients}]
"#
        )
    }

    fn http(clients: &str) -> Manifests {
        render_document(&outbound_document(
            clients,
            "{number: 80, name: http, protocol: HTTP}",
            "",
        ))
        .expect("renders")
    }

    fn policy<'m>(
        manifests: &'m Manifests,
        cluster: &str,
        name: &str,
    ) -> Option<&'m AuthorizationPolicySpec> {
        manifests
            .iter()
            .filter(|(c, _)| c.as_str() == cluster)
            .flat_map(|(_, objects)| objects)
            .find_map(|o| match o {
                IstioObject::AuthorizationPolicy(p)
                    if p.metadata.name == name && p.metadata.namespace == "istio-system" =>
                {
                    Some(&p.spec)
                }
                _ => None,
            })
    }

    fn principals(policy: &AuthorizationPolicySpec) -> BTreeSet<String> {
        policy
            .rules
            .iter()
            .flat_map(|r| &r.from)
            .filter_map(|f| f.source.as_ref())
            .flat_map(|s| s.principals.iter().cloned())
            .collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_client_not_in_clients_is_not_among_the_principals() {
        let manifests = http("a, b");
        let one = policy(&manifests, "cluster01", "api-egress-allow").expect("policy");
        // c shares a's namespace and runs on the same cluster, but is no client.
        assert_eq!(
            principals(one),
            set(&[
                "cluster.local/ns/ns-a/sa/a",
                "cluster.local/ns/ns-b/sa/b-sa"
            ])
        );
        assert_eq!(
            one.selector.as_ref().unwrap().match_labels["istio"],
            "egressgateway"
        );
        // On cluster02 only a runs; d is no client. Its own trust domain.
        let two = policy(&manifests, "cluster02", "api-egress-allow").expect("policy");
        assert_eq!(principals(two), set(&["two.example.org/ns/ns-a/sa/a"]));
        // Every rule names principals: none admits anyone else.
        for rule in one.rules.iter().chain(&two.rules) {
            assert!(!rule.from.is_empty(), "{rule:?}");
        }
    }

    #[test]
    fn http_is_admitted_by_host_with_and_without_the_port() {
        let manifests = http("a");
        let p = policy(&manifests, "cluster01", "api-egress-allow").unwrap();
        assert_eq!(p.rules.len(), 1);
        let hosts = &p.rules[0].to[0].operation.as_ref().unwrap().hosts;
        assert_eq!(hosts, &["api.example.com", "api.example.com:80"]);
        assert!(p.rules[0].when.is_empty());
    }

    #[test]
    fn removing_a_client_removes_its_principal() {
        let before = http("a, b");
        let after = http("a");
        assert!(
            principals(policy(&before, "cluster01", "api-egress-allow").unwrap())
                .contains("cluster.local/ns/ns-b/sa/b-sa")
        );
        assert_eq!(
            principals(policy(&after, "cluster01", "api-egress-allow").unwrap()),
            set(&["cluster.local/ns/ns-a/sa/a"])
        );
        // A cluster without clients left gets no policy (and no route) at all.
        let only_d = http("d");
        assert!(policy(&only_d, "cluster01", "api-egress-allow").is_none());
        assert!(!only_d.keys().any(|c| c.as_str() == "cluster01"));
    }

    #[test]
    fn tls_is_admitted_by_server_name() {
        let manifests = render_document(&outbound_document(
            "b",
            "{number: 443, name: tls, protocol: TLS}",
            "tls: {mode: PASSTHROUGH}",
        ))
        .expect("renders");
        let p = policy(&manifests, "cluster01", "api-egress-allow").unwrap();
        assert_eq!(p.rules.len(), 1);
        let rule = &p.rules[0];
        assert!(rule.to.is_empty(), "no HTTP attributes for TLS");
        assert_eq!(rule.when.len(), 1);
        assert_eq!(rule.when[0].key, "connection.sni");
        assert_eq!(rule.when[0].values, ["api.example.com"]);
        assert_eq!(principals(p), set(&["cluster.local/ns/ns-b/sa/b-sa"]));
    }

    /// consumer1 runs xx and yy, consumer2 runs zz; all call svc on the provider in mode
    /// egressGateway unless left out of `clients`.
    fn cross_cluster(clients: &[&str]) -> Manifests {
        let clients: String = clients
            .iter()
            .map(|c| {
                format!("\n                  - {{metadata: {{name: {c}}}, spec: {{app: {c}}}}}")
            })
            .collect();
        render_document(&format!(
            r#"
clusters:
  - metadata: {{name: consumer1}}
    spec: {{identity: consumer1.mesh.example.com, crossCluster: {{mode: egressGateway}}}}
  - metadata: {{name: consumer2}}
    spec: {{identity: consumer2.mesh.example.com, crossCluster: {{mode: egressGateway}}}}
  - metadata: {{name: provider}}
    spec: {{identity: provider.mesh.example.com, istio: {{ingressGateway: {{address: 192.0.2.1}}}}}}
projects:
  - metadata: {{name: p}}
    compositeApps:
      - metadata: {{name: ca}}
        spec: {{version: v1}}
        apps:
          - metadata: {{name: svc}}
            spec: {{namespace: backend, placement: {{clusters: [provider]}}}}
          - metadata: {{name: xx}}
            spec: {{namespace: front, placement: {{clusters: [consumer1]}}}}
          - metadata: {{name: yy}}
            spec: {{namespace: front, placement: {{clusters: [consumer1]}}}}
          - metadata: {{name: zz}}
            spec: {{namespace: front, placement: {{clusters: [consumer2]}}}}
        trafficIntentSets:
          - metadata: {{name: s}}
            inboundIntents:
              - metadata: {{name: svc}}
                spec: {{app: svc, serviceName: svc, port: 7000, protocol: TCP}}
                clients:{clients}
"#
        ))
        .expect("renders")
    }

    fn provider_sans(manifests: &Manifests) -> Vec<String> {
        manifests
            .iter()
            .filter(|(c, _)| c.as_str() == "provider")
            .flat_map(|(_, objects)| objects)
            .find_map(|o| match o {
                IstioObject::Gateway(g) if g.metadata.name == "svc-cross-cluster" => {
                    Some(gateway_sans(&g.spec))
                }
                _ => None,
            })
            .expect("provider Gateway")
    }

    fn gateway_sans(spec: &GatewaySpec) -> Vec<String> {
        spec.servers
            .iter()
            .flat_map(|s| s.tls.iter().flat_map(|t| t.subject_alt_names.clone()))
            .collect()
    }

    #[test]
    fn cross_cluster_clients_are_admitted_at_the_consumer_egress_gateway_by_sni() {
        let manifests = cross_cluster(&["xx", "zz"]);
        let one = policy(&manifests, "consumer1", "svc-egress-allow").expect("policy");
        // yy runs beside xx but is no client.
        assert_eq!(principals(one), set(&["cluster.local/ns/front/sa/xx"]));
        assert_eq!(one.rules[0].when[0].key, "connection.sni");
        assert_eq!(
            one.rules[0].when[0].values,
            ["svc.backend.provider.mesh.example.com"]
        );
        assert_eq!(
            provider_sans(&manifests),
            ["consumer1.mesh.example.com", "consumer2.mesh.example.com"]
        );
    }

    #[test]
    fn removing_a_cross_cluster_client_removes_its_principal_and_its_cluster() {
        let both = cross_cluster(&["xx", "yy", "zz"]);
        assert_eq!(
            principals(policy(&both, "consumer1", "svc-egress-allow").unwrap()),
            set(&[
                "cluster.local/ns/front/sa/xx",
                "cluster.local/ns/front/sa/yy"
            ])
        );
        let without_yy = cross_cluster(&["xx", "zz"]);
        assert_eq!(
            principals(policy(&without_yy, "consumer1", "svc-egress-allow").unwrap()),
            set(&["cluster.local/ns/front/sa/xx"])
        );
        // Without zz, consumer2 has no client of svc: no policy there, and the provider's
        // Gateway no longer accepts consumer2's certificate.
        let without_zz = cross_cluster(&["xx"]);
        assert!(policy(&without_zz, "consumer2", "svc-egress-allow").is_none());
        assert_eq!(provider_sans(&without_zz), ["consumer1.mesh.example.com"]);
    }

    #[test]
    fn egress_gateway_subset_names_two_intents_share_are_refused() {
        // `api` with subset `v1` and an intent named `api-v1` would both define subset `api-v1`
        // of the egress gateway's Service in namespace ns-a, where Istio merges the rules.
        let document = outbound_document(
            "a",
            "{number: 443, name: tls, protocol: TLS}",
            "tls: {mode: PASSTHROUGH}\n                  subsets: [{name: v1, labels: {version: v1}}]",
        )
        .replace(
            "            outboundIntents:\n",
            "            outboundIntents:\n              - metadata: {name: api-v1}\n                spec: {hosts: [v1.example.com], ports: [{number: 443, name: tls, protocol: TLS}], tls: {mode: PASSTHROUGH}, clients: [a]}\n",
        );
        let error = format!("{:?}", render_document(&document).expect_err("a clash"));
        assert!(error.contains("produces subset api-v1"), "{error}");
        assert!(error.contains("as does outbound intent"), "{error}");
    }
}
