//! Container and pod metadata: a registry the event path reads without waiting, filled by
//! a lookup task that asks the container runtime (containerd) as soon as a container's cgroup
//! appears, so metadata is usually there before the container's first process runs.

pub mod containerd;
pub mod spec;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::event::Container;

/// Lookup requests queued for the runtime; beyond this, requests are dropped and counted
/// (the event is then held until its deadline and released with the id only).
const REQUEST_QUEUE: usize = 4096;

/// How long an id the runtime did not know is not asked about again.
const ABSENT_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// How long a deleted container's metadata is kept: its last events (the exits, and whatever
/// the sensor had not read yet when the runtime said "deleted") still need it.
const DELETED_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// What the registry knows about a container id.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The runtime answered (or the container is the host).
    Ready(Arc<Container>),
    /// A lookup is in flight; the container known so far has the id only.
    Pending(Arc<Container>),
}

/// Container metadata by full id, shared between the event path and the lookup task.
#[derive(Debug)]
pub struct ContainerRegistry {
    containers: RwLock<HashMap<String, Arc<Container>>>,
    pending: RwLock<HashSet<String>>,
    /// Ids the runtime did not know, and when it said so: not asked again for a while.
    absent: RwLock<HashMap<String, tokio::time::Instant>>,
    /// Containers the runtime deleted, and when: forgotten once DELETED_GRACE has passed.
    deleted: RwLock<HashMap<String, tokio::time::Instant>>,
    requests: tokio::sync::mpsc::Sender<String>,
    host: Arc<Container>,
    /// Whether a runtime is connected; without one there is nothing to wait for.
    runtime_connected: bool,
    dropped_requests: std::sync::atomic::AtomicU64,
}

impl ContainerRegistry {
    /// A registry and the receiving end of its lookup requests. With `runtime_connected`
    /// false, unknown containers are ready at once with what their cgroup path tells.
    pub fn new(runtime_connected: bool) -> (Arc<Self>, tokio::sync::mpsc::Receiver<String>) {
        let (sender, receiver) = tokio::sync::mpsc::channel(REQUEST_QUEUE);
        let registry = Arc::new(Self {
            containers: RwLock::new(HashMap::new()),
            pending: RwLock::new(HashSet::new()),
            absent: RwLock::new(HashMap::new()),
            deleted: RwLock::new(HashMap::new()),
            requests: sender,
            host: Arc::new(Container::host()),
            runtime_connected,
            dropped_requests: std::sync::atomic::AtomicU64::new(0),
        });
        (registry, receiver)
    }

    /// The host.
    pub fn host(&self) -> Arc<Container> {
        Arc::clone(&self.host)
    }

    /// What is known about `full_id`; asks the runtime the first time it is seen.
    pub fn lookup(&self, full_id: &str, runtime: &str) -> Lookup {
        if let Ok(containers) = self.containers.read()
            && let Some(container) = containers.get(full_id)
        {
            return Lookup::Ready(Arc::clone(container));
        }
        let unresolved = Arc::new(Container::unresolved(full_id, runtime));
        if !self.runtime_connected {
            return Lookup::Ready(unresolved);
        }
        self.request(full_id);
        if let Ok(pending) = self.pending.read()
            && pending.contains(full_id)
        {
            return Lookup::Pending(unresolved);
        }
        // A new container's first lookup can run before the runtime has registered it: while
        // the answer "absent" is recent the id stays pending, so its events are held (up to the
        // attribution wait) and the lookup is retried after ABSENT_RETRY, instead of the events
        // going on without metadata.
        if let Ok(absent) = self.absent.read()
            && absent
                .get(full_id)
                .is_some_and(|since| since.elapsed() < ABSENT_RETRY)
        {
            return Lookup::Pending(unresolved);
        }
        // the lookup already finished, without an answer (not a container of this runtime)
        match self.containers.read() {
            Ok(containers) => match containers.get(full_id) {
                Some(container) => Lookup::Ready(Arc::clone(container)),
                None => Lookup::Ready(unresolved),
            },
            Err(_) => Lookup::Ready(unresolved),
        }
    }

    /// Asks the runtime about `full_id` unless a lookup is in flight or done.
    pub fn request(&self, full_id: &str) {
        if !self.runtime_connected {
            return;
        }
        if let Ok(containers) = self.containers.read()
            && containers.contains_key(full_id)
        {
            return;
        }
        if let Ok(absent) = self.absent.read()
            && absent
                .get(full_id)
                .is_some_and(|since| since.elapsed() < ABSENT_RETRY)
        {
            return;
        }
        let Ok(mut pending) = self.pending.write() else {
            return;
        };
        if pending.contains(full_id) {
            return;
        }
        match self.requests.try_send(full_id.to_string()) {
            Ok(()) => {
                pending.insert(full_id.to_string());
            }
            Err(_) => {
                self.dropped_requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Stores the runtime's answer (or its absence) and ends the pending lookup.
    pub fn complete(&self, full_id: &str, container: Option<Container>) {
        match container {
            Some(container) => {
                if let Ok(mut containers) = self.containers.write() {
                    containers.insert(full_id.to_string(), Arc::new(container));
                }
                if let Ok(mut absent) = self.absent.write() {
                    absent.remove(full_id);
                }
                if let Ok(mut deleted) = self.deleted.write() {
                    deleted.remove(full_id);
                }
            }
            None => {
                if let Ok(mut absent) = self.absent.write() {
                    if absent.len() >= REQUEST_QUEUE {
                        absent.retain(|_, since| since.elapsed() < ABSENT_RETRY);
                    }
                    absent.insert(full_id.to_string(), tokio::time::Instant::now());
                }
            }
        }
        if let Ok(mut pending) = self.pending.write() {
            pending.remove(full_id);
        }
    }

    /// Adds metadata known from elsewhere (a runtime event stream, a recorded event).
    pub fn insert(&self, container: Container) {
        let full_id = container.full_id.clone();
        self.complete(&full_id, Some(container));
    }

    /// Notes that the runtime deleted a container. Its metadata stays for DELETED_GRACE,
    /// since events the sensor has not read yet still belong to it; containers deleted longer
    /// ago than that are forgotten now.
    pub fn retire(&self, full_id: &str) {
        let now = tokio::time::Instant::now();
        let Ok(mut deleted) = self.deleted.write() else {
            return;
        };
        deleted.insert(full_id.to_string(), now);
        let expired: Vec<String> = deleted
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= DELETED_GRACE)
            .map(|(id, _)| id.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        if let Ok(mut containers) = self.containers.write() {
            for id in &expired {
                containers.remove(id);
                deleted.remove(id);
            }
        }
    }

    /// Whether a lookup is in flight for `full_id`.
    pub fn is_pending(&self, full_id: &str) -> bool {
        self.pending
            .read()
            .map(|pending| pending.contains(full_id))
            .unwrap_or(false)
    }

    /// Lookups that could not be queued.
    pub fn dropped_requests(&self) -> u64 {
        self.dropped_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Number of containers with metadata.
    pub fn len(&self) -> usize {
        self.containers.read().map(|map| map.len()).unwrap_or(0)
    }

    /// Whether no container has metadata.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_containers_are_pending_until_the_runtime_answers() {
        let (registry, mut requests) = ContainerRegistry::new(true);
        let id = "a".repeat(64);
        assert!(matches!(
            registry.lookup(&id, "containerd"),
            Lookup::Pending(_)
        ));
        assert_eq!(requests.try_recv().ok().as_deref(), Some(id.as_str()));
        // asked once only
        assert!(matches!(
            registry.lookup(&id, "containerd"),
            Lookup::Pending(_)
        ));
        assert!(requests.try_recv().is_err());
        let mut container = Container::unresolved(&id, "containerd");
        container.name = "web".into();
        container.metadata_complete = true;
        registry.complete(&id, Some(container));
        match registry.lookup(&id, "containerd") {
            Lookup::Ready(found) => assert_eq!(found.name, "web"),
            Lookup::Pending(_) => panic!("still pending after the answer"),
        }
    }

    #[test]
    fn without_a_runtime_containers_are_ready_with_their_id() {
        let (registry, mut requests) = ContainerRegistry::new(false);
        let id = "b".repeat(64);
        match registry.lookup(&id, "docker") {
            Lookup::Ready(found) => {
                assert_eq!(found.id, "b".repeat(12));
                assert!(!found.metadata_complete);
            }
            Lookup::Pending(_) => panic!("nothing to wait for"),
        }
        assert!(requests.try_recv().is_err());
    }

    #[test]
    fn a_deleted_container_keeps_its_metadata_for_its_last_events() {
        let (registry, _requests) = ContainerRegistry::new(true);
        let id = "d".repeat(64);
        let mut container = Container::unresolved(&id, "containerd");
        container.image_repository = "docker.io/library/busybox".into();
        container.metadata_complete = true;
        registry.insert(container);
        registry.retire(&id);
        match registry.lookup(&id, "containerd") {
            Lookup::Ready(found) => {
                assert_eq!(found.image_repository, "docker.io/library/busybox")
            }
            Lookup::Pending(_) => panic!("the deleted container's metadata was dropped at once"),
        }
        assert_eq!(registry.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_containers_are_forgotten_after_the_grace() {
        let (registry, _requests) = ContainerRegistry::new(true);
        let old = "e".repeat(64);
        let recent = "f".repeat(64);
        registry.insert(Container::unresolved(&old, "containerd"));
        registry.insert(Container::unresolved(&recent, "containerd"));
        registry.retire(&old);
        tokio::time::advance(DELETED_GRACE).await;
        registry.retire(&recent);
        assert_eq!(registry.len(), 1, "only the recently deleted one is kept");
        assert!(matches!(
            registry.lookup(&recent, "containerd"),
            Lookup::Ready(_)
        ));
    }

    #[test]
    fn a_lookup_without_an_answer_ends_pending() {
        let (registry, _requests) = ContainerRegistry::new(true);
        let id = "c".repeat(64);
        registry.request(&id);
        assert!(registry.is_pending(&id));
        registry.complete(&id, None);
        assert!(!registry.is_pending(&id));
        // right after the runtime said no, the id stays pending (it may be registering) and is
        // not asked again at once
        match registry.lookup(&id, "containerd") {
            Lookup::Pending(found) => assert!(!found.metadata_complete),
            Lookup::Ready(_) => panic!("a fresh \"absent\" answer must keep the id pending"),
        }
        assert!(
            !registry.is_pending(&id),
            "no second request inside ABSENT_RETRY"
        );
    }
}
