//! The access query (`GET .../access?from=&to=&method=&path=&port=`): may a workload of one app
//! call an inbound intent's service? Pure: it reads the set's model and its rendered manifests,
//! follows the path the generator renders for that caller (same cluster, `direct`, or through
//! the egress gateway), and evaluates the AuthorizationPolicies at each workload on it with
//! `super::evaluate`.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AuthzDecision, AuthzWorkload, Request, evaluate};
use crate::domain::cluster::CrossClusterMode;
use crate::domain::model::IntentSetModel;
use crate::domain::names::Name;
use crate::generate::Manifests;
use crate::generate::SetPlan;
use crate::generate::cross_cluster::consumer_sni;
use crate::generate::inbound::ingress_principal;
use crate::generate::topology::{Reach, Site, principal};
use crate::istio::IstioObject;

/// The raw query parameters.
#[derive(Clone, Debug, Default)]
pub struct AccessQuery {
    /// `<app>` or `<app>@<cluster>`.
    pub from: String,
    /// `<inbound intent>` or `<inbound intent>@<cluster>`.
    pub to: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub port: Option<u16>,
}

/// A query parameter that names nothing, or a value that cannot be asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// The query parameter: `from`, `to`, `method`, `path` or `port`.
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        field,
        message: message.into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessVerdict {
    Allow,
    Deny,
}

/// The caller as the query resolved it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessCaller {
    pub app: String,
    pub cluster: String,
    pub namespace: String,
    /// Its mTLS principal: `<trust domain of its cluster>/ns/<namespace>/sa/<service account>`
    /// (the service account of its client of the intent when one overrides the app's).
    pub principal: String,
}

/// The called service as the query resolved it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessCallee {
    pub inbound_intent: String,
    pub app: String,
    pub cluster: String,
    pub namespace: String,
    pub host: String,
}

/// The request that was evaluated (defaults filled in).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequest {
    /// Absent for TCP and TLS services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub port: u16,
}

/// The evaluation at one workload on the way.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessHop {
    pub cluster: String,
    /// `egressGateway` for the client cluster's egress gateway, `service` for the service's
    /// sidecar.
    pub at: AccessHopKind,
    pub workload: AuthzWorkload,
    /// The principal this workload sees (the provider ingress gateway's after a gateway hop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The TLS server name this workload sees, where a policy decides on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    pub decision: AuthzDecision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AccessHopKind {
    EgressGateway,
    Service,
}

/// The answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessAnswer {
    pub decision: AccessVerdict,
    pub from: AccessCaller,
    pub to: AccessCallee,
    pub request: AccessRequest,
    #[schema(value_type = String, example = "local")]
    pub reach: Reach,
    /// The hop that decided: the first that denies, else the service's.
    pub decided_by: AccessHop,
    /// Every workload whose policies were evaluated, in the order the request passes them.
    pub hops: Vec<AccessHop>,
    /// Caveats (e.g. a service without a sidecar enforces nothing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// `name` or `name@cluster`.
fn split_at_cluster(field: &'static str, raw: &str) -> Result<(Name, Option<Name>), QueryError> {
    let (name, cluster) = match raw.split_once('@') {
        Some((n, c)) => (n, Some(c)),
        None => (raw, None),
    };
    let name: Name = name
        .parse()
        .map_err(|e| invalid(field, format!("\"{name}\" is not a name: {e}")))?;
    let cluster = cluster
        .map(|c| {
            c.parse::<Name>()
                .map_err(|e| invalid(field, format!("\"{c}\" is not a cluster name: {e}")))
        })
        .transpose()?;
    Ok((name, cluster))
}

fn list(names: &[&Name]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn http_method(raw: &str) -> Result<String, QueryError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            "method",
            format!("\"{raw}\" is not an HTTP method (upper-case letters, e.g. GET)"),
        ));
    }
    Ok(raw.to_owned())
}

/// Answers `query` on a set that rendered to `manifests`.
pub fn query(
    model: &IntentSetModel,
    manifests: &Manifests,
    query: &AccessQuery,
) -> Result<AccessAnswer, QueryError> {
    let (to_name, to_cluster) = split_at_cluster("to", &query.to)?;
    let (from_name, from_cluster) = split_at_cluster("from", &query.from)?;
    let plan = SetPlan::new(model);
    let Some(target) = plan.inbound.get(&to_name) else {
        let known: Vec<&Name> = model.inbound.keys().collect();
        return Err(invalid(
            "to",
            format!(
                "inbound intent \"{to_name}\" does not exist in this set (inbound intents: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    list(&known)
                }
            ),
        ));
    };
    let Some((app_name, app)) = model.apps.get_key_value(&from_name) else {
        let known: Vec<&Name> = model.apps.keys().collect();
        return Err(invalid(
            "from",
            format!(
                "app \"{from_name}\" does not exist in this composite app (apps: {})",
                list(&known)
            ),
        ));
    };
    let app_clusters = model.app_clusters(app);
    let servers: Vec<&Name> = target.servers.iter().map(|s| s.name).collect();
    let client_cluster: &Name = match &from_cluster {
        Some(c) => app_clusters
            .iter()
            .copied()
            .find(|a| *a == c)
            .ok_or_else(|| {
                invalid(
                    "from",
                    format!(
                        "app \"{from_name}\" does not run on cluster \"{c}\" (it runs on: {})",
                        list(&app_clusters)
                    ),
                )
            })?,
        None => {
            let local: Vec<&Name> = app_clusters
                .iter()
                .copied()
                .filter(|c| servers.contains(c))
                .collect();
            match (app_clusters.as_slice(), local.as_slice()) {
                ([], _) => {
                    return Err(invalid(
                        "from",
                        format!("app \"{from_name}\" is placed on no cluster"),
                    ));
                }
                ([one], _) => one,
                (_, [one]) => one,
                (many, _) => {
                    return Err(invalid(
                        "from",
                        format!(
                            "app \"{from_name}\" runs on several clusters ({}): name one as {from_name}@<cluster>",
                            list(many)
                        ),
                    ));
                }
            }
        }
    };
    let server: Site = match &to_cluster {
        Some(c) => *target.servers.iter().find(|s| s.name == c).ok_or_else(|| {
            invalid(
                "to",
                format!(
                    "inbound intent \"{to_name}\" does not run on cluster \"{c}\" (it runs on: {})",
                    list(&servers)
                ),
            )
        })?,
        None => match target.servers.iter().find(|s| s.name == client_cluster) {
            Some(local) => *local,
            None => match target.servers.as_slice() {
                [one] => *one,
                _ => {
                    return Err(invalid(
                        "to",
                        format!(
                            "inbound intent \"{to_name}\" runs on several clusters ({}): name one as {to_name}@<cluster>",
                            list(&servers)
                        ),
                    ));
                }
            },
        },
    };
    let client_site = Site {
        name: client_cluster,
        spec: &model.clusters[client_cluster],
    };

    // The request.
    let http = target.spec.protocol.is_http();
    let (method, path) = if http {
        (
            Some(http_method(query.method.as_deref().unwrap_or("GET"))?),
            Some(match query.path.as_deref() {
                Some(p) if p.starts_with('/') => p.to_owned(),
                Some(p) => {
                    return Err(invalid("path", format!("\"{p}\" does not start with /")));
                }
                None => "/".to_owned(),
            }),
        )
    } else {
        for (field, given) in [("method", &query.method), ("path", &query.path)] {
            if given.is_some() {
                return Err(invalid(
                    field,
                    format!(
                        "inbound intent \"{to_name}\" is {}: the proxy sees no HTTP {field}; ask by port only",
                        target.spec.protocol.as_str()
                    ),
                ));
            }
        }
        (None, None)
    };
    let port = match query.port {
        Some(0) => return Err(invalid("port", "0 is not a port")),
        Some(p) => p,
        None => target.spec.port.get(),
    };

    // The caller's identity: its client's service account when one overrides the app's.
    let service_account = target
        .intent
        .clients
        .values()
        .find(|c| &c.spec.app == app_name)
        .and_then(|c| c.spec.service_account.clone())
        .unwrap_or_else(|| app.service_account(app_name));
    let caller_principal = principal(
        &client_site.spec.trust_domain,
        &app.namespace,
        &service_account,
    );
    let reach = if client_cluster == server.name {
        Reach::Local
    } else {
        match client_site.spec.cross_cluster.mode {
            CrossClusterMode::Direct => Reach::Direct,
            CrossClusterMode::EgressGateway => Reach::EgressGateway,
        }
    };

    let policies_on = |cluster: &Name| {
        manifests
            .get(cluster)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|o| match o {
                IstioObject::AuthorizationPolicy(p) => Some(p),
                _ => None,
            })
    };
    let mut hops = Vec::new();
    if reach == Reach::EgressGateway {
        let egress = &client_site.spec.istio.egress_gateway;
        let workload = AuthzWorkload {
            namespace: egress.namespace.to_string(),
            labels: egress.selector.to_map(),
        };
        let sni = consumer_sni(&target.host, &server);
        let request = Request {
            principal: Some(caller_principal.clone()),
            http: false,
            sni: Some(sni.clone()),
            ..Request::default()
        };
        hops.push(AccessHop {
            cluster: client_cluster.to_string(),
            at: AccessHopKind::EgressGateway,
            decision: evaluate(policies_on(client_cluster), &workload, &request),
            workload,
            principal: request.principal,
            sni: Some(sni),
        });
    }
    let seen_principal = match reach {
        Reach::Local | Reach::Direct => caller_principal.clone(),
        // TLS ends at the gateways: the service sees its own cluster's ingress gateway.
        Reach::EgressGateway => ingress_principal(&server),
    };
    let workload = AuthzWorkload {
        namespace: target.namespace.to_string(),
        labels: target.app.workload_labels(target.app_name).to_map(),
    };
    let request = Request {
        principal: Some(seen_principal),
        http,
        method: method.clone(),
        path: path.clone(),
        host: http.then(|| target.host.to_string()),
        port: Some(port),
        sni: None,
    };
    hops.push(AccessHop {
        cluster: server.name.to_string(),
        at: AccessHopKind::Service,
        decision: evaluate(policies_on(server.name), &workload, &request),
        workload,
        principal: request.principal,
        sni: None,
    });

    let decided_by = hops
        .iter()
        .find(|h| !h.decision.allowed)
        .or(hops.last())
        .expect("the service hop")
        .clone();
    let mut notes = Vec::new();
    if !target.spec.sidecar {
        notes.push(format!(
            "inbound intent \"{to_name}\" runs without a sidecar: no proxy enforces its AuthorizationPolicies"
        ));
    }
    Ok(AccessAnswer {
        decision: if decided_by.decision.allowed {
            AccessVerdict::Allow
        } else {
            AccessVerdict::Deny
        },
        from: AccessCaller {
            app: app_name.to_string(),
            cluster: client_cluster.to_string(),
            namespace: app.namespace.to_string(),
            principal: caller_principal,
        },
        to: AccessCallee {
            inbound_intent: to_name.to_string(),
            app: target.app_name.to_string(),
            cluster: server.name.to_string(),
            namespace: target.namespace.to_string(),
            host: target.host.to_string(),
        },
        request: AccessRequest { method, path, port },
        reach,
        decided_by,
        hops,
        notes,
    })
}
