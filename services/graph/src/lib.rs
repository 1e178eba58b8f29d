//! Palisade's graph service: agentless inventory of Kubernetes clusters, a security graph of
//! entities, relationships and attack techniques, posture insights, attack paths and the
//! explorer query language.
//!
//! Data flow: inventory sources ([`source`] for manifests and dumps, [`watch`] for live
//! clusters) fill per-cluster [`inventory::ClusterInventory`]s; [`derive`] turns a cluster's
//! inventory into entities and edges; [`graph::TenantGraph`] holds a tenant's fleet and applies
//! each cluster's changes incrementally; [`insights`], [`paths`] and [`explorer`] read it.
//! In a server, [`live`] feeds the engine from the configured sources and the durable log
//! ([`feed`]) and [`grpc`] serves it.

pub mod analyze;
pub mod derive;
pub mod engine;
pub mod error;
pub mod explorer;
pub mod feed;
pub mod findings;
pub mod findings_patch;
pub mod fleet_report;
pub mod graph;
pub mod grpc;
pub mod insights;
pub mod inventory;
pub mod k8s;
pub mod live;
pub mod model;
pub mod object;
pub mod path_cache;
pub mod paths;
pub mod rbac;
pub mod search;
pub mod service;
pub mod source;
pub mod store;
pub mod watch;

pub use error::{GraphError, Result};
