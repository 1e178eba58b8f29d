//! Reads audit events out of files: JSON lines streamed with a bounded line buffer, or a
//! single JSON document (EventList, array, cloud export) read whole up to a limit.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::decode::{DecodeLimits, Decoded, SkipReason, decode_document, decode_line};
use crate::error::AuditError;

/// Largest file read whole as one JSON document.
pub const MAX_DOCUMENT_FILE_BYTES: u64 = 256 << 20;

fn read_error(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads one line of at most `limit` bytes into `line`; a longer line is consumed and reported
/// as `Ok(Some(length))` without being kept.
fn read_bounded_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Option<usize>> {
    line.clear();
    let mut total = 0usize;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(if total > limit { Some(total) } else { None });
        }
        let (chunk, found_newline) = match available.iter().position(|byte| *byte == b'\n') {
            Some(position) => (&available[..=position], true),
            None => (available, false),
        };
        let consumed = chunk.len();
        total += consumed;
        if total <= limit + 1 {
            line.extend_from_slice(chunk);
        }
        reader.consume(consumed);
        if found_newline {
            return Ok(if total > limit + 1 { Some(total) } else { None });
        }
    }
}

/// Calls `on_batch` with the events and skips of a file, in order, batch by batch.
pub fn read_file(
    path: &Path,
    limits: &DecodeLimits,
    mut on_batch: impl FnMut(Decoded) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    let file = File::open(path).map_err(|source| read_error(path, source))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let first_line_is_document = {
        let peek = reader
            .fill_buf()
            .map_err(|source| read_error(path, source))?;
        let first_line_end = peek
            .iter()
            .position(|byte| *byte == b'\n')
            .unwrap_or(peek.len());
        let first_line = peek[..first_line_end].trim_ascii();
        // A pretty-printed document does not parse line by line; its first line does not
        // parse as JSON on its own while the file starts like a document.
        matches!(first_line.first(), Some(b'{' | b'['))
            && serde_json::from_slice::<serde_json::Value>(first_line)
                .is_err_and(|error| error.is_eof())
    };
    if first_line_is_document {
        let size = std::fs::metadata(path)
            .map_err(|source| read_error(path, source))?
            .len();
        if size > MAX_DOCUMENT_FILE_BYTES {
            return Err(AuditError::FileTooLarge {
                path: path.to_path_buf(),
                size,
                limit: MAX_DOCUMENT_FILE_BYTES,
            });
        }
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| read_error(path, source))?;
        let document_limits = DecodeLimits {
            max_document_bytes: usize::try_from(MAX_DOCUMENT_FILE_BYTES).unwrap_or(usize::MAX),
            ..*limits
        };
        let decoded = match decode_document(&bytes, &document_limits) {
            Ok(decoded) => decoded,
            Err(error) => {
                let mut decoded = Decoded::default();
                decoded.skips.push(crate::decode::Skip {
                    reason: SkipReason::InvalidJson,
                    detail: format!("{}: {error}", path.display()),
                });
                decoded
            }
        };
        return on_batch(decoded);
    }
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut batch = Decoded::default();
    loop {
        number += 1;
        let oversized = read_bounded_line(&mut reader, &mut line, limits.max_document_bytes)
            .map_err(|source| read_error(path, source))?;
        if let Some(length) = oversized {
            batch.skips.push(crate::decode::Skip {
                reason: SkipReason::TooLarge,
                detail: format!(
                    "line {number}: {length} bytes exceed {} bytes",
                    limits.max_document_bytes
                ),
            });
        } else if line.is_empty() {
            break;
        } else {
            decode_line(&line, number, limits, &mut batch);
        }
        if batch.events.len() + batch.skips.len() >= 1024 {
            on_batch(std::mem::take(&mut batch))?;
        }
    }
    on_batch(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_documents_and_oversized_lines_are_read() -> anyhow::Result<()> {
        let directory = tempfile::tempdir()?;
        let event = r#"{"kind":"Event","auditID":"1","verb":"get"}"#;
        let lines = directory.path().join("lines.json");
        std::fs::write(&lines, format!("{event}\n{}\n{event}", "x".repeat(100)))?;
        let mut events = 0;
        let mut skips = Vec::new();
        let limits = DecodeLimits {
            max_event_bytes: 80,
            max_document_bytes: 80,
        };
        read_file(&lines, &limits, |batch| {
            events += batch.events.len();
            skips.extend(batch.skips);
            Ok(())
        })?;
        assert_eq!(events, 2);
        assert_eq!(skips.len(), 1);
        assert_eq!(skips[0].reason, SkipReason::TooLarge);

        let document = directory.path().join("list.json");
        std::fs::write(
            &document,
            format!("{{\n  \"kind\": \"EventList\",\n  \"items\": [\n{event},\n{event}\n]\n}}\n"),
        )?;
        let mut events = 0;
        read_file(&document, &DecodeLimits::default(), |batch| {
            events += batch.events.len();
            Ok(())
        })?;
        assert_eq!(events, 2);
        assert!(
            read_file(
                &directory.path().join("missing"),
                &DecodeLimits::default(),
                |_| Ok(())
            )
            .is_err()
        );
        Ok(())
    }
}
