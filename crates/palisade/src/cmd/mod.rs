//! The subcommands.

use std::process::ExitCode;

use palisade_core::config::{LogConfig, LogFormat};

use crate::cli::{Cli, Command, ScanCommand};

mod admin;
mod agents;
mod alerts;
pub(crate) mod audit;
mod clusters;
mod graph;
mod notify;
mod rules;
mod scan;
mod search;
mod status;
mod vulndb;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let log = LogConfig {
        format: cli.log_format.unwrap_or(LogFormat::Human),
        level: cli.log_level.clone().unwrap_or_else(|| "warn".to_string()),
    };
    match cli.command {
        Command::Up(args) => crate::up::run(args, None, cli.log_format, cli.log_level),
        Command::Serve(args) => {
            crate::up::run(args.up, Some(args.service), cli.log_format, cli.log_level)
        }
        Command::Status(args) => client_runtime(&log)?.block_on(status::run(args)),
        Command::Alerts(command) => client_runtime(&log)?.block_on(alerts::run(command)),
        Command::Search(args) => client_runtime(&log)?.block_on(search::run(args)),
        Command::Admin(command) => client_runtime(&log)?.block_on(admin::run(command)),
        Command::Notify(command) => client_runtime(&log)?.block_on(notify::run(command)),
        Command::Enroll(args) => client_runtime(&log)?.block_on(clusters::enroll(args)),
        Command::Agent(args) => {
            palisade_core::telemetry::init_tracing(&LogConfig {
                level: cli.log_level.clone().unwrap_or_else(|| "info".to_string()),
                ..log
            });
            palisade_agent::run(args)
                .map_err(|error| anyhow::anyhow!("{error} [{}]", error.code()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan(ScanCommand::Image(args)) => client_runtime(&log)?.block_on(scan::run(args)),
        Command::Audit(command) => audit::run(command, || client_runtime(&log)),
        Command::Graph(command) => graph::run(command, || client_runtime(&log)),
        Command::Vulndb(command) => vulndb::run(command),
        Command::Rules(command) => rules::run(command),
    }
}

fn client_runtime(log: &LogConfig) -> anyhow::Result<tokio::runtime::Runtime> {
    palisade_core::telemetry::init_tracing(log);
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
