//! Behaviour of `ThreadPool::run`: exactly-once execution, coverage,
//! panics, nesting, concurrent callers and many tiny jobs.

use ryot_pool::{ThreadPool, split_range};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

/// Pools with and without spinning, and more workers than cores.
fn pools() -> Vec<ThreadPool> {
    vec![
        ThreadPool::new(1),
        ThreadPool::new(2),
        ThreadPool::new(3),
        ThreadPool::with_spin(4, Duration::ZERO),
    ]
}

/// Runs `n` requested workers and returns how often each index ran.
fn counts(pool: &ThreadPool, n: usize) -> Vec<usize> {
    let hits: Vec<AtomicUsize> =
        (0..pool.threads()).map(|_| AtomicUsize::new(0)).collect();
    let seen_n = AtomicUsize::new(usize::MAX);
    pool.run(n, |i, m| {
        hits[i].fetch_add(1, Ordering::Relaxed);
        seen_n.store(m, Ordering::Relaxed);
    });
    let active = n.min(pool.threads());
    if active > 0 {
        assert_eq!(seen_n.into_inner(), active);
    }
    hits.into_iter().map(AtomicUsize::into_inner).collect()
}

#[test]
fn zero_threads_is_one() {
    assert_eq!(ThreadPool::new(0).threads(), 1);
}

#[test]
fn every_index_runs_exactly_once() {
    for pool in pools() {
        for n in 0..=pool.threads() + 2 {
            let active = n.min(pool.threads());
            let got = counts(&pool, n);
            for (i, &c) in got.iter().enumerate() {
                assert_eq!(c, usize::from(i < active), "n={n} i={i}");
            }
        }
    }
}

#[test]
fn caller_is_worker_zero() {
    let pool = ThreadPool::new(3);
    let me = std::thread::current().id();
    let ids = Mutex::new(vec![None; 3]);
    pool.run(3, |i, _| {
        ids.lock().unwrap()[i] = Some(std::thread::current().id());
    });
    let ids = ids.into_inner().unwrap();
    assert_eq!(ids[0], Some(me));
    assert!(ids[1].is_some() && ids[1] != ids[0] && ids[2] != ids[1]);
}

#[test]
fn ranges_cover_exactly() {
    let pool = ThreadPool::new(3);
    for len in [0, 1, 5, 64, 1000, 6912] {
        let marks: Vec<AtomicUsize> =
            (0..len).map(|_| AtomicUsize::new(0)).collect();
        pool.run(pool.threads(), |i, n| {
            for r in split_range(len, n, i, 8) {
                marks[r].fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(marks.iter().all(|m| m.load(Ordering::Relaxed) == 1));
    }
}

#[test]
fn borrows_non_static_data() {
    let pool = ThreadPool::new(2);
    let mut out = vec![0u64; 1000];
    {
        // Each worker writes its own contiguous half through a split borrow.
        let (a, b) = out.split_at_mut(500);
        let halves = [Mutex::new(a), Mutex::new(b)];
        pool.run(2, |i, _| {
            let mut half = halves[i].lock().unwrap();
            for (k, x) in half.iter_mut().enumerate() {
                *x = (i * 500 + k) as u64;
            }
        });
    }
    assert!(out.iter().enumerate().all(|(k, &x)| x == k as u64));
}

#[test]
fn worker_panic_propagates_and_pool_survives() {
    let pool = ThreadPool::new(3);
    for _ in 0..20 {
        let ran = AtomicUsize::new(0);
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.run(3, |i, _| {
                    ran.fetch_add(1, Ordering::Relaxed);
                    if i == 2 {
                        panic!("boom in worker");
                    }
                });
            }))
            .expect_err("panic must propagate");
        assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in worker"));
        // The other workers still ran to completion.
        assert_eq!(ran.into_inner(), 3);
        assert_eq!(counts(&pool, 3), vec![1, 1, 1]);
    }
}

#[test]
fn caller_panic_waits_for_workers_then_propagates() {
    let pool = ThreadPool::new(2);
    let finished = AtomicUsize::new(0);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.run(2, |i, _| {
            if i == 0 {
                panic!("boom in caller");
            }
            std::thread::sleep(Duration::from_millis(20));
            finished.fetch_add(1, Ordering::SeqCst);
        });
    }))
    .expect_err("panic must propagate");
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in caller"));
    // `run` returned only after the worker finished with the borrow.
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    assert_eq!(counts(&pool, 2), vec![1, 1]);
}

#[test]
fn all_panic_then_work() {
    let pool = ThreadPool::new(4);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.run(4, |i, _| panic!("worker {i}"));
    }));
    let err = r.expect_err("panic must propagate");
    // The caller's own panic wins.
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("worker 0")
    );
    assert_eq!(counts(&pool, 4), vec![1, 1, 1, 1]);
}

#[test]
fn nested_run_is_inline_and_does_not_deadlock() {
    let pool = ThreadPool::new(2);
    let other = ThreadPool::new(2);
    let inner = AtomicUsize::new(0);
    pool.run(2, |_, _| {
        let me = std::thread::current().id();
        pool.run(2, |j, m| {
            assert_eq!(m, 2);
            assert!(j < 2);
            // Inline: on the same thread as the outer call.
            assert_eq!(std::thread::current().id(), me);
            inner.fetch_add(1, Ordering::Relaxed);
        });
        other.run(2, |_, _| {
            inner.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert_eq!(inner.into_inner(), 2 * (2 + 2));
}

#[test]
fn concurrent_callers_are_serialised() {
    let pool = Arc::new(ThreadPool::new(3));
    let callers = 4;
    let rounds = 500;
    let barrier = Arc::new(Barrier::new(callers));
    let busy = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let (pool, barrier, busy, total) = (
                Arc::clone(&pool),
                Arc::clone(&barrier),
                Arc::clone(&busy),
                Arc::clone(&total),
            );
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..rounds {
                    let hits = AtomicUsize::new(0);
                    pool.run(3, |_, _| {
                        // At most one job (3 workers) in flight at a time.
                        let b = busy.fetch_add(1, Ordering::SeqCst);
                        assert!(b < 3, "jobs overlapped");
                        hits.fetch_add(1, Ordering::Relaxed);
                        busy.fetch_sub(1, Ordering::SeqCst);
                    });
                    assert_eq!(hits.into_inner(), 3);
                    total.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(total.load(Ordering::Relaxed), callers * rounds);
}

#[test]
fn many_tiny_runs() {
    for pool in [ThreadPool::new(2), ThreadPool::with_spin(3, Duration::ZERO)] {
        let sum = AtomicUsize::new(0);
        let runs = 20_000;
        for k in 0..runs {
            // Vary n so workers sit out some jobs and rejoin later.
            let n = 2 + k % pool.threads().max(2);
            pool.run(n, |i, _| {
                sum.fetch_add(i + 1, Ordering::Relaxed);
            });
        }
        let expected: usize = (0..runs)
            .map(|k| {
                let n = (2 + k % pool.threads().max(2)).min(pool.threads());
                n * (n + 1) / 2
            })
            .sum();
        assert_eq!(sum.into_inner(), expected);
    }
}

#[test]
fn parked_workers_wake_up() {
    let pool = ThreadPool::with_spin(2, Duration::from_micros(10));
    for _ in 0..5 {
        // Long enough for the worker to give up spinning and park.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(counts(&pool, 2), vec![1, 1]);
    }
}

#[test]
fn slow_worker_caller_parks() {
    let pool = ThreadPool::with_spin(2, Duration::from_micros(10));
    let done = AtomicUsize::new(0);
    pool.run(2, |i, _| {
        if i == 1 {
            std::thread::sleep(Duration::from_millis(20));
        }
        done.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(done.into_inner(), 2);
}

#[test]
fn drop_joins_idle_and_parked_pools() {
    for spin in [Duration::ZERO, Duration::from_millis(1)] {
        for threads in 1..5 {
            let pool = ThreadPool::with_spin(threads, spin);
            pool.run(threads, |_, _| {});
            drop(pool);
        }
    }
}

#[test]
fn global_pool_works() {
    let pool = ThreadPool::global();
    assert!(pool.threads() >= 1);
    let n = pool.threads();
    let hits = AtomicUsize::new(0);
    pool.run(n, |_, _| {
        hits.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(hits.into_inner(), n);
    assert!(std::ptr::eq(pool, ThreadPool::global()));
}
