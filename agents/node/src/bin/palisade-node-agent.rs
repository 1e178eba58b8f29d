//! The node agent on its own; `palisade agent` runs the same entry point.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "palisade-node-agent", about = "Palisade node agent")]
struct Cli {
    #[command(flatten)]
    agent: palisade_agent::AgentArgs,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match palisade_agent::run(cli.agent) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error [{}]: {error}", error.code());
            std::process::ExitCode::FAILURE
        }
    }
}
