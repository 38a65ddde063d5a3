//! The typed Istio structs against the real Istio 1.30 CRD schemas: realistic objects of every
//! kind validate and round-trip; broken ones are rejected by the validator (and by the Python
//! reference tool, when it can run here).

#[path = "support/crd_schema.rs"]
mod crd_schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use meshintent::istio::*;
use serde_json::{Value, json};

fn map<const N: usize>(entries: [(&str, &str); N]) -> BTreeMap<String, String> {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.into_iter().map(str::to_owned).collect()
}

fn meta(name: &str, namespace: &str) -> ObjectMeta {
    let mut metadata = ObjectMeta::new(name, namespace);
    metadata.labels = map([("app.kubernetes.io/managed-by", "meshintent")]);
    metadata
}

fn destination(host: &str, subset: Option<&str>, port: Option<u32>) -> Destination {
    Destination {
        host: host.into(),
        subset: subset.map(str::to_owned),
        port: port.map(|number| PortSelector { number }),
    }
}

fn service_entry() -> IstioObject {
    Typed::new(
        meta("external-mongo", "data"),
        ServiceEntrySpec {
            hosts: strings(["mymongodb.somedomain"]),
            addresses: strings(["192.192.192.192/24"]),
            ports: vec![ServicePort {
                number: 27018,
                protocol: Some("MONGO".into()),
                name: "mongodb".into(),
                target_port: None,
            }],
            location: Some(Location::MeshExternal),
            resolution: Some(Resolution::Static),
            endpoints: vec![
                WorkloadEntry {
                    address: Some("2.2.2.2".into()),
                    labels: map([("region", "eu-west"), ("tier", "primary")]),
                    ..WorkloadEntry::default()
                },
                WorkloadEntry {
                    address: Some("3.3.3.3".into()),
                    ports: [("mongodb".to_owned(), 27019)].into(),
                    labels: map([("region", "eu-central")]),
                    locality: Some("eu-central-1/zone-a".into()),
                    weight: Some(10),
                    ..WorkloadEntry::default()
                },
            ],
            export_to: strings(["."]),
            ..ServiceEntrySpec::default()
        },
    )
    .into()
}

fn destination_rule() -> IstioObject {
    let tls = ClientTlsSettings {
        mode: Some(ClientTlsMode::IstioMutual),
        ..Default::default()
    };
    Typed::new(
        meta("reviews", "bookinfo"),
        DestinationRuleSpec {
            host: "reviews.bookinfo.svc.cluster.local".into(),
            traffic_policy: Some(TrafficPolicy {
                load_balancer: Some(LoadBalancerSettings {
                    consistent_hash: Some(ConsistentHashLb {
                        http_cookie: Some(HttpCookie {
                            name: "user".into(),
                            path: Some("/".into()),
                            ttl: Some("3600s".into()),
                            attributes: vec![],
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                connection_pool: Some(ConnectionPoolSettings {
                    tcp: Some(TcpSettings {
                        max_connections: Some(100),
                        connect_timeout: Some("30ms".into()),
                        ..Default::default()
                    }),
                    http: Some(HttpSettings {
                        http1_max_pending_requests: Some(64),
                        http2_max_requests: Some(1000),
                        max_requests_per_connection: Some(10),
                        max_retries: Some(3),
                        idle_timeout: Some("1h".into()),
                        ..Default::default()
                    }),
                }),
                outlier_detection: Some(OutlierDetection {
                    consecutive_5xx_errors: Some(7),
                    consecutive_gateway_errors: Some(5),
                    interval: Some("5m".into()),
                    base_ejection_time: Some("15m".into()),
                    max_ejection_percent: Some(50),
                    min_health_percent: Some(30),
                    ..Default::default()
                }),
                tls: Some(tls.clone()),
                port_level_settings: vec![PortTrafficPolicy {
                    port: Some(PortSelector { number: 9080 }),
                    load_balancer: Some(LoadBalancerSettings {
                        simple: Some(SimpleLb::LeastRequest),
                        ..Default::default()
                    }),
                    tls: Some(tls),
                    ..Default::default()
                }],
            }),
            subsets: vec![
                Subset {
                    name: "v1".into(),
                    labels: map([("version", "v1")]),
                    traffic_policy: None,
                },
                Subset {
                    name: "v2".into(),
                    labels: map([("version", "v2")]),
                    traffic_policy: Some(TrafficPolicy {
                        load_balancer: Some(LoadBalancerSettings {
                            simple: Some(SimpleLb::RoundRobin),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                },
            ],
            export_to: strings([".", "istio-system"]),
            workload_selector: None,
        },
    )
    .into()
}

fn virtual_service() -> IstioObject {
    let route = |subset: &str, weight: i32| HttpRouteDestination {
        destination: destination(
            "reviews.bookinfo.svc.cluster.local",
            Some(subset),
            Some(9080),
        ),
        weight: Some(weight),
        headers: None,
    };
    Typed::new(
        meta("reviews", "bookinfo"),
        VirtualServiceSpec {
            hosts: strings(["reviews.bookinfo.svc.cluster.local", "login.bookinfo.com"]),
            gateways: strings(["mesh", "bookinfo/bookinfo-gateway"]),
            http: vec![
                HttpRoute {
                    name: Some("jason".into()),
                    matches: vec![HttpMatchRequest {
                        name: Some("jason-catalog".into()),
                        uri: Some(StringMatch::prefix("/wpcatalog")),
                        method: Some(StringMatch::exact("GET")),
                        headers: [("end-user".to_owned(), StringMatch::exact("jason"))].into(),
                        query_params: [("v".to_owned(), StringMatch::regex("^v[0-9]+$"))].into(),
                        ..Default::default()
                    }],
                    route: vec![route("v2", 75), route("v3", 25)],
                    timeout: Some("10s".into()),
                    retries: Some(HttpRetry {
                        attempts: Some(3),
                        per_try_timeout: Some("2s".into()),
                        retry_on: Some("5xx,connect-failure,refused-stream".into()),
                        ..Default::default()
                    }),
                    fault: Some(HttpFaultInjection {
                        delay: Some(FaultDelay {
                            fixed_delay: Some("5s".into()),
                            percentage: Some(Percent { value: 0.1 }),
                            ..Default::default()
                        }),
                        abort: Some(FaultAbort {
                            http_status: Some(503),
                            percentage: Some(Percent { value: 2.5 }),
                            ..Default::default()
                        }),
                    }),
                    mirror: Some(destination(
                        "reviews-shadow.bookinfo.svc.cluster.local",
                        None,
                        None,
                    )),
                    mirror_percentage: Some(Percent { value: 50.0 }),
                    headers: Some(Headers {
                        request: Some(HeaderOperations {
                            set: map([("x-routed-by", "meshintent")]),
                            ..Default::default()
                        }),
                        response: None,
                    }),
                    ..Default::default()
                },
                HttpRoute {
                    name: Some("default".into()),
                    route: vec![route("v1", 100)],
                    ..Default::default()
                },
            ],
            tls: vec![TlsRoute {
                matches: vec![TlsMatchAttributes {
                    sni_hosts: strings(["login.bookinfo.com"]),
                    port: Some(443),
                    gateways: strings(["bookinfo/bookinfo-gateway"]),
                    ..Default::default()
                }],
                route: vec![RouteDestination {
                    destination: destination("login.bookinfo.svc.cluster.local", None, None),
                    weight: None,
                }],
            }],
            tcp: vec![TcpRoute {
                matches: vec![L4MatchAttributes {
                    port: Some(27017),
                    destination_subnets: strings(["10.0.0.0/16"]),
                    ..Default::default()
                }],
                route: vec![RouteDestination {
                    destination: destination("mongo.backend.svc.cluster.local", None, Some(5555)),
                    weight: Some(100),
                }],
            }],
            export_to: vec![],
        },
    )
    .into()
}

fn gateway() -> IstioObject {
    Typed::new(
        meta("bookinfo-gateway", "bookinfo"),
        GatewaySpec {
            selector: map([("istio", "ingressgateway")]),
            servers: vec![
                Server {
                    port: ServerPort {
                        number: 443,
                        protocol: "HTTPS".into(),
                        name: "https".into(),
                    },
                    hosts: strings(["bookinfo/bookinfo.example.com"]),
                    tls: Some(ServerTlsSettings {
                        mode: Some(ServerTlsMode::Mutual),
                        credential_name: Some("bookinfo-credential".into()),
                        subject_alt_names: strings([
                            "spiffe://cluster.local/ns/bookinfo/sa/client",
                        ]),
                        min_protocol_version: Some(TlsProtocol::TlsV1_2),
                        ..Default::default()
                    }),
                    name: Some("bookinfo-https".into()),
                    bind: None,
                    default_endpoint: None,
                },
                Server {
                    port: ServerPort {
                        number: 15443,
                        protocol: "TLS".into(),
                        name: "tls".into(),
                    },
                    hosts: strings(["*.local"]),
                    tls: Some(ServerTlsSettings {
                        mode: Some(ServerTlsMode::AutoPassthrough),
                        ..Default::default()
                    }),
                    name: None,
                    bind: None,
                    default_endpoint: None,
                },
            ],
        },
    )
    .into()
}

fn authorization_policy() -> IstioObject {
    Typed::new(
        meta("httpbin-allow", "foo"),
        AuthorizationPolicySpec {
            selector: Some(WorkloadSelector {
                match_labels: map([("app", "httpbin")]),
            }),
            action: Some(AuthorizationAction::Allow),
            rules: vec![Rule {
                from: vec![
                    RuleFrom {
                        source: Some(Source {
                            principals: strings(["cluster.local/ns/default/sa/sleep"]),
                            ..Default::default()
                        }),
                    },
                    RuleFrom {
                        source: Some(Source {
                            namespaces: strings(["test"]),
                            not_ip_blocks: strings(["203.0.113.0/24"]),
                            ..Default::default()
                        }),
                    },
                ],
                to: vec![RuleTo {
                    operation: Some(Operation {
                        methods: strings(["GET", "HEAD"]),
                        paths: strings(["/info*", "/headers"]),
                        ports: strings(["8000"]),
                        ..Default::default()
                    }),
                }],
                when: vec![Condition {
                    key: "request.auth.claims[iss]".into(),
                    values: strings(["https://accounts.google.com"]),
                    not_values: vec![],
                }],
            }],
            ..Default::default()
        },
    )
    .into()
}

fn peer_authentication() -> IstioObject {
    Typed::new(
        meta("finance-strict", "finance"),
        PeerAuthenticationSpec {
            selector: Some(WorkloadSelector {
                match_labels: map([("app", "finance")]),
            }),
            mtls: Some(MutualTls {
                mode: Some(MtlsMode::Strict),
            }),
            port_level_mtls: [(
                8080,
                MutualTls {
                    mode: Some(MtlsMode::Disable),
                },
            )]
            .into(),
        },
    )
    .into()
}

fn all_objects() -> Vec<IstioObject> {
    vec![
        service_entry(),
        destination_rule(),
        virtual_service(),
        gateway(),
        authorization_policy(),
        peer_authentication(),
    ]
}

fn to_json(object: &IstioObject) -> Value {
    serde_json::to_value(object).expect("an IstioObject serializes to JSON")
}

/// Asserts that validation fails with an error containing every one of `needles`.
#[track_caller]
fn assert_invalid(object: &Value, needles: &[&str]) -> Vec<String> {
    let errors = crd_schema::validate(object).expect_err("the object must be rejected");
    assert!(
        errors.iter().any(|e| needles.iter().all(|n| e.contains(n))),
        "no error contains all of {needles:?}: {errors:#?}"
    );
    errors
}

#[test]
fn every_kind_validates_against_its_crd_and_round_trips() {
    for object in all_objects() {
        let json = to_json(&object);
        if let Err(errors) = crd_schema::validate(&json) {
            panic!("{} is invalid: {errors:#?}\n{json:#}", object.kind());
        }
        let back: IstioObject = serde_json::from_value(json).expect("parses back from JSON");
        assert_eq!(back, object);

        let yaml = serde_saphyr::to_string(&object).expect("serializes to YAML");
        let back: IstioObject = serde_saphyr::from_str(&yaml)
            .unwrap_or_else(|e| panic!("parses back from YAML: {e}\n{yaml}"));
        assert_eq!(back, object, "YAML round trip of\n{yaml}");
    }
    let values: Vec<Value> = all_objects().iter().map(to_json).collect();
    crd_schema::validate_all(&values).expect("all objects are valid");
}

#[test]
fn envelope_and_field_names_are_exactly_the_crd_names() {
    let dr = to_json(&destination_rule());
    let keys: Vec<&String> = dr.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    assert_eq!(dr["apiVersion"], "networking.istio.io/v1");
    assert_eq!(dr["kind"], "DestinationRule");
    assert_eq!(
        dr["spec"].as_object().unwrap().keys().next().unwrap(),
        "host"
    );
    let tp = &dr["spec"]["trafficPolicy"];
    assert_eq!(tp["outlierDetection"]["consecutive5xxErrors"], 7);
    assert_eq!(tp["connectionPool"]["http"]["http1MaxPendingRequests"], 64);
    assert_eq!(tp["connectionPool"]["http"]["http2MaxRequests"], 1000);
    assert_eq!(tp["tls"]["mode"], "ISTIO_MUTUAL");

    let vs = to_json(&virtual_service());
    assert_eq!(
        vs["spec"]["http"][0]["match"][0]["uri"],
        json!({"prefix": "/wpcatalog"})
    );
    assert_eq!(
        vs["spec"]["http"][0]["mirrorPercentage"],
        json!({"value": 50.0})
    );
    assert_eq!(
        vs["spec"]["tls"][0]["match"][0]["sniHosts"],
        json!(["login.bookinfo.com"])
    );

    let pa = to_json(&peer_authentication());
    assert_eq!(pa["apiVersion"], "security.istio.io/v1");
    assert_eq!(
        pa["spec"]["portLevelMtls"],
        json!({"8080": {"mode": "DISABLE"}})
    );
    assert_eq!(
        to_json(&gateway())["spec"]["servers"][1]["tls"]["mode"],
        "AUTO_PASSTHROUGH"
    );

    let kinds: Vec<_> = all_objects()
        .iter()
        .map(|o| (o.api_version(), o.kind(), o.plural()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("networking.istio.io/v1", "ServiceEntry", "serviceentries"),
            (
                "networking.istio.io/v1",
                "DestinationRule",
                "destinationrules"
            ),
            (
                "networking.istio.io/v1",
                "VirtualService",
                "virtualservices"
            ),
            ("networking.istio.io/v1", "Gateway", "gateways"),
            (
                "security.istio.io/v1",
                "AuthorizationPolicy",
                "authorizationpolicies"
            ),
            (
                "security.istio.io/v1",
                "PeerAuthentication",
                "peerauthentications"
            ),
        ]
    );
    let mut se = service_entry();
    se.metadata_mut()
        .annotations
        .insert("note".into(), "x".into());
    assert_eq!(se.metadata().annotations["note"], "x");
}

#[test]
fn serialization_is_deterministic() {
    let first: Vec<String> = all_objects()
        .iter()
        .map(|o| serde_saphyr::to_string(o).unwrap())
        .collect();
    let second: Vec<String> = all_objects()
        .iter()
        .map(|o| serde_saphyr::to_string(o).unwrap())
        .collect();
    assert_eq!(first, second);
}

/// The negative cases, each a mutation of a valid object, with what the error must mention.
fn broken_objects() -> Vec<(&'static str, Value, Vec<&'static str>)> {
    let dr = to_json(&destination_rule());
    let mut cases = Vec::new();

    let mut unknown = dr.clone();
    unknown["spec"]["trafficPolicy"]["loadbalancer"] = json!({"simple": "RANDOM"});
    cases.push((
        "unknown-field",
        unknown,
        vec![
            "/spec/trafficPolicy",
            r#"unknown field "loadbalancer""#,
            "loadBalancer",
        ],
    ));

    let mut bad_enum = dr.clone();
    bad_enum["spec"]["trafficPolicy"]["tls"]["mode"] = json!("SUPER_MUTUAL");
    cases.push((
        "enum",
        bad_enum,
        vec![
            "/spec/trafficPolicy/tls/mode",
            r#""SUPER_MUTUAL" is not one of"#,
            "ISTIO_MUTUAL",
        ],
    ));

    let mut bad_type = to_json(&service_entry());
    bad_type["spec"]["ports"][0]["number"] = json!("27018");
    cases.push(("type", bad_type, vec!["/spec/ports/0/number", "integer"]));

    let mut string_match = to_json(&virtual_service());
    string_match["spec"]["http"][0]["match"][0]["uri"] = json!({"exact": "/a", "prefix": "/b"});
    cases.push((
        "string-match-one-of",
        string_match,
        vec![
            "/spec/http/0/match/0/uri",
            "at most one of",
            "exact",
            "prefix",
        ],
    ));

    let mut hash = dr.clone();
    hash["spec"]["trafficPolicy"]["loadBalancer"]["consistentHash"]["httpHeaderName"] =
        json!("x-user");
    cases.push((
        "consistent-hash-one-of",
        hash,
        vec![
            "/spec/trafficPolicy/loadBalancer/consistentHash",
            "at most one of",
            "httpCookie",
        ],
    ));

    let mut lb = dr.clone();
    lb["spec"]["trafficPolicy"]["loadBalancer"]["simple"] = json!("RANDOM");
    cases.push((
        "load-balancer-one-of",
        lb,
        vec!["/spec/trafficPolicy/loadBalancer", "at most one of"],
    ));

    let mut name = dr.clone();
    name["metadata"]["name"] = json!("Not_Valid");
    cases.push((
        "metadata-name",
        name,
        vec!["/metadata/name", "Not_Valid", "DNS-1123"],
    ));

    let mut null = dr.clone();
    null["spec"]["host"] = Value::Null;
    cases.push(("null", null, vec!["/spec/host", "null"]));

    let mut duplicate_port = to_json(&service_entry());
    duplicate_port["spec"]["ports"] =
        json!([{"number": 27018, "name": "mongodb"}, {"number": 27019, "name": "mongodb"}]);
    cases.push((
        "list-map-key",
        duplicate_port,
        vec!["/spec/ports/1", "duplicate"],
    ));

    let mut label = to_json(&gateway());
    label["metadata"]["labels"]["bad key!"] = json!("x");
    cases.push((
        "label-key",
        label,
        vec!["/metadata/labels/bad key!", "key name"],
    ));

    let mut top_level = to_json(&peer_authentication());
    top_level["specs"] = json!({});
    cases.push((
        "top-level-field",
        top_level,
        vec!["/", r#"unknown field "specs""#],
    ));

    let mut version = to_json(&gateway());
    version["apiVersion"] = json!("networking.istio.io/v2");
    cases.push(("version", version, vec!["/apiVersion", "v2", "v1beta1"]));

    let mut required = to_json(&authorization_policy());
    required["spec"]["rules"][0]["when"][0] = json!({"values": ["x"]});
    cases.push((
        "required",
        required,
        vec!["/spec/rules/0/when/0", r#""key" is a required property"#],
    ));
    cases
}

#[test]
fn broken_objects_are_rejected_with_a_path() {
    for (case, object, needles) in broken_objects() {
        let errors = assert_invalid(&object, &needles);
        println!("{case}: {errors:?}");
    }
}

#[test]
fn nullable_fields_accept_null_and_other_served_versions_validate() {
    let mut dr = to_json(&destination_rule());
    dr["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] = Value::Null;
    crd_schema::validate(&dr).expect("consecutive5xxErrors is nullable");

    dr["apiVersion"] = json!("networking.istio.io/v1beta1");
    crd_schema::validate(&dr).expect("v1beta1 is served with the same schema");

    let errors = crd_schema::validate_all(&[to_json(&gateway()), json!({"apiVersion": "v1"})])
        .expect_err("the second object is broken");
    assert!(errors.iter().all(|e| e.starts_with("[1] ")), "{errors:?}");
}

#[test]
fn strict_deserialization_rejects_unknown_missing_and_foreign() {
    let parse = |v: Value| serde_json::from_value::<IstioObject>(v).map_err(|e| e.to_string());
    let dr = to_json(&destination_rule());

    let mut unknown = dr.clone();
    unknown["spec"]["trafficPolicy"]["loadbalancer"] = json!({});
    let error = parse(unknown).expect_err("unknown spec field");
    assert!(error.contains("loadbalancer"), "{error}");

    let mut unknown_top = dr.clone();
    unknown_top["status"] = json!({});
    assert!(parse(unknown_top).is_err(), "unknown top-level field");

    let mut unknown_meta = dr.clone();
    unknown_meta["metadata"]["uid"] = json!("1");
    assert!(parse(unknown_meta).is_err(), "unknown metadata field");

    let mut missing = dr.clone();
    missing.as_object_mut().unwrap().remove("spec");
    let error = parse(missing).expect_err("missing spec");
    assert!(error.contains("spec"), "{error}");

    let mut missing_host = dr.clone();
    missing_host["spec"].as_object_mut().unwrap().remove("host");
    assert!(parse(missing_host).is_err(), "missing spec.host");

    let mut kind = dr.clone();
    kind["kind"] = json!("Sidecar");
    assert!(parse(kind).unwrap_err().contains("Sidecar"));

    let mut version = dr.clone();
    version["apiVersion"] = json!("networking.istio.io/v1beta1");
    assert!(parse(version).is_err(), "only v1 is modelled");

    let mut wrong_group = dr;
    wrong_group["apiVersion"] = json!("security.istio.io/v1");
    assert!(
        parse(wrong_group).is_err(),
        "DestinationRule is not a security kind"
    );

    let yaml = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: a\n  namespace: b\nspec:\n  mtls:\n    mode: STRICT\n    extra: 1\n";
    assert!(
        serde_saphyr::from_str::<IstioObject>(yaml).is_err(),
        "unknown field in YAML"
    );
}

// ------------------------------------------------------------------------------ Python tool

const PYTHON_TOOL: &str = "/work/shared/tools/validate_istio.py";

/// A Python interpreter with jsonschema, pyyaml and cel-python, if there is one.
fn python() -> Option<PathBuf> {
    let candidates = [PathBuf::from("/tmp/v/bin/python"), PathBuf::from("python3")];
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import jsonschema, yaml, celpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshintent-istio-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

fn run_tool(python: &Path, files: &[PathBuf]) -> (i32, String) {
    let output = Command::new(python)
        .arg(PYTHON_TOOL)
        .args(files)
        .env(
            "ISTIO_CRDS",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/istio-crds/crd-all.gen.yaml"
            ),
        )
        .output()
        .expect("run validate_istio.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn python_reference_tool_agrees() {
    let Some(python) = python() else {
        println!(
            "NOTE: skipping the validate_istio.py cross-check: python3 with jsonschema, yaml and celpy is not available"
        );
        return;
    };
    if !Path::new(PYTHON_TOOL).exists() {
        println!("NOTE: skipping the validate_istio.py cross-check: {PYTHON_TOOL} not found");
        return;
    }
    let dir = scratch_dir();
    println!("scratch: {}", dir.display());

    let documents: Vec<String> = all_objects()
        .iter()
        .map(|o| serde_saphyr::to_string(o).expect("YAML"))
        .collect();
    let valid = dir.join("valid.yaml");
    std::fs::write(&valid, documents.join("---\n")).unwrap();
    let (code, output) = run_tool(&python, std::slice::from_ref(&valid));
    assert_eq!(
        code, 0,
        "validate_istio.py rejected the valid objects:\n{output}"
    );
    assert!(output.contains("6 objects, 6 OK"), "{output}");

    let mut files = Vec::new();
    for (case, object, _) in broken_objects() {
        let file = dir.join(format!("{case}.yaml"));
        std::fs::write(&file, serde_saphyr::to_string(&object).expect("YAML")).unwrap();
        files.push((case, file));
    }
    let paths: Vec<PathBuf> = files.iter().map(|(_, f)| f.clone()).collect();
    let (code, output) = run_tool(&python, &paths);
    assert_eq!(code, 1, "{output}");
    for (case, file) in &files {
        let marker = format!("ERROR {}#", file.display());
        assert!(
            output.contains(&marker),
            "validate_istio.py accepted case {case}:\n{output}"
        );
    }
    if std::env::var_os("KEEP_SCRATCH").is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
}
