//! Palisade audit watcher.
