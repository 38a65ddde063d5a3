//! Who is calling and what they may do: roles, principals, actions, and the one policy that
//! decides (SPEC section 6). Pure: no I/O, so the whole role table is a unit test.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::names::{Name, string_newtype};

/// A role over the whole installation.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GlobalRole {
    /// Everything.
    Admin,
    /// Reads every project and every audit event; changes nothing.
    Reader,
}

/// A role within one project.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
    /// Editor, plus the project's role bindings, tokens and audit events.
    Owner,
    /// Writes composite apps, apps, sets and intents; deploys and terminates.
    Editor,
    /// Reads the project's tree, manifests, bindings, status and deployments.
    Viewer,
}

impl fmt::Display for GlobalRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GlobalRole::Admin => "admin",
            GlobalRole::Reader => "reader",
        })
    }
}

impl fmt::Display for ProjectRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProjectRole::Owner => "owner",
            ProjectRole::Editor => "editor",
            ProjectRole::Viewer => "viewer",
        })
    }
}

fn check_subject_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 256 {
        Err("must be 1 to 256 characters".into())
    } else if s.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(())
    }
}

// The pattern spells out `\p{Cc}` (what `char::is_control` refuses): few regex engines of
// schema tools know Unicode properties.
string_newtype!(
    /// A user name or group name as the identity provider spells it (claim values).
    SubjectName, check = check_subject_name, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$", min = 1, max = 256, example = "alice@example.com"
);

/// Whom a role binding grants its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SubjectKind {
    /// A user, by the OIDC user-name claim.
    User,
    /// Every member of a group, by the OIDC groups claim.
    Group,
}

/// A user or a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: SubjectName,
}

impl Subject {
    /// Whether an identity with this user name and these groups is the subject.
    pub fn matches(&self, user: &str, groups: &[String]) -> bool {
        match self.kind {
            SubjectKind::User => self.name.as_str() == user,
            SubjectKind::Group => groups.iter().any(|g| g == self.name.as_str()),
        }
    }
}

/// Grants a global role to a user or group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalRoleBindingSpec {
    pub subject: Subject,
    pub role: GlobalRole,
}

/// Grants a role in this project to a user or group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectRoleBindingSpec {
    pub subject: Subject,
    pub role: ProjectRole,
}

/// A role a global token carries: a global role, or a role in one project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TokenRole {
    Global(GlobalRole),
    Project(ProjectGrant),
}

/// A role in one project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectGrant {
    pub project: Name,
    pub role: ProjectRole,
}

/// An API token with global roles or roles in named projects (admins only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalTokenSpec {
    /// When the token stops working; without it, it works until revoked (DELETE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// What the token may do: `admin`, `reader`, or `{"project": ..., "role": ...}`.
    pub roles: Vec<TokenRole>,
}

/// An API token with one role in this project (project owners).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProjectTokenSpec {
    /// When the token stops working; without it, it works until revoked (DELETE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub role: ProjectRole,
}

/// Who did something, as audit events and `metadata.createdBy` name them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    /// An OIDC user (the user-name claim).
    User(String),
    /// A global API token.
    Token(Name),
    /// A project's API token.
    ProjectToken { project: Name, name: Name },
    /// meshintent itself (e.g. `system:reconciler`, `system:bootstrap`).
    System(&'static str),
    /// A request whose credentials were missing or refused (audit of 401s only).
    Anonymous,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(name) => write!(f, "user:{name}"),
            Actor::Token(name) => write!(f, "token:{name}"),
            Actor::ProjectToken { project, name } => write!(f, "token:{project}/{name}"),
            Actor::System(name) => write!(f, "system:{name}"),
            Actor::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// An authenticated caller with the roles it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub actor: Actor,
    pub global: BTreeSet<GlobalRole>,
    pub projects: BTreeMap<Name, BTreeSet<ProjectRole>>,
}

impl Principal {
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            global: BTreeSet::new(),
            projects: BTreeMap::new(),
        }
    }

    /// meshintent acting on its own (bootstrap, reconciler): an admin.
    pub fn system(name: &'static str) -> Self {
        Self::new(Actor::System(name)).with_global(GlobalRole::Admin)
    }

    pub fn with_global(mut self, role: GlobalRole) -> Self {
        self.global.insert(role);
        self
    }

    pub fn with_project(mut self, project: Name, role: ProjectRole) -> Self {
        self.projects.entry(project).or_default().insert(role);
        self
    }

    fn has_global(&self, roles: &[GlobalRole]) -> bool {
        roles.iter().any(|r| self.global.contains(r))
    }

    fn has_project(&self, project: &Name, roles: &[ProjectRole]) -> bool {
        self.projects
            .get(project)
            .is_some_and(|held| roles.iter().any(|r| held.contains(r)))
    }

    /// Whether the project's tree is visible at all (otherwise it is answered as absent).
    pub fn can_read_project(&self, project: &Name) -> bool {
        self.has_global(&[GlobalRole::Admin, GlobalRole::Reader])
            || self.projects.get(project).is_some_and(|r| !r.is_empty())
    }
}

/// Everything a request can ask to do, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// List or get clusters (kubeconfigs are never returned anyway).
    ReadClusters,
    /// Create, replace or delete clusters.
    WriteClusters,
    /// List projects (filtered to the readable ones).
    ListProjects,
    CreateProject,
    DeleteProject,
    /// Replace a project's metadata (its namespaces need `ChangeNamespaces` as well).
    UpdateProject,
    /// Change which namespaces a project owns.
    ChangeNamespaces,
    /// Read a project's tree, manifests, bindings, status and deployments.
    ReadProject,
    /// Write composite apps, apps, sets and intents; deploy and terminate.
    WriteProject,
    /// Manage a project's role bindings and tokens; read its audit events.
    AdministerProject,
    /// Global role bindings and tokens.
    AdministerGlobal,
    /// Every audit event.
    ReadAllAudit,
    /// `POST /v2/adapt-credentials`: a pure computation on the request body.
    AdaptCredentials,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::ReadClusters,
        Action::WriteClusters,
        Action::ListProjects,
        Action::CreateProject,
        Action::DeleteProject,
        Action::UpdateProject,
        Action::ChangeNamespaces,
        Action::ReadProject,
        Action::WriteProject,
        Action::AdministerProject,
        Action::AdministerGlobal,
        Action::ReadAllAudit,
        Action::AdaptCredentials,
    ];

    /// Whether the action is on one project (named by the request's path).
    pub const fn is_project_scoped(self) -> bool {
        matches!(
            self,
            Action::DeleteProject
                | Action::UpdateProject
                | Action::ChangeNamespaces
                | Action::ReadProject
                | Action::WriteProject
                | Action::AdministerProject
        )
    }

    /// The roles that allow the action: global roles, and (for project actions) project roles.
    pub const fn allowed_roles(self) -> (&'static [GlobalRole], &'static [ProjectRole]) {
        use GlobalRole::*;
        use ProjectRole::*;
        match self {
            Action::ReadClusters | Action::ListProjects | Action::AdaptCredentials => {
                (&[Admin, Reader], &[Owner, Editor, Viewer])
            }
            Action::WriteClusters
            | Action::CreateProject
            | Action::DeleteProject
            | Action::ChangeNamespaces
            | Action::AdministerGlobal => (&[Admin], &[]),
            Action::UpdateProject | Action::AdministerProject => (&[Admin], &[Owner]),
            Action::ReadProject => (&[Admin, Reader], &[Owner, Editor, Viewer]),
            Action::WriteProject => (&[Admin], &[Owner, Editor]),
            Action::ReadAllAudit => (&[Admin, Reader], &[]),
        }
    }

    /// Whether any authenticated caller may do it, whatever roles it holds.
    const fn open_to_any_caller(self) -> bool {
        matches!(
            self,
            Action::ReadClusters | Action::ListProjects | Action::AdaptCredentials
        )
    }
}

/// What the policy decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The caller may see the resource but not do this: 403, naming the roles that would do.
    Forbidden {
        needed: String,
    },
    /// The caller may not even see the project: answered 404, exactly as if it did not exist.
    Hidden,
}

/// The one authorization policy: may `principal` do `action` (on `project`, for project actions)?
pub fn decide(principal: &Principal, action: Action, project: Option<&Name>) -> Decision {
    let (global, in_project) = action.allowed_roles();
    if action.open_to_any_caller() || principal.has_global(global) {
        return Decision::Allow;
    }
    match (action.is_project_scoped(), project) {
        (true, Some(project)) => {
            if !principal.can_read_project(project) {
                Decision::Hidden
            } else if principal.has_project(project, in_project) {
                Decision::Allow
            } else {
                Decision::Forbidden {
                    needed: needed_roles(global, in_project, Some(project)),
                }
            }
        }
        _ => Decision::Forbidden {
            needed: needed_roles(global, in_project, None),
        },
    }
}

fn needed_roles(
    global: &[GlobalRole],
    in_project: &[ProjectRole],
    project: Option<&Name>,
) -> String {
    let mut options: Vec<String> = Vec::new();
    if let (Some(project), false) = (project, in_project.is_empty()) {
        let roles: Vec<String> = in_project.iter().map(|r| r.to_string()).collect();
        options.push(format!(
            "role {} in project \"{project}\"",
            roles.join(" or ")
        ));
    }
    let roles: Vec<String> = global.iter().map(|r| r.to_string()).collect();
    options.push(format!("global role {}", roles.join(" or ")));
    options.join(", or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        s.parse().unwrap()
    }

    /// The callers of SPEC 6's role table, each holding one role (project roles in "shop").
    fn callers() -> Vec<(&'static str, Principal)> {
        let base = || Principal::new(Actor::User("u".into()));
        vec![
            ("admin", base().with_global(GlobalRole::Admin)),
            ("reader", base().with_global(GlobalRole::Reader)),
            (
                "owner",
                base().with_project(name("shop"), ProjectRole::Owner),
            ),
            (
                "editor",
                base().with_project(name("shop"), ProjectRole::Editor),
            ),
            (
                "viewer",
                base().with_project(name("shop"), ProjectRole::Viewer),
            ),
            ("none", base()),
        ]
    }

    /// SPEC 6's table, one row per action: who is allowed, in the order of `callers()`.
    const TABLE: [(Action, [bool; 6]); 13] = [
        (
            Action::WriteClusters,
            [true, false, false, false, false, false],
        ),
        (Action::ReadClusters, [true, true, true, true, true, true]),
        (
            Action::CreateProject,
            [true, false, false, false, false, false],
        ),
        (
            Action::DeleteProject,
            [true, false, false, false, false, false],
        ),
        (
            Action::ChangeNamespaces,
            [true, false, false, false, false, false],
        ),
        (
            Action::UpdateProject,
            [true, false, true, false, false, false],
        ),
        (Action::ListProjects, [true, true, true, true, true, true]),
        (Action::ReadProject, [true, true, true, true, true, false]),
        (
            Action::WriteProject,
            [true, false, true, true, false, false],
        ),
        (
            Action::AdministerProject,
            [true, false, true, false, false, false],
        ),
        (
            Action::AdministerGlobal,
            [true, false, false, false, false, false],
        ),
        (
            Action::ReadAllAudit,
            [true, true, false, false, false, false],
        ),
        (
            Action::AdaptCredentials,
            [true, true, true, true, true, true],
        ),
    ];

    #[test]
    fn the_role_table_cell_by_cell() {
        assert_eq!(
            TABLE.iter().map(|(a, _)| *a).collect::<BTreeSet<_>>(),
            Action::ALL.into_iter().collect::<BTreeSet<_>>(),
            "every action has a row"
        );
        let shop = name("shop");
        for (action, row) in TABLE {
            for ((who, principal), allowed) in callers().iter().zip(row) {
                let decision = decide(principal, action, Some(&shop));
                assert_eq!(
                    decision == Decision::Allow,
                    allowed,
                    "{who} {action:?}: {decision:?}"
                );
            }
        }
    }

    #[test]
    fn another_projects_role_does_not_count() {
        let other = name("other");
        for (who, principal) in callers() {
            for action in Action::ALL.into_iter().filter(|a| a.is_project_scoped()) {
                let decision = decide(&principal, action, Some(&other));
                match who {
                    "admin" => assert_eq!(decision, Decision::Allow),
                    "reader" if action == Action::ReadProject => {
                        assert_eq!(decision, Decision::Allow)
                    }
                    "reader" => assert!(matches!(decision, Decision::Forbidden { .. })),
                    _ => assert_eq!(decision, Decision::Hidden, "{who} {action:?}"),
                }
            }
        }
    }

    #[test]
    fn refusals_name_the_roles_that_would_do() {
        let viewer = Principal::new(Actor::Token(name("ci")))
            .with_project(name("shop"), ProjectRole::Viewer);
        let Decision::Forbidden { needed } =
            decide(&viewer, Action::WriteProject, Some(&name("shop")))
        else {
            panic!("viewers do not write");
        };
        assert_eq!(
            needed,
            "role owner or editor in project \"shop\", or global role admin"
        );
        let Decision::Forbidden { needed } = decide(&viewer, Action::WriteClusters, None) else {
            panic!("viewers do not write clusters");
        };
        assert_eq!(needed, "global role admin");
    }

    #[test]
    fn actors_print_as_the_spec_names_them() {
        assert_eq!(Actor::User("alice".into()).to_string(), "user:alice");
        assert_eq!(Actor::Token(name("ci")).to_string(), "token:ci");
        assert_eq!(
            Actor::ProjectToken {
                project: name("shop"),
                name: name("ci")
            }
            .to_string(),
            "token:shop/ci"
        );
        assert_eq!(Actor::System("reconciler").to_string(), "system:reconciler");
    }

    #[test]
    fn subjects_match_users_and_groups() {
        let user = Subject {
            kind: SubjectKind::User,
            name: "alice".parse().unwrap(),
        };
        let group = Subject {
            kind: SubjectKind::Group,
            name: "platform".parse().unwrap(),
        };
        let groups = vec!["dev".to_owned(), "platform".to_owned()];
        assert!(user.matches("alice", &[]));
        assert!(!user.matches("bob", &groups));
        assert!(group.matches("bob", &groups));
        assert!(!group.matches("platform", &[]));
        assert!("a\u{0}b".parse::<SubjectName>().is_err());
    }

    #[test]
    fn token_roles_read_both_forms() {
        let roles: Vec<TokenRole> =
            serde_json::from_str(r#"["reader", {"project": "shop", "role": "editor"}]"#).unwrap();
        assert_eq!(
            roles,
            vec![
                TokenRole::Global(GlobalRole::Reader),
                TokenRole::Project(ProjectGrant {
                    project: name("shop"),
                    role: ProjectRole::Editor
                })
            ]
        );
    }
}
