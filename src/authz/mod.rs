//! A pure evaluator of Istio AuthorizationPolicies: given the policies of one cluster, the
//! workload a request reaches and the request, which policy rule decides and how. No I/O; it
//! reads the typed objects the generator emits (`crate::istio`), so `GET .../access` answers from
//! exactly what a deploy would apply. `docs/access-query.md` states the semantics.
//!
//! Istio's order (security.istio.io/v1 reference, "Authorization Policy"):
//! 1. a matching CUSTOM policy hands the request to its external authorizer; meshintent cannot
//!    ask it, so it is taken as a denial (meshintent never renders CUSTOM policies);
//! 2. a matching DENY policy denies;
//! 3. no ALLOW policy on the workload allows;
//! 4. a matching ALLOW policy allows;
//! 5. anything else is denied.
//!
//! AUDIT policies never change the decision.

pub mod access;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::istio::{
    AuthorizationAction, AuthorizationPolicySpec, Condition, Operation, Rule, Source, Typed,
};

/// Istio's default root namespace: a policy there applies to workloads in every namespace.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The workload a request reaches: its namespace and pod labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuthzWorkload {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

/// What the workload's proxy knows about one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The peer's mTLS principal (`<trust domain>/ns/<ns>/sa/<sa>`); None for plain text.
    pub principal: Option<String>,
    /// Whether the proxy sees HTTP (methods, paths and hosts exist). False for TCP and TLS.
    pub http: bool,
    pub method: Option<String>,
    pub path: Option<String>,
    /// The Host/authority header.
    pub host: Option<String>,
    /// The destination port.
    pub port: Option<u16>,
    /// The server name of the TLS connection (`connection.sni`).
    pub sni: Option<String>,
}

impl Request {
    /// The namespace Istio derives from the principal (the segment after `/ns/`).
    pub fn source_namespace(&self) -> Option<&str> {
        namespace_of(self.principal.as_deref()?)
    }

    /// `<ns>/<sa>`, what `source.serviceAccounts` matches, from the principal.
    pub fn service_account(&self) -> Option<String> {
        let principal = self.principal.as_deref()?;
        let (_, rest) = principal.split_once("/ns/")?;
        let (ns, sa) = rest.split_once("/sa/")?;
        Some(format!("{ns}/{sa}"))
    }
}

fn namespace_of(principal: &str) -> Option<&str> {
    let (_, rest) = principal.split_once("/ns/")?;
    Some(rest.split_once('/').map_or(rest, |(ns, _)| ns))
}

/// Why the decision was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuthzReason {
    /// A CUSTOM policy matched (its external authorizer decides; counted as a denial).
    CustomMatched,
    /// A DENY policy rule matched.
    DenyMatched,
    /// No ALLOW policy applies to the workload.
    NoAllowPolicy,
    /// An ALLOW policy rule matched.
    AllowMatched,
    /// ALLOW policies apply to the workload and none of their rules matched.
    NoAllowMatched,
}

/// A policy (and, when one rule decided, that rule) by its place in the rendered objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthzPolicyRule {
    pub policy: String,
    pub namespace: String,
    #[schema(value_type = String, example = "ALLOW")]
    pub action: AuthorizationAction,
    /// Index into `spec.rules` of the rule that matched; absent when no rule matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_index: Option<usize>,
    /// The intent the policy was rendered from (its URL path, annotation `meshintent.io/intent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
}

/// The outcome at one workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthzDecision {
    pub allowed: bool,
    pub reason: AuthzReason,
    /// The deciding policy rule (CUSTOM, DENY or ALLOW match); absent for `noAllowPolicy` and
    /// `noAllowMatched`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<AuthzPolicyRule>,
    /// With `noAllowMatched`: the ALLOW policies that applied (none of whose rules matched).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_policies: Vec<AuthzPolicyRule>,
}

fn action_of(spec: &AuthorizationPolicySpec) -> AuthorizationAction {
    spec.action.unwrap_or(AuthorizationAction::Allow)
}

fn policy_ref(
    policy: &Typed<AuthorizationPolicySpec>,
    rule_index: Option<usize>,
) -> AuthzPolicyRule {
    AuthzPolicyRule {
        policy: policy.metadata.name.clone(),
        namespace: policy.metadata.namespace.clone(),
        action: action_of(&policy.spec),
        rule_index,
        intent: policy
            .metadata
            .annotations
            .get(crate::generate::naming::ANNOTATION_INTENT)
            .cloned(),
    }
}

/// Whether `policy` applies to `workload`: same namespace (or the root namespace) and a selector
/// whose labels the workload carries (no selector: every workload there). A policy attached with
/// `targetRefs` applies to Gateway API resources and waypoints, never to a sidecar by labels.
pub fn applies(policy: &Typed<AuthorizationPolicySpec>, workload: &AuthzWorkload) -> bool {
    let namespace = &policy.metadata.namespace;
    if namespace != &workload.namespace && namespace != ROOT_NAMESPACE {
        return false;
    }
    if !policy.spec.target_refs.is_empty() {
        return false;
    }
    policy.spec.selector.as_ref().is_none_or(|selector| {
        selector
            .match_labels
            .iter()
            .all(|(k, v)| workload.labels.get(k) == Some(v))
    })
}

/// Istio's string match: `*` is any non-empty value, `x*` a prefix, `*x` a suffix, otherwise
/// exact.
pub fn string_matches(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        !value.is_empty()
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        value.starts_with(prefix)
    } else if let Some(suffix) = pattern.strip_prefix('*') {
        value.ends_with(suffix)
    } else {
        pattern == value
    }
}

/// A positive list (`principals`) and its negative (`notPrincipals`) against one attribute:
/// an empty positive list matches anything; a missing attribute matches no positive value
/// and no negative value (so a negative list alone admits it).
fn field(
    values: &[String],
    not_values: &[String],
    attribute: Option<&str>,
    eq: impl Fn(&str, &str) -> bool,
) -> bool {
    let positive = values.is_empty() || attribute.is_some_and(|a| values.iter().any(|v| eq(v, a)));
    let negative = attribute.is_none_or(|a| !not_values.iter().any(|v| eq(v, a)));
    positive && negative
}

fn host_matches(pattern: &str, value: &str) -> bool {
    string_matches(&pattern.to_ascii_lowercase(), &value.to_ascii_lowercase())
}

fn source_matches(source: &Source, request: &Request) -> bool {
    let principal = request.principal.as_deref();
    let service_account = request.service_account();
    field(
        &source.principals,
        &source.not_principals,
        principal,
        string_matches,
    ) && field(
        &source.namespaces,
        &source.not_namespaces,
        request.source_namespace(),
        string_matches,
    ) && field(
        &source.service_accounts,
        &source.not_service_accounts,
        service_account.as_deref(),
        |a, b| a == b,
    )
        // No request carries a JWT or a known address here.
        && field(&source.request_principals, &source.not_request_principals, None, string_matches)
        && field(&source.ip_blocks, &source.not_ip_blocks, None, |a, b| a == b)
        && field(&source.remote_ip_blocks, &source.not_remote_ip_blocks, None, |a, b| a == b)
}

fn operation_matches(operation: &Operation, request: &Request) -> bool {
    let port = request.port.map(|p| p.to_string());
    field(
        &operation.ports,
        &operation.not_ports,
        port.as_deref(),
        |a, b| a == b,
    ) && field(
        &operation.methods,
        &operation.not_methods,
        request.method.as_deref(),
        |a, b| a == b,
    ) && field(
        &operation.paths,
        &operation.not_paths,
        request.path.as_deref(),
        string_matches,
    ) && field(
        &operation.hosts,
        &operation.not_hosts,
        request.host.as_deref(),
        host_matches,
    )
}

/// The attribute a `when` key names, as this evaluator knows it.
fn condition_attribute(key: &str, request: &Request) -> Option<String> {
    match key {
        "connection.sni" => request.sni.clone(),
        "source.principal" => request.principal.clone(),
        "source.namespace" => request.source_namespace().map(str::to_owned),
        "destination.port" => request.port.map(|p| p.to_string()),
        _ => None,
    }
}

fn condition_matches(condition: &Condition, request: &Request) -> bool {
    let attribute = condition_attribute(&condition.key, request);
    field(
        &condition.values,
        &condition.not_values,
        attribute.as_deref(),
        string_matches,
    )
}

/// Whether a rule has fields that only exist for HTTP (methods, paths, hosts, request
/// principals, `request.*` conditions).
fn has_http_only_fields(rule: &Rule) -> bool {
    rule.to
        .iter()
        .filter_map(|t| t.operation.as_ref())
        .any(|o| {
            !(o.methods.is_empty()
                && o.not_methods.is_empty()
                && o.paths.is_empty()
                && o.not_paths.is_empty()
                && o.hosts.is_empty()
                && o.not_hosts.is_empty())
        })
        || rule
            .from
            .iter()
            .filter_map(|f| f.source.as_ref())
            .any(|s| !(s.request_principals.is_empty() && s.not_request_principals.is_empty()))
        || rule.when.iter().any(|c| c.key.starts_with("request."))
}

/// The rule as Istio applies it to traffic the proxy does not see as HTTP: in an ALLOW policy
/// a rule with HTTP-only fields never matches (None); in DENY, CUSTOM and AUDIT policies those
/// fields are dropped, so the rest of the rule decides.
fn for_tcp(rule: &Rule, action: AuthorizationAction) -> Option<Rule> {
    if !has_http_only_fields(rule) {
        return Some(rule.clone());
    }
    if action == AuthorizationAction::Allow {
        return None;
    }
    let mut rule = rule.clone();
    for op in rule.to.iter_mut().filter_map(|t| t.operation.as_mut()) {
        op.methods.clear();
        op.not_methods.clear();
        op.paths.clear();
        op.not_paths.clear();
        op.hosts.clear();
        op.not_hosts.clear();
    }
    for s in rule.from.iter_mut().filter_map(|f| f.source.as_mut()) {
        s.request_principals.clear();
        s.not_request_principals.clear();
    }
    rule.when.retain(|c| !c.key.starts_with("request."));
    Some(rule)
}

/// Whether one rule matches: any `from` entry (none: any source) AND any `to` entry (none: any
/// operation) AND every `when` condition.
pub fn rule_matches(rule: &Rule, action: AuthorizationAction, request: &Request) -> bool {
    let owned;
    let rule = if request.http {
        rule
    } else {
        match for_tcp(rule, action) {
            Some(r) => {
                owned = r;
                &owned
            }
            None => return false,
        }
    };
    let from = rule.from.is_empty()
        || rule
            .from
            .iter()
            .any(|f| f.source.as_ref().is_none_or(|s| source_matches(s, request)));
    let to = rule.to.is_empty()
        || rule.to.iter().any(|t| {
            t.operation
                .as_ref()
                .is_none_or(|o| operation_matches(o, request))
        });
    from && to && rule.when.iter().all(|c| condition_matches(c, request))
}

/// The first rule of `policy` that matches, by index.
fn matching_rule(policy: &Typed<AuthorizationPolicySpec>, request: &Request) -> Option<usize> {
    let action = action_of(&policy.spec);
    policy
        .spec
        .rules
        .iter()
        .position(|r| rule_matches(r, action, request))
}

/// The decision for `request` reaching `workload`, over every policy of its cluster (those that
/// do not apply to the workload are skipped). Policies are taken in the order given (the
/// rendered order: namespace, then name), which only chooses which of several matching rules is
/// named.
pub fn evaluate<'p>(
    policies: impl IntoIterator<Item = &'p Typed<AuthorizationPolicySpec>>,
    workload: &AuthzWorkload,
    request: &Request,
) -> AuthzDecision {
    let applying: Vec<&Typed<AuthorizationPolicySpec>> = policies
        .into_iter()
        .filter(|p| applies(p, workload))
        .collect();
    let of = |action: AuthorizationAction| {
        applying
            .iter()
            .copied()
            .filter(move |p| action_of(&p.spec) == action)
    };
    let first_match = |action: AuthorizationAction| {
        of(action).find_map(|p| matching_rule(p, request).map(|i| policy_ref(p, Some(i))))
    };
    let denied = |reason, rule| AuthzDecision {
        allowed: false,
        reason,
        rule: Some(rule),
        allow_policies: Vec::new(),
    };
    if let Some(rule) = first_match(AuthorizationAction::Custom) {
        return denied(AuthzReason::CustomMatched, rule);
    }
    if let Some(rule) = first_match(AuthorizationAction::Deny) {
        return denied(AuthzReason::DenyMatched, rule);
    }
    let allow_policies: Vec<AuthzPolicyRule> = of(AuthorizationAction::Allow)
        .map(|p| policy_ref(p, None))
        .collect();
    if allow_policies.is_empty() {
        return AuthzDecision {
            allowed: true,
            reason: AuthzReason::NoAllowPolicy,
            rule: None,
            allow_policies,
        };
    }
    match first_match(AuthorizationAction::Allow) {
        Some(rule) => AuthzDecision {
            allowed: true,
            reason: AuthzReason::AllowMatched,
            rule: Some(rule),
            allow_policies: Vec::new(),
        },
        None => AuthzDecision {
            allowed: false,
            reason: AuthzReason::NoAllowMatched,
            rule: None,
            allow_policies,
        },
    }
}
