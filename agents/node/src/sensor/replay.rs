//! Recorded record streams: a file of length-prefixed records (u32 little-endian length,
//! then the record), written by the agent's recorder and replayed by benchmarks and tests.

use std::io::{Read, Write};
use std::time::Duration;

use super::{RecordSource, SensorStats};
use crate::error::AgentError;
use crate::record::RECORD_MAX;

/// Appends records to a recording.
#[derive(Debug)]
pub struct Recorder<W: Write> {
    out: W,
    /// Records written.
    pub written: u64,
}

impl<W: Write> Recorder<W> {
    /// A recorder writing to `out`.
    pub fn new(out: W) -> Self {
        Self { out, written: 0 }
    }

    /// Writes one record.
    pub fn write(&mut self, record: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(record.len())
            .map_err(|_| std::io::Error::other("record longer than 4 GiB"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(record)?;
        self.written += 1;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Splits a recording into records. A length beyond [`RECORD_MAX`] or past the end is an
/// error naming its offset.
pub fn split_recording(data: &[u8]) -> Result<Vec<&[u8]>, AgentError> {
    let mut records = Vec::new();
    let mut offset = 0usize;
    while offset < data.len() {
        if data.len() - offset < 4 {
            return Err(AgentError::Config {
                source_name: "recording".into(),
                message: format!("truncated length prefix at byte {offset}"),
            });
        }
        let len = u32::from_le_bytes([
            data[offset],
            data[offset + 1],
            data[offset + 2],
            data[offset + 3],
        ]) as usize;
        offset += 4;
        if len > RECORD_MAX || data.len() - offset < len {
            return Err(AgentError::Config {
                source_name: "recording".into(),
                message: format!("record at byte {} claims {len} bytes", offset - 4),
            });
        }
        records.push(&data[offset..offset + len]);
        offset += len;
    }
    Ok(records)
}

/// Replays a recording, a given number of times.
#[derive(Debug)]
pub struct ReplaySource {
    data: Vec<u8>,
    offsets: Vec<(usize, usize)>,
    position: usize,
    rounds_left: usize,
    batch: usize,
    emitted: u64,
}

impl ReplaySource {
    /// A source over the bytes of a recording, replayed `rounds` times in batches.
    pub fn new(data: Vec<u8>, rounds: usize, batch: usize) -> Result<Self, AgentError> {
        let offsets = {
            let records = split_recording(&data)?;
            let base = data.as_ptr() as usize;
            records
                .iter()
                .map(|record| (record.as_ptr() as usize - base, record.len()))
                .collect()
        };
        Ok(Self {
            data,
            offsets,
            position: 0,
            rounds_left: rounds,
            batch: batch.max(1),
            emitted: 0,
        })
    }

    /// Reads a recording file.
    pub fn open(path: &std::path::Path, rounds: usize) -> Result<Self, AgentError> {
        let mut data = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut file| file.read_to_end(&mut data))
            .map_err(|error| AgentError::io(path, error))?;
        Self::new(data, rounds, 1024)
    }

    /// Records in one round.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the recording is empty.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

impl RecordSource for ReplaySource {
    fn next_batch(
        &mut self,
        _timeout: Duration,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, AgentError> {
        let mut count = 0;
        while count < self.batch && self.rounds_left > 0 && !self.offsets.is_empty() {
            let (start, len) = self.offsets[self.position];
            sink(&self.data[start..start + len]);
            count += 1;
            self.position += 1;
            if self.position == self.offsets.len() {
                self.position = 0;
                self.rounds_left -= 1;
            }
        }
        self.emitted += count as u64;
        Ok(count)
    }

    fn stats(&self) -> SensorStats {
        SensorStats {
            emitted: self.emitted,
            ..SensorStats::default()
        }
    }

    fn name(&self) -> &'static str {
        "replay"
    }

    fn is_finished(&self) -> bool {
        self.rounds_left == 0 || self.offsets.is_empty()
    }
}
