//! Checks of the deployment artefacts under `deploy/`: the Helm chart and the kustomize base must
//! grant the same RBAC rules, those rules must cover exactly the Istio kinds meshintent writes
//! (`meshintent::istio::IstioKind::ALL`), and both Deployments must probe, listen, run and read
//! their secrets as meshintent needs, access control included (the bootstrap admin token from a
//! Secret, the OIDC and limit settings; no literal token anywhere under `deploy/`). Helm is not
//! available here, so the chart's templates are read as text (see [`strip_go_template`]); the
//! kustomize base is rendered with `kubectl kustomize` when kubectl is on PATH.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use meshintent::auth::token::{PREFIX as TOKEN_PREFIX, looks_like_token};
use meshintent::configuration::DEFAULT_MAX_BODY_BYTES;
use meshintent::istio::IstioKind;
use serde_json::Value;

const CHART: &str = "deploy/helm/meshintent";
const BASE: &str = "deploy/kustomize/base";

/// What replaces a template expression inside a value.
const PLACEHOLDER: &str = "__templated__";

/// Verbs meshintent uses (server-side apply is a PATCH; create for clusters that authorize an
/// apply that creates as create). The rules must grant the required ones and nothing else.
const REQUIRED_VERBS: [&str; 4] = ["get", "list", "patch", "delete"];
const ALLOWED_VERBS: [&str; 5] = ["get", "list", "create", "patch", "delete"];

/// The OIDC settings meshintent reads (`AuthArgs` in `src/main.rs`).
const OIDC_ENV: [&str; 5] = [
    "MESHINTENT_OIDC_ISSUER",
    "MESHINTENT_OIDC_AUDIENCE",
    "MESHINTENT_OIDC_JWKS",
    "MESHINTENT_OIDC_USERNAME_CLAIM",
    "MESHINTENT_OIDC_GROUPS_CLAIM",
];

/// The kustomize base's bootstrap token Secret and its key (the chart's key defaults to the same).
const BASE_TOKEN_SECRET: &str = "meshintent-bootstrap-token";
const TOKEN_KEY: &str = "token";

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

/// The container named meshintent of a Deployment.
fn container<'a>(deployment: &'a Value, source: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|containers| containers.iter().find(|c| c["name"] == "meshintent"))
        .unwrap_or_else(|| panic!("{source}: no container named meshintent"))
}

/// The container's env entries.
fn env_of(deployment: &Value, source: &str) -> Vec<Value> {
    container(deployment, source)["env"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The env entry `name`.
fn env_entry<'a>(env: &'a [Value], name: &str, source: &str) -> &'a Value {
    env.iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{source}: no env entry {name}"))
}

/// The `secretKeyRef` of an env entry that must come from a Secret, never a literal value.
fn secret_key_ref<'a>(env: &'a [Value], name: &str, source: &str) -> &'a Value {
    let entry = env_entry(env, name, source);
    assert!(
        entry.get("value").is_none(),
        "{source}: {name} must not be a literal value"
    );
    let reference = &entry["valueFrom"]["secretKeyRef"];
    assert!(
        reference["name"].is_string() && reference["key"].is_string(),
        "{source}: {name} must come from a secretKeyRef naming its Secret and key: {entry}"
    );
    reference
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

/// The read-only rules beside the Istio kinds, exactly: the analysis lists Namespaces, Services,
/// Pods and Deployments (`src/push/inspect.rs`), the cluster check asks
/// SelfSubjectAccessReviews (`src/push/check.rs`). Secrets are never in the ClusterRole.
fn read_rules() -> Vec<Rule> {
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| -> Rule {
        let sorted = |items: &[&str]| {
            let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        BTreeMap::from([
            ("apiGroups".to_string(), vec![group.to_string()]),
            ("resources".to_string(), sorted(resources)),
            ("verbs".to_string(), sorted(verbs)),
        ])
    };
    vec![
        rule("", &["namespaces", "services", "pods"], &["get", "list"]),
        rule("apps", &["deployments"], &["get", "list"]),
        rule(
            "authorization.k8s.io",
            &["selfsubjectaccessreviews"],
            &["create"],
        ),
    ]
}

/// Whether a rule is about an Istio group (the kinds meshintent writes).
fn is_istio_rule(rule: &Rule) -> bool {
    rule.get("apiGroups")
        .is_some_and(|groups| groups.iter().all(|g| g.ends_with(".istio.io")))
}

/// Asserts that the rules grant exactly the (group, plural) pairs of `IstioKind::ALL`, with the verbs
/// meshintent needs and no others, plus exactly [`read_rules`].
fn assert_grants_exactly_the_written_kinds(rules: &[Rule], source: &str) {
    let mut reads: Vec<Rule> = rules
        .iter()
        .filter(|r| !is_istio_rule(r))
        .cloned()
        .collect();
    reads.sort();
    let mut expected = read_rules();
    expected.sort();
    assert_eq!(
        reads, expected,
        "{source}: besides the Istio kinds, exactly the analysis' and the check's read rules"
    );
    let rules: Vec<Rule> = rules.iter().filter(|r| is_istio_rule(r)).cloned().collect();
    let rules = rules.as_slice();
    let written: BTreeSet<(String, String)> = IstioKind::ALL
        .iter()
        .map(|kind| (kind.group().to_string(), kind.plural().to_string()))
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
    // The bootstrap admin token: an env entry of its own from a secretKeyRef, never a literal.
    secret_key_ref(&env, "MESHINTENT_BOOTSTRAP_TOKEN", source);
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

/// The chart's values.yaml as a value.
fn chart_values() -> Value {
    let relative = format!("{CHART}/values.yaml");
    serde_saphyr::from_str(&read(&relative))
        .unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"))
}

/// The names of a mapping's keys.
fn keys(mapping: &Value) -> BTreeSet<&str> {
    mapping
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn chart_wires_access_control_settings() {
    let chart = chart_objects("deployment.yaml");
    let source = "chart deployment.yaml";
    let env = env_of(only(&chart, "Deployment", source), source);

    let token = secret_key_ref(&env, "MESHINTENT_BOOTSTRAP_TOKEN", source);
    assert_eq!(
        token["name"], PLACEHOLDER,
        "{source}: the token Secret's name"
    );
    assert_eq!(token["key"], PLACEHOLDER, "{source}: the token's key");

    // Plain env from values (each rendered only when set, see the template).
    let settings = OIDC_ENV.iter().chain(&[
        "MESHINTENT_AUTH_FAILURES_PER_MINUTE",
        "MESHINTENT_MAX_BODY_BYTES",
    ]);
    for name in settings {
        let entry = env_entry(&env, name, source);
        assert_eq!(
            entry["value"], PLACEHOLDER,
            "{source}: {name} is a value from values.yaml"
        );
    }

    let values = chart_values();
    let auth = &values["auth"];
    assert_eq!(
        keys(&auth["bootstrapToken"]),
        BTreeSet::from(["create", "existingSecret", "key"]),
        "values.yaml auth.bootstrapToken: no literal token, only where it comes from"
    );
    assert_eq!(auth["bootstrapToken"]["create"], true);
    assert_eq!(auth["bootstrapToken"]["existingSecret"], "");
    assert_eq!(auth["bootstrapToken"]["key"], TOKEN_KEY);
    assert!(
        [
            "issuer",
            "audience",
            "jwks",
            "jwksConfigMap",
            "usernameClaim",
            "groupsClaim"
        ]
        .iter()
        .all(|k| keys(&auth["oidc"]).contains(k)),
        "values.yaml auth.oidc: {:?}",
        keys(&auth["oidc"])
    );
    assert_eq!(auth["oidc"]["issuer"], "", "OIDC is off by default");
    assert_eq!(auth["oidc"]["audience"], "", "OIDC is off by default");
    assert_eq!(
        values["limits"]["maxBodyBytes"], DEFAULT_MAX_BODY_BYTES as u64,
        "values.yaml limits.maxBodyBytes shows meshintent's default"
    );

    let base = base_objects("deployment.yaml");
    let base_env = env_of(only(&base, "Deployment", "base"), "base");
    assert_eq!(
        auth["failuresPerMinute"].as_u64().map(|n| n.to_string()),
        env_entry(&base_env, "MESHINTENT_AUTH_FAILURES_PER_MINUTE", "base")["value"]
            .as_str()
            .map(str::to_owned),
        "chart and base show the same MESHINTENT_AUTH_FAILURES_PER_MINUTE"
    );
}

#[test]
fn chart_generates_the_bootstrap_token_and_keeps_it() {
    let relative = format!("{CHART}/templates/bootstrap-token-secret.yaml");
    let template = read(&relative);
    assert!(
        template.starts_with(
            "{{- if and .Values.auth.bootstrapToken.create (not .Values.auth.bootstrapToken.existingSecret) }}"
        ),
        "{relative}: only without existingSecret"
    );
    // Kept on upgrades: the Secret is read back from the cluster before generating a new one.
    assert!(
        template.contains(r#"lookup "v1" "Secret" .Release.Namespace"#),
        "{relative}: looks the existing Secret up"
    );
    // 43 alphanumerics are base64url characters carrying 43 * log2(62) > 256 bits, the shape
    // meshintent requires (`mi_` and 43 base64url characters).
    assert!(
        template.contains(r#"printf "mi_%s" (randAlphaNum 43)"#),
        "{relative}: generates mi_ and 43 random characters"
    );
    assert!(43.0 * 62f64.log2() >= 256.0);
    let objects = objects(&strip_go_template(&template), &relative);
    let secret = only(&objects, "Secret", &relative);
    assert_eq!(keys(&secret["data"]), BTreeSet::from([PLACEHOLDER]));

    let notes = read(&format!("{CHART}/templates/NOTES.txt"));
    for needed in [
        "get secret",
        "-o jsonpath='{.data.",
        "base64 -d",
        "meshintent token create --admin",
    ] {
        assert!(
            notes.contains(needed),
            "NOTES.txt tells how to get a token: {needed}"
        );
    }
}

#[test]
fn base_wires_access_control_settings() {
    let raw = read(&format!("{BASE}/deployment.yaml"));
    let base = base_objects("deployment.yaml");
    let source = "kustomize deployment.yaml";
    let env = env_of(only(&base, "Deployment", source), source);

    let token = secret_key_ref(&env, "MESHINTENT_BOOTSTRAP_TOKEN", source);
    assert_eq!(token["name"], BASE_TOKEN_SECRET);
    assert_eq!(token["key"], TOKEN_KEY);

    // OIDC is off in the base (a placeholder issuer would stop every pod); each setting is
    // there as a commented example for an overlay.
    for name in OIDC_ENV {
        assert!(
            env.iter().all(|e| e["name"] != name),
            "{source}: {name} must not be active in the base"
        );
        assert!(
            raw.contains(&format!("# - name: {name}")),
            "{source}: {name} shown as a commented example"
        );
    }
    assert_eq!(
        env_entry(&env, "MESHINTENT_MAX_BODY_BYTES", source)["value"],
        DEFAULT_MAX_BODY_BYTES.to_string(),
        "{source}: MESHINTENT_MAX_BODY_BYTES shows meshintent's default"
    );
    env_entry(&env, "MESHINTENT_AUTH_FAILURES_PER_MINUTE", source);

    let kustomization = base_objects("kustomization.yaml");
    let generators = kustomization[0]["secretGenerator"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let generator = generators
        .iter()
        .find(|g| g["name"] == BASE_TOKEN_SECRET)
        .unwrap_or_else(|| panic!("kustomization.yaml generates no {BASE_TOKEN_SECRET}"));
    let literals: Vec<&str> = generator["literals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        literals,
        [format!("{TOKEN_KEY}=CHANGE-ME")],
        "{BASE_TOKEN_SECRET}: a placeholder meshintent refuses, replaced in an overlay"
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[test]
fn no_literal_api_token_in_deployment_files() {
    let mut files = vec![path("docs/deploy.md")];
    files_under(&path("deploy"), &mut files);
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (at, _) in text.match_indices(TOKEN_PREFIX) {
            let candidate: String = text[at..].chars().take(TOKEN_PREFIX.len() + 43).collect();
            assert!(
                !looks_like_token(&candidate),
                "{} holds what looks like an API token at byte {at}: generate tokens, never write them down",
                file.display()
            );
        }
    }
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
    // The generated Secrets' names carry a hash suffix, which must reach the references: every
    // secretKeyRef names a rendered Secret that has the key.
    let secrets: BTreeMap<&str, &Value> = rendered
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .filter_map(|o| Some((o["metadata"]["name"].as_str()?, &o["data"])))
        .collect();
    let env = env_of(deployment, "rendered base");
    for entry in &env {
        let reference = &entry["valueFrom"]["secretKeyRef"];
        if let Some(name) = reference["name"].as_str() {
            let data = secrets.get(name).unwrap_or_else(|| {
                panic!(
                    "{} refers to Secret {name}, which the base does not render (it has {:?})",
                    entry["name"],
                    secrets.keys()
                )
            });
            let key = reference["key"].as_str().unwrap_or_default();
            assert!(
                data.get(key).is_some(),
                "Secret {name} lacks key {key} for {}",
                entry["name"]
            );
        }
    }
    // The bootstrap token Secret holds a placeholder that meshintent refuses: the base never
    // ships a usable admin token.
    let reference = secret_key_ref(&env, "MESHINTENT_BOOTSTRAP_TOKEN", "rendered base");
    let name = reference["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with(&format!("{BASE_TOKEN_SECRET}-")),
        "the bootstrap token comes from the generated {BASE_TOKEN_SECRET}, not {name}"
    );
    let encoded = secrets[name][TOKEN_KEY].as_str().unwrap_or_default();
    let placeholder = BASE64
        .decode(encoded.split_whitespace().collect::<String>())
        .expect("the bootstrap token is base64");
    let placeholder = String::from_utf8(placeholder).expect("the bootstrap token is text");
    assert!(
        placeholder.contains("CHANGE-ME") && !looks_like_token(&placeholder),
        "the base's bootstrap token must be a CHANGE-ME placeholder, not a token"
    );
    let source = "rendered ClusterRole";
    let role = normalized_rules(only(&rendered, "ClusterRole", source), source);
    assert_eq!(role, base_rules());
}

/// The Role(s) letting meshintent `get` Secrets in the gateway namespaces: exactly `get` on
/// secrets, bound to meshintent's service account, in the chart (one per
/// `rbac.gatewayNamespaces`, default istio-system) and in deploy/kustomize/gateway-secrets.
#[test]
fn secrets_are_only_read_by_name_in_the_gateway_namespaces() {
    let expected: Vec<Rule> = vec![BTreeMap::from([
        ("apiGroups".to_string(), vec![String::new()]),
        ("resources".to_string(), vec!["secrets".to_string()]),
        ("verbs".to_string(), vec!["get".to_string()]),
    ])];
    let chart = chart_objects("rbac.yaml");
    let role = only(&chart, "Role", "chart rbac.yaml");
    assert_eq!(normalized_rules(role, "chart Role"), expected);
    let binding = only(&chart, "RoleBinding", "chart rbac.yaml");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    let values = read(&format!("{CHART}/values.yaml"));
    let values: Value = serde_saphyr::from_str(&values).expect("values.yaml parses");
    assert_eq!(
        values["rbac"]["gatewayNamespaces"],
        serde_json::json!(["istio-system"])
    );
    for rule in chart_rules().iter().chain(base_rules().iter()) {
        assert!(
            !rule["resources"].iter().any(|r| r == "secrets"),
            "the ClusterRoles grant no Secrets: {rule:?}"
        );
    }
    let dir = "deploy/kustomize/gateway-secrets";
    let role = objects(&read(&format!("{dir}/role.yaml")), dir);
    assert_eq!(
        normalized_rules(only(&role, "Role", dir), dir),
        expected,
        "{dir}/role.yaml and the chart's Role differ"
    );
    let binding = objects(&read(&format!("{dir}/rolebinding.yaml")), dir);
    let binding = only(&binding, "RoleBinding", dir);
    assert_eq!(binding["roleRef"]["name"], "meshintent-gateway-secrets");
    assert_eq!(binding["subjects"][0]["name"], "meshintent");
    assert_eq!(binding["subjects"][0]["namespace"], "meshintent");
    let kustomization: Value =
        serde_saphyr::from_str(&read(&format!("{dir}/kustomization.yaml"))).expect("parses");
    assert_eq!(kustomization["namespace"], "istio-system");
}
