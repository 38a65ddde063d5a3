//! meshintent: a traffic-intent controller for Istio service meshes.

pub mod domain;
