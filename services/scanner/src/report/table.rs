//! The table people read: a summary, then findings grouped by where the packages were found.

use std::collections::BTreeMap;
use std::io::Write;

use crate::matching::{Severity, Vulnerability};
use crate::scan::ScanReport;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";

fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "\x1b[1;31m",
        Severity::High => "\x1b[31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[34m",
        Severity::Unknown => "\x1b[37m",
    }
}

fn paint(text: &str, colour: &str, enabled: bool) -> String {
    if enabled {
        format!("{colour}{text}{RESET}")
    } else {
        text.to_string()
    }
}

pub(super) fn write(
    report: &ScanReport,
    colour: bool,
    output: &mut dyn Write,
) -> std::io::Result<()> {
    let sbom = &report.sbom;
    let os = sbom
        .os
        .as_ref()
        .map(|os| os.display_name())
        .unwrap_or_else(|| "unknown".to_string());
    writeln!(
        output,
        "{}",
        paint(&format!("{} ({os})", sbom.target), BOLD, colour)
    )?;
    writeln!(
        output,
        "digest: {}  layers: {}  packages: {}",
        sbom.image_digest,
        sbom.layers.len(),
        sbom.packages.len()
    )?;
    let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
    for vulnerability in &report.vulnerabilities {
        *counts.entry(vulnerability.severity).or_default() += 1;
    }
    let summary: Vec<String> = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Unknown,
    ]
    .iter()
    .map(|severity| {
        format!(
            "{}: {}",
            severity,
            counts.get(severity).copied().unwrap_or(0)
        )
    })
    .collect();
    match &report.vulnerability_source {
        Some(source) => writeln!(
            output,
            "vulnerabilities: {} ({})  [{source}]",
            report.vulnerabilities.len(),
            summary.join(", ")
        )?,
        None => writeln!(
            output,
            "vulnerabilities: not matched (no vulnerability database)"
        )?,
    }
    if !sbom.issues.is_empty() {
        writeln!(
            output,
            "unreadable records: {} (see the json report)",
            sbom.issues.len()
        )?;
    }
    let mut groups: BTreeMap<String, Vec<&Vulnerability>> = BTreeMap::new();
    for vulnerability in &report.vulnerabilities {
        let group = if vulnerability.location.starts_with("/var/lib/dpkg")
            || vulnerability.location.contains("/apk/db/")
            || vulnerability.location.contains("rpm/")
        {
            format!("{} (os packages)", os)
        } else {
            vulnerability.location.clone()
        };
        groups.entry(group).or_default().push(vulnerability);
    }
    for (group, findings) in groups {
        writeln!(output)?;
        writeln!(
            output,
            "{} ({} findings)",
            paint(&group, BOLD, colour),
            findings.len()
        )?;
        let widths = [
            findings
                .iter()
                .map(|f| f.package.len())
                .max()
                .unwrap_or(0)
                .max(7),
            findings
                .iter()
                .map(|f| f.version.len())
                .max()
                .unwrap_or(0)
                .max(9),
            findings
                .iter()
                .map(|f| f.id.len())
                .max()
                .unwrap_or(0)
                .max(13),
            8,
        ];
        writeln!(
            output,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  FIXED IN",
            "PACKAGE",
            "INSTALLED",
            "VULNERABILITY",
            "SEVERITY",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )?;
        for finding in findings {
            let severity = format!("{:<w$}", finding.severity.as_str(), w = widths[3]);
            writeln!(
                output,
                "  {:<w0$}  {:<w1$}  {:<w2$}  {}  {}",
                finding.package,
                finding.version,
                finding.id,
                paint(&severity, severity_colour(finding.severity), colour),
                finding.fixed_version.as_deref().unwrap_or("-"),
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )?;
        }
    }
    if report.vulnerabilities.is_empty() {
        let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
        for package in &sbom.packages {
            *by_kind.entry(package.kind.as_str()).or_default() += 1;
        }
        let kinds: Vec<String> = by_kind
            .iter()
            .map(|(kind, count)| format!("{kind}: {count}"))
            .collect();
        writeln!(output, "package types: {}", kinds.join(", "))?;
    }
    Ok(())
}
