//! Offline entry points for the CLI: `palisade graph analyze` and `palisade graph query` over
//! manifests, `kubectl get -o json` snapshots and scanner findings, before anything is deployed.

use std::path::PathBuf;

use serde::Serialize;

use crate::engine::{GraphEngine, InventoryChange};
use crate::error::{GraphError, Result};
use crate::explorer::{self, QueryLimits, QueryResult};
use crate::findings::{ImageFindings, load_findings};
use crate::insights::Insight;
use crate::paths::{AttackPath, FleetReport};
use crate::source::{SourceLimits, SourceProblem, load_path};

/// Output formats of `graph analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object: `entities` (count), `insights`, `attack_paths`, and more.
    Json,
    /// A human-readable table.
    Table,
    /// Graphviz DOT of the attack paths.
    Dot,
}

impl std::str::FromStr for OutputFormat {
    type Err = GraphError;

    fn from_str(text: &str) -> Result<OutputFormat> {
        match text {
            "json" => Ok(OutputFormat::Json),
            "table" => Ok(OutputFormat::Table),
            "dot" => Ok(OutputFormat::Dot),
            other => Err(GraphError::BadInput {
                location: "--format".to_string(),
                message: format!("unknown format {other}; use json, table or dot"),
            }),
        }
    }
}

/// Inputs of an offline analysis.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// Manifest files or directories (`--manifests`).
    pub manifests: Vec<PathBuf>,
    /// `kubectl get -o json` dumps (`--snapshot`).
    pub snapshots: Vec<PathBuf>,
    /// Scanner findings (`--findings`): Palisade, Trivy or Grype JSON.
    pub findings: Vec<PathBuf>,
    /// Cluster name given to the inputs (default `offline`).
    pub cluster: Option<String>,
}

/// The result of an offline analysis.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyzeReport {
    /// Number of entities in the graph.
    pub entities: usize,
    /// Number of edges in the graph.
    pub edges: usize,
    /// Insights, most severe first.
    pub insights: Vec<Insight>,
    /// Attack paths, highest risk first.
    pub attack_paths: Vec<AttackPath>,
    /// KubeHound's fleet questions.
    pub fleet_report: FleetReport,
    /// Input that was skipped, with file and document index.
    pub problems: Vec<SourceProblem>,
}

impl AnalyzeReport {
    /// Whether the analysis found attack paths (CI gates on this).
    pub fn has_attack_paths(&self) -> bool {
        !self.attack_paths.is_empty()
    }
}

const TENANT: &str = "offline";

/// Loads the inputs into an engine.
pub fn load(options: &AnalyzeOptions) -> Result<(GraphEngine, Vec<SourceProblem>)> {
    let cluster = options
        .cluster
        .clone()
        .unwrap_or_else(|| "offline".to_string());
    let limits = SourceLimits::default();
    let mut engine = GraphEngine::in_memory();
    let mut problems = Vec::new();
    let mut changes = Vec::new();
    for path in options.manifests.iter().chain(&options.snapshots) {
        let report = load_path(path, &limits)?;
        problems.extend(report.problems);
        changes.extend(report.objects.into_iter().map(InventoryChange::upsert));
    }
    engine.apply_changes(TENANT, &cluster, changes)?;
    let mut findings: Vec<ImageFindings> = Vec::new();
    for path in &options.findings {
        findings.extend(load_findings(path)?);
    }
    if !findings.is_empty() {
        engine.set_findings(TENANT, findings)?;
    }
    Ok((engine, problems))
}

/// `palisade graph analyze`.
pub fn analyze(options: &AnalyzeOptions) -> Result<AnalyzeReport> {
    let (mut engine, problems) = load(options)?;
    let tenant = engine.tenant_mut(TENANT);
    let fleet_report = tenant.fleet_report();
    Ok(AnalyzeReport {
        entities: tenant.graph().entity_count(),
        edges: tenant.graph().edge_count(),
        insights: tenant.insights(),
        attack_paths: tenant.attack_paths().into_iter().cloned().collect(),
        fleet_report,
        problems,
    })
}

/// `palisade graph query QUERY` offline (text or JSON builder form).
pub fn query_offline(options: &AnalyzeOptions, query: &str) -> Result<QueryResult> {
    let parsed = explorer::parse_any(query)?;
    let (engine, _) = load(options)?;
    let Some(tenant) = engine.tenant(TENANT) else {
        return Ok(QueryResult {
            total: 0,
            rows: Vec::new(),
            visits: 0,
        });
    };
    explorer::run(tenant.graph(), &parsed, 0, QueryLimits::default())
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Renders a report.
pub fn render(report: &AnalyzeReport, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Json => {
            serde_json::to_string_pretty(report).map_err(|error| GraphError::BadInput {
                location: "report".to_string(),
                message: error.to_string(),
            })
        }
        OutputFormat::Table => {
            let mut output = format!(
                "entities: {}  edges: {}  insights: {}  attack paths: {}\n",
                report.entities,
                report.edges,
                report.insights.len(),
                report.attack_paths.len()
            );
            output.push_str("\nATTACK PATHS\nRISK  TITLE\n");
            for path in &report.attack_paths {
                output.push_str(&format!("{:>4.1}  {}\n", path.risk_score, path.title));
                let route: Vec<String> = path
                    .steps
                    .iter()
                    .map(|step| {
                        if step.technique.is_empty() {
                            format!("{} {}", step.kind.as_str(), step.name)
                        } else {
                            format!(
                                "{} {} -[{}]->",
                                step.kind.as_str(),
                                step.name,
                                step.technique
                            )
                        }
                    })
                    .collect();
                output.push_str(&format!("      {}\n", route.join(" ")));
            }
            output.push_str("\nINSIGHTS\nSEVERITY  CONTROL                               OBJECT\n");
            for insight in &report.insights {
                output.push_str(&format!(
                    "{:<9} {:<37} {} ({})\n",
                    insight.severity.as_str(),
                    insight.control_id,
                    insight.object,
                    insight.name
                ));
            }
            if !report.problems.is_empty() {
                output.push_str("\nSKIPPED INPUT\n");
                for problem in &report.problems {
                    output.push_str(&format!("{problem}\n"));
                }
            }
            Ok(output)
        }
        OutputFormat::Dot => {
            let mut output = String::from("digraph attack_paths {\n  rankdir=LR;\n");
            let mut seen = std::collections::BTreeSet::new();
            for path in &report.attack_paths {
                for step in &path.steps {
                    if seen.insert(step.entity_id.clone()) {
                        output.push_str(&format!(
                            "  \"{}\" [label=\"{}\\n{}\"];\n",
                            dot_escape(&step.entity_id),
                            step.kind.as_str(),
                            dot_escape(&step.name)
                        ));
                    }
                }
                for pair in path.steps.windows(2) {
                    let line = format!(
                        "  \"{}\" -> \"{}\" [label=\"{}\"];\n",
                        dot_escape(&pair[0].entity_id),
                        dot_escape(&pair[1].entity_id),
                        dot_escape(&pair[0].technique)
                    );
                    if seen.insert(line.clone()) {
                        output.push_str(&line);
                    }
                }
            }
            output.push_str("}\n");
            Ok(output)
        }
    }
}
