//! The data directory: everything a Palisade process persists lives under it.
//!
//! ```text
//! DATA_DIR/
//!   palisade.lock   held while a process uses the directory
//!   admin.token     first admin credential (mode 0600), written on first start
//!   db/             sled: the durable log, tenants, credentials, service state
//!   index/          tantivy: the search index
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{CoreError, CoreResult};

/// An opened data directory, locked against a second process for as long as it lives.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    // Held for the lock; released when the process exits, even on kill -9.
    _lock: File,
}

impl DataDir {
    /// Creates the directory (mode 0700) if needed and takes its lock.
    pub fn open(root: impl AsRef<Path>) -> CoreResult<DataDir> {
        let root = root.as_ref().to_path_buf();
        let io_error = |source| CoreError::DataDir {
            path: root.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(io_error)?;
        let lock_path = root.join("palisade.lock");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_error)?;
        if lock.try_lock().is_err() {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            return Err(CoreError::DataDirLocked {
                path: root,
                pid: holder.trim().to_string(),
            });
        }
        lock.set_len(0).map_err(io_error)?;
        lock.seek(SeekFrom::Start(0)).map_err(io_error)?;
        write!(lock, "{}", std::process::id()).map_err(io_error)?;
        Ok(DataDir { root, _lock: lock })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The sled database.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("db")
    }

    /// The search index.
    pub fn index_path(&self) -> PathBuf {
        self.root.join("index")
    }

    /// The first admin token.
    pub fn admin_token_path(&self) -> PathBuf {
        admin_token_path(&self.root)
    }
}

/// Where the admin token of a data directory is, whether or not the directory is open.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.token")
}

/// Where the internal CA keeps its certificate: what clients trust to verify the listeners'
/// self-signed certificate.
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join("pki").join("ca.pem")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_lock() {
        let temp = tempfile::tempdir().expect("temp dir");
        let first = DataDir::open(temp.path().join("data")).expect("first open");
        let error = DataDir::open(temp.path().join("data")).expect_err("second open");
        assert!(matches!(error, CoreError::DataDirLocked { .. }), "{error}");
        assert!(error.to_string().contains(&std::process::id().to_string()));
        drop(first);
        DataDir::open(temp.path().join("data")).expect("open after release");
    }

    #[test]
    fn the_directory_is_private() {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = DataDir::open(temp.path().join("data")).expect("open");
        let mode = std::fs::metadata(data_dir.root())
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
