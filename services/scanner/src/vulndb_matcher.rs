//! The vulnerability database (palisade-vulndb) as the scan pipeline's matcher.

use palisade_vulndb::matcher::MatchOptions;
use palisade_vulndb::{FixState, OsRelease, PackageQuery, VulnDb};

use crate::matching::{Severity, Vulnerability, VulnerabilityMatcher};
use crate::sbom::{OsInfo, Package, PackageKind};

/// Matches SBOMs against a palisade-vulndb database.
pub struct VulnDbMatcher {
    database: VulnDb,
    options: MatchOptions,
}

impl VulnDbMatcher {
    /// Matches against `database` with `options` (unfixed, Ubuntu Pro, VEX ...).
    pub fn new(database: VulnDb, options: MatchOptions) -> Self {
        VulnDbMatcher { database, options }
    }
}

fn query_kind(kind: PackageKind) -> palisade_vulndb::PackageKind {
    use palisade_vulndb::PackageKind as Db;
    match kind {
        PackageKind::Deb => Db::Deb,
        PackageKind::Apk => Db::Apk,
        PackageKind::Rpm => Db::Rpm,
        PackageKind::Cargo => Db::Cargo,
        PackageKind::Go => Db::Go,
        PackageKind::Npm => Db::Npm,
        PackageKind::Python => Db::PyPI,
        PackageKind::Maven => Db::Maven,
        PackageKind::Gem => Db::RubyGems,
        PackageKind::Composer => Db::Packagist,
        PackageKind::Nuget => Db::NuGet,
    }
}

fn severity_of(severity: palisade_vulndb::Severity) -> Severity {
    use palisade_vulndb::Severity as Db;
    match severity {
        Db::Unknown => Severity::Unknown,
        Db::Negligible | Db::Low => Severity::Low,
        Db::Medium => Severity::Medium,
        Db::High => Severity::High,
        Db::Critical => Severity::Critical,
    }
}

fn fix_state_name(state: &FixState) -> &'static str {
    match state {
        FixState::Fixed => "fixed",
        FixState::NotFixed => "affected",
        FixState::WillNotFix => "will_not_fix",
        FixState::FixDeferred => "fix_deferred",
        FixState::EndOfLife => "end_of_life",
    }
}

/// The query the database expects for one SBOM package.
pub fn package_query(package: &Package) -> PackageQuery {
    let mut query = PackageQuery::new(query_kind(package.kind), &package.name, &package.version);
    query.source_name = package.source_name.clone();
    query.source_version = package.source_version.clone();
    query.purl = (!package.purl.is_empty()).then(|| package.purl.clone());
    query
}

impl VulnerabilityMatcher for VulnDbMatcher {
    fn describe(&self) -> String {
        match self.database.status() {
            Ok(status) => format!("palisade-vulndb: {} sources", status.sources.len()),
            Err(error) => format!("palisade-vulndb (status unavailable: {error})"),
        }
    }

    fn match_packages(
        &self,
        os: Option<&OsInfo>,
        packages: &[Package],
    ) -> Result<Vec<Vulnerability>, String> {
        let release = os.map(|os| OsRelease::new(&os.id, &os.version_id));
        let queries: Vec<PackageQuery> = packages.iter().map(package_query).collect();
        let report = self
            .database
            .match_packages(release.as_ref(), &queries, &self.options)
            .map_err(|error| error.to_string())?;
        let mut findings = Vec::with_capacity(report.matches.len());
        for found in report.matches {
            let Some(package) = packages.get(found.package_index) else {
                return Err(format!(
                    "match for package #{} outside the SBOM",
                    found.package_index
                ));
            };
            let mut severity = severity_of(found.severity.severity);
            if severity == Severity::Unknown
                && let Some(label) = found.severity_label.as_deref()
            {
                severity = severity_of(palisade_vulndb::Severity::from_label(label));
            }
            let mut finding = Vulnerability::for_package(package, found.ecosystem, found.id);
            finding.aliases = found.aliases;
            finding.fixed_version = found.fixed_version;
            finding.severity = severity;
            finding.cvss_score = found.severity.cvss_score;
            finding.summary = (!found.summary.is_empty()).then_some(found.summary);
            finding.status = Some(fix_state_name(&found.fix_state).to_string());
            findings.push(finding);
        }
        Ok(findings)
    }
}
