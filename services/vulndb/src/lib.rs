//! Palisade's vulnerability database.
//!
//! Imports vulnerability feeds (OSV records and osv.dev `all.zip` archives, Alpine secdb,
//! RustSec advisories, the Debian security tracker's lists and JSON, OpenVEX/CSAF/CycloneDX VEX
//! documents) into a sled database indexed by ecosystem and package, and matches packages of an
//! SBOM against it with each ecosystem's own version order.

#![forbid(unsafe_code)]

pub mod error;
pub mod model;
pub mod severity;
pub mod version;

pub use error::VulnDbError;
pub mod ecosystem;
pub mod import;
pub mod matcher;
pub mod store;
pub mod vex;

pub use ecosystem::{OsRelease, PackageKind};
pub use import::{ImportIssue, ImportLimits};
pub use matcher::{MatchOptions, MatchReport, PackageQuery, SuppressedMatch, VulnerabilityMatch};
pub use model::FixState;
pub use severity::{Severity, SeverityAssessment};
pub use store::{DbStatus, ImportReport, SourceStatus, VulnDb};
pub use vex::VexStatement;
