//! The `meshintent` command line: parses arguments and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use meshintent::configuration::{DatabaseSettings, SecretKeySource, Settings};
use meshintent::startup::Application;

#[derive(Parser)]
#[command(
    name = "meshintent",
    version,
    about = "Traffic intents in, Istio resources per cluster out"
)]
struct Cli {
    /// Log JSON lines instead of text.
    #[arg(long, env = "MESHINTENT_LOG_JSON", global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct DatabaseArgs {
    /// postgres://... for PostgreSQL; without it, an embedded SQLite file meshintent.db in --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Directory of the embedded SQLite database and its key file.
    #[arg(long, env = "MESHINTENT_DATA_DIR", default_value = ".")]
    data_dir: PathBuf,
    /// PostgreSQL connection pool size.
    #[arg(long, env = "MESHINTENT_DB_MAX_CONNECTIONS", default_value_t = 10)]
    db_max_connections: u32,
}

impl DatabaseArgs {
    fn settings(&self) -> Result<DatabaseSettings, String> {
        DatabaseSettings::from_url(
            self.database_url.as_deref(),
            &self.data_dir,
            self.db_max_connections,
        )
    }
}

/// How deploys run and talk to clusters.
#[derive(clap::Args)]
struct DeployArgs {
    /// Run the deploy worker in this process (false: this replica serves the API only).
    #[arg(long, env = "MESHINTENT_DEPLOY_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    deploy_worker: bool,
    /// Seconds a worker's claim on a deployment lasts without renewal (a crashed worker's
    /// deployment is resumed after this).
    #[arg(long, env = "MESHINTENT_DEPLOY_LEASE", default_value_t = 30)]
    deploy_lease: u64,
    /// Seconds between looks for work queued by other replicas.
    #[arg(long, env = "MESHINTENT_DEPLOY_POLL", default_value_t = 2)]
    deploy_poll: u64,
    /// Clusters a deployment works on at once.
    #[arg(long, env = "MESHINTENT_CLUSTER_CONCURRENCY", default_value_t = 4)]
    cluster_concurrency: usize,
    /// Requests in flight per cluster.
    #[arg(long, env = "MESHINTENT_OBJECT_CONCURRENCY", default_value_t = 8)]
    object_concurrency: usize,
    /// Attempts per cluster request on transient errors (connection refused, timeouts, 429, 5xx).
    #[arg(long, env = "MESHINTENT_RETRY_ATTEMPTS", default_value_t = 6)]
    retry_attempts: u32,
    /// First retry delay ceiling in milliseconds (doubles per attempt, full jitter).
    #[arg(long, env = "MESHINTENT_RETRY_BASE_MS", default_value_t = 250)]
    retry_base_ms: u64,
    /// Largest retry delay in milliseconds.
    #[arg(long, env = "MESHINTENT_RETRY_MAX_MS", default_value_t = 10_000)]
    retry_max_ms: u64,
    /// Seconds to connect to a cluster's API server.
    #[arg(long, env = "MESHINTENT_CLUSTER_CONNECT_TIMEOUT", default_value_t = 10)]
    cluster_connect_timeout: u64,
    /// Seconds a cluster request may take.
    #[arg(long, env = "MESHINTENT_CLUSTER_REQUEST_TIMEOUT", default_value_t = 30)]
    cluster_request_timeout: u64,
}

impl DeployArgs {
    fn settings(
        &self,
    ) -> (
        Option<meshintent::worker::WorkerSettings>,
        meshintent::push::PushSettings,
    ) {
        use std::time::Duration;
        let worker = self
            .deploy_worker
            .then(|| meshintent::worker::WorkerSettings {
                lease: Duration::from_secs(self.deploy_lease.max(3)),
                poll_interval: Duration::from_secs(self.deploy_poll.max(1)),
                cluster_concurrency: self.cluster_concurrency.max(1),
                ..Default::default()
            });
        let push = meshintent::push::PushSettings {
            retry: meshintent::push::RetryPolicy {
                attempts: self.retry_attempts.max(1),
                base_delay: Duration::from_millis(self.retry_base_ms),
                max_delay: Duration::from_millis(self.retry_max_ms),
            },
            object_concurrency: self.object_concurrency.max(1),
            connect_timeout: Duration::from_secs(self.cluster_connect_timeout.max(1)),
            request_timeout: Duration::from_secs(self.cluster_request_timeout.max(1)),
        };
        (worker, push)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (runs migrations first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "MESHINTENT_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Key for secrets at rest: 32 bytes, base64. Required with PostgreSQL; the embedded
        /// default creates meshintent.key beside the database.
        #[arg(long, env = "MESHINTENT_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        /// Seconds to wait for requests in flight on shutdown.
        #[arg(long, env = "MESHINTENT_SHUTDOWN_TIMEOUT", default_value_t = 30)]
        shutdown_timeout: u64,
        /// HTTP worker threads (default: one per CPU).
        #[arg(long, env = "MESHINTENT_WORKERS")]
        workers: Option<usize>,
        #[command(flatten)]
        deploy: DeployArgs,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Create or replace every resource of an intent document through the API (idempotent).
    Apply(ApplyArgs),
    /// Render an intent document into Istio objects, offline (no database, no network).
    Render {
        /// The intent document (YAML or JSON); `-` reads standard input.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Only this cluster's objects.
        #[arg(long)]
        cluster: Option<String>,
        /// Output format: YAML (one document per object) or the manifests endpoint's JSON.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Yaml)]
        output: OutputFormat,
    },
}

/// Arguments of `meshintent apply`.
#[derive(clap::Args)]
struct ApplyArgs {
    /// The intent document (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// The meshintent server, e.g. http://127.0.0.1:8080.
    #[arg(
        long,
        env = "MESHINTENT_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Then deploy every traffic intent set of the document.
    #[arg(long)]
    deploy: bool,
    /// With --deploy: print progress until each deploy ends; exit non-zero unless all are Applied.
    #[arg(long, requires = "deploy")]
    wait: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Yaml,
    Json,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    meshintent::tls::install_crypto_provider();
    meshintent::telemetry::init(cli.log_json);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("meshintent: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_document(file: &std::path::Path) -> Result<String, String> {
    if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("reading standard input: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))
    }
}

/// `meshintent apply`: one line per resource with what happened to it; then, with `--deploy`,
/// the deploys, and with `--wait` their progress until they end.
async fn apply(args: ApplyArgs) -> Result<(), String> {
    use meshintent::apply::{ApiClient, apply, deploy, progress_line, set_paths, wait};
    let text = read_document(&args.file)?;
    let document =
        meshintent::domain::document::IntentDocument::parse(&text).map_err(|e| describe(&e))?;
    let client = ApiClient::new(&args.server).map_err(|e| e.to_string())?;
    let applied = apply(&client, &document).await.map_err(|e| e.to_string())?;
    for a in &applied {
        println!("{} {}", a.outcome.as_str(), a.path);
    }
    if !args.deploy {
        return Ok(());
    }
    let mut deployments = Vec::new();
    for set in set_paths(&document) {
        let deployment = deploy(&client, &set).await.map_err(|e| e.to_string())?;
        println!("deploying {deployment}");
        deployments.push(deployment);
    }
    if !args.wait {
        return Ok(());
    }
    let mut failed = Vec::new();
    for deployment in &deployments {
        let status = wait(
            &client,
            deployment,
            |s| println!("{deployment}: {}", progress_line(s)),
            std::time::Duration::from_millis(500),
        )
        .await
        .map_err(|e| e.to_string())?;
        let state = status["state"].as_str().unwrap_or("");
        if state != "Applied" {
            for cluster in status["clusters"].as_array().into_iter().flatten() {
                if let Some(message) = cluster["message"].as_str() {
                    println!(
                        "{deployment}: {}: {message}",
                        cluster["cluster"].as_str().unwrap_or("?")
                    );
                }
            }
            failed.push(format!("{deployment} ended {state}"));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// `meshintent render`: errors name the field in the document, as the API would.
fn render(
    file: &std::path::Path,
    cluster: Option<&str>,
    output: OutputFormat,
) -> Result<(), String> {
    use meshintent::generate::output;
    let text = read_document(file)?;
    let manifests = meshintent::offline::render_document(&text).map_err(|e| describe(&e))?;
    let cluster = match cluster {
        None => None,
        Some(raw) => Some(
            raw.parse::<meshintent::domain::names::Name>()
                .map_err(|e| format!("--cluster: {e}"))?,
        ),
    };
    let list = output::list(&manifests, cluster.as_ref());
    match output {
        OutputFormat::Yaml => print!("{}", output::yaml(&list)),
        OutputFormat::Json => print!("{}", output::json(&list)),
    }
    Ok(())
}

/// An error as `detail`, then one `field: message` line per field.
fn describe(error: &meshintent::error::Error) -> String {
    use meshintent::error::Error;
    match error {
        Error::Invalid { errors, .. } | Error::BadRequest { errors, .. } if !errors.is_empty() => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("  {}: {}", e.field, e.message))
                .collect();
            format!("the document is invalid:\n{}", lines.join("\n"))
        }
        other => other.to_string(),
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve {
            listen,
            database,
            secret_key,
            shutdown_timeout,
            workers,
            deploy,
        } => {
            let database = database.settings()?;
            let secret_key = SecretKeySource::resolve(secret_key.as_deref(), &database)?;
            let (worker, push) = deploy.settings();
            let settings = Settings {
                listen,
                database,
                secret_key,
                handle_signals: true,
                shutdown_timeout,
                workers,
                worker,
                push,
            };
            let app = Application::build(&settings)
                .await
                .map_err(|e| e.to_string())?;
            app.run_until_stopped().await.map_err(|e| e.to_string())
        }
        Command::Migrate { database } => {
            let database = database.settings()?;
            let store = database.connect().await.map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            eprintln!("migrations applied to {}", database.describe());
            Ok(())
        }
        Command::Openapi => {
            print!("{}", meshintent::api::openapi_json());
            Ok(())
        }
        Command::Render {
            file,
            cluster,
            output,
        } => render(&file, cluster.as_deref(), output),
        Command::Apply(args) => apply(args).await,
    }
}
