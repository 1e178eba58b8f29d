//! Palisade's vulnerability database.
//!
//! Imports vulnerability feeds (OSV records and osv.dev `all.zip` archives, Alpine secdb,
//! RustSec advisories, the Debian security tracker's lists and JSON, OpenVEX/CSAF/CycloneDX VEX
//! documents) into a sled database indexed by ecosystem and package, and matches packages of an
//! SBOM against it with each ecosystem's own version order.

#![forbid(unsafe_code)]

pub mod version;
pub mod error;
pub mod model;
pub mod severity;

pub use error::VulnDbError;
pub mod import;
pub mod vex;
