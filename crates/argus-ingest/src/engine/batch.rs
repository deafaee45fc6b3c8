//! How the uploads of a pass are cut into batches: a pure plan of batch lengths.
//!
//! A batch pays one journal sync and one round of day-file and archive syncs, so bigger batches
//! cost less per upload; but nothing overlaps the first commit, nor the last one (the preparer
//! has finished), so batches start at an eighth of the full size, in uploads and in bytes, and
//! double up to it; and towards the end no batch holds more than half the bytes left (down to
//! a sixty-fourth of the full size), so that large uploads do not leave one long commit alone
//! at the end. Small uploads are not cut finer at the end: there a batch's fixed cost (its
//! syncs) outweighs what a shorter last commit saves. A batch cut by its bytes holds a
//! multiple of the preparing threads (when there are uploads enough): each thread prepares
//! whole uploads, and a batch of three large uploads on two threads would leave one idle for
//! the time of one upload.

/// The lengths of the batches, in order, for uploads of `sizes` bytes (in the order they are
/// ingested), with at most `max_uploads` uploads (at least 1) and about `max_bytes` bytes each,
/// for `threads` preparing threads.
pub(super) fn plan(
    sizes: &[u64],
    max_uploads: usize,
    max_bytes: u64,
    threads: usize,
) -> Vec<usize> {
    let max_uploads = max_uploads.max(1);
    let threads = threads.max(1);
    let max_bytes = max_bytes.max(1);
    let least_bytes = (max_bytes / 64).max(1);
    let mut left: u64 = sizes.iter().fold(0, |a, &s| a.saturating_add(s));
    let mut lengths = Vec::new();
    let mut cap = (max_uploads / 8).max(1);
    let mut byte_cap = (max_bytes / 8).max(1);
    let mut rest = sizes;
    while !rest.is_empty() {
        let bytes_wanted = byte_cap.min((left / 2).max(least_bytes));
        let mut len = 0;
        let mut bytes = 0u64;
        for &size in rest {
            len += 1;
            bytes = bytes.saturating_add(size);
            if len >= cap || bytes >= bytes_wanted {
                break;
            }
        }
        if len < cap {
            let round = len
                .next_multiple_of(threads)
                .min(rest.len())
                .min(max_uploads);
            bytes = rest[len..round]
                .iter()
                .fold(bytes, |a, &s| a.saturating_add(s));
            len = round;
        }
        lengths.push(len);
        rest = &rest[len..];
        left = left.saturating_sub(bytes);
        cap = (cap * 2).min(max_uploads);
        byte_cap = byte_cap.saturating_mul(2).min(max_bytes);
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
        let lengths = plan(&[1000; 1000], 256, 1 << 30, 1);
        assert_eq!(lengths, [32, 64, 128, 256, 256, 256, 8]);
        assert_eq!(lengths.iter().sum::<usize>(), 1000);
    }

    #[test]
    fn a_batch_ends_at_its_byte_budget() {
        // 40 MiB uploads against an 800 MiB budget: 100 MiB, then 200 MiB, then half of
        // what is left, whatever the count cap.
        let lengths = plan(&[40 << 20; 20], 256, 800 << 20, 1);
        assert_eq!(lengths, [3, 5, 6, 3, 2, 1]);
        assert_eq!(lengths.iter().sum::<usize>(), 20);
        // On two threads, an even number of uploads where it can.
        let lengths = plan(&[40 << 20; 20], 256, 800 << 20, 2);
        assert_eq!(lengths, [4, 6, 6, 2, 2]);
        let lengths = plan(&[64 << 20; 8], 256, 1 << 30, 2);
        assert_eq!(lengths, [2, 4, 2]);
        assert_eq!(plan(&[64 << 20; 3], 256, 1 << 30, 2), [2, 1]);
        assert_eq!(
            plan(&[64 << 20; 3], 1, 1 << 30, 2),
            [1, 1, 1],
            "within the count cap"
        );
        // One upload larger than the budget is a batch of its own.
        assert_eq!(plan(&[1 << 31, 10, 10], 256, 1 << 30, 1), [1, 2]);
    }

    #[test]
    fn tiny_limits_and_no_uploads() {
        assert!(plan(&[], 256, 1 << 30, 1).is_empty());
        assert_eq!(plan(&[1, 1, 1], 1, 1 << 30, 1), [1, 1, 1]);
        assert_eq!(
            plan(&[1, 1, 1], 0, 1 << 30, 1),
            [1, 1, 1],
            "a cap of 0 means 1"
        );
        assert_eq!(
            plan(&[5, 5], 16, 1 << 30, 1),
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
