//! Sensors: where records come from. The eBPF sensor is the real one; the /proc sensor is
//! the fallback where eBPF cannot load; the replay source feeds recorded streams to
//! benchmarks and tests. All three produce records in the same layout.

pub mod ebpf;
pub mod procfs;
pub mod replay;

use std::time::Duration;

use crate::error::AgentError;

/// Counters a sensor keeps about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SensorStats {
    /// Records delivered to userspace.
    pub emitted: u64,
    /// Records the kernel could not put in the ring buffer (lost).
    pub ringbuf_full: u64,
    /// Records larger than the record bound (lost).
    pub oversize: u64,
}

/// A source of records.
pub trait RecordSource: Send {
    /// Waits up to `timeout` for records and passes each one to `sink`. Returns the number
    /// of records passed.
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, AgentError>;

    /// The sensor's counters.
    fn stats(&self) -> SensorStats;

    /// A short name for logs and metrics ("ebpf", "procfs", "replay").
    fn name(&self) -> &'static str;

    /// Whether the source has ended (a replay at its end); live sensors never end.
    fn is_finished(&self) -> bool {
        false
    }
}
