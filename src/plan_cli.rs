//! `meshintent plan -f FILE --server URL`: what applying FILE and deploying its sets would do,
//! like `kubectl diff`. Nothing is written: each traffic intent set of the document is sent to
//! `POST .../traffic-intent-sets/{set}/plan` (a trial write of the set rolled back on the
//! server, then live reads and server-side dry-run applies on the clusters), and the answer is
//! printed as one unified diff per object (live YAML against the API server's dry-run answer),
//! coloured when standard output is a terminal. Exit status as `kubectl diff`: 0 nothing would
//! change, 1 something would, 2 errors (a request refused, a cluster that could not be read, an
//! object the API server would refuse or that another owner holds).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anstyle::{AnsiColor, Style};
use serde_json::{Map, Value};

use crate::apply::{ApiClient, ApplyError};
use crate::domain::document::{DocIntentSet, IntentDocument};
use crate::domain::model::SetAddress;
use crate::domain::resource::ResourcePath;
use crate::service::{Plan, PlanAction, PlanObject, PlanSummary};

/// Arguments of `meshintent plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The intent document (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// The meshintent server, e.g. http://127.0.0.1:8080.
    #[arg(
        long,
        env = "MESHINTENT_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// API token (or OIDC token) sent as `Authorization: Bearer`.
    #[arg(long, env = "MESHINTENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Plan as `meshintent apply --prune` would write the sets: members a set holds that the
    /// document leaves out are deleted (without it they are kept, as `apply` keeps them).
    #[arg(long)]
    pub prune: bool,
    /// The most YAML nodes an intent document may have (see `meshintent apply`).
    #[arg(
        long,
        env = "MESHINTENT_MAX_DOCUMENT_NODES",
        default_value_t = crate::input::DEFAULT_MAX_DOCUMENT_NODES
    )]
    pub max_document_nodes: usize,
}

/// Runs `meshintent plan`; the exit status follows `kubectl diff`.
pub async fn run(args: PlanArgs) -> ExitCode {
    match plan(&args).await {
        Ok(summary) if summary.has_errors() => ExitCode::from(2),
        Ok(summary) if summary.has_changes() => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("meshintent: {message}");
            ExitCode::from(2)
        }
    }
}

async fn plan(args: &PlanArgs) -> Result<PlanSummary, String> {
    let text = if args.file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("reading standard input: {e}"))?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| format!("reading {}: {e}", args.file.display()))?
    };
    let limits = crate::input::DocumentLimits {
        max_nodes: args.max_document_nodes,
    };
    let document = IntentDocument::parse_within(&text, limits).map_err(|e| e.to_string())?;
    let client = ApiClient::new(&args.server)
        .map_err(|e| e.to_string())?
        .with_token(args.token.clone());
    let colour = Colours::for_stdout();
    let mut total = PlanSummary::default();
    let mut out = std::io::stdout().lock();
    for (path, set) in sets(&document) {
        let plan = plan_set(&client, &path, set, args.prune)
            .await
            .map_err(|e| e.to_string())?;
        print_plan(&mut out, &plan, &colour).map_err(|e| format!("writing the plan: {e}"))?;
        add(&mut total, &plan.summary);
    }
    writeln!(out, "{}", summary_line(&total)).map_err(|e| format!("writing the plan: {e}"))?;
    Ok(total)
}

/// Every set of the document with its API path.
fn sets(document: &IntentDocument) -> Vec<(ResourcePath, &DocIntentSet)> {
    let mut out = Vec::new();
    for project in &document.projects {
        for ca in &project.composite_apps {
            for set in &ca.traffic_intent_sets {
                let address = SetAddress {
                    project: project.metadata.name.clone(),
                    composite_app: ca.metadata.name.clone(),
                    version: ca.spec.version.clone(),
                    set: set.metadata.name.clone(),
                };
                out.push((address.path(), set));
            }
        }
    }
    out
}

/// `POST .../plan` of one set.
pub async fn plan_set(
    client: &ApiClient,
    path: &ResourcePath,
    set: &DocIntentSet,
    prune: bool,
) -> Result<Plan, ApplyError> {
    let url = format!("{}/plan?prune={prune}", path.url());
    let unexpected = |message: String| ApplyError::Unexpected {
        path: url.clone(),
        message,
    };
    let body = serde_json::to_value(set).map_err(|e| unexpected(e.to_string()))?;
    let answer = client
        .request(reqwest::Method::POST, &url, Some(&body))
        .await?
        .unwrap_or_default();
    serde_json::from_value(answer).map_err(|e| unexpected(e.to_string()))
}

fn add(total: &mut PlanSummary, one: &PlanSummary) {
    total.create += one.create;
    total.update += one.update;
    total.unchanged += one.unchanged;
    total.delete += one.delete;
    total.conflict += one.conflict;
    total.invalid += one.invalid;
    total.cluster_errors += one.cluster_errors;
}

/// The last line: what would happen, in numbers.
pub fn summary_line(s: &PlanSummary) -> String {
    let mut line = format!(
        "Plan: {} to create, {} to update, {} to delete, {} unchanged",
        s.create, s.update, s.delete, s.unchanged
    );
    if s.has_errors() {
        line.push_str(&format!(
            "; {} conflicts, {} invalid, {} clusters not planned",
            s.conflict, s.invalid, s.cluster_errors
        ));
    }
    line
}

/// Styles for the diff, empty when the output is not a terminal (or `NO_COLOR` is set).
pub struct Colours {
    header: Style,
    hunk: Style,
    removed: Style,
    added: Style,
    problem: Style,
}

impl Colours {
    pub fn for_stdout() -> Colours {
        let on = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        if on { Colours::on() } else { Colours::off() }
    }

    pub fn on() -> Colours {
        Colours {
            header: Style::new().bold(),
            hunk: AnsiColor::Cyan.on_default(),
            removed: AnsiColor::Red.on_default(),
            added: AnsiColor::Green.on_default(),
            problem: AnsiColor::Yellow.on_default().bold(),
        }
    }

    pub fn off() -> Colours {
        Colours {
            header: Style::new(),
            hunk: Style::new(),
            removed: Style::new(),
            added: Style::new(),
            problem: Style::new(),
        }
    }
}

/// Writes one set's plan: per object that would change, a unified diff; per problem, a line.
pub fn print_plan(out: &mut impl Write, plan: &Plan, colour: &Colours) -> std::io::Result<()> {
    for cluster in &plan.clusters {
        if let Some(error) = &cluster.error {
            let p = &colour.problem;
            writeln!(
                out,
                "{p}error{p:#}: {} on {}: cannot plan: {error}",
                plan.set, cluster.cluster
            )?;
        }
        for object in &cluster.objects {
            print_object(out, &cluster.cluster, object, colour)?;
        }
    }
    Ok(())
}

fn print_object(
    out: &mut impl Write,
    cluster: &str,
    object: &PlanObject,
    colour: &Colours,
) -> std::io::Result<()> {
    let id = format!(
        "{cluster}/{}/{}/{}",
        object.kind, object.namespace, object.name
    );
    match object.action {
        PlanAction::Unchanged => Ok(()),
        PlanAction::Conflict | PlanAction::Invalid => {
            let p = &colour.problem;
            let action = if object.action == PlanAction::Conflict {
                "conflict"
            } else {
                "invalid"
            };
            writeln!(
                out,
                "{p}{action}{p:#}: {id}: {}",
                object.message.as_deref().unwrap_or_default()
            )
        }
        PlanAction::Create | PlanAction::Update | PlanAction::Delete => {
            let before = object.live.as_ref().map(yaml).unwrap_or_default();
            let after = object.desired.as_ref().map(yaml).unwrap_or_default();
            let (from, to) = match object.action {
                PlanAction::Create => ("/dev/null".to_owned(), format!("b/{id}")),
                PlanAction::Delete => (format!("a/{id}"), "/dev/null".to_owned()),
                _ => (format!("a/{id}"), format!("b/{id}")),
            };
            let h = &colour.header;
            writeln!(out, "{h}diff -u {from} {to}{h:#}")?;
            if let Some(message) = &object.message {
                writeln!(out, "# {message}")?;
            }
            let diff = similar::TextDiff::from_lines(&before, &after);
            let text = diff
                .unified_diff()
                .context_radius(3)
                .header(&from, &to)
                .to_string();
            for line in text.lines() {
                let style = if line.starts_with("+++") || line.starts_with("---") {
                    &colour.header
                } else if line.starts_with("@@") {
                    &colour.hunk
                } else if line.starts_with('+') {
                    &colour.added
                } else if line.starts_with('-') {
                    &colour.removed
                } else {
                    writeln!(out, "{line}")?;
                    continue;
                };
                writeln!(out, "{style}{line}{style:#}")?;
            }
            Ok(())
        }
    }
}

/// An object as YAML with its keys sorted, so that live and desired compare line by line.
fn yaml(value: &Value) -> String {
    crate::generate::output::to_yaml(&sorted(value))
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update() -> Plan {
        serde_json::from_value(json!({
            "set": "/v2/projects/shop/composite-apps/storefront/v1/traffic-intent-sets/default",
            "summary": {"create": 0, "update": 1, "unchanged": 0, "delete": 0, "conflict": 0,
                        "invalid": 0, "clusterErrors": 0},
            "clusters": [{"cluster": "c1", "objects": [{
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "namespace": "default", "name": "dr", "action": "update",
                "patch": [{"op": "replace", "path": "/spec/host", "value": "b"}],
                "live": {"metadata": {"name": "dr"}, "spec": {"host": "a"}},
                "desired": {"metadata": {"name": "dr"}, "spec": {"host": "b"}}
            }]}]
        }))
        .unwrap()
    }

    #[test]
    fn a_plain_diff_has_no_escapes_and_a_coloured_one_has() {
        let mut plain = Vec::new();
        print_plan(&mut plain, &update(), &Colours::off()).unwrap();
        let plain = String::from_utf8(plain).unwrap();
        assert!(plain.contains("-  host: a\n"), "{plain}");
        assert!(plain.contains("+  host: b\n"), "{plain}");
        assert!(
            plain.contains("--- a/c1/DestinationRule/default/dr"),
            "{plain}"
        );
        assert!(!plain.contains('\u{1b}'));
        let mut coloured = Vec::new();
        print_plan(&mut coloured, &update(), &Colours::on()).unwrap();
        let coloured = String::from_utf8(coloured).unwrap();
        assert!(coloured.contains("\u{1b}[31m-  host: a"), "{coloured:?}");
    }

    #[test]
    fn the_summary_names_errors_only_when_there_are_some() {
        let mut s = PlanSummary {
            create: 2,
            ..PlanSummary::default()
        };
        assert_eq!(
            summary_line(&s),
            "Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged"
        );
        s.invalid = 1;
        assert!(summary_line(&s).ends_with("; 0 conflicts, 1 invalid, 0 clusters not planned"));
    }
}
