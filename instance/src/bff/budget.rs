//! The per-realm time budget of a call, which leaves a realm out when the realm is slow
//! and not when this hub is behind on its own work.
//!
//! A plain timeout around a realm call measures the realm and the hub together: when the
//! hub's runtime is busy (a burst of fan-outs, a loaded node), an answer that came back
//! in time may wait in its socket, or in the connection task that reads it, until the hub
//! gets round to it — and the realm would be left out for the hub's delay. So when the
//! budget is spent by the clock, the hub first checks how far behind it is itself: how
//! late the deadline's own timer ran, and how long a task waits for its turn right now
//! (one yield; meanwhile everything already queued runs, the connection holding the
//! answer included). If the answer is there then, it is taken. If the hub was behind,
//! the call gets that much longer (at most one more deadline in all, so an answer stays
//! bounded); only a realm that has not answered although the hub kept up is left out.
//! This costs nothing while realms answer in time: it runs only when a deadline passes.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

/// Lateness below this is the timer's own granularity, not queueing.
const SLACK: Duration = Duration::from_millis(2);

/// Why a call was given up: the realm's deadline, and how much longer the call was given
/// because the hub itself was behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Spent {
    pub deadline: Duration,
    pub extended: Duration,
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within {} ms", self.deadline.as_millis())?;
        if !self.extended.is_zero() {
            write!(
                f,
                " (and {} ms more for the hub's own delay)",
                self.extended.as_millis()
            )?;
        }
        Ok(())
    }
}

/// Runs `call` within `deadline` of the realm's time (see the module documentation).
pub async fn within<T>(deadline: Duration, call: impl Future<Output = T>) -> Result<T, Spent> {
    let mut until = Instant::now() + deadline;
    let mut extended = Duration::ZERO;
    tokio::pin!(call);
    loop {
        if let Ok(v) = tokio::time::timeout_at(until, &mut call).await {
            return Ok(v);
        }
        // Spent by the clock. How far behind is the hub itself?
        let late = Instant::now().saturating_duration_since(until);
        let turn = Instant::now();
        tokio::task::yield_now().await;
        let behind = late + turn.elapsed();
        if let Poll::Ready(v) = futures::poll!(&mut call) {
            return Ok(v);
        }
        let extra = behind.min(deadline.saturating_sub(extended));
        if behind <= SLACK || extra.is_zero() {
            return Err(Spent { deadline, extended });
        }
        extended += extra;
        until = Instant::now() + extra;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_realm_is_given_up_at_its_deadline() {
        let r = within(Duration::from_millis(100), async {
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .await;
        let spent = r.unwrap_err();
        assert_eq!(
            spent,
            Spent {
                deadline: Duration::from_millis(100),
                extended: Duration::ZERO
            }
        );
        assert_eq!(spent.to_string(), "no answer within 100 ms");
    }

    /// The realm answers at 30 ms, through a task of its own (as a connection does), but
    /// the hub's only thread is busy with other work from 10 ms to 300 ms: when it gets
    /// back, the deadline (100 ms) has passed by the clock and the answer waits in a task
    /// that has not run yet. The realm is not left out for that.
    #[tokio::test(flavor = "current_thread")]
    async fn an_answer_held_up_by_the_hubs_own_work_is_kept() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _ = tx.send("answer");
        });
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            // Blocks the runtime's only thread, as a burst of the hub's own work would.
            std::thread::sleep(Duration::from_millis(300));
        });
        let r = within(Duration::from_millis(100), async { rx.await.unwrap() }).await;
        assert_eq!(r, Ok("answer"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_hubs_delay_extends_a_budget_by_at_most_one_more_deadline() {
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            std::thread::sleep(Duration::from_millis(300));
        });
        // A realm that never answers: given up once the extension is used up.
        let r = within(
            Duration::from_millis(100),
            std::future::pending::<&'static str>(),
        )
        .await;
        let spent = r.unwrap_err();
        assert_eq!(spent.extended, Duration::from_millis(100), "{spent}");
        assert!(spent.to_string().contains("100 ms more"), "{spent}");
    }
}
