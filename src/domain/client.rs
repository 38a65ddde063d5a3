//! Clients of an inbound intent, and what each may do (security intents).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::http::{HttpMethod, PathPattern};
use super::inbound::{InboundIntentSpec, MtlsMode};
use super::names::{DnsName, Name};
use super::values::Port;
use super::violations::Violations;

/// A client app allowed to call an inbound intent's service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = InboundClientSpec)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientSpec {
    /// The client app (of this composite app version): its namespace, clusters and service account.
    pub app: Name,
    /// Overrides the app's service account. Absent: the app's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<DnsName>,
    /// The client is a headless service (informational: principals are per service account).
    #[serde(default)]
    pub headless: bool,
    /// TLS from this client to the service. Absent: the inbound intent's `mtls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsMode>,
}

impl ClientSpec {
    /// Rules that depend on the inbound intent the client belongs to.
    pub fn check_against(&self, inbound: &InboundIntentSpec, v: &mut Violations) {
        if let Some(mtls) = self.mtls {
            v.check(
                !inbound.sidecar && mtls != MtlsMode::Disable,
                "/spec/mtls",
                "the service has no sidecar, so only DISABLE is possible",
            );
            v.check(
                mtls == MtlsMode::Mutual
                    && inbound
                        .client_tls
                        .as_ref()
                        .is_none_or(|t| t.credential_name.is_none()),
                "/spec/mtls",
                "MUTUAL needs clientTls.credentialName on the inbound intent",
            );
        }
    }
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
pub enum AuthorizationAction {
    #[default]
    Allow,
    Deny,
    Audit,
}

impl AuthorizationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationAction::Allow => "ALLOW",
            AuthorizationAction::Deny => "DENY",
            AuthorizationAction::Audit => "AUDIT",
        }
    }
}

/// One operation the client may (or may not) perform. Fields combine with AND, values with OR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<HttpMethod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathPattern>,
    /// Ports of the server workload (container ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
}

/// What a client's service account may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityIntentSpec {
    #[serde(default)]
    pub action: AuthorizationAction,
    /// Operations; an ALLOW intent without rules allows every operation of the client.
    #[serde(default)]
    pub rules: Vec<AccessRule>,
}

impl SecurityIntentSpec {
    pub fn check(&self, v: &mut Violations) {
        for (i, rule) in self.rules.iter().enumerate() {
            v.check(
                rule.methods.is_empty() && rule.paths.is_empty() && rule.ports.is_empty(),
                format!("/spec/rules/{i}"),
                "must give at least one of methods, paths or ports",
            );
        }
        v.check(
            self.action != AuthorizationAction::Allow && self.rules.is_empty(),
            "/spec/rules",
            format!(
                "a {} intent needs at least one rule (name the operations to {})",
                self.action.as_str(),
                if self.action == AuthorizationAction::Deny {
                    "deny"
                } else {
                    "audit"
                }
            ),
        );
    }

    /// Methods and paths need HTTP: on TCP, TLS or HTTPS services only ports can be matched.
    pub fn check_against(&self, inbound: &InboundIntentSpec, v: &mut Violations) {
        if inbound.protocol.is_http() {
            return;
        }
        for (i, rule) in self.rules.iter().enumerate() {
            for (field, used) in [
                ("methods", !rule.methods.is_empty()),
                ("paths", !rule.paths.is_empty()),
            ] {
                v.check(
                    used,
                    format!("/spec/rules/{i}/{field}"),
                    format!(
                        "{field} need HTTP, but the inbound intent's protocol is {}; use ports",
                        inbound.protocol.as_str()
                    ),
                );
            }
        }
    }

    pub fn uses_http_fields(&self) -> bool {
        self.rules
            .iter()
            .any(|r| !r.methods.is_empty() || !r.paths.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inbound(protocol: &str) -> InboundIntentSpec {
        serde_json::from_value(json!({"app":"a","serviceName":"s","port":80,"protocol":protocol}))
            .unwrap()
    }

    fn errors(s: &SecurityIntentSpec, protocol: &str) -> Vec<String> {
        let mut v = Violations::new();
        s.check(&mut v);
        s.check_against(&inbound(protocol), &mut v);
        v.into_result()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn methods_and_paths_need_http() {
        let s: SecurityIntentSpec =
            serde_json::from_value(json!({"rules":[{"methods":["GET"],"paths":["/status"]}]}))
                .unwrap();
        assert!(errors(&s, "HTTP").is_empty());
        assert_eq!(
            errors(&s, "TCP"),
            ["/spec/rules/0/methods", "/spec/rules/0/paths"]
        );
        let ports: SecurityIntentSpec =
            serde_json::from_value(json!({"rules":[{"ports":[9000]}]})).unwrap();
        assert!(errors(&ports, "TLS").is_empty());
    }

    #[test]
    fn deny_needs_rules_and_rules_need_content() {
        let s: SecurityIntentSpec = serde_json::from_value(json!({"action":"DENY"})).unwrap();
        assert_eq!(errors(&s, "HTTP"), ["/spec/rules"]);
        let s: SecurityIntentSpec = serde_json::from_value(json!({"rules":[{}]})).unwrap();
        assert_eq!(errors(&s, "HTTP"), ["/spec/rules/0"]);
    }
}
