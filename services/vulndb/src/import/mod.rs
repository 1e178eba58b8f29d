//! Reading feeds from disk: files, directories and zip archives, each recognised by its shape,
//! read with size limits, and handed record by record to a [`RecordSink`]. A bad record becomes
//! an [`ImportIssue`] naming the file and entry; the rest of the feed still imports.

pub mod debian;
pub mod osv;
pub mod rustsec;
pub mod secdb;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::VulnDbError;
use crate::model::Advisory;
use crate::vex::{self, VexStatement};

/// Size limits for untrusted feeds.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Largest single record (OSV JSON, RustSec Markdown, zip entry), in bytes.
    pub max_record_bytes: u64,
    /// Largest whole document (tracker JSON, secdb YAML, DSA list), in bytes.
    pub max_document_bytes: u64,
    /// Most entries read from one zip archive.
    pub max_zip_entries: usize,
    /// Most bytes decompressed from one zip archive in total.
    pub max_zip_total_bytes: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_record_bytes: 16 * 1024 * 1024,
            // The full Debian tracker JSON is about 70 MB.
            max_document_bytes: 512 * 1024 * 1024,
            max_zip_entries: 2_000_000,
            max_zip_total_bytes: 16 * 1024 * 1024 * 1024,
        }
    }
}

/// A record that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportIssue {
    /// File the record is in.
    pub file: String,
    /// Entry inside the file (zip entry, line, list index), when there is one.
    pub entry: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl ImportIssue {
    /// Builds an issue.
    pub fn new(file: &str, entry: Option<String>, message: String) -> Self {
        ImportIssue {
            file: file.to_owned(),
            entry,
            message,
        }
    }
}

impl std::fmt::Display for ImportIssue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.entry {
            Some(entry) => write!(formatter, "{} [{}]: {}", self.file, entry, self.message),
            None => write!(formatter, "{}: {}", self.file, self.message),
        }
    }
}

/// The feed formats the importer recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedFormat {
    /// OSV JSON records (loose files or an osv.dev `all.zip`).
    Osv,
    /// RustSec advisories.
    RustSec,
    /// Alpine secdb YAML.
    AlpineSecdb,
    /// Debian DSA/DLA lists.
    DebianAdvisoryList,
    /// Debian security tracker JSON.
    DebianTrackerJson,
    /// Parsed `data/CVE/list` entries.
    DebianCveList,
    /// VEX documents.
    Vex,
    /// A zip or directory holding several of the above.
    Mixed,
}

impl FeedFormat {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Osv => "osv",
            FeedFormat::RustSec => "rustsec",
            FeedFormat::AlpineSecdb => "alpine-secdb",
            FeedFormat::DebianAdvisoryList => "debian-advisory-list",
            FeedFormat::DebianTrackerJson => "debian-tracker-json",
            FeedFormat::DebianCveList => "debian-cve-list",
            FeedFormat::Vex => "vex",
            FeedFormat::Mixed => "mixed",
        }
    }
}

/// Receives what a source yields.
pub trait RecordSink {
    /// One advisory.
    fn advisory(&mut self, advisory: Advisory, format: FeedFormat) -> Result<(), VulnDbError>;
    /// One VEX statement.
    fn vex_statement(&mut self, statement: VexStatement) -> Result<(), VulnDbError>;
    /// A bad record that was skipped.
    fn issue(&mut self, issue: ImportIssue);
}

/// One unit of import: a file, or a directory's loose record files taken together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUnit {
    /// A single file (zip, YAML, list, JSON document).
    File(PathBuf),
    /// Loose record files (OSV JSON, RustSec Markdown) of one directory.
    Directory {
        /// The directory.
        directory: PathBuf,
        /// Its record files, sorted.
        files: Vec<PathBuf>,
    },
}

impl SourceUnit {
    /// The name the source is tracked under (its path).
    pub fn name(&self) -> String {
        match self {
            SourceUnit::File(path) => path.display().to_string(),
            SourceUnit::Directory { directory, .. } => directory.display().to_string(),
        }
    }
}

fn is_loose_record(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|extension| extension.to_str()),
        Some("json" | "md")
    )
}

/// Splits the given paths into source units. Every JSON and Markdown file of a directory forms
/// one unit with the directory (an OSV or RustSec checkout can hold 100,000 of them); other files
/// are units of their own.
pub fn discover_sources(paths: &[PathBuf]) -> Result<Vec<SourceUnit>, VulnDbError> {
    let mut units = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| VulnDbError::Read {
            path: path.clone(),
            source,
        })?;
        if metadata.is_file() {
            units.push(SourceUnit::File(path.clone()));
            continue;
        }
        let mut loose: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> =
            std::collections::BTreeMap::new();
        // follow_links(false): a symlink loop in a feed checkout must not hang the import.
        for entry in walkdir::WalkDir::new(path)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|error| VulnDbError::Read {
                path: error.path().map_or_else(|| path.clone(), Path::to_path_buf),
                source: std::io::Error::other(error.to_string()),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let file = entry.into_path();
            if is_loose_record(&file) {
                let directory = file
                    .parent()
                    .map_or_else(|| path.clone(), Path::to_path_buf);
                loose.entry(directory).or_default().push(file);
            } else {
                units.push(SourceUnit::File(file));
            }
        }
        for (directory, files) in loose {
            units.push(SourceUnit::Directory { directory, files });
        }
    }
    Ok(units)
}

/// Reads at most `limit` bytes; more is an error naming the file.
pub fn read_bounded(
    reader: impl Read,
    limit: u64,
    name: &str,
    what: &'static str,
) -> Result<Vec<u8>, VulnDbError> {
    let mut buffer = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buffer)
        .map_err(|source| VulnDbError::Read {
            path: PathBuf::from(name),
            source,
        })?;
    if buffer.len() as u64 > limit {
        return Err(VulnDbError::TooLarge {
            path: name.to_owned(),
            what,
            limit,
        });
    }
    Ok(buffer)
}

fn read_file(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, VulnDbError> {
    let file = File::open(path).map_err(|source| VulnDbError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    read_bounded(file, limit, &path.display().to_string(), what)
}

/// What importing one unit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnitSummary {
    /// Whether anything in the unit was vulnerability data.
    pub recognised: bool,
    /// The format, when one was recognised (`Mixed` for several).
    pub format: Option<FeedFormat>,
}

impl UnitSummary {
    fn saw(&mut self, format: FeedFormat) {
        self.recognised = true;
        self.format = match self.format {
            None => Some(format),
            Some(existing) if existing == format => Some(existing),
            Some(_) => Some(FeedFormat::Mixed),
        };
    }
}

/// Imports one unit into the sink.
pub fn import_unit(
    unit: &SourceUnit,
    limits: &ImportLimits,
    sink: &mut dyn RecordSink,
) -> Result<UnitSummary, VulnDbError> {
    let mut summary = UnitSummary::default();
    match unit {
        SourceUnit::File(path) => import_file(path, limits, sink, &mut summary)?,
        SourceUnit::Directory { files, .. } => {
            for file in files {
                let name = file.display().to_string();
                match read_file(file, limits.max_record_bytes, "record") {
                    Ok(bytes) => import_record_bytes(&bytes, &name, None, sink, &mut summary)?,
                    Err(error @ VulnDbError::TooLarge { .. }) => {
                        sink.issue(ImportIssue::new(&name, None, error.to_string()))
                    }
                    Err(error) => return Err(error),
                }
            }
        }
    }
    Ok(summary)
}

fn import_file(
    path: &Path,
    limits: &ImportLimits,
    sink: &mut dyn RecordSink,
    summary: &mut UnitSummary,
) -> Result<(), VulnDbError> {
    let name = path.display().to_string();
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or("");
    match extension {
        "zip" => import_zip(path, limits, sink, summary),
        "yaml" | "yml" => {
            let bytes = read_file(path, limits.max_document_bytes, "document")?;
            let text = String::from_utf8_lossy(&bytes);
            if !secdb::looks_like_secdb(&text) {
                return Ok(());
            }
            match secdb::parse_document(&text, &name) {
                Ok((advisories, issues)) => {
                    summary.saw(FeedFormat::AlpineSecdb);
                    for advisory in advisories {
                        sink.advisory(advisory, FeedFormat::AlpineSecdb)?;
                    }
                    issues.into_iter().for_each(|issue| sink.issue(issue));
                }
                Err(message) => sink.issue(ImportIssue::new(&name, None, message)),
            }
            Ok(())
        }
        "list" => {
            let bytes = read_file(path, limits.max_document_bytes, "document")?;
            let text = String::from_utf8_lossy(&bytes);
            let (advisories, issues) = debian::parse_advisory_list(&text, &name);
            if !advisories.is_empty() {
                summary.saw(FeedFormat::DebianAdvisoryList);
            }
            for advisory in advisories {
                sink.advisory(advisory, FeedFormat::DebianAdvisoryList)?;
            }
            issues.into_iter().for_each(|issue| sink.issue(issue));
            Ok(())
        }
        "json" | "md" => {
            let limit = if extension == "json" {
                limits.max_document_bytes
            } else {
                limits.max_record_bytes
            };
            let bytes = read_file(path, limit, "document")?;
            import_record_bytes(&bytes, &name, None, sink, summary)
        }
        // Anything else (test tables, provenance notes) is not vulnerability data.
        _ => Ok(()),
    }
}

/// Imports one JSON or Markdown record, recognising its shape.
fn import_record_bytes(
    bytes: &[u8],
    file: &str,
    entry: Option<String>,
    sink: &mut dyn RecordSink,
    summary: &mut UnitSummary,
) -> Result<(), VulnDbError> {
    let trimmed = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .map_or(&[][..], |start| &bytes[start..]);
    if trimmed.first() != Some(&b'{') {
        let text = String::from_utf8_lossy(bytes);
        if !rustsec::looks_like_advisory(&text) {
            // Markdown that is not an advisory (a README) is not vulnerability data.
            return Ok(());
        }
        match rustsec::parse_advisory(&text) {
            Ok(advisory) => {
                summary.saw(FeedFormat::RustSec);
                sink.advisory(advisory, FeedFormat::RustSec)?;
            }
            Err(message) => sink.issue(ImportIssue::new(file, entry, message)),
        }
        return Ok(());
    }
    let value: serde_json::Value = match serde_json::from_slice(trimmed) {
        Ok(value) => value,
        Err(error) => {
            sink.issue(ImportIssue::new(
                file,
                entry,
                format!("invalid JSON: {error}"),
            ));
            return Ok(());
        }
    };
    if vex::detect(&value).is_some() {
        let document_name = entry.clone().unwrap_or_else(|| file.to_owned());
        match vex::parse_document(&value, &document_name) {
            Ok(statements) => {
                summary.saw(FeedFormat::Vex);
                for statement in statements {
                    sink.vex_statement(statement)?;
                }
            }
            Err(message) => sink.issue(ImportIssue::new(file, entry, message)),
        }
        return Ok(());
    }
    if debian::looks_like_parsed_cve_entry(&value) {
        match debian::parse_cve_list_entry(value) {
            Ok(advisory) => {
                summary.saw(FeedFormat::DebianCveList);
                sink.advisory(advisory, FeedFormat::DebianCveList)?;
            }
            Err(message) => sink.issue(ImportIssue::new(file, entry, message)),
        }
        return Ok(());
    }
    if value.get("id").is_some() {
        match osv::parse_record(trimmed) {
            Ok(advisory) => {
                summary.saw(FeedFormat::Osv);
                sink.advisory(advisory, FeedFormat::Osv)?;
            }
            Err(message) => sink.issue(ImportIssue::new(file, entry, message)),
        }
        return Ok(());
    }
    if debian::looks_like_tracker_json(&value) {
        let (advisories, issues) = debian::parse_tracker_json(value, file);
        summary.saw(FeedFormat::DebianTrackerJson);
        for advisory in advisories {
            sink.advisory(advisory, FeedFormat::DebianTrackerJson)?;
        }
        issues.into_iter().for_each(|issue| sink.issue(issue));
        return Ok(());
    }
    sink.issue(ImportIssue::new(
        file,
        entry,
        "JSON document of no known vulnerability format".to_owned(),
    ));
    Ok(())
}

fn import_zip(
    path: &Path,
    limits: &ImportLimits,
    sink: &mut dyn RecordSink,
    summary: &mut UnitSummary,
) -> Result<(), VulnDbError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| VulnDbError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|error| VulnDbError::Malformed {
        path: name.clone(),
        message: format!("not a readable zip archive: {error}"),
    })?;
    if archive.len() > limits.max_zip_entries {
        return Err(VulnDbError::TooLarge {
            path: name,
            what: "zip entry count",
            limit: limits.max_zip_entries as u64,
        });
    }
    let mut total_bytes: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(error) => {
                sink.issue(ImportIssue::new(
                    &name,
                    Some(format!("entry {index}")),
                    format!("unreadable zip entry: {error}"),
                ));
                continue;
            }
        };
        if entry.is_dir() {
            continue;
        }
        let entry_name = entry.name().to_owned();
        if !is_loose_record(Path::new(&entry_name)) {
            continue;
        }
        // The declared size is checked first, the bytes actually inflated are capped as well:
        // a zip bomb can lie about its size.
        if entry.size() > limits.max_record_bytes {
            sink.issue(ImportIssue::new(
                &name,
                Some(entry_name),
                format!(
                    "entry declares {} bytes, more than the record limit of {}",
                    entry.size(),
                    limits.max_record_bytes
                ),
            ));
            continue;
        }
        let bytes = match read_bounded(&mut entry, limits.max_record_bytes, &name, "zip entry") {
            Ok(bytes) => bytes,
            Err(VulnDbError::TooLarge { .. }) => {
                sink.issue(ImportIssue::new(
                    &name,
                    Some(entry_name),
                    format!(
                        "entry inflates past the record limit of {} bytes",
                        limits.max_record_bytes
                    ),
                ));
                continue;
            }
            Err(VulnDbError::Read { source, .. }) => {
                sink.issue(ImportIssue::new(
                    &name,
                    Some(entry_name),
                    format!("corrupt zip entry: {source}"),
                ));
                continue;
            }
            Err(error) => return Err(error),
        };
        total_bytes = total_bytes.saturating_add(bytes.len() as u64);
        if total_bytes > limits.max_zip_total_bytes {
            return Err(VulnDbError::TooLarge {
                path: name,
                what: "total decompressed size",
                limit: limits.max_zip_total_bytes,
            });
        }
        import_record_bytes(&bytes, &name, Some(entry_name), sink, summary)?;
    }
    Ok(())
}

/// A sink that keeps everything in memory, for tests and fuzzing.
#[derive(Debug, Default)]
pub struct CollectingSink {
    /// Advisories received.
    pub advisories: Vec<Advisory>,
    /// VEX statements received.
    pub vex_statements: Vec<VexStatement>,
    /// Issues received.
    pub issues: Vec<ImportIssue>,
}

impl RecordSink for CollectingSink {
    fn advisory(&mut self, advisory: Advisory, _format: FeedFormat) -> Result<(), VulnDbError> {
        self.advisories.push(advisory);
        Ok(())
    }

    fn vex_statement(&mut self, statement: VexStatement) -> Result<(), VulnDbError> {
        self.vex_statements.push(statement);
        Ok(())
    }

    fn issue(&mut self, issue: ImportIssue) {
        self.issues.push(issue);
    }
}

/// Fuzz entry point for the feed parsers: the bytes are tried as an OSV record, a RustSec
/// advisory, a secdb document, a DSA list, tracker JSON and a VEX document. None may panic.
pub fn fuzz_parse_feeds(data: &[u8]) {
    let mut sink = CollectingSink::default();
    let mut summary = UnitSummary::default();
    let _ = import_record_bytes(data, "fuzz", None, &mut sink, &mut summary);
    let _ = osv::parse_record(data);
    let text = String::from_utf8_lossy(data);
    let _ = rustsec::parse_advisory(&text);
    let _ = secdb::parse_document(&text, "fuzz");
    let _ = debian::parse_advisory_list(&text, "fuzz");
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = debian::parse_tracker_json(value.clone(), "fuzz");
        let _ = debian::parse_cve_list_entry(value);
    }
    vex::fuzz_parse(data);
}
