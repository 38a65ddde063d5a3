//! Who is calling: principals from API tokens and role bindings, the audit log, bootstrap.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Service;
use super::context::stored_spec;
use crate::auth::token;
use crate::domain::access::{
    Actor, GlobalRoleBindingSpec, GlobalTokenSpec, Principal, ProjectRoleBindingSpec,
    ProjectTokenSpec, TokenRole,
};
use crate::domain::envelopes::GlobalToken;
use crate::domain::names::Name;
use crate::domain::resource::{Kind, ResourcePath};
use crate::error::{Error, Result};
use crate::store::{AuditFilter, AuditRow, NewAuditEvent, Tx};

/// An authenticated request as the service sees it: who, and the request id its audit events
/// carry.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
}

impl Caller {
    pub fn new(principal: Principal, request_id: impl Into<String>) -> Self {
        Self {
            principal,
            request_id: request_id.into(),
        }
    }

    /// meshintent acting on its own (bootstrap, the command line).
    pub fn system(name: &'static str) -> Self {
        Self::new(
            Principal::system(name),
            format!("system-{}", uuid::Uuid::new_v4()),
        )
    }

    pub fn actor(&self) -> String {
        self.principal.actor.to_string()
    }
}

/// One audit event (SPEC section 6, "Audit").
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Increasing; page with `?after=`.
    pub id: i64,
    pub time: DateTime<Utc>,
    /// `user:<name>`, `token:<name>`, `token:<project>/<name>`, `system:<what>` or `anonymous`.
    pub actor: String,
    /// `create`, `replace`, `delete`, `deploy`, `terminate`, `token.create`, `token.revoke`,
    /// `role-binding.create|replace|delete`, `kubeconfig.replace`, `kubeconfig.remove`, or
    /// `denied` for a refused request.
    pub action: String,
    /// The URL path of the resource.
    pub resource: String,
    /// The project it belongs to, if any.
    pub project: Option<String>,
    pub revision_before: Option<i64>,
    pub revision_after: Option<i64>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// Also sent as the `X-Request-Id` response header.
    pub request_id: String,
    /// Why a request was refused (never a credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            time: r.time,
            actor: r.actor,
            action: r.action,
            resource: r.resource,
            project: r.project,
            revision_before: r.revision_before,
            revision_after: r.revision_after,
            status: u16::try_from(r.status).unwrap_or(0),
            request_id: r.request_id,
            message: r.message,
        }
    }
}

/// A page of audit events.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventList {
    pub items: Vec<AuditEvent>,
    /// Pass as `?after=` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

/// The project a path belongs to, if any.
pub(crate) fn project_of(path: &ResourcePath) -> Option<String> {
    match path.segments().first() {
        Some((Kind::Project, key)) => Some(key.name.to_string()),
        _ => None,
    }
}

/// Writes the audit event of a change, in the change's transaction.
pub(crate) async fn audit_change(
    tx: &mut Tx,
    caller: &Caller,
    action: &str,
    path: &ResourcePath,
    revisions: (Option<i64>, Option<i64>),
    status: u16,
) -> Result<()> {
    tx.insert_audit(&NewAuditEvent {
        actor: caller.actor(),
        action: action.to_owned(),
        resource: path.url(),
        project: project_of(path),
        revision_before: revisions.0,
        revision_after: revisions.1,
        status,
        request_id: caller.request_id.clone(),
        message: None,
    })
    .await?;
    Ok(())
}

/// The audit action of a create, replace or delete of `kind`.
pub(crate) fn change_action(kind: Kind, verb: &str) -> String {
    if kind.is_token() {
        match verb {
            "delete" => "token.revoke".into(),
            other => format!("token.{other}"),
        }
    } else if kind.is_access_control() {
        format!("role-binding.{verb}")
    } else {
        verb.to_owned()
    }
}

/// `lastUsedAt` is written at most this often per token, so that reads stay reads.
const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl Service {
    /// The principal an API token stands for; `None` for an unknown, revoked or expired one.
    pub async fn authenticate_token(&self, secret: &str) -> Result<Option<Principal>> {
        if !token::looks_like_token(secret) {
            return Ok(None);
        }
        let hash = token::hash(secret);
        let mut tx = self.store.begin_read().await?;
        let Some((row, stored_hash)) = tx.token_by_hash(&hash).await? else {
            return Ok(None);
        };
        drop(tx);
        if !token::same_hash(&hash, &stored_hash) {
            return Ok(None);
        }
        let now = Utc::now();
        let name: Name = row
            .token
            .name
            .parse()
            .map_err(|e: String| Error::internal("stored token name", e))?;
        let (principal, expires_at) = match Kind::from_code(&row.token.kind) {
            Some(Kind::GlobalToken) => {
                let spec: GlobalTokenSpec = stored_spec(&row.token)?;
                let mut principal = Principal::new(Actor::Token(name));
                for role in &spec.roles {
                    principal = match role {
                        TokenRole::Global(role) => principal.with_global(*role),
                        TokenRole::Project(grant) => {
                            principal.with_project(grant.project.clone(), grant.role)
                        }
                    };
                }
                (principal, spec.expires_at)
            }
            Some(Kind::ProjectToken) => {
                let spec: ProjectTokenSpec = stored_spec(&row.token)?;
                let project: Name = row
                    .project
                    .as_deref()
                    .ok_or_else(|| Error::internal("project token", "no project"))?
                    .parse()
                    .map_err(|e: String| Error::internal("stored project name", e))?;
                let principal = Principal::new(Actor::ProjectToken {
                    project: project.clone(),
                    name,
                })
                .with_project(project, spec.role);
                (principal, spec.expires_at)
            }
            _ => return Err(Error::internal("token secret", "belongs to no token")),
        };
        if expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        if row
            .last_used_at
            .is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
        {
            let mut tx = self.store.begin_write().await?;
            tx.touch_token(row.token.id, now).await?;
            tx.commit().await?;
        }
        Ok(Some(principal))
    }

    /// The principal of an OIDC user: the roles its user name and groups are bound to.
    pub async fn principal_for_user(&self, user: &str, groups: &[String]) -> Result<Principal> {
        let mut tx = self.store.begin_read().await?;
        let bindings = tx.role_bindings().await?;
        drop(tx);
        let mut principal = Principal::new(Actor::User(user.to_owned()));
        for row in bindings {
            match Kind::from_code(&row.binding.kind) {
                Some(Kind::GlobalRoleBinding) => {
                    let spec: GlobalRoleBindingSpec = stored_spec(&row.binding)?;
                    if spec.subject.matches(user, groups) {
                        principal = principal.with_global(spec.role);
                    }
                }
                Some(Kind::ProjectRoleBinding) => {
                    let spec: ProjectRoleBindingSpec = stored_spec(&row.binding)?;
                    let Some(project) = row.project.as_deref().and_then(|p| p.parse().ok()) else {
                        continue;
                    };
                    if spec.subject.matches(user, groups) {
                        principal = principal.with_project(project, spec.role);
                    }
                }
                _ => {}
            }
        }
        Ok(principal)
    }

    /// Records a refused request (401, 403, or 404 for a hidden project) in its own
    /// transaction.
    pub async fn record_denied(&self, event: NewAuditEvent) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        tx.insert_audit(&event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of audit events, oldest first.
    pub async fn audit_events(&self, filter: AuditFilter, limit: u32) -> Result<AuditEventList> {
        let limit = limit.clamp(1, 1000);
        let mut tx = self.store.begin_read().await?;
        let mut rows = tx.audit_events(&filter, limit + 1).await?;
        let next_after = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok(AuditEventList {
            items: rows.into_iter().map(AuditEvent::from).collect(),
            next_after,
        })
    }

    /// A new admin token named `name`; returns its secret (shown once). With `secret`, the
    /// token has that secret (which must look like one: `mi_` and 43 base64url characters).
    pub async fn create_admin_token(
        &self,
        name: Name,
        caller: &Caller,
        secret: Option<String>,
    ) -> Result<String> {
        if secret
            .as_deref()
            .is_some_and(|s| !token::looks_like_token(s))
        {
            return Err(Error::invalid_field(
                "MESHINTENT_BOOTSTRAP_TOKEN",
                "must be mi_ followed by 43 base64url characters (256 random bits)",
            ));
        }
        let body: GlobalToken = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "description": "admin token created on the command line or at first start"},
            "spec": {"roles": ["admin"]},
        }))
        .map_err(|e| Error::internal("admin token", e))?;
        let (_, created) = self
            .create_with_secret(&ResourcePath::root(), body, caller, secret)
            .await?;
        created
            .status
            .and_then(|s| s.secret)
            .ok_or_else(|| Error::internal("admin token", "no secret returned"))
    }

    /// Whether any global token exists (the first start creates one only when none does).
    pub async fn has_global_tokens(&self) -> Result<bool> {
        let mut tx = self.store.begin_read().await?;
        Ok(tx.count_global_tokens().await? > 0)
    }

    /// Claims the bootstrap secret for creating its token once. False when it was claimed
    /// before: the token exists, or was revoked and must stay so.
    pub async fn claim_bootstrap(&self, secret: &str) -> Result<bool> {
        let mut tx = self.store.begin_write().await?;
        let claimed = tx.claim_bootstrap(&token::hash(secret)).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Whether a token with this secret exists.
    pub async fn token_exists(&self, secret: &str) -> Result<bool> {
        let mut tx = self.store.begin_read().await?;
        Ok(tx.token_by_hash(&token::hash(secret)).await?.is_some())
    }
}
