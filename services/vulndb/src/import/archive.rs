//! osv.dev `all.zip` archives (and any zip of OSV or RustSec records), read entry by entry
//! with the declared and the inflated size of every entry bounded, and the archive's entry count
//! and total inflated size bounded: a zip bomb is refused, not inflated.

use std::fs::File;
use std::path::Path;

use crate::error::VulnDbError;
use crate::import::{
    ImportIssue, ImportLimits, RecordSink, UnitSummary, import_record_bytes, is_loose_record,
    read_bounded,
};

pub(crate) fn import_zip(
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
