//! `palisade graph analyze|query` over manifests, snapshots and scan findings.

use std::process::ExitCode;

use palisade_graph::analyze::{
    AnalyzeOptions, OutputFormat as ReportFormat, analyze, query_offline, render,
};

use crate::cli::{GraphCommand, GraphFormatArg, GraphInputArgs, OutputFormat};

pub fn run(command: GraphCommand) -> anyhow::Result<ExitCode> {
    match command {
        GraphCommand::Analyze(args) => {
            let report = analyze(&options(args.input))?;
            for problem in &report.problems {
                eprintln!("skipped: {problem}");
            }
            let format = match args.format {
                GraphFormatArg::Table => ReportFormat::Table,
                GraphFormatArg::Json => ReportFormat::Json,
                GraphFormatArg::Dot => ReportFormat::Dot,
            };
            println!("{}", render(&report, format)?);
            if args.fail_on_attack_paths && report.has_attack_paths() {
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        GraphCommand::Query(args) => {
            let result = query_offline(&options(args.input), &args.query)?;
            match args.format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
                OutputFormat::Table => {
                    println!("{:<16} {:<24} {:<40} ID", "KIND", "NAMESPACE", "NAME");
                    for row in &result.rows {
                        let entity = &row.entity;
                        println!(
                            "{:<16} {:<24} {:<40} {}",
                            serde_json::to_value(entity.kind)?
                                .as_str()
                                .unwrap_or_default(),
                            entity.namespace,
                            entity.name,
                            entity.id
                        );
                    }
                    println!("{} match(es)", result.total);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn options(input: GraphInputArgs) -> AnalyzeOptions {
    AnalyzeOptions {
        manifests: input.manifests,
        snapshots: input.snapshots,
        findings: input.findings,
        cluster: Some(input.cluster),
    }
}
