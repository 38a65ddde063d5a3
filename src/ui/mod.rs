//! The web console: static assets under `/ui/`, compiled into the binary.
//!
//! The console is a client of the `/v2` API like any other: the browser holds the caller's bearer
//! token and every read and write goes through the API's one gate (authentication, the policy
//! table, audit). The server only serves files, so the console can never see or do more than the
//! token allows. Assets are plain JavaScript modules and CSS checked in as they are served: no
//! build step, no Node.js, no CDN (docs/console.md).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "views.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/views.js"),
    },
    Asset {
        name: "forms.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/forms.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/dom.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/favicon.svg"),
    },
];

/// What the console needs to know about the server before anyone signs in.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleConfig {
    pub version: &'static str,
    /// Set when OIDC sign-in is offered (authorization code flow with PKCE, a public client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<ConsoleOidc>,
}

/// The OIDC client the console signs in with.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleOidc {
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
}

/// The policy of every console response: only the console's own files may run or load, nothing
/// may frame it, and nothing leaks in the Referer. Graph SVGs are shown as `blob:` images, where
/// scripts never run. The browser may also fetch from the OIDC issuer (discovery and the token
/// endpoint), when one is configured.
fn content_security_policy(config: &ConsoleConfig) -> String {
    let issuer = config
        .oidc
        .as_ref()
        .and_then(|oidc| url::Url::parse(&oidc.issuer).ok())
        .map(|url| format!(" {}", url.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
connect-src 'self'{issuer}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// What every console response is sent with.
struct Policy(HeaderValue);

/// Registers `/ui`, `/ui/`, `/ui/config.json` and `/ui/{file}`.
pub fn register(cfg: &mut web::ServiceConfig, config: ConsoleConfig) {
    let policy = HeaderValue::from_str(&content_security_policy(&config))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    cfg.app_data(web::Data::new(config))
        .app_data(web::Data::new(Policy(policy)))
        .route(
            "/ui",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/ui/"))
                    .finish()
            }),
        )
        .route("/ui/", web::get().to(index))
        .route("/ui/config.json", web::get().to(console_config))
        .route("/ui/{file}", web::get().to(asset));
}

async fn index(req: HttpRequest, policy: web::Data<Policy>) -> HttpResponse {
    serve(
        &req,
        &policy,
        find("index.html").expect("index.html is an asset"),
    )
}

async fn asset(
    req: HttpRequest,
    file: web::Path<String>,
    policy: web::Data<Policy>,
) -> HttpResponse {
    match find(&file) {
        Some(asset) => serve(&req, &policy, asset),
        None => secured(&mut HttpResponse::NotFound(), &policy)
            .content_type("text/plain; charset=utf-8")
            .body("not found\n"),
    }
}

async fn console_config(
    config: web::Data<ConsoleConfig>,
    policy: web::Data<Policy>,
) -> HttpResponse {
    secured(&mut HttpResponse::Ok(), &policy)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(config.get_ref())
}

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// Serves an asset with a strong ETag: browsers revalidate (`no-cache`) and get 304s, so a new
/// binary's console is picked up at once.
fn serve(req: &HttpRequest, policy: &Policy, asset: &Asset) -> HttpResponse {
    let etag = etag(asset.body);
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    let res = secured(&mut res, policy)
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if unchanged {
        res.finish()
    } else {
        res.content_type(asset.content_type).body(asset.body)
    }
}

fn secured<'a>(
    res: &'a mut actix_web::HttpResponseBuilder,
    policy: &Policy,
) -> &'a mut actix_web::HttpResponseBuilder {
    res.insert_header((header::CONTENT_SECURITY_POLICY, policy.0.clone()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
}

fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_name_and_a_type() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
    }

    #[test]
    fn scripts_load_only_from_the_console_itself() {
        let index = std::str::from_utf8(find("index.html").unwrap().body).unwrap();
        assert!(!index.contains("http://") && !index.contains("https://"));
        assert!(
            !index.contains("<script>"),
            "inline scripts are refused by the CSP"
        );
    }

    #[test]
    fn the_policy_lets_the_browser_reach_the_issuer_only_when_there_is_one() {
        let plain = content_security_policy(&ConsoleConfig::default());
        assert!(plain.contains("connect-src 'self';"), "{plain}");
        let with_oidc = content_security_policy(&ConsoleConfig {
            version: "0",
            oidc: Some(ConsoleOidc {
                issuer: "https://idp.example.com/realms/x".into(),
                client_id: "meshintent".into(),
                scopes: "openid".into(),
            }),
        });
        assert!(
            with_oidc.contains("connect-src 'self' https://idp.example.com;"),
            "{with_oidc}"
        );
    }

    #[test]
    fn etags_are_quoted_and_follow_the_content() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert!(etag(b"a").starts_with('"') && etag(b"a").ends_with('"'));
    }
}
