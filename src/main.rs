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

/// `meshintent apply`: one line per resource with what happened to it.
async fn apply(args: ApplyArgs) -> Result<(), String> {
    use meshintent::apply::{ApiClient, apply};
    let text = read_document(&args.file)?;
    let document =
        meshintent::domain::document::IntentDocument::parse(&text).map_err(|e| describe(&e))?;
    let client = ApiClient::new(&args.server).map_err(|e| e.to_string())?;
    let applied = apply(&client, &document).await.map_err(|e| e.to_string())?;
    for a in &applied {
        println!("{} {}", a.outcome.as_str(), a.path);
    }
    Ok(())
}

/// `meshintent render`: errors name the field in the document, as the API would.
fn render(
    file: &std::path::Path,
    cluster: Option<&str>,
    output: OutputFormat,
) -> Result<(), String> {
    use meshintent::generate::output;
    let text = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("reading standard input: {e}"))?
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?
    };
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
        } => {
            let database = database.settings()?;
            let secret_key = SecretKeySource::resolve(secret_key.as_deref(), &database)?;
            let settings = Settings {
                listen,
                database,
                secret_key,
                handle_signals: true,
                shutdown_timeout,
                workers,
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
