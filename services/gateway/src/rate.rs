//! Per-tenant alert rate limits of the agent stream: one token bucket per tenant, shared by
//! every agent of the tenant, refilled at the configured rate up to the burst.
//!
//! A batch takes as many tokens as it holds new alerts. Over the limit the caller gets the
//! time until the bucket holds enough again, which the agent stream sends as
//! `Throttle.retry_after`; nothing is stored or acknowledged meanwhile, so the agent keeps
//! the batch in its spool.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use palisade_core::ids::TenantId;
use tokio::time::Instant;

/// Shortest wait a throttled agent is told, so a fleet does not spin on a nearly empty bucket.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(100);

/// The rate and depth of every tenant's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Alerts per second.
    pub alerts_per_second: u32,
    /// Alerts that may arrive at once above the rate.
    pub burst: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// May go negative: a batch larger than what is left is admitted when the bucket is full
    /// and leaves a debt, so a batch above the burst is delayed, never refused forever.
    tokens: f64,
    updated: Instant,
}

/// Token buckets by tenant.
#[derive(Debug)]
pub struct TenantRateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

impl TenantRateLimiter {
    /// Buckets that start full.
    pub fn new(limit: RateLimit) -> TenantRateLimiter {
        TenantRateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The configured limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes `alerts` tokens of `tenant`'s bucket, or says how long to wait for them.
    pub fn take(&self, tenant: &TenantId, alerts: u64) -> Result<(), Duration> {
        let rate = f64::from(self.limit.alerts_per_second.max(1));
        let burst = f64::from(self.limit.burst.max(1));
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        let wanted = alerts as f64;
        let needed = wanted.min(burst);
        if bucket.tokens >= needed {
            bucket.tokens -= wanted;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((needed - bucket.tokens) / rate);
        Err(wait.max(MIN_RETRY_AFTER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).expect("tenant")
    }

    #[tokio::test(start_paused = true)]
    async fn a_tenant_over_its_rate_waits_for_the_refill_and_others_are_unaffected() {
        let limiter = TenantRateLimiter::new(RateLimit {
            alerts_per_second: 100,
            burst: 200,
        });
        let acme = tenant("acme");
        assert_eq!(limiter.take(&acme, 150), Ok(()));
        let wait = limiter.take(&acme, 100).expect_err("50 tokens left");
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(
            limiter.take(&tenant("globex"), 200),
            Ok(()),
            "each tenant has its own bucket"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(limiter.take(&acme, 100), Ok(()));
        assert!(limiter.take(&acme, 1).is_err(), "the bucket is empty again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_above_the_burst_passes_once_the_bucket_is_full() {
        let limiter = TenantRateLimiter::new(RateLimit {
            alerts_per_second: 10,
            burst: 20,
        });
        let acme = tenant("acme");
        assert_eq!(limiter.take(&acme, 50), Ok(()), "full bucket admits it");
        let wait = limiter.take(&acme, 50).expect_err("in debt");
        assert_eq!(wait, Duration::from_secs(5), "30 owed plus 20 for the next");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(limiter.take(&acme, 50), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_never_shorter_than_the_minimum() {
        let limiter = TenantRateLimiter::new(RateLimit {
            alerts_per_second: 1_000_000,
            burst: 1_000_000,
        });
        let acme = tenant("acme");
        assert_eq!(limiter.take(&acme, 1_000_000), Ok(()));
        assert_eq!(limiter.take(&acme, 1), Err(MIN_RETRY_AFTER));
    }
}
