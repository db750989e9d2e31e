//! The refusals' floor ([`crate::limits::REFUSAL_FLOOR`]): a refusal
//! waits until a fixed time after its request arrived, and its answer
//! must leave then, whatever the work before it took.
//!
//! The runtime's sleep does not do that: its timer counts whole
//! milliseconds and its thread parks for whole milliseconds from the moment
//! it runs out of work, so a sleep ends at its millisecond plus the phase,
//! within a millisecond, of the moment the refusal's work ended: the
//! work's time showed through the floor (measured: a PBX of 14 licenses'
//! forged renewal 0.05 to 0.09 ms slower at the median than others'). One
//! thread for the whole server (not one per refusal) keeps the deadlines
//! and wakes each waiting refusal at its instant, to within the system's
//! timer slack; the refusal's task then answers at once.

use core::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;

use tessera_issuer::error::Error;
use tokio::sync::oneshot;

/// A refusal waiting for its instant.
#[derive(Debug)]
struct Due {
    at: Instant,
    /// The order of arrival: equal instants wake in it.
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    /// The soonest is the greatest: first out of the (max-)heap.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The handle of the floor's thread; the thread ends once the handle is
/// dropped (a refusal still waiting then falls back on the runtime's
/// sleep).
#[derive(Debug)]
pub(crate) struct Floor {
    requests: mpsc::Sender<(Instant, oneshot::Sender<()>)>,
}

impl Floor {
    /// Starts the floor's thread.
    ///
    /// # Errors
    /// [`Error::Usage`] when the thread cannot be started.
    pub(crate) fn start() -> Result<Self, Error> {
        let (requests, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tessera-floor".into())
            .spawn(move || run(&rx))
            .map_err(|e| Error::Usage(format!("cannot start the refusals' timer thread: {e}")))?;
        Ok(Self { requests })
    }

    /// Returns at `at`, not sooner: woken by the floor's thread, or, if it
    /// is gone, by the runtime's sleep.
    pub(crate) async fn until(&self, at: Instant) {
        let (wake, woken) = oneshot::channel();
        if self.requests.send((at, wake)).is_ok() && woken.await.is_ok() && Instant::now() >= at {
            return;
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

/// The floor's thread: wakes each refusal at its instant, until every
/// sender is gone.
fn run(rx: &mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut due: BinaryHeap<Due> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while due.peek().is_some_and(|d| d.at <= now) {
            if let Some(d) = due.pop() {
                let _ = d.wake.send(());
            }
        }
        let next = match due.peek() {
            Some(d) => rx.recv_timeout(d.at.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, wake)) => {
                seq += 1;
                due.push(Due { at, seq, wake });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::sync::Arc;

    use super::*;

    /// Waits asked at once, in any order, end at their instants, never
    /// sooner and soon after (the floor's thread wakes each); with the
    /// thread gone, a wait still lasts until its instant. Bounded.
    #[test]
    fn wakes_each_at_its_instant() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let floor = Arc::new(Floor::start().unwrap());
        let start = Instant::now();
        let ends = rt.block_on(async {
            let waits: Vec<_> = [30u64, 10, 20, 10, 0]
                .into_iter()
                .map(|ms| {
                    let floor = Arc::clone(&floor);
                    tokio::spawn(async move {
                        let at = start + Duration::from_millis(ms);
                        floor.until(at).await;
                        (ms, Instant::now().checked_duration_since(at))
                    })
                })
                .collect();
            let mut ends = Vec::new();
            for w in waits {
                ends.push(
                    tokio::time::timeout(Duration::from_secs(5), w)
                        .await
                        .unwrap()
                        .unwrap(),
                );
            }
            ends
        });
        for (ms, late) in ends {
            let late = late.unwrap_or_else(|| panic!("the wait of {ms} ms ended before it"));
            assert!(late < Duration::from_millis(500), "{ms} ms: {late:?} late");
        }

        let floor = Arc::into_inner(floor).unwrap();
        let (requests, rx) = mpsc::channel();
        drop(rx);
        let gone = Floor { requests };
        drop(floor);
        let at = Instant::now() + Duration::from_millis(20);
        rt.block_on(gone.until(at));
        assert!(Instant::now() >= at);
    }

    /// A wait ends within a fraction of a millisecond of its instant,
    /// whatever the phase of the millisecond it was asked in or ends in:
    /// the runtime's sleep ends up to a millisecond or two late, by that
    /// phase (which is how the work before a refusal showed through).
    /// The median of 21 waits, on a current-thread runtime (bounded: each
    /// is 2 to 5 ms).
    #[test]
    fn wakes_within_a_fraction_of_a_millisecond() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let floor = Floor::start().unwrap();
        let mut late: Vec<Duration> = rt.block_on(async {
            let mut late = Vec::new();
            for k in 0..21u32 {
                // Another phase each time: k * 0.137 ms before asking,
                // an instant k * 0.29 ms past 2 ms.
                let asked = Instant::now() + Duration::from_micros(137 * u64::from(k));
                while Instant::now() < asked {}
                let at = Instant::now() + Duration::from_micros(2000 + 290 * u64::from(k % 10));
                floor.until(at).await;
                late.push(Instant::now().duration_since(at));
            }
            late
        });
        late.sort_unstable();
        let median = late[late.len() / 2];
        assert!(
            median < Duration::from_micros(500),
            "{median:?} late: {late:?}"
        );
    }
}
