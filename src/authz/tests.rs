//! One test per semantic rule of the evaluator, and a property test against a reference
//! evaluation written independently below (nested loops, a literal reading of Istio's
//! "Authorization Policy" reference).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::istio::{ObjectMeta, RuleFrom, RuleTo, WorkloadSelector};

const SLEEP: &str = "cluster.local/ns/shop/sa/sleep";

fn workload() -> AuthzWorkload {
    AuthzWorkload {
        namespace: "web".into(),
        labels: BTreeMap::from([("app".into(), "httpbin".into())]),
    }
}

fn request() -> Request {
    Request {
        principal: Some(SLEEP.into()),
        http: true,
        method: Some("GET".into()),
        path: Some("/status/200".into()),
        host: Some("httpbin.web.svc.cluster.local".into()),
        port: Some(8000),
        sni: None,
    }
}

fn policy(
    name: &str,
    action: AuthorizationAction,
    rules: Vec<Rule>,
) -> Typed<AuthorizationPolicySpec> {
    let mut meta = ObjectMeta::new(name, "web");
    meta.annotations.insert(
        crate::generate::naming::ANNOTATION_INTENT.into(),
        "/v2/projects/p/composite-apps/ca/v1/traffic-intent-sets/s/inbound-intents/httpbin".into(),
    );
    Typed::new(
        meta,
        AuthorizationPolicySpec {
            selector: Some(WorkloadSelector {
                match_labels: BTreeMap::from([("app".into(), "httpbin".into())]),
            }),
            action: Some(action),
            rules,
            ..AuthorizationPolicySpec::default()
        },
    )
}

fn from_principals(principals: &[&str]) -> Vec<RuleFrom> {
    vec![RuleFrom {
        source: Some(Source {
            principals: principals.iter().map(|s| s.to_string()).collect(),
            ..Source::default()
        }),
    }]
}

fn to_op(op: Operation) -> Vec<RuleTo> {
    vec![RuleTo {
        operation: Some(op),
    }]
}

fn rule(from: Vec<RuleFrom>, to: Vec<RuleTo>) -> Rule {
    Rule {
        from,
        to,
        when: Vec::new(),
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

fn paths(paths: &[&str]) -> Rule {
    rule(
        Vec::new(),
        to_op(Operation {
            paths: strings(paths),
            ..Operation::default()
        }),
    )
}

fn allows(policies: &[Typed<AuthorizationPolicySpec>], request: &Request) -> bool {
    evaluate(policies, &workload(), request).allowed
}

#[test]
fn no_policy_allows() {
    let d = evaluate(&[], &workload(), &request());
    assert!(d.allowed);
    assert_eq!(d.reason, AuthzReason::NoAllowPolicy);
    assert_eq!(d.rule, None);
}

#[test]
fn a_matching_allow_rule_allows_and_is_named_with_its_intent() {
    let p = policy(
        "httpbin-allow",
        AuthorizationAction::Allow,
        vec![
            rule(
                from_principals(&["cluster.local/ns/other/sa/x"]),
                Vec::new(),
            ),
            rule(from_principals(&[SLEEP]), Vec::new()),
        ],
    );
    let d = evaluate([&p], &workload(), &request());
    assert!(d.allowed);
    assert_eq!(d.reason, AuthzReason::AllowMatched);
    let r = d.rule.unwrap();
    assert_eq!(
        (r.policy.as_str(), r.rule_index),
        ("httpbin-allow", Some(1))
    );
    assert!(r.intent.unwrap().ends_with("/inbound-intents/httpbin"));
}

#[test]
fn an_allow_policy_that_matches_nothing_denies_and_an_allow_policy_without_rules_denies_all() {
    let other = policy(
        "httpbin-allow",
        AuthorizationAction::Allow,
        vec![rule(
            from_principals(&["cluster.local/ns/other/sa/x"]),
            Vec::new(),
        )],
    );
    let d = evaluate([&other], &workload(), &request());
    assert!(!d.allowed);
    assert_eq!(d.reason, AuthzReason::NoAllowMatched);
    assert_eq!(d.allow_policies[0].policy, "httpbin-allow");
    let deny_all = policy("httpbin-deny-all", AuthorizationAction::Allow, Vec::new());
    assert!(!allows(&[deny_all], &request()));
    // A rule with neither from, to nor when matches every request.
    let everything = policy("all", AuthorizationAction::Allow, vec![Rule::default()]);
    assert!(allows(&[everything], &request()));
}

#[test]
fn deny_is_evaluated_before_allow() {
    let allow = policy("a", AuthorizationAction::Allow, vec![Rule::default()]);
    let deny = policy("d", AuthorizationAction::Deny, vec![paths(&["/status*"])]);
    let d = evaluate([&allow, &deny], &workload(), &request());
    assert!(!d.allowed);
    assert_eq!(d.reason, AuthzReason::DenyMatched);
    assert_eq!(d.rule.unwrap().policy, "d");
    // A DENY rule that does not match leaves the ALLOW decision.
    let deny = policy("d", AuthorizationAction::Deny, vec![paths(&["/admin*"])]);
    assert!(allows(&[allow, deny], &request()));
}

#[test]
fn custom_is_evaluated_first_and_counted_as_a_denial() {
    let custom = policy("c", AuthorizationAction::Custom, vec![Rule::default()]);
    let deny = policy("d", AuthorizationAction::Deny, vec![Rule::default()]);
    let d = evaluate([&deny, &custom], &workload(), &request());
    assert_eq!(d.reason, AuthzReason::CustomMatched);
    assert_eq!(d.rule.unwrap().policy, "c");
}

#[test]
fn audit_policies_never_decide() {
    let audit = policy("audit", AuthorizationAction::Audit, vec![Rule::default()]);
    let d = evaluate([&audit], &workload(), &request());
    assert!(d.allowed);
    assert_eq!(d.reason, AuthzReason::NoAllowPolicy);
}

#[test]
fn policies_apply_by_namespace_selector_and_root_namespace() {
    let deny_all = policy("x", AuthorizationAction::Allow, Vec::new());
    let mut elsewhere = deny_all.clone();
    elsewhere.metadata.namespace = "other".into();
    assert!(
        allows(&[elsewhere], &request()),
        "another namespace's policy"
    );
    let mut other_labels = deny_all.clone();
    other_labels.spec.selector = Some(WorkloadSelector {
        match_labels: BTreeMap::from([("app".into(), "sleep".into())]),
    });
    assert!(
        allows(&[other_labels], &request()),
        "a selector the workload does not match"
    );
    let mut namespace_wide = deny_all.clone();
    namespace_wide.spec.selector = None;
    assert!(
        !allows(std::slice::from_ref(&namespace_wide), &request()),
        "no selector: the whole namespace"
    );
    let mut root = namespace_wide.clone();
    root.metadata.namespace = ROOT_NAMESPACE.into();
    assert!(
        !allows(&[root], &request()),
        "root namespace: every namespace"
    );
    let mut targeted = namespace_wide;
    targeted.spec.target_refs = vec![crate::istio::PolicyTargetReference {
        group: None,
        kind: "Gateway".into(),
        name: "gw".into(),
    }];
    assert!(
        allows(&[targeted], &request()),
        "targetRefs never select a sidecar"
    );
}

#[test]
fn paths_match_exactly_by_prefix_by_suffix_and_by_presence() {
    for (pattern, path, expected) in [
        ("/status/200", "/status/200", true),
        ("/status", "/status/200", false),
        ("/status*", "/status/200", true),
        ("/stat*", "/status/200", true),
        ("/admin*", "/status/200", false),
        ("*/200", "/status/200", true),
        ("*/404", "/status/200", false),
        ("*", "/status/200", true),
    ] {
        let p = policy("p", AuthorizationAction::Allow, vec![paths(&[pattern])]);
        let mut r = request();
        r.path = Some(path.into());
        assert_eq!(allows(&[p], &r), expected, "{pattern} against {path}");
    }
    let not = policy(
        "p",
        AuthorizationAction::Allow,
        vec![rule(
            Vec::new(),
            to_op(Operation {
                not_paths: strings(&["/status*"]),
                ..Operation::default()
            }),
        )],
    );
    assert!(!allows(&[not], &request()), "notPaths");
}

#[test]
fn principals_match_with_wildcards_and_not_principals() {
    for (pattern, expected) in [
        (SLEEP, true),
        ("cluster.local/ns/shop/*", true),
        ("*/sa/sleep", true),
        ("*", true),
        ("cluster.local/ns/shop/sa/other", false),
        ("other.domain/*", false),
    ] {
        let p = policy(
            "p",
            AuthorizationAction::Allow,
            vec![rule(from_principals(&[pattern]), Vec::new())],
        );
        assert_eq!(allows(&[p], &request()), expected, "{pattern}");
    }
    // Plain text has no principal: `*` (presence) does not match it, notPrincipals does.
    let mut plain = request();
    plain.principal = None;
    let p = policy(
        "p",
        AuthorizationAction::Allow,
        vec![rule(from_principals(&["*"]), Vec::new())],
    );
    assert!(!allows(&[p], &plain));
    let not = policy(
        "p",
        AuthorizationAction::Allow,
        vec![rule(
            vec![RuleFrom {
                source: Some(Source {
                    not_principals: strings(&[SLEEP]),
                    ..Source::default()
                }),
            }],
            Vec::new(),
        )],
    );
    assert!(!allows(std::slice::from_ref(&not), &request()));
    assert!(allows(&[not], &plain));
}

#[test]
fn namespaces_come_from_the_principal() {
    let ns = |namespaces: &[&str], not: &[&str]| {
        policy(
            "p",
            AuthorizationAction::Allow,
            vec![rule(
                vec![RuleFrom {
                    source: Some(Source {
                        namespaces: strings(namespaces),
                        not_namespaces: strings(not),
                        ..Source::default()
                    }),
                }],
                Vec::new(),
            )],
        )
    };
    assert!(allows(&[ns(&["shop"], &[])], &request()));
    assert!(allows(&[ns(&["sh*"], &[])], &request()));
    assert!(!allows(&[ns(&["web"], &[])], &request()));
    assert!(!allows(&[ns(&[], &["shop"])], &request()));
    assert!(allows(&[ns(&[], &["web"])], &request()));
}

#[test]
fn methods_ports_and_hosts() {
    let op = |op: Operation| {
        policy(
            "p",
            AuthorizationAction::Allow,
            vec![rule(Vec::new(), to_op(op))],
        )
    };
    let methods = |m: &[&str]| Operation {
        methods: strings(m),
        ..Operation::default()
    };
    assert!(allows(&[op(methods(&["GET", "POST"]))], &request()));
    assert!(!allows(&[op(methods(&["POST"]))], &request()));
    assert!(
        !allows(&[op(methods(&["get"]))], &request()),
        "methods are case-sensitive"
    );
    assert!(!allows(
        &[op(Operation {
            not_methods: strings(&["GET"]),
            ..Operation::default()
        })],
        &request()
    ));
    let ports = |p: &[&str], not: &[&str]| Operation {
        ports: strings(p),
        not_ports: strings(not),
        ..Operation::default()
    };
    assert!(allows(&[op(ports(&["8000"], &[]))], &request()));
    assert!(!allows(&[op(ports(&["9000"], &[]))], &request()));
    assert!(!allows(&[op(ports(&[], &["8000"]))], &request()));
    let hosts = |h: &[&str]| Operation {
        hosts: strings(h),
        ..Operation::default()
    };
    assert!(
        allows(&[op(hosts(&["HTTPBIN.web.svc.cluster.local"]))], &request()),
        "hosts ignore case"
    );
    assert!(allows(&[op(hosts(&["*.svc.cluster.local"]))], &request()));
    assert!(!allows(&[op(hosts(&["other.example.com"]))], &request()));
    // One `to` entry is enough; within an entry every field must match.
    let two = policy(
        "p",
        AuthorizationAction::Allow,
        vec![rule(
            Vec::new(),
            vec![
                RuleTo {
                    operation: Some(Operation {
                        methods: strings(&["GET"]),
                        paths: strings(&["/admin"]),
                        ..Operation::default()
                    }),
                },
                RuleTo {
                    operation: Some(Operation {
                        methods: strings(&["GET"]),
                        paths: strings(&["/status*"]),
                        ..Operation::default()
                    }),
                },
            ],
        )],
    );
    assert_eq!(
        evaluate([&two], &workload(), &request())
            .rule
            .unwrap()
            .rule_index,
        Some(0)
    );
}

#[test]
fn when_conditions_on_the_server_name() {
    let sni = |values: &[&str]| {
        policy(
            "p",
            AuthorizationAction::Allow,
            vec![Rule {
                from: from_principals(&[SLEEP]),
                to: Vec::new(),
                when: vec![Condition {
                    key: "connection.sni".into(),
                    values: strings(values),
                    not_values: Vec::new(),
                }],
            }],
        )
    };
    let mut tls = request();
    tls.http = false;
    tls.sni = Some("httpbin.web.cluster02.mesh.example.com".into());
    assert!(allows(
        &[sni(&["httpbin.web.cluster02.mesh.example.com"])],
        &tls
    ));
    assert!(allows(&[sni(&["*.mesh.example.com"])], &tls));
    assert!(!allows(&[sni(&["other.example.com"])], &tls));
    tls.sni = None;
    assert!(!allows(&[sni(&["*"])], &tls), "no server name");
}

#[test]
fn tcp_traffic_never_matches_http_fields_in_allow_and_ignores_them_in_deny() {
    let mut tcp = request();
    tcp.http = false;
    tcp.method = None;
    tcp.path = None;
    tcp.host = None;
    let http_allow = policy(
        "a",
        AuthorizationAction::Allow,
        vec![rule(
            from_principals(&[SLEEP]),
            to_op(Operation {
                methods: strings(&["GET"]),
                ..Operation::default()
            }),
        )],
    );
    assert!(!allows(&[http_allow], &tcp));
    let allow_all = policy("a", AuthorizationAction::Allow, vec![Rule::default()]);
    let http_deny = policy(
        "d",
        AuthorizationAction::Deny,
        vec![rule(
            from_principals(&[SLEEP]),
            to_op(Operation {
                paths: strings(&["/admin*"]),
                ports: strings(&["8000"]),
                ..Operation::default()
            }),
        )],
    );
    let d = evaluate([&allow_all, &http_deny], &workload(), &tcp);
    assert_eq!(
        d.reason,
        AuthzReason::DenyMatched,
        "the port still decides, the path is dropped"
    );
    let mut other_port = tcp.clone();
    other_port.port = Some(9000);
    assert!(evaluate([&allow_all, &http_deny], &workload(), &other_port).allowed);
}

// ---- The property test ------------------------------------------------------------------

/// Istio's documented string match, written out character by character.
fn reference_str(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    if p.len() == 1 && p[0] == '*' {
        return !v.is_empty();
    }
    if p.last() == Some(&'*') {
        let stem = &p[..p.len() - 1];
        return v.len() >= stem.len() && (0..stem.len()).all(|i| v[i] == stem[i]);
    }
    if p.first() == Some(&'*') {
        let stem = &p[1..];
        let off = v.len().wrapping_sub(stem.len());
        return v.len() >= stem.len() && (0..stem.len()).all(|i| v[off + i] == stem[i]);
    }
    p == v
}

/// "values" and "notValues" of one attribute: every listed constraint must hold.
fn reference_field(values: &[String], not: &[String], attr: Option<&str>, wild: bool) -> bool {
    let m = |p: &String, a: &str| if wild { reference_str(p, a) } else { p == a };
    let mut ok = true;
    if !values.is_empty() {
        let mut any = false;
        if let Some(a) = attr {
            for p in values {
                if m(p, a) {
                    any = true;
                }
            }
        }
        ok &= any;
    }
    if let Some(a) = attr {
        for p in not {
            if m(p, a) {
                ok = false;
            }
        }
    }
    ok
}

fn reference_rule(rule: &Rule, action: AuthorizationAction, r: &Request) -> bool {
    let ns = r
        .principal
        .as_deref()
        .and_then(|p| p.split("/ns/").nth(1))
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned());
    let mut from_ok = rule.from.is_empty();
    for f in &rule.from {
        let s = f.source.clone().unwrap_or_default();
        if reference_field(
            &s.principals,
            &s.not_principals,
            r.principal.as_deref(),
            true,
        ) && reference_field(&s.namespaces, &s.not_namespaces, ns.as_deref(), true)
        {
            from_ok = true;
        }
    }
    let mut to_ok = rule.to.is_empty();
    for t in &rule.to {
        let o = t.operation.clone().unwrap_or_default();
        let http_fields = !(o.methods.is_empty()
            && o.not_methods.is_empty()
            && o.paths.is_empty()
            && o.not_paths.is_empty());
        if !r.http && http_fields && action == AuthorizationAction::Allow {
            return false; // an ALLOW rule with HTTP-only fields never matches TCP
        }
        let port = r.port.map(|p| p.to_string());
        let mut ok = reference_field(&o.ports, &o.not_ports, port.as_deref(), false);
        if r.http {
            ok &= reference_field(&o.methods, &o.not_methods, r.method.as_deref(), false);
            ok &= reference_field(&o.paths, &o.not_paths, r.path.as_deref(), true);
        }
        if ok {
            to_ok = true;
        }
    }
    from_ok && to_ok
}

/// Which (policy, rule) decides, by the documented order, with plain loops.
fn reference(
    policies: &[Typed<AuthorizationPolicySpec>],
    w: &AuthzWorkload,
    r: &Request,
) -> (bool, Option<(String, usize)>) {
    let applies = |p: &Typed<AuthorizationPolicySpec>| {
        let ns_ok = p.metadata.namespace == w.namespace || p.metadata.namespace == "istio-system";
        let mut sel_ok = true;
        if let Some(s) = &p.spec.selector {
            for (k, v) in &s.match_labels {
                if w.labels.get(k) != Some(v) {
                    sel_ok = false;
                }
            }
        }
        ns_ok && sel_ok
    };
    for action in [AuthorizationAction::Custom, AuthorizationAction::Deny] {
        for p in policies {
            if applies(p) && p.spec.action == Some(action) {
                for (i, rule) in p.spec.rules.iter().enumerate() {
                    if reference_rule(rule, action, r) {
                        return (false, Some((p.metadata.name.clone(), i)));
                    }
                }
            }
        }
    }
    let mut any_allow = false;
    for p in policies {
        if applies(p) && p.spec.action == Some(AuthorizationAction::Allow) {
            any_allow = true;
            for (i, rule) in p.spec.rules.iter().enumerate() {
                if reference_rule(rule, AuthorizationAction::Allow, r) {
                    return (true, Some((p.metadata.name.clone(), i)));
                }
            }
        }
    }
    (!any_allow, None)
}

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(pool), 0..3)
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

const PRINCIPALS: &[&str] = &[
    "cluster.local/ns/shop/sa/sleep",
    "cluster.local/ns/shop/sa/other",
    "two.example.org/ns/web/sa/sleep",
    "cluster.local/ns/shop/*",
    "*/sa/sleep",
    "*",
];
const NAMESPACES: &[&str] = &["shop", "web", "sh*", "*"];
const METHODS: &[&str] = &["GET", "POST", "DELETE"];
const PATHS: &[&str] = &["/status", "/status*", "*/200", "/admin*", "*", "/"];
const PORTS: &[&str] = &["8000", "9000"];

fn arb_rule() -> impl Strategy<Value = Rule> {
    let source = (
        pick(PRINCIPALS),
        pick(PRINCIPALS),
        pick(NAMESPACES),
        pick(NAMESPACES),
    )
        .prop_map(
            |(principals, not_principals, namespaces, not_namespaces)| RuleFrom {
                source: Some(Source {
                    principals,
                    not_principals,
                    namespaces,
                    not_namespaces,
                    ..Source::default()
                }),
            },
        );
    let operation = (
        pick(METHODS),
        pick(METHODS),
        pick(PATHS),
        pick(PATHS),
        pick(PORTS),
        pick(PORTS),
    )
        .prop_map(
            |(methods, not_methods, paths, not_paths, ports, not_ports)| RuleTo {
                operation: Some(Operation {
                    methods,
                    not_methods,
                    paths,
                    not_paths,
                    ports,
                    not_ports,
                    ..Operation::default()
                }),
            },
        );
    (
        prop::collection::vec(source, 0..3),
        prop::collection::vec(operation, 0..3),
    )
        .prop_map(|(from, to)| Rule {
            from,
            to,
            when: Vec::new(),
        })
}

fn arb_policy() -> impl Strategy<Value = Typed<AuthorizationPolicySpec>> {
    (
        prop::sample::select(
            &[
                AuthorizationAction::Allow,
                AuthorizationAction::Deny,
                AuthorizationAction::Audit,
                AuthorizationAction::Custom,
            ][..],
        ),
        prop::sample::select(&["web", "shop", "istio-system"][..]),
        prop::option::of(prop::sample::select(&["httpbin", "sleep"][..])),
        prop::collection::vec(arb_rule(), 0..4),
        0u32..1000,
    )
        .prop_map(|(action, namespace, app, rules, n)| {
            Typed::new(
                ObjectMeta::new(format!("p{n}"), namespace),
                AuthorizationPolicySpec {
                    selector: app.map(|a| WorkloadSelector {
                        match_labels: BTreeMap::from([("app".to_owned(), a.to_owned())]),
                    }),
                    action: Some(action),
                    rules,
                    ..AuthorizationPolicySpec::default()
                },
            )
        })
}

fn arb_request() -> impl Strategy<Value = Request> {
    (
        prop::option::of(prop::sample::select(
            &[
                "cluster.local/ns/shop/sa/sleep",
                "cluster.local/ns/shop/sa/other",
                "two.example.org/ns/web/sa/sleep",
                "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
            ][..],
        )),
        any::<bool>(),
        prop::sample::select(METHODS),
        prop::sample::select(&["/status", "/status/200", "/admin/x", "/", "/200"][..]),
        prop::sample::select(&[8000u16, 9000][..]),
    )
        .prop_map(|(principal, http, method, path, port)| Request {
            principal: principal.map(str::to_owned),
            http,
            method: http.then(|| method.to_owned()),
            path: http.then(|| path.to_owned()),
            host: None,
            port: Some(port),
            sni: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_evaluator_agrees_with_a_literal_reading_of_istio(
        policies in prop::collection::vec(arb_policy(), 0..5),
        request in arb_request(),
    ) {
        let w = workload();
        let decision = evaluate(&policies, &w, &request);
        let (allowed, deciding) = reference(&policies, &w, &request);
        prop_assert_eq!(decision.allowed, allowed);
        let named = decision.rule.map(|r| (r.policy, r.rule_index.unwrap()));
        prop_assert_eq!(named, deciding);
    }
}
