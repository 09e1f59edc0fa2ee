//! A persistent thread pool that hands each worker one contiguous range.
//!
//! Ryot's GEMV and GEMM kernels are DRAM-bound: each call splits the output
//! rows into one contiguous range per worker, because interleaving small
//! chunks between threads halves the DRAM throughput on the machines we
//! target (see `/work/shared/anchors/kernels.md`). Calls are small and
//! frequent (a GEMV can take 5 µs), so what matters here is dispatch
//! latency, not load balancing:
//!
//! - the caller thread is worker 0, so a 2-thread job wakes one thread;
//! - workers spin on a generation counter for a short, bounded time
//!   ([`DEFAULT_SPIN`]) before parking on a condition variable, and the
//!   caller spins the same way while it waits for them; a spinner yields
//!   its core every 5 µs, so an oversubscribed machine (the caller and a
//!   worker sharing one core) costs microseconds, not whole spin budgets;
//! - `run(1, f)` calls `f(0, 1)` inline with no synchronisation at all.
//!
//! ```
//! use ryot_pool::{split_range, ThreadPool};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! let pool = ThreadPool::new(2);
//! let rows = 1000;
//! let sum = AtomicUsize::new(0);
//! pool.run(pool.threads(), |i, n| {
//!     let part: usize = split_range(rows, n, i, 16).sum();
//!     sum.fetch_add(part, Ordering::Relaxed);
//! });
//! assert_eq!(sum.into_inner(), rows * (rows - 1) / 2);
//! ```
#![deny(missing_docs)]

mod split;

pub use split::split_range;

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker (or a caller waiting for its workers) spins
/// before it parks.
///
/// Long enough to cover the gap between two kernel calls of one decode step,
/// short enough that an idle pool costs nothing measurable.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(100);

/// While spinning, yield the CPU once per this much time; see
/// [`spin_until`].
const YIELD_EVERY: Duration = Duration::from_micros(5);

/// Environment variable read by [`ThreadPool::global`]: the total number of
/// workers, the caller included.
pub const THREADS_ENV: &str = "RYOT_THREADS";

/// A job as the workers see it: the closure with its lifetime erased.
type JobFn = &'static (dyn Fn(usize, usize) + Sync);

/// The job currently published to the workers.
#[derive(Clone, Copy)]
struct Job {
    /// The generation this job was published under.
    generation: u64,
    /// Number of workers taking part, the caller (index 0) included.
    n: usize,
    /// The closure; valid only until `remaining` drops to zero.
    f: JobFn,
}

/// Panic payload carried from a worker back to the caller.
type Payload = Box<dyn Any + Send + 'static>;

/// State shared by the caller and the worker threads.
struct Shared {
    /// Bumped once per job (and once at shutdown); workers spin on it.
    generation: AtomicU64,
    /// Workers (not counting the caller) that have not finished the job.
    remaining: AtomicUsize,
    /// The current job; `None` between jobs.
    job: Mutex<Option<Job>>,
    /// First panic payload of a worker during the current job.
    panic: Mutex<Option<Payload>>,
    /// Set once, by `Drop`.
    shutdown: AtomicBool,
    /// Protects the two condition variables below.
    lock: Mutex<()>,
    /// Parked workers wait here for a new generation.
    wake: Condvar,
    /// Number of workers parked (or about to park) on `wake`.
    sleepers: AtomicUsize,
    /// The caller waits here once it has spun long enough.
    done: Condvar,
    /// Whether the caller is parked (or about to park) on `done`.
    caller_waiting: AtomicBool,
    /// Spin budget before parking.
    spin: Duration,
}

thread_local! {
    /// True on pool worker threads, and on a caller thread while it runs
    /// its own share of a job: a `run` made there executes inline.
    static IN_POOL: Cell<bool> = const { Cell::new(false) };
}

/// A fixed set of worker threads that run one closure at a time, each worker
/// with its own index.
///
/// See the [crate documentation](crate) for the design. Dropping the pool
/// stops and joins its threads.
pub struct ThreadPool {
    /// Total workers, the caller included.
    threads: usize,
    /// State shared with the workers.
    shared: Arc<Shared>,
    /// Serialises concurrent `run` calls from different threads.
    run_lock: Mutex<()>,
    /// Worker threads 1..threads.
    handles: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// Creates a pool of `threads` workers in total, the calling thread of
    /// [`run`](Self::run) included, so `threads - 1` threads are spawned.
    /// `0` is treated as `1`. Idle workers spin for [`DEFAULT_SPIN`] before
    /// parking.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to spawn a thread.
    pub fn new(threads: usize) -> Self {
        Self::with_spin(threads, DEFAULT_SPIN)
    }

    /// Like [`new`](Self::new) with an explicit spin budget: how long idle
    /// workers, and a caller waiting for them, busy-wait before parking.
    /// `Duration::ZERO` parks at once (lowest CPU use, highest latency).
    ///
    /// # Panics
    ///
    /// If the operating system refuses to spawn a thread.
    pub fn with_spin(threads: usize, spin: Duration) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            job: Mutex::new(None),
            panic: Mutex::new(None),
            shutdown: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            done: Condvar::new(),
            caller_waiting: AtomicBool::new(false),
            spin,
        });
        let handles = (1..threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("ryot-pool-{index}"))
                    .spawn(move || worker_main(&shared, index))
                    .expect("ryot-pool: failed to spawn a worker thread")
            })
            .collect();
        ThreadPool { threads, shared, run_lock: Mutex::new(()), handles }
    }

    /// The process-wide pool, created on first use.
    ///
    /// Its size is [`THREADS_ENV`] (`RYOT_THREADS`) if that is set to a
    /// positive integer, else [`std::thread::available_parallelism`] (1 if
    /// unknown).
    pub fn global() -> &'static ThreadPool {
        static GLOBAL: OnceLock<ThreadPool> = OnceLock::new();
        GLOBAL.get_or_init(|| ThreadPool::new(default_threads()))
    }

    /// Total number of workers, the caller included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(index, n)` once for each `index` in `0..n`, where
    /// `n = min(n, self.threads())`, each on its own worker; the calling
    /// thread is index 0. Returns when every call has returned.
    ///
    /// - `n == 0` does nothing; `n == 1` calls `f(0, 1)` inline with no
    ///   synchronisation.
    /// - If any call panics, the others still run to completion, then the
    ///   panic is resumed on the caller (the caller's own panic first). The
    ///   pool stays usable.
    /// - Concurrent `run` calls from different threads are serialised.
    /// - A `run` made from inside a job (on a worker, or on the caller while
    ///   it runs index 0), on this or any other `ThreadPool`, does not
    ///   dispatch: it calls `f(0, n)`, `f(1, n)`, … serially on the current
    ///   thread, so nesting never deadlocks.
    pub fn run<F: Fn(usize, usize) + Sync>(&self, n: usize, f: F) {
        let n = n.min(self.threads);
        match n {
            0 => return,
            1 => return f(0, 1),
            _ => {}
        }
        if IN_POOL.get() {
            (0..n).for_each(|i| f(i, n));
            return;
        }
        let run_guard = lock(&self.run_lock);
        let shared = &*self.shared;
        let f_dyn: &(dyn Fn(usize, usize) + Sync) = &f;
        // SAFETY: only the lifetime is changed. Workers use the reference
        // only between reading the job published below and decrementing
        // `remaining`, and this function does not return (nor unwind: the
        // caller's share runs under `catch_unwind`) before `remaining` is
        // zero and the job slot is cleared. So `f` outlives every use.
        let f_static: JobFn = unsafe {
            std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), JobFn>(f_dyn)
        };
        let generation = shared.generation.load(Ordering::Relaxed) + 1;
        shared.remaining.store(n - 1, Ordering::Relaxed);
        *lock(&shared.job) = Some(Job { generation, n, f: f_static });
        // SeqCst pairs with the SeqCst `sleepers` increment in `park_worker`:
        // either the worker sees the new generation or we see it sleeping.
        shared.generation.store(generation, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = lock(&shared.lock);
            shared.wake.notify_all();
        }

        IN_POOL.set(true);
        let own = catch_unwind(AssertUnwindSafe(|| f(0, n)));
        IN_POOL.set(false);

        wait_for_workers(shared);
        *lock(&shared.job) = None;
        let worker_panic = lock(&shared.panic).take();
        drop(run_guard);
        if let Err(payload) = own {
            resume_unwind(payload);
        }
        if let Some(payload) = worker_panic {
            resume_unwind(payload);
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        let shared = &*self.shared;
        shared.shutdown.store(true, Ordering::SeqCst);
        shared.generation.fetch_add(1, Ordering::SeqCst);
        {
            let _g = lock(&shared.lock);
            shared.wake.notify_all();
        }
        for handle in self.handles.drain(..) {
            // Workers catch every panic of a job; an error here would be a
            // bug in the pool itself, and panicking in drop helps nobody.
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads)
            .field("spin", &self.shared.spin)
            .finish_non_exhaustive()
    }
}

/// Size of the global pool: `RYOT_THREADS` if valid, else the number of
/// logical CPUs available to this process.
fn default_threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&t| t > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        })
}

/// Locks `m`, ignoring poisoning: no lock here guards an invariant that a
/// panic could break (job panics are caught before any lock is taken).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Spins until `done()` holds or `budget` has elapsed; returns `done()`.
///
/// Every [`YIELD_EVERY`] of spinning, the spinner yields the CPU once. When
/// the machine is oversubscribed, the caller and a worker can end up
/// sharing one core, and a pure spinner then keeps the core from the very
/// thread it waits for until its whole budget is spent (an empty 2-way job
/// took two spin budgets). With nothing else runnable, `yield_now` returns
/// at once, and a yield every few microseconds costs the common case
/// almost nothing.
#[inline]
fn spin_until(budget: Duration, mut done: impl FnMut() -> bool) -> bool {
    if done() {
        return true;
    }
    if budget.is_zero() {
        return false;
    }
    let start = Instant::now();
    let mut next_yield = YIELD_EVERY;
    loop {
        // Reading the clock costs about as much as a few pauses: do it
        // every 16 iterations only.
        for _ in 0..16 {
            std::hint::spin_loop();
            if done() {
                return true;
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return done();
        }
        if elapsed >= next_yield {
            std::thread::yield_now();
            next_yield = elapsed + YIELD_EVERY;
        }
    }
}

/// The caller side of completion: spin, then park on `done`.
fn wait_for_workers(shared: &Shared) {
    let finished = || shared.remaining.load(Ordering::Acquire) == 0;
    if spin_until(shared.spin, finished) {
        return;
    }
    let mut g = lock(&shared.lock);
    // SeqCst pairs with the worker's SeqCst decrement then flag load: either
    // we see zero here or the last worker sees the flag and notifies.
    shared.caller_waiting.store(true, Ordering::SeqCst);
    while shared.remaining.load(Ordering::SeqCst) != 0 {
        g = shared.done.wait(g).unwrap_or_else(|e| e.into_inner());
    }
    shared.caller_waiting.store(false, Ordering::Relaxed);
}

/// Blocks a worker until the generation differs from `seen`; returns it.
fn wait_for_generation(shared: &Shared, seen: u64) -> u64 {
    let current = || shared.generation.load(Ordering::Acquire);
    if spin_until(shared.spin, || current() != seen) {
        return current();
    }
    let mut g = lock(&shared.lock);
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    let mut now = shared.generation.load(Ordering::SeqCst);
    while now == seen {
        g = shared.wake.wait(g).unwrap_or_else(|e| e.into_inner());
        now = shared.generation.load(Ordering::SeqCst);
    }
    shared.sleepers.fetch_sub(1, Ordering::SeqCst);
    now
}

/// The loop of worker `index` (1-based; the caller is index 0).
fn worker_main(shared: &Shared, index: usize) {
    IN_POOL.set(true);
    let mut seen = 0;
    loop {
        let observed = wait_for_generation(shared, seen);
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        // The slot, not the counter, says which job is current: a worker
        // that sat out job k (index >= n) may wake only when job k+1 is
        // already published, and must then run k+1 exactly once.
        let job = *lock(&shared.job);
        let Some(job) = job.filter(|j| j.generation != seen) else {
            // Between jobs: the job we saw has already completed.
            seen = observed;
            continue;
        };
        seen = job.generation;
        if index >= job.n {
            continue;
        }
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
            (job.f)(index, job.n);
        })) {
            lock(&shared.panic).get_or_insert(payload);
        }
        // After this decrement `job.f` may dangle: do not touch it again.
        if shared.remaining.fetch_sub(1, Ordering::SeqCst) == 1
            && shared.caller_waiting.load(Ordering::SeqCst)
        {
            let _g = lock(&shared.lock);
            shared.done.notify_one();
        }
    }
}
