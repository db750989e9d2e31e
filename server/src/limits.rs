//! Limits: token-bucket rate limits per key (a client address, a serial),
//! and the sizes and times the service enforces.

use core::hash::Hash;
use core::time::Duration;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Largest request body (bytes): a request is ≤ 4 KiB of CBOR, ≤ 6 KiB
/// armored.
pub const MAX_BODY: usize = 8 * 1024;

/// The soonest a refusal of `POST /v1/renew` or `POST /v1/activate` is
/// answered, counted from the moment its request arrived: a refusal ready
/// sooner waits until then, woken at that instant by one timer thread for
/// the whole server (`floor.rs`: the runtime's millisecond timer let the
/// work's time show through), no thread held per refusal.
///
/// The work before a refusal is a few ledger lookups whose time grows a
/// little with what they find (a licensed serial's rows against none),
/// so a prober timing refusals could tell a licensed serial from a
/// registered or an unknown one, and one PBX's state from another's:
/// without the floor, 0.2 to 0.3 ms per refusal in the release build over
/// loopback TLS on SQLite, forged renewals' medians 0.08 ms apart, over
/// the noise of 0.02 ms (`cargo bench -p tessera-server --bench
/// activation_timing`). Answered at this floor, every refusal takes the
/// same time plus the scheduler's noise (the same bench: medians 25.48 to
/// 25.52 ms, 0.014 ms apart, within the noise of 0.04 ms). 25 ms is about twenty times the slowest refusal
/// measured (the test build on PostgreSQL over loopback: 1.3 ms; on
/// SQLite 0.6 ms), leaves room for a ledger a few LAN round trips away,
/// and is nothing to a device that renews daily or every 3 hours. It
/// holds a refused connection that long, which the per-address limit
/// (`--rate-per-address`) and [`Limits::max_connections`] bound.
///
/// Not floored: a license (200), and the 429s: the per-address limit
/// (decided before the ledger is read) and the PBX's spent renewal budget,
/// which only the PBX's own device hears (a request any other key signed
/// gets the rules' refusal, floored, whatever the budget). A refusal whose
/// work takes longer than the floor (a ledger batch commit under load) is
/// answered when it is ready.
pub const REFUSAL_FLOOR: Duration = Duration::from_millis(25);

/// The limits of a server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body.
    pub max_body: usize,
    /// Requests per client address: sustained rate per second (0: no
    /// limit) and burst.
    pub per_address: Rate,
    /// Renewals per serial: sustained rate per second (0: no limit) and
    /// burst.
    pub per_serial: Rate,
    /// Longest time to answer one request (including the ledger commit).
    pub request_timeout: Duration,
    /// Longest TLS handshake and longest wait for a request's header.
    pub handshake_timeout: Duration,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Most requests in one ledger commit.
    pub max_batch: usize,
    /// Most connections at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: MAX_BODY,
            // Many PBXs behind one NAT: generous per address.
            per_address: Rate {
                per_second: 50.0,
                burst: 200,
            },
            // A PBX renews daily or every 3 hours, retrying with backoff:
            // a few a minute is plenty.
            per_serial: Rate {
                per_second: 0.1,
                burst: 5,
            },
            request_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            max_batch: 256,
            max_connections: 4096,
        }
    }
}

/// A sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Tokens added per second; 0 turns the limit off.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Rate {
    /// Parses `N/s`, `N/m` or `N/h`, with an optional `,BURST`; `off`
    /// turns the limit off.
    ///
    /// # Errors
    /// A message saying what is expected.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "off" || s == "0" {
            return Ok(Self {
                per_second: 0.0,
                burst: 0,
            });
        }
        let bad = || {
            format!(
                "rate `{s}`: write N/s, N/m or N/h, optionally with a burst (`6/m,3`), or `off`"
            )
        };
        let (rate, burst) = match s.split_once(',') {
            Some((r, b)) => (r, Some(b.trim().parse::<u32>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let (n, unit) = rate.split_once('/').ok_or_else(bad)?;
        let n: f64 = n.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        if !(n.is_finite() && n > 0.0) {
            return Err(bad());
        }
        let per_second = n / per;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let default_burst = n.ceil().clamp(1.0, 1e6) as u32;
        Ok(Self {
            per_second,
            burst: burst.unwrap_or(default_burst).max(1),
        })
    }
}

/// What [`RateLimiter::with_bucket`] does with a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// Take one if there is one, else refuse.
    Take,
    /// Refuse if there is none; take nothing.
    Look,
    /// Put one back; never refuse.
    GiveBack,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key. Full buckets are forgotten when the table grows,
/// so a flood of addresses or serials cannot grow it without bound.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
    max_keys: usize,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter at `rate`.
    #[must_use]
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::default(),
            max_keys: 100_000,
        }
    }

    /// Takes a token for `key`: `Ok`, or `Err(seconds)` until the next one.
    ///
    /// # Errors
    /// The seconds to wait when the bucket is empty.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), u64> {
        self.with_bucket(key, now, Use::Take)
    }

    /// Whether `key` has a token, without taking it: `Ok`, or
    /// `Err(seconds)` until the next one. A cheap early refusal for a key
    /// whose bucket only answered requests empty (see [`Self::check`]).
    ///
    /// # Errors
    /// The seconds to wait when the bucket is empty.
    pub fn peek(&self, key: &K, now: Instant) -> Result<(), u64> {
        self.with_bucket(key, now, Use::Look)
    }

    /// Puts back a token [`Self::check`] took for a request that in the end
    /// was not answered (its commit failed); a full bucket stays full.
    pub fn give_back(&self, key: &K, now: Instant) {
        let _ = self.with_bucket(key, now, Use::GiveBack);
    }

    fn with_bucket(&self, key: &K, now: Instant, how: Use) -> Result<(), u64> {
        if self.rate.per_second <= 0.0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let burst = f64::from(self.rate.burst);
        if buckets.len() >= self.max_keys {
            let rate = self.rate.per_second;
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
            if buckets.len() >= self.max_keys {
                // Still full of active keys: refuse the new one for a while.
                return Err(1);
            }
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate.per_second).min(burst);
        b.at = now;
        if how == Use::GiveBack {
            b.tokens = (b.tokens + 1.0).min(burst);
            Ok(())
        } else if b.tokens >= 1.0 {
            if how == Use::Take {
                b.tokens -= 1.0;
            }
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / self.rate.per_second;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Err(wait.ceil().clamp(1.0, 86_400.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(
            Rate::parse("6/m,3").unwrap(),
            Rate {
                per_second: 0.1,
                burst: 3
            }
        );
        assert_eq!(Rate::parse("50/s").unwrap().burst, 50);
        assert_eq!(Rate::parse("off").unwrap().per_second, 0.0);
        for bad in ["", "6", "6/d", "-1/s", "x/s", "NaN/s", "1/s,x"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_refills_and_refuses() {
        let l = RateLimiter::new(Rate {
            per_second: 1.0,
            burst: 2,
        });
        let t = Instant::now();
        assert!(l.check(&1, t).is_ok());
        assert!(l.check(&1, t).is_ok());
        assert_eq!(l.check(&1, t), Err(1));
        // Another key has its own bucket.
        assert!(l.check(&2, t).is_ok());
        assert!(l.check(&1, t + Duration::from_millis(1100)).is_ok());
    }

    #[test]
    fn peeking_takes_nothing_and_a_token_given_back_is_taken_again() {
        let l = RateLimiter::new(Rate {
            per_second: 0.001,
            burst: 2,
        });
        let t = Instant::now();
        for _ in 0..10 {
            assert!(l.peek(&1, t).is_ok());
        }
        assert!(l.check(&1, t).is_ok());
        assert!(l.check(&1, t).is_ok());
        assert!(l.peek(&1, t).is_err());
        assert!(l.check(&1, t).is_err());
        l.give_back(&1, t);
        assert!(l.peek(&1, t).is_ok());
        assert!(l.check(&1, t).is_ok());
        assert!(l.check(&1, t).is_err());
        // Given back to a full bucket: it stays at its burst.
        l.give_back(&2, t);
        l.give_back(&2, t);
        assert!(l.check(&2, t).is_ok());
        assert!(l.check(&2, t).is_ok());
        assert!(l.check(&2, t).is_err());
        assert!(l.peek(&1, t + Duration::from_secs(1001)).is_ok());
    }

    #[test]
    fn a_flood_of_keys_stays_bounded() {
        let mut l = RateLimiter::new(Rate {
            per_second: 0.001,
            burst: 1,
        });
        l.max_keys = 100;
        let t = Instant::now();
        for k in 0..1000 {
            let _ = l.check(&k, t);
        }
        assert!(l.buckets.lock().unwrap().len() <= 100);
    }
}
