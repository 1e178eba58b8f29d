//! Checks of Palisade's deployment files (this directory): the Helm chart in `helm/palisade`
//! rendered by the real helm for several sets of values, every object validated against the
//! Kubernetes OpenAPI schemas (kubernetes-validate, strict), and the invariants the schemas
//! cannot express ([`invariants`]). The example configurations in `examples/` are loaded by the
//! platform's own configuration parser in this crate's tests.

pub mod error;
pub mod invariants;
pub mod manifest;
pub mod network;
pub mod quantity;
pub mod tools;

pub use error::DeployError;
pub use manifest::{Manifest, Workload};
pub use tools::{RenderRequest, Tools};
