//! Sorted sequences merged into one sorted sequence: a key's deltas from the workers' lists, by
//! transaction.

use smallvec::SmallVec;

/// The items of several sequences, each sorted by `before`, in one sorted sequence. Of equal
/// items, those of the earlier sequence come first.
pub(crate) struct Merged<I: Iterator, F> {
    /// Each sequence with its next item taken out (inline up to 4: merging the lists of a
    /// key's deltas, one per worker, at every resolution of its value allocates nothing).
    runs: SmallVec<[(Option<I::Item>, I); 4]>,
    before: F,
}

/// Merges `runs`, each sorted so that `before(a, b)` holds when `a` comes strictly before `b`.
pub(crate) fn merged<I: Iterator, F: Fn(&I::Item, &I::Item) -> bool>(
    runs: impl IntoIterator<Item = I>,
    before: F,
) -> Merged<I, F> {
    let runs = runs.into_iter().map(|mut run| (run.next(), run)).collect();
    Merged { runs, before }
}

impl<I: Iterator, F: Fn(&I::Item, &I::Item) -> bool> Iterator for Merged<I, F> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let mut lowest: Option<(usize, &I::Item)> = None;
        for (i, (head, _)) in self.runs.iter().enumerate() {
            if let Some(item) = head {
                if lowest.is_none_or(|(_, low)| (self.before)(item, low)) {
                    lowest = Some((i, item));
                }
            }
        }
        let (i, _) = lowest?;
        let (head, run) = &mut self.runs[i];
        std::mem::replace(head, run.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_runs_merge_in_order_with_ties_in_run_order() {
        let runs =
            [vec![(1, 'a'), (4, 'a'), (4, 'b'), (9, 'a')], vec![], vec![(0, 'c'), (4, 'c'), (10, 'c')]];
        let out: Vec<_> = merged(runs.iter().map(|run| run.iter()), |a, b| a.0 < b.0).collect();
        let expected = [(0, 'c'), (1, 'a'), (4, 'a'), (4, 'b'), (4, 'c'), (9, 'a'), (10, 'c')];
        assert_eq!(out, expected.iter().collect::<Vec<_>>());
        assert_eq!(merged(Vec::<std::vec::IntoIter<u8>>::new(), |a, b| a < b).count(), 0);
    }
}
