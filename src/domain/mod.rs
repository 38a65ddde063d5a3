//! Domain types: every value here was parsed, so it is valid by construction.

pub mod access;
pub mod app;
pub mod claim;
pub mod client;
pub mod cluster;
pub mod cluster_check;
pub mod credentials;
pub mod deployment;
pub mod document;
pub mod envelopes;
pub mod hosts;
pub mod http;
pub mod inbound;
pub mod labels;
pub mod model;
pub mod names;
pub mod outbound;
pub mod regex_re2;
pub mod resource;
pub mod route;
pub mod rules;
mod schema;
pub mod sync;
pub mod tenancy;
pub mod values;
pub mod violations;
