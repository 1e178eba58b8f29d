//! Dead letters: alerts a target could not take, kept in a tree of their own per target with
//! why and after how many attempts, so an operator can list them, fix the target and send
//! them again. Each target keeps at most its `max_dead_letters`; past that the oldest is
//! dropped and counted.

use std::sync::{Arc, Mutex, MutexGuard};

use palisade_core::storage::{Store, TypedTree};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Digits of a sequence key; keys sort like their numbers.
const KEY_DIGITS: usize = 20;
/// Keys sharing all but their last three digits form a chunk of at most 1000 letters, the
/// unit in which letters are read, so listing never loads the whole tree.
const CHUNK_PREFIX: usize = KEY_DIGITS - 3;
const CHUNK_SIZE: u64 = 1_000;
const FIRST_KEY: &str = "dead_letters/first";
const NEXT_KEY: &str = "dead_letters/next";
const EVICTED_KEY: &str = "dead_letters/evicted";

/// One alert a target did not take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Position among the target's dead letters (increasing).
    pub sequence: u64,
    /// The target's name.
    pub target: String,
    /// Offset of the alert in the alert log.
    pub offset: u64,
    /// The alert's stable id.
    pub alert_id: String,
    /// Tenant owning the alert.
    pub tenant: String,
    /// Rule that raised the alert.
    pub rule: String,
    /// Falco priority name.
    pub priority: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// When it was given up on (RFC 3339).
    pub failed_at: String,
    /// The alert as a webhook would carry it (Falco JSON with uuid, tenant and cluster).
    pub alert: String,
}

#[derive(Debug, Default)]
struct Bounds {
    first: u64,
    next: u64,
    evicted: u64,
    /// Letters kept; counted once at open (sled counts by scanning) and then kept up to date.
    kept: usize,
}

/// The dead letters of one target.
#[derive(Clone)]
pub struct DeadLetters {
    target: String,
    max_letters: usize,
    letters: TypedTree<DeadLetter>,
    meta: TypedTree<u64>,
    bounds: Arc<Mutex<Bounds>>,
}

fn sequence_key(sequence: u64) -> String {
    format!("{sequence:0KEY_DIGITS$}")
}

impl DeadLetters {
    /// Opens the dead letters of `target` in `store`, keeping at most `max_letters`.
    pub fn open(store: &Store, target: &str, max_letters: usize) -> Result<DeadLetters> {
        let letters = store.typed_tree(&format!("notify/{target}/dead_letters"))?;
        let meta = store.typed_tree(&format!("notify/{target}/meta"))?;
        let bounds = Bounds {
            first: meta.get(FIRST_KEY)?.unwrap_or(0),
            next: meta.get(NEXT_KEY)?.unwrap_or(0),
            evicted: meta.get(EVICTED_KEY)?.unwrap_or(0),
            kept: letters.len(),
        };
        Ok(DeadLetters {
            target: target.to_string(),
            max_letters: max_letters.max(1),
            letters,
            meta,
            bounds: Arc::new(Mutex::new(bounds)),
        })
    }

    fn bounds(&self) -> MutexGuard<'_, Bounds> {
        // The bounds are plain numbers; a panic elsewhere cannot leave them half-written.
        self.bounds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The target these letters belong to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Stores `letter` under the next sequence (which it is given), dropping the oldest ones
    /// past the limit. Returns the sequence. Durable at the store's next flush.
    pub fn record(&self, mut letter: DeadLetter) -> Result<u64> {
        let mut bounds = self.bounds();
        let sequence = bounds.next;
        letter.sequence = sequence;
        letter.target = self.target.clone();
        self.letters.put(&sequence_key(sequence), &letter)?;
        bounds.kept += 1;
        bounds.next = sequence + 1;
        self.meta.put(NEXT_KEY, &bounds.next)?;
        while bounds.kept > self.max_letters && bounds.first < bounds.next {
            if self.letters.remove(&sequence_key(bounds.first))? {
                bounds.evicted += 1;
                bounds.kept -= 1;
            }
            bounds.first += 1;
        }
        self.meta.put(FIRST_KEY, &bounds.first)?;
        self.meta.put(EVICTED_KEY, &bounds.evicted)?;
        Ok(sequence)
    }

    /// Up to `limit` letters in sequence order, starting after `after` (from the oldest when
    /// `None`). Reads at most one chunk of 1000 beyond what it returns.
    pub fn list(&self, after: Option<u64>, limit: usize) -> Result<Vec<DeadLetter>> {
        let (first, next) = {
            let bounds = self.bounds();
            (bounds.first, bounds.next)
        };
        let start = after.map_or(first, |after| after.saturating_add(1).max(first));
        let mut letters = Vec::new();
        let mut chunk_start = start - start % CHUNK_SIZE;
        while chunk_start < next && letters.len() < limit {
            let prefix = &sequence_key(chunk_start)[..CHUNK_PREFIX];
            for (_, letter) in self.letters.scan_prefix(prefix)? {
                if letter.sequence >= start && letters.len() < limit {
                    letters.push(letter);
                }
            }
            chunk_start += CHUNK_SIZE;
        }
        Ok(letters)
    }

    /// The letter of `sequence`, if it is kept.
    pub fn get(&self, sequence: u64) -> Result<Option<DeadLetter>> {
        Ok(self.letters.get(&sequence_key(sequence))?)
    }

    /// Stores `letter` again under its own sequence (after another failed attempt); false if it
    /// is no longer kept.
    pub fn update(&self, letter: &DeadLetter) -> Result<bool> {
        let _bounds = self.bounds();
        let key = sequence_key(letter.sequence);
        if self.letters.get(&key)?.is_none() {
            return Ok(false);
        }
        self.letters.put(&key, letter)?;
        Ok(true)
    }

    /// Removes a letter (once it has been dealt with); false if it was not kept.
    pub fn remove(&self, sequence: u64) -> Result<bool> {
        let mut bounds = self.bounds();
        let removed = self.letters.remove(&sequence_key(sequence))?;
        if removed {
            bounds.kept = bounds.kept.saturating_sub(1);
        }
        Ok(removed)
    }

    /// Removes every letter of `tenant` (an erased tenant); returns how many there were.
    pub fn remove_tenant(&self, tenant: &str) -> Result<usize> {
        let mut bounds = self.bounds();
        let mut removed = 0;
        for (key, letter) in self.letters.scan_prefix("")? {
            if letter.tenant == tenant && self.letters.remove(&key)? {
                removed += 1;
            }
        }
        bounds.kept = bounds.kept.saturating_sub(removed);
        Ok(removed)
    }

    /// Letters kept.
    pub fn len(&self) -> usize {
        self.bounds().kept
    }

    /// Whether no letter is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Letters dropped because the limit was reached.
    pub fn evicted(&self) -> u64 {
        self.bounds().evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(alert_id: &str) -> DeadLetter {
        DeadLetter {
            sequence: 0,
            target: String::new(),
            offset: 7,
            alert_id: alert_id.to_string(),
            tenant: "acme".into(),
            rule: "r".into(),
            priority: "Warning".into(),
            attempts: 3,
            error: "HTTP 400".into(),
            failed_at: "2026-11-27T00:00:00Z".into(),
            alert: "{}".into(),
        }
    }

    #[test]
    fn letters_are_listed_in_order_across_chunks_and_survive_reopen() {
        let temp = tempfile::tempdir().expect("temp dir");
        {
            let store = Store::open(temp.path()).expect("store");
            let letters = DeadLetters::open(&store, "siem", 10_000).expect("open");
            for index in 0..2_500 {
                let sequence = letters
                    .record(letter(&format!("a{index}")))
                    .expect("record");
                assert_eq!(sequence, index);
            }
            store.flush_blocking().expect("flush");
        }
        let store = Store::open(temp.path()).expect("reopen");
        let letters = DeadLetters::open(&store, "siem", 10_000).expect("open");
        assert_eq!(letters.len(), 2_500);
        let page = letters.list(Some(998), 5).expect("list");
        let ids: Vec<&str> = page.iter().map(|letter| letter.alert_id.as_str()).collect();
        assert_eq!(ids, ["a999", "a1000", "a1001", "a1002", "a1003"]);
        assert_eq!(page[0].target, "siem");
        let all = letters.list(None, usize::MAX).expect("list");
        assert_eq!(all.len(), 2_500);
        assert!(
            all.windows(2)
                .all(|pair| pair[0].sequence < pair[1].sequence)
        );
        assert_eq!(letters.record(letter("next")).expect("record"), 2_500);
        assert!(letters.remove(0).expect("remove"));
        assert!(!letters.remove(0).expect("remove again"));
        assert_eq!(letters.len(), 2_500);
        assert_eq!(letters.list(None, 1).expect("list")[0].alert_id, "a1");
    }

    #[test]
    fn past_the_limit_the_oldest_letters_are_dropped_and_counted() {
        let store = Store::temporary().expect("store");
        let letters = DeadLetters::open(&store, "t", 3).expect("open");
        for index in 0..5 {
            letters
                .record(letter(&format!("a{index}")))
                .expect("record");
        }
        assert_eq!(letters.len(), 3);
        assert_eq!(letters.evicted(), 2);
        let ids: Vec<String> = letters
            .list(None, 10)
            .expect("list")
            .into_iter()
            .map(|letter| letter.alert_id)
            .collect();
        assert_eq!(ids, ["a2", "a3", "a4"]);
        assert_eq!(
            letters.get(4).expect("get").map(|letter| letter.alert_id),
            Some("a4".into())
        );
    }
}
