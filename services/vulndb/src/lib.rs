//! Palisade's vulnerability database.
//!
//! Imports vulnerability feeds into a sled database indexed by (ecosystem, package) and matches
//! the packages of an SBOM against it with each ecosystem's own version order.
//!
//! Feeds: OSV records (single files, directories, osv.dev `all.zip` archives; GHSA, PyPA, Go,
//! Ubuntu, Debian, AlmaLinux, Chainguard ...), RustSec advisories (Markdown + TOML), Alpine
//! secdb YAML, the Debian security tracker (DSA/DLA lists, tracker JSON, parsed `data/CVE/list`
//! entries) and VEX documents (OpenVEX, CSAF VEX, CycloneDX VEX).
//!
//! The surface the CLI and the scanner use:
//! - [`VulnDb::open`], [`VulnDb::import_paths`] (`palisade vulndb import PATH...`),
//!   [`VulnDb::status`] (`palisade vulndb status`, [`DbStatus`] implements `Display`);
//! - [`VulnDb::match_packages`] with an [`OsRelease`], [`PackageQuery`]s and [`MatchOptions`]
//!   (`ignore_unfixed`, Ubuntu Pro, extra VEX from [`vex::read_vex_file`]) returning a
//!   [`MatchReport`] of [`VulnerabilityMatch`]es and VEX-suppressed matches;
//! - [`version::VersionScheme`] for per-ecosystem version order, [`severity`] for CVSS scoring;
//! - every error is a [`VulnDbError`] with a stable [`VulnDbError::code`].

#![forbid(unsafe_code)]

pub mod ecosystem;
pub mod error;
pub mod evaluate;
pub mod import;
pub mod matcher;
pub mod model;
pub mod severity;
pub mod store;
pub mod version;
pub mod vex;

pub use ecosystem::{OsRelease, PackageKind};
pub use error::VulnDbError;
pub use import::{ImportIssue, ImportLimits};
pub use matcher::{MatchOptions, MatchReport, PackageQuery, SuppressedMatch, VulnerabilityMatch};
pub use model::FixState;
pub use severity::{Severity, SeverityAssessment};
pub use store::{DbStatus, ImportReport, SourceStatus, VulnDb};
pub use vex::VexStatement;
