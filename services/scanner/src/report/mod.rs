//! Report formats: table (for people), json (Palisade's own), SARIF 2.1.0 (code scanning),
//! CycloneDX 1.5 and SPDX 2.3 (SBOM exchange). Every writer takes any `io::Write`.

mod cyclonedx;
mod json;
mod sarif;
mod spdx;
mod table;

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::error::{Result, ScanError};
use crate::scan::{FindingFilter, ScanReport};

/// The report formats `--format` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Grouped table, coloured on a terminal.
    #[default]
    Table,
    /// Palisade's JSON object (`target`, `os`, `packages`, `vulnerabilities`).
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// CycloneDX 1.5 JSON with vulnerabilities.
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "table" => Ok(OutputFormat::Table),
            "json" => Ok(OutputFormat::Json),
            "sarif" => Ok(OutputFormat::Sarif),
            "cyclonedx" | "cyclonedx-json" => Ok(OutputFormat::CycloneDx),
            "spdx" | "spdx-json" => Ok(OutputFormat::Spdx),
            other => Err(format!(
                "unknown format {other:?} (use table, json, sarif, cyclonedx or spdx)"
            )),
        }
    }
}

impl OutputFormat {
    /// The name `--format` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Json => "json",
            OutputFormat::Sarif => "sarif",
            OutputFormat::CycloneDx => "cyclonedx",
            OutputFormat::Spdx => "spdx",
        }
    }
}

/// How to write a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportOptions {
    /// The format.
    pub format: OutputFormat,
    /// Which findings to include.
    pub filter: FindingFilter,
    /// ANSI colours in the table (set when stdout is a terminal).
    pub color: bool,
}

/// Writes `report` in the chosen format, with only the findings the filter accepts.
pub fn write_report(
    report: &ScanReport,
    options: &ReportOptions,
    output: &mut dyn Write,
) -> Result<()> {
    let filtered = report.filtered(&options.filter);
    let format = options.format;
    let written = match format {
        OutputFormat::Table => table::write(&filtered, options.color, output),
        OutputFormat::Json => write_json(&json::document(&filtered), output),
        OutputFormat::Sarif => write_json(&sarif::document(&filtered), output),
        OutputFormat::CycloneDx => write_json(&cyclonedx::document(&filtered), output),
        OutputFormat::Spdx => write_json(&spdx::document(&filtered), output),
    };
    written.map_err(|error| ScanError::Output {
        format: format.as_str().to_string(),
        reason: error.to_string(),
    })
}

fn write_json(document: &serde_json::Value, output: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *output, document)?;
    writeln!(output)
}

/// A stable UUID (version-4 layout) derived from the image and the report time, so two
/// reports of one scan carry the same serial number.
pub(crate) fn stable_uuid(seed: &str) -> String {
    let hash = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The tool's name and version, as the SBOM formats record it.
pub(crate) const TOOL_NAME: &str = "palisade";
pub(crate) const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
