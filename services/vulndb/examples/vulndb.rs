//! What `palisade vulndb import|status` and a dpkg match do, through the crate's public API:
//!
//! ```text
//! cargo run -p palisade-vulndb --example vulndb -- import DB_DIR PATH...
//! cargo run -p palisade-vulndb --example vulndb -- status DB_DIR
//! cargo run -p palisade-vulndb --example vulndb -- match-dpkg DB_DIR OS_ID VERSION_ID PACKAGES.txt
//! ```
//!
//! `PACKAGES.txt` is `dpkg-query -W -f '${Package}|${Version}|${source:Package}|${source:Version}\n'`
//! output (as in corpora/images/expected).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use palisade_vulndb::{ImportLimits, MatchOptions, OsRelease, PackageKind, PackageQuery, VulnDb};

fn main() -> Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.as_slice() {
        [command, database, paths @ ..] if command == "import" && !paths.is_empty() => {
            let db = VulnDb::open(database)?;
            let inputs: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
            let report = db.import_paths(&inputs, &ImportLimits::default())?;
            for source in &report.sources {
                println!(
                    "{:>8} advisories {:>6} ms  {}  {}",
                    source.advisories, source.import_millis, source.format, source.name
                );
            }
            for issue in &report.issues {
                eprintln!("skipped: {issue}");
            }
            for ignored in &report.ignored {
                eprintln!("no vulnerability data: {ignored}");
            }
        }
        [command, database] if command == "status" => {
            println!("{}", VulnDb::open(database)?.status()?);
        }
        [command, database, os_id, version_id, listing] if command == "match-dpkg" => {
            let db = VulnDb::open(database)?;
            let text =
                std::fs::read_to_string(listing).with_context(|| format!("reading {listing}"))?;
            let packages: Vec<PackageQuery> = text
                .lines()
                .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
                .map(|line| {
                    let fields: Vec<&str> = line.split('|').collect();
                    let mut package = PackageQuery::new(
                        PackageKind::Deb,
                        fields[0],
                        fields.get(1).copied().unwrap_or(""),
                    );
                    package.source_name = fields.get(2).map(|name| (*name).to_owned());
                    package.source_version = fields.get(3).map(|version| (*version).to_owned());
                    package
                })
                .collect();
            let report = db.match_packages(
                Some(&OsRelease::new(os_id, version_id)),
                &packages,
                &MatchOptions::default(),
            )?;
            for found in &report.matches {
                let package = &packages[found.package_index];
                println!(
                    "{} {} ({} {}) {} fixed={} severity={} [{}]",
                    package.name,
                    package.version,
                    found.matched_name,
                    found.matched_version,
                    found.id,
                    found.fixed_version.as_deref().unwrap_or("-"),
                    found.severity.severity.as_str(),
                    found.reason
                );
            }
            println!(
                "{} vulnerabilities, {} suppressed by VEX",
                report.matches.len(),
                report.suppressed.len()
            );
        }
        _ => bail!(
            "usage: vulndb import DB PATH... | status DB | match-dpkg DB OS_ID VERSION_ID PACKAGES.txt"
        ),
    }
    Ok(())
}
