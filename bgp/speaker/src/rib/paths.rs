//! The paths of one prefix: inline when there is one (the common case), a vector otherwise.
//!
//! Most prefixes have a single path (one peer announces them), so storing it inline in the
//! hash entry saves a heap allocation per prefix, about a third of the memory per route.

use super::Path;
use std::ops::{Deref, DerefMut};

/// Paths of a prefix, best first once selection ran.
#[derive(Debug, Clone)]
pub enum PathList {
    /// Exactly one path.
    One(Path),
    /// Zero, or two and more paths.
    Many(Vec<Path>),
}

impl Default for PathList {
    fn default() -> Self {
        PathList::Many(Vec::new())
    }
}

impl Deref for PathList {
    type Target = [Path];

    fn deref(&self) -> &[Path] {
        match self {
            PathList::One(p) => std::slice::from_ref(p),
            PathList::Many(v) => v,
        }
    }
}

impl DerefMut for PathList {
    fn deref_mut(&mut self) -> &mut [Path] {
        match self {
            PathList::One(p) => std::slice::from_mut(p),
            PathList::Many(v) => v,
        }
    }
}

impl PathList {
    /// Appends a path.
    pub fn push(&mut self, p: Path) {
        match self {
            PathList::Many(v) if !v.is_empty() => v.push(p),
            PathList::Many(_) => *self = PathList::One(p),
            PathList::One(_) => {
                if let PathList::One(first) = std::mem::take(self) {
                    *self = PathList::Many(vec![first, p]);
                }
            }
        }
    }

    /// Removes the path at `i` (order of the others may change).
    pub fn remove_at(&mut self, i: usize) {
        match self {
            PathList::One(_) if i == 0 => *self = PathList::default(),
            PathList::Many(v) if i < v.len() => {
                v.swap_remove(i);
                self.shrink();
            }
            _ => {}
        }
    }

    /// Keeps the paths for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool) {
        match self {
            PathList::One(p) => {
                if !keep(p) {
                    *self = PathList::default();
                }
            }
            PathList::Many(v) => {
                v.retain(|p| keep(p));
                self.shrink();
            }
        }
    }

    /// Heap bytes held (with 16 bytes of allocator overhead per allocation).
    pub fn heap_bytes(&self) -> usize {
        match self {
            PathList::Many(v) if v.capacity() > 0 => {
                v.capacity() * std::mem::size_of::<Path>() + 16
            }
            _ => 0,
        }
    }

    fn shrink(&mut self) {
        if let PathList::Many(v) = self
            && v.len() == 1
            && let Some(p) = v.pop()
        {
            *self = PathList::One(p);
        }
    }
}
