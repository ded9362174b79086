//! Throttling what a source reads (`max_rows_per_second`,
//! `max_bytes_per_second`), to protect a production server: every reader
//! waits for its share before it emits a batch, and the bounded channels
//! behind it pass the wait back to the reads themselves.
//!
//! The rate is a GCRA (the `governor` crate) with a burst of a tenth of a
//! second's worth, so the limit holds over any window longer than that.
//!
//! Pausing (SIGUSR1, resumed by SIGUSR2) uses the same place: a paused
//! source waits before it emits, so nothing new reaches the sinks while
//! what they already hold is applied and checkpointed.

use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::watch;

static PAUSE: OnceLock<watch::Sender<bool>> = OnceLock::new();

fn pause_gate() -> &'static watch::Sender<bool> {
    PAUSE.get_or_init(|| watch::channel(false).0)
}

/// Pauses (or resumes) every source of this process; `false` when it
/// already was so.
pub fn set_paused(paused: bool) -> bool {
    pause_gate().send_replace(paused) != paused
}

pub fn is_paused() -> bool {
    *pause_gate().borrow()
}

/// Returns at once unless paused; then when resumed.
pub async fn while_paused() {
    if !is_paused() {
        return;
    }
    let mut rx = pause_gate().subscribe();
    let _ = rx.wait_for(|p| !*p).await;
}

/// One rate, in units per second.
struct Limit {
    gcra: DefaultDirectRateLimiter,
    burst: u32,
}

impl Limit {
    fn new(per_second: u64) -> Limit {
        let rate = per_second.clamp(1, u32::MAX as u64) as u32;
        let burst = (rate / 10).max(1);
        let quota = Quota::per_second(NonZeroU32::MIN.saturating_add(rate - 1))
            .allow_burst(NonZeroU32::MIN.saturating_add(burst - 1));
        Limit {
            gcra: RateLimiter::direct(quota),
            burst,
        }
    }

    /// Waits until `n` units may pass, in steps no larger than the burst.
    async fn take(&self, mut n: u64) {
        while n > 0 {
            let step = n.min(self.burst as u64) as u32;
            // A step never exceeds the burst, so this cannot fail.
            let _ = self
                .gcra
                .until_n_ready(NonZeroU32::MIN.saturating_add(step - 1))
                .await;
            n -= step as u64;
        }
    }
}

/// The limits a source's readers share.
pub struct Throttle {
    rows: Option<Limit>,
    bytes: Option<Limit>,
}

impl Throttle {
    /// `None` when neither limit is set.
    pub fn new(rows_per_second: Option<u64>, bytes_per_second: Option<u64>) -> Option<Arc<Self>> {
        if rows_per_second.is_none() && bytes_per_second.is_none() {
            return None;
        }
        Some(Arc::new(Throttle {
            rows: rows_per_second.map(Limit::new),
            bytes: bytes_per_second.map(Limit::new),
        }))
    }

    /// Waits until `rows` rows of `bytes` bytes may be emitted.
    pub async fn take(&self, rows: u64, bytes: u64) {
        if let Some(l) = &self.rows {
            l.take(rows).await;
        }
        if let Some(l) = &self.bytes {
            l.take(bytes).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_the_rate() {
        let t = Throttle::new(Some(2000), None).expect("a throttle");
        let start = std::time::Instant::now();
        // 700 rows: the first 200 (the burst) pass at once, the other 500
        // take a quarter of a second.
        for _ in 0..7 {
            t.take(100, 0).await;
        }
        let secs = start.elapsed().as_secs_f64();
        assert!(secs >= 0.24, "700 rows at 2000/s took only {secs} s");
        assert!(Throttle::new(None, None).is_none());
    }
}
