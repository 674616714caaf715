//! A stack whose entries may leave in any order: the shape of nested scopes and plans.
//!
//! Guards are dropped LIFO in the usual case, but not always (a `Vec` of guards drops front to
//! back, `std::mem::drop` picks any). Each guard must remove its own entry, never the top's,
//! and a deep nest must stay linear: removing the top pops it at once; removing an entry
//! below only forgets its id, and it is popped when the entries above it have left. Every
//! operation is amortised O(1).

use std::collections::HashSet;

/// Entries with ids, innermost last.
#[derive(Debug)]
pub(crate) struct Stack<T> {
    /// Every entry not yet popped, live or left, innermost last; the last one is always live.
    entries: Vec<(u64, T)>,
    /// Ids of the entries that have not left.
    live: HashSet<u64>,
    /// Entries pushed or popped so far: the work done, for tests of the cost.
    steps: u64,
}

impl<T> Default for Stack<T> {
    fn default() -> Self {
        Stack {
            entries: Vec::new(),
            live: HashSet::new(),
            steps: 0,
        }
    }
}

impl<T> Stack<T> {
    /// Pushes `value` under `id` (ids must be unique).
    pub(crate) fn push(&mut self, id: u64, value: T) {
        debug_assert!(!self.live.contains(&id), "scope id {id} reused");
        self.live.insert(id);
        self.entries.push((id, value));
        self.steps += 1;
    }

    /// Removes the entry `id`, wherever it is; `false` if there is none.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        if !self.live.remove(&id) {
            return false;
        }
        while let Some((top, _)) = self.entries.last() {
            if self.live.contains(top) {
                break;
            }
            self.entries.pop();
            self.steps += 1;
        }
        true
    }

    /// The innermost entry that has not left.
    pub(crate) fn top(&self) -> Option<&T> {
        self.entries.last().map(|(_, v)| v)
    }

    /// The innermost entry that has not left, to update in place.
    pub(crate) fn top_mut(&mut self) -> Option<&mut T> {
        self.entries.last_mut().map(|(_, v)| v)
    }

    /// Whether every entry has left.
    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Entries held in memory (live, or left but still below a live one).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.entries.len()
    }

    /// Pushes and pops done so far.
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_removal_keeps_the_innermost_live_entry_on_top() {
        let mut s = Stack::default();
        s.push(0, 'a');
        s.push(1, 'b');
        s.push(2, 'c');
        assert!(s.remove(1));
        assert_eq!(s.top(), Some(&'c'));
        assert!(s.remove(2));
        assert_eq!(s.top(), Some(&'a'), "b left earlier and is not resurrected");
        assert_eq!(s.held(), 1);
        assert!(!s.remove(1), "an entry leaves once");
        assert!(s.remove(0));
        assert!(s.is_empty() && s.top().is_none() && s.held() == 0);
    }

    #[test]
    fn twenty_thousand_nested_entries_cost_linear_work_in_either_order() {
        const N: u64 = 20_000;
        for reverse in [false, true] {
            let mut s = Stack::default();
            for id in 0..N {
                s.push(id, id);
            }
            let order: Vec<u64> = if reverse {
                (0..N).rev().collect()
            } else {
                (0..N).collect()
            };
            for id in order {
                assert!(s.remove(id));
            }
            assert!(s.is_empty());
            assert_eq!(s.held(), 0);
            // One push and one pop per entry, whatever the order.
            assert_eq!(s.steps(), 2 * N);
        }
    }
}
