//! The simulated daemon's store: a tree of nodes keyed by absolute path.
//!
//! A flat ordered map from absolute path to [`Node`], with the invariant
//! that every node's parent exists (the root always does): writes and
//! mkdirs create missing parents, removals take whole subtrees. Children
//! are found by range over the map. New nodes inherit their parent's
//! [`Access`], as xenstored's nodes inherit their parent's permissions.
//!
//! Also here: path resolution and validation as xenstored does it
//! (relative paths are under the guest's home, `[A-Za-z0-9-/_@]` only, no
//! empty component, no trailing slash).
//!
//! Never: check permissions (the daemon does, since dom0 bypasses them), or
//! break the parent invariant.

use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;
use xen_pv::abi::xenstore::XENSTORE_ABS_PATH_MAX;
use xen_pv::xenstore::XenstoreError;

/// The guest's home directory; relative paths are resolved under it.
pub const GUEST_HOME: &str = "/local/domain/1";

/// What the guest may do with a node (dom0 may do anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read, write, create children, remove.
    ReadWrite,
    /// Read only: writes, creation below and removal fail with `EACCES`.
    ReadOnly,
    /// Nothing: reads fail with `EACCES` too.
    Hidden,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its value (any bytes).
    pub value: Vec<u8>,
    /// What the guest may do with it.
    pub access: Access,
}

/// The whole store.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// A store holding only the root, read-only for the guest.
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Node { value: Vec::new(), access: Access::ReadOnly });
        Self { nodes }
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// `path` itself if it exists, else its closest existing ancestor.
    pub fn nearest_existing(&self, path: &str) -> &Node {
        let mut current = path;
        loop {
            if let Some(node) = self.nodes.get(current) {
                return node;
            }
            match parent(current) {
                Some(above) => current = above,
                None => return &self.nodes["/"],
            }
        }
    }

    /// The names of `path`'s children, in order.
    pub fn children(&self, path: &str) -> Vec<String> {
        let prefix = child_prefix(path);
        self.nodes
            .range(prefix.clone()..)
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(&prefix))
            .map(|key| &key[prefix.len()..])
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .map(String::from)
            .collect()
    }

    /// Sets `path`'s value, creating it and its missing parents.
    pub fn write(&mut self, path: &str, value: &[u8]) {
        self.mkdir(path);
        if let Some(node) = self.nodes.get_mut(path) {
            node.value = value.to_vec();
        }
    }

    /// Creates `path` (empty) and its missing parents; whether it was missing.
    pub fn mkdir(&mut self, path: &str) -> bool {
        if self.nodes.contains_key(path) {
            return false;
        }
        if let Some(above) = parent(path) {
            self.mkdir(above);
        }
        let access = parent(path).map_or(Access::ReadOnly, |above| self.nodes[above].access);
        self.nodes.insert(path.to_string(), Node { value: Vec::new(), access });
        true
    }

    /// Removes `path` and everything below it; returns the removed paths,
    /// `path` first. The root cannot be removed.
    pub fn remove(&mut self, path: &str) -> Vec<String> {
        if path == "/" || !self.nodes.contains_key(path) {
            return Vec::new();
        }
        let prefix = child_prefix(path);
        let below: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(&prefix))
            .cloned()
            .collect();
        let mut removed = Vec::with_capacity(below.len() + 1);
        removed.push(path.to_string());
        removed.extend(below);
        for key in &removed {
            self.nodes.remove(key);
        }
        removed
    }

    /// Sets what the guest may do with `path`; false if it does not exist.
    pub fn set_access(&mut self, path: &str, access: Access) -> bool {
        self.nodes.get_mut(path).map(|node| node.access = access).is_some()
    }
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

/// The parent of an absolute path; `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/"),
        Some(slash) => Some(&path[..slash]),
        None => None,
    }
}

/// Whether `path` is `ancestor` or below it.
pub fn is_at_or_below(path: &str, ancestor: &str) -> bool {
    path == ancestor || path.starts_with(&child_prefix(ancestor))
}

/// What every path below `path` starts with.
fn child_prefix(path: &str) -> String {
    if path == "/" { path.to_string() } else { format!("{path}/") }
}

/// The absolute path a guest means by `path` (relative ones are under
/// [`GUEST_HOME`]), or `EINVAL` for one xenstored would refuse.
pub fn resolve(path: &[u8]) -> Result<String, XenstoreError> {
    let path = core::str::from_utf8(path).map_err(|_| XenstoreError::InvalidInput)?;
    let absolute = if path.starts_with('/') { path.to_string() } else { format!("{GUEST_HOME}/{path}") };
    if path.is_empty() || !is_valid_absolute(&absolute) {
        return Err(XenstoreError::InvalidInput);
    }
    Ok(absolute)
}

/// The rules of xenstored's `is_valid_nodename`.
fn is_valid_absolute(path: &str) -> bool {
    let characters_allowed = path.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-/_@".contains(&byte));
    let shape_allowed = path == "/" || (!path.ends_with('/') && !path.contains("//"));
    characters_allowed && shape_allowed && path.len() <= XENSTORE_ABS_PATH_MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn writes_create_parents_that_inherit_access() {
        let mut tree = Tree::new();
        tree.mkdir(GUEST_HOME);
        tree.set_access(GUEST_HOME, Access::ReadWrite);
        tree.write("/local/domain/1/a/b", b"v");
        assert_eq!(tree.get("/local").unwrap().access, Access::ReadOnly);
        assert_eq!(tree.get("/local/domain/1/a").unwrap(), &Node { value: vec![], access: Access::ReadWrite });
        assert_eq!(tree.get("/local/domain/1/a/b").unwrap().value, b"v");
        assert_eq!(tree.nearest_existing("/local/domain/1/a/x/y").access, Access::ReadWrite);
        assert_eq!(tree.nearest_existing("/other").access, Access::ReadOnly);
    }

    #[test]
    fn lists_direct_children_only_and_removes_subtrees() {
        let mut tree = Tree::new();
        for path in ["/a/b/c", "/a/b2", "/a-b", "/ab"] {
            tree.write(path, b"");
        }
        assert_eq!(tree.children("/a"), ["b", "b2"]);
        assert_eq!(tree.children("/"), ["a", "a-b", "ab"]);
        assert_eq!(tree.remove("/a/b"), ["/a/b", "/a/b/c"]);
        assert_eq!(tree.children("/a"), ["b2"]);
        assert!(tree.remove("/").is_empty());
        assert!(tree.remove("/missing").is_empty());
    }

    #[test]
    fn resolves_and_validates_paths() {
        assert_eq!(resolve(b"control/shutdown").unwrap(), "/local/domain/1/control/shutdown");
        assert_eq!(resolve(b"/").unwrap(), "/");
        assert_eq!(resolve(b"/vm/x-y_z@1").unwrap(), "/vm/x-y_z@1");
        for bad in [&b""[..], b"a//b", b"a/", b"/a/", b"a b", b"\xff", b"a.b"] {
            assert_eq!(resolve(bad), Err(XenstoreError::InvalidInput), "{bad:?}");
        }
        assert_eq!(resolve(&[b'a'; XENSTORE_ABS_PATH_MAX]), Err(XenstoreError::InvalidInput));
    }

    #[test]
    fn parents_and_ancestry() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert!(is_at_or_below("/a/b", "/a") && is_at_or_below("/a", "/a") && is_at_or_below("/a", "/"));
        assert!(!is_at_or_below("/ab", "/a") && !is_at_or_below("/a", "/a/b"));
    }
}
