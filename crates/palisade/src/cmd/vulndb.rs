//! `palisade vulndb import|status`: the local vulnerability database the scanner matches against.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use palisade_core::config::default_data_dir;
use palisade_vulndb::{ImportLimits, VulnDb};
use serde_json::json;

use crate::cli::{OutputFormat, VulndbCommand, VulndbDbArgs};
use crate::output::print_table;

/// The database directory: --db, else DATA_DIR/vulndb.
pub(crate) fn database_dir(args: &VulndbDbArgs) -> PathBuf {
    match &args.db {
        Some(db) => db.clone(),
        None => args
            .data_dir
            .clone()
            .unwrap_or_else(default_data_dir)
            .join("vulndb"),
    }
}

/// How long a command waits for a database another process holds (an import, or a server
/// re-matching its images).
const BUSY_WAIT: Duration = Duration::from_secs(120);

/// Opens the database in `directory`, waiting while another process holds it.
pub(crate) fn open_database(directory: &Path) -> anyhow::Result<VulnDb> {
    VulnDb::open_waiting(directory, BUSY_WAIT, |path| {
        eprintln!(
            "waiting for the vulnerability database in {}: another process is using it",
            path.display()
        );
    })
    .with_context(|| {
        format!(
            "cannot open the vulnerability database in {}",
            directory.display()
        )
    })
}

pub fn run(command: VulndbCommand) -> anyhow::Result<ExitCode> {
    match command {
        VulndbCommand::Import(args) => {
            let directory = database_dir(&args.db);
            let db = open_database(&directory)?;
            eprintln!(
                "importing {} path(s) into {}",
                args.paths.len(),
                directory.display()
            );
            let report = db.import_paths(&args.paths, &ImportLimits::default())?;
            match args.format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = report
                        .sources
                        .iter()
                        .map(|source| {
                            vec![
                                source.advisories.to_string(),
                                source.issues.to_string(),
                                format!("{} ms", source.import_millis),
                                source.format.clone(),
                                source.name.clone(),
                            ]
                        })
                        .collect();
                    print_table(
                        &["ADVISORIES", "SKIPPED", "TIME", "FORMAT", "SOURCE"],
                        &rows,
                    );
                    for issue in &report.issues {
                        eprintln!("skipped: {issue}");
                    }
                    for ignored in &report.ignored {
                        eprintln!("no vulnerability data: {ignored}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        VulndbCommand::Status(args) => {
            let directory = database_dir(&args.db);
            let db = open_database(&directory)?;
            let status = db.status()?;
            match args.format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&json!(status))?),
                OutputFormat::Table => println!("{status}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
