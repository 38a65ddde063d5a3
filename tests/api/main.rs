//! Black-box API tests: the real server over real HTTP, on SQLite and on PostgreSQL.

mod helpers;

#[path = "../support/crd_schema.rs"]
mod crd_schema;
#[path = "../support/fake_kube/mod.rs"]
mod fake_kube;
#[path = "../support/golden_files.rs"]
mod golden_files;

mod access;
mod analysis;
mod apply_prune;
mod bindings;
mod claims;
mod cli;
mod clients;
mod cluster_check;
mod concurrency;
mod conformance;
mod console;
mod crud;
mod deploy;
mod deploy_live;
mod documents;
mod events;
mod examples;
mod graph;
mod manifests;
mod migration;
mod oidc;
mod openapi;
mod plan;
mod process;
mod push_errors;
mod reconcile;
mod responses;
mod scenarios;
mod secrets;
mod stored_deployments;
mod traffic;
mod validation;
mod write_cost;
