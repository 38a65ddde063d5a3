//! The intent document (SPEC section 5): the resource tree as one YAML or JSON file, for git,
//! offline rendering and declarative apply. Every value and rule is checked exactly as the API
//! checks it, with the same messages; pointers lead into the document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::app::{CompositeAppSpec, ProjectSpec, TrafficIntentSetSpec};
use super::client::ClientSpec;
use super::envelopes::{App, Cluster, OutboundIntent, RouteIntent, SecurityIntent, SpecDefaults};
use super::inbound::InboundIntentSpec;
use super::model::{ClientModel, InboundModel, IntentSetModel, SetAddress};
use super::names::Name;
use super::resource::Metadata;
use super::violations::{FieldError, Violations, prefixed};
use super::{rules, tenancy};

/// A whole intent tree in one document: clusters, and projects with everything under them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntentDocument {
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    #[serde(default)]
    pub projects: Vec<DocProject>,
}

/// A project with its composite apps.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DocProject {
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: ProjectSpec,
    #[serde(default)]
    pub composite_apps: Vec<DocCompositeApp>,
}

/// A composite app version with its apps and traffic intent sets.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DocCompositeApp {
    pub metadata: Metadata,
    pub spec: CompositeAppSpec,
    #[serde(default)]
    pub apps: Vec<App>,
    #[serde(default)]
    pub traffic_intent_sets: Vec<DocIntentSet>,
}

/// A traffic intent set with all its intents.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DocIntentSet {
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: TrafficIntentSetSpec,
    #[serde(default)]
    pub inbound_intents: Vec<DocInboundIntent>,
    #[serde(default)]
    pub outbound_intents: Vec<OutboundIntent>,
    #[serde(default)]
    pub route_intents: Vec<RouteIntent>,
}

/// An inbound intent with its clients.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DocInboundIntent {
    pub metadata: Metadata,
    pub spec: InboundIntentSpec,
    #[serde(default)]
    pub clients: Vec<DocClient>,
}

/// A client with its security intents.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DocClient {
    pub metadata: Metadata,
    pub spec: ClientSpec,
    #[serde(default)]
    pub security_intents: Vec<SecurityIntent>,
}

/// A set of the document, ready to render, with the document pointer of each of its resources.
#[derive(Clone, Debug)]
pub struct DocumentSet {
    pub model: IntentSetModel,
    /// Pointer of the set in the document, e.g. `/projects/0/compositeApps/0/trafficIntentSets/0`.
    pub pointer: String,
    pub inbound_pointers: BTreeMap<Name, String>,
    /// Pointers of clients by (inbound intent, client).
    pub client_pointers: BTreeMap<(Name, Name), String>,
    pub outbound_pointers: BTreeMap<Name, String>,
    pub route_pointers: BTreeMap<Name, String>,
    pub app_pointers: BTreeMap<Name, String>,
}

impl IntentDocument {
    /// Fills defaults and checks every rule; returns each set ready to render, or every field
    /// that is wrong (pointers into the document). Reading the text is `crate::input`'s job.
    pub fn resolve(&mut self) -> Result<Vec<DocumentSet>, Vec<FieldError>> {
        let mut v = Violations::new();
        self.normalize();
        check_unique(
            self.clusters.iter().map(|c| c.metadata.name.to_string()),
            "/clusters",
            "cluster",
            &mut v,
        );
        let clusters: BTreeMap<Name, _> = self
            .clusters
            .iter()
            .map(|c| (c.metadata.name.clone(), c.spec.clone()))
            .collect();
        for (i, cluster) in self.clusters.iter().enumerate() {
            let mut cv = Violations::new();
            cluster.spec.check_write_only(&mut cv);
            v.extend(prefixed(
                &format!("/clusters/{i}"),
                cv.into_result().err().unwrap_or_default(),
            ));
        }
        check_unique(
            self.projects.iter().map(|p| p.metadata.name.to_string()),
            "/projects",
            "project",
            &mut v,
        );
        let mut sets = Vec::new();
        // Tenancy as the API enforces it: each namespace in one project, apps in their own.
        let mut owners: BTreeMap<&Name, &Name> = BTreeMap::new();
        for (p, project) in self.projects.iter().enumerate() {
            v.extend(prefixed(
                &format!("/projects/{p}"),
                tenancy::check_project_namespaces(&project.spec, &clusters),
            ));
            for (i, ns) in project.spec.namespaces.iter().enumerate() {
                if let Some(owner) = owners.insert(ns, &project.metadata.name)
                    && owner != &project.metadata.name
                {
                    v.check(
                        true,
                        format!("/projects/{p}/spec/namespaces/{i}"),
                        format!("namespace \"{ns}\" belongs to project \"{owner}\" as well"),
                    );
                }
            }
        }
        for (p, project) in self.projects.iter().enumerate() {
            let owned: Vec<String> = project
                .spec
                .namespaces
                .iter()
                .map(|n| n.to_string())
                .collect();
            let pp = format!("/projects/{p}/compositeApps");
            check_unique(
                project
                    .composite_apps
                    .iter()
                    .map(|c| format!("{}\" version \"{}", c.metadata.name, c.spec.version)),
                &pp,
                "composite app",
                &mut v,
            );
            for (c, ca) in project.composite_apps.iter().enumerate() {
                let cp = format!("{pp}/{c}");
                check_unique(
                    ca.apps.iter().map(|a| a.metadata.name.to_string()),
                    &format!("{cp}/apps"),
                    "app",
                    &mut v,
                );
                let mut app_pointers = BTreeMap::new();
                for (a, app) in ca.apps.iter().enumerate() {
                    let ap = format!("{cp}/apps/{a}");
                    v.extend(prefixed(&ap, rules::check_app(&app.spec, &clusters)));
                    // Offline, a project that declares no namespaces is not restricted (there are
                    // no other tenants in a file); the API always enforces ownership.
                    if !owned.is_empty() {
                        v.extend(prefixed(
                            &ap,
                            tenancy::check_app_namespace(&app.spec, &project.metadata.name, &owned),
                        ));
                    }
                    app_pointers.insert(app.metadata.name.clone(), ap);
                }
                check_unique(
                    ca.traffic_intent_sets
                        .iter()
                        .map(|s| s.metadata.name.to_string()),
                    &format!("{cp}/trafficIntentSets"),
                    "traffic intent set",
                    &mut v,
                );
                for (s, set) in ca.traffic_intent_sets.iter().enumerate() {
                    let address = SetAddress {
                        project: project.metadata.name.clone(),
                        composite_app: ca.metadata.name.clone(),
                        version: ca.spec.version.clone(),
                        set: set.metadata.name.clone(),
                    };
                    let pointer = format!("{cp}/trafficIntentSets/{s}");
                    let doc_set = build_set(
                        address,
                        &pointer,
                        set,
                        ca,
                        &clusters,
                        app_pointers.clone(),
                        &mut v,
                    );
                    sets.push(doc_set);
                }
            }
        }
        v.into_result()?;
        Ok(sets)
    }

    /// Fills the defaults the API fills on write, so the document renders like the API.
    fn normalize(&mut self) {
        for project in &mut self.projects {
            for ca in &mut project.composite_apps {
                for app in &mut ca.apps {
                    app.spec = app.spec.clone().with_name_defaults(&app.metadata.name);
                }
                for set in &mut ca.traffic_intent_sets {
                    for inbound in &mut set.inbound_intents {
                        inbound.spec = inbound
                            .spec
                            .clone()
                            .with_name_defaults(&inbound.metadata.name);
                    }
                }
            }
        }
    }
}

fn check_unique(names: impl Iterator<Item = String>, at: &str, noun: &str, v: &mut Violations) {
    let mut seen = BTreeMap::new();
    for (i, name) in names.enumerate() {
        if let Some(first) = seen.insert(name.clone(), i) {
            v.add(
                format!("{at}/{i}/metadata/name"),
                format!("{noun} \"{name}\" is defined twice (also at {at}/{first})"),
            );
        }
    }
}

fn build_set(
    address: SetAddress,
    pointer: &str,
    set: &DocIntentSet,
    ca: &DocCompositeApp,
    clusters: &BTreeMap<Name, super::cluster::ClusterSpec>,
    app_pointers: BTreeMap<Name, String>,
    v: &mut Violations,
) -> DocumentSet {
    let mut model = IntentSetModel::new(address);
    model.clusters = clusters.clone();
    model.apps = ca
        .apps
        .iter()
        .map(|a| (a.metadata.name.clone(), a.spec.clone()))
        .collect();
    let mut doc = DocumentSet {
        model: IntentSetModel::new(model.address.clone()),
        pointer: pointer.to_owned(),
        inbound_pointers: BTreeMap::new(),
        client_pointers: BTreeMap::new(),
        outbound_pointers: BTreeMap::new(),
        route_pointers: BTreeMap::new(),
        app_pointers,
    };
    // Inbound, outbound and route intents share one name space, as in the API.
    let intent_names = set
        .inbound_intents
        .iter()
        .enumerate()
        .map(|(i, x)| (format!("{pointer}/inboundIntents/{i}"), &x.metadata.name))
        .chain(
            set.outbound_intents
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("{pointer}/outboundIntents/{i}"), &x.metadata.name)),
        )
        .chain(
            set.route_intents
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("{pointer}/routeIntents/{i}"), &x.metadata.name)),
        );
    let mut seen: BTreeMap<&Name, String> = BTreeMap::new();
    for (at, name) in intent_names {
        if let Some(first) = seen.get(name) {
            v.add(
                format!("{at}/metadata/name"),
                format!("an intent named \"{name}\" is defined twice (also at {first}); inbound, outbound and route intents share names"),
            );
        } else {
            seen.insert(name, at);
        }
    }
    for (i, inbound) in set.inbound_intents.iter().enumerate() {
        let ip = format!("{pointer}/inboundIntents/{i}");
        check_unique(
            inbound.clients.iter().map(|c| c.metadata.name.to_string()),
            &format!("{ip}/clients"),
            "client",
            v,
        );
        let clients = inbound
            .clients
            .iter()
            .enumerate()
            .map(|(c, client)| {
                check_unique(
                    client
                        .security_intents
                        .iter()
                        .map(|s| s.metadata.name.to_string()),
                    &format!("{ip}/clients/{c}/securityIntents"),
                    "security intent",
                    v,
                );
                (
                    client.metadata.name.clone(),
                    ClientModel {
                        spec: client.spec.clone(),
                        security_intents: client
                            .security_intents
                            .iter()
                            .map(|s| (s.metadata.name.clone(), s.spec.clone()))
                            .collect(),
                    },
                )
            })
            .collect();
        model.inbound.insert(
            inbound.metadata.name.clone(),
            InboundModel {
                spec: inbound.spec.clone(),
                clients,
            },
        );
        for (c, client) in inbound.clients.iter().enumerate() {
            doc.client_pointers.insert(
                (inbound.metadata.name.clone(), client.metadata.name.clone()),
                format!("{ip}/clients/{c}"),
            );
        }
        doc.inbound_pointers
            .insert(inbound.metadata.name.clone(), ip);
    }
    for (i, outbound) in set.outbound_intents.iter().enumerate() {
        model
            .outbound
            .insert(outbound.metadata.name.clone(), outbound.spec.clone());
        doc.outbound_pointers.insert(
            outbound.metadata.name.clone(),
            format!("{pointer}/outboundIntents/{i}"),
        );
    }
    for (i, route) in set.route_intents.iter().enumerate() {
        model
            .routes
            .insert(route.metadata.name.clone(), route.spec.clone());
        doc.route_pointers.insert(
            route.metadata.name.clone(),
            format!("{pointer}/routeIntents/{i}"),
        );
    }
    // The same rules, resource by resource, as the API applies on each write; the look-ups
    // between resources are built once for the whole set.
    let checks = rules::SetRules::new(&model);
    for (i, inbound) in set.inbound_intents.iter().enumerate() {
        let ip = format!("{pointer}/inboundIntents/{i}");
        let name = &inbound.metadata.name;
        v.extend(prefixed(&ip, checks.check_inbound(name)));
        for (c, client) in inbound.clients.iter().enumerate() {
            let cp = format!("{ip}/clients/{c}");
            v.extend(prefixed(
                &cp,
                checks.check_client(name, &client.metadata.name),
            ));
            for (s, rule) in client.security_intents.iter().enumerate() {
                v.extend(prefixed(
                    &format!("{cp}/securityIntents/{s}"),
                    checks.check_security_intent(name, &client.metadata.name, &rule.metadata.name),
                ));
            }
        }
    }
    for (name, at) in &doc.outbound_pointers {
        v.extend(prefixed(at, checks.check_outbound(name)));
    }
    for (name, at) in &doc.route_pointers {
        v.extend(prefixed(at, checks.check_route(name)));
    }
    doc.model = model;
    doc
}

/// Errors of a document as `field: message` lines.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = r#"
clusters:
  - metadata: {name: cluster01}
    spec: {identity: cluster01.mesh.example.com, istio: {ingressGateway: {address: 198.51.100.10}}}
projects:
  - metadata: {name: shop}
    compositeApps:
      - metadata: {name: storefront}
        spec: {version: v1}
        apps:
          - metadata: {name: httpbin}
            spec: {namespace: default, placement: {clusters: [cluster01]}}
          - metadata: {name: sleep}
            spec: {namespace: default, placement: {clusters: [cluster01]}}
        trafficIntentSets:
          - metadata: {name: default}
            inboundIntents:
              - metadata: {name: httpbin}
                spec: {app: httpbin, serviceName: httpbin, port: 8000, protocol: HTTP}
                clients:
                  - metadata: {name: sleep}
                    spec: {app: sleep}
                    securityIntents:
                      - metadata: {name: status-only}
                        spec: {rules: [{methods: [GET], paths: [/status]}]}
            outboundIntents: []
            routeIntents: []
"#;

    fn errors_of(text: &str) -> Vec<FieldError> {
        let parsed = IntentDocument::parse(text);
        match parsed.map(|mut d| d.resolve()) {
            Ok(Err(errors)) => errors,
            Err(crate::error::Error::Invalid { errors, .. })
            | Err(crate::error::Error::BadRequest { errors, .. }) => errors,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn declared_namespaces_bind_apps_offline_too() {
        let owning = SPEC_EXAMPLE.replace(
            "  - metadata: {name: shop}\n",
            "  - metadata: {name: shop}\n    spec: {namespaces: [other]}\n",
        );
        let errors = errors_of(&owning);
        assert_eq!(
            errors[0].field, "/projects/0/compositeApps/0/apps/0/spec/namespace",
            "{errors:?}"
        );
    }

    #[test]
    fn the_spec_example_resolves() {
        let mut doc = IntentDocument::parse(SPEC_EXAMPLE).unwrap();
        let sets = doc.resolve().unwrap();
        assert_eq!(sets.len(), 1);
        let model = &sets[0].model;
        assert_eq!(model.address.set.as_str(), "default");
        let httpbin = &model.inbound[&"httpbin".parse().unwrap()];
        assert_eq!(
            httpbin.spec.mtls,
            Some(super::super::inbound::MtlsMode::IstioMutual)
        );
        assert_eq!(httpbin.clients.len(), 1);
        assert_eq!(
            sets[0].inbound_pointers[&"httpbin".parse().unwrap()],
            "/projects/0/compositeApps/0/trafficIntentSets/0/inboundIntents/0"
        );
    }

    #[test]
    fn value_errors_point_into_the_document() {
        let errors = errors_of(&SPEC_EXAMPLE.replace("port: 8000", "port: 0"));
        assert_eq!(
            errors[0].field,
            "/projects/0/compositeApps/0/trafficIntentSets/0/inboundIntents/0/spec/port"
        );
        assert_eq!(errors[0].message, "must be between 1 and 65535 (got 0)");
        let errors =
            errors_of(&SPEC_EXAMPLE.replace("protocol: HTTP", "protocol: HTTP, colour: red"));
        assert_eq!(
            errors[0].field,
            "/projects/0/compositeApps/0/trafficIntentSets/0/inboundIntents/0/spec/colour"
        );
    }

    #[test]
    fn rule_errors_match_the_api_messages() {
        let errors = errors_of(&SPEC_EXAMPLE.replace("protocol: HTTP", "protocol: TCP"));
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"/projects/0/compositeApps/0/trafficIntentSets/0/inboundIntents/0/clients/0/securityIntents/0/spec/rules/0/methods"), "{fields:?}");
        let errors = errors_of(&SPEC_EXAMPLE.replace("spec: {app: sleep}", "spec: {app: nginx}"));
        assert_eq!(
            errors[0].field,
            "/projects/0/compositeApps/0/trafficIntentSets/0/inboundIntents/0/clients/0/spec/app"
        );
        assert!(errors[0].message.contains("app \"nginx\" does not exist"));
        let errors = errors_of(&SPEC_EXAMPLE.replace(
            "placement: {clusters: [cluster01]}}\n          - metadata: {name: sleep}",
            "placement: {clusters: [cluster09]}}\n          - metadata: {name: sleep}",
        ));
        assert_eq!(
            errors[0].field,
            "/projects/0/compositeApps/0/apps/0/spec/placement/clusters/0"
        );
    }

    #[test]
    fn duplicates_are_reported() {
        let doubled = SPEC_EXAMPLE.replace(
            "          - metadata: {name: sleep}\n            spec: {namespace: default",
            "          - metadata: {name: httpbin}\n            spec: {namespace: default",
        );
        let errors = errors_of(&doubled);
        assert_eq!(
            errors[0].field,
            "/projects/0/compositeApps/0/apps/1/metadata/name"
        );
    }
}
