//! Group commit for small, independent writes: concurrent callers share one
//! transaction (and so one fsync), each still answered only once its own
//! write is durable.
//!
//! There is no standing background task (a store outlives no runtime it was
//! not made on): each caller queues its entry, then waits for the leader's
//! turn. Whoever gets the turn takes what is queued — up to `max` entries —
//! and has it written as one batch by a task of its own, which hands every
//! caller its own answer: a leader whose request is cancelled (its client
//! went away) abandons nobody else's write. The task holds the turn until
//! the batch is written; the leader itself waits only for its own answer
//! (which may come from another leader's batch), never for a batch that
//! does not hold its entry. A caller whose entry an earlier leader took
//! finds its answer and leaves. A lone caller leads at once: no added
//! latency when idle.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Entries `E` waiting to be written together; each gets its answer `R`.
pub(crate) struct Batcher<E, R> {
    pending: Mutex<VecDeque<(E, oneshot::Sender<R>)>>,
    /// Batches written at once: one, or a few where the database runs
    /// transactions side by side (PostgreSQL), so that one batch's round
    /// trips and fsync do not hold up the next.
    turns: std::sync::Arc<tokio::sync::Semaphore>,
    max: usize,
}

impl<E, R> std::fmt::Debug for Batcher<E, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("max", &self.max).finish()
    }
}

/// The batch was dropped before this entry's answer was given (its leader
/// was cancelled mid-write): the write's fate is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Abandoned;

impl<E, R> Batcher<E, R> {
    /// Batches of at most `max` entries (at least one), one at a time.
    pub(crate) fn new(max: usize) -> Self {
        Self::concurrent(max, 1)
    }

    /// Batches of at most `max` entries, up to `at_once` of them being
    /// written at the same time (at least one).
    pub(crate) fn concurrent(max: usize, at_once: usize) -> Self {
        Batcher {
            pending: Mutex::new(VecDeque::new()),
            turns: std::sync::Arc::new(tokio::sync::Semaphore::new(at_once.max(1))),
            max: max.max(1),
        }
    }

    /// Queues `entry` and returns its answer once a leader — perhaps this
    /// caller — wrote it with `write`, which gets the batch in arrival
    /// order and returns one answer per entry, in the same order.
    pub(crate) async fn submit<W, F>(&self, entry: E, write: W) -> Result<R, Abandoned>
    where
        W: Fn(Vec<E>) -> F,
        F: std::future::Future<Output = Vec<R>> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        self.queue().push_back((entry, tx));
        loop {
            // Whichever comes first: this entry's answer (another leader
            // took it into a batch that has been written: no reason to
            // queue for a turn behind batches that are not this caller's),
            // or a turn. The semaphore is never closed: that error cannot
            // happen, and is waited out as an answer would be.
            let turn = tokio::select! {
                biased;
                answer = &mut rx => return answer.map_err(|_| Abandoned),
                turn = self.turns.clone().acquire_owned() => turn,
            };
            let Ok(turn) = turn else {
                return rx.await.map_err(|_| Abandoned);
            };
            match rx.try_recv() {
                Ok(answer) => return Ok(answer),
                Err(oneshot::error::TryRecvError::Closed) => return Err(Abandoned),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            // A caller that went away (its request dropped: the client hung
            // up, or it timed out) before its entry's turn: not written, as
            // if it had never asked. Should the first `max` entries all be
            // such, the next ones are taken: this caller's may be among
            // them.
            let mut batch: Vec<(E, oneshot::Sender<R>)> = Vec::new();
            {
                let mut q = self.queue();
                while batch.is_empty() && !q.is_empty() {
                    let n = q.len().min(self.max);
                    batch.extend(q.drain(..n).filter(|(_, sender)| !sender.is_closed()));
                }
            }
            if batch.is_empty() {
                // This entry is in a batch another leader is writing.
                drop(turn);
                return rx.await.map_err(|_| Abandoned);
            }
            let (entries, senders): (Vec<E>, Vec<oneshot::Sender<R>>) = batch.into_iter().unzip();
            let written = write(entries);
            // The batch holds the turn until it is written, whatever
            // becomes of this leader (cancelled: the write goes on without
            // it). The leader does not wait for it: its own entry may be
            // in another batch already written, or still queued.
            tokio::spawn(async move {
                let _turn = turn;
                let answers = written.await;
                // One answer per entry; a short list (a bug in `write`)
                // leaves the rest abandoned, never answered with another's
                // result.
                for (sender, answer) in senders.into_iter().zip(answers) {
                    // A caller that went away no longer wants its answer.
                    let _ = sender.send(answer);
                }
            });
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<(E, oneshot::Sender<R>)>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_entries_share_batches_and_each_gets_its_own_answer() {
        let b = Arc::new(Batcher::<u32, u32>::new(8));
        let batches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..100u32 {
            let (b, batches) = (b.clone(), batches.clone());
            tasks.push(tokio::spawn(async move {
                b.submit(i, |entries: Vec<u32>| {
                    let batches = batches.clone();
                    async move {
                        assert!(entries.len() <= 8);
                        batches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        entries.iter().map(|e| e * 10).collect()
                    }
                })
                .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Ok(i as u32 * 10));
        }
        let n = batches.load(Ordering::SeqCst);
        assert!(n < 100, "writes were shared: {n} batches for 100 entries");
        assert!(n >= 100 / 8, "at most 8 per batch: {n}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_batches_stay_within_their_bound_and_answer_everyone() {
        let b = Arc::new(Batcher::<u32, u32>::concurrent(8, 2));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let (b, now, most) = (b.clone(), now.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                b.submit(i, |entries: Vec<u32>| {
                    let (now, most) = (now.clone(), most.clone());
                    async move {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        entries.iter().map(|e| e + 1000).collect()
                    }
                })
                .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Ok(i as u32 + 1000));
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} batches at once");
    }

    /// A caller whose entry another leader took, and who meanwhile got a
    /// turn and leads a batch of later entries, is answered when its own
    /// entry is written — not when the batch it leads is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_is_not_held_behind_a_batch_that_does_not_hold_it() {
        use std::time::{Duration, Instant};
        // An entry is how long (ms) a batch holding it takes to write.
        let b = Arc::new(Batcher::<u64, u64>::concurrent(8, 2));
        let submit = |ms: u64, after: u64| {
            let b = b.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(after)).await;
                let started = Instant::now();
                let answer = b
                    .submit(ms, |entries: Vec<u64>| async move {
                        let longest = entries.iter().copied().max().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(longest)).await;
                        entries
                    })
                    .await;
                (answer, started.elapsed())
            })
        };
        // Both turns are taken (until 300 and 605 ms). 3 and 4 queue, and
        // are written together from 300 to 700 ms. 5 (3 s) arrives at
        // 450 ms and is led by whoever gets the turn freed at 605 ms: 3's
        // or 4's caller (which one depends on the order they queued for a
        // turn), while its own entry is still being written.
        let one = submit(300, 0);
        let two = submit(600, 5);
        let three = submit(400, 20);
        let four = submit(400, 40);
        let five = submit(3000, 450);
        for (task, ms) in [(one, 300), (two, 600), (five, 3000)] {
            assert_eq!(task.await.unwrap().0, Ok(ms));
        }
        for (who, task) in [("3", three), ("4", four)] {
            let (answer, waited) = task.await.unwrap();
            assert_eq!(answer, Ok(400));
            assert!(
                waited < Duration::from_millis(2000),
                "{who} was answered after {waited:?}: it waited for the 3 s batch, not its own"
            );
        }
    }

    /// Entries whose callers went away are skipped, however many come
    /// first: the caller behind them still gets its entry written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_behind_a_full_batch_of_cancelled_entries_is_written() {
        use std::time::Duration;
        let b = Arc::new(Batcher::<u32, u32>::new(2));
        let write = |e: Vec<u32>| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            e.iter().map(|x| x + 1).collect::<Vec<_>>()
        };
        // The turn is taken for 100 ms; three callers queue and go away,
        // then the last one queues behind them.
        let first = tokio::spawn({
            let b = b.clone();
            async move { b.submit(0, write).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut gone = Vec::new();
        for i in 1..=3 {
            let b = b.clone();
            gone.push(tokio::spawn(async move { b.submit(i, write).await }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        for g in &gone {
            g.abort();
        }
        let last = tokio::spawn({
            let b = b.clone();
            async move { b.submit(9, write).await }
        });
        assert_eq!(first.await.unwrap(), Ok(1));
        let answer = tokio::time::timeout(Duration::from_secs(5), last)
            .await
            .expect("the caller behind the cancelled entries was never answered");
        assert_eq!(answer.unwrap(), Ok(10));
    }

    #[tokio::test]
    async fn a_lone_entry_is_written_at_once() {
        let b = Batcher::<u32, u32>::new(8);
        let answer = b
            .submit(
                7,
                |e: Vec<u32>| async move { e.iter().map(|x| x + 1).collect() },
            )
            .await;
        assert_eq!(answer, Ok(8));
    }

    #[tokio::test]
    async fn an_entry_left_without_an_answer_is_abandoned() {
        let b = Batcher::<u32, u32>::new(8);
        let answer = b.submit(7, |_: Vec<u32>| async move { Vec::new() }).await;
        assert_eq!(answer, Err(Abandoned));
    }
}
