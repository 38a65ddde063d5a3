//! Authentication: meshintent API tokens and OIDC JWTs, turned into a `Principal`.

pub mod limiter;
pub mod oidc;
pub mod token;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::access::Principal;
use crate::error::{Error, Result};
use crate::service::Service;
use limiter::FailureLimiter;
use oidc::OidcVerifier;

/// How long a resolved credential is trusted without asking the database again. Revocation
/// reaches every replica within this (the spec allows 5 s).
const CACHE_TTL: Duration = Duration::from_secs(2);
/// Entries kept at most; beyond, expired ones are dropped (then all, under a flood).
const CACHE_CAPACITY: usize = 10_000;

/// Authentication settings.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// Off only for the benchmark baseline: every request is then an admin.
    pub enabled: bool,
    /// Failed authentications allowed per client address and minute before 429.
    pub failures_per_minute: u32,
    /// OIDC: JWTs from the organisation's identity provider (off when not configured).
    pub oidc: Option<oidc::OidcSettings>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            failures_per_minute: 20,
            oidc: None,
        }
    }
}

/// A resolved credential: valid until `CACHE_TTL` passes or access control changes.
struct Cached {
    principal: Principal,
    at: Instant,
    generation: u64,
}

/// Turns `Authorization` headers into principals, with a short cache and a limit on failures.
pub struct Authenticator {
    settings: AuthSettings,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    failures: FailureLimiter,
    oidc: Option<OidcVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Loads the identity provider's keys when OIDC is configured (failing start-up if they
    /// cannot be read, rather than refusing every user later).
    pub async fn new(settings: AuthSettings) -> Result<Arc<Self>, oidc::OidcError> {
        let oidc = match &settings.oidc {
            Some(oidc) => {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| oidc::OidcError::Config(e.to_string()))?;
                Some(OidcVerifier::new(oidc.clone(), http).await?)
            }
            None => None,
        };
        Ok(Arc::new(Self {
            failures: FailureLimiter::new(settings.failures_per_minute, Duration::from_secs(60)),
            settings,
            cache: Mutex::new(HashMap::new()),
            oidc,
        }))
    }

    /// The principal of a request's `Authorization` header value. Errors are 401 (with the
    /// reason, never the credential) or 429 after too many failures from `peer`.
    pub async fn authenticate(
        &self,
        svc: &Service,
        authorization: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<Principal> {
        if !self.settings.enabled {
            return Ok(Principal::system("auth-disabled"));
        }
        let blocked = peer.and_then(|p| self.failures.blocked(p));
        let result = self.resolve(svc, authorization, blocked.is_some()).await;
        if let Some(retry_after) = blocked
            && result.is_err()
        {
            return Err(Error::TooManyRequests {
                detail: "too many failed authentications from this address; retry later".into(),
                retry_after_secs: retry_after.as_secs().max(1),
            });
        }
        // Only wrong credentials count: a request without one guesses nothing.
        if let (Err(Error::Unauthorized { sent: true, .. }), Some(peer)) = (&result, peer) {
            self.failures.record(peer);
        }
        result
    }

    /// With `cached_only` (an address over its failure limit), only credentials this replica
    /// validated in the last seconds are accepted: callers sharing the address (behind a proxy)
    /// keep working, while new guesses cost no database or signature work and learn nothing.
    async fn resolve(
        &self,
        svc: &Service,
        authorization: Option<&str>,
        cached_only: bool,
    ) -> Result<Principal> {
        let Some(header) = authorization else {
            return Err(Error::Unauthorized {
                detail: "this endpoint needs a credential: send Authorization: Bearer <API token or OIDC token>".into(),
                sent: false,
            });
        };
        let credential = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::Unauthorized {
                detail: "the Authorization header must be `Bearer <credential>`".into(),
                sent: true,
            })?;
        let key = token::hash(credential);
        let generation = svc.access_generation();
        if let Some(principal) = self.cached(&key, generation) {
            return Ok(principal);
        }
        if cached_only {
            return Err(Error::Unauthorized {
                detail: "refused while this address is over its failed-authentication limit".into(),
                sent: true,
            });
        }
        let principal = if token::looks_like_token(credential) {
            svc.authenticate_token(credential)
                .await?
                .ok_or_else(|| Error::Unauthorized {
                    detail: "the API token is not valid: unknown, revoked or expired".into(),
                    sent: true,
                })?
        } else if let (Some(verifier), true) = (&self.oidc, oidc::looks_like_jwt(credential)) {
            let identity = verifier.verify(credential).await.map_err(|e| {
                // Why the keys could not be loaded is for the operator, not the caller.
                let detail = if let oidc::OidcError::Jwks(cause) = &e {
                    tracing::warn!(%cause, "could not refresh the identity provider's keys");
                    "the OIDC token's signing key could not be checked; retry later".to_owned()
                } else {
                    format!("the OIDC token is not valid: {e}")
                };
                Error::Unauthorized { detail, sent: true }
            })?;
            svc.principal_for_user(&identity.username, &identity.groups)
                .await?
        } else {
            return Err(Error::Unauthorized {
                detail: "the credential is neither a meshintent API token nor an OIDC token this server accepts".into(),
                sent: true,
            });
        };
        self.remember(key, principal.clone(), generation);
        Ok(principal)
    }

    fn cached(&self, key: &[u8; 32], generation: u64) -> Option<Principal> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|c| c.generation == generation && c.at.elapsed() < CACHE_TTL)
            .map(|c| c.principal.clone())
    }

    fn remember(&self, key: [u8; 32], principal: Principal, generation: u64) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, c| c.at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        let at = Instant::now();
        cache.insert(
            key,
            Cached {
                principal,
                at,
                generation,
            },
        );
    }
}
