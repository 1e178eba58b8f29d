//! `palisade audit replay FILE... [--rules PATH]... [--format json|table]`: runs audit log files
//! through the rules offline. Alerts go to one writer (Falco's JSON output format, one alert per
//! line, or a table), the summary to another.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_proto::PriorityExt;
use palisade_rules::{
    CompileOptions, ExitStatus, LoadSummary, MatchMode, ReloadPolicy, ReloadableRules, RulesSource,
    Severity,
};

use crate::anomaly::{AnomalyConfig, AnomalyDetector};
use crate::decode::{DecodeLimits, DecodeStats};
use crate::error::AuditError;
use crate::fields::K8sAuditSource;
use crate::input::read_file;
use crate::pack::builtin_rules;
use crate::pipeline::{AuditPipeline, local_hostname};

/// Output format of alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayFormat {
    /// Falco's JSON output, one alert per line.
    #[default]
    Json,
    /// An aligned text table.
    Table,
}

/// Arguments of `palisade audit replay`.
#[derive(Debug, Clone, Default)]
pub struct ReplayArgs {
    /// Audit log files: JSON lines, EventList, AKS/EKS/GKE exports.
    pub files: Vec<PathBuf>,
    /// Rules files, in order; empty means Palisade's built-in pack.
    pub rules: Vec<PathBuf>,
    /// Alert format.
    pub format: ReplayFormat,
    /// Host name in alerts; defaults to this host's.
    pub hostname: Option<String>,
    /// Falco's first-match or every match.
    pub match_mode: MatchMode,
    /// Anomaly detection over the replayed events (in memory), when set.
    pub anomaly: Option<AnomalyConfig>,
    /// Size limits.
    pub limits: DecodeLimits,
}

/// What a replay did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReplaySummary {
    /// Files read.
    pub files: usize,
    /// Decoding counts.
    pub decode: DecodeStats,
    /// Alerts per rule.
    pub alerts: BTreeMap<String, u64>,
    /// Rules loaded.
    pub rules: LoadSummary,
}

fn write_table_row(out: &mut dyn Write, columns: [&str; 6]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<30} {:<13} {:<48} {:<32} {:<8} {}",
        columns[0], columns[1], columns[2], columns[3], columns[4], columns[5]
    )
}

/// Replays the files of `args`, writing alerts to `alerts_out` and the summary to
/// `summary_out`. Fails when the rules cannot be read; exits with failure when the rules had
/// errors or an input could not be read.
pub fn replay(
    args: &ReplayArgs,
    alerts_out: &mut dyn Write,
    summary_out: &mut dyn Write,
) -> Result<(ReplaySummary, ExitStatus), AuditError> {
    let source = if args.rules.is_empty() {
        RulesSource::Texts(builtin_rules())
    } else {
        RulesSource::Files(args.rules.clone())
    };
    let options = CompileOptions {
        match_mode: args.match_mode,
    };
    let (rules, report) = ReloadableRules::load(
        Arc::new(K8sAuditSource),
        source,
        options,
        ReloadPolicy::AcceptWithSkips,
    )?;
    let mut status = ExitStatus::Success;
    for diagnostic in &report.diagnostics {
        writeln!(summary_out, "{diagnostic}")?;
        if diagnostic.severity == Severity::Error {
            status = ExitStatus::Failure;
        }
    }
    let anomaly = args.anomaly.map(AnomalyDetector::in_memory);
    let hostname = args.hostname.clone().unwrap_or_else(local_hostname);
    let pipeline = AuditPipeline::new(Arc::new(rules), anomaly, hostname);
    let mut summary = ReplaySummary {
        rules: report.summary.clone(),
        ..ReplaySummary::default()
    };
    if args.format == ReplayFormat::Table {
        write_table_row(
            alerts_out,
            ["time", "priority", "rule", "user", "verb", "target"],
        )?;
    }
    for file in &args.files {
        summary.files += 1;
        let result = read_file(file, &args.limits, |batch| {
            summary.decode.add(&batch);
            for skip in &batch.skips {
                writeln!(
                    summary_out,
                    "{}: skipped ({}): {}",
                    file.display(),
                    skip.reason.code(),
                    skip.detail
                )?;
            }
            for event in &batch.events {
                for alert in pipeline.process(event) {
                    *summary.alerts.entry(alert.rule.clone()).or_default() += 1;
                    match args.format {
                        ReplayFormat::Json => {
                            serde_json::to_writer(&mut *alerts_out, &alert.to_falco_json())
                                .map_err(std::io::Error::other)?;
                            writeln!(alerts_out)?;
                        }
                        ReplayFormat::Table => {
                            let time = alert.to_falco_json()["time"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string();
                            let target = match &alert.target {
                                (Some(resource), namespace, name) => format!(
                                    "{resource}/{}{}",
                                    namespace
                                        .as_deref()
                                        .map(|namespace| format!("{namespace}/"))
                                        .unwrap_or_default(),
                                    name.as_deref().unwrap_or("")
                                ),
                                _ => event
                                    .str_at(&["requestURI"])
                                    .unwrap_or_default()
                                    .to_string(),
                            };
                            write_table_row(
                                alerts_out,
                                [
                                    &time,
                                    alert.priority.falco_name(),
                                    &alert.rule,
                                    alert.user.as_deref().unwrap_or("<NA>"),
                                    event.verb().unwrap_or("<NA>"),
                                    &target,
                                ],
                            )?;
                        }
                    }
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            writeln!(summary_out, "{error}")?;
            status = ExitStatus::Failure;
        }
    }
    writeln!(summary_out, "rules: {}", summary.rules)?;
    writeln!(
        summary_out,
        "{} file(s), {} event(s) decoded, {} skipped, {} alert(s)",
        summary.files,
        summary.decode.decoded,
        summary.decode.skipped_total(),
        summary.alerts.values().sum::<u64>()
    )?;
    for (reason, count) in &summary.decode.skipped {
        writeln!(summary_out, "  skipped {reason}: {count}")?;
    }
    for (rule, count) in &summary.alerts {
        writeln!(summary_out, "  {count:>6}  {rule}")?;
    }
    Ok((summary, status))
}
