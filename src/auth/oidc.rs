//! Verification of OIDC JWTs (SPEC section 6): signature against the identity provider's JWKS,
//! `exp`/`nbf` with 60 s leeway, `iss`, `aud`, then the user name and groups claims.
//!
//! Only RS256, ES256 and EdDSA are accepted, and a key is used only for the algorithm its own
//! type (and `alg`, when the JWKS names one) allows, so neither `alg: none` nor HMAC keyed with a
//! public key gets through. Keys are looked up by `kid`; an unknown `kid` triggers one JWKS
//! refresh, at most one every 10 s, shared by concurrent callers. All cryptography is
//! `jsonwebtoken` (aws-lc-rs backend).
//!
//! No error text ever contains the token; values taken from a token (its `alg` or `kid`) are
//! shortened and escaped before they appear in one.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::time::Instant;

/// The claim the user name comes from unless configured otherwise.
pub const DEFAULT_USERNAME_CLAIM: &str = "sub";
/// The claim the groups come from unless configured otherwise.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 60;
/// At most one JWKS refresh (for an unknown `kid`) per this interval.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Time limit of one request to the identity provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery or JWKS document accepted.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Longer credentials are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Longest text taken from a token (`alg`, `kid`) that an error shows.
const MAX_SHOWN_CHARS: usize = 64;

/// Where the identity provider's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS file; re-read on every refresh.
    File(PathBuf),
    /// A JWKS document fetched over HTTP(S).
    Url(String),
    /// `issuer + "/.well-known/openid-configuration"`, whose `jwks_uri` names the JWKS.
    Discovery,
}

/// What [`OidcVerifier`] checks tokens against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Required value of `iss` (exact string match).
    pub issuer: String,
    /// A value `aud` (a string or an array of strings) must contain.
    pub audience: String,
    pub jwks: JwksSource,
    /// The claim holding the user name (a non-empty string), usually `sub`.
    pub username_claim: String,
    /// The claim holding the groups (an array of strings, or absent), usually `groups`.
    pub groups_claim: String,
}

impl OidcSettings {
    /// Settings with the default claims ([`DEFAULT_USERNAME_CLAIM`], [`DEFAULT_GROUPS_CLAIM`]).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwksSource) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
            username_claim: DEFAULT_USERNAME_CLAIM.to_owned(),
            groups_claim: DEFAULT_GROUPS_CLAIM.to_owned(),
        }
    }

    /// Reads a `MESHINTENT_OIDC_JWKS`-style value: unset or empty means discovery, an `http://`
    /// or `https://` URL a URL, anything else a file path.
    pub fn jwks_from(value: Option<&str>) -> JwksSource {
        let value = value.map(str::trim).unwrap_or_default();
        if value.is_empty() {
            return JwksSource::Discovery;
        }
        let lower = value.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            JwksSource::Url(value.to_owned())
        } else {
            JwksSource::File(PathBuf::from(value))
        }
    }
}

/// Who a verified token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    pub username: String,
    pub groups: Vec<String>,
}

/// Why a token was refused, or why the verifier could not start. The texts never contain the
/// token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("the credential is not a well-formed JWT")]
    Malformed,
    #[error("JWT algorithm {0} is not accepted (only RS256, ES256 and EdDSA are)")]
    UnsupportedAlgorithm(String),
    #[error("the identity provider has no signing key with the token's key id {0}")]
    UnknownKey(String),
    #[error("the token's algorithm does not match the algorithm of its signing key")]
    KeyAlgorithmMismatch,
    #[error("the token's header has no key id (kid)")]
    NoKeyId,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token was issued for another audience")]
    WrongAudience,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has no claim {0:?}")]
    MissingClaim(String),
    #[error("the token's claim {0:?} has an invalid value")]
    InvalidClaim(String),
    #[error("JWKS: {0}")]
    Jwks(String),
    #[error("OIDC configuration: {0}")]
    Config(String),
}

/// Whether `credential` has the shape of a compact JWS: three base64url segments separated by
/// `.`, the first two non-empty (the signature may be empty, as in an `alg: none` token, which
/// [`OidcVerifier::verify`] then refuses as such).
pub fn looks_like_jwt(credential: &str) -> bool {
    let mut parts = credential.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let base64url = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    !header.is_empty()
        && !payload.is_empty()
        && base64url(header)
        && base64url(payload)
        && base64url(signature)
}

/// Verifies OIDC JWTs. Cheap to clone (shared state); `Send + Sync`.
#[derive(Clone)]
pub struct OidcVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    settings: OidcSettings,
    http: reqwest::Client,
    /// The JWKS location after discovery.
    source: Resolved,
    /// The current keys. Readers clone the `Arc` and never wait on I/O.
    keys: RwLock<Arc<KeySet>>,
    /// When the last refresh started; held across a refresh so concurrent callers share it.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    refresh_interval: Duration,
    validations: Validations,
}

#[derive(Debug, Clone)]
enum Resolved {
    File(PathBuf),
    Url(String),
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolved::File(path) => write!(f, "{}", path.display()),
            Resolved::Url(url) => f.write_str(url),
        }
    }
}

impl fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.inner.settings.issuer)
            .field("audience", &self.inner.settings.audience)
            .field("jwks", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// Checks the settings, resolves discovery and loads the JWKS once; a failure is a
    /// [`OidcError::Config`] (bad settings, a discovery document for another issuer) or an
    /// [`OidcError::Jwks`] (unreachable, unreadable, no usable signing key).
    pub async fn new(settings: OidcSettings, http: reqwest::Client) -> Result<Self, OidcError> {
        Self::with_refresh_interval(settings, http, MIN_REFRESH_INTERVAL).await
    }

    async fn with_refresh_interval(
        settings: OidcSettings,
        http: reqwest::Client,
        refresh_interval: Duration,
    ) -> Result<Self, OidcError> {
        check_settings(&settings)?;
        let source = match &settings.jwks {
            JwksSource::File(path) => Resolved::File(path.clone()),
            JwksSource::Url(url) => Resolved::Url(check_url(url, "the JWKS URL")?),
            JwksSource::Discovery => Resolved::Url(discover(&http, &settings.issuer).await?),
        };
        if let Resolved::Url(url) = &source {
            warn_if_plain_http(url);
        }
        let keys = load_keys(&http, &source).await?;
        tracing::info!(
            issuer = %settings.issuer,
            jwks = %source,
            keys = keys.len(),
            "OIDC signing keys loaded"
        );
        let validations = Validations::new(&settings);
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                http,
                source,
                keys: RwLock::new(Arc::new(keys)),
                refresh: tokio::sync::Mutex::new(None),
                refresh_interval,
                validations,
            }),
        })
    }

    /// Verifies `token` and returns whose it is.
    pub async fn verify(&self, token: &str) -> Result<OidcIdentity, OidcError> {
        let (alg, kid) = read_header(token)?;
        let mut keys = self.current_keys();
        if !keys.contains(&kid) {
            keys = self.refresh_for(&kid).await?;
        }
        let key = keys.find(&kid, alg)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &key.key,
            self.inner.validations.get(alg),
        )
        .map_err(map_jwt_error)?;
        self.identity(&data.claims)
    }

    fn current_keys(&self) -> Arc<KeySet> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The key set after at most one refresh for the unknown `kid`: callers that waited for a
    /// refresh in progress use its result; within the refresh interval none is started.
    async fn refresh_for(&self, kid: &str) -> Result<Arc<KeySet>, OidcError> {
        let mut last = self.inner.refresh.lock().await;
        let keys = self.current_keys();
        if keys.contains(kid) {
            return Ok(keys);
        }
        if last.is_some_and(|at| at.elapsed() < self.inner.refresh_interval) {
            return Err(OidcError::UnknownKey(shown(kid)));
        }
        *last = Some(Instant::now());
        match load_keys(&self.inner.http, &self.inner.source).await {
            Ok(fresh) => {
                tracing::info!(
                    jwks = %self.inner.source,
                    keys = fresh.len(),
                    "OIDC signing keys refreshed for an unknown key id"
                );
                let fresh = Arc::new(fresh);
                *self
                    .inner
                    .keys
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh.clone();
                if fresh.contains(kid) {
                    Ok(fresh)
                } else {
                    Err(OidcError::UnknownKey(shown(kid)))
                }
            }
            Err(err) => {
                tracing::warn!(
                    jwks = %self.inner.source,
                    error = %err,
                    "OIDC JWKS refresh failed; keeping the previous keys"
                );
                Err(err)
            }
        }
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<OidcIdentity, OidcError> {
        let settings = &self.inner.settings;
        // jsonwebtoken also accepts an array `iss` containing the issuer; an issuer is one string.
        if claims.get("iss").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
            return Err(OidcError::WrongIssuer);
        }
        let username = match claims.get(&settings.username_claim) {
            None | Some(Value::Null) => {
                return Err(OidcError::MissingClaim(settings.username_claim.clone()));
            }
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            Some(_) => return Err(OidcError::InvalidClaim(settings.username_claim.clone())),
        };
        let groups = match claims.get(&settings.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| OidcError::InvalidClaim(settings.groups_claim.clone()))?,
            Some(_) => return Err(OidcError::InvalidClaim(settings.groups_claim.clone())),
        };
        Ok(OidcIdentity { username, groups })
    }
}

/// Pre-built validations, one per accepted algorithm.
struct Validations {
    rs256: Validation,
    es256: Validation,
    eddsa: Validation,
}

impl Validations {
    fn new(settings: &OidcSettings) -> Self {
        let make = |alg| {
            let mut validation = Validation::new(alg);
            validation.leeway = LEEWAY_SECS;
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.validate_aud = true;
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation.set_issuer(&[&settings.issuer]);
            validation.set_audience(&[&settings.audience]);
            validation
        };
        Self {
            rs256: make(Algorithm::RS256),
            es256: make(Algorithm::ES256),
            eddsa: make(Algorithm::EdDSA),
        }
    }

    fn get(&self, alg: Algorithm) -> &Validation {
        match alg {
            Algorithm::ES256 => &self.es256,
            Algorithm::EdDSA => &self.eddsa,
            _ => &self.rs256,
        }
    }
}

/// The algorithms accepted, by their JOSE names.
fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// The header's algorithm (one of the accepted ones) and key id, read without trusting anything
/// else in it. jsonwebtoken parses the header again, with its own checks, when it verifies.
fn read_header(token: &str) -> Result<(Algorithm, String), OidcError> {
    if token.len() > MAX_TOKEN_BYTES || !looks_like_jwt(token) {
        return Err(OidcError::Malformed);
    }
    let encoded = token.split('.').next().unwrap_or_default();
    let decoded = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| OidcError::Malformed)?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&decoded) else {
        return Err(OidcError::Malformed);
    };
    let name = match header.get("alg") {
        Some(Value::String(name)) => name,
        _ => return Err(OidcError::Malformed),
    };
    let alg =
        accepted_algorithm(name).ok_or_else(|| OidcError::UnsupportedAlgorithm(shown(name)))?;
    let kid = match header.get("kid") {
        None | Some(Value::Null) => return Err(OidcError::NoKeyId),
        Some(Value::String(kid)) if kid.is_empty() => return Err(OidcError::NoKeyId),
        Some(Value::String(kid)) => kid.clone(),
        Some(_) => return Err(OidcError::Malformed),
    };
    Ok((alg, kid))
}

fn map_jwt_error(err: jsonwebtoken::errors::Error) -> OidcError {
    match err.into_kind() {
        ErrorKind::InvalidSignature => OidcError::BadSignature,
        ErrorKind::ExpiredSignature => OidcError::Expired,
        ErrorKind::ImmatureSignature => OidcError::NotYetValid,
        ErrorKind::InvalidIssuer => OidcError::WrongIssuer,
        ErrorKind::InvalidAudience => OidcError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => OidcError::MissingClaim(claim),
        ErrorKind::InvalidClaimFormat(claim) => OidcError::InvalidClaim(claim),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
            OidcError::KeyAlgorithmMismatch
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidAlgorithmName => OidcError::Malformed,
        _ => OidcError::BadSignature,
    }
}

/// Text taken from a token, made safe to show: at most [`MAX_SHOWN_CHARS`] characters, quoted
/// and escaped.
fn shown(value: &str) -> String {
    let mut short: String = value.chars().take(MAX_SHOWN_CHARS).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    format!("{short:?}")
}

fn check_settings(settings: &OidcSettings) -> Result<(), OidcError> {
    let non_empty = [
        (&settings.issuer, "the issuer"),
        (&settings.audience, "the audience"),
        (&settings.username_claim, "the username claim"),
        (&settings.groups_claim, "the groups claim"),
    ];
    for (value, what) in non_empty {
        if value.trim().is_empty() {
            return Err(OidcError::Config(format!("{what} must not be empty")));
        }
    }
    if let JwksSource::File(path) = &settings.jwks
        && path.as_os_str().is_empty()
    {
        return Err(OidcError::Config("the JWKS file path is empty".into()));
    }
    Ok(())
}

fn check_url(value: &str, what: &str) -> Result<String, OidcError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(value.to_owned())
        }
        _ => Err(OidcError::Config(format!(
            "{what} {value:?} is not an http(s) URL"
        ))),
    }
}

fn warn_if_plain_http(value: &str) {
    let Ok(url) = url::Url::parse(value) else {
        return;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        tracing::warn!(url = %value, "OIDC keys are fetched over plain HTTP; use https");
    }
}

/// Resolves the issuer's discovery document to its `jwks_uri`.
async fn discover(http: &reqwest::Client, issuer: &str) -> Result<String, OidcError> {
    let base = check_url(issuer, "the issuer")?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        base.trim_end_matches('/')
    );
    let body = fetch(http, &url).await?;
    let document: Value = serde_json::from_slice(&body)
        .map_err(|err| OidcError::Jwks(format!("{url}: not a JSON document: {err}")))?;
    // OpenID Connect Discovery 1.0, section 4.3: the document's issuer must be the issuer.
    match document.get("issuer").and_then(Value::as_str) {
        Some(found) if found == issuer => {}
        found => {
            return Err(OidcError::Config(format!(
                "{url} names issuer {found:?}, expected {issuer:?}"
            )));
        }
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| OidcError::Jwks(format!("{url} has no jwks_uri")))?;
    check_url(jwks_uri, "the discovery document's jwks_uri")
}

/// GET with a time limit and a size limit; only a 2xx answer counts.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, OidcError> {
    let failed = |err: reqwest::Error| OidcError::Jwks(format!("GET {url}: {}", err.without_url()));
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(HTTP_TIMEOUT)
        .send()
        .await
        .map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(OidcError::Jwks(format!("GET {url}: HTTP {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(OidcError::Jwks(format!(
                "GET {url}: the document is larger than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn load_keys(http: &reqwest::Client, source: &Resolved) -> Result<KeySet, OidcError> {
    let body = match source {
        Resolved::Url(url) => fetch(http, url).await?,
        Resolved::File(path) => {
            let body = tokio::fs::read(path)
                .await
                .map_err(|err| OidcError::Jwks(format!("{}: {err}", path.display())))?;
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(OidcError::Jwks(format!(
                    "{}: the file is larger than {MAX_DOCUMENT_BYTES} bytes",
                    path.display()
                )));
            }
            body
        }
    };
    let keys = KeySet::parse(&body).map_err(|err| OidcError::Jwks(format!("{source}: {err}")))?;
    if keys.is_empty() {
        return Err(OidcError::Jwks(format!(
            "{source} holds no usable signing key (RS256, ES256 or EdDSA with a kid)"
        )));
    }
    Ok(keys)
}

/// One signing key of the JWKS, with the single algorithm it may verify.
struct KeyEntry {
    /// The algorithm the key's type (and declared `alg`) allows; `None`: none of ours.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// The usable keys by `kid` (an identity provider may publish one `kid` for several keys).
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Vec<KeyEntry>>,
}

impl KeySet {
    fn parse(body: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<Value>,
        }
        let document: Document =
            serde_json::from_slice(body).map_err(|err| format!("not a JWKS document: {err}"))?;
        let mut set = KeySet::default();
        for (index, value) in document.keys.into_iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(value) {
                Ok(jwk) => jwk,
                Err(err) => {
                    tracing::warn!(index, error = %err, "JWKS entry skipped: not a JWK");
                    continue;
                }
            };
            let Some(kid) = jwk.common.key_id.clone().filter(|kid| !kid.is_empty()) else {
                tracing::debug!(index, "JWKS entry skipped: no kid");
                continue;
            };
            if !for_signatures(&jwk) {
                tracing::debug!(kid, "JWKS entry skipped: not a signature key");
                continue;
            }
            match key_entry(&jwk) {
                Ok(Some(entry)) => set.by_kid.entry(kid).or_default().push(entry),
                Ok(None) => tracing::debug!(kid, "JWKS entry skipped: unsupported key type"),
                Err(err) => tracing::warn!(kid, error = %err, "JWKS entry skipped"),
            }
        }
        Ok(set)
    }

    fn len(&self) -> usize {
        self.by_kid.values().map(Vec::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }

    fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    fn find(&self, kid: &str, alg: Algorithm) -> Result<&KeyEntry, OidcError> {
        let entries = self
            .by_kid
            .get(kid)
            .ok_or_else(|| OidcError::UnknownKey(shown(kid)))?;
        entries
            .iter()
            .find(|entry| entry.alg == Some(alg))
            .ok_or(OidcError::KeyAlgorithmMismatch)
    }
}

fn for_signatures(jwk: &Jwk) -> bool {
    let usable_use = match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => true,
        Some(_) => false,
    };
    let usable_ops = match &jwk.common.key_operations {
        None => true,
        Some(ops) => ops.contains(&KeyOperations::Verify),
    };
    usable_use && usable_ops
}

/// The key and the one algorithm it may verify, or `None` for a key type we never accept
/// (symmetric `oct` keys among them). A key whose declared `alg` is not the algorithm its type
/// implies is kept with no algorithm, so a token naming it is a [`OidcError::KeyAlgorithmMismatch`].
fn key_entry(jwk: &Jwk) -> Result<Option<KeyEntry>, String> {
    let b64 = |field: &str, value: &str| {
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| format!("{field} is not base64url"))
    };
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(params) => {
            let n = b64("n", &params.n)?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "the RSA modulus has fewer than {MIN_RSA_BITS} bits"
                ));
            }
            b64("e", &params.e)?;
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(params) => {
            if params.curve != EllipticCurve::P256 {
                return Ok(None);
            }
            if b64("x", &params.x)?.len() != 32 || b64("y", &params.y)?.len() != 32 {
                return Err("x and y of a P-256 key must be 32 bytes each".into());
            }
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(params) => {
            if params.curve != EllipticCurve::Ed25519 {
                return Ok(None);
            }
            if b64("x", &params.x)?.len() != 32 {
                return Err("x of an Ed25519 key must be 32 bytes".into());
            }
            Algorithm::EdDSA
        }
        _ => return Ok(None),
    };
    let alg = match jwk.common.key_algorithm {
        None => Some(implied),
        Some(declared) if declared == KeyAlgorithm::from(implied) => Some(implied),
        Some(_) => None,
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|err| format!("unusable key: {err}"))?;
    Ok(Some(KeyEntry { alg, key }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::dev::ServerHandle;
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://idp.example.test/realms/main";
    const AUDIENCE: &str = "meshintent";

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/oidc")
            .join(name)
    }

    fn http() -> reqwest::Client {
        crate::tls::install_crypto_provider();
        reqwest::Client::new()
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now(),
            "exp": now() + 300,
            "groups": ["team-a", "team-b"],
        })
    }

    fn with(mut claims: Value, field: &str, value: Value) -> Value {
        claims[field] = value;
        claims
    }

    fn without(mut claims: Value, field: &str) -> Value {
        claims.as_object_mut().unwrap().remove(field);
        claims
    }

    fn sign(alg: Algorithm, kid: Option<&str>, private_key: &str, claims: &Value) -> String {
        let pem = std::fs::read(fixture(private_key)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            other => panic!("no fixture key for {other:?}"),
        }
        .unwrap();
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &key).unwrap()
    }

    /// An RS256 token signed with rsa1 (`kid` `rsa-1`).
    fn rs(claims: &Value) -> String {
        sign(Algorithm::RS256, Some("rsa-1"), "rsa1-private.pem", claims)
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    fn settings(jwks: JwksSource) -> OidcSettings {
        OidcSettings::new(ISSUER, AUDIENCE, jwks)
    }

    async fn verifier() -> OidcVerifier {
        OidcVerifier::new(settings(JwksSource::File(fixture("jwks.json"))), http())
            .await
            .unwrap()
    }

    fn alice() -> OidcIdentity {
        OidcIdentity {
            username: "alice".into(),
            groups: vec!["team-a".into(), "team-b".into()],
        }
    }

    /// A private copy of a fixture JWKS, removed on drop.
    struct TempJwks {
        dir: PathBuf,
        path: PathBuf,
    }

    impl TempJwks {
        fn new(contents: &[u8]) -> Self {
            let dir =
                std::env::temp_dir().join(format!("meshintent-oidc-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("jwks.json");
            std::fs::write(&path, contents).unwrap();
            Self { dir, path }
        }

        fn copy_of(fixture_name: &str) -> Self {
            Self::new(&std::fs::read(fixture(fixture_name)).unwrap())
        }

        fn overwrite_with(&self, fixture_name: &str) {
            std::fs::copy(fixture(fixture_name), &self.path).unwrap();
        }
    }

    impl Drop for TempJwks {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A tiny identity provider: discovery document and JWKS, counting JWKS requests.
    struct Idp {
        discovery: Mutex<Value>,
        jwks: Mutex<String>,
        jwks_hits: AtomicUsize,
        discovery_hits: AtomicUsize,
    }

    struct RunningIdp {
        base: String,
        state: web::Data<Idp>,
        handle: ServerHandle,
    }

    impl RunningIdp {
        fn jwks_hits(&self) -> usize {
            self.state.jwks_hits.load(Ordering::SeqCst)
        }

        fn serve_jwks(&self, fixture_name: &str) {
            *self.state.jwks.lock().unwrap() =
                std::fs::read_to_string(fixture(fixture_name)).unwrap();
        }

        async fn stop(self) {
            self.handle.stop(false).await;
        }
    }

    async fn idp_handler(req: HttpRequest, idp: web::Data<Idp>) -> HttpResponse {
        match req.path() {
            "/.well-known/openid-configuration" => {
                idp.discovery_hits.fetch_add(1, Ordering::SeqCst);
                HttpResponse::Ok().json(idp.discovery.lock().unwrap().clone())
            }
            "/keys" => {
                idp.jwks_hits.fetch_add(1, Ordering::SeqCst);
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(idp.jwks.lock().unwrap().clone())
            }
            _ => HttpResponse::NotFound().finish(),
        }
    }

    fn spawn_idp(jwks_fixture: &str) -> RunningIdp {
        let state = web::Data::new(Idp {
            discovery: Mutex::new(Value::Null),
            jwks: Mutex::new(std::fs::read_to_string(fixture(jwks_fixture)).unwrap()),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
        });
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(idp_handler))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let base = format!("http://127.0.0.1:{port}");
        *state.discovery.lock().unwrap() = json!({
            "issuer": base,
            "jwks_uri": format!("{base}/keys"),
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        });
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        RunningIdp {
            base,
            state,
            handle,
        }
    }

    #[test]
    fn verifier_is_send_sync_and_verify_is_send() {
        fn send_sync<T: Send + Sync + Clone>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<OidcVerifier>();
        send_sync::<OidcError>();
        let verifier: Option<OidcVerifier> = None;
        if let Some(verifier) = &verifier {
            send(&verifier.verify("x"));
        }
    }

    #[test]
    fn jwks_from_reads_discovery_url_or_file() {
        assert_eq!(OidcSettings::jwks_from(None), JwksSource::Discovery);
        assert_eq!(OidcSettings::jwks_from(Some("")), JwksSource::Discovery);
        assert_eq!(OidcSettings::jwks_from(Some("  ")), JwksSource::Discovery);
        assert_eq!(
            OidcSettings::jwks_from(Some("https://idp.example/keys")),
            JwksSource::Url("https://idp.example/keys".into())
        );
        assert_eq!(
            OidcSettings::jwks_from(Some("http://127.0.0.1:8080/keys")),
            JwksSource::Url("http://127.0.0.1:8080/keys".into())
        );
        assert_eq!(
            OidcSettings::jwks_from(Some("/etc/meshintent/jwks.json")),
            JwksSource::File("/etc/meshintent/jwks.json".into())
        );
        assert_eq!(
            OidcSettings::jwks_from(Some("jwks.json")),
            JwksSource::File("jwks.json".into())
        );
    }

    #[test]
    fn looks_like_jwt_wants_three_base64url_segments() {
        assert!(looks_like_jwt(&rs(&claims())));
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(
            looks_like_jwt("eyJh.eyJz."),
            "an unsigned JWT is still a JWT"
        );
        assert!(!looks_like_jwt(
            "mi_abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEF"
        ));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a+b.c.d"));
        assert!(!looks_like_jwt("a.b=.c"));
        assert!(!looks_like_jwt(""));
    }

    #[tokio::test]
    async fn valid_rs256_es256_and_eddsa_tokens() {
        let verifier = verifier().await;
        let tokens = [
            rs(&claims()),
            sign(Algorithm::ES256, Some("ec-1"), "ec-private.pem", &claims()),
            sign(
                Algorithm::EdDSA,
                Some("ed-1"),
                "ed25519-private.pem",
                &claims(),
            ),
        ];
        for token in tokens {
            assert_eq!(verifier.verify(&token).await, Ok(alice()));
        }
    }

    #[tokio::test]
    async fn exp_is_required_and_checked_with_leeway() {
        let verifier = verifier().await;
        let expired = with(claims(), "exp", json!(now() - 120));
        assert_eq!(
            verifier.verify(&rs(&expired)).await,
            Err(OidcError::Expired)
        );
        let within_leeway = with(claims(), "exp", json!(now() - 30));
        assert_eq!(verifier.verify(&rs(&within_leeway)).await, Ok(alice()));
        let no_exp = without(claims(), "exp");
        assert_eq!(
            verifier.verify(&rs(&no_exp)).await,
            Err(OidcError::MissingClaim("exp".into()))
        );
        // jsonwebtoken counts an `exp` that is no number as missing.
        let text_exp = with(claims(), "exp", json!("tomorrow"));
        assert_eq!(
            verifier.verify(&rs(&text_exp)).await,
            Err(OidcError::MissingClaim("exp".into()))
        );
    }

    #[tokio::test]
    async fn nbf_is_checked_with_leeway() {
        let verifier = verifier().await;
        let not_yet = with(claims(), "nbf", json!(now() + 120));
        assert_eq!(
            verifier.verify(&rs(&not_yet)).await,
            Err(OidcError::NotYetValid)
        );
        let within_leeway = with(claims(), "nbf", json!(now() + 30));
        assert_eq!(verifier.verify(&rs(&within_leeway)).await, Ok(alice()));
    }

    #[tokio::test]
    async fn issuer_must_match_exactly() {
        let verifier = verifier().await;
        let other = with(
            claims(),
            "iss",
            json!("https://evil.example.test/realms/main"),
        );
        assert_eq!(
            verifier.verify(&rs(&other)).await,
            Err(OidcError::WrongIssuer)
        );
        let trailing_slash = with(claims(), "iss", json!(format!("{ISSUER}/")));
        assert_eq!(
            verifier.verify(&rs(&trailing_slash)).await,
            Err(OidcError::WrongIssuer)
        );
        let array = with(
            claims(),
            "iss",
            json!([ISSUER, "https://evil.example.test"]),
        );
        assert_eq!(
            verifier.verify(&rs(&array)).await,
            Err(OidcError::WrongIssuer)
        );
        let missing = without(claims(), "iss");
        assert_eq!(
            verifier.verify(&rs(&missing)).await,
            Err(OidcError::MissingClaim("iss".into()))
        );
    }

    #[tokio::test]
    async fn audience_string_or_array_must_contain_ours() {
        let verifier = verifier().await;
        let other = with(claims(), "aud", json!("another-app"));
        assert_eq!(
            verifier.verify(&rs(&other)).await,
            Err(OidcError::WrongAudience)
        );
        let array = with(claims(), "aud", json!(["another-app", AUDIENCE]));
        assert_eq!(verifier.verify(&rs(&array)).await, Ok(alice()));
        let array_without = with(claims(), "aud", json!(["another-app", "third-app"]));
        assert_eq!(
            verifier.verify(&rs(&array_without)).await,
            Err(OidcError::WrongAudience)
        );
        let missing = without(claims(), "aud");
        assert_eq!(
            verifier.verify(&rs(&missing)).await,
            Err(OidcError::MissingClaim("aud".into()))
        );
    }

    #[tokio::test]
    async fn kid_is_required() {
        let verifier = verifier().await;
        let token = sign(Algorithm::RS256, None, "rsa1-private.pem", &claims());
        assert_eq!(verifier.verify(&token).await, Err(OidcError::NoKeyId));
        let empty = sign(Algorithm::RS256, Some(""), "rsa1-private.pem", &claims());
        assert_eq!(verifier.verify(&empty).await, Err(OidcError::NoKeyId));
    }

    #[tokio::test]
    async fn unknown_kid_is_found_after_the_jwks_file_rotated() {
        let jwks = TempJwks::copy_of("jwks.json");
        let verifier = OidcVerifier::new(settings(JwksSource::File(jwks.path.clone())), http())
            .await
            .unwrap();
        let token = sign(
            Algorithm::RS256,
            Some("rsa-2"),
            "rsa2-private.pem",
            &claims(),
        );
        jwks.overwrite_with("jwks-rotated.json");
        assert_eq!(verifier.verify(&token).await, Ok(alice()));
        // The keys known before the rotation still work.
        assert_eq!(verifier.verify(&rs(&claims())).await, Ok(alice()));
    }

    #[tokio::test]
    async fn unknown_kid_refreshes_once_then_waits_for_the_interval() {
        let jwks = TempJwks::copy_of("jwks.json");
        let interval = Duration::from_millis(300);
        let verifier = OidcVerifier::with_refresh_interval(
            settings(JwksSource::File(jwks.path.clone())),
            http(),
            interval,
        )
        .await
        .unwrap();
        let token = sign(
            Algorithm::RS256,
            Some("rsa-2"),
            "rsa2-private.pem",
            &claims(),
        );
        // Refreshed, still unknown.
        assert_eq!(
            verifier.verify(&token).await,
            Err(OidcError::UnknownKey("\"rsa-2\"".into()))
        );
        jwks.overwrite_with("jwks-rotated.json");
        // Within the interval no refresh happens, so the rotation is not seen yet.
        assert_eq!(
            verifier.verify(&token).await,
            Err(OidcError::UnknownKey("\"rsa-2\"".into()))
        );
        tokio::time::sleep(interval + Duration::from_millis(50)).await;
        assert_eq!(verifier.verify(&token).await, Ok(alice()));
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let verifier = verifier().await;
        let header = json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"});
        let token = format!("{}.{}.", b64(&header), b64(&claims()));
        assert_eq!(
            verifier.verify(&token).await,
            Err(OidcError::UnsupportedAlgorithm("\"none\"".into()))
        );
        let header = json!({"alg": "None", "kid": "rsa-1"});
        let token = format!("{}.{}.", b64(&header), b64(&claims()));
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::UnsupportedAlgorithm(_))
        ));
    }

    #[tokio::test]
    async fn hmac_keyed_with_the_public_key_is_refused() {
        let verifier = verifier().await;
        let public_pem = std::fs::read(fixture("rsa1-public.pem")).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let token = encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(&public_pem).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&token).await,
            Err(OidcError::UnsupportedAlgorithm("\"HS256\"".into()))
        );
    }

    #[tokio::test]
    async fn other_algorithms_are_refused() {
        let verifier = verifier().await;
        let pem = std::fs::read(fixture("rsa1-private.pem")).unwrap();
        for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
            let mut header = Header::new(alg);
            header.kid = Some("rsa-1".into());
            let token = encode(
                &header,
                &claims(),
                &EncodingKey::from_rsa_pem(&pem).unwrap(),
            )
            .unwrap();
            assert!(
                matches!(
                    verifier.verify(&token).await,
                    Err(OidcError::UnsupportedAlgorithm(_))
                ),
                "{alg:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_key_type_must_match_the_header_algorithm() {
        let verifier = verifier().await;
        // RS256 naming the EC key, EdDSA naming the RSA key, ES256 naming the Ed25519 key.
        let tokens = [
            sign(
                Algorithm::RS256,
                Some("ec-1"),
                "rsa1-private.pem",
                &claims(),
            ),
            sign(
                Algorithm::EdDSA,
                Some("rsa-1"),
                "ed25519-private.pem",
                &claims(),
            ),
            sign(Algorithm::ES256, Some("ed-1"), "ec-private.pem", &claims()),
        ];
        for token in tokens {
            assert_eq!(
                verifier.verify(&token).await,
                Err(OidcError::KeyAlgorithmMismatch)
            );
        }
    }

    #[tokio::test]
    async fn the_keys_declared_alg_must_match_the_header_algorithm() {
        let mut document: Value =
            serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
        document["keys"][0]["alg"] = json!("PS256");
        document["keys"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kty": "oct", "kid": "hmac-1", "k": "c2VjcmV0"}));
        let jwks = TempJwks::new(&serde_json::to_vec(&document).unwrap());
        let verifier = OidcVerifier::new(settings(JwksSource::File(jwks.path.clone())), http())
            .await
            .unwrap();
        assert_eq!(
            verifier.verify(&rs(&claims())).await,
            Err(OidcError::KeyAlgorithmMismatch)
        );
        // The symmetric key is never loaded: naming it finds no key.
        let token = sign(
            Algorithm::RS256,
            Some("hmac-1"),
            "rsa1-private.pem",
            &claims(),
        );
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::UnknownKey(_))
        ));
    }

    #[tokio::test]
    async fn a_tampered_payload_has_a_bad_signature() {
        let verifier = verifier().await;
        let token = rs(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(&with(claims(), "sub", json!("admin")));
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(
            verifier.verify(&tampered).await,
            Err(OidcError::BadSignature)
        );
        // A signature by another key, and a signature of another token.
        let other_key = sign(
            Algorithm::RS256,
            Some("rsa-1"),
            "rsa2-private.pem",
            &claims(),
        );
        assert_eq!(
            verifier.verify(&other_key).await,
            Err(OidcError::BadSignature)
        );
        let other_token = rs(&with(claims(), "sub", json!("bob")));
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            other_token.rsplit('.').next().unwrap()
        );
        assert_eq!(
            verifier.verify(&swapped).await,
            Err(OidcError::BadSignature)
        );
    }

    #[tokio::test]
    async fn malformed_credentials() {
        let verifier = verifier().await;
        let token = rs(&claims());
        let (header, rest) = token.split_once('.').unwrap();
        let cases = [
            "not a jwt".to_owned(),
            "mi_abcdefghijklmnopqrstuvwxyz".to_owned(),
            format!("{header}.{rest}.extra"),
            format!("bm90IGpzb24.{rest}"),
            format!("{}.{rest}", b64(&json!(["alg", "RS256"]))),
            format!("{}.{rest}", b64(&json!({"kid": "rsa-1"}))),
            format!("{}.{rest}", b64(&json!({"alg": "RS256", "kid": 7}))),
            format!("{header}.bm90IGpzb24.{}", token.rsplit('.').next().unwrap()),
            "a".repeat(MAX_TOKEN_BYTES + 1),
        ];
        for case in cases {
            let result = verifier.verify(&case).await;
            assert!(
                matches!(result, Err(OidcError::Malformed | OidcError::BadSignature)),
                "{result:?}"
            );
        }
        assert_eq!(
            verifier.verify(&format!("{header}.{rest}.")).await,
            Err(OidcError::Malformed)
        );
    }

    #[tokio::test]
    async fn username_and_groups_claims() {
        let verifier = verifier().await;
        let no_sub = without(claims(), "sub");
        assert_eq!(
            verifier.verify(&rs(&no_sub)).await,
            Err(OidcError::MissingClaim("sub".into()))
        );
        for bad in [json!(""), json!(42), json!(true)] {
            let token = rs(&with(claims(), "sub", bad));
            assert_eq!(
                verifier.verify(&token).await,
                Err(OidcError::InvalidClaim("sub".into()))
            );
        }
        // jsonwebtoken's own claim parsing already refuses an array `sub`.
        let token = rs(&with(claims(), "sub", json!(["alice"])));
        assert_eq!(verifier.verify(&token).await, Err(OidcError::Malformed));
        let no_groups = without(claims(), "groups");
        assert_eq!(
            verifier.verify(&rs(&no_groups)).await,
            Ok(OidcIdentity {
                username: "alice".into(),
                groups: vec![]
            })
        );
        for bad in [
            json!("team-a"),
            json!({"team-a": true}),
            json!(["team-a", 7]),
        ] {
            let token = rs(&with(claims(), "groups", bad));
            assert_eq!(
                verifier.verify(&token).await,
                Err(OidcError::InvalidClaim("groups".into()))
            );
        }
    }

    #[tokio::test]
    async fn custom_username_and_groups_claims() {
        let mut settings = settings(JwksSource::File(fixture("jwks.json")));
        settings.username_claim = "preferred_username".into();
        settings.groups_claim = "roles".into();
        let verifier = OidcVerifier::new(settings, http()).await.unwrap();
        let custom = with(
            with(claims(), "preferred_username", json!("alice@example.test")),
            "roles",
            json!(["mesh-admins"]),
        );
        assert_eq!(
            verifier.verify(&rs(&custom)).await,
            Ok(OidcIdentity {
                username: "alice@example.test".into(),
                groups: vec!["mesh-admins".into()],
            })
        );
        // `sub` and `groups` are not used any more.
        let only_defaults = claims();
        assert_eq!(
            verifier.verify(&rs(&only_defaults)).await,
            Err(OidcError::MissingClaim("preferred_username".into()))
        );
    }

    #[tokio::test]
    async fn error_texts_never_contain_the_token() {
        let verifier = verifier().await;
        let long_kid = "k".repeat(500);
        let tokens = [
            rs(&with(claims(), "exp", json!(now() - 3600))),
            rs(&with(claims(), "aud", json!("x"))),
            sign(
                Algorithm::RS256,
                Some(&long_kid),
                "rsa1-private.pem",
                &claims(),
            ),
            sign(
                Algorithm::RS256,
                Some("ec-1"),
                "rsa1-private.pem",
                &claims(),
            ),
            format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims())),
        ];
        for token in tokens {
            let err = verifier.verify(&token).await.unwrap_err();
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(text.len() < 200, "{text}");
                for part in token.split('.').filter(|part| part.len() > 8) {
                    assert!(!text.contains(part), "{text}");
                }
            }
        }
        let err = verifier
            .verify(&sign(
                Algorithm::RS256,
                Some("a\nb\u{1b}[31m"),
                "rsa1-private.pem",
                &claims(),
            ))
            .await
            .unwrap_err();
        assert_eq!(err, OidcError::UnknownKey("\"a\\nb\\u{1b}[31m\"".into()));
    }

    #[tokio::test]
    async fn bad_settings_and_unusable_jwks_fail_at_start() {
        let start = |settings| OidcVerifier::new(settings, http());
        let mut empty_issuer = settings(JwksSource::File(fixture("jwks.json")));
        empty_issuer.issuer = String::new();
        assert!(matches!(
            start(empty_issuer).await,
            Err(OidcError::Config(_))
        ));
        let mut empty_claim = settings(JwksSource::File(fixture("jwks.json")));
        empty_claim.username_claim = " ".into();
        assert!(matches!(
            start(empty_claim).await,
            Err(OidcError::Config(_))
        ));
        assert!(matches!(
            start(settings(JwksSource::Url("ftp://idp.example/keys".into()))).await,
            Err(OidcError::Config(_))
        ));
        assert!(matches!(
            start(settings(JwksSource::File(fixture("missing.json")))).await,
            Err(OidcError::Jwks(_))
        ));
        let not_json = TempJwks::new(b"not json");
        assert!(matches!(
            start(settings(JwksSource::File(not_json.path.clone()))).await,
            Err(OidcError::Jwks(_))
        ));
        let only_symmetric =
            TempJwks::new(br#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#);
        assert!(matches!(
            start(settings(JwksSource::File(only_symmetric.path.clone()))).await,
            Err(OidcError::Jwks(_))
        ));
        // Nothing listens on port 9 of loopback (discard): the fetch fails quickly.
        assert!(matches!(
            start(settings(JwksSource::Url("http://127.0.0.1:9/keys".into()))).await,
            Err(OidcError::Jwks(_))
        ));
    }

    #[tokio::test]
    async fn url_source_and_discovery_document() {
        let idp = spawn_idp("jwks.json");
        let mut by_url = OidcSettings::new(
            idp.base.clone(),
            AUDIENCE,
            JwksSource::Url(format!("{}/keys", idp.base)),
        );
        let token_claims = with(claims(), "iss", json!(idp.base));
        let token = rs(&token_claims);
        let verifier = OidcVerifier::new(by_url.clone(), http()).await.unwrap();
        assert_eq!(verifier.verify(&token).await, Ok(alice()));
        assert_eq!(idp.state.discovery_hits.load(Ordering::SeqCst), 0);

        by_url.jwks = JwksSource::Discovery;
        let verifier = OidcVerifier::new(by_url.clone(), http()).await.unwrap();
        assert_eq!(idp.state.discovery_hits.load(Ordering::SeqCst), 1);
        assert_eq!(verifier.verify(&token).await, Ok(alice()));
        let es = sign(
            Algorithm::ES256,
            Some("ec-1"),
            "ec-private.pem",
            &token_claims,
        );
        assert_eq!(verifier.verify(&es).await, Ok(alice()));

        // A rotation at the identity provider is picked up on the first unknown kid.
        idp.serve_jwks("jwks-rotated.json");
        let rotated = sign(
            Algorithm::RS256,
            Some("rsa-2"),
            "rsa2-private.pem",
            &token_claims,
        );
        assert_eq!(verifier.verify(&rotated).await, Ok(alice()));
        assert_eq!(idp.state.discovery_hits.load(Ordering::SeqCst), 1);

        // A discovery document naming another issuer is refused.
        by_url.issuer = format!("{}/", idp.base);
        assert!(matches!(
            OidcVerifier::new(by_url.clone(), http()).await,
            Err(OidcError::Config(_))
        ));
        // No discovery document at all.
        by_url.issuer = format!("{}/realms/none", idp.base);
        assert!(matches!(
            OidcVerifier::new(by_url, http()).await,
            Err(OidcError::Jwks(_))
        ));
        idp.stop().await;
    }

    #[tokio::test]
    async fn unknown_kids_cause_at_most_one_fetch_per_interval() {
        let idp = spawn_idp("jwks.json");
        let settings = OidcSettings::new(idp.base.clone(), AUDIENCE, JwksSource::Discovery);
        let verifier = OidcVerifier::new(settings, http()).await.unwrap();
        assert_eq!(idp.jwks_hits(), 1);
        let token_claims = with(claims(), "iss", json!(idp.base));
        let unknown = |kid: &str| {
            sign(
                Algorithm::RS256,
                Some(kid),
                "rsa1-private.pem",
                &token_claims,
            )
        };

        let (first, second) = (unknown("attacker-1"), unknown("attacker-2"));
        let (a, b) = tokio::join!(verifier.verify(&first), verifier.verify(&second));
        assert!(matches!(a, Err(OidcError::UnknownKey(_))), "{a:?}");
        assert!(matches!(b, Err(OidcError::UnknownKey(_))), "{b:?}");
        assert_eq!(idp.jwks_hits(), 2, "two unknown kids, one refresh");
        for n in 3..10 {
            let token = unknown(&format!("attacker-{n}"));
            assert!(matches!(
                verifier.verify(&token).await,
                Err(OidcError::UnknownKey(_))
            ));
        }
        assert_eq!(idp.jwks_hits(), 2, "no refresh within 10 s");
        // Known keys keep working without any fetch.
        assert_eq!(verifier.verify(&rs(&token_claims)).await, Ok(alice()));
        assert_eq!(idp.jwks_hits(), 2);
        idp.stop().await;
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_refresh() {
        let idp = spawn_idp("jwks.json");
        let settings = OidcSettings::new(
            idp.base.clone(),
            AUDIENCE,
            JwksSource::Url(format!("{}/keys", idp.base)),
        );
        let verifier = OidcVerifier::new(settings, http()).await.unwrap();
        idp.serve_jwks("jwks-rotated.json");
        let token_claims = with(claims(), "iss", json!(idp.base));
        let token = sign(
            Algorithm::RS256,
            Some("rsa-2"),
            "rsa2-private.pem",
            &token_claims,
        );
        let results = futures::future::join_all((0..5).map(|_| verifier.verify(&token))).await;
        for result in results {
            assert_eq!(result, Ok(alice()));
        }
        assert_eq!(idp.jwks_hits(), 2, "one load at start, one shared refresh");
        idp.stop().await;
    }
}
