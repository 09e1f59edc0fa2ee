//! Dispatch latency of an empty job: `ryot_pool::ThreadPool::run` against
//! `rayon::ThreadPool::broadcast`, at 2 threads (the caller included for
//! ryot; rayon's broadcast runs on its 2 pool threads while an outside
//! caller waits, or from inside the pool in the `_from_worker` row).
//!
//! Kernel calls can be as short as 5 µs, so this overhead is paid on every
//! GEMV; it is the figure to keep small.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn dispatch(c: &mut Criterion) {
    let threads = 2;
    let mut group = c.benchmark_group("dispatch_empty");
    group.measurement_time(Duration::from_secs(3));

    let ryot = ryot_pool::ThreadPool::new(threads);
    group.bench_function("ryot_run_2", |b| {
        b.iter(|| ryot.run(threads, |i, n| _ = black_box((i, n))));
    });
    group.bench_function("ryot_run_1_inline", |b| {
        b.iter(|| ryot.run(1, |i, n| _ = black_box((i, n))));
    });
    let parked = ryot_pool::ThreadPool::with_spin(threads, Duration::ZERO);
    group.bench_function("ryot_run_2_no_spin", |b| {
        b.iter(|| parked.run(threads, |i, n| _ = black_box((i, n))));
    });
    drop((ryot, parked));

    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    group.bench_function("rayon_broadcast_2", |b| {
        b.iter(|| rayon.broadcast(|ctx| _ = black_box(ctx.index())));
    });
    // The caller as a rayon worker: its threads stay warm between jobs,
    // the closest rayon gets to `ThreadPool::run`.
    group.bench_function("rayon_broadcast_2_from_worker", |b| {
        rayon.install(|| {
            b.iter(|| rayon::broadcast(|ctx| _ = black_box(ctx.index())));
        });
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
