//! The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`), over
//! real HTTP to the real server, deploying to the fake API server. Screenshots of every page go
//! to `target/ui-screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::fake_kube::FakeKube;
use crate::helpers::{Backend, CA, SET, TestApp, spawn_app};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, killed with the test.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver, or says why the browser tests cannot run. CI sets
/// `MESHINTENT_REQUIRE_BROWSER`, so a missing browser fails there instead of skipping.
fn driver() -> Option<Driver> {
    if !PathBuf::from(CHROMEDRIVER).exists() || !PathBuf::from(CHROMIUM).exists() {
        assert!(
            std::env::var_os("MESHINTENT_REQUIRE_BROWSER").is_none(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing: apt-get install chromium chromium-driver"
        );
        eprintln!("console tests skipped: apt-get install chromium chromium-driver to run them");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Some(Driver { child, port })
}

async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    meshintent::tls::install_crypto_provider();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), "--force-device-scale-factor=1"],
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let started = Instant::now();
    loop {
        match ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no WebDriver session: {e}"),
        }
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn wait_for(client: &Client, css: &str) -> Element {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

/// Waits until the element's text satisfies `done`; returns the text.
async fn wait_text(client: &Client, css: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Ok(el) = client.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
            && done(&text)
        {
            return text;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let page = match client.find(Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            shot(client, "failure").await;
            panic!("{css} never showed the expected text; the page says:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn field(client: &Client, pointer: &str) -> Element {
    wait_for(client, &format!("[data-pointer=\"{pointer}\"]")).await
}

async fn type_into(client: &Client, pointer: &str, text: &str) {
    let input = field(client, pointer).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn choose(client: &Client, pointer: &str, value: &str) {
    let select = field(client, pointer).await;
    select
        .find(Locator::Css(&format!("option[value=\"{value}\"]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The committed picture in the README is regenerated with `UPDATE_SCREENSHOTS=1`; otherwise the
/// new one must be close to it (a PNG whose width and height are within a quarter of the
/// committed one's), so a graph that breaks or vanishes fails while font rendering may differ.
fn compare_loosely(png: &[u8], committed: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(committed);
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, png).unwrap();
        return;
    }
    let old = std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{committed} is missing: UPDATE_SCREENSHOTS=1"));
    let size = |png: &[u8]| -> (f64, f64) {
        assert!(png.starts_with(b"\x89PNG") && png.len() > 24);
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        (f64::from(w), f64::from(h))
    };
    let ((w0, h0), (w1, h1)) = (size(&old), size(png));
    assert!(
        (w1 - w0).abs() <= w0 / 4.0 && (h1 - h0).abs() <= h0 / 4.0 && w1 > 100.0 && h1 > 30.0,
        "the graph picture changed a lot: {w1}x{h1} against {committed}'s {w0}x{h0} (UPDATE_SCREENSHOTS=1 to accept)"
    );
}

async fn seeded(app: &TestApp) -> (FakeKube, FakeKube) {
    let a = FakeKube::start().await;
    let b = FakeKube::start().await;
    app.seed_storefront_with(&[a.kubeconfig(), b.kubeconfig()])
        .await;
    (a, b)
}

/// The walk-through by clicking: sign in with the bootstrap token, create an inbound intent with
/// a bad port and see the error beside the field, fix it, add a client, deploy and watch the
/// objects turn applied, sign out.
#[tokio::test]
async fn the_walk_through_by_clicking() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Backend::Sqlite, "console::the_walk_through_by_clicking")
        .await
        .unwrap();
    let (_a, _b) = seeded(&app).await;
    let client = browser(&driver, 1280, 800).await;
    let ui = format!("{}/ui/", app.address);
    _a.clear_requests();
    _b.clear_requests();

    // Signing in: a wrong token is refused beside the field, the bootstrap token is taken.
    client.goto(&ui).await.unwrap();
    let token = wait_for(&client, "#token-input").await;
    shot(&client, "01-sign-in").await;
    token
        .send_keys("mi_notavalidtokennotavalidtokennotavalidtoke")
        .await
        .unwrap();
    client
        .find(Locator::Css("form.signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = wait_text(&client, "#token-input-error", |t| !t.is_empty()).await;
    assert!(refused.contains("not valid"), "{refused}");
    token.clear().await.unwrap();
    token.send_keys(&app.token).await.unwrap();
    client
        .find(Locator::Css("form.signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, "#sign-out").await;
    let home = wait_text(&client, "main", |t| t.contains("shop")).await;
    assert!(
        home.contains("cluster01") && home.contains("cluster02"),
        "{home}"
    );
    shot(&client, "02-home").await;

    // Down the tree by links: project, composite app, set.
    client
        .find(Locator::LinkText("shop"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "h1", |t| t.contains("shop")).await;
    shot(&client, "03-project").await;
    client
        .find(Locator::LinkText("storefront"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "main", |t| {
        t.contains("httpbin") && t.contains("default")
    })
    .await;
    shot(&client, "04-composite-app").await;
    client
        .find(Locator::LinkText("default"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "h1", |t| t.contains("default")).await;
    shot(&client, "05-set").await;

    // A bad port: the API's message appears beside the port field, nothing is created.
    wait_for(&client, "a[href$=\"/inbound-intents\"].btn")
        .await
        .click()
        .await
        .unwrap();
    type_into(&client, "/metadata/name", "httpbin").await;
    type_into(&client, "/spec/app", "httpbin").await;
    type_into(&client, "/spec/serviceName", "httpbin").await;
    type_into(&client, "/spec/port", "70000").await;
    choose(&client, "/spec/protocol", "HTTP").await;
    client
        .find(Locator::Css("form.resource-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = wait_text(&client, "#field-spec-port-error", |t| !t.is_empty()).await;
    assert!(
        error.contains("65535"),
        "the port's error sits beside it: {error}"
    );
    let port = field(&client, "/spec/port").await;
    assert_eq!(
        port.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    shot(&client, "06-inbound-intent-error").await;
    app.get(&format!("{SET}/inbound-intents/httpbin"))
        .await
        .expect(404);

    // Fixed: created, and the page of the new intent opens.
    type_into(&client, "/spec/port", "8000").await;
    client
        .find(Locator::Css("form.resource-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "h1", |t| t.contains("Inbound intent httpbin")).await;
    let stored = app
        .get(&format!("{SET}/inbound-intents/httpbin"))
        .await
        .expect(200);
    assert_eq!(stored.body["spec"]["port"], 8000);
    shot(&client, "07-inbound-intent").await;

    // The set's graph: no calls yet.
    client
        .goto(&format!("{ui}#{}", &SET["/v2".len()..]))
        .await
        .unwrap();
    wait_for(&client, "#graph-image").await;
    let edges = wait_text(&client, "#edges", |t| !t.is_empty()).await;
    assert!(edges.contains("No calls"), "{edges}");
    client
        .goto(&format!(
            "{ui}#{}/inbound-intents/httpbin",
            &SET["/v2".len()..]
        ))
        .await
        .unwrap();

    // sleep may call it.
    wait_for(&client, "a[href$=\"/clients\"].btn")
        .await
        .click()
        .await
        .unwrap();
    type_into(&client, "/metadata/name", "sleep").await;
    type_into(&client, "/spec/app", "sleep").await;
    client
        .find(Locator::Css("form.resource-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "h1", |t| t.contains("Client sleep")).await;
    app.get(&format!("{SET}/inbound-intents/httpbin/clients/sleep"))
        .await
        .expect(200);

    // The graph gained the edge sleep -> httpbin.
    client
        .goto(&format!("{ui}#{}", &SET["/v2".len()..]))
        .await
        .unwrap();
    let edge = wait_for(&client, "#edges tr[data-edge=\"sleep->httpbin\"]").await;
    assert!(edge.text().await.unwrap().contains("allow"));
    let graph = wait_for(&client, "#graph-image").await;
    let png = graph.screenshot().await.unwrap();
    std::fs::write(screenshots().join("graph.png"), &png).unwrap();
    compare_loosely(&png, "docs/images/console-graph.png");
    shot(&client, "07b-set-graph").await;

    // The plan before the first deploy: every object is a create, and nothing was written.
    wait_for(&client, "#plan-link").await.click().await.unwrap();
    let summary = wait_text(&client, "#plan-summary", |t| t.contains("create")).await;
    assert!(!summary.contains("1 update"), "{summary}");
    let actions = client
        .find_all(Locator::Css("table.plan tbody tr"))
        .await
        .unwrap();
    assert!(!actions.is_empty());
    for row in &actions {
        assert_eq!(
            row.attr("data-action").await.unwrap().as_deref(),
            Some("create")
        );
    }
    assert_eq!(
        _a.writes().len() + _b.writes().len(),
        0,
        "a plan writes nothing"
    );
    shot(&client, "07c-plan").await;

    // The analysis: the fake clusters have no Service httpbin, which is a finding.
    client
        .goto(&format!("{ui}#/analysis{}", &SET["/v2".len()..]))
        .await
        .unwrap();
    let findings = wait_text(&client, "main", |t| {
        t.contains("IST0101") || t.contains("No findings")
    })
    .await;
    assert!(findings.contains("httpbin"), "{findings}");
    shot(&client, "07d-analysis").await;

    // The manifests, highlighted, per cluster.
    client
        .goto(&format!("{ui}#/manifests{}", &SET["/v2".len()..]))
        .await
        .unwrap();
    wait_for(&client, "section.manifest[data-cluster=cluster01] .tok-key").await;
    let yaml = wait_text(&client, "section.manifest[data-cluster=cluster01]", |t| {
        t.contains("kind:")
    })
    .await;
    assert!(yaml.contains("DestinationRule"), "{yaml}");
    shot(&client, "08-manifests").await;

    // Deploy from the set's page and watch every object turn applied.
    client
        .goto(&format!("{ui}#{}", &SET["/v2".len()..]))
        .await
        .unwrap();
    wait_for(&client, "#deploy").await.click().await.unwrap();
    wait_for(&client, "table.objects tbody tr").await;
    let head = wait_text(&client, ".deploy-head", |t| t.contains("Applied")).await;
    assert!(head.contains("deploy"), "{head}");
    let states: Vec<String> = {
        let mut out = vec![];
        for cell in client
            .find_all(Locator::Css("table.objects tbody tr td:nth-child(4)"))
            .await
            .unwrap()
        {
            out.push(cell.text().await.unwrap());
        }
        out
    };
    assert!(!states.is_empty());
    assert!(states.iter().all(|s| s == "applied"), "{states:?}");
    let counters = wait_text(&client, ".cluster .counter", |t| t.contains("objects done")).await;
    assert!(!counters.starts_with("0/"), "{counters}");
    shot(&client, "09-deployed").await;

    // Signing out forgets the token: the sign-in page again, and the API refuses the old page.
    client
        .find(Locator::Css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, "#token-input").await;
    let stored: serde_json::Value = client
        .execute("return sessionStorage.getItem('meshintent.token')", vec![])
        .await
        .unwrap();
    assert!(stored.is_null(), "the token is gone from the browser");
    client.close().await.unwrap();
}

/// The console at a phone's width and in the dark theme; every control has a label.
#[tokio::test]
async fn narrow_screens_dark_theme_and_labels() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(
        Backend::Sqlite,
        "console::narrow_screens_dark_theme_and_labels",
    )
    .await
    .unwrap();
    let (_a, _b) = seeded(&app).await;
    let client = browser(&driver, 390, 844).await;
    let ui = format!("{}/ui/", app.address);
    client.goto(&ui).await.unwrap();
    wait_for(&client, "#token-input")
        .await
        .send_keys(&app.token)
        .await
        .unwrap();
    client
        .find(Locator::Css("form.signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, "#sign-out").await;
    wait_for(&client, "#theme").await.click().await.unwrap();
    let theme: serde_json::Value = client
        .execute("return document.documentElement.dataset.theme", vec![])
        .await
        .unwrap();
    assert_eq!(theme, "dark");
    client
        .goto(&format!("{ui}#/new{}/apps", &CA["/v2".len()..]))
        .await
        .unwrap();
    wait_for(&client, "[data-pointer=\"/spec/namespace\"]").await;
    // No horizontal scrolling at 390 px, and every input, select and textarea is labelled.
    let report: serde_json::Value = client
        .execute(
            "const unlabelled = [...document.querySelectorAll('input, select, textarea')]
               .filter((el) => !el.labels || el.labels.length === 0).map((el) => el.id);
             return { overflow: document.documentElement.scrollWidth - window.innerWidth, unlabelled };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(report["unlabelled"], json!([]), "{report}");
    assert!(report["overflow"].as_i64().unwrap() <= 0, "{report}");
    shot(&client, "10-phone-dark-new-app").await;
    client.close().await.unwrap();
}

/// The console's files carry a content security policy that refuses inline and foreign scripts.
#[tokio::test]
async fn console_files_are_served_with_a_strict_policy() {
    let app = spawn_app(
        Backend::Sqlite,
        "console::console_files_are_served_with_a_strict_policy",
    )
    .await
    .unwrap();
    let reply = app
        .client
        .get(format!("{}/ui/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let csp = reply.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let etag = reply.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(format!("{}/ui/app.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let cached = app
        .client
        .get(format!("{}/ui/", app.address))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    let missing = app
        .client
        .get(format!("{}/ui/nope.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/ui", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    // The console needs no token to load, but the API behind it does.
    let config: serde_json::Value = app
        .client
        .get(format!("{}/ui/config.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["version"], env!("CARGO_PKG_VERSION"));
    assert!(config.get("oidc").is_none());
}

/// A minimal OpenID provider for the console's sign-in: discovery, an authorization endpoint that
/// signs `alice` in at once, and a token endpoint that checks the PKCE verifier (RFC 7636, S256)
/// before it issues an ID token signed with the test key `rsa1` (kid `rsa-1` in the fixture JWKS).
mod idp {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use actix_web::{App, HttpResponse, HttpServer, web};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;
    use sha2::{Digest, Sha256};

    pub const CLIENT_ID: &str = "meshintent";

    struct Pending {
        challenge: String,
        redirect_uri: String,
    }

    struct Provider {
        issuer: String,
        codes: Mutex<HashMap<String, Pending>>,
        /// Token requests whose verifier did not match (must stay 0).
        pub refused: Mutex<u32>,
    }

    pub struct Idp {
        pub issuer: String,
        provider: web::Data<Provider>,
        handle: actix_web::dev::ServerHandle,
    }

    impl Idp {
        pub fn refused(&self) -> u32 {
            *self.provider.refused.lock().unwrap()
        }
        pub async fn stop(self) {
            self.handle.stop(false).await;
        }
    }

    fn cors(mut res: HttpResponse) -> HttpResponse {
        res.headers_mut().insert(
            actix_web::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            actix_web::http::header::HeaderValue::from_static("*"),
        );
        res
    }

    async fn discovery(p: web::Data<Provider>) -> HttpResponse {
        cors(HttpResponse::Ok().json(json!({
            "issuer": p.issuer,
            "authorization_endpoint": format!("{}/authorize", p.issuer),
            "token_endpoint": format!("{}/token", p.issuer),
            "jwks_uri": format!("{}/jwks", p.issuer),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        })))
    }

    async fn authorize(
        p: web::Data<Provider>,
        q: web::Query<HashMap<String, String>>,
    ) -> HttpResponse {
        let ok = q.get("response_type").map(String::as_str) == Some("code")
            && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && q.get("code_challenge_method").map(String::as_str) == Some("S256")
            && q.get("scope")
                .is_some_and(|s| s.split(' ').any(|s| s == "openid"));
        let (Some(challenge), Some(redirect), Some(state)) = (
            q.get("code_challenge"),
            q.get("redirect_uri"),
            q.get("state"),
        ) else {
            return HttpResponse::BadRequest().body("missing parameters");
        };
        if !ok {
            return HttpResponse::BadRequest().body("bad parameters");
        }
        let code = uuid::Uuid::new_v4().simple().to_string();
        p.codes.lock().unwrap().insert(
            code.clone(),
            Pending {
                challenge: challenge.clone(),
                redirect_uri: redirect.clone(),
            },
        );
        HttpResponse::Found()
            .insert_header(("Location", format!("{redirect}?code={code}&state={state}")))
            .finish()
    }

    async fn token(
        p: web::Data<Provider>,
        form: web::Form<HashMap<String, String>>,
    ) -> HttpResponse {
        let pending = form
            .get("code")
            .and_then(|c| p.codes.lock().unwrap().remove(c));
        let verified = pending.as_ref().is_some_and(|pending| {
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == pending.challenge
                && form.get("redirect_uri") == Some(&pending.redirect_uri)
                && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("grant_type").map(String::as_str) == Some("authorization_code")
        });
        if !verified {
            *p.refused.lock().unwrap() += 1;
            return cors(HttpResponse::BadRequest().json(json!({"error": "invalid_grant"})));
        }
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let claims = json!({"iss": p.issuer, "aud": CLIENT_ID, "sub": "alice",
                            "iat": now, "exp": now + 300, "groups": []});
        let pem = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/oidc/rsa1-private.pem"),
        )
        .unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        let id_token = encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap();
        cors(HttpResponse::Ok().json(json!({
            "id_token": id_token, "access_token": "opaque", "token_type": "Bearer", "expires_in": 300,
        })))
    }

    pub fn start() -> Idp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let provider = web::Data::new(Provider {
            issuer: issuer.clone(),
            codes: Mutex::new(HashMap::new()),
            refused: Mutex::new(0),
        });
        let data = provider.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Idp {
            issuer,
            provider,
            handle,
        }
    }
}

/// OIDC sign-in from the console: authorization code flow with PKCE against a real HTTP
/// provider; the ID token it returns is what the console then sends to the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_with_pkce() {
    let Some(driver) = driver() else { return };
    let idp = idp::start();
    let issuer = idp.issuer.clone();
    let app = crate::helpers::spawn_app_configured(
        Backend::Sqlite,
        "console::oidc_sign_in_with_pkce",
        false,
        |settings, _| {
            settings.auth.oidc = Some(meshintent::auth::oidc::OidcSettings {
                issuer: issuer.clone(),
                audience: idp::CLIENT_ID.into(),
                jwks: meshintent::auth::oidc::JwksSource::File(
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc/jwks.json"),
                ),
                username_claim: "sub".into(),
                groups_claim: "groups".into(),
            });
        },
    )
    .await
    .unwrap();
    app.post(
        "/v2/projects",
        json!({"metadata": {"name": "shop"}, "spec": {"namespaces": ["default"]}}),
    )
    .await
    .expect(201);
    app.post(
        "/v2/projects/shop/role-bindings",
        json!({"metadata": {"name": "alice-views"},
               "spec": {"subject": {"kind": "User", "name": "alice"}, "role": "viewer"}}),
    )
    .await
    .expect(201);

    let client = browser(&driver, 1280, 800).await;
    client.goto(&format!("{}/ui/", app.address)).await.unwrap();
    let button = wait_for(&client, "#oidc-signin").await;
    assert!(button.text().await.unwrap().contains("127.0.0.1"));
    button.click().await.unwrap();
    // Back from the provider: signed in as alice, who sees her project.
    wait_for(&client, "#sign-out").await;
    wait_text(&client, "main", |t| t.contains("shop")).await;
    let token: serde_json::Value = client
        .execute("return sessionStorage.getItem('meshintent.token')", vec![])
        .await
        .unwrap();
    assert_eq!(
        token.as_str().unwrap().split('.').count(),
        3,
        "the ID token is the credential"
    );
    let url = client.current_url().await.unwrap();
    assert!(
        url.query().is_none(),
        "the code is removed from the address bar: {url}"
    );
    assert_eq!(idp.refused(), 0, "the PKCE verifier matched the challenge");
    client.close().await.unwrap();
    idp.stop().await;
}
