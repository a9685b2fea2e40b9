//! The parallel loop of the conv drivers: tasks `0..n` split into one contiguous range per
//! thread of the current rayon pool, each thread taking its own range from the front,
//! then stealing from the back of the others'.
//!
//! With rayon's adaptive splitting (`into_par_iter`), which thread computes which task
//! changes from run to run, so a thread rarely finds in its own L2 the input or output it
//! touched in the previous run, or the rows it reordered a moment before; a fixed
//! partition by thread index, like an OpenMP static schedule, keeps them there. Stealing
//! from the back keeps a late-waking thread from holding back the run: its range is taken
//! over from the far end while it sleeps.
//!
//! Nothing is allocated: the ranges live on the stack, the threads are reached through
//! nested `rayon::join`s (stack jobs).

use std::sync::atomic::{AtomicU64, Ordering};

/// Ranges kept on the stack; with more threads than this, threads share ranges (thread
/// `t` starts at range `t % MAX_RANGES`).
const MAX_RANGES: usize = 64;

/// A range of task units `front..back`, packed in one atomic (front in the high half) so
/// that the owner and the thieves claim units with one compare-and-swap; on its own cache
/// line pair so that two threads' claims never contend for a line.
#[repr(align(128))]
struct Range(AtomicU64);

impl Range {
    fn new(front: u32, back: u32) -> Range {
        Range(AtomicU64::new(((front as u64) << 32) | back as u64))
    }

    /// Claims the unit at the front (owner) or the back (thief), if any is left.
    fn claim(&self, from_back: bool) -> Option<u32> {
        let mut packed = self.0.load(Ordering::Relaxed);
        loop {
            let (front, back) = ((packed >> 32) as u32, packed as u32);
            if front >= back {
                return None;
            }
            let (unit, next) = if from_back { (back - 1, packed - 1) } else { (front, packed + (1 << 32)) };
            match self.0.compare_exchange_weak(packed, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(unit),
                Err(now) => packed = now,
            }
        }
    }
}

/// Runs `task(i)` for every `i < n` on the current rayon pool: thread `t` of `T` owns the
/// `t`-th of `T` contiguous ranges (callers order tasks so that a range's tasks share
/// data), then steals from the back of the following ranges. Each task runs exactly once;
/// returns when all have run. At most one job per task is forked, so a loop of one task
/// wakes nobody.
pub(crate) fn for_each(n: usize, task: impl Fn(usize) + Sync) {
    if n == 0 {
        return;
    }
    let pool = rayon::current_num_threads().max(1);
    let ranges_n = pool.min(MAX_RANGES);
    // Units of `per` tasks, so that unit indices fit the packed u32 halves.
    let per = n.div_ceil(u32::MAX as usize);
    let units = n.div_ceil(per);
    // Range r is units [r * units / R, (r + 1) * units / R), in u64 (r <= 64, units <=
    // u32::MAX), so both bounds fit a u32; ranges past R stay empty.
    let bound = |r: usize| (r.min(ranges_n) as u64 * units as u64 / ranges_n as u64) as u32;
    let ranges: [Range; MAX_RANGES] = std::array::from_fn(|r| Range::new(bound(r), bound(r + 1)));
    let work = || {
        let me = rayon::current_thread_index().unwrap_or(0) % ranges_n;
        for k in 0..ranges_n {
            let range = &ranges[(me + k) % ranges_n];
            while let Some(unit) = range.claim(k > 0) {
                let start = unit as usize * per;
                (start..start.saturating_add(per).min(n)).for_each(&task);
            }
        }
    };
    fork(pool.min(units), &work);
}

/// Runs `work` on `count` rayon jobs (nested joins), one per thread when they spread.
fn fork(count: usize, work: &(impl Fn() + Sync)) {
    if count <= 1 {
        work();
    } else {
        let half = count / 2;
        rayon::join(|| fork(half, work), || fork(count - half, work));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Every task runs exactly once, for task counts around the thread count, with more
    /// threads than ranges (70), and called from outside any pool (the global one).
    #[test]
    fn each_task_runs_once() {
        type Task<'a> = &'a (dyn Fn(usize) + Sync);
        let once = |n: usize, run: &dyn Fn(Task)| {
            let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            run(&|i| _ = counts[i].fetch_add(1, Ordering::Relaxed));
            counts.iter().all(|c| c.load(Ordering::Relaxed) == 1)
        };
        for threads in [1, 2, 3, 5, 70] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for n in [0, 1, 2, 3, 7, 64, 71, 1000] {
                assert!(once(n, &|task| pool.install(|| for_each(n, task))), "{threads} threads, {n} tasks");
            }
        }
        for n in [0, 1, 5, 1000] {
            assert!(once(n, &|task| for_each(n, task)), "global pool, {n} tasks");
        }
    }

    /// The owner claims from the front, thieves from the back, until the range is empty.
    #[test]
    fn claims_front_and_back() {
        let range = Range::new(3, 6);
        assert_eq!(range.claim(false), Some(3));
        assert_eq!(range.claim(true), Some(5));
        assert_eq!(range.claim(true), Some(4));
        assert_eq!(range.claim(false), None);
        assert_eq!(range.claim(true), None);
    }
}
