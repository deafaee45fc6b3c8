//! How the uploads of a pass are cut into batches: a pure plan of batch lengths.
//!
//! A batch pays one journal sync and one round of day-file and archive syncs, so bigger batches
//! cost less per upload; but nothing overlaps the first commit, so batches start at an eighth
//! of the full size and double up to it, and the first commit starts soon. A batch also ends
//! once it holds `max_bytes` of `.out`.

/// The lengths of the batches, in order, for uploads of `sizes` bytes (in the order they are
/// ingested), with at most `max_uploads` uploads (at least 1) and about `max_bytes` bytes each.
pub(super) fn plan(
    sizes: impl IntoIterator<Item = u64>,
    max_uploads: usize,
    max_bytes: u64,
) -> Vec<usize> {
    let max_uploads = max_uploads.max(1);
    let mut lengths = Vec::new();
    let mut len = 0;
    let mut bytes = 0;
    let mut cap = (max_uploads / 8).max(1);
    for size in sizes {
        len += 1;
        bytes += size;
        if len >= cap || bytes >= max_bytes {
            lengths.push(len);
            len = 0;
            bytes = 0;
            cap = (cap * 2).min(max_uploads);
        }
    }
    if len > 0 {
        lengths.push(len);
    }
    lengths
}

/// Cuts `items` into consecutive batches of the given lengths (which add up to its length).
pub(super) fn split<T>(items: Vec<T>, lengths: &[usize]) -> Vec<Vec<T>> {
    let mut rest = items.into_iter();
    lengths
        .iter()
        .map(|&n| rest.by_ref().take(n).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_start_small_and_double_up_to_the_full_size() {
        let lengths = plan(std::iter::repeat_n(1000, 1000), 256, 1 << 30);
        assert_eq!(lengths, [32, 64, 128, 256, 256, 256, 8]);
        assert_eq!(lengths.iter().sum::<usize>(), 1000);
    }

    #[test]
    fn a_batch_ends_at_its_byte_budget() {
        // 40 MiB uploads against a 100 MiB budget: three per batch, whatever the count cap.
        let lengths = plan(std::iter::repeat_n(40 << 20, 7), 256, 100 << 20);
        assert_eq!(lengths, [3, 3, 1]);
        // One upload larger than the budget is a batch of its own.
        assert_eq!(plan([1 << 31, 10, 10], 256, 1 << 30), [1, 2]);
    }

    #[test]
    fn tiny_limits_and_no_uploads() {
        assert!(plan([], 256, 1 << 30).is_empty());
        assert_eq!(plan([1, 1, 1], 1, 1 << 30), [1, 1, 1]);
        assert_eq!(plan([1, 1, 1], 0, 1 << 30), [1, 1, 1], "a cap of 0 means 1");
        assert_eq!(
            plan([5, 5], 16, 1 << 30),
            [2],
            "the last batch holds what is left"
        );
    }

    #[test]
    fn split_follows_the_plan() {
        let items: Vec<u32> = (0..7).collect();
        assert_eq!(
            split(items, &[2, 4, 1]),
            [vec![0, 1], vec![2, 3, 4, 5], vec![6]]
        );
    }
}
