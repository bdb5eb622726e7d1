//! The load generator's per-message work, without the system calls: generate
//! a message, verify its echo, record its latency. This is what must stay
//! far cheaper than a server's work per message for the harness never to be
//! the bottleneck.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

#[allow(dead_code, unused_imports)]
#[path = "../src/load/payload.rs"]
mod payload;
#[allow(dead_code, unused_imports)]
#[path = "../src/load/recorder.rs"]
mod recorder;

fn hot_path(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("per_message");
    for size in [64usize, 1024, 16 * 1024] {
        let mut outgoing = vec![0u8; size];
        let mut offset = 0u64;
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("generate", size), &size, |bench, _| {
            bench.iter(|| {
                payload::fill(black_box(7), offset, &mut outgoing);
                offset += size as u64;
            })
        });
        let mut echoed = vec![0u8; size];
        payload::fill(7, 0, &mut echoed);
        group.bench_with_input(BenchmarkId::new("verify", size), &size, |bench, _| {
            bench.iter(|| black_box(payload::matches(black_box(7), 0, black_box(&echoed))))
        });
    }
    let mut latencies = recorder::Recorder::new(60);
    let mut at = 0u64;
    group.throughput(Throughput::Elements(1));
    group.bench_function("record", |bench| {
        bench.iter(|| {
            // A spread of latencies over 50 µs..1 ms, time moving forward.
            at += 1_000;
            latencies.record(black_box(50_000 + (at % 950_000)), at % 59_000_000_000);
        })
    });
    let mut outgoing = vec![0u8; 64];
    let mut offset = 0u64;
    let mut all = recorder::Recorder::new(60);
    group.bench_function("generate+verify+record/64", |bench| {
        bench.iter(|| {
            payload::fill(11, offset, &mut outgoing);
            let good = payload::matches(11, offset, black_box(&outgoing));
            offset += 64;
            all.record(black_box(if good { 42_000 } else { 1 }), offset % 59_000_000_000);
        })
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
