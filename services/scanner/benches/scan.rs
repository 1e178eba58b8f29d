//! Cold scan of a real multi-layer image against the limit measured in the same run:
//! decompressing the same layers to /dev/null with the same decompressor. Also the warm
//! re-match of the cached SBOM against the whole corpus vulnerability database, and peak memory.
//!
//! The image is built from this machine's own Debian installation (real files: /etc and the
//! dpkg database, /usr/bin and /usr/sbin, /usr/lib/jvm or /usr/lib/gcc), one gzip layer each,
//! as an OCI layout in a temporary directory. Run: `cargo bench -p palisade-scanner --bench scan`.

// A synchronous benchmark: wall-clock timing with std's clock.
#![allow(clippy::disallowed_types)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

const TAG: &str = "bench";

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| {
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|value| value.parse().ok())
                })
        })
        .unwrap_or(0)
}

/// One gzip layer of the given host directories, written as a blob; returns (digest, size).
fn write_layer(blobs: &Path, sources: &[&str]) -> Result<(String, u64)> {
    let temporary = blobs.join("layer.tmp");
    let file = std::fs::File::create(&temporary)?;
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::new(3));
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    for source in sources {
        let path = Path::new(source);
        if path.exists() {
            builder
                .append_dir_all(source.trim_start_matches('/'), path)
                .with_context(|| format!("packing {source}"))?;
        }
    }
    builder.into_inner()?.finish()?.sync_all()?;
    let digest = hex::encode(Sha256::digest(std::fs::read(&temporary)?));
    let size = std::fs::metadata(&temporary)?.len();
    std::fs::rename(&temporary, blobs.join(&digest))?;
    Ok((format!("sha256:{digest}"), size))
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let digest = hex::encode(Sha256::digest(bytes));
    std::fs::write(blobs.join(&digest), bytes)?;
    Ok((format!("sha256:{digest}"), bytes.len() as u64))
}

fn build_image(root: &Path) -> Result<Vec<PathBuf>> {
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let third = if Path::new("/usr/lib/jvm").exists() {
        "/usr/lib/jvm"
    } else {
        "/usr/lib/gcc"
    };
    let layer_sources: [&[&str]; 3] = [
        &["/etc", "/var/lib/dpkg", "/usr/lib/python3"],
        &["/usr/bin", "/usr/sbin"],
        &[third],
    ];
    let mut layers = Vec::new();
    let mut paths = Vec::new();
    for sources in layer_sources {
        let (digest, size) = write_layer(&blobs, sources)?;
        paths.push(blobs.join(digest.trim_start_matches("sha256:")));
        layers.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}));
    }
    let config = serde_json::to_vec(
        &serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    )?;
    let (config_digest, config_size) = write_blob(&blobs, &config)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers,
    }))?;
    let (manifest_digest, manifest_size) = write_blob(&blobs, &manifest)?;
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    std::fs::write(
        root.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": TAG}}]}))?,
    )?;
    Ok(paths)
}

/// The limit: decompress every layer to /dev/null, nothing else.
fn decompress_only(layers: &[PathBuf]) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let mut total = 0;
    for layer in layers {
        let mut reader = palisade_scanner::decompressing_reader(std::fs::File::open(layer)?)?;
        total += std::io::copy(&mut reader, &mut std::io::sink())?;
    }
    Ok((started.elapsed(), total))
}

fn scan_once(image: &Path) -> Result<(Duration, palisade_scanner::Sbom)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let options = palisade_scanner::ScanOptions::new(format!("oci:{}:{TAG}", image.display()));
    let started = Instant::now();
    let sbom = runtime.block_on(palisade_scanner::build_sbom(&options))?;
    Ok((started.elapsed(), sbom))
}

fn main() -> Result<()> {
    // Child mode: one cold scan, reporting its own peak memory.
    if let Ok(image) = std::env::var("PALISADE_BENCH_SCAN_CHILD") {
        let (elapsed, sbom) = scan_once(Path::new(&image))?;
        println!(
            "{} {} {}",
            elapsed.as_secs_f64(),
            sbom.packages.len(),
            peak_rss_kib()
        );
        return Ok(());
    }
    if std::env::args().any(|argument| argument == "--list") {
        return Ok(()); // cargo bench --list
    }
    let workspace = tempfile::tempdir()?;
    let image = workspace.path().join("image");
    eprintln!("building a 3-layer image from this machine's files ...");
    let layers = build_image(&image)?;
    let compressed: u64 = layers
        .iter()
        .map(|l| std::fs::metadata(l).map(|m| m.len()).unwrap_or(0))
        .sum();

    let rounds = 3;
    let mut limit_times = Vec::new();
    let mut scan_times = Vec::new();
    let mut peaks = Vec::new();
    let mut decompressed = 0;
    let mut packages = 0;
    let executable = std::env::current_exe()?;
    for _ in 0..rounds {
        let (limit, bytes) = decompress_only(&layers)?;
        limit_times.push(limit.as_secs_f64());
        decompressed = bytes;
        let output = Command::new(&executable)
            .env("PALISADE_BENCH_SCAN_CHILD", &image)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "scan child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<&str> = text.split_whitespace().collect();
        scan_times.push(
            fields
                .first()
                .and_then(|f| f.parse::<f64>().ok())
                .context("child output")?,
        );
        packages = fields
            .get(1)
            .and_then(|f| f.parse::<usize>().ok())
            .unwrap_or(0);
        peaks.push(
            fields
                .get(2)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0),
        );
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(|a, b| a.total_cmp(b));
        values[values.len() / 2]
    };
    let limit = median(&mut limit_times);
    let scan = median(&mut scan_times);

    // Warm re-match: the cached SBOM against the whole corpus vulnerability database.
    let (_, sbom) = scan_once(&image)?;
    let corpora = palisade_testkit::corpus_path("vulndb");
    let database = palisade_vulndb::VulnDb::open(workspace.path().join("vulndb"))?;
    let import_started = Instant::now();
    let import_paths = vec![
        corpora.join("osv"),
        corpora.join("rustsec"),
        corpora.join("alpine-secdb"),
        corpora.join("debian-security-tracker"),
    ];
    database.import_paths(&import_paths, &palisade_vulndb::ImportLimits::default())?;
    let import_time = import_started.elapsed();
    let matcher = palisade_scanner::VulnDbMatcher::new(
        database,
        palisade_vulndb::matcher::MatchOptions::default(),
    );
    let _ = palisade_scanner::match_sbom(sbom.clone(), Some(&matcher))?;
    let mut rematch_times = Vec::new();
    let mut findings = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let report = palisade_scanner::match_sbom(sbom.clone(), Some(&matcher))?;
        rematch_times.push(started.elapsed().as_secs_f64() * 1000.0);
        findings = report.vulnerabilities.len();
    }
    let rematch = median(&mut rematch_times);

    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "image: 3 gzip layers, {:.0} MiB compressed, {:.0} MiB decompressed, {packages} packages",
        mib(compressed),
        mib(decompressed)
    )?;
    writeln!(
        out,
        "limit (decompress to /dev/null), median of {rounds}: {limit:.2} s"
    )?;
    writeln!(
        out,
        "cold scan (oci layout -> SBOM), median of {rounds}: {scan:.2} s"
    )?;
    writeln!(
        out,
        "ratio scan/limit: {:.2}x (target <= 1.30x)",
        scan / limit
    )?;
    writeln!(
        out,
        "peak RSS of the scan process: {:.1} MiB (max of {rounds})",
        *peaks.iter().max().unwrap_or(&0) as f64 / 1024.0
    )?;
    writeln!(
        out,
        "vulndb import of the corpus: {:.1} s",
        import_time.as_secs_f64()
    )?;
    writeln!(
        out,
        "warm re-match of the cached SBOM against the whole database, median of 5: {rematch:.1} ms ({findings} findings; target < 50 ms)"
    )?;
    Ok(())
}
