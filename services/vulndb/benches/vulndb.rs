//! Benchmarks of palisade-vulndb, each against a named limit measured in the same run:
//!
//! - import of the whole corpora/vulndb into a fresh database, against parsing the same feeds
//!   into memory without storing them (the parse-only limit);
//! - warm re-match of a realistic SBOM (the 741 packages of the Debian 12 dpkg status, as
//!   dpkg-query lists them, plus the language packages of the corpus lock files) against the
//!   whole database, against only reading and decoding the index entries the same packages
//!   touch (the lookup-only limit). Target: under 50 ms.
//!
//! Run: `cargo bench -p palisade-vulndb` (needs the corpora, like the tests).

#![allow(clippy::disallowed_types)] // wall-clock timing of blocking work

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use palisade_testkit::corpus_path;
use palisade_vulndb::ecosystem::os_ecosystem_keys;
use palisade_vulndb::import::{CollectingSink, ImportLimits, discover_sources, import_unit};
use palisade_vulndb::{MatchOptions, OsRelease, PackageKind, PackageQuery, VulnDb};

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[index]
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
}

fn directory_bytes(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

/// The Debian 12 SBOM as dpkg-query printed it: name|version|source|source version|arch|status.
fn debian_packages() -> Result<Vec<PackageQuery>> {
    let listing = std::fs::read_to_string(corpus_path(
        "images/expected/debian-bookworm-dpkg-status.packages.txt",
    ))?;
    let mut packages = Vec::new();
    for line in listing.lines().filter(|line| !line.starts_with('#')) {
        let fields: Vec<&str> = line.split('|').collect();
        anyhow::ensure!(fields.len() >= 4, "unexpected line {line:?}");
        let mut package = PackageQuery::new(PackageKind::Deb, fields[0], fields[1]);
        package.source_name = Some(fields[2].to_owned());
        package.source_version = Some(fields[3].to_owned());
        package.purl = Some(format!(
            "pkg:deb/debian/{}@{}?distro=debian-12",
            fields[0], fields[1]
        ));
        packages.push(package);
    }
    Ok(packages)
}

/// Language packages of the corpus lock files (Cargo.lock, poetry.lock, package-lock v3, go.mod).
fn language_packages() -> Result<Vec<PackageQuery>> {
    let mut packages = Vec::new();
    for (file, kind) in [
        ("images/lockfiles/rust/Cargo.lock", PackageKind::Cargo),
        ("images/lockfiles/python/poetry.lock", PackageKind::PyPI),
    ] {
        let document: toml::Value = toml::from_str(&std::fs::read_to_string(corpus_path(file))?)?;
        for package in document
            .get("package")
            .and_then(toml::Value::as_array)
            .context("no [[package]]")?
        {
            let name = package
                .get("name")
                .and_then(toml::Value::as_str)
                .context("no name")?;
            let version = package
                .get("version")
                .and_then(toml::Value::as_str)
                .context("no version")?;
            packages.push(PackageQuery::new(kind, name, version));
        }
    }
    let lock: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(corpus_path(
        "images/lockfiles/npm/package-lock-v3.json",
    ))?)?;
    for (path, entry) in lock
        .get("packages")
        .and_then(serde_json::Value::as_object)
        .context("no packages")?
    {
        let Some(name) = path
            .rsplit("node_modules/")
            .next()
            .filter(|name| !name.is_empty() && path.contains("node_modules/"))
        else {
            continue;
        };
        if let Some(version) = entry.get("version").and_then(serde_json::Value::as_str) {
            packages.push(PackageQuery::new(PackageKind::Npm, name, version));
        }
    }
    for line in std::fs::read_to_string(corpus_path("images/lockfiles/go/go.mod"))?.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [module, version, ..] = words.as_slice()
            && module.contains('.')
            && version.starts_with('v')
        {
            packages.push(PackageQuery::new(PackageKind::Go, module, version));
        }
    }
    // A few packages with known advisories in the corpus, as a real image would carry.
    for (kind, name, version) in [
        (PackageKind::PyPI, "jinja2", "2.10"),
        (PackageKind::PyPI, "requests", "2.19.0"),
        (PackageKind::PyPI, "urllib3", "1.24.1"),
        (PackageKind::Go, "golang.org/x/text", "v0.3.6"),
        (
            PackageKind::Go,
            "golang.org/x/net",
            "v0.0.0-20210226172049-e18ecbb05110",
        ),
        (PackageKind::Go, "stdlib", "1.20.1"),
        (PackageKind::Cargo, "smallvec", "0.6.9"),
        (PackageKind::Cargo, "tokio", "1.8.0"),
        (PackageKind::Npm, "minimist", "1.2.5"),
        (
            PackageKind::Maven,
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
        ),
    ] {
        packages.push(PackageQuery::new(kind, name, version));
    }
    Ok(packages)
}

fn main() -> Result<()> {
    let corpus = corpus_path("vulndb");
    let paths: Vec<PathBuf> = vec![corpus.clone()];
    let corpus_bytes = directory_bytes(&corpus);

    // Limit for import: parse every feed into memory, store nothing.
    let parse_runs = 3;
    let mut parse_times = Vec::new();
    let mut parsed_advisories = 0;
    for _ in 0..parse_runs {
        let started = Instant::now();
        let mut sink = CollectingSink::default();
        for unit in discover_sources(&paths)? {
            import_unit(&unit, &ImportLimits::default(), &mut sink)?;
        }
        parse_times.push(started.elapsed());
        parsed_advisories = sink.advisories.len();
    }
    let parse_median = median(&mut parse_times);

    let mut import_times = Vec::new();
    let mut directories = Vec::new();
    let mut entries = 0;
    for _ in 0..parse_runs {
        let directory = tempfile::tempdir()?;
        let db = VulnDb::open(directory.path().join("db"))?;
        let started = Instant::now();
        let report = db.import_paths(&paths, &ImportLimits::default())?;
        db.flush()?;
        import_times.push(started.elapsed());
        anyhow::ensure!(
            report.issues.is_empty(),
            "import issues: {:?}",
            report.issues
        );
        let status = db.status()?;
        entries = status.affected_entries;
        let mut slowest = status.sources.clone();
        slowest.sort_by_key(|source| std::cmp::Reverse(source.import_millis));
        for source in slowest.iter().take(6) {
            println!(
                "  source {} took {} ms ({} advisories, {} entries)",
                source.name, source.import_millis, source.advisories, source.affected_entries
            );
        }
        directories.push(directory);
    }
    let import_median = median(&mut import_times);
    let db_directory = directories.pop().context("a database was built")?;
    let database_bytes = directory_bytes(db_directory.path());

    // Warm re-match: a freshly opened database, the first match measured separately (cold
    // page cache of sled), then repeated matches of the same cached SBOM.
    let db = VulnDb::open(db_directory.path().join("db"))?;
    let os = OsRelease::new("debian", "12");
    let mut sbom = debian_packages()?;
    let debian_count = sbom.len();
    sbom.extend(language_packages()?);
    let options = MatchOptions::default();
    let cold_started = Instant::now();
    let first = db.match_packages(Some(&os), &sbom, &options)?;
    let cold = cold_started.elapsed();
    let iterations = 200;
    let mut match_times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let report = db.match_packages(Some(&os), &sbom, &options)?;
        match_times.push(started.elapsed());
        anyhow::ensure!(
            report.matches.len() == first.matches.len(),
            "matching is not deterministic"
        );
    }
    let match_median = median(&mut match_times);
    let match_p95 = percentile(&mut match_times, 0.95);

    // Limit for matching: read and decode the index entries of the same lookups, no evaluation.
    let mut lookup_times = Vec::with_capacity(iterations);
    let mut touched = 0;
    for _ in 0..iterations {
        let started = Instant::now();
        touched = 0;
        for package in &sbom {
            let keys: Vec<(String, String)> = match package.kind.language_ecosystem() {
                Some(ecosystem) => vec![(ecosystem.to_owned(), package.name.clone())],
                None => os_ecosystem_keys(&os, package.kind, false)
                    .into_iter()
                    .map(|key| {
                        (
                            key,
                            package
                                .source_name
                                .clone()
                                .unwrap_or_else(|| package.name.clone()),
                        )
                    })
                    .collect(),
            };
            for (ecosystem, name) in keys {
                touched += db.affected_entries(&ecosystem, &name)?.len();
            }
        }
        lookup_times.push(started.elapsed());
    }
    let lookup_median = median(&mut lookup_times);

    let per_second = |count: usize, duration: Duration| count as f64 / duration.as_secs_f64();
    println!("palisade-vulndb benchmark");
    println!(
        "corpus: {} bytes, {parsed_advisories} advisories, {entries} indexed entries; database {database_bytes} bytes on disk",
        corpus_bytes
    );
    println!(
        "import (median of {parse_runs}): {:.0} ms = {:.0} advisories/s, {:.1} MB/s of feed",
        milliseconds(import_median),
        per_second(parsed_advisories, import_median),
        corpus_bytes as f64 / 1e6 / import_median.as_secs_f64()
    );
    println!(
        "  limit, parse only (median of {parse_runs}): {:.0} ms; import / parse = {:.2}x",
        milliseconds(parse_median),
        import_median.as_secs_f64() / parse_median.as_secs_f64()
    );
    println!(
        "re-match of {} packages ({debian_count} Debian 12 + {} language) -> {} vulnerabilities",
        sbom.len(),
        sbom.len() - debian_count,
        first.matches.len()
    );
    println!("  first match after open: {:.2} ms", milliseconds(cold));
    println!(
        "  warm (median of {iterations}): {:.2} ms, p95 {:.2} ms; target < 50 ms",
        milliseconds(match_median),
        milliseconds(match_p95)
    );
    println!(
        "  limit, lookup + decode only ({touched} entries, median): {:.2} ms; match / lookup = {:.2}x",
        milliseconds(lookup_median),
        match_median.as_secs_f64() / lookup_median.as_secs_f64()
    );
    if let Some(peak) = peak_rss_kib() {
        println!("peak RSS of the benchmark process: {} MiB", peak / 1024);
    }
    Ok(())
}
