//! Turning a layer entry's name into a clean path inside the image, refusing escapes.

use crate::limits::Limits;

/// Why a path was refused, and whether a bound (rather than a hostile shape) refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathRefusal {
    pub reason: String,
    pub is_limit: bool,
}

fn refuse(reason: impl Into<String>) -> PathRefusal {
    PathRefusal {
        reason: reason.into(),
        is_limit: false,
    }
}

/// Normalises a tar member name to a root-relative path without `.`/`..` components.
/// `Ok(None)` is the image root itself (`./`). Absolute names, NUL bytes and `..` that would leave
/// the root are refused: image tools never write them, and extracting tools have been exploited
/// through them (CVE-2021-3762, CVE-2024-24579, CVE-2025-5981).
pub(crate) fn normalize_entry_path(
    raw: &[u8],
    limits: &Limits,
) -> Result<Option<String>, PathRefusal> {
    if raw.len() > limits.max_path_bytes {
        return Err(PathRefusal {
            reason: format!(
                "path of {} bytes is longer than {}",
                raw.len(),
                limits.max_path_bytes
            ),
            is_limit: true,
        });
    }
    if raw.contains(&0) {
        return Err(refuse("path contains a NUL byte"));
    }
    if raw.first() == Some(&b'/') {
        return Err(refuse("absolute path"));
    }
    let text = String::from_utf8_lossy(raw);
    let mut components: Vec<&str> = Vec::new();
    for component in text.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if components.pop().is_none() {
                    return Err(refuse("path escapes the image root with '..'"));
                }
            }
            other => components.push(other),
        }
        if components.len() > limits.max_path_depth {
            return Err(PathRefusal {
                reason: format!(
                    "path is nested deeper than {} directories",
                    limits.max_path_depth
                ),
                is_limit: true,
            });
        }
    }
    if components.is_empty() {
        return Ok(None);
    }
    Ok(Some(components.join("/")))
}

/// The directory part of a clean path ("" for a top-level entry).
pub(crate) fn parent_of(path: &str) -> &str {
    path.rsplit_once('/')
        .map(|(parent, _)| parent)
        .unwrap_or("")
}

/// The last component of a clean path.
pub(crate) fn file_name_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(_, name)| name).unwrap_or(path)
}

/// Joins a clean directory path and a name.
pub(crate) fn join(directory: &str, name: &str) -> String {
    if directory.is_empty() {
        name.to_string()
    } else {
        format!("{directory}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(raw: &str) -> Result<Option<String>, PathRefusal> {
        normalize_entry_path(raw.as_bytes(), &Limits::default())
    }

    #[test]
    fn ordinary_names_are_cleaned() {
        assert_eq!(
            normalize("./etc/passwd").ok().flatten().as_deref(),
            Some("etc/passwd")
        );
        assert_eq!(
            normalize("usr//lib/./x/").ok().flatten().as_deref(),
            Some("usr/lib/x")
        );
        assert_eq!(normalize("a/b/../c").ok().flatten().as_deref(), Some("a/c"));
        assert_eq!(normalize("./").ok().flatten(), None);
    }

    #[test]
    fn escapes_and_absolute_names_are_refused() {
        assert!(normalize("../etc/passwd").is_err());
        assert!(normalize("a/../../etc/passwd").is_err());
        assert!(normalize("/etc/passwd").is_err());
        assert!(normalize_entry_path(b"etc/\0passwd", &Limits::default()).is_err());
    }

    #[test]
    fn deep_and_long_paths_hit_their_bounds() {
        let deep = "d/".repeat(200);
        assert!(normalize(&deep).is_err_and(|refusal| refusal.is_limit));
        let long = "x".repeat(5000);
        assert!(normalize(&long).is_err_and(|refusal| refusal.is_limit));
    }
}
