//! meshintent: a traffic-intent controller for Istio service meshes.

pub mod analysis;
pub mod api;
pub mod apply;
pub mod auth;
pub mod authz;
pub mod configuration;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod generate;
pub mod graph;
pub mod input;
pub mod istio;
pub mod offline;
pub mod plan_cli;
pub mod push;
pub mod reconciler;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod ui;
pub mod worker;
