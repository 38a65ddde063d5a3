//! OIDC JWTs end to end (SPEC section 6): a server configured with a JWKS file, tokens signed
//! with the test keys of `tests/fixtures/oidc`, role bindings for users and groups, refusals
//! (401 with `error="invalid_token"`, audited as `denied`), key rotation, and that a JWT never
//! comes back in a response.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use meshintent::auth::oidc::{JwksSource, OidcSettings};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{self, Backend, CA, Reply, TestApp};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "meshintent";
const CHALLENGE: &str = r#"Bearer realm="meshintent", error="invalid_token""#;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oidc")
        .join(name)
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Valid claims for `user` (in `sub` and `preferred_username`) with `groups`.
fn claims(user: &str, groups: &[&str]) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        "preferred_username": user,
        "iat": now(),
        "exp": now() + 300,
        "groups": groups,
    })
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
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

/// A server with OIDC on, its JWKS a private copy of `jwks.json`.
struct OidcApp {
    app: TestApp,
    /// The JWKS file the server reads (overwrite it to rotate keys).
    jwks: PathBuf,
}

impl std::ops::Deref for OidcApp {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl OidcApp {
    /// Starts the app on `backend` with the user name taken from `username_claim`, or returns
    /// None when PostgreSQL tests are not enabled.
    async fn spawn(backend: Backend, test: &str, username_claim: &str) -> Option<OidcApp> {
        let mut jwks = PathBuf::new();
        let app = helpers::spawn_app_configured(backend, test, false, |settings, dir| {
            jwks = dir.join("jwks.json");
            std::fs::copy(fixture("jwks.json"), &jwks).unwrap();
            settings.auth.oidc = Some(OidcSettings {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                jwks: JwksSource::File(jwks.clone()),
                username_claim: username_claim.into(),
                groups_claim: "groups".into(),
            });
        })
        .await?;
        Some(OidcApp { app, jwks })
    }

    async fn stop(mut self) {
        self.app.kill().await;
    }

    async fn get_as(&self, token: &str, path: &str) -> Reply {
        self.request_as(Some(token), Method::GET, path, None).await
    }

    async fn post_as(&self, token: &str, path: &str, body: Value) -> Reply {
        self.request_as(Some(token), Method::POST, path, Some(&body))
            .await
    }

    /// Cluster cluster01, project `shop` owning namespace `default`, composite app storefront
    /// v1.
    async fn seed(&self) {
        self.post(
            "/v2/clusters",
            json!({"metadata": {"name": "cluster01"},
                   "spec": {"identity": "cluster01.mesh.example.com",
                            "istio": {"ingressGateway": {"address": "198.51.100.10"}}}}),
        )
        .await
        .expect(201);
        self.post(
            "/v2/projects",
            json!({"metadata": {"name": "shop"}, "spec": {"namespaces": ["default"]}}),
        )
        .await
        .expect(201);
        self.post(
            "/v2/projects/shop/composite-apps",
            json!({"metadata": {"name": "storefront"}, "spec": {"version": "v1"}}),
        )
        .await
        .expect(201);
    }

    /// Binds `subject` (`User` or `Group`) to a project role in `shop`.
    async fn bind_in_shop(&self, name: &str, kind: &str, subject: &str, role: &str) {
        self.post(
            "/v2/projects/shop/role-bindings",
            json!({"metadata": {"name": name},
                   "spec": {"subject": {"kind": kind, "name": subject}, "role": role}}),
        )
        .await
        .expect(201);
    }

    /// Binds `subject` to a global role.
    async fn bind_globally(&self, name: &str, kind: &str, subject: &str, role: &str) {
        self.post(
            "/v2/role-bindings",
            json!({"metadata": {"name": name},
                   "spec": {"subject": {"kind": kind, "name": subject}, "role": role}}),
        )
        .await
        .expect(201);
    }

    /// Every audit event of `actor` (admin token).
    async fn audit_of(&self, actor: &str) -> Reply {
        self.get(&format!("/v2/audit-events?actor={actor}&limit=1000"))
            .await
            .expect(200)
    }
}

/// Runs the body on SQLite and on PostgreSQL, with the user name from `$claim`.
macro_rules! oidc_test {
    ($name:ident, $claim:expr, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &OidcApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = OidcApp::spawn(Backend::Sqlite, concat!(module_path!(), "::sqlite"), $claim)
                    .await
                    .unwrap();
                run(&app).await;
                app.stop().await;
            }

            #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) =
                    OidcApp::spawn(Backend::Postgres, concat!(module_path!(), "::postgres"), $claim).await
                {
                    run(&app).await;
                    app.stop().await;
                }
            }
        }
    };
}

/// Asserts that neither the body nor any header of `reply` holds `token` or one of its
/// segments.
#[track_caller]
fn assert_token_not_echoed(reply: &Reply, token: &str) {
    let mut texts = vec![reply.text.clone()];
    for (name, value) in &reply.headers {
        texts.push(format!(
            "{name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    for text in &texts {
        assert!(!text.contains(token), "the token came back: {text}");
        for part in token.split('.').filter(|part| part.len() > 8) {
            assert!(!text.contains(part), "a token segment came back: {text}");
        }
    }
}

/// Asserts a 401 problem for a token that was sent, which does not echo the token.
#[track_caller]
fn assert_invalid_token(reply: &Reply, token: &str, case: &str) {
    assert_eq!(reply.status.as_u16(), 401, "{case}: {:#}", reply.body);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(CHALLENGE),
        "{case}: the challenge"
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{case}: problem+json"
    );
    assert_eq!(reply.body["status"], 401, "{case}: {:#}", reply.body);
    assert_token_not_echoed(reply, token);
}

oidc_test!(
    valid_tokens_of_every_algorithm_act_as_the_user,
    "preferred_username",
    |app| {
        app.seed().await;
        app.bind_in_shop("alice-owner", "User", "alice", "owner")
            .await;
        // The user name comes from preferred_username, not from sub.
        let alice = |alg| with(claims("alice", &[]), "sub", json!(format!("0a1b-{alg}")));
        let tokens = [
            ("rs256", rs(&alice("rs256"))),
            (
                "es256",
                sign(
                    Algorithm::ES256,
                    Some("ec-1"),
                    "ec-private.pem",
                    &alice("es256"),
                ),
            ),
            (
                "eddsa",
                sign(
                    Algorithm::EdDSA,
                    Some("ed-1"),
                    "ed25519-private.pem",
                    &alice("eddsa"),
                ),
            ),
        ];
        for (alg, token) in &tokens {
            let project = app.get_as(token, "/v2/projects/shop").await.expect(200);
            assert_eq!(project.body["metadata"]["name"], "shop", "{alg}");
            assert_token_not_echoed(&project, token);
            let set_name = format!("set-{alg}");
            let created = app
                .post_as(
                    token,
                    &format!("{CA}/traffic-intent-sets"),
                    json!({"metadata": {"name": set_name}}),
                )
                .await
                .expect(201);
            assert_eq!(created.body["metadata"]["createdBy"], "user:alice", "{alg}");
            assert_token_not_echoed(&created, token);
            // Stored so: the admin reads it back.
            let read = app
                .get(&format!("{CA}/traffic-intent-sets/{set_name}"))
                .await
                .expect(200);
            assert_eq!(read.body["metadata"]["createdBy"], "user:alice", "{alg}");
        }
        // The changes are audited as alice's.
        let audit = app.audit_of("user:alice").await;
        let creates: Vec<&Value> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "create")
            .collect();
        for (alg, token) in &tokens {
            let resource = format!("{CA}/traffic-intent-sets/set-{alg}");
            assert!(
                creates
                    .iter()
                    .any(|e| e["resource"] == resource && e["status"] == 201),
                "no create event for {resource}: {:#}",
                audit.body
            );
            assert!(!audit.text.contains(token.as_str()));
        }

        // An authenticated user with no binding holds no roles.
        let bob = rs(&claims("bob", &[]));
        app.get_as(&bob, "/v2/projects/shop").await.expect(404);
        let clusters = app.get_as(&bob, "/v2/clusters").await.expect(200);
        assert_eq!(clusters.body["items"][0]["metadata"]["name"], "cluster01");
        let projects = app.get_as(&bob, "/v2/projects").await.expect(200);
        assert_eq!(projects.body["items"], json!([]), "bob may read no project");
        app.post_as(
            &bob,
            &format!("{CA}/traffic-intent-sets"),
            json!({"metadata": {"name": "bobs"}}),
        )
        .await
        .expect(404);
        // The 404s are recorded as bob's refusals.
        let refused = app.audit_of("user:bob").await;
        assert!(
            refused.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "denied" && e["resource"] == "/v2/projects/shop"),
            "{:#}",
            refused.body
        );
        // alice, an owner, sees shop in her list.
        let listed = app.get_as(&tokens[0].1, "/v2/projects").await.expect(200);
        assert_eq!(listed.body["items"][0]["metadata"]["name"], "shop");
    }
);

oidc_test!(group_bindings_grant_roles, "sub", |app| {
    app.seed().await;
    let carol = rs(&claims("carol", &["shop-devs", "unrelated"]));
    // Before any binding the group is worth nothing (and this token's principal is cached).
    app.get_as(&carol, "/v2/projects/shop").await.expect(404);
    app.bind_in_shop("shop-devs-edit", "Group", "shop-devs", "editor")
        .await;
    app.bind_globally("platform-read", "Group", "platform", "reader")
        .await;
    let sets = format!("{CA}/traffic-intent-sets");

    // A member of shop-devs may write, at once (the same token, no stale cache).
    app.get_as(&carol, "/v2/projects/shop").await.expect(200);
    let created = app
        .post_as(&carol, &sets, json!({"metadata": {"name": "carols"}}))
        .await
        .expect(201);
    assert_eq!(created.body["metadata"]["createdBy"], "user:carol");

    // The same user without the group sees nothing.
    let carol_alone = rs(&claims("carol", &["unrelated"]));
    app.get_as(&carol_alone, "/v2/projects/shop")
        .await
        .expect(404);
    app.post_as(
        &carol_alone,
        &sets,
        json!({"metadata": {"name": "carols-2"}}),
    )
    .await
    .expect(404);
    // A user named like the group is not a member of it.
    let named_like_group = rs(&claims("shop-devs", &[]));
    app.get_as(&named_like_group, "/v2/projects/shop")
        .await
        .expect(404);

    // A global reader (through the platform group) reads but may not write.
    let dave = rs(&claims("dave", &["platform"]));
    let project = app.get_as(&dave, "/v2/projects/shop").await.expect(200);
    assert_eq!(project.body["metadata"]["name"], "shop");
    app.get_as(&dave, &format!("{sets}/carols"))
        .await
        .expect(200);
    let refused = app
        .post_as(&dave, &sets, json!({"metadata": {"name": "daves"}}))
        .await
        .expect(403);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(r#"role owner or editor in project "shop""#)
            && detail.contains("global role admin"),
        "the 403 names the role needed: {detail}"
    );
    assert!(detail.contains("user:dave"), "{detail}");
    app.get(&format!("{sets}/daves")).await.expect(404);

    // Deleting the group's binding takes the role away from the same token at once.
    app.request_as(
        Some(&app.token),
        Method::DELETE,
        "/v2/projects/shop/role-bindings/shop-devs-edit",
        None,
    )
    .await
    .expect(204);
    app.get_as(&carol, "/v2/projects/shop").await.expect(404);
    app.post_as(&carol, &sets, json!({"metadata": {"name": "carols-3"}}))
        .await
        .expect(404);
});

oidc_test!(bad_tokens_are_refused_and_audited, "sub", |app| {
    let alice = || claims("alice", &[]);
    let valid = rs(&alice());

    // Accepted within the 60 s leeway.
    let just_expired = rs(&with(alice(), "exp", json!(now() - 30)));
    app.get_as(&just_expired, "/v2/clusters").await.expect(200);
    app.get_as(&valid, "/v2/clusters").await.expect(200);

    let public_pem = std::fs::read(fixture("rsa1-public.pem")).unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("rsa-1".into());
    let hs256 = encode(
        &hs_header,
        &alice(),
        &EncodingKey::from_secret(&public_pem).unwrap(),
    )
    .unwrap();
    let segments: Vec<&str> = valid.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        segments[0],
        b64(&claims("admin", &["platform"])),
        segments[2]
    );
    // (case, token, what the refusal must say was wrong)
    let cases = [
        (
            "expired 2 minutes ago",
            rs(&with(alice(), "exp", json!(now() - 120))),
            "expired",
        ),
        (
            "nbf 5 minutes ahead",
            rs(&with(alice(), "nbf", json!(now() + 300))),
            "not valid yet",
        ),
        (
            "wrong issuer",
            rs(&with(alice(), "iss", json!("https://evil.example.com"))),
            "issuer",
        ),
        (
            "wrong audience",
            rs(&with(alice(), "aud", json!("another-app"))),
            "audience",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})),
                b64(&alice())
            ),
            "\"none\"",
        ),
        ("HS256 keyed with the public key", hs256, "\"HS256\""),
        ("tampered payload", tampered, "signature"),
        (
            "no kid",
            sign(Algorithm::RS256, None, "rsa1-private.pem", &alice()),
            "kid",
        ),
    ];
    let mut request_ids = Vec::new();
    for (case, token, reason) in &cases {
        let reply = app.get_as(token, "/v2/clusters").await;
        assert_invalid_token(&reply, token, case);
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(reason),
            "{case}: refused for another reason: {detail}"
        );
        let id = reply
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{case}: no X-Request-Id"))
            .to_owned();
        request_ids.push((case, id, reason));
    }

    // Every refusal is an audit event of an anonymous actor, holding no credential.
    let audit = app.audit_of("anonymous").await;
    let events = audit.body["items"].as_array().unwrap();
    assert_eq!(events.len(), cases.len(), "{:#}", audit.body);
    for (case, id, reason) in &request_ids {
        let event = events
            .iter()
            .find(|e| e["requestId"] == id.as_str())
            .unwrap_or_else(|| panic!("{case}: no audit event {id}: {:#}", audit.body));
        assert_eq!(event["actor"], "anonymous", "{case}");
        assert_eq!(event["action"], "denied", "{case}");
        assert_eq!(event["status"], 401, "{case}");
        assert_eq!(event["resource"], "/v2/clusters", "{case}");
        let message = event["message"].as_str().unwrap_or_default();
        assert!(message.contains(*reason), "{case}: {message}");
    }
    for (_, token, _) in &cases {
        for part in token.split('.').filter(|part| part.len() > 8) {
            assert!(!audit.text.contains(part), "the audit log holds a token");
        }
    }
    // The accepted tokens were never recorded as refusals of alice.
    let alices = app.audit_of("user:alice").await;
    assert_eq!(alices.body["items"], json!([]), "{:#}", alices.body);
});

oidc_test!(a_rotated_key_is_found_on_its_first_use, "sub", |app| {
    let rotated = sign(
        Algorithm::RS256,
        Some("rsa-2"),
        "rsa2-private.pem",
        &claims("erin", &[]),
    );
    // Rotate at the identity provider before the first use: the unknown kid refreshes once.
    std::fs::copy(fixture("jwks-rotated.json"), &app.jwks).unwrap();
    let reply = app.get_as(&rotated, "/v2/clusters").await.expect(200);
    assert_token_not_echoed(&reply, &rotated);
    app.get_as(&rotated, "/v2/clusters").await.expect(200);
    // The keys from before the rotation still work.
    app.get_as(&rs(&claims("erin", &[])), "/v2/clusters")
        .await
        .expect(200);
    // The new kid with a signature by another key is refused.
    let wrong_key = sign(
        Algorithm::RS256,
        Some("rsa-2"),
        "rsa1-private.pem",
        &claims("erin", &[]),
    );
    let reply = app.get_as(&wrong_key, "/v2/clusters").await;
    assert_invalid_token(&reply, &wrong_key, "rsa-2 kid, rsa1 signature");
});

oidc_test!(an_unknown_kid_stays_refused, "sub", |app| {
    // rsa-2 is not in the JWKS file: the refresh on the unknown kid does not find it.
    let unknown = sign(
        Algorithm::RS256,
        Some("rsa-2"),
        "rsa2-private.pem",
        &claims("erin", &[]),
    );
    let started = std::time::Instant::now();
    let reply = app.get_as(&unknown, "/v2/clusters").await;
    assert_invalid_token(&reply, &unknown, "unknown kid");
    // The refresh that request made happened before this instant (the interval counts from it).
    let refreshed_by = std::time::Instant::now();
    let reply = app.get_as(&unknown, "/v2/clusters").await;
    assert_invalid_token(&reply, &unknown, "unknown kid, again");
    let invented = sign(
        Algorithm::RS256,
        Some("no-such-key"),
        "rsa1-private.pem",
        &claims("erin", &[]),
    );
    let reply = app.get_as(&invented, "/v2/clusters").await;
    assert_invalid_token(&reply, &invented, "invented kid");
    // Known keys keep working.
    app.get_as(&rs(&claims("erin", &[])), "/v2/clusters")
        .await
        .expect(200);

    // Rotated now: within 10 s of the last refresh the file is not read again...
    std::fs::copy(fixture("jwks-rotated.json"), &app.jwks).unwrap();
    let reply = app.get_as(&unknown, "/v2/clusters").await;
    if started.elapsed() < std::time::Duration::from_secs(8) {
        assert_invalid_token(&reply, &unknown, "within the refresh interval");
    }
    // ...after it, the next unknown kid refreshes and finds the key.
    tokio::time::sleep(
        std::time::Duration::from_millis(10_500).saturating_sub(refreshed_by.elapsed()),
    )
    .await;
    app.get_as(&unknown, "/v2/clusters").await.expect(200);

    let audit = app.audit_of("anonymous").await;
    let denied = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "denied" && e["status"] == 401)
        .count();
    assert!(denied >= 3, "{:#}", audit.body);
});

oidc_test!(
    no_credential_and_api_tokens_still_work_with_oidc_on,
    "sub",
    |app| {
        // No credential: 401 without error="invalid_token".
        let reply = app
            .request_as(None, Method::GET, "/v2/clusters", None)
            .await;
        assert_eq!(reply.status.as_u16(), 401);
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Bearer realm="meshintent""#)
        );
        // The admin API token is not taken for a JWT.
        app.get("/v2/clusters").await.expect(200);
        // A JWT-shaped credential that is not JSON is refused like any bad token.
        let garbage = "eyJnYXJiYWdlIjp0cnVlfQ.bm90IGpzb24gYXQgYWxs.c2lnbmF0dXJlc2lnbmF0dXJl";
        let reply = app.get_as(garbage, "/v2/clusters").await;
        assert_invalid_token(&reply, garbage, "garbage JWT");
    }
);
