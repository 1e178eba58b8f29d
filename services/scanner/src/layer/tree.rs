//! The image's final filesystem as metadata in memory: layers applied in order, whiteouts and
//! opaque directories honoured, symlinks resolved inside the image only.

use std::collections::{BTreeMap, VecDeque};

use super::path::{file_name_of, join, parent_of};
use crate::catalog::Captured;

/// What kind of filesystem object a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    File {
        size: u64,
        mode: u32,
    },
    Directory,
    Symlink {
        target: String,
    },
    /// Character or block device, or FIFO: recorded, never read.
    Special,
}

/// One path of the final filesystem.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: NodeKind,
    /// Index of the layer that last wrote this path.
    pub layer: usize,
    /// What a cataloger took from the file, when the path interested one.
    pub captured: Option<Captured>,
}

/// Why a path could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolveError {
    pub reason: String,
}

/// Paths of the image, keyed by root-relative clean path.
#[derive(Debug, Default)]
pub(crate) struct FileTree {
    nodes: BTreeMap<String, Node>,
}

/// Keys strictly inside `directory` sort between `directory/` and `directory0` ('0' follows '/').
fn subtree_bounds(directory: &str) -> (String, String) {
    (format!("{directory}/"), format!("{directory}0"))
}

impl FileTree {
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Every node, in path order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Resolves every symlink in `path` (the last component too when `follow_last`), as the
    /// kernel would inside a chroot at the image root: absolute targets start at the image root
    /// and `..` stops at it, so nothing can point outside the image. Loops and long chains end
    /// after `max_hops` links.
    pub(crate) fn resolve(
        &self,
        path: &str,
        follow_last: bool,
        max_hops: usize,
    ) -> Result<String, ResolveError> {
        let mut remaining: VecDeque<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0usize;
        while let Some(component) = remaining.pop_front() {
            match component.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            let is_last = remaining.is_empty();
            resolved.push(component);
            if is_last && !follow_last {
                break;
            }
            let candidate = resolved.join("/");
            let Some(Node {
                kind: NodeKind::Symlink { target },
                ..
            }) = self.nodes.get(&candidate)
            else {
                continue;
            };
            hops += 1;
            if hops > max_hops {
                return Err(ResolveError {
                    reason: format!(
                        "symlink loop or chain of more than {max_hops} links at {candidate:?}"
                    ),
                });
            }
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            for target_component in target.split('/').rev().filter(|c| !c.is_empty()) {
                remaining.push_front(target_component.to_string());
            }
        }
        Ok(resolved.join("/"))
    }

    /// Writes `node` at `path` (already resolved). A non-directory replacing a directory removes
    /// what was below it, as extracting the layer would.
    pub(crate) fn insert(&mut self, path: String, node: Node) {
        let replaces_directory_with_other = matches!(
            self.nodes.get(&path),
            Some(Node {
                kind: NodeKind::Directory,
                ..
            })
        ) && node.kind != NodeKind::Directory;
        if replaces_directory_with_other {
            self.remove_below(&path, usize::MAX);
        }
        if node.kind == NodeKind::Directory
            && let Some(existing) = self.nodes.get_mut(&path)
            && existing.kind == NodeKind::Directory
        {
            existing.layer = node.layer;
            return;
        }
        self.nodes.insert(path, node);
    }

    /// Removes `path` and everything below it that lower layers wrote (an OCI whiteout).
    pub(crate) fn whiteout(&mut self, path: &str, current_layer: usize) {
        if self
            .nodes
            .get(path)
            .is_some_and(|node| node.layer < current_layer)
        {
            self.nodes.remove(path);
        }
        self.remove_below(path, current_layer);
    }

    /// Removes what lower layers wrote below `directory` (an opaque-directory marker).
    pub(crate) fn make_opaque(&mut self, directory: &str, current_layer: usize) {
        self.remove_below(directory, current_layer);
    }

    fn remove_below(&mut self, directory: &str, layers_before: usize) {
        let doomed: Vec<String> = if directory.is_empty() {
            self.nodes
                .iter()
                .filter(|(_, node)| node.layer < layers_before)
                .map(|(key, _)| key.clone())
                .collect()
        } else {
            let (low, high) = subtree_bounds(directory);
            self.nodes
                .range(low..high)
                .filter(|(_, node)| node.layer < layers_before)
                .map(|(key, _)| key.clone())
                .collect()
        };
        for key in doomed {
            self.nodes.remove(&key);
        }
    }

    /// The directory part and name of a path, for whiteout handling.
    pub(crate) fn split(path: &str) -> (&str, &str) {
        (parent_of(path), file_name_of(path))
    }

    /// Joins a directory and a name.
    pub(crate) fn join(directory: &str, name: &str) -> String {
        join(directory, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(layer: usize) -> Node {
        Node {
            kind: NodeKind::File {
                size: 1,
                mode: 0o644,
            },
            layer,
            captured: None,
        }
    }

    fn symlink(target: &str, layer: usize) -> Node {
        Node {
            kind: NodeKind::Symlink {
                target: target.to_string(),
            },
            layer,
            captured: None,
        }
    }

    #[test]
    fn whiteout_removes_lower_layer_subtree_but_not_same_layer() {
        let mut tree = FileTree::default();
        tree.insert("a/b".into(), file(0));
        tree.insert("a/b/c".into(), file(0));
        tree.insert("a/bc".into(), file(0));
        tree.insert("a/b/d".into(), file(1));
        tree.whiteout("a/b", 1);
        assert!(tree.get("a/b").is_none());
        assert!(tree.get("a/b/c").is_none());
        assert!(
            tree.get("a/bc").is_some(),
            "a sibling sharing the prefix stays"
        );
        assert!(
            tree.get("a/b/d").is_some(),
            "same-layer entries are not whited out"
        );
    }

    #[test]
    fn opaque_directory_hides_lower_children_only() {
        let mut tree = FileTree::default();
        tree.insert("etc/x".into(), file(0));
        tree.insert("etc/y".into(), file(1));
        tree.make_opaque("etc", 1);
        assert!(tree.get("etc/x").is_none());
        assert!(tree.get("etc/y").is_some());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let mut tree = FileTree::default();
        tree.insert("etc/os-release".into(), symlink("../usr/lib/os-release", 0));
        tree.insert("evil".into(), symlink("../../../../../etc", 0));
        tree.insert("abs".into(), symlink("/usr/lib", 0));
        assert_eq!(
            tree.resolve("etc/os-release", true, 40).ok().as_deref(),
            Some("usr/lib/os-release")
        );
        assert_eq!(
            tree.resolve("evil/passwd", true, 40).ok().as_deref(),
            Some("etc/passwd")
        );
        assert_eq!(
            tree.resolve("abs/x", true, 40).ok().as_deref(),
            Some("usr/lib/x")
        );
        assert_eq!(
            tree.resolve("etc/os-release", false, 40).ok().as_deref(),
            Some("etc/os-release")
        );
    }

    #[test]
    fn symlink_cycles_end_with_an_error() {
        let mut tree = FileTree::default();
        tree.insert("a".into(), symlink("b", 0));
        tree.insert("b".into(), symlink("a", 0));
        tree.insert("self".into(), symlink("self/x", 0));
        assert!(
            tree.resolve("a/file", true, 40)
                .is_err_and(|e| e.reason.contains("loop"))
        );
        assert!(tree.resolve("self", true, 40).is_err());
    }
}
