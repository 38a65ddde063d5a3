//! Generated clients: the Python (openapi-python-client) and TypeScript (@hey-api/openapi-ts)
//! clients of the committed document type-check strictly and run the README's walk-through
//! against the real binary (`tests/clients/run.sh`, docs/api.md "Generated clients").
//!
//! The generators and type checkers come from the registries (`tests/clients/run.sh install`);
//! without them the two walk-through tests print that they were skipped. CI sets
//! `MESHINTENT_REQUIRE_CLIENTS`, so there a missing tool fails them instead.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

/// Names the generated code defines or imports beside the models, so a schema component of
/// that name shadows it or is shadowed (openapi-python-client 0.29 imports its `Client` and a
/// model `Client` into the same endpoint module; @hey-api/openapi-ts exports its own `Client`,
/// `Options`, `Config`, ...).
const GENERATOR_NAMES: &[&str] = &[
    // openapi-python-client: client.py, types.py, errors.py
    "Client",
    "AuthenticatedClient",
    "Response",
    "Unset",
    "File",
    "FileTypes",
    "UnexpectedStatus",
    // @hey-api/openapi-ts with @hey-api/client-fetch: client/index.ts, sdk.gen.ts, types.gen.ts
    "Auth",
    "ClientOptions",
    "Config",
    "CreateClientConfig",
    "Options",
    "QuerySerializerOptions",
    "RequestOptions",
    "RequestResult",
    "ResolvedRequestOptions",
    "ResponseStyle",
    "TDataShape",
];

/// What @hey-api/openapi-ts derives from each operation id (`client_create` becomes
/// `ClientCreateData`, ...); a component with one of these names would collide with it.
const OPERATION_SUFFIXES: &[&str] = &["Data", "Error", "Errors", "Response", "Responses"];

fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}

#[test]
fn no_schema_component_takes_a_name_the_generators_use() {
    let doc: Value = serde_json::from_str(COMMITTED).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("InboundClient"), "the renamed client");
    let mut taken: Vec<(String, String)> = GENERATOR_NAMES
        .iter()
        .map(|name| (name.to_string(), "a generator's own type".to_owned()))
        .collect();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            for suffix in OPERATION_SUFFIXES {
                taken.push((
                    format!("{}{suffix}", pascal_case(id)),
                    format!("operation {id}"),
                ));
            }
        }
    }
    // Request variants of schemas with read-only fields: `Metadata` has `MetadataWritable`.
    for name in schemas.keys() {
        taken.push((
            format!("{name}Writable"),
            format!("the request form of {name}"),
        ));
    }
    for (name, why) in taken {
        assert!(
            !schemas.contains_key(&name),
            "schema component {name} collides with {why} in generated clients; \
             give the Rust type #[schema(as = ...)] (docs/api.md, Generated clients)"
        );
    }
}

/// The real binary on the embedded SQLite default, in a directory of its own; killed on drop.
struct Server {
    child: std::process::Child,
    dir: PathBuf,
    url: String,
    token: String,
}

impl Server {
    async fn start() -> Server {
        let dir = std::env::temp_dir().join(format!("meshintent-clients-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_meshintent"))
            .arg("serve")
            .current_dir(&dir)
            .env("MESHINTENT_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("DATABASE_URL")
            .env_remove("MESHINTENT_SECRET_KEY")
            .env_remove("MESHINTENT_BOOTSTRAP_TOKEN")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            dir,
            url,
            token: String::new(),
        };
        for _ in 0..100 {
            if let Ok(r) = reqwest::get(format!("{}/readyz", server.url)).await
                && r.status() == 200
            {
                // The first start of an empty database writes an admin token beside it.
                server.token = std::fs::read_to_string(server.dir.join("meshintent.admin-token"))
                    .expect("the admin token file")
                    .trim()
                    .to_owned();
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not become ready:\n{}", server.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tool files `tests/clients/run.sh <language>` needs that are missing.
fn missing_tools(language: &str) -> Vec<String> {
    let venv = std::env::var_os("MESHINTENT_CLIENTS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join("target/clients-venv"));
    let node_bin = repository().join("tests/clients/typescript/node_modules/.bin");
    let mut needed: Vec<PathBuf> = match language {
        "python" => ["python", "openapi-python-client", "mypy"]
            .iter()
            .map(|tool| venv.join("bin").join(tool))
            .collect(),
        _ => vec![node_bin.join("openapi-ts"), node_bin.join("tsc")],
    };
    if language == "typescript" {
        let node = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("node"))
            .find(|node| node.exists())
            .unwrap_or_else(|| PathBuf::from("node (on PATH)"));
        needed.push(node);
    }
    needed
        .into_iter()
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect()
}

/// Runs `tests/clients/run.sh <language>` against a fresh server, or says why it cannot.
async fn generated_client_walks_through(language: &str) {
    let missing = missing_tools(language);
    if !missing.is_empty() {
        assert!(
            std::env::var_os("MESHINTENT_REQUIRE_CLIENTS").is_none(),
            "the {language} client tools are missing ({}): run tests/clients/run.sh install",
            missing.join(", ")
        );
        eprintln!(
            "{language} client test skipped: run tests/clients/run.sh install to run it (missing {})",
            missing.join(", ")
        );
        return;
    }
    // One client test at a time, at low priority: generators and type checkers keep a core
    // busy for seconds, and the browser and timing tests beside them must not starve.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = Server::start().await;
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("clients-{}", uuid::Uuid::new_v4()));
    let run = tokio::process::Command::new("nice")
        .args(["-n", "10"])
        .arg(repository().join("tests/clients/run.sh"))
        .arg(language)
        .env("MESHINTENT_URL", &server.url)
        .env("MESHINTENT_TOKEN", &server.token)
        .env("MESHINTENT_CLIENTS_OUT", &out)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .unwrap_or_else(|_| panic!("the {language} client test took more than 240s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/clients/run.sh {language} failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
        output.status,
        server.log()
    );
    // The script's last word is the walk-through's own, after its checks passed.
    assert!(
        stdout.contains(&format!("{language} walk-through: ")) && stdout.contains("checks passed"),
        "the walk-through did not report:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_type_checks_and_runs_the_walk_through() {
    generated_client_walks_through("python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_client_type_checks_and_runs_the_walk_through() {
    generated_client_walks_through("typescript").await;
}
