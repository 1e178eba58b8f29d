//! `palisade`: one binary for every part of the platform.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod client;
mod cmd;
mod output;
mod up;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("palisade: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
