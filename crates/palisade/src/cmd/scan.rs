//! `palisade scan image TARGET`: packages and vulnerabilities of one image.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use palisade_proto::v1::ScanImageRequest;
use palisade_proto::v1::scanner_service_client::ScannerServiceClient;
use palisade_scanner::findings::report_from_response;
use palisade_scanner::{
    FindingFilter, OutputFormat, RegistryCredentials, ReportOptions, ScanOptions, ScanReport,
    Severity, VulnDbMatcher, build_sbom, match_sbom, stderr_progress, write_report,
};
use palisade_vulndb::MatchOptions;

use crate::cli::{ClientArgs, ScanArgs};
use crate::client::{connect, describe_status};
use crate::cmd::vulndb::{database_dir, open_database};

/// The registry host of a registry target (`docker://HOST/REPO:TAG` or a bare reference);
/// Docker Hub when the first path segment is not a host. Credentials go to this host only.
fn registry_of(target: &str) -> String {
    let reference = target.strip_prefix("docker://").unwrap_or(target);
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

fn severity(text: &str, flag: &str) -> anyhow::Result<Severity> {
    text.parse()
        .map_err(|error| anyhow::anyhow!("{flag}: {error}"))
}

pub async fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let format: OutputFormat = args
        .format
        .parse()
        .map_err(|error| anyhow::anyhow!("--format: {error}"))?;
    let filter = FindingFilter {
        min_severity: severity(&args.severity, "--severity")?,
        ignore_unfixed: args.ignore_unfixed,
    };

    if let Some(server) = args.server.clone() {
        let report = scan_on_server(&args, server).await?;
        return finish(&report, format, filter, args.exit_code);
    }

    // Open the database first: a missing database fails before any image is pulled.
    let matcher = if args.skip_db {
        None
    } else {
        let directory = database_dir(&args.db);
        if !directory.exists() {
            bail!(
                "no vulnerability database in {}: import one with `palisade vulndb import`, \
                 point --db at one, or pass --skip-db to list packages only",
                directory.display()
            );
        }
        let database = open_database(&directory)?;
        Some(VulnDbMatcher::new(
            database,
            MatchOptions {
                ignore_unfixed: args.ignore_unfixed,
                ..MatchOptions::default()
            },
        ))
    };

    let registry = registry_of(&args.target);
    let mut options = ScanOptions::new(args.target);
    if let (Some(username), Some(password)) = (args.username, args.password) {
        options.registry_credentials = vec![RegistryCredentials {
            registry,
            username,
            password,
        }];
    }
    options.insecure_registries = args.insecure_registries;
    options.containerd_socket = args.containerd_socket;
    options.containerd_namespace = args.containerd_namespace;
    if !args.quiet {
        options.progress = Arc::new(stderr_progress());
    }
    let sbom = build_sbom(&options).await?;
    let report = match matcher {
        // Matching reads the database: off the async threads.
        Some(matcher) => tokio::task::spawn_blocking(move || match_sbom(sbom, Some(&matcher)))
            .await
            .context("matching stopped")??,
        None => match_sbom(sbom, None)?,
    };
    finish(&report, format, filter, args.exit_code)
}

/// Writes the report and gives the exit status.
fn finish(
    report: &ScanReport,
    format: OutputFormat,
    filter: FindingFilter,
    exit_code: u8,
) -> anyhow::Result<ExitCode> {
    let report_options = ReportOptions {
        format,
        filter,
        color: std::io::IsTerminal::is_terminal(&std::io::stdout()),
    };
    write_report(report, &report_options, &mut std::io::stdout().lock())?;
    Ok(ExitCode::from(report.exit_status(&filter, exit_code)))
}

/// Asks the server to scan the target; its answer becomes a report like a local scan's.
async fn scan_on_server(args: &ScanArgs, server: String) -> anyhow::Result<ScanReport> {
    let client_args = ClientArgs {
        server,
        token: args.token.clone(),
        data_dir: args.db.data_dir.clone(),
        ca_file: std::env::var_os("PALISADE_CA_FILE").map(std::path::PathBuf::from),
    };
    let mut client = ScannerServiceClient::new(connect(&client_args).await?)
        .max_decoding_message_size(256 * 1024 * 1024);
    if !args.quiet {
        eprintln!("{}: scanning on {}", args.target, client_args.server);
    }
    let response = client
        .scan_image(ScanImageRequest {
            image: args.target.clone(),
            // everything comes back; --severity and --ignore-unfixed filter here, as locally
            min_severity: 0,
            ignore_unfixed: false,
            cluster_id: args.cluster.clone().unwrap_or_default(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", describe_status(&status)))?
        .into_inner();
    if !args.quiet {
        eprintln!(
            "{}: {} packages, {} vulnerabilities ({} new, {} resolved){}",
            args.target,
            response.packages.len(),
            response.vulnerabilities.len(),
            response.new_findings,
            response.resolved_findings,
            if response.from_cache {
                "; SBOM from the server's cache"
            } else {
                ""
            }
        );
    }
    report_from_response(&response)
        .map_err(|reason| anyhow::anyhow!("the server's answer: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::registry_of;

    #[test]
    fn credentials_go_to_the_targets_registry() {
        assert_eq!(
            registry_of("docker://127.0.0.1:5000/x/y:1"),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_of("ghcr.io/org/image@sha256:ab"), "ghcr.io");
        assert_eq!(registry_of("localhost/image:1"), "localhost");
        assert_eq!(registry_of("docker://library/debian:12"), "docker.io");
        assert_eq!(registry_of("debian:12"), "docker.io");
    }
}
