//! CPU-heavy work — argon2 password hashing and checking, rebuilding an uploaded ZIP — runs on
//! Tokio's blocking threads, at most `limit` at once, never on the async workers that answer
//! requests: under a burst of sign-ins or uploads `/healthz` and every other page still answer,
//! and the burst waits its turn instead of taking every core.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::ServiceError;

#[derive(Debug, Clone)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
    limit: usize,
    busy: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicU64>,
}

impl BlockingPool {
    /// A pool running at most `limit` jobs at once (at least one).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        BlockingPool {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            busy: Arc::default(),
            peak: Arc::default(),
            done: Arc::default(),
        }
    }

    /// One job per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map(usize::from).unwrap_or(2))
    }

    /// Runs `job` on a blocking thread once a slot is free. The slot belongs to the job, not to
    /// the caller: a request that goes away (a client hanging up) leaves the job holding it
    /// until the job ends, so cancelled requests cannot start more than `limit` at once.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, ServiceError> {
        let slot =
            self.permits.clone().acquire_owned().await.map_err(|e| ServiceError::internal("the blocking pool", e))?;
        let (busy, peak, done) = (self.busy.clone(), self.peak.clone(), self.done.clone());
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let now_busy = busy.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now_busy, Ordering::SeqCst);
            let result = job();
            busy.fetch_sub(1, Ordering::SeqCst);
            done.fetch_add(1, Ordering::SeqCst);
            result
        })
        .await
        .map_err(|e| ServiceError::internal("a blocking job", e))
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most jobs that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Jobs finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }
}
