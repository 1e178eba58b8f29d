//! The image scanner as a service of `palisade up`, over gRPC: an image (Alpine 3.4's real apk
//! database packed with umoci) is scanned before any vulnerability data exists; importing
//! Alpine's real v3.4 secdb with the CLI while the server runs raises its findings without a
//! new scan and without reading a layer; the findings are searchable for the tenant that
//! scanned and invisible to another; changing an advisory resolves the findings it no longer
//! names and raises the new ones; deleting a tenant erases its findings and what the scanner
//! kept of it. The offline CLI scan of the same image is the reference.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::scanner_service_client::ScannerServiceClient;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{
    ComponentStatus, GetStatusRequest, GetVulnDbStatusRequest, ScanImageRequest, SearchRequest,
    finding, search_hit,
};
use palisade_testkit::{Server, corpus_path};
use tokio::time::Instant;

mod common;

use common::palisade as cli;

/// Search results of `query` for the token's tenant: (total, the findings' (cve, resolved)).
async fn findings_of(server: &Server, token: &str, query: &str) -> (u64, Vec<(String, bool)>) {
    let (channel, interceptor) = common::authenticated(server, token).await;
    let mut client = SearchServiceClient::with_interceptor(channel, interceptor);
    let response = client
        .search(SearchRequest {
            query: query.to_string(),
            page: Some(palisade_proto::v1::PageRequest {
                limit: 1000,
                cursor: String::new(),
            }),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    let findings = response
        .hits
        .iter()
        .map(|hit| match &hit.document {
            Some(search_hit::Document::Finding(found)) => match &found.detail {
                Some(finding::Detail::Vulnerability(detail)) => {
                    (detail.vulnerability_id.clone(), found.resolved)
                }
                _ => panic!("a vulnerability finding expected: {found:?}"),
            },
            other => panic!("a finding expected, got {other:?}"),
        })
        .collect();
    (response.total, findings)
}

/// Waits until `query` counts `expected` findings for the token's tenant.
async fn wait_for(server: &Server, token: &str, query: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (total, _) = findings_of(server, token, query).await;
        if total == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query:?} stuck at {total}, expected {expected}; server log:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (advisory id, package) of every vulnerability of a JSON report, sorted.
fn advisories_and_packages(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report["vulnerabilities"]
        .as_array()
        .expect("vulnerabilities")
        .iter()
        .map(|v| {
            (
                v["id"].as_str().expect("id").to_string(),
                v["package"].as_str().expect("package").to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn metric(server: &Server, name: &str) -> u64 {
    let output = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(server.ca_file())
        .arg(format!("{}/metrics", server.http_url_of("scanner")))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn scans_become_findings_that_follow_the_vulnerability_database() {
    let temp = tempfile::tempdir().expect("temp");
    let images = temp.path().join("images");
    std::fs::create_dir(&images).expect("mkdir");
    let root = common::alpine_rootfs(&images);
    let image = format!("oci:{}", common::umoci_image(&images, &root));
    let data_dir = temp.path().join("data");
    let config = temp.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[scanner]\nlocal_roots = [{:?}]\nrematch_check_seconds = 1\n",
            images.display().to_string()
        ),
    )
    .expect("config");
    let server = Server::start_with_config(&data_dir, Some(&config));
    let token = server.admin_token();
    let (channel, interceptor) = common::authenticated(&server, &token).await;
    let mut scanner = ScannerServiceClient::with_interceptor(channel, interceptor);
    let scan = |image: &str| ScanImageRequest {
        image: image.to_string(),
        ..Default::default()
    };

    // Refusals: a path outside local_roots, a missing image inside them, a bad reference.
    let refused = scanner
        .scan_image(scan("dir:/etc"))
        .await
        .expect_err("outside local_roots");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("local_roots"), "{refused:?}");
    let escape = format!("dir:{}/../data", images.display());
    let refused = scanner
        .scan_image(scan(&escape))
        .await
        .expect_err(".. out of a root");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let missing = format!("oci:{}/nothing-here:1", images.display());
    let missing = scanner
        .scan_image(scan(&missing))
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let invalid = scanner.scan_image(scan("")).await.expect_err("empty");
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument, "{invalid:?}");

    // Before any vulnerability data: packages, no findings.
    let first = scanner
        .scan_image(scan(&image))
        .await
        .expect("scan")
        .into_inner();
    assert!(!first.from_cache);
    assert_eq!(first.os, "alpine 3.4.6");
    assert!(
        first.packages.len() > 10,
        "{} packages",
        first.packages.len()
    );
    assert!(first.vulnerabilities.is_empty());
    let layers_after_first_scan = metric(&server, "palisade_scanner_layers_read_total");
    assert_eq!(layers_after_first_scan, 1, "one layer read");

    // The reference: the offline scan of the same image against the same data.
    let secdb = temp.path().join("main.yaml");
    std::fs::copy(corpus_path("vulndb/alpine-secdb/v3.4/main.yaml"), &secdb).expect("copy");
    let reference_db = temp.path().join("reference-db");
    let offline = |database: &Path| -> Vec<(String, String)> {
        let output = cli(&[
            "scan",
            "image",
            &image,
            "--db",
            database.to_str().expect("path"),
            "--format",
            "json",
            "-q",
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        advisories_and_packages(&report)
    };
    let import_reference = cli(&[
        "vulndb",
        "import",
        "--db",
        reference_db.to_str().expect("path"),
        secdb.to_str().expect("path"),
    ]);
    assert!(import_reference.status.success());
    let expected = offline(&reference_db);
    assert!(expected.len() > 20, "{} reference findings", expected.len());

    // Import into the server's database while it runs: the findings appear without a scan.
    common::vulndb_import(&server.service_data_dir("scanner"), &secdb);
    wait_for(&server, &token, "kind:vulnerability", expected.len() as u64).await;
    let (_, mut indexed) = findings_of(&server, &token, "kind:vulnerability").await;
    indexed.sort();
    assert!(indexed.iter().all(|(_, resolved)| !resolved));
    let mut indexed_ids: Vec<String> = indexed.into_iter().map(|(id, _)| id).collect();
    let mut expected_ids: Vec<String> = expected.iter().map(|(id, _)| id.clone()).collect();
    indexed_ids.sort();
    expected_ids.sort();
    assert_eq!(
        indexed_ids, expected_ids,
        "the server found what the CLI finds"
    );
    assert_eq!(
        metric(&server, "palisade_scanner_layers_read_total"),
        layers_after_first_scan,
        "the re-match read no layer"
    );

    // Scanning again: from the cache, same findings, nothing new.
    let again = scanner
        .scan_image(scan(&image))
        .await
        .expect("scan")
        .into_inner();
    assert!(again.from_cache);
    assert_eq!(again.vulnerabilities.len(), expected.len());
    assert_eq!((again.new_findings, again.resolved_findings), (0, 0));
    let status = scanner
        .get_vuln_db_status(GetVulnDbStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.generation, 1);
    assert!(status.records > 0);

    // The CLI asks the server and writes the same report as an offline scan.
    let remote = common::palisade_for(
        &server,
        &[
            "scan",
            "image",
            &image,
            "--server",
            &server.grpc_url,
            "--token",
            &token,
            "--format",
            "json",
            "--exit-code",
            "4",
            "-q",
        ],
    );
    assert_eq!(
        remote.status.code(),
        Some(4),
        "findings trip the gate: {}",
        String::from_utf8_lossy(&remote.stderr)
    );
    let remote: serde_json::Value = serde_json::from_slice(&remote.stdout).expect("json");
    assert_eq!(
        advisories_and_packages(&remote),
        expected,
        "the server's report equals the offline one"
    );
    assert_eq!(
        remote["packages"].as_array().expect("packages").len(),
        first.packages.len()
    );
    assert!(
        remote["issues"]
            .as_array()
            .expect("issues")
            .iter()
            .any(|issue| issue["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("no version"))),
        "the apk database's invalid entry is reported through the server too: {remote}"
    );

    // Another tenant sees none of it, and its own scan of the same image is its own.
    let created = server.cli(&["admin", "tenant", "create", "globex", "--format", "json"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).expect("json");
    let globex = created["api_key"].as_str().expect("api key").to_string();
    assert_eq!(
        findings_of(&server, &globex, "kind:vulnerability").await.0,
        0
    );
    let (channel, interceptor) = common::authenticated(&server, &globex).await;
    let mut globex_scanner = ScannerServiceClient::with_interceptor(channel, interceptor);
    let theirs = globex_scanner
        .scan_image(scan(&image))
        .await
        .expect("globex scan")
        .into_inner();
    assert_eq!(theirs.new_findings as usize, expected.len());
    wait_for(
        &server,
        &globex,
        "kind:vulnerability",
        expected.len() as u64,
    )
    .await;
    wait_for(&server, &token, "kind:vulnerability", expected.len() as u64).await;

    // An advisory changes: the secdb now names another id for one fix. Its findings resolve,
    // the new id's are raised, for both tenants, from the cached SBOMs.
    let (changed_id, _) = expected[0].clone();
    let affected = expected.iter().filter(|(id, _)| *id == changed_id).count() as u64;
    let text = std::fs::read_to_string(&secdb).expect("read");
    assert_eq!(
        text.matches(&changed_id).count(),
        1,
        "{changed_id} once in the secdb"
    );
    std::fs::write(&secdb, text.replace(&changed_id, "CVE-2000-0001")).expect("write");
    common::vulndb_import(&server.service_data_dir("scanner"), &secdb);
    let resolved_query = format!("cve:{changed_id} AND resolved:true");
    wait_for(&server, &token, &resolved_query, affected).await;
    wait_for(
        &server,
        &token,
        "cve:CVE-2000-0001 AND resolved:false",
        affected,
    )
    .await;
    wait_for(&server, &globex, &resolved_query, affected).await;
    wait_for(
        &server,
        &token,
        "kind:vulnerability AND resolved:false",
        expected.len() as u64,
    )
    .await;
    assert_eq!(
        metric(&server, "palisade_scanner_layers_read_total"),
        layers_after_first_scan,
        "no layer read for either re-match"
    );

    // The platform's status counts every tenant's data: the operator sees the numbers (two
    // tenants scanned the image), another tenant's admin only the components' states.
    let components = |token: String| {
        let server = &server;
        async move {
            let (channel, interceptor) = common::authenticated(server, &token).await;
            AdminServiceClient::with_interceptor(channel, interceptor)
                .get_status(GetStatusRequest {})
                .await
                .expect("status")
                .into_inner()
                .components
        }
    };
    let operator: Vec<ComponentStatus> = components(token.clone()).await;
    let scanner_component = operator
        .iter()
        .find(|component| component.name == "scanner")
        .expect("scanner in status");
    assert_eq!(scanner_component.metrics["images"], "2");
    let tenant_view: Vec<ComponentStatus> = components(globex.clone()).await;
    assert_eq!(tenant_view.len(), operator.len());
    for component in &tenant_view {
        assert!(
            component.detail.is_empty() && component.metrics.is_empty(),
            "another tenant sees platform-wide numbers: {component:?}"
        );
    }

    // A read-only key may ask the status but not scan.
    let key = server.cli(&[
        "admin",
        "key",
        "create",
        "viewer",
        "--role",
        "read-only",
        "--format",
        "json",
    ]);
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let key: serde_json::Value = serde_json::from_slice(&key.stdout).expect("json");
    let viewer = key["api_key"].as_str().expect("api key").to_string();
    let (channel, interceptor) = common::authenticated(&server, &viewer).await;
    let mut viewer_scanner = ScannerServiceClient::with_interceptor(channel, interceptor);
    let denied = viewer_scanner
        .scan_image(scan(&image))
        .await
        .expect_err("read-only scan");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    viewer_scanner
        .get_vuln_db_status(GetVulnDbStatusRequest {})
        .await
        .expect("read-only status");

    // Deleting globex erases its findings and has the scanner forget what it scanned: a
    // globex created again and scanning the same image gets every finding raised afresh.
    let deleted = server.cli(&["admin", "tenant", "delete", "globex", "--format", "json"]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let deleted: serde_json::Value = serde_json::from_slice(&deleted.stdout).expect("json");
    assert_eq!(deleted["scanned_images_removed"], 1, "{deleted}");
    let erased = deleted["records_erased"]["findings"]
        .as_u64()
        .expect("count");
    assert_eq!(
        erased,
        expected.len() as u64 + 2 * affected,
        "raised, then resolved and raised anew: {deleted}"
    );
    let created = server.cli(&["admin", "tenant", "create", "globex", "--format", "json"]);
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).expect("json");
    let globex = created["api_key"].as_str().expect("api key").to_string();
    wait_for(&server, &globex, "kind:vulnerability", 0).await;
    let (channel, interceptor) = common::authenticated(&server, &globex).await;
    let fresh = ScannerServiceClient::with_interceptor(channel, interceptor)
        .scan_image(scan(&image))
        .await
        .expect("scan of the new globex")
        .into_inner();
    assert_eq!(fresh.new_findings as usize, expected.len());
    wait_for(
        &server,
        &globex,
        "kind:vulnerability AND resolved:false",
        expected.len() as u64,
    )
    .await;
    wait_for(&server, &globex, "resolved:true", 0).await;
    wait_for(
        &server,
        &token,
        "kind:vulnerability AND resolved:false",
        expected.len() as u64,
    )
    .await;
}
