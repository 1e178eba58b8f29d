//! Readers that enforce bounds on a layer's byte stream before the tar parser sees it.

use std::io::{self, Read};

/// Why a guarded reader stopped; carried inside an `io::Error` so it survives the tar parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuardViolation {
    /// The entry being read when the bound was crossed, as far as the guard can tell.
    pub entry: String,
    /// What was wrong.
    pub reason: String,
    /// `true` for a size bound, `false` for a malformed or hostile structure.
    pub is_limit: bool,
}

impl std::fmt::Display for GuardViolation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.entry, self.reason)
    }
}

impl std::error::Error for GuardViolation {}

impl GuardViolation {
    fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// The violation inside an io error, if that is what stopped the read.
    pub(crate) fn from_io(error: &io::Error) -> Option<&GuardViolation> {
        error.get_ref()?.downcast_ref::<GuardViolation>()
    }
}

/// Stops a stream after `max_bytes` decompressed bytes: the decompression-bomb bound.
pub(crate) struct ByteBudget<R> {
    inner: R,
    remaining: u64,
    max_bytes: u64,
    what: &'static str,
}

impl<R: Read> ByteBudget<R> {
    pub(crate) fn new(inner: R, max_bytes: u64, what: &'static str) -> Self {
        ByteBudget {
            inner,
            remaining: max_bytes,
            max_bytes,
            what,
        }
    }

    /// Bytes read so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.max_bytes - self.remaining
    }
}

impl<R: Read> Read for ByteBudget<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // One more byte tells a stream that ends exactly at the bound from one that goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(GuardViolation {
                    entry: String::new(),
                    reason: format!(
                        "decompressed {} is larger than {} bytes (decompression bomb?)",
                        self.what, self.max_bytes
                    ),
                    is_limit: true,
                }
                .into_io()),
            };
        }
        let allowed = buffer
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..allowed])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

const BLOCK: u64 = 512;

/// Follows the tar structure of the stream passing through it and refuses, before the tar
/// parser allocates anything, extension headers (PAX, GNU long name/link) larger than a bound
/// and GNU sparse entries (whose extra header blocks the parser would misread as data).
pub(crate) struct TarHeaderGuard<R> {
    inner: R,
    max_extension_bytes: u64,
    /// Stream offset of the next header block.
    next_header: u64,
    offset: u64,
    header: [u8; 512],
    header_filled: usize,
}

impl<R: Read> TarHeaderGuard<R> {
    pub(crate) fn new(inner: R, max_extension_bytes: u64) -> Self {
        TarHeaderGuard {
            inner,
            max_extension_bytes,
            next_header: 0,
            offset: 0,
            header: [0; 512],
            header_filled: 0,
        }
    }

    pub(crate) fn inner_ref(&self) -> &R {
        &self.inner
    }

    fn observe(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut position = 0usize;
        while position < bytes.len() {
            let absolute = self.offset + position as u64;
            if absolute < self.next_header {
                let skip = (self.next_header - absolute).min((bytes.len() - position) as u64);
                position += skip as usize;
                continue;
            }
            let wanted = 512 - self.header_filled;
            let take = wanted.min(bytes.len() - position);
            self.header[self.header_filled..self.header_filled + take]
                .copy_from_slice(&bytes[position..position + take]);
            self.header_filled += take;
            position += take;
            if self.header_filled == 512 {
                self.header_filled = 0;
                let data_size = self.check_header()?;
                let padded = data_size.div_ceil(BLOCK).saturating_mul(BLOCK);
                self.next_header = self
                    .next_header
                    .saturating_add(BLOCK)
                    .saturating_add(padded);
            }
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Returns the size of the data that follows the header.
    fn check_header(&self) -> io::Result<u64> {
        let header = &self.header;
        if header.iter().all(|byte| *byte == 0) {
            return Ok(0);
        }
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let entry = String::from_utf8_lossy(&header[..name_end]).into_owned();
        let size = parse_tar_number(&header[124..136]).ok_or_else(|| {
            GuardViolation {
                entry: entry.clone(),
                reason: "tar header has an unreadable size field".to_string(),
                is_limit: false,
            }
            .into_io()
        })?;
        let type_flag = header[156];
        match type_flag {
            b'L' | b'K' | b'x' | b'g' if size > self.max_extension_bytes => Err(GuardViolation {
                entry,
                reason: format!(
                    "tar extension header ({}) of {size} bytes is larger than {} bytes",
                    type_flag as char, self.max_extension_bytes
                ),
                is_limit: true,
            }
            .into_io()),
            b'S' => Err(GuardViolation {
                entry,
                reason: "GNU sparse files are not accepted in image layers".to_string(),
                is_limit: false,
            }
            .into_io()),
            _ => Ok(size),
        }
    }
}

/// Reads a tar numeric field: octal text, or base-256 when the high bit of the first byte is set.
pub(crate) fn parse_tar_number(field: &[u8]) -> Option<u64> {
    let first = *field.first()?;
    if first & 0x80 != 0 {
        if first & 0x40 != 0 {
            return None; // negative
        }
        let mut value: u64 = u64::from(first & 0x3f);
        for byte in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(*byte))?;
        }
        return Some(value);
    }
    let text = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b));
    let mut value: u64 = 0;
    for digit in text {
        value = value.checked_mul(8)?.checked_add(u64::from(digit - b'0'))?;
    }
    Some(value)
}

impl<R: Read> Read for TarHeaderGuard<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.observe(&buffer[..read])?;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_base256_sizes_parse() {
        assert_eq!(parse_tar_number(b"00000001750\0"), Some(1000));
        assert_eq!(parse_tar_number(b"     1750 \0\0"), Some(1000));
        let mut binary = [0u8; 12];
        binary[0] = 0x80;
        binary[11] = 0x10;
        binary[10] = 0x01;
        assert_eq!(parse_tar_number(&binary), Some(0x110));
    }

    #[test]
    fn byte_budget_allows_exact_size_and_refuses_one_more() {
        let data = [7u8; 100];
        let mut exact = ByteBudget::new(&data[..], 100, "layer");
        let mut sink = Vec::new();
        assert_eq!(exact.read_to_end(&mut sink).ok(), Some(100));
        let mut over = ByteBudget::new(&data[..], 99, "layer");
        let error = over.read_to_end(&mut Vec::new()).err();
        let violation = error.as_ref().and_then(GuardViolation::from_io);
        assert!(violation.is_some_and(|v| v.is_limit && v.reason.contains("decompression bomb")));
    }
}
