//! Typed storage over sled. Other crates see [`Store`] and [`TypedTree`], never sled itself,
//! so the engine can be replaced (redb, fjall) without touching them.
//!
//! Durability: sled writes are durable only after a flush. Anything acknowledged to a caller
//! MUST be followed by [`Store::flush`] first.

use std::marker::PhantomData;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CoreError, CoreResult};

/// The embedded database of a process.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
}

/// How long [`open_sled`] waits for a database whose lock is held.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the sled database `config` describes, waiting up to five seconds while its lock is
/// held. A handle dropped in this process keeps the lock until sled's background flusher has
/// stopped, so opening the same database again right away (a restart inside one process, a
/// store opened per use) would otherwise fail. Another process holding it still fails, after
/// the wait, with sled's own error.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    // a deadline, not a measured duration: the wall clock is good enough and Instant is kept
    // out of the crate by the linter
    let deadline = std::time::SystemTime::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(io))
                if io.to_string().contains("could not acquire lock")
                    && std::time::SystemTime::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            outcome => return outcome,
        }
    }
}

impl Store {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> CoreResult<Store> {
        let db = open_sled(
            &sled::Config::new()
                .path(path)
                .mode(sled::Mode::HighThroughput),
        )?;
        Ok(Store { db })
    }

    /// A temporary database removed when dropped, for tests and one-shot commands.
    pub fn temporary() -> CoreResult<Store> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Store { db })
    }

    /// A tree of JSON-encoded values under `name`.
    pub fn typed_tree<V>(&self, name: &str) -> CoreResult<TypedTree<V>> {
        Ok(TypedTree {
            name: name.to_string(),
            tree: self.db.open_tree(name)?,
            _value: PhantomData,
        })
    }

    /// A tree of raw bytes, for modules of this crate that manage their own encoding.
    pub(crate) fn raw_tree(&self, name: &str) -> CoreResult<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// A number never returned before by this database (monotonic, survives restarts).
    pub fn generate_id(&self) -> CoreResult<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Makes every write so far durable. The blocking flush runs on a blocking thread:
    /// sled 0.34's `flush_async` can hang when many callers await it at once (sled issue
    /// 1308), and concurrent flushes are what a busy gateway does.
    pub async fn flush(&self) -> CoreResult<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|error| CoreError::Task(format!("flush task failed: {error}")))??;
        Ok(())
    }

    /// Makes every write so far durable, blocking the calling thread.
    pub fn flush_blocking(&self) -> CoreResult<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> CoreResult<u64> {
        Ok(self.db.size_on_disk()?)
    }
}

/// A tree mapping string keys to values of one type, stored as JSON.
pub struct TypedTree<V> {
    name: String,
    tree: sled::Tree,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for TypedTree<V> {
    fn clone(&self) -> Self {
        TypedTree {
            name: self.name.clone(),
            tree: self.tree.clone(),
            _value: PhantomData,
        }
    }
}

impl<V: Serialize + DeserializeOwned> TypedTree<V> {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> CoreResult<Option<V>> {
        let Some(bytes) = self.tree.get(key.as_bytes())? else {
            return Ok(None);
        };
        self.decode(key, &bytes).map(Some)
    }

    /// Stores `value` under `key`, returning the previous value.
    pub fn put(&self, key: &str, value: &V) -> CoreResult<()> {
        let bytes = serde_json::to_vec(value).map_err(|error| CoreError::Corrupt {
            tree: self.name.clone(),
            key: key.to_string(),
            message: format!("cannot encode: {error}"),
        })?;
        self.tree.insert(key.as_bytes(), bytes)?;
        Ok(())
    }

    /// Stores `value` under `key` only if the key is absent; false if it was present.
    pub fn insert_new(&self, key: &str, value: &V) -> CoreResult<bool> {
        let bytes = serde_json::to_vec(value).map_err(|error| CoreError::Corrupt {
            tree: self.name.clone(),
            key: key.to_string(),
            message: format!("cannot encode: {error}"),
        })?;
        let swapped =
            self.tree
                .compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(bytes))?;
        Ok(swapped.is_ok())
    }

    /// Replaces `current` under `key` by `next` only if the stored value is still `current`;
    /// false if another writer changed it first.
    pub fn replace(&self, key: &str, current: &V, next: &V) -> CoreResult<bool> {
        let encode = |value: &V| {
            serde_json::to_vec(value).map_err(|error| CoreError::Corrupt {
                tree: self.name.clone(),
                key: key.to_string(),
                message: format!("cannot encode: {error}"),
            })
        };
        let swapped = self.tree.compare_and_swap(
            key.as_bytes(),
            Some(encode(current)?),
            Some(encode(next)?),
        )?;
        Ok(swapped.is_ok())
    }

    /// Removes `key`, returning whether it was present.
    pub fn remove(&self, key: &str) -> CoreResult<bool> {
        Ok(self.tree.remove(key.as_bytes())?.is_some())
    }

    /// Removes every entry whose key starts with `prefix`; returns how many there were.
    pub fn remove_prefix(&self, prefix: &str) -> CoreResult<usize> {
        let mut removed = 0;
        for item in self.tree.scan_prefix(prefix.as_bytes()) {
            let (key, _) = item?;
            removed += usize::from(self.tree.remove(key)?.is_some());
        }
        Ok(removed)
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &str) -> CoreResult<Vec<(String, V)>> {
        let mut entries = Vec::new();
        for item in self.tree.scan_prefix(prefix.as_bytes()) {
            let (key, bytes) = item?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let value = self.decode(&key, &bytes)?;
            entries.push((key, value));
        }
        Ok(entries)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    fn decode(&self, key: &str, bytes: &[u8]) -> CoreResult<V> {
        serde_json::from_slice(bytes).map_err(|error| CoreError::Corrupt {
            tree: self.name.clone(),
            key: key.to_string(),
            message: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Item {
        name: String,
        count: u32,
    }

    #[tokio::test]
    async fn typed_values_survive_reopen_after_flush() {
        let temp = tempfile::tempdir().expect("temp dir");
        {
            let store = Store::open(temp.path()).expect("open");
            let tree = store.typed_tree::<Item>("items").expect("tree");
            tree.put(
                "a",
                &Item {
                    name: "first".into(),
                    count: 1,
                },
            )
            .expect("put");
            assert!(
                tree.insert_new(
                    "b",
                    &Item {
                        name: "second".into(),
                        count: 2
                    }
                )
                .expect("insert")
            );
            assert!(
                !tree
                    .insert_new(
                        "b",
                        &Item {
                            name: "again".into(),
                            count: 3
                        }
                    )
                    .expect("insert")
            );
            store.flush().await.expect("flush");
        }
        let store = Store::open(temp.path()).expect("reopen");
        let tree = store.typed_tree::<Item>("items").expect("tree");
        assert_eq!(
            tree.get("b").expect("get"),
            Some(Item {
                name: "second".into(),
                count: 2
            })
        );
        assert_eq!(tree.scan_prefix("").expect("scan").len(), 2);
        assert!(tree.remove("a").expect("remove"));
        assert_eq!(tree.get("a").expect("get"), None);
    }

    #[test]
    fn undecodable_values_are_reported_with_tree_and_key() {
        let store = Store::temporary().expect("store");
        let raw = store.raw_tree("items").expect("raw");
        raw.insert("broken", b"not json".to_vec()).expect("insert");
        let tree = store.typed_tree::<Item>("items").expect("tree");
        let error = tree.get("broken").expect_err("corrupt");
        let message = error.to_string();
        assert!(
            message.contains("items") && message.contains("broken"),
            "{message}"
        );
    }
}
