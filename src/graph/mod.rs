//! The who-may-call-whom graph of a set (`GET .../graph`): apps per cluster, the external
//! services of outbound intents, the gateways on each path, and an edge per client with what it
//! may do. Pure and deterministic: built from the set's model and planned topology
//! (`generate::SetPlan`, the same plan the render uses), held in sorted maps, so the same set
//! gives byte-identical JSON and (`svg::render`) SVG.

pub mod svg;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::client::{AccessRule, AuthorizationAction};
use crate::domain::model::IntentSetModel;
use crate::domain::names::Name;
use crate::generate::SetPlan;
use crate::generate::topology::Reach;

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum GraphNodeKind {
    /// An app of the composite app on one cluster.
    App,
    /// The hosts of an outbound intent, outside the mesh.
    ExternalService,
    IngressGateway,
    EgressGateway,
    /// Every workload of a namespace (an inbound intent's `accessNamespaces`).
    Namespace,
    /// Clients outside the mesh (an inbound intent's `externalAccess`).
    Outside,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphNode {
    /// `app:<app>@<cluster>`, `external:<outbound intent>`, `ingress:<cluster>`,
    /// `egress:<cluster>`, `namespace:<namespace>` or `outside`.
    pub id: String,
    pub kind: GraphNodeKind,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The hosts of an external service, or of external access.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// What an edge grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum GraphEdgeKind {
    /// A client's ALLOW rules (or `accessNamespaces`, or external access).
    Allow,
    /// A client's DENY security intents (drawn dashed and red).
    Deny,
    /// Egress to an external service.
    Egress,
}

/// One rule of an edge: methods AND paths AND ports AND hosts (each empty: any).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphEdgeRule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Host names (external access through the ingress gateway).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphEdge {
    /// `<kind>:<from>-><to>:<intent>[:<client>]`, unique in the graph.
    pub id: String,
    pub from: String,
    pub to: String,
    pub kind: GraphEdgeKind,
    /// The gateway nodes the traffic passes, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// The intent the edge comes from (its URL path).
    pub intent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// What the edge grants (ALLOW) or takes away (DENY); empty: every request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<GraphEdgeRule>,
    /// `rules` in one line, as drawn.
    pub label: String,
}

/// A cluster and the nodes on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphCluster {
    pub cluster: String,
    pub nodes: Vec<String>,
}

/// The graph of one set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    /// The set's URL path.
    pub set: String,
    pub clusters: Vec<GraphCluster>,
    /// Sorted by id.
    pub nodes: Vec<GraphNode>,
    /// Sorted by id.
    pub edges: Vec<GraphEdge>,
}

impl Graph {
    /// Pretty JSON with a final newline (the form the golden files hold).
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).expect("the graph serializes");
        out.push('\n');
        out
    }
}

fn app_id(app: &Name, cluster: &Name) -> String {
    format!("app:{app}@{cluster}")
}
fn ingress_id(cluster: &Name) -> String {
    format!("ingress:{cluster}")
}
fn egress_id(cluster: &Name) -> String {
    format!("egress:{cluster}")
}

/// `GET,POST /status*,/x :8000`; several rules joined with ` | `; none: `any request`.
pub fn label_of(rules: &[GraphEdgeRule]) -> String {
    if rules.is_empty() {
        return "any request".to_owned();
    }
    rules
        .iter()
        .map(|r| {
            let mut parts = Vec::new();
            if !r.methods.is_empty() {
                parts.push(r.methods.join(","));
            }
            if !r.paths.is_empty() {
                parts.push(r.paths.join(","));
            }
            if !r.ports.is_empty() {
                parts.push(format!(":{}", r.ports.join(",")));
            }
            if !r.hosts.is_empty() {
                parts.push(r.hosts.join(","));
            }
            if parts.is_empty() {
                "any".to_owned()
            } else {
                parts.join(" ")
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn edge_rules(rules: &[AccessRule]) -> Vec<GraphEdgeRule> {
    rules
        .iter()
        .map(|r| GraphEdgeRule {
            methods: r.methods.iter().map(|m| m.as_str().to_owned()).collect(),
            paths: r.paths.iter().map(|p| p.to_string()).collect(),
            ports: r.ports.iter().map(|p| p.to_string()).collect(),
            hosts: Vec::new(),
        })
        .collect()
}

struct Builder {
    nodes: BTreeMap<String, GraphNode>,
    edges: BTreeMap<String, GraphEdge>,
}

impl Builder {
    fn node(&mut self, node: GraphNode) -> String {
        let id = node.id.clone();
        self.nodes.entry(id.clone()).or_insert(node);
        id
    }

    fn gateway(&mut self, kind: GraphNodeKind, cluster: &Name) -> String {
        let (id, label) = match kind {
            GraphNodeKind::IngressGateway => {
                (ingress_id(cluster), format!("ingress gateway\n{cluster}"))
            }
            _ => (egress_id(cluster), format!("egress gateway\n{cluster}")),
        };
        self.node(GraphNode {
            id,
            kind,
            label,
            cluster: Some(cluster.to_string()),
            namespace: None,
            hosts: Vec::new(),
        })
    }

    fn edge(&mut self, mut edge: GraphEdge) {
        edge.id = format!(
            "{}:{}->{}:{}{}",
            match edge.kind {
                GraphEdgeKind::Allow => "allow",
                GraphEdgeKind::Deny => "deny",
                GraphEdgeKind::Egress => "egress",
            },
            edge.from,
            edge.to,
            edge.intent.rsplit('/').next().unwrap_or_default(),
            edge.client
                .as_ref()
                .map(|c| format!(":{c}"))
                .unwrap_or_default()
        );
        edge.label = label_of(&edge.rules);
        self.edges.insert(edge.id.clone(), edge);
    }
}

/// The graph of `model`'s set. Inbound intents that cannot be planned (the set would not
/// render) are left out.
pub fn build(model: &IntentSetModel) -> Graph {
    let set_url = model.address.path().url();
    let plan = SetPlan::new(model);
    let mut b = Builder {
        nodes: BTreeMap::new(),
        edges: BTreeMap::new(),
    };
    // Every app on every cluster it runs on.
    for (name, app) in &model.apps {
        for cluster in model.app_clusters(app) {
            b.node(GraphNode {
                id: app_id(name, cluster),
                kind: GraphNodeKind::App,
                label: format!("{name}\n{}/{cluster}", app.namespace),
                cluster: Some(cluster.to_string()),
                namespace: Some(app.namespace.to_string()),
                hosts: Vec::new(),
            });
        }
    }
    for (name, inbound) in &plan.inbound {
        let intent_url = format!("{set_url}/inbound-intents/{name}");
        for client in &inbound.clients {
            let client_model = &inbound.intent.clients[client.client];
            let from = app_id(&client_model.spec.app, client.site.name);
            let servers: Vec<_> = match client.reach {
                Reach::Local => inbound
                    .servers
                    .iter()
                    .filter(|s| s.name == client.site.name)
                    .collect(),
                Reach::Direct | Reach::EgressGateway => inbound.servers.iter().collect(),
            };
            for server in servers {
                let via = match client.reach {
                    Reach::Local => Vec::new(),
                    Reach::Direct => vec![b.gateway(GraphNodeKind::IngressGateway, server.name)],
                    Reach::EgressGateway => vec![
                        b.gateway(GraphNodeKind::EgressGateway, client.site.name),
                        b.gateway(GraphNodeKind::IngressGateway, server.name),
                    ],
                };
                let to = app_id(inbound.app_name, server.name);
                let intents = &client_model.security_intents;
                let of = |action: AuthorizationAction| {
                    intents.values().filter(move |s| s.action == action)
                };
                // As the generator reads them: no ALLOW intent, or one without rules, allows all.
                let allow_all = of(AuthorizationAction::Allow).next().is_none()
                    || of(AuthorizationAction::Allow).any(|s| s.rules.is_empty());
                let allow_rules = if allow_all {
                    Vec::new()
                } else {
                    of(AuthorizationAction::Allow)
                        .flat_map(|s| edge_rules(&s.rules))
                        .collect()
                };
                let deny_rules: Vec<GraphEdgeRule> = of(AuthorizationAction::Deny)
                    .flat_map(|s| edge_rules(&s.rules))
                    .collect();
                let edge = |kind, rules| GraphEdge {
                    id: String::new(),
                    from: from.clone(),
                    to: to.clone(),
                    kind,
                    via: via.clone(),
                    intent: intent_url.clone(),
                    client: Some(client.client.to_string()),
                    rules,
                    label: String::new(),
                };
                b.edge(edge(GraphEdgeKind::Allow, allow_rules));
                if of(AuthorizationAction::Deny).next().is_some() {
                    b.edge(edge(GraphEdgeKind::Deny, deny_rules));
                }
            }
        }
        for namespace in &inbound.spec.access_namespaces {
            let from = b.node(GraphNode {
                id: format!("namespace:{namespace}"),
                kind: GraphNodeKind::Namespace,
                label: format!("namespace {namespace}\n(every workload)"),
                cluster: None,
                namespace: Some(namespace.to_string()),
                hosts: Vec::new(),
            });
            for server in &inbound.servers {
                b.edge(GraphEdge {
                    id: String::new(),
                    from: from.clone(),
                    to: app_id(inbound.app_name, server.name),
                    kind: GraphEdgeKind::Allow,
                    via: Vec::new(),
                    intent: intent_url.clone(),
                    client: None,
                    rules: Vec::new(),
                    label: String::new(),
                });
            }
        }
        if let Some(external) = &inbound.spec.external_access {
            let hosts: Vec<String> = external.hosts.iter().map(|h| h.to_string()).collect();
            let from = b.node(GraphNode {
                id: "outside".into(),
                kind: GraphNodeKind::Outside,
                label: "outside the mesh".into(),
                cluster: None,
                namespace: None,
                hosts: Vec::new(),
            });
            for server in &inbound.servers {
                let via = vec![b.gateway(GraphNodeKind::IngressGateway, server.name)];
                b.edge(GraphEdge {
                    id: String::new(),
                    from: from.clone(),
                    to: app_id(inbound.app_name, server.name),
                    kind: GraphEdgeKind::Allow,
                    via,
                    intent: intent_url.clone(),
                    client: None,
                    rules: vec![GraphEdgeRule {
                        methods: Vec::new(),
                        paths: Vec::new(),
                        ports: Vec::new(),
                        hosts: hosts.clone(),
                    }],
                    label: String::new(),
                });
            }
        }
    }
    for (name, outbound) in &model.outbound {
        let intent_url = format!("{set_url}/outbound-intents/{name}");
        let hosts: Vec<String> = outbound.hosts.iter().map(|h| h.to_string()).collect();
        let to = b.node(GraphNode {
            id: format!("external:{name}"),
            kind: GraphNodeKind::ExternalService,
            label: hosts.join("\n"),
            cluster: None,
            namespace: None,
            hosts,
        });
        let ports: Vec<String> = outbound
            .ports
            .iter()
            .map(|p| format!("{}/{}", p.number, p.protocol.as_str()))
            .collect();
        let clients: BTreeSet<&Name> = if outbound.clients.is_empty() {
            model.apps.keys().collect()
        } else {
            outbound.clients.iter().collect()
        };
        for client in clients {
            let Some(app) = model.apps.get(client) else {
                continue;
            };
            for cluster in model.app_clusters(app) {
                let via = if outbound.egress_gateway {
                    vec![b.gateway(GraphNodeKind::EgressGateway, cluster)]
                } else {
                    Vec::new()
                };
                b.edge(GraphEdge {
                    id: String::new(),
                    from: app_id(client, cluster),
                    to: to.clone(),
                    kind: GraphEdgeKind::Egress,
                    via,
                    intent: intent_url.clone(),
                    client: Some(client.to_string()),
                    rules: vec![GraphEdgeRule {
                        methods: Vec::new(),
                        paths: Vec::new(),
                        ports: ports.clone(),
                        hosts: Vec::new(),
                    }],
                    label: String::new(),
                });
            }
        }
    }
    let mut clusters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for node in b.nodes.values() {
        if let Some(c) = &node.cluster {
            clusters.entry(c.clone()).or_default().push(node.id.clone());
        }
    }
    Graph {
        set: set_url,
        clusters: clusters
            .into_iter()
            .map(|(cluster, nodes)| GraphCluster { cluster, nodes })
            .collect(),
        nodes: b.nodes.into_values().collect(),
        edges: b.edges.into_values().collect(),
    }
}
