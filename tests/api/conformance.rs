//! HTTP conformance and input edge cases (issue 13): control characters, HEAD, trailing
//! slashes, long request heads, non-object bodies, If-Match syntax, error wording.

use reqwest::Method;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::both_backends;
use crate::helpers::{SET, httpbin_intent};

// A NUL (or another control character) in free text is refused on both backends with a 422
// naming the field: POST and PUT of every kind share the domain types, and so do documents.
both_backends!(
    control_characters_in_free_text_are_422_naming_the_field,
    |app| {
        app.seed_storefront().await;
        let url = format!("{SET}/inbound-intents");
        for (field, value) in [
            ("description", "a\u{0}b"),
            ("userData1", "\u{0}"),
            ("userData2", "bell\u{7}"),
        ] {
            let mut body = httpbin_intent();
            body["metadata"][field] = json!(value);
            let pointer = format!("/metadata/{field}");
            let reply = app
                .post(&url, body.clone())
                .await
                .expect_problem(422, &pointer);
            assert!(
                reply.message(&pointer).contains("control characters"),
                "{}",
                reply.body
            );
            // Another kind, through PUT.
            app.put(
                "/v2/clusters/cluster01",
                json!({"metadata": {"name": "cluster01", field: value},
                   "spec": {"identity": "cluster01.mesh.example.com"}}),
            )
            .await
            .expect_problem(422, &pointer);
        }
        // Tab, newline and carriage return are text.
        let mut body = httpbin_intent();
        body["metadata"]["description"] = json!("line one\r\n\tline two");
        let created = app.post(&url, body).await.expect(201);
        assert_eq!(
            created.body["metadata"]["description"],
            "line one\r\n\tline two"
        );
        // A route's regex and a set document's description.
        let document = json!({"metadata": {"name": "default", "description": "x\u{0}"}});
        app.put(&format!("{SET}/document"), document)
            .await
            .expect_problem(422, "/metadata/description");
        let reply = app
            .post(
                &format!("{SET}/route-intents"),
                json!({"metadata": {"name": "r"},
                   "spec": {"target": {"inboundIntent": "httpbin"},
                            "http": [{"match": [{"uri": {"regex": "/a\u{0}"}}],
                                      "route": [{"weight": 100}]}]}}),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 422, "{}", reply.body);
    }
);

// HEAD is served wherever GET is, with GET's status and headers and no body, so the `Allow`
// of a 405 (which lists HEAD) is true.
both_backends!(head_is_get_without_the_body, |app| {
    app.seed_storefront().await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api-docs/openapi.json",
        "/v2/projects",
        "/v2/clusters/cluster01",
        "/v2/projects/nope",
    ] {
        let get = app.get(path).await;
        let head = app.request(Method::HEAD, path, None, &[]).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert_eq!(head.text, "", "HEAD {path} has no body");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {path}"
        );
        assert_eq!(head.header("etag"), get.header("etag"), "HEAD {path}");
        if let Some(length) = head.header("content-length") {
            assert_eq!(length, get.text.len().to_string(), "HEAD {path}");
        }
    }
    let refused = app
        .request(Method::PATCH, "/v2/projects", None, &[])
        .await
        .expect(405);
    assert!(refused.header("allow").unwrap().contains("HEAD"));
});

// A trailing slash is another path: a 404 that says so, never a 405 claiming the method is
// allowed.
both_backends!(
    a_trailing_slash_is_a_404_naming_the_path_without_it,
    |app| {
        for method in [Method::GET, Method::POST, Method::HEAD] {
            let reply = app
                .request(method.clone(), "/v2/projects/", None, &[])
                .await
                .expect(404);
            if method != Method::HEAD {
                let detail = reply.body["detail"].as_str().unwrap();
                assert!(
                    detail.contains("trailing slash") && detail.contains("use /v2/projects"),
                    "{detail}"
                );
            }
        }
        app.get("/v2/clusters/").await.expect(404);
        app.get("/v2/projects").await.expect(200);
    }
);

// A long request target is a 414 problem and oversized headers a 431 problem. Beyond what
// actix's HTTP codec parses (a URI of more than 65,534 bytes) the answer is its empty 400.
both_backends!(long_targets_and_headers_are_problems, |app| {
    let long = format!("/v2/projects/{}", "a".repeat(10_000));
    let reply = app.get(&long).await.expect(414);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(reply.body["detail"].as_str().unwrap().contains("8192"));
    let big = "b".repeat(40_000);
    let reply = app
        .request(Method::GET, "/v2/projects", None, &[("x-big", &big)])
        .await
        .expect(431);
    assert_eq!(reply.body["status"], 431);
    // Sent by hand: HTTP clients refuse such a URI themselves.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /v2/projects/{} HTTP/1.1\r\nHost: {address}\r\n\r\n",
        "a".repeat(100_000)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "the codec's answer: {answer}"
    );
});

// An array (or any non-object) in place of an object is refused and creates nothing.
both_backends!(a_non_object_body_is_400_and_creates_nothing, |app| {
    for body in [
        r#"[{"name":"x"}]"#,
        r#"[{"metadata":{"name":"x"}}]"#,
        "\"x\"",
        "42",
        "null",
    ] {
        let reply = app
            .raw(Method::POST, "/v2/projects", "application/json", body)
            .await
            .expect_problem(400, "");
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .starts_with("the body must be an object"),
            "{}",
            reply.body
        );
    }
    assert_eq!(app.get("/v2/projects").await.body["items"], json!([]));
    app.get("/v2/projects/x").await.expect(404);
});

// If-Match holds quoted entity tags; an unquoted one is a 400 that says so. The document types
// it as a string with the ETag pattern.
both_backends!(if_match_must_be_quoted, |app| {
    let created = app
        .post("/v2/projects", json!({"metadata": {"name": "shop"}}))
        .await
        .expect(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let body = json!({"metadata": {"name": "shop", "description": "d"}});
    let reply = app
        .request(
            Method::PUT,
            "/v2/projects/shop",
            Some(&body),
            &[("if-match", "1")],
        )
        .await
        .expect_problem(400, "If-Match");
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("quoted") && detail.contains("\"1\""),
        "{detail}"
    );
    app.request(
        Method::PUT,
        "/v2/projects/shop",
        Some(&body),
        &[("if-match", "\"1\"")],
    )
    .await
    .expect(200);
    app.request(
        Method::DELETE,
        "/v2/projects/shop",
        None,
        &[("if-match", "2")],
    )
    .await
    .expect_problem(400, "If-Match");

    let api = app.get("/api-docs/openapi.json").await.expect(200).body;
    let params = api["paths"]["/v2/projects/{project}"]["put"]["parameters"]
        .as_array()
        .unwrap();
    let if_match = params.iter().find(|p| p["name"] == "If-Match").unwrap();
    assert_eq!(if_match["schema"]["type"], "string", "{if_match}");
    let pattern = if_match["schema"]["pattern"].as_str().unwrap();
    let pattern = regex::Regex::new(pattern).unwrap();
    assert!(pattern.is_match("\"3\"") && pattern.is_match("*") && !pattern.is_match("3"));
});

// Errors speak JSON and HTTP, not Rust: query parameters are named, types are JSON's, and
// integers are what JSON Schema calls integers.
both_backends!(errors_name_the_field_in_plain_words, |app| {
    for query in ["limit=-1", "limit=abc", "limit=99999999999"] {
        let reply = app
            .get(&format!("/v2/projects?{query}"))
            .await
            .expect_problem(400, "limit");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.starts_with("query parameter limit: "), "{detail}");
        assert!(!detail.contains("deserialize"), "{detail}");
    }
    app.request(Method::DELETE, "/v2/projects/x?cascade=yes", None, &[])
        .await
        .expect_problem(400, "cascade");

    app.seed_storefront().await;
    let url = format!("{SET}/inbound-intents");
    let rust = ["u16", "i64", "struct", "elements", "sequence"];
    let mut wrong = httpbin_intent();
    wrong["spec"]["port"] = json!("8000");
    let reply = app
        .post(&url, wrong)
        .await
        .expect_problem(400, "/spec/port");
    let message = reply.message("/spec/port");
    assert_eq!(message, "must be an integer (got the string \"8000\")");
    let mut wrong = httpbin_intent();
    wrong["metadata"] = json!([]);
    let reply = app.post(&url, wrong).await.expect_problem(400, "/metadata");
    let message = reply.message("/metadata");
    assert!(message.contains("object"), "{message}");
    for word in rust {
        assert!(!message.contains(word), "{message}");
    }
    // 2^63 and 2^64 are both out of the port's range.
    for huge in ["9223372036854775808", "18446744073709551616"] {
        let body = httpbin_intent().to_string().replace("8000", huge);
        let reply = app
            .raw(Method::POST, &url, "application/json", &body)
            .await
            .expect_problem(422, "/spec/port");
        assert_eq!(
            reply.message("/spec/port"),
            format!("must be between 1 and 65535 (got {huge})")
        );
    }
    // 65535.0 is the integer 65535.
    let body = httpbin_intent().to_string().replace("8000", "65535.0");
    let created = app
        .raw(Method::POST, &url, "application/json", &body)
        .await
        .expect(201);
    assert_eq!(created.body["spec"]["port"], json!(65535));
    assert!(created.text.contains("\"port\":65535,") || created.text.contains("\"port\":65535}"));
});

// Every JSON answer ends with a newline (and its Content-Length counts it).
both_backends!(json_answers_end_with_a_newline, |app| {
    let ok = app.get("/v2/projects").await.expect(200);
    let problem = app.get("/v2/projects/nope").await.expect(404);
    let created = app
        .post("/v2/projects", json!({"metadata": {"name": "shop"}}))
        .await
        .expect(201);
    let unauthorized = app
        .request_as(None, Method::GET, "/v2/projects", None)
        .await
        .expect(401);
    for reply in [ok, problem, created, unauthorized] {
        assert!(reply.text.ends_with("}\n"), "{:?}", reply.text);
        if let Some(length) = reply.header("content-length") {
            assert_eq!(length, reply.text.len().to_string());
        }
    }
});

fn server(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshintent"));
    command
        .arg("serve")
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("MESHINTENT_SECRET_KEY")
        .env_remove("MESHINTENT_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        command.env(k, v);
    }
    command
}

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// A missing `--data-dir` is created; an unreachable PostgreSQL is named by its address.
#[tokio::test]
async fn start_up_creates_the_data_dir_and_names_an_unreachable_database() {
    let dir = std::env::temp_dir().join(format!("meshintent-dd-{}", uuid::Uuid::new_v4()));
    let data = dir.join("not/there/yet");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = server(
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    )
    .spawn()
    .unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        ready,
        "the server did not start: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(data.join("meshintent.db").exists());
    std::fs::remove_dir_all(&dir).unwrap();

    let output = server(
        &["--listen", "127.0.0.1:0"],
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/test"),
            ("MESHINTENT_SECRET_KEY", KEY),
        ],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "cannot connect to PostgreSQL at 127.0.0.1:1 (database \"test\"): connection refused"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("timed out"), "{stderr}");
}

mod a_missing_postgres_database_is_named {
    use super::*;

    #[ignore = "PostgreSQL: MESHINTENT_TEST_POSTGRES=<url> cargo test -- --ignored ::postgres"]
    #[tokio::test]
    async fn postgres() {
        let base = crate::helpers::postgres_url().unwrap();
        crate::helpers::record_postgres_run(concat!(module_path!(), "::postgres"));
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path("/meshintent_no_such_database");
        let output = server(
            &["--listen", "127.0.0.1:0"],
            &[
                ("DATABASE_URL", url.as_str()),
                ("MESHINTENT_SECRET_KEY", KEY),
            ],
        )
        .output()
        .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("database \"meshintent_no_such_database\" does not exist"),
            "{stderr}"
        );
        assert!(!stderr.contains("line"), "{stderr}");
    }
}
