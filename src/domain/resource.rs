//! The resource tree: kinds, their place in the URL tree, metadata, and resource paths.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::names::{Name, VersionName, quoted, string_newtype};

/// Every kind of resource, in URL-tree order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Cluster,
    Project,
    CompositeApp,
    App,
    TrafficIntentSet,
    InboundIntent,
    Client,
    SecurityIntent,
    OutboundIntent,
    RouteIntent,
    GlobalRoleBinding,
    ProjectRoleBinding,
    GlobalToken,
    ProjectToken,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Cluster,
        Kind::Project,
        Kind::CompositeApp,
        Kind::App,
        Kind::TrafficIntentSet,
        Kind::InboundIntent,
        Kind::Client,
        Kind::SecurityIntent,
        Kind::OutboundIntent,
        Kind::RouteIntent,
        Kind::GlobalRoleBinding,
        Kind::ProjectRoleBinding,
        Kind::GlobalToken,
        Kind::ProjectToken,
    ];

    pub const fn parent(self) -> Option<Kind> {
        match self {
            Kind::Cluster | Kind::Project | Kind::GlobalRoleBinding | Kind::GlobalToken => None,
            Kind::CompositeApp | Kind::ProjectRoleBinding | Kind::ProjectToken => {
                Some(Kind::Project)
            }
            Kind::App | Kind::TrafficIntentSet => Some(Kind::CompositeApp),
            Kind::InboundIntent | Kind::OutboundIntent | Kind::RouteIntent => {
                Some(Kind::TrafficIntentSet)
            }
            Kind::Client => Some(Kind::InboundIntent),
            Kind::SecurityIntent => Some(Kind::Client),
        }
    }

    /// The URL segment of the collection.
    pub const fn collection(self) -> &'static str {
        match self {
            Kind::Cluster => "clusters",
            Kind::Project => "projects",
            Kind::CompositeApp => "composite-apps",
            Kind::App => "apps",
            Kind::TrafficIntentSet => "traffic-intent-sets",
            Kind::InboundIntent => "inbound-intents",
            Kind::Client => "clients",
            Kind::SecurityIntent => "security-intents",
            Kind::OutboundIntent => "outbound-intents",
            Kind::RouteIntent => "route-intents",
            Kind::GlobalRoleBinding | Kind::ProjectRoleBinding => "role-bindings",
            Kind::GlobalToken | Kind::ProjectToken => "tokens",
        }
    }

    /// How messages name the kind.
    pub const fn noun(self) -> &'static str {
        match self {
            Kind::Cluster => "cluster",
            Kind::Project => "project",
            Kind::CompositeApp => "composite app",
            Kind::App => "app",
            Kind::TrafficIntentSet => "traffic intent set",
            Kind::InboundIntent => "inbound intent",
            Kind::Client => "client",
            Kind::SecurityIntent => "security intent",
            Kind::OutboundIntent => "outbound intent",
            Kind::RouteIntent => "route intent",
            Kind::GlobalRoleBinding => "global role binding",
            Kind::ProjectRoleBinding => "role binding",
            Kind::GlobalToken => "global token",
            Kind::ProjectToken => "token",
        }
    }

    /// The value stored in the database's `kind` column.
    pub const fn code(self) -> &'static str {
        match self {
            Kind::Cluster => "cluster",
            Kind::Project => "project",
            Kind::CompositeApp => "composite_app",
            Kind::App => "app",
            Kind::TrafficIntentSet => "traffic_intent_set",
            Kind::InboundIntent => "inbound_intent",
            Kind::Client => "client",
            Kind::SecurityIntent => "security_intent",
            Kind::OutboundIntent => "outbound_intent",
            Kind::RouteIntent => "route_intent",
            Kind::GlobalRoleBinding => "global_role_binding",
            Kind::ProjectRoleBinding => "project_role_binding",
            Kind::GlobalToken => "global_token",
            Kind::ProjectToken => "project_token",
        }
    }

    pub fn from_code(code: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Names are unique per parent within a scope. Inbound, outbound and route intents share
    /// one scope because generated object names (`<intent>-<purpose>`) must not collide.
    pub const fn name_scope(self) -> &'static str {
        match self {
            Kind::InboundIntent | Kind::OutboundIntent | Kind::RouteIntent => "intent",
            other => other.code(),
        }
    }

    /// Whether the kind is an API token (its secret is made by the server, shown once).
    pub const fn is_token(self) -> bool {
        matches!(self, Kind::GlobalToken | Kind::ProjectToken)
    }

    /// Whether the kind is access control rather than intents (audit names its changes so).
    pub const fn is_access_control(self) -> bool {
        matches!(
            self,
            Kind::GlobalRoleBinding
                | Kind::ProjectRoleBinding
                | Kind::GlobalToken
                | Kind::ProjectToken
        )
    }

    /// Whether the kind is addressed by name and version (composite apps).
    pub const fn is_versioned(self) -> bool {
        matches!(self, Kind::CompositeApp)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

/// What identifies a resource among its siblings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub name: Name,
    pub version: Option<VersionName>,
}

impl Key {
    pub fn named(name: Name) -> Self {
        Self {
            name,
            version: None,
        }
    }

    /// The version column value ('' for unversioned kinds).
    pub fn version_str(&self) -> &str {
        self.version.as_ref().map_or("", |v| v.as_str())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "\"{}\" version \"{v}\"", self.name),
            None => write!(f, "\"{}\"", self.name),
        }
    }
}

/// The full address of a resource: each ancestor's kind and key, then its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourcePath {
    segments: Vec<(Kind, Key)>,
}

impl ResourcePath {
    pub fn root() -> Self {
        Self {
            segments: Vec::new(),
        }
    }

    pub fn child(&self, kind: Kind, key: Key) -> Self {
        debug_assert_eq!(kind.parent(), self.kind());
        let mut segments = self.segments.clone();
        segments.push((kind, key));
        Self { segments }
    }

    pub fn segments(&self) -> &[(Kind, Key)] {
        &self.segments
    }

    pub fn kind(&self) -> Option<Kind> {
        self.segments.last().map(|(k, _)| *k)
    }

    pub fn key(&self) -> Option<&Key> {
        self.segments.last().map(|(_, k)| k)
    }

    pub fn parent(&self) -> ResourcePath {
        let mut segments = self.segments.clone();
        segments.pop();
        Self { segments }
    }

    /// The key of the nearest ancestor (or self) of `kind`.
    pub fn find(&self, kind: Kind) -> Option<&Key> {
        self.segments
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, key)| key)
    }

    /// The ancestor (or self) of `kind`, as its own path.
    pub fn ancestor(&self, kind: Kind) -> Option<ResourcePath> {
        let end = self.segments.iter().position(|(k, _)| *k == kind)?;
        Some(Self {
            segments: self.segments[..=end].to_vec(),
        })
    }

    /// The URL of this resource (or of the root collection prefix when empty).
    pub fn url(&self) -> String {
        let mut url = String::from("/v2");
        for (kind, key) in &self.segments {
            url.push('/');
            url.push_str(kind.collection());
            url.push('/');
            url.push_str(key.name.as_str());
            if let Some(v) = &key.version {
                url.push('/');
                url.push_str(v.as_str());
            }
        }
        url
    }

    /// The URL of the collection of `kind` under this path.
    pub fn collection_url(&self, kind: Kind) -> String {
        format!("{}/{}", self.url(), kind.collection())
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.segments.last() {
            Some((kind, key)) => write!(f, "{kind} {key}"),
            None => f.write_str("root"),
        }
    }
}

/// Free text (descriptions, user data) holds no control characters but tab, newline and
/// carriage return: PostgreSQL cannot store NUL in text or JSONB, and the others have no use in
/// a description. Both backends refuse the same values (422 naming the field).
pub fn check_free_text(s: &str) -> Result<(), String> {
    match s
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "must not contain control characters other than tab, newline and carriage return (found U+{:04X} at character {})",
            c as u32,
            at + 1
        )),
    }
}

fn check_description(s: &str) -> Result<(), String> {
    check_free_text(s)?;
    if s.chars().count() <= 1024 {
        Ok(())
    } else {
        Err(format!(
            "must be at most 1024 characters (got {})",
            quoted(s)
        ))
    }
}

fn check_user_data(s: &str) -> Result<(), String> {
    check_free_text(s)?;
    if s.chars().count() <= 4096 {
        Ok(())
    } else {
        Err(format!(
            "must be at most 4096 characters (got {})",
            quoted(s)
        ))
    }
}

string_newtype!(
    /// Free text describing a resource.
    Description, check = check_description, pattern = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$", min = 0, max = 1024, example = "connectivity intent for httpbin"
);
string_newtype!(
    /// Free text kept for the user.
    UserData, check = check_user_data, pattern = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$", min = 0, max = 4096, example = "owner: team-a"
);

/// Metadata every resource has. `uid`, `revision`, `createdAt` and `updatedAt` are set by the
/// server; they are accepted in requests (so a fetched resource can be sent back) and ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data1: Option<UserData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data2: Option<UserData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub uid: Option<Uuid>,
    /// Incremented on every change; the ETag. Send it back in `If-Match` to avoid lost updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Who created it: `user:<name>`, `token:<name>` or `token:<project>/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only, example = "user:alice")]
    pub created_by: Option<String>,
    /// Who changed it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only, example = "token:shop/ci")]
    pub updated_by: Option<String>,
}

impl Metadata {
    pub fn named(name: Name) -> Self {
        Self {
            name,
            description: None,
            user_data1: None,
            user_data2: None,
            uid: None,
            revision: None,
            created_at: None,
            updated_at: None,
            created_by: None,
            updated_by: None,
        }
    }

    /// Drops the server-set fields (what a client may write).
    pub fn writable(self) -> Self {
        Self {
            uid: None,
            revision: None,
            created_at: None,
            updated_at: None,
            created_by: None,
            updated_by: None,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        s.parse().unwrap()
    }

    #[test]
    fn urls_follow_the_tree() {
        let ca = ResourcePath::root()
            .child(Kind::Project, Key::named(name("shop")))
            .child(
                Kind::CompositeApp,
                Key {
                    name: name("storefront"),
                    version: Some("v1".parse().unwrap()),
                },
            );
        let set = ca.child(Kind::TrafficIntentSet, Key::named(name("default")));
        assert_eq!(
            set.url(),
            "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default"
        );
        assert_eq!(
            set.collection_url(Kind::InboundIntent),
            "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default/inbound-intents"
        );
        assert_eq!(set.ancestor(Kind::CompositeApp), Some(ca));
        assert_eq!(set.to_string(), "traffic intent set \"default\"");
    }

    #[test]
    fn free_text_refuses_control_characters_but_tab_and_newlines() {
        assert!(check_free_text("line one\n\tline two\r\n").is_ok());
        for bad in ["a\u{0}b", "bell\u{7}", "del\u{7f}", "c1\u{85}"] {
            let e = check_free_text(bad).unwrap_err();
            assert!(e.contains("control characters"), "{e}");
        }
        assert!(
            check_description("ab\u{0}")
                .unwrap_err()
                .ends_with("(found U+0000 at character 3)")
        );
    }

    #[test]
    fn every_kind_has_a_unique_code() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_code(k.code()), Some(k));
        }
    }

    #[test]
    fn intents_share_a_name_scope() {
        assert_eq!(
            Kind::InboundIntent.name_scope(),
            Kind::RouteIntent.name_scope()
        );
        assert_ne!(Kind::App.name_scope(), Kind::Client.name_scope());
    }
}
