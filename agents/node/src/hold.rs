//! Events of containers whose metadata is still on its way from the runtime are held here,
//! in order, until it arrives or their wait runs out, so that no alert goes out with an
//! empty container name, image or pod when the runtime would have said.

// The pipeline's threads are plain OS threads, not tokio tasks: std's clock.
#![allow(clippy::disallowed_types)]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::container::{ContainerRegistry, Lookup};
use crate::event::Event;

/// Most events held at once; past it the oldest are released early.
const MAX_HELD: usize = 100_000;

/// Held events by container.
#[derive(Debug, Default)]
pub struct HoldQueue {
    by_container: HashMap<String, VecDeque<(Instant, Event)>>,
    held: usize,
    /// Events released without metadata because the wait ran out.
    pub timeouts: u64,
}

impl HoldQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether events of this container are being held (later ones must queue behind them).
    pub fn is_holding(&self, full_id: &str) -> bool {
        self.by_container.contains_key(full_id)
    }

    /// Holds an event until `deadline`.
    pub fn hold(&mut self, event: Event, deadline: Instant) {
        let full_id = event.container.full_id.clone();
        self.by_container
            .entry(full_id)
            .or_default()
            .push_back((deadline, event));
        self.held += 1;
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.held
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Releases, in order, the events whose container is now known or whose wait ran out.
    pub fn release(&mut self, registry: &ContainerRegistry, now: Instant, out: &mut Vec<Event>) {
        let overflow = self.held > MAX_HELD;
        let mut finished = Vec::new();
        for (full_id, queue) in &mut self.by_container {
            let ready = match registry.lookup(full_id, "containerd") {
                Lookup::Ready(container) if !registry.is_pending(full_id) => Some(container),
                _ => None,
            };
            match ready {
                Some(container) => {
                    for (_, mut event) in queue.drain(..) {
                        event.container = Arc::clone(&container);
                        out.push(event);
                    }
                }
                None => {
                    while let Some((deadline, _)) = queue.front() {
                        if *deadline > now && !overflow {
                            break;
                        }
                        if let Some((_, event)) = queue.pop_front() {
                            self.timeouts += 1;
                            out.push(event);
                        }
                    }
                }
            }
            if queue.is_empty() {
                finished.push(full_id.clone());
            }
        }
        for full_id in finished {
            self.by_container.remove(&full_id);
        }
        self.held = self.by_container.values().map(VecDeque::len).sum();
    }

    /// Releases everything (at shutdown).
    pub fn drain(&mut self, out: &mut Vec<Event>) {
        for (_, queue) in self.by_container.drain() {
            out.extend(queue.into_iter().map(|(_, event)| event));
        }
        self.held = 0;
    }
}

/// The default wait for container metadata.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
