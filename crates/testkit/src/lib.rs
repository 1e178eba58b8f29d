//! Test support shared by Palisade's crates.
//!
//! Tests run against real data written by others (Falco's rules, recorded audit events, package
//! databases ...), kept outside the repository in a `shared/corpora` folder. [`corpora_dir`]
//! finds it; a test that needs it and cannot find it fails loudly instead of passing vacuously.

use std::path::{Path, PathBuf};

mod server;

pub use server::{
    ChildGuard, Server, ServerOptions, TEST_MODE_ENV, distributed_mode, free_port, palisade_binary,
    service_data_dir,
};

/// Environment variable that names the corpora folder explicitly.
pub const CORPORA_ENV: &str = "PALISADE_CORPORA";

/// Where the corpora folder is looked for when [`CORPORA_ENV`] is not set: a `shared/corpora`
/// folder beside any ancestor of the crate, then this fixed location.
const WELL_KNOWN_CORPORA: &str = "/work/shared/corpora";

/// The corpora folder, or `None` when it cannot be found.
pub fn find_corpora_dir() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os(CORPORA_ENV) {
        let explicit = PathBuf::from(explicit);
        return explicit.is_dir().then_some(explicit);
    }
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for ancestor in manifest_dir.ancestors() {
        let candidate = ancestor.join("shared").join("corpora");
        if candidate.join("README.md").is_file() {
            return Some(candidate);
        }
    }
    let well_known = PathBuf::from(WELL_KNOWN_CORPORA);
    well_known.join("README.md").is_file().then_some(well_known)
}

/// The corpora folder. Panics with instructions when it is missing: tests that need real data
/// must not pass without it.
pub fn corpora_dir() -> PathBuf {
    find_corpora_dir().unwrap_or_else(|| {
        panic!(
            "the real-data corpora were not found: set {CORPORA_ENV} to the shared/corpora folder \
             (looked beside every ancestor of {} and at {WELL_KNOWN_CORPORA})",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// A file or folder inside the corpora. Panics when it does not exist, naming it.
pub fn corpus_path(relative: impl AsRef<Path>) -> PathBuf {
    let path = corpora_dir().join(relative.as_ref());
    assert!(
        path.exists(),
        "corpus entry {} does not exist (corpora at {})",
        relative.as_ref().display(),
        corpora_dir().display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpora_are_found_and_hold_their_readme() {
        let corpora = corpora_dir();
        assert!(corpora.join("README.md").is_file());
        assert!(corpus_path("audit").is_dir());
    }
}
