//! Checks of the deployment artefacts under `deploy/`: the Helm chart and the kustomize base must
//! grant the same RBAC rules, those rules must cover exactly the Istio kinds meshintent writes
//! (`meshintent::push::kinds::KINDS`), and both Deployments must probe, listen, run and read
//! their secrets as meshintent needs. Helm is not available here, so the chart's templates are
//! read as text (see [`strip_go_template`]); the kustomize base is rendered with `kubectl
//! kustomize` when kubectl is on PATH.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

use meshintent::push::kinds::KINDS;
use serde_json::Value;

const CHART: &str = "deploy/helm/meshintent";
const BASE: &str = "deploy/kustomize/base";

/// What replaces a template expression inside a value.
const PLACEHOLDER: &str = "__templated__";

/// Verbs meshintent uses (server-side apply is a PATCH; create for clusters that authorize an
/// apply that creates as create). The rules must grant the required ones and nothing else.
const REQUIRED_VERBS: [&str; 4] = ["get", "list", "patch", "delete"];
const ALLOWED_VERBS: [&str; 5] = ["get", "list", "create", "patch", "delete"];

fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// Turns a Helm template into YAML that keeps its literal structure.
///
/// Every `{{ ... }}` action (it may span lines) is cut out. A line left with nothing but actions
/// and whitespace is dropped: control directives (`{{- if }}`, `{{- with }}`, `{{- end }}`) and
/// whole-line output such as `{{- include "meshintent.labels" . | nindent 4 }}`, whose key is
/// then simply null. An action within a value (`name: {{ include "x" . }}`) becomes
/// [`PLACEHOLDER`]. Both branches of a conditional are kept, so the templates must not set the
/// same key in an `if` and its `else` (they use helpers for that); the checks below then read
/// the literal parts of the chart: RBAC rules, probes, ports, security context, env.
fn strip_go_template(template: &str) -> String {
    const ACTION: char = '\u{1}';
    let mut marked = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        marked.push_str(&rest[..start]);
        let length = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed template action in:\n{template}"));
        marked.push(ACTION);
        rest = &rest[start + length + 2..];
    }
    marked.push_str(rest);
    marked
        .lines()
        .filter(|line| {
            let only_actions = line.chars().all(|c| c == ACTION || c.is_whitespace());
            !(line.contains(ACTION) && only_actions)
        })
        .map(|line| line.replace(ACTION, PLACEHOLDER))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The objects of a multi-document YAML text (empty documents skipped).
fn objects(yaml: &str, source: &str) -> Vec<Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("{source} is not valid YAML: {e}\n{yaml}"));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

fn chart_objects(template: &str) -> Vec<Value> {
    let relative = format!("{CHART}/templates/{template}");
    objects(&strip_go_template(&read(&relative)), &relative)
}

fn base_objects(file: &str) -> Vec<Value> {
    let relative = format!("{BASE}/{file}");
    objects(&read(&relative), &relative)
}

/// The single object of a kind.
fn only<'a>(objects: &'a [Value], kind: &str, source: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "{source}: expected one {kind}, found {}",
        found.len()
    );
    found[0]
}

/// A rule with every list sorted, e.g. {"apiGroups": [..], "resources": [..], "verbs": [..]}.
type Rule = BTreeMap<String, Vec<String>>;

/// A ClusterRole's rules, order-insensitive: lists within a rule sorted, rules sorted.
fn normalized_rules(role: &Value, source: &str) -> Vec<Rule> {
    let rules = role["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("{source}: ClusterRole without a rules list"));
    let mut normalized: Vec<Rule> = rules
        .iter()
        .map(|rule| {
            let fields = rule
                .as_object()
                .unwrap_or_else(|| panic!("{source}: a rule is not a mapping: {rule}"));
            fields
                .iter()
                .map(|(field, items)| {
                    let mut items: Vec<String> = items
                        .as_array()
                        .and_then(|items| {
                            items
                                .iter()
                                .map(|i| i.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_else(|| {
                            panic!("{source}: rule field {field} is not a list of strings")
                        });
                    items.sort();
                    items.dedup();
                    (field.clone(), items)
                })
                .collect()
        })
        .collect();
    normalized.sort();
    normalized
}

fn chart_rules() -> Vec<Rule> {
    let source = format!("{CHART}/templates/rbac.yaml");
    normalized_rules(
        only(&chart_objects("rbac.yaml"), "ClusterRole", &source),
        &source,
    )
}

fn base_rules() -> Vec<Rule> {
    let source = format!("{BASE}/clusterrole.yaml");
    normalized_rules(
        only(&base_objects("clusterrole.yaml"), "ClusterRole", &source),
        &source,
    )
}

/// Asserts that the rules grant exactly the (group, plural) pairs of `KINDS`, with the verbs
/// meshintent needs and no others.
fn assert_grants_exactly_the_written_kinds(rules: &[Rule], source: &str) {
    let written: BTreeSet<(String, String)> = KINDS
        .iter()
        .map(|(group, _, plural)| (group.to_string(), plural.to_string()))
        .collect();
    let mut granted = BTreeSet::new();
    for rule in rules {
        let fields: Vec<&str> = rule.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            ["apiGroups", "resources", "verbs"],
            "{source}: rules name API groups, resources and verbs only (no resourceNames, no nonResourceURLs): {rule:?}"
        );
        let verbs = &rule["verbs"];
        for verb in verbs {
            assert!(
                ALLOWED_VERBS.contains(&verb.as_str()),
                "{source}: verb {verb:?} goes beyond what meshintent uses: {rule:?}"
            );
        }
        for verb in REQUIRED_VERBS {
            assert!(
                verbs.iter().any(|v| v == verb),
                "{source}: verb {verb} is missing: {rule:?}"
            );
        }
        for group in &rule["apiGroups"] {
            for resource in &rule["resources"] {
                let pair = (group.clone(), resource.clone());
                assert!(
                    written.contains(&pair),
                    "{source}: grants {resource} in group {group:?}, which meshintent does not write"
                );
                granted.insert(pair);
            }
        }
    }
    assert_eq!(
        granted, written,
        "{source}: must grant every kind meshintent writes"
    );
}

/// Asserts what meshintent needs of its Deployment: probes, port, non-root, secrets by reference.
fn assert_deployment(deployment: &Value, source: &str) {
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("{source}: no containers"));
    let container = containers
        .iter()
        .find(|c| c["name"] == "meshintent")
        .unwrap_or_else(|| panic!("{source}: no container named meshintent"));

    let ports = container["ports"].as_array().cloned().unwrap_or_default();
    assert!(
        ports
            .iter()
            .any(|p| p["containerPort"] == 8080 && p["name"] == "http"),
        "{source}: container port 8080 named http expected, found {ports:?}"
    );
    // A probe's port is a number or the name of a container port.
    let probe = |name: &str| -> (String, u64) {
        let get = &container[name]["httpGet"];
        let port = match &get["port"] {
            Value::String(named) => ports
                .iter()
                .find(|p| p["name"] == named.as_str())
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("{source}: {name} uses unknown port {named}")),
            number => number
                .as_u64()
                .unwrap_or_else(|| panic!("{source}: {name} has no httpGet port")),
        };
        (get["path"].as_str().unwrap_or_default().to_owned(), port)
    };
    assert_eq!(
        probe("livenessProbe"),
        ("/healthz".into(), 8080),
        "{source}: liveness"
    );
    assert_eq!(
        probe("readinessProbe"),
        ("/readyz".into(), 8080),
        "{source}: readiness"
    );

    let non_root = [&pod["securityContext"], &container["securityContext"]]
        .map(|context| context["runAsNonRoot"].as_bool());
    assert!(
        non_root.contains(&Some(true)) && !non_root.contains(&Some(false)),
        "{source}: runAsNonRoot must be true"
    );
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"], true,
        "{source}: read-only root file system"
    );

    let env = container["env"].as_array().cloned().unwrap_or_default();
    let listen = env.iter().find(|e| e["name"] == "MESHINTENT_LISTEN");
    assert_eq!(
        listen.map(|e| &e["value"]),
        Some(&Value::from("0.0.0.0:8080")),
        "{source}: MESHINTENT_LISTEN"
    );
    let from_secret_refs = container["envFrom"]
        .as_array()
        .is_some_and(|sources| sources.iter().any(|s| s.get("secretRef").is_some()));
    for name in ["DATABASE_URL", "MESHINTENT_SECRET_KEY"] {
        match env.iter().find(|e| e["name"] == name) {
            Some(entry) => {
                assert!(
                    entry.get("value").is_none(),
                    "{source}: {name} must not be a literal value"
                );
                let reference = &entry["valueFrom"]["secretKeyRef"];
                assert_eq!(
                    reference["key"], name,
                    "{source}: {name} from its Secret key"
                );
                assert!(
                    reference["name"].is_string(),
                    "{source}: {name} names its Secret"
                );
            }
            None => assert!(
                from_secret_refs,
                "{source}: {name} from neither env nor envFrom.secretRef"
            ),
        }
    }
}

#[test]
fn template_stripping_keeps_the_literal_yaml() {
    let template = r#"{{- if .Values.rbac.create }}
{{/* a comment
   over lines */}}
apiVersion: v1
metadata:
  name: {{ include "x.fullname" . }}
  labels:
    {{- include "x.labels" . | nindent 4 }}
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
{{- end }}
"#;
    let objects = objects(&strip_go_template(template), "sample");
    assert_eq!(objects.len(), 1);
    let metadata = &objects[0]["metadata"];
    assert_eq!(metadata["name"], PLACEHOLDER);
    assert!(metadata["labels"].is_null());
    assert_eq!(metadata["image"], format!("{PLACEHOLDER}:{PLACEHOLDER}"));
}

#[test]
fn chart_and_base_grant_the_same_rules() {
    assert_eq!(
        chart_rules(),
        base_rules(),
        "{CHART}/templates/rbac.yaml and {BASE}/clusterrole.yaml differ"
    );
}

#[test]
fn rules_grant_exactly_the_kinds_meshintent_writes() {
    assert_grants_exactly_the_written_kinds(&chart_rules(), "chart ClusterRole");
    assert_grants_exactly_the_written_kinds(&base_rules(), "kustomize ClusterRole");
}

#[test]
fn chart_binds_the_role_to_its_service_account() {
    let objects = chart_objects("rbac.yaml");
    let binding = only(&objects, "ClusterRoleBinding", "chart rbac.yaml");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
}

#[test]
fn deployments_probe_listen_run_as_non_root_and_read_secrets() {
    let chart = chart_objects("deployment.yaml");
    assert_deployment(only(&chart, "Deployment", "chart"), "chart deployment.yaml");
    let base = base_objects("deployment.yaml");
    assert_deployment(
        only(&base, "Deployment", "base"),
        "kustomize deployment.yaml",
    );
}

#[test]
fn chart_requires_the_secret_settings() {
    let secret = read(&format!("{CHART}/templates/secret.yaml"));
    assert!(secret.starts_with("{{- if not .Values.existingSecret }}"));
    for value in [".Values.database.url", ".Values.secretKey"] {
        assert!(
            secret
                .lines()
                .any(|l| l.contains("required") && l.contains(value)),
            "secret.yaml must fail without {value}"
        );
    }
    let monitor = read(&format!("{CHART}/templates/servicemonitor.yaml"));
    assert!(monitor.starts_with("{{- if .Values.serviceMonitor.enabled }}"));
}

#[test]
fn base_renders_with_kubectl_kustomize() {
    let output = match Command::new("kubectl")
        .arg("kustomize")
        .arg(path(BASE))
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            eprintln!(
                "note: kubectl is not on PATH; skipping the `kubectl kustomize {BASE}` check"
            );
            return;
        }
        Err(e) => panic!("running kubectl: {e}"),
    };
    assert!(
        output.status.success(),
        "kubectl kustomize {BASE} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = objects(
        &String::from_utf8_lossy(&output.stdout),
        "kubectl kustomize output",
    );
    let kinds: BTreeSet<&str> = rendered.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in [
        "Deployment",
        "Service",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Secret",
    ] {
        assert!(
            kinds.contains(kind),
            "rendered base lacks a {kind}: {kinds:?}"
        );
    }

    let deployment = only(&rendered, "Deployment", "rendered base");
    assert_deployment(deployment, "rendered kustomize Deployment");
    assert_eq!(deployment["metadata"]["namespace"], "meshintent");
    // The generated Secret's name carries a hash suffix, which must reach the references.
    let secret = only(&rendered, "Secret", "rendered base")["metadata"]["name"].clone();
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    for entry in env.as_array().into_iter().flatten() {
        if let Some(name) = entry["valueFrom"]["secretKeyRef"].get("name") {
            assert_eq!(name, &secret, "secret reference of {}", entry["name"]);
        }
    }
    let source = "rendered ClusterRole";
    let role = normalized_rules(only(&rendered, "ClusterRole", source), source);
    assert_eq!(role, base_rules());
}
