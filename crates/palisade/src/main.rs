//! `palisade`: one binary for every part of the platform.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod client;
mod cmd;
mod output;
mod up;

/// The graph's derivations and updates make many small allocations that come and go; glibc's
/// allocator spends much of an update consolidating and searching its free lists, mimalloc
/// does not (bench/RESULTS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
