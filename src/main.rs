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
    #[arg(long, env = "MESHINTENT_OBJECT_CONCURRENCY", default_value_t = 16)]
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
    /// Seconds a deployment waits for a cluster whose API server stopped answering (probing it
    /// with backoff) before it fails the cluster's remaining objects.
    #[arg(long, env = "MESHINTENT_CLUSTER_GIVE_UP", default_value_t = 900)]
    cluster_give_up: u64,
    /// Run the reconciler beside the deploy worker: check deployed sets on their
    /// `spec.sync.interval` and repair drift of sets with `selfHeal`.
    #[arg(long, env = "MESHINTENT_RECONCILE", default_value_t = true, action = clap::ArgAction::Set)]
    reconcile: bool,
    /// Seconds: no set is checked more often than this, whatever its `spec.sync.interval`.
    #[arg(long, env = "MESHINTENT_RECONCILE_MIN_INTERVAL", default_value_t = 10)]
    reconcile_min_interval: u64,
    /// Seconds between looks for sets that are due for a check.
    #[arg(long, env = "MESHINTENT_RECONCILE_POLL", default_value_t = 5)]
    reconcile_poll: u64,
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
                reconcile: self
                    .reconcile
                    .then(|| meshintent::reconciler::ReconcileSettings {
                        min_interval: Duration::from_secs(self.reconcile_min_interval.max(1)),
                        poll_interval: Duration::from_secs(self.reconcile_poll.max(1)),
                        lease: Duration::from_secs(self.deploy_lease.max(3)),
                    }),
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
            outage: meshintent::push::OutagePolicy {
                give_up_after: Duration::from_secs(self.cluster_give_up),
                ..Default::default()
            },
        };
        (worker, push)
    }
}

/// Who may call the API.
#[derive(clap::Args)]
struct AuthArgs {
    /// OIDC issuer URL (exactly the `iss` of its tokens); enables OIDC JWTs as credentials.
    #[arg(long, env = "MESHINTENT_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    /// The audience (`aud`) tokens must be issued for. Required with --oidc-issuer.
    #[arg(long, env = "MESHINTENT_OIDC_AUDIENCE")]
    oidc_audience: Option<String>,
    /// A JWKS file path or https URL (default: from the issuer's discovery document).
    #[arg(long, env = "MESHINTENT_OIDC_JWKS")]
    oidc_jwks: Option<String>,
    /// The claim holding the user name.
    #[arg(long, env = "MESHINTENT_OIDC_USERNAME_CLAIM", default_value = "sub")]
    oidc_username_claim: String,
    /// The claim holding the user's groups (an array of strings).
    #[arg(long, env = "MESHINTENT_OIDC_GROUPS_CLAIM", default_value = "groups")]
    oidc_groups_claim: String,
    /// An admin API token to create at start if none has its secret (`mi_` and 43 base64url
    /// characters), e.g. from a Kubernetes Secret.
    #[arg(long, env = "MESHINTENT_BOOTSTRAP_TOKEN", hide_env_values = true)]
    bootstrap_token: Option<String>,
    /// Failed authentications per client address and minute before answering 429.
    #[arg(
        long,
        env = "MESHINTENT_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 20
    )]
    auth_failures_per_minute: u32,
    /// Largest request body in bytes (larger ones are answered 413).
    #[arg(long, env = "MESHINTENT_MAX_BODY_BYTES", default_value_t = meshintent::configuration::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Largest set document in bytes for `PUT .../traffic-intent-sets/{set}/document`.
    #[arg(long, env = "MESHINTENT_MAX_DOCUMENT_BYTES", default_value_t = meshintent::configuration::DEFAULT_MAX_DOCUMENT_BYTES)]
    max_document_bytes: usize,
}

impl AuthArgs {
    fn settings(&self) -> Result<meshintent::auth::AuthSettings, String> {
        use meshintent::auth::oidc::OidcSettings;
        let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let oidc = match (&set(&self.oidc_issuer), &set(&self.oidc_audience)) {
            (None, None) => None,
            (Some(issuer), Some(audience)) => {
                // A URL with user:password would carry a credential into errors and logs.
                for (what, value) in [
                    ("MESHINTENT_OIDC_ISSUER", Some(issuer)),
                    ("MESHINTENT_OIDC_JWKS", self.oidc_jwks.as_ref()),
                ] {
                    if let Some(url) = value.and_then(|v| url::Url::parse(v).ok())
                        && (!url.username().is_empty() || url.password().is_some())
                    {
                        return Err(format!("{what} must not hold a user name or password"));
                    }
                }
                Some(OidcSettings {
                    issuer: issuer.clone(),
                    audience: audience.clone(),
                    jwks: OidcSettings::jwks_from(self.oidc_jwks.as_deref()),
                    username_claim: self.oidc_username_claim.clone(),
                    groups_claim: self.oidc_groups_claim.clone(),
                })
            }
            _ => {
                return Err(
                    "MESHINTENT_OIDC_ISSUER and MESHINTENT_OIDC_AUDIENCE go together".into(),
                );
            }
        };
        Ok(meshintent::auth::AuthSettings {
            enabled: true,
            failures_per_minute: self.auth_failures_per_minute.max(1),
            oidc,
        })
    }
}

// Parsed once at start; boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
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
        /// Serve /metrics on this address (e.g. 0.0.0.0:9090) instead of the API's.
        #[arg(long, env = "MESHINTENT_METRICS_LISTEN")]
        metrics_listen: Option<String>,
        /// HTTP worker threads (default: one per CPU).
        #[arg(long, env = "MESHINTENT_WORKERS")]
        workers: Option<usize>,
        #[command(flatten)]
        deploy: DeployArgs,
        #[command(flatten)]
        auth: AuthArgs,
        /// How long events (the SSE streams' history, for `Last-Event-ID` resumption) are kept:
        /// a number with s, m, h or d (default 7d); older ones are removed every minute.
        #[arg(long, env = "MESHINTENT_EVENT_RETENTION", default_value = "7d",
              value_parser = meshintent::service::events::parse_retention)]
        event_retention: std::time::Duration,
    },
    /// Manage API tokens directly in the database (for PostgreSQL installs and recovery).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
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
    /// Print what applying an intent document and deploying its sets would do, as unified
    /// diffs per object (like `kubectl diff`; nothing is written). Exit 0: nothing would
    /// change; 1: something would; 2: errors.
    Plan(meshintent::plan_cli::PlanArgs),
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
        #[command(flatten)]
        limits: DocumentLimitArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret once.
    Create {
        /// An admin token (the only kind this command creates; others are made over the API).
        #[arg(long, required = true)]
        admin: bool,
        /// The token's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
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
    /// API token (or OIDC token) sent as `Authorization: Bearer`.
    #[arg(long, env = "MESHINTENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Also delete what the document does not hold, within the projects and composite apps it
    /// names: members of its sets, traffic intent sets and apps of each named composite app,
    /// composite apps of each named project (never before what refers to them; sets and
    /// composite apps before the document's sets are written, so that their mesh names are
    /// free). Nothing in other projects; never a cluster or a project. A deployed set is not
    /// deleted (terminate it first): apply stops there and exits non-zero.
    #[arg(long)]
    prune: bool,
    /// Change nothing: print what apply would do, one line per resource (create, replace,
    /// unchanged, delete), from GETs only.
    #[arg(long, conflicts_with = "deploy")]
    dry_run: bool,
    /// Then deploy every traffic intent set of the document.
    #[arg(long)]
    deploy: bool,
    /// With --deploy: print progress until each deploy ends; exit non-zero unless all are Applied.
    #[arg(long, requires = "deploy")]
    wait: bool,
    #[command(flatten)]
    limits: DocumentLimitArgs,
}

/// How large an intent document may be read.
#[derive(clap::Args)]
struct DocumentLimitArgs {
    /// The most YAML nodes (mappings, sequences, scalars; aliases expanded) an intent document
    /// may have; aliases and anchors may take a twentieth of it. Guards against alias bombs.
    #[arg(
        long,
        env = "MESHINTENT_MAX_DOCUMENT_NODES",
        default_value_t = meshintent::input::DEFAULT_MAX_DOCUMENT_NODES
    )]
    max_document_nodes: usize,
}

impl DocumentLimitArgs {
    fn limits(&self) -> meshintent::input::DocumentLimits {
        meshintent::input::DocumentLimits {
            max_nodes: self.max_document_nodes,
        }
    }
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
    // `plan` has exit statuses of its own (those of `kubectl diff`).
    let command = match cli.command {
        Command::Plan(args) => return meshintent::plan_cli::run(args).await,
        other => other,
    };
    match run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("meshintent: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What a failed write to standard output means. A reader that went away (`| head`) wants no
/// more output: that ends the command quietly, as a success. `println!` would panic instead.
fn stdout_written(result: std::io::Result<()>) -> Result<(), String> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("writing standard output: {e}"))
        }
        _ => Ok(()),
    }
}

/// Writes one line to standard output (see `stdout_written`).
fn say(line: std::fmt::Arguments<'_>) -> Result<(), String> {
    use std::io::Write;
    stdout_written(writeln!(std::io::stdout().lock(), "{line}"))
}

fn read_document(file: &std::path::Path) -> Result<String, String> {
    if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("reading standard input: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))
    }
}

/// `meshintent apply`: one line per resource with what happened to it (with `--dry-run`, what
/// would happen), printed as it is known; then, with `--deploy`, the deploys, and with `--wait`
/// their progress until they end.
async fn apply(args: ApplyArgs) -> Result<(), String> {
    use meshintent::apply::{
        ApiClient, ApplyOptions, ProgressDisplay, apply_with, deploy, follow, progress_line,
        set_paths,
    };
    use meshintent::domain::deployment::DeploymentState;
    let text = read_document(&args.file)?;
    let document =
        meshintent::domain::document::IntentDocument::parse_within(&text, args.limits.limits())
            .map_err(|e| describe(&e))?;
    let client = ApiClient::new(&args.server)
        .map_err(|e| e.to_string())?
        .with_token(args.token.clone());
    let options = ApplyOptions {
        prune: args.prune,
        dry_run: args.dry_run,
    };
    // Each line as soon as it is known; the first failed write (not a closed pipe) is reported
    // once apply has ended.
    let mut printed = Ok(());
    let report = apply_with(&client, &document, options, &mut |a| {
        if printed.is_ok() {
            printed = say(format_args!("{} {}", a.outcome.verb(args.dry_run), a.path));
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    printed?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    if args.dry_run || !args.deploy {
        return Ok(());
    }
    let mut deployments = Vec::new();
    for set in set_paths(&document) {
        let deployment = deploy(&client, &set).await.map_err(|e| e.to_string())?;
        say(format_args!("deploying {deployment}"))?;
        deployments.push((set, deployment));
    }
    if !args.wait {
        return Ok(());
    }
    let mut failed = Vec::new();
    for (set, deployment) in &deployments {
        // Follows the set's event stream; progress is best effort: the end decides the exit
        // status. Bars on a terminal, a line per change otherwise.
        use std::io::IsTerminal;
        let mut display = ProgressDisplay::new(deployment, std::io::stdout().is_terminal());
        let status = follow(&client, set, deployment, |p| display.update(p))
            .await
            .map_err(|e| e.to_string())?;
        display.finish();
        say(format_args!("{deployment}: {}", progress_line(&status)))?;
        if status.state != DeploymentState::Applied {
            for cluster in &status.clusters {
                if let Some(message) = &cluster.message {
                    say(format_args!("{deployment}: {}: {message}", cluster.cluster))?;
                }
            }
            failed.push(format!("{deployment} ended {}", status.state));
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
    limits: meshintent::input::DocumentLimits,
) -> Result<(), String> {
    use meshintent::generate::output;
    use std::io::Write;
    let text = read_document(file)?;
    let manifests =
        meshintent::offline::render_document_within(&text, limits).map_err(|e| describe(&e))?;
    let cluster = match cluster {
        None => None,
        Some(raw) => Some(
            raw.parse::<meshintent::domain::names::Name>()
                .map_err(|e| format!("--cluster: {e}"))?,
        ),
    };
    // Written as it is serialized: the objects are neither copied nor held as one text.
    let view = output::view(&manifests, cluster.as_ref());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match output {
        OutputFormat::Yaml => meshintent::offline::write_yaml(&view, &mut out),
        OutputFormat::Json => meshintent::offline::write_json(&view, &mut out),
    }
    .and_then(|()| out.flush());
    stdout_written(written)?;
    // The process ends now; freeing the objects one by one would take about as long as
    // serializing them (a second for 200,000).
    std::mem::forget(manifests);
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
            metrics_listen,
            deploy,
            auth,
            event_retention,
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
                auth: auth.settings()?,
                max_body_bytes: auth.max_body_bytes.max(1024),
                max_document_bytes: auth.max_document_bytes.max(1024),
                bootstrap_token: auth.bootstrap_token.clone(),
                metrics_listen: metrics_listen.filter(|a| !a.is_empty()),
                events: meshintent::service::events::EventSettings {
                    retention: event_retention,
                    ..Default::default()
                },
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
        Command::Token {
            command:
                TokenCommand::Create {
                    admin: _,
                    name,
                    database,
                },
        } => {
            let database = database.settings()?;
            let store = database.connect().await.map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            // Creating a token touches no secret at rest: any key will do.
            let key = meshintent::crypto::SecretBox::generate_key();
            let secrets =
                meshintent::crypto::SecretBox::from_base64(&key).map_err(|e| e.to_string())?;
            let service = meshintent::service::Service::new(store, secrets);
            let name = name.parse().map_err(|e: String| format!("--name: {e}"))?;
            let secret = service
                .create_admin_token(name, &meshintent::service::Caller::system("cli"), None)
                .await
                .map_err(|e| describe(&e))?;
            // Not quiet on a broken pipe: the token exists, and its secret was not delivered.
            use std::io::Write;
            writeln!(std::io::stdout().lock(), "{secret}")
                .map_err(|e| format!("the token was created, but writing its secret failed: {e}"))
        }
        Command::Openapi => {
            use std::io::Write;
            stdout_written(write!(
                std::io::stdout().lock(),
                "{}",
                meshintent::api::openapi_json()
            ))
        }
        Command::Render {
            file,
            cluster,
            output,
            limits,
        } => render(&file, cluster.as_deref(), output, limits.limits()),
        Command::Apply(args) => apply(args).await,
        Command::Plan(args) => {
            // Dispatched by `main` (for its exit status); kept here so that `run` covers every
            // command.
            let code = meshintent::plan_cli::run(args).await;
            match code == ExitCode::SUCCESS {
                true => Ok(()),
                false => Err("plan: changes or errors (see above)".into()),
            }
        }
    }
}
