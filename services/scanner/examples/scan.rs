//! Scans one image and prints a report: `scan TARGET [FORMAT]` (table, json, sarif, cyclonedx,
//! spdx). Progress goes to stderr.

use std::sync::Arc;

use palisade_scanner::{
    OutputFormat, ReportOptions, ScanOptions, match_sbom, stderr_progress, write_report,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let Some(target) = arguments.next() else {
        anyhow::bail!("usage: scan TARGET [FORMAT]");
    };
    let format: OutputFormat = arguments
        .next()
        .as_deref()
        .unwrap_or("table")
        .parse()
        .map_err(anyhow::Error::msg)?;
    let mut options = ScanOptions::new(target);
    options.progress = Arc::new(stderr_progress());
    let sbom = palisade_scanner::build_sbom(&options).await?;
    let report = match_sbom(sbom, None)?;
    let report_options = ReportOptions {
        format,
        color: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        ..ReportOptions::default()
    };
    write_report(&report, &report_options, &mut std::io::stdout().lock())?;
    Ok(())
}
