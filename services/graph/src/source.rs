//! Offline inventory sources: directories of manifests (YAML, multi-document, or JSON) and
//! `kubectl get ... -o json` dumps (a `List`, a bare array, or a directory of them).
//!
//! Input is untrusted: every file, document and object count is bounded, and each bad piece is
//! reported with its file and document index, then skipped; the rest is still read.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::{GraphError, Result};
use crate::object::{Object, Parsed, parse_object};

/// Limits applied to offline inputs.
#[derive(Debug, Clone, Copy)]
pub struct SourceLimits {
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
    /// Largest single YAML document, in bytes.
    pub max_document_bytes: usize,
    /// Most documents read from one file.
    pub max_documents_per_file: usize,
    /// Most objects kept in total.
    pub max_objects: usize,
    /// Deepest directory recursion.
    pub max_depth: usize,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            max_file_bytes: 64 * 1024 * 1024,
            max_document_bytes: 4 * 1024 * 1024,
            max_documents_per_file: 20_000,
            max_objects: 2_000_000,
            max_depth: 16,
        }
    }
}

/// Why a piece of input was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Not valid YAML or JSON.
    InvalidSyntax,
    /// A well-formed object of a kind the graph does not model.
    UnknownKind,
    /// Over a size or count limit.
    TooLarge,
    /// Valid YAML that is not a usable Kubernetes object.
    BadObject,
    /// The file could not be read.
    Unreadable,
}

/// One skipped piece of input.
#[derive(Debug, Clone, Serialize)]
pub struct SourceProblem {
    /// File concerned.
    pub file: PathBuf,
    /// Zero-based document index in the file (or item index in a list), when known.
    pub document: Option<usize>,
    /// First line of the document, when known.
    pub line: Option<usize>,
    /// Category.
    pub kind: ProblemKind,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for SourceProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.file.display())?;
        if let Some(document) = self.document {
            write!(formatter, " document {document}")?;
        }
        if let Some(line) = self.line {
            write!(formatter, " (line {line})")?;
        }
        write!(formatter, ": {}", self.message)
    }
}

/// What a source yielded.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Objects read.
    pub objects: Vec<Object>,
    /// Pieces skipped, with reasons.
    pub problems: Vec<SourceProblem>,
    /// Files read.
    pub files: usize,
}

/// Loads every manifest or dump under `path` (a file or a directory, recursively).
pub fn load_path(path: &Path, limits: &SourceLimits) -> Result<LoadReport> {
    let metadata = std::fs::metadata(path).map_err(|source| GraphError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut report = LoadReport::default();
    if metadata.is_dir() {
        let mut files = Vec::new();
        collect_files(path, 0, limits, &mut files, &mut report.problems);
        files.sort();
        for file in files {
            load_file(&file, limits, &mut report);
        }
    } else {
        load_file(path, limits, &mut report);
    }
    Ok(report)
}

fn collect_files(
    directory: &Path,
    depth: usize,
    limits: &SourceLimits,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<SourceProblem>,
) {
    if depth > limits.max_depth {
        problems.push(SourceProblem {
            file: directory.to_path_buf(),
            document: None,
            line: None,
            kind: ProblemKind::TooLarge,
            message: format!("directory nesting deeper than {}", limits.max_depth),
        });
        return;
    }
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) => {
            problems.push(unreadable(directory, &error));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            collect_files(&path, depth + 1, limits, files, problems);
        } else if file_type.is_file() && is_manifest_name(&path) {
            files.push(path);
        }
    }
}

fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|extension| extension.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn unreadable(path: &Path, error: &std::io::Error) -> SourceProblem {
    SourceProblem {
        file: path.to_path_buf(),
        document: None,
        line: None,
        kind: ProblemKind::Unreadable,
        message: format!("cannot read: {error}"),
    }
}

fn load_file(path: &Path, limits: &SourceLimits, report: &mut LoadReport) {
    let size = match std::fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        Err(error) => {
            report.problems.push(unreadable(path, &error));
            return;
        }
    };
    if size > limits.max_file_bytes {
        report.problems.push(SourceProblem {
            file: path.to_path_buf(),
            document: None,
            line: None,
            kind: ProblemKind::TooLarge,
            message: format!(
                "file is {size} bytes, over the {} byte limit",
                limits.max_file_bytes
            ),
        });
        return;
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            report.problems.push(unreadable(path, &error));
            return;
        }
    };
    report.files += 1;
    let (objects, problems) = parse_bytes(&bytes, limits);
    for mut problem in problems {
        problem.file = path.to_path_buf();
        report.problems.push(problem);
    }
    for object in objects {
        if report.objects.len() >= limits.max_objects {
            report.problems.push(SourceProblem {
                file: path.to_path_buf(),
                document: None,
                line: None,
                kind: ProblemKind::TooLarge,
                message: format!(
                    "more than {} objects in total; the rest is skipped",
                    limits.max_objects
                ),
            });
            return;
        }
        report.objects.push(object);
    }
}

/// A document of a multi-document YAML stream.
struct Document<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits a YAML stream at `---` document markers (and `...` end markers) at column 0.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (line_index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_start_marker =
            trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        let is_end_marker = trimmed == "...";
        if is_start_marker || is_end_marker {
            documents.push(Document {
                text: &text[start..offset],
                first_line: start_line,
            });
            // Content after `--- ` on the marker line belongs to the new document.
            start = if is_start_marker {
                offset + 3
            } else {
                offset + line.len()
            };
            start_line = line_index + 1;
        }
        offset += line.len();
    }
    documents.push(Document {
        text: &text[start.min(text.len())..],
        first_line: start_line,
    });
    documents
}

fn is_blank_document(text: &str) -> bool {
    text.lines().all(|line| {
        let trimmed = line.trim();
        trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('%')
    })
}

/// Parses one file's bytes into objects. Problems carry document indexes but no file.
pub fn parse_bytes(bytes: &[u8], limits: &SourceLimits) -> (Vec<Object>, Vec<SourceProblem>) {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    let problem =
        |document: Option<usize>, line: Option<usize>, kind, message: String| SourceProblem {
            file: PathBuf::new(),
            document,
            line,
            kind,
            message,
        };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.strip_prefix('\u{feff}').unwrap_or(text),
        Err(error) => {
            problems.push(problem(
                None,
                None,
                ProblemKind::InvalidSyntax,
                format!("not UTF-8: {error}"),
            ));
            return (objects, problems);
        }
    };
    let trimmed = text.trim_start();
    // JSON (a dump, a List, or a bare array) is parsed as one document.
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                expand_value(value, 0, Some(1), &mut objects, &mut problems, limits);
                return (objects, problems);
            }
            Err(json_error) if trimmed.starts_with('[') => {
                problems.push(problem(
                    Some(0),
                    Some(json_error.line()),
                    ProblemKind::InvalidSyntax,
                    format!("invalid JSON: {json_error}"),
                ));
                return (objects, problems);
            }
            // A flow-style YAML mapping is also valid input: fall through to YAML.
            Err(_) => {}
        }
    }
    let documents = split_documents(text);
    let mut index = 0usize;
    for document in documents {
        if is_blank_document(document.text) {
            continue;
        }
        let document_index = index;
        index += 1;
        if document_index >= limits.max_documents_per_file {
            problems.push(problem(
                Some(document_index),
                Some(document.first_line),
                ProblemKind::TooLarge,
                format!(
                    "more than {} documents in one file; the rest is skipped",
                    limits.max_documents_per_file
                ),
            ));
            break;
        }
        if document.text.len() > limits.max_document_bytes {
            problems.push(problem(
                Some(document_index),
                Some(document.first_line),
                ProblemKind::TooLarge,
                format!(
                    "document is {} bytes, over the {} byte limit",
                    document.text.len(),
                    limits.max_document_bytes
                ),
            ));
            continue;
        }
        match serde_yaml_ng::from_str::<Value>(document.text) {
            Ok(Value::Null) => {}
            Ok(value) => expand_value(
                value,
                document_index,
                Some(document.first_line),
                &mut objects,
                &mut problems,
                limits,
            ),
            Err(error) => {
                let message = error.to_string();
                let first_line = message.lines().next().unwrap_or("invalid YAML").to_string();
                problems.push(problem(
                    Some(document_index),
                    Some(document.first_line),
                    ProblemKind::InvalidSyntax,
                    format!("invalid YAML: {first_line}"),
                ));
            }
        }
    }
    (objects, problems)
}

/// Turns a parsed document (an object, a `List`, or an array of objects) into objects.
fn expand_value(
    value: Value,
    document: usize,
    line: Option<usize>,
    objects: &mut Vec<Object>,
    problems: &mut Vec<SourceProblem>,
    limits: &SourceLimits,
) {
    let items: Vec<Value> = match value {
        Value::Array(items) => items,
        Value::Object(ref map)
            if map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|kind| kind == "List" || kind.ends_with("List"))
                && map.contains_key("items") =>
        {
            match map.get("items") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            }
        }
        Value::Object(_) => vec![value],
        other => {
            problems.push(SourceProblem {
                file: PathBuf::new(),
                document: Some(document),
                line,
                kind: ProblemKind::BadObject,
                message: format!(
                    "document is a {}, not a Kubernetes object",
                    json_type(&other)
                ),
            });
            return;
        }
    };
    for (item_index, item) in items.iter().enumerate() {
        if objects.len() >= limits.max_objects {
            return;
        }
        let describe = |message: String| {
            if items.len() > 1 {
                format!("item {item_index}: {message}")
            } else {
                message
            }
        };
        if !item.is_object() {
            problems.push(SourceProblem {
                file: PathBuf::new(),
                document: Some(document),
                line,
                kind: ProblemKind::BadObject,
                message: describe(format!(
                    "item is a {}, not a Kubernetes object",
                    json_type(item)
                )),
            });
            continue;
        }
        match parse_object(item, "default") {
            Ok(Parsed::Object(object)) => objects.push(*object),
            Ok(Parsed::UnknownKind { api_version, kind }) => problems.push(SourceProblem {
                file: PathBuf::new(),
                document: Some(document),
                line,
                kind: ProblemKind::UnknownKind,
                message: describe(format!("unknown kind {kind} ({api_version}), skipped")),
            }),
            Err(message) => problems.push(SourceProblem {
                file: PathBuf::new(),
                document: Some(document),
                line,
                kind: ProblemKind::BadObject,
                message: describe(message),
            }),
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// Fuzz entry point: parses arbitrary bytes as a manifest file with default limits. It must
/// never panic, hang or allocate without bound, whatever the input.
pub fn fuzz_manifest(data: &[u8]) -> usize {
    let limits = SourceLimits {
        max_document_bytes: 256 * 1024,
        max_documents_per_file: 1_000,
        max_objects: 10_000,
        ..SourceLimits::default()
    };
    let (objects, problems) = parse_bytes(data, &limits);
    objects.len() + problems.len()
}
