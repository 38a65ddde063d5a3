//! Route intents: traffic management (matches, weights, retries, timeouts, faults, mirroring).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::hosts::HostPattern;
use super::http::HeaderName;
use super::names::{Name, quoted, string_newtype};
use super::regex_re2::check_re2;
use super::values::{Amount, GoDuration, Percent, Port, WholePercent};
use super::violations::Violations;

/// The intent whose host the routes apply to: exactly one of the two.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_intent: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_intent: Option<Name>,
}

/// Where the routes apply.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RouteGateway {
    /// The sidecars of the mesh.
    Mesh,
    /// The ingress gateway, for an inbound intent's externalAccess hosts (edge routing).
    Ingress,
}

/// A string comparison: exactly one of exact, prefix or regex (RE2, whole-string match).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl StringMatch {
    fn check(&self, at: &str, v: &mut Violations) {
        let given = [&self.exact, &self.prefix, &self.regex]
            .iter()
            .filter(|f| f.is_some())
            .count();
        v.check(given != 1, at, "give exactly one of exact, prefix or regex");
        if let Some(re) = &self.regex
            && let Err(why) =
                crate::domain::resource::check_free_text(re).and_then(|()| check_re2(re))
        {
            v.add(format!("{at}/regex"), format!("{} {why}", quoted(re)));
        }
        for (field, value) in [("exact", &self.exact), ("prefix", &self.prefix)] {
            if let Some(value) = value {
                v.check(
                    value.len() > 1024 || value.chars().any(char::is_control),
                    format!("{at}/{field}"),
                    "must be at most 1024 characters without control characters",
                );
            }
        }
    }
}

/// Conditions of one match: all must hold.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, StringMatch>)]
    pub headers: BTreeMap<HeaderName, StringMatch>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, StringMatch>)]
    pub query_params: BTreeMap<HeaderName, StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
}

impl HttpMatch {
    fn is_empty(&self) -> bool {
        *self == HttpMatch::default()
    }
}

/// A destination: a subset of the target (or the whole target) and its share of traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightedSubset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<Name>,
    /// Percent of the rule's traffic. Required when a rule has several destinations; they sum to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<WholePercent>,
}

fn check_weights(route: &[WeightedSubset], at: &str, v: &mut Violations) {
    v.check(route.is_empty(), at, "must name at least one destination");
    if route.len() > 1 {
        for (i, d) in route.iter().enumerate() {
            v.check(
                d.weight.is_none(),
                format!("{at}/{i}/weight"),
                "is required when a rule has several destinations",
            );
        }
    }
    let sum: u32 = route
        .iter()
        .filter_map(|d| d.weight)
        .map(WholePercent::get)
        .sum();
    let all_weighted = route.iter().all(|d| d.weight.is_some());
    v.check(
        !route.is_empty() && all_weighted && sum != 100,
        at,
        format!("weights must sum to 100 (they sum to {sum})"),
    );
    for (i, d) in route.iter().enumerate() {
        v.check(
            route[..i].iter().any(|o| o.subset == d.subset),
            format!("{at}/{i}/subset"),
            "the same destination is listed twice",
        );
    }
}

const RETRY_POLICIES: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

fn check_retry_on(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.split(',').all(|p| {
            let p = p.trim();
            RETRY_POLICIES.contains(&p) || p.parse::<u16>().is_ok_and(|c| (100..600).contains(&c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a comma-separated list of Envoy retry policies ({}) or HTTP status codes (got {})",
            RETRY_POLICIES.join(", "),
            quoted(s)
        ))
    }
}

string_newtype!(
    /// Envoy retry conditions, e.g. `5xx,connect-failure`.
    RetryOn, check = check_retry_on, pattern = "^[a-z0-9-]+(,[a-z0-9-]+)*$", min = 1, max = 512, example = "5xx,connect-failure"
);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retries {
    /// Retries allowed (0 disables retries).
    pub attempts: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<RetryOn>,
}

/// An HTTP status code an abort fault answers with (200-599, as Istio accepts).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(try_from = "crate::domain::values::WholeNumber", into = "u16")]
#[schema(value_type = u16, minimum = 200, maximum = 599, example = 418)]
pub struct HttpStatus(u16);

impl TryFrom<crate::domain::values::WholeNumber> for HttpStatus {
    type Error = String;
    fn try_from(value: crate::domain::values::WholeNumber) -> Result<Self, String> {
        value.checked(HttpStatus::try_from)
    }
}

impl HttpStatus {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for HttpStatus {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        if (200..=599).contains(&value) {
            Ok(HttpStatus(value as u16))
        } else {
            Err(format!(
                "must be an HTTP status between 200 and 599 (got {value})"
            ))
        }
    }
}

impl From<HttpStatus> for u16 {
    fn from(s: HttpStatus) -> u16 {
        s.0
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultAbort {
    /// Percent of requests aborted.
    pub percentage: Percent,
    pub http_status: HttpStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultDelay {
    /// Percent of requests delayed.
    pub percentage: Percent,
    pub fixed_delay: GoDuration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<Name>,
    /// Percent of requests mirrored. Default: 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

/// One HTTP rule; rules are evaluated in order, the first match wins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// Any of these matches selects the rule. Empty: every request.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpMatch>,
    pub route: Vec<WeightedSubset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
}

impl HttpRouteRule {
    pub fn is_catch_all(&self) -> bool {
        self.matches.is_empty()
    }
}

#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct L4Match {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// TLS server names (required for `tls` rules, not allowed for `tcp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni_hosts: Vec<HostPattern>,
}

/// A TCP or TLS rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct L4RouteRule {
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<L4Match>,
    pub route: Vec<WeightedSubset>,
}

/// Traffic management on an inbound or outbound intent's host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteIntentSpec {
    pub target: RouteTarget,
    /// Default: `[mesh]`.
    #[serde(default = "default_gateways")]
    pub gateways: Vec<RouteGateway>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRouteRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<L4RouteRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<L4RouteRule>,
}

fn default_gateways() -> Vec<RouteGateway> {
    vec![RouteGateway::Mesh]
}

impl RouteIntentSpec {
    /// Every subset the routes name, with the pointer of the field naming it.
    pub fn named_subsets(&self) -> Vec<(String, &Name)> {
        let mut out = Vec::new();
        for (i, rule) in self.http.iter().enumerate() {
            for (j, d) in rule.route.iter().enumerate() {
                if let Some(s) = &d.subset {
                    out.push((format!("/spec/http/{i}/route/{j}/subset"), s));
                }
            }
            if let Some(s) = rule.mirror.as_ref().and_then(|m| m.subset.as_ref()) {
                out.push((format!("/spec/http/{i}/mirror/subset"), s));
            }
        }
        for (field, rules) in [("tcp", &self.tcp), ("tls", &self.tls)] {
            for (i, rule) in rules.iter().enumerate() {
                for (j, d) in rule.route.iter().enumerate() {
                    if let Some(s) = &d.subset {
                        out.push((format!("/spec/{field}/{i}/route/{j}/subset"), s));
                    }
                }
            }
        }
        out
    }

    pub fn check(&self, v: &mut Violations) {
        match (&self.target.inbound_intent, &self.target.outbound_intent) {
            (Some(_), Some(_)) | (None, None) => v.add(
                "/spec/target",
                "give exactly one of inboundIntent or outboundIntent",
            ),
            _ => {}
        }
        v.check(
            self.gateways.is_empty(),
            "/spec/gateways",
            "must name mesh, ingress or both",
        );
        for (i, g) in self.gateways.iter().enumerate() {
            v.check(
                self.gateways[..i].contains(g),
                format!("/spec/gateways/{i}"),
                "is listed twice",
            );
        }
        v.check(
            self.http.is_empty() && self.tcp.is_empty() && self.tls.is_empty(),
            "/spec",
            "must have at least one http, tcp or tls rule",
        );
        for (i, rule) in self.http.iter().enumerate() {
            self.check_http_rule(rule, &format!("/spec/http/{i}"), v);
            v.check(
                rule.is_catch_all() && i + 1 < self.http.len(),
                format!("/spec/http/{i}/match"),
                "a rule without match takes every request, so the rules after it would never apply; move it last",
            );
            if let Some(name) = &rule.name {
                v.check(
                    self.http[..i].iter().any(|r| r.name.as_ref() == Some(name)),
                    format!("/spec/http/{i}/name"),
                    format!("rule name \"{name}\" is used twice"),
                );
            }
        }
        for (i, rule) in self.tcp.iter().enumerate() {
            let at = format!("/spec/tcp/{i}");
            check_weights(&rule.route, &format!("{at}/route"), v);
            v.check(
                rule.matches
                    .as_ref()
                    .is_some_and(|m| !m.sni_hosts.is_empty()),
                format!("{at}/match/sniHosts"),
                "TCP rules cannot match server names; use tls rules",
            );
        }
        for (i, rule) in self.tls.iter().enumerate() {
            let at = format!("/spec/tls/{i}");
            check_weights(&rule.route, &format!("{at}/route"), v);
            v.check(
                rule.matches.as_ref().is_none_or(|m| m.sni_hosts.is_empty()),
                format!("{at}/match/sniHosts"),
                "TLS rules must match at least one server name",
            );
        }
        v.check(
            self.gateways.contains(&RouteGateway::Ingress) && !self.tls.is_empty(),
            "/spec/tls",
            "TLS passthrough rules are not supported at the ingress gateway",
        );
    }

    fn check_http_rule(&self, rule: &HttpRouteRule, at: &str, v: &mut Violations) {
        for (j, m) in rule.matches.iter().enumerate() {
            let mat = format!("{at}/match/{j}");
            v.check(
                m.is_empty(),
                &mat,
                "must have at least one condition (or leave the match out)",
            );
            if let Some(uri) = &m.uri {
                uri.check(&format!("{mat}/uri"), v);
            }
            if let Some(method) = &m.method {
                method.check(&format!("{mat}/method"), v);
            }
            for (name, s) in &m.headers {
                s.check(&format!("{mat}/headers/{name}"), v);
            }
            for (name, s) in &m.query_params {
                s.check(&format!("{mat}/queryParams/{name}"), v);
            }
        }
        check_weights(&rule.route, &format!("{at}/route"), v);
        if let Some(fault) = &rule.fault {
            v.check(
                fault.abort.is_none() && fault.delay.is_none(),
                format!("{at}/fault"),
                "must give abort, delay or both",
            );
        }
        if let Some(retries) = &rule.retries
            && let (Some(per_try), Some(timeout)) = (retries.per_try_timeout, rule.timeout)
        {
            v.check(
                per_try > timeout,
                format!("{at}/retries/perTryTimeout"),
                format!("is longer than the rule's timeout ({timeout})"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(spec: serde_json::Value) -> Vec<String> {
        let spec: RouteIntentSpec = serde_json::from_value(spec).unwrap();
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
    fn canary_with_header_rule_is_valid() {
        let e = errors(json!({
        "target": {"inboundIntent": "reviews"},
        "gateways": ["ingress"],
        "http": [
            {"name": "testers", "match": [{"headers": {"x-user": {"exact": "tester"}}}],
             "route": [{"subset": "v2"}]},
            {"match": [{"uri": {"regex": "^/api/v[0-9]+/.*"}}], "route": [{"subset": "v1"}]},
            {"route": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}],
             "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,connect-failure"},
             "timeout": "10s"}
        ]}));
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn weights_must_sum_to_100() {
        let e = errors(json!({"target": {"outboundIntent": "x"},
            "http": [{"route": [{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 40}]}]}));
        assert_eq!(
            e,
            ["/spec/http/0/route: weights must sum to 100 (they sum to 90)"]
        );
        let e = errors(json!({"target": {"outboundIntent": "x"},
            "http": [{"route": [{"subset": "v1", "weight": 50}, {"subset": "v2"}]}]}));
        assert_eq!(
            e,
            ["/spec/http/0/route/1/weight: is required when a rule has several destinations"]
        );
    }

    #[test]
    fn bad_regex_and_catch_all_order() {
        let e = errors(json!({"target": {"inboundIntent": "x"},
            "http": [{"route": [{}]}, {"match": [{"uri": {"regex": "(?x) a"}}], "route": [{}]}]}));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("/spec/http/0/match: a rule without match"));
        assert!(e[1].starts_with("/spec/http/1/match/0/uri/regex: \"(?x) a\" is not valid RE2"));
    }

    #[test]
    fn retry_on_and_status_bounds() {
        assert!(RetryOn::try_from("5xx,503,reset".to_string()).is_ok());
        assert!(RetryOn::try_from("sometimes".to_string()).is_err());
        assert!(HttpStatus::try_from(418).is_ok());
        assert!(HttpStatus::try_from(600).is_err());
    }

    #[test]
    fn target_needs_exactly_one() {
        let e = errors(json!({"target": {}, "http": [{"route": [{}]}]}));
        assert_eq!(
            e,
            ["/spec/target: give exactly one of inboundIntent or outboundIntent"]
        );
    }

    #[test]
    fn named_subsets_are_found() {
        let spec: RouteIntentSpec =
            serde_json::from_value(json!({"target": {"inboundIntent": "x"},
            "http": [{"route": [{"subset": "v1", "weight": 50}, {"subset": "v2", "weight": 50}],
                      "mirror": {"subset": "v3"}}],
            "tcp": [{"route": [{"subset": "v4"}]}]}))
            .unwrap();
        let named: Vec<_> = spec
            .named_subsets()
            .into_iter()
            .map(|(f, s)| format!("{f}={s}"))
            .collect();
        assert_eq!(
            named,
            [
                "/spec/http/0/route/0/subset=v1",
                "/spec/http/0/route/1/subset=v2",
                "/spec/http/0/mirror/subset=v3",
                "/spec/tcp/0/route/0/subset=v4"
            ]
        );
    }
}
