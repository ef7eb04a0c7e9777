//! An incremental index of which selectors match which label sets.
//!
//! The calculation graph needs to know, at all times, which endpoints (and network sets, ...)
//! each policy selector, rule selector or IP-set selector matches, and to learn about every
//! change as a "match started" / "match stopped" event. Re-evaluating every selector against
//! every label set on each update would cost `selectors x label sets`; this index narrows each
//! update to candidates first:
//!
//! - Each selector is filed under one of its [label restrictions](crate::LabelRestriction): the
//!   values a label must take (`app == 'web'`, `tier in {..}`) if it has such a restriction,
//!   else a label that must be present (`has(k)`, `k contains ..`), else it is evaluated against
//!   everything (`all()`, `!has(k)`, `k != 'v'`).
//! - Each label set is filed under its labels, keys and key/value pairs.
//! - A label-set update evaluates only the selectors filed under its labels (plus the
//!   unrestricted ones); a selector update evaluates only the label sets filed under its
//!   restriction. The restrictions are necessary conditions, so nothing else can match.
//!
//! Label sets may inherit labels from parents (profiles, namespaces): an item's effective labels
//! are its own labels, then each parent's in order; the first definition of a key wins, as in
//! Felix's inherit index. Updating a parent re-indexes its children.
//!
//! Output is deterministic: each call appends the events it causes to the caller's buffer,
//! "stopped" events first, then "started" events, each group sorted by id. Applying the
//! events in order to an empty relation always yields exactly the current match relation.
//!
//! ```
//! use tortie_selector::index::{MatchEvent, SelectorIndex};
//! use tortie_selector::{LabelMap, Selector};
//!
//! let mut index: SelectorIndex<&str, &str, &str> = SelectorIndex::new();
//! let mut events = Vec::new();
//! index.update_parent("ns-prod", [("pcns.env", "prod")].into_iter().collect(), &mut events);
//! index.update_selector("policy-a", Selector::parse("pcns.env == 'prod' && app == 'web'")?, &mut events);
//! let labels: LabelMap = [("app", "web")].into_iter().collect();
//! index.update_item("pod-1", labels, vec!["ns-prod"], &mut events);
//! assert_eq!(events, [MatchEvent::Started { selector: "policy-a", item: "pod-1" }]);
//! # Ok::<(), tortie_selector::ParseError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::Selector;
use crate::labels::{LabelKey, LabelMap, Labels};

#[cfg(test)]
mod tests;

/// A change of the match relation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchEvent<S, I> {
    /// `selector` now matches `item` and did not before.
    Started {
        /// The selector's id.
        selector: S,
        /// The label set's id.
        item: I,
    },
    /// `selector` matched `item` and no longer does.
    Stopped {
        /// The selector's id.
        selector: S,
        /// The label set's id.
        item: I,
    },
}

/// Where a selector is filed.
#[derive(Debug, Clone)]
enum Filing {
    /// Under `key` = each of `values` (may be empty: the selector can match nothing).
    Values(Arc<str>, Vec<Arc<str>>),
    /// Under presence of `key`.
    Key(Arc<str>),
    /// Evaluated against every item.
    Scan,
}

struct SelectorEntry<I> {
    selector: Selector,
    filing: Filing,
    matches: BTreeSet<I>,
}

struct ItemEntry<S, P> {
    own: LabelMap,
    parents: Vec<P>,
    effective: LabelMap,
    matches: BTreeSet<S>,
}

struct ParentEntry<I> {
    labels: LabelMap,
    children: BTreeSet<I>,
}

/// Ids filed under one label key.
struct Postings<T> {
    with_key: BTreeSet<T>,
    by_value: HashMap<Arc<str>, BTreeSet<T>>,
}

impl<T> Default for Postings<T> {
    fn default() -> Self {
        Postings {
            with_key: BTreeSet::new(),
            by_value: HashMap::new(),
        }
    }
}

impl<T> Postings<T> {
    fn is_empty(&self) -> bool {
        self.with_key.is_empty() && self.by_value.is_empty()
    }
}

/// The incremental selector/label-set index. `S` identifies selectors, `I` label sets
/// (items), `P` the parents items inherit labels from.
pub struct SelectorIndex<S, I, P> {
    selectors: BTreeMap<S, SelectorEntry<I>>,
    items: BTreeMap<I, ItemEntry<S, P>>,
    parents: BTreeMap<P, ParentEntry<I>>,
    /// Selectors by filing key.
    selector_postings: HashMap<Arc<str>, Postings<S>>,
    /// Selectors filed as [`Filing::Scan`].
    scan_selectors: BTreeSet<S>,
    /// Items by effective label key and value.
    item_postings: HashMap<Arc<str>, Postings<I>>,
}

impl<S: Ord + Clone, I: Ord + Clone, P: Ord + Clone> Default for SelectorIndex<S, I, P> {
    fn default() -> Self {
        SelectorIndex {
            selectors: BTreeMap::new(),
            items: BTreeMap::new(),
            parents: BTreeMap::new(),
            selector_postings: HashMap::new(),
            scan_selectors: BTreeSet::new(),
            item_postings: HashMap::new(),
        }
    }
}

impl<S: Ord + Clone, I: Ord + Clone, P: Ord + Clone> SelectorIndex<S, I, P> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of selectors registered.
    pub fn selector_count(&self) -> usize {
        self.selectors.len()
    }

    /// Number of label sets registered.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// Whether `selector` currently matches `item`.
    pub fn is_match(&self, selector: &S, item: &I) -> bool {
        self.selectors
            .get(selector)
            .is_some_and(|e| e.matches.contains(item))
    }

    /// The items `selector` matches, in id order.
    pub fn items_matching(&self, selector: &S) -> impl Iterator<Item = &I> {
        self.selectors
            .get(selector)
            .into_iter()
            .flat_map(|e| e.matches.iter())
    }

    /// The selectors matching `item`, in id order.
    pub fn selectors_matching(&self, item: &I) -> impl Iterator<Item = &S> {
        self.items
            .get(item)
            .into_iter()
            .flat_map(|e| e.matches.iter())
    }

    /// The effective (own plus inherited) labels of `item`.
    pub fn effective_labels(&self, item: &I) -> Option<&LabelMap> {
        self.items.get(item).map(|e| &e.effective)
    }

    /// Adds or replaces selector `id`, appending the match changes to `events`.
    pub fn update_selector(
        &mut self,
        id: S,
        selector: Selector,
        events: &mut Vec<MatchEvent<S, I>>,
    ) {
        let old_matches = match self.selectors.remove(&id) {
            Some(old) => {
                self.unfile_selector(&id, &old.filing);
                old.matches
            }
            None => BTreeSet::new(),
        };
        let filing = filing_for(&selector);
        self.file_selector(&id, &filing);
        let new_matches: BTreeSet<I> = self
            .candidate_items(&filing)
            .into_iter()
            .filter(|item| {
                self.items
                    .get(item)
                    .is_some_and(|e| selector.matches_with(&e.effective))
            })
            .collect();
        for item in old_matches.difference(&new_matches) {
            if let Some(entry) = self.items.get_mut(item) {
                entry.matches.remove(&id);
            }
            events.push(MatchEvent::Stopped {
                selector: id.clone(),
                item: item.clone(),
            });
        }
        for item in new_matches.difference(&old_matches) {
            if let Some(entry) = self.items.get_mut(item) {
                entry.matches.insert(id.clone());
            }
            events.push(MatchEvent::Started {
                selector: id.clone(),
                item: item.clone(),
            });
        }
        self.selectors.insert(
            id,
            SelectorEntry {
                selector,
                filing,
                matches: new_matches,
            },
        );
    }

    /// Removes selector `id`, appending a "stopped" event for each item it matched.
    pub fn remove_selector(&mut self, id: &S, events: &mut Vec<MatchEvent<S, I>>) {
        let Some(old) = self.selectors.remove(id) else {
            return;
        };
        self.unfile_selector(id, &old.filing);
        for item in &old.matches {
            if let Some(entry) = self.items.get_mut(item) {
                entry.matches.remove(id);
            }
            events.push(MatchEvent::Stopped {
                selector: id.clone(),
                item: item.clone(),
            });
        }
    }

    /// Adds or replaces label set `id` with its own labels and the parents it inherits from (in
    /// priority order), appending the match changes to `events`.
    pub fn update_item(
        &mut self,
        id: I,
        labels: LabelMap,
        parents: Vec<P>,
        events: &mut Vec<MatchEvent<S, I>>,
    ) {
        let (old_effective, old_matches) = match self.items.remove(&id) {
            Some(old) => {
                for parent in &old.parents {
                    self.unlink_parent(parent, &id);
                }
                (Some(old.effective), old.matches)
            }
            None => (None, BTreeSet::new()),
        };
        for parent in &parents {
            self.parents
                .entry(parent.clone())
                .or_insert_with(|| ParentEntry {
                    labels: LabelMap::new(),
                    children: BTreeSet::new(),
                })
                .children
                .insert(id.clone());
        }
        let effective = self.effective_labels_of(&labels, &parents);
        self.items.insert(
            id.clone(),
            ItemEntry {
                own: labels,
                parents,
                effective: LabelMap::new(),
                matches: old_matches,
            },
        );
        self.set_effective(&id, old_effective.as_ref(), effective, events);
    }

    /// Removes label set `id`, appending a "stopped" event for each selector that matched it.
    pub fn remove_item(&mut self, id: &I, events: &mut Vec<MatchEvent<S, I>>) {
        let Some(old) = self.items.remove(id) else {
            return;
        };
        for parent in &old.parents {
            self.unlink_parent(parent, id);
        }
        self.unpost_item(id, &old.effective);
        for selector in &old.matches {
            if let Some(entry) = self.selectors.get_mut(selector) {
                entry.matches.remove(id);
            }
            events.push(MatchEvent::Stopped {
                selector: selector.clone(),
                item: id.clone(),
            });
        }
    }

    /// Sets the labels of parent `id` (a profile, a namespace); every item inheriting from it
    /// is re-evaluated.
    pub fn update_parent(&mut self, id: P, labels: LabelMap, events: &mut Vec<MatchEvent<S, I>>) {
        let entry = self
            .parents
            .entry(id.clone())
            .or_insert_with(|| ParentEntry {
                labels: LabelMap::new(),
                children: BTreeSet::new(),
            });
        entry.labels = labels;
        let children: Vec<I> = entry.children.iter().cloned().collect();
        self.refresh_children(children, events);
    }

    /// Clears the labels of parent `id`. Items that list it keep listing it and inherit
    /// nothing from it until it is updated again.
    pub fn remove_parent(&mut self, id: &P, events: &mut Vec<MatchEvent<S, I>>) {
        let Some(entry) = self.parents.get_mut(id) else {
            return;
        };
        entry.labels = LabelMap::new();
        let children: Vec<I> = entry.children.iter().cloned().collect();
        if children.is_empty() {
            self.parents.remove(id);
        }
        self.refresh_children(children, events);
    }

    fn refresh_children(&mut self, children: Vec<I>, events: &mut Vec<MatchEvent<S, I>>) {
        let first_new = events.len();
        for child in children {
            let Some(entry) = self.items.get(&child) else {
                continue;
            };
            let effective = self.effective_labels_of(&entry.own, &entry.parents);
            let old = self
                .items
                .get_mut(&child)
                .map(|e| std::mem::take(&mut e.effective));
            self.set_effective(&child, old.as_ref(), effective, events);
        }
        // Several items changed: restore the stopped-then-started, sorted order.
        events[first_new..].sort_unstable_by(|a, b| {
            let started = |e: &MatchEvent<S, I>| matches!(e, MatchEvent::Started { .. });
            started(a).cmp(&started(b)).then_with(|| a.cmp(b))
        });
    }

    fn unlink_parent(&mut self, parent: &P, item: &I) {
        if let Some(entry) = self.parents.get_mut(parent) {
            entry.children.remove(item);
            if entry.children.is_empty() && entry.labels.is_empty() {
                self.parents.remove(parent);
            }
        }
    }

    fn effective_labels_of(&self, own: &LabelMap, parents: &[P]) -> LabelMap {
        let mut effective = own.clone();
        for parent in parents {
            if let Some(entry) = self.parents.get(parent) {
                for (key, value) in entry.labels.entries() {
                    if effective.get_key(key).is_none() {
                        effective.insert_key(key.clone(), Arc::from(value));
                    }
                }
            }
        }
        effective
    }

    /// Installs new effective labels for an item already in `items` (whose `matches` hold the
    /// old match set), re-posting it and re-evaluating candidate selectors.
    fn set_effective(
        &mut self,
        id: &I,
        old: Option<&LabelMap>,
        effective: LabelMap,
        events: &mut Vec<MatchEvent<S, I>>,
    ) {
        if let Some(old) = old {
            if *old == effective {
                if let Some(entry) = self.items.get_mut(id) {
                    entry.effective = effective;
                }
                return;
            }
            self.repost_item(id, old, &effective);
        } else {
            self.post_item(id, &effective);
        }
        let new_matches: BTreeSet<S> = self
            .candidate_selectors(&effective)
            .into_iter()
            .filter(|s| {
                self.selectors
                    .get(s)
                    .is_some_and(|e| e.selector.matches_with(&effective))
            })
            .collect();
        let Some(entry) = self.items.get_mut(id) else {
            return;
        };
        entry.effective = effective;
        let old_matches = std::mem::replace(&mut entry.matches, new_matches);
        let new_matches = &entry.matches;
        for selector in old_matches.difference(new_matches) {
            if let Some(s) = self.selectors.get_mut(selector) {
                s.matches.remove(id);
            }
            events.push(MatchEvent::Stopped {
                selector: selector.clone(),
                item: id.clone(),
            });
        }
        for selector in new_matches.difference(&old_matches) {
            if let Some(s) = self.selectors.get_mut(selector) {
                s.matches.insert(id.clone());
            }
            events.push(MatchEvent::Started {
                selector: selector.clone(),
                item: id.clone(),
            });
        }
    }

    fn post_item(&mut self, id: &I, labels: &LabelMap) {
        for (key, value) in labels.entries() {
            self.post_label(id, key, value);
        }
    }

    fn unpost_item(&mut self, id: &I, labels: &LabelMap) {
        for (key, value) in labels.entries() {
            self.unpost_label(id, key, value);
        }
    }

    /// Re-posts an item whose labels changed from `old` to `new`, touching only the labels
    /// that differ (postings for common keys hold many items).
    fn repost_item(&mut self, id: &I, old: &LabelMap, new: &LabelMap) {
        for (key, value) in old.entries() {
            if new.get_key(key) != Some(value) {
                self.unpost_label(id, key, value);
            }
        }
        for (key, value) in new.entries() {
            if old.get_key(key) != Some(value) {
                self.post_label(id, key, value);
            }
        }
    }

    fn post_label(&mut self, id: &I, key: &LabelKey, value: &str) {
        let postings = self.item_postings.entry(key.as_arc().clone()).or_default();
        postings.with_key.insert(id.clone());
        match postings.by_value.get_mut(value) {
            Some(ids) => {
                ids.insert(id.clone());
            }
            None => {
                postings
                    .by_value
                    .insert(Arc::from(value), BTreeSet::from([id.clone()]));
            }
        }
    }

    fn unpost_label(&mut self, id: &I, key: &LabelKey, value: &str) {
        let Some(postings) = self.item_postings.get_mut(key.as_str()) else {
            return;
        };
        postings.with_key.remove(id);
        if let Some(ids) = postings.by_value.get_mut(value) {
            ids.remove(id);
            if ids.is_empty() {
                postings.by_value.remove(value);
            }
        }
        if postings.is_empty() {
            self.item_postings.remove(key.as_str());
        }
    }

    fn file_selector(&mut self, id: &S, filing: &Filing) {
        match filing {
            Filing::Values(key, values) => {
                let postings = self.selector_postings.entry(key.clone()).or_default();
                for value in values {
                    postings
                        .by_value
                        .entry(value.clone())
                        .or_default()
                        .insert(id.clone());
                }
                if values.is_empty() && postings.is_empty() {
                    self.selector_postings.remove(key);
                }
            }
            Filing::Key(key) => {
                self.selector_postings
                    .entry(key.clone())
                    .or_default()
                    .with_key
                    .insert(id.clone());
            }
            Filing::Scan => {
                self.scan_selectors.insert(id.clone());
            }
        }
    }

    fn unfile_selector(&mut self, id: &S, filing: &Filing) {
        match filing {
            Filing::Values(key, values) => {
                if let Some(postings) = self.selector_postings.get_mut(key) {
                    for value in values {
                        if let Some(ids) = postings.by_value.get_mut(value) {
                            ids.remove(id);
                            if ids.is_empty() {
                                postings.by_value.remove(value);
                            }
                        }
                    }
                    if postings.is_empty() {
                        self.selector_postings.remove(key);
                    }
                }
            }
            Filing::Key(key) => {
                if let Some(postings) = self.selector_postings.get_mut(key) {
                    postings.with_key.remove(id);
                    if postings.is_empty() {
                        self.selector_postings.remove(key);
                    }
                }
            }
            Filing::Scan => {
                self.scan_selectors.remove(id);
            }
        }
    }

    /// Selectors that may match a label set with `labels`, sorted and de-duplicated.
    fn candidate_selectors(&self, labels: &LabelMap) -> Vec<S> {
        let mut candidates: Vec<S> = self.scan_selectors.iter().cloned().collect();
        for (key, value) in labels.entries() {
            if let Some(postings) = self.selector_postings.get(key.as_str()) {
                candidates.extend(postings.with_key.iter().cloned());
                if let Some(ids) = postings.by_value.get(value) {
                    candidates.extend(ids.iter().cloned());
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
    }

    /// Items a selector filed under `filing` may match.
    fn candidate_items(&self, filing: &Filing) -> BTreeSet<I> {
        match filing {
            Filing::Scan => self.items.keys().cloned().collect(),
            Filing::Key(key) => self
                .item_postings
                .get(key)
                .map(|p| p.with_key.clone())
                .unwrap_or_default(),
            Filing::Values(key, values) => {
                let mut candidates = BTreeSet::new();
                if let Some(postings) = self.item_postings.get(key) {
                    for value in values {
                        if let Some(ids) = postings.by_value.get(value) {
                            candidates.extend(ids.iter().cloned());
                        }
                    }
                }
                candidates
            }
        }
    }
}

/// Picks the most selective restriction to file a selector under.
fn filing_for(selector: &Selector) -> Filing {
    let restrictions = selector.label_restrictions();
    let by_values = restrictions
        .iter()
        .filter_map(|(key, r)| r.must_have_one_of.as_ref().map(|values| (key, values)))
        .min_by_key(|(_, values)| values.len());
    if let Some((key, values)) = by_values {
        let key = shared_key(selector, key);
        return Filing::Values(key, values.iter().map(|v| Arc::from(*v)).collect());
    }
    match restrictions.iter().find(|(_, r)| r.must_be_present) {
        Some((key, _)) => Filing::Key(shared_key(selector, key)),
        None => Filing::Scan,
    }
}

/// The selector's own shared copy of a key name.
fn shared_key(selector: &Selector, name: &str) -> Arc<str> {
    selector
        .label_keys()
        .binary_search_by(|k| k.as_str().cmp(name))
        .ok()
        .map(|i| selector.label_keys()[i].as_arc().clone())
        .unwrap_or_else(|| LabelKey::new(name).as_arc().clone())
}
