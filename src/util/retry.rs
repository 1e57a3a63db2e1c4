//! The one retry loop: a step tried again after exponential backoff (with jitter, so nodes that
//! started together do not ask together again), bounded by an attempt count and a deadline.
//! Downloads, health waits, joins and promotions all wait through it.

use anyhow::Result;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// Adds up to half the delay again, at random.
    pub jitter: bool,
}

impl Backoff {
    /// The wait after the `n`th failed try (0-based): `first`, doubling, capped at `max`.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self
            .first
            .saturating_mul(2u32.saturating_pow(n.min(16)))
            .min(self.max);
        if self.jitter {
            base + jitter(base)
        } else {
            base
        }
    }
}

/// Up to half of `d`, at random: many nodes retrying one server must not retry in lockstep.
pub fn jitter(d: Duration) -> Duration {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0) as u64;
    let x = t ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9);
    Duration::from_millis(x % (d.as_millis() as u64 / 2 + 1))
}

/// What a step came to.
pub enum Next<T, W> {
    Done(T),
    /// Not yet, and why: wait, then try again.
    Again(W),
    /// Something changed that makes another try worth it at once.
    Now,
}

/// How the loop ended when the step never got done: the last reason, after how many tries and how long.
pub struct GaveUp<W> {
    pub last: W,
    pub attempts: u32,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub backoff: Backoff,
    /// Tries in all; `None`: as many as the deadline allows.
    pub attempts: Option<u32>,
    pub within: Duration,
    /// Polls wait out the deadline and look once more at it; downloads start no try that could
    /// not wait its full backoff first.
    pub last_try_at_deadline: bool,
}

impl Policy {
    /// Runs `step` (given the try number, from 1) until it is done, fails (an `Err` ends the loop at
    /// once), or the attempts or the time run out. `waiting` hears each wait before it happens.
    pub fn run<T, W>(
        &self,
        mut step: impl FnMut(u32) -> Result<Next<T, W>>,
        mut waiting: impl FnMut(&W, Duration, u32),
    ) -> Result<std::result::Result<T, GaveUp<W>>> {
        let start = Instant::now();
        let mut tries = 0u32;
        let mut waits = 0u32;
        loop {
            tries += 1;
            let why = match step(tries)? {
                Next::Done(t) => return Ok(Ok(t)),
                Next::Now => continue,
                Next::Again(w) => w,
            };
            let elapsed = start.elapsed();
            let remaining = self.within.saturating_sub(elapsed);
            let delay = self.backoff.delay(waits);
            let out_of_tries = self.attempts.is_some_and(|a| tries >= a);
            let too_late = remaining.is_zero() || (!self.last_try_at_deadline && delay > remaining);
            if out_of_tries || too_late {
                return Ok(Err(GaveUp {
                    last: why,
                    attempts: tries,
                    elapsed,
                }));
            }
            let wait = delay.min(remaining);
            waiting(&why, wait, tries);
            std::thread::sleep(wait);
            waits += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_jittered_within_bounds() {
        let b = Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(8),
            jitter: true,
        };
        for n in 0..8 {
            let d = b.delay(n);
            let base = Duration::from_millis(500) * 2u32.pow(n.min(4));
            assert!(d >= base && d <= base + base / 2, "{n}: {d:?}");
        }
        let plain = Backoff { jitter: false, ..b };
        assert_eq!(plain.delay(10), Duration::from_secs(8));
    }

    fn quick(attempts: Option<u32>, within: Duration) -> Policy {
        Policy {
            backoff: Backoff {
                first: Duration::from_millis(1),
                max: Duration::from_millis(2),
                jitter: false,
            },
            attempts,
            within,
            last_try_at_deadline: true,
        }
    }

    #[test]
    fn stops_after_the_attempts_with_the_last_reason() {
        let mut heard = 0;
        let r = quick(Some(3), Duration::from_secs(5))
            .run(
                |n| Ok(Next::<(), String>::Again(format!("try {n}"))),
                |_, _, _| heard += 1,
            )
            .unwrap();
        let gave = r.err().unwrap();
        assert_eq!((gave.attempts, gave.last.as_str(), heard), (3, "try 3", 2));
    }

    #[test]
    fn done_and_errors_end_the_loop() {
        let r = quick(None, Duration::from_secs(5))
            .run(
                |n| {
                    Ok(if n < 3 {
                        Next::Again(())
                    } else {
                        Next::Done(n)
                    })
                },
                |_, _, _| {},
            )
            .unwrap();
        assert_eq!(r.ok(), Some(3));
        let e = quick(None, Duration::from_secs(5))
            .run(
                |_| -> Result<Next<(), ()>> { anyhow::bail!("fatal") },
                |_, _, _| {},
            )
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "fatal");
    }

    #[test]
    fn a_zero_deadline_tries_once() {
        let mut tries = 0;
        let r = quick(None, Duration::ZERO)
            .run(
                |_| {
                    tries += 1;
                    Ok(Next::<(), ()>::Again(()))
                },
                |_, _, _| {},
            )
            .unwrap();
        assert!(r.is_err());
        assert_eq!(tries, 1);
    }
}
