//! Event batches from the sensor thread to the rule workers, and back. An event owns strings
//! and shares its process and container through `Arc`s, all allocated by the sensor thread.
//! A worker that dropped them would free memory another thread allocated (the allocator
//! takes a lock for that) and decrement counters the sensor thread keeps incrementing (the
//! cache line moves between cores on every event). So a worker hands each evaluated batch
//! back; the sensor thread drops its events and reuses the vector for its next batch.

use crossbeam_channel::{Receiver, SendError, Sender, TrySendError, bounded};

use crate::event::Event;

/// Spent batches waiting for the sensor thread. Batches come back at the rate they are sent,
/// so a few suffice; when they are all taken a worker drops the batch itself.
const SPENT_BATCHES: usize = 16;

/// The sensor thread's end.
#[derive(Debug, Clone)]
pub struct BatchSender {
    batches: Sender<Vec<Event>>,
    spent: Receiver<Vec<Event>>,
}

/// A rule worker's end.
#[derive(Debug, Clone)]
pub struct BatchReceiver {
    batches: Receiver<Vec<Event>>,
    spent: Sender<Vec<Event>>,
}

/// A channel of at most `capacity` batches in flight, with its return path.
pub fn batch_channel(capacity: usize) -> (BatchSender, BatchReceiver) {
    let (batch_sender, batch_receiver) = bounded(capacity);
    let (spent_sender, spent_receiver) = bounded(SPENT_BATCHES);
    (
        BatchSender {
            batches: batch_sender,
            spent: spent_receiver,
        },
        BatchReceiver {
            batches: batch_receiver,
            spent: spent_sender,
        },
    )
}

impl BatchSender {
    /// An empty vector for the next batch: a returned one, its events dropped here on the
    /// thread that allocated them, or a new one of `capacity`.
    pub fn empty_batch(&self, capacity: usize) -> Vec<Event> {
        match self.spent.try_recv() {
            Ok(mut spent) => {
                spent.clear();
                spent
            }
            Err(_) => Vec::with_capacity(capacity),
        }
    }

    /// Sends a batch, blocking while `capacity` batches are in flight; fails when every
    /// worker has stopped.
    pub fn send(&self, batch: Vec<Event>) -> Result<(), SendError<Vec<Event>>> {
        self.batches.send(batch)
    }
}

impl BatchReceiver {
    /// The next batch, blocking; `None` once the sensor side is gone and nothing is queued.
    pub fn recv(&self) -> Option<Vec<Event>> {
        self.batches.recv().ok()
    }

    /// Returns an evaluated batch to the sensor thread, or drops it here when the return path
    /// is full or closed.
    pub fn give_back(&self, batch: Vec<Event>) {
        match self.spent.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => drop(batch),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{Container, EventKind, Process};

    fn event(process: &Arc<Process>) -> Event {
        Event {
            num: 1,
            time_ns: 0,
            kind: EventKind::Syscall,
            evt_type: "openat",
            syscall_nr: 257,
            tid: 1,
            ret: 3,
            args: [0; 6],
            flags: 0,
            process: Arc::clone(process),
            fd: None,
            strings: vec!["/etc/hostname".into()],
            sockaddr: None,
            container: Arc::new(Container::host()),
        }
    }

    #[test]
    fn returned_batches_are_emptied_and_reused_by_the_sender() {
        let (sender, receiver) = batch_channel(4);
        let process = Arc::new(Process::default());
        let mut batch = sender.empty_batch(8);
        batch.extend((0..8).map(|_| event(&process)));
        let allocation = batch.as_ptr() as usize;
        sender.send(batch).expect("a receiver is alive");
        let received = receiver.recv().expect("a batch");
        assert_eq!(received.len(), 8);
        assert_eq!(Arc::strong_count(&process), 9);
        receiver.give_back(received);
        // the events are dropped when the sender takes the vector back, not before
        assert_eq!(Arc::strong_count(&process), 9);
        let reused = sender.empty_batch(8);
        assert!(reused.is_empty());
        assert_eq!(reused.as_ptr() as usize, allocation);
        assert_eq!(Arc::strong_count(&process), 1);
        // nothing returned: a fresh vector
        assert!(sender.empty_batch(8).capacity() >= 8);
    }

    #[test]
    fn a_full_return_path_drops_the_batch_in_the_worker() {
        let (sender, receiver) = batch_channel(SPENT_BATCHES + 1);
        let process = Arc::new(Process::default());
        for _ in 0..=SPENT_BATCHES {
            sender.send(vec![event(&process)]).expect("room");
        }
        for _ in 0..=SPENT_BATCHES {
            let batch = receiver.recv().expect("a batch");
            receiver.give_back(batch);
        }
        // SPENT_BATCHES wait for the sender; the last one was dropped by the worker
        assert_eq!(Arc::strong_count(&process), 1 + SPENT_BATCHES);
        drop(sender);
        assert!(receiver.recv().is_none());
    }
}
