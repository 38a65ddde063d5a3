//! SPEC section 2, inbound intents on the clusters that run the service or its clients:
//! DestinationRules, PeerAuthentication and AuthorizationPolicies.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::client::AuthorizationAction as IntentAction;
use crate::domain::client::{AccessRule, SecurityIntentSpec};
use crate::domain::inbound::MtlsMode;
use crate::domain::names::Name;
use crate::istio::{
    AuthorizationAction, AuthorizationPolicySpec, DestinationRuleSpec, MtlsMode as PeerMode,
    MutualTls, Operation, PeerAuthenticationSpec, Rule, RuleFrom, RuleTo, Source, Subset,
    WorkloadSelector,
};

use super::emit::Emitter;
use super::errors::{RenderError, Subject};
use super::naming::object_name;
use super::policy::traffic_policy;
use super::topology::{InboundPlan, Reach, Site, principal};

pub const COLLECTION: &str = "inbound-intents";

/// Where one DestinationRule for the service goes, and the TLS its clients there use.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DrPlacement<'m> {
    cluster: &'m Name,
    namespace: &'m Name,
    /// `exportTo: ["."]`: rules in a client's namespace apply to that namespace only.
    local: bool,
}

/// A DestinationRule for the service on every cluster that runs it (in its namespace, for all
/// clients) and on every cluster of a client that reaches it from elsewhere or uses other TLS
/// (in the client's namespace, for that namespace only).
pub fn destination_rules(plan: &InboundPlan, out: &mut Emitter) {
    let mtls = plan.spec.mtls();
    let mut placements: BTreeMap<DrPlacement, BTreeSet<MtlsMode>> = BTreeMap::new();
    for server in &plan.servers {
        placements
            .entry(DrPlacement {
                cluster: server.name,
                namespace: plan.namespace,
                local: false,
            })
            .or_default()
            .insert(mtls);
    }
    for client in &plan.clients {
        let local = client.reach == Reach::Local;
        if local && client.mtls == mtls {
            continue; // served by the service namespace's rule
        }
        if local && client.namespace == plan.namespace {
            out.errors.push(RenderError::new(
                Subject::Client(plan.name.clone(), client.client.clone()),
                "/spec/mtls",
                format!(
                    "asks for {} but shares namespace {} with the service on cluster {}, where one DestinationRule ({}) serves both; use the same mtls or another namespace",
                    client.mtls.as_str(), client.namespace, client.site.name, mtls.as_str()
                ),
            ));
            continue;
        }
        placements
            .entry(DrPlacement {
                cluster: client.site.name,
                namespace: client.namespace,
                local: true,
            })
            .or_default()
            .insert(client.mtls);
    }
    let url = out.intent_url(COLLECTION, plan.name);
    for (placement, modes) in placements {
        if modes.len() > 1 {
            out.errors.push(RenderError::new(
                Subject::Inbound(plan.name.clone()),
                "/spec/mtls",
                format!(
                    "clients in namespace {} on cluster {} ask for different TLS modes ({}); one DestinationRule per namespace can hold one",
                    placement.namespace,
                    placement.cluster,
                    modes.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
            continue;
        }
        let mode = *modes.first().expect("one mode");
        let spec = DestinationRuleSpec {
            host: plan.host.to_string(),
            traffic_policy: Some(traffic_policy(plan.spec, mode)),
            subsets: plan
                .spec
                .subsets
                .iter()
                .map(|s| Subset {
                    name: s.name.to_string(),
                    labels: s.labels.to_map(),
                    traffic_policy: None,
                })
                .collect(),
            export_to: if placement.local {
                vec![".".into()]
            } else {
                Vec::new()
            },
            workload_selector: None,
        };
        let meta = out.meta(
            placement.cluster,
            object_name(&[plan.name.as_str(), "dr"]),
            placement.namespace.as_str(),
            &url,
        );
        out.push(placement.cluster, meta, spec);
        // Each instance of a headless service reached from elsewhere is its own host.
        if placement.local && !plan.instance_hosts.is_empty() && !plan.runs_on(placement.cluster) {
            let spec = DestinationRuleSpec {
                host: format!("*.{}", plan.host),
                traffic_policy: Some(traffic_policy(plan.spec, mode)),
                subsets: Vec::new(),
                export_to: vec![".".into()],
                workload_selector: None,
            };
            let meta = out.meta(
                placement.cluster,
                object_name(&[plan.name.as_str(), "instances-dr"]),
                placement.namespace.as_str(),
                &url,
            );
            out.push(placement.cluster, meta, spec);
        }
    }
}

fn workload_selector(plan: &InboundPlan) -> WorkloadSelector {
    WorkloadSelector {
        match_labels: plan.app.workload_labels(plan.app_name).to_map(),
    }
}

/// STRICT mutual TLS for the service's workloads when it uses Istio mTLS.
pub fn peer_authentication(plan: &InboundPlan, out: &mut Emitter) {
    if !plan.spec.sidecar || plan.spec.mtls() != MtlsMode::IstioMutual {
        return;
    }
    let url = out.intent_url(COLLECTION, plan.name);
    for server in &plan.servers {
        let spec = PeerAuthenticationSpec {
            selector: Some(workload_selector(plan)),
            mtls: Some(MutualTls {
                mode: Some(PeerMode::Strict),
            }),
            port_level_mtls: BTreeMap::new(),
        };
        let meta = out.meta(
            server.name,
            object_name(&[plan.name.as_str(), "peer-authn"]),
            plan.namespace.as_str(),
            &url,
        );
        out.push(server.name, meta, spec);
    }
}

/// The principal of a server cluster's ingress gateway.
pub fn ingress_principal(server: &Site) -> String {
    let gw = &server.spec.istio.ingress_gateway;
    principal(
        &server.spec.trust_domain,
        &gw.namespace,
        &gw.service_account,
    )
}

/// The principals a client is seen with by the service on `server`: its own (same cluster, or
/// `direct` mode, where mTLS is end to end), or the server's ingress gateway (`egressGateway`
/// mode, where TLS ends at the gateways). None when the client calls another server cluster.
fn principals_on(plan: &InboundPlan, client: &Name, server: &Site) -> BTreeSet<String> {
    plan.clients
        .iter()
        .filter(|c| c.client == client)
        .filter_map(|c| match c.reach {
            Reach::Local if c.site.name == server.name => Some(c.principal()),
            Reach::Local => None,
            Reach::Direct => Some(c.principal()),
            Reach::EgressGateway => Some(ingress_principal(server)),
        })
        .collect()
}

fn operations(rules: &[AccessRule]) -> Vec<RuleTo> {
    rules
        .iter()
        .map(|r| RuleTo {
            operation: Some(Operation {
                methods: r.methods.iter().map(|m| m.as_str().to_owned()).collect(),
                paths: r.paths.iter().map(|p| p.to_string()).collect(),
                ports: r.ports.iter().map(|p| p.to_string()).collect(),
                ..Operation::default()
            }),
        })
        .collect()
}

fn from_principals(principals: &BTreeSet<String>) -> Vec<RuleFrom> {
    vec![RuleFrom {
        source: Some(Source {
            principals: principals.iter().cloned().collect(),
            ..Source::default()
        }),
    }]
}

/// The rule of one client for one action, or None when the client has no intent of it.
/// ALLOW: with no ALLOW intent, or one without rules, the client may do everything.
fn client_rule(
    action: IntentAction,
    intents: &BTreeMap<Name, SecurityIntentSpec>,
    principals: &BTreeSet<String>,
) -> Option<Rule> {
    let of_action: Vec<&SecurityIntentSpec> =
        intents.values().filter(|s| s.action == action).collect();
    let allow_all = action == IntentAction::Allow
        && (of_action.is_empty() || of_action.iter().any(|s| s.rules.is_empty()));
    if of_action.is_empty() && !allow_all {
        return None;
    }
    let to = if allow_all {
        Vec::new()
    } else {
        of_action
            .iter()
            .flat_map(|s| operations(&s.rules))
            .collect()
    };
    Some(Rule {
        from: from_principals(principals),
        to,
        when: Vec::new(),
    })
}

/// On every cluster that runs the service: an ALLOW policy from the clients and their security
/// intents (plus `accessNamespaces` and the ingress gateway for `externalAccess`), a DENY and an
/// AUDIT policy when intents ask for them. A service with no clients gets an ALLOW policy without
/// rules, which denies everything: the documented meaning of an intent nobody may call.
pub fn authorization_policies(plan: &InboundPlan, out: &mut Emitter) {
    let url = out.intent_url(COLLECTION, plan.name);
    for server in &plan.servers {
        let mut rules: BTreeMap<IntentAction, Vec<Rule>> = BTreeMap::new();
        for (client_name, client) in &plan.intent.clients {
            let principals = principals_on(plan, client_name, server);
            if principals.is_empty() {
                continue;
            }
            for action in [IntentAction::Allow, IntentAction::Deny, IntentAction::Audit] {
                if let Some(rule) = client_rule(action, &client.security_intents, &principals) {
                    rules.entry(action).or_default().push(rule);
                }
            }
        }
        if !plan.spec.access_namespaces.is_empty() {
            rules.entry(IntentAction::Allow).or_default().push(Rule {
                from: vec![RuleFrom {
                    source: Some(Source {
                        namespaces: plan
                            .spec
                            .access_namespaces
                            .iter()
                            .map(|n| n.to_string())
                            .collect(),
                        ..Source::default()
                    }),
                }],
                ..Rule::default()
            });
        }
        if plan.spec.external_access.is_some() {
            rules.entry(IntentAction::Allow).or_default().push(Rule {
                from: from_principals(&BTreeSet::from([ingress_principal(server)])),
                ..Rule::default()
            });
        }
        let allow = rules.remove(&IntentAction::Allow).unwrap_or_default();
        let (purpose, reason) = if allow.is_empty() {
            (
                "deny-all",
                Some("no clients, accessNamespaces or externalAccess: every request is denied"),
            )
        } else {
            ("allow", None)
        };
        let mut meta = out.meta(
            server.name,
            object_name(&[plan.name.as_str(), purpose]),
            plan.namespace.as_str(),
            &url,
        );
        if let Some(reason) = reason {
            meta.annotations
                .insert("meshintent.io/reason".into(), reason.into());
        }
        let spec = AuthorizationPolicySpec {
            selector: Some(workload_selector(plan)),
            action: Some(AuthorizationAction::Allow),
            rules: allow,
            ..AuthorizationPolicySpec::default()
        };
        out.push(server.name, meta, spec);
        for (action, purpose, istio_action) in [
            (IntentAction::Deny, "deny", AuthorizationAction::Deny),
            (IntentAction::Audit, "audit", AuthorizationAction::Audit),
        ] {
            // Never a DENY or AUDIT policy without rules (istiod rejects it; DENY would deny all).
            let Some(rules) = rules.remove(&action).filter(|r| !r.is_empty()) else {
                continue;
            };
            let meta = out.meta(
                server.name,
                object_name(&[plan.name.as_str(), purpose]),
                plan.namespace.as_str(),
                &url,
            );
            out.push(
                server.name,
                meta,
                AuthorizationPolicySpec {
                    selector: Some(workload_selector(plan)),
                    action: Some(istio_action),
                    rules,
                    ..AuthorizationPolicySpec::default()
                },
            );
        }
    }
}
