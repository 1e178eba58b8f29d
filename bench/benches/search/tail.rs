//! Where a slow run of a cheap query spends its time: the field filter asked many times on the
//! bench's thread, each run with the thread's CPU time, time spent waiting for a CPU and page
//! faults read around it (`/proc/thread-self/schedstat` and `stat`).

use std::time::Duration;

use anyhow::Context;
use palisade_core::auth::Principal;
use palisade_proto::v1::SearchRequest;
use palisade_search::SearchActors;
use tokio::time::Instant;

use crate::percentile;
use crate::procfs::StatFields;

/// The thread's counters at one moment.
#[derive(Clone, Copy)]
struct ThreadCounters {
    cpu: Duration,
    waited: Duration,
    minor_faults: u64,
    major_faults: u64,
    /// The CPU the thread last ran on.
    processor: u64,
}

fn thread_counters() -> anyhow::Result<ThreadCounters> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let mut fields = schedstat.split_whitespace();
    let mut nanos = || -> anyhow::Result<Duration> {
        Ok(Duration::from_nanos(
            fields
                .next()
                .context("/proc/thread-self/schedstat is short")?
                .parse()?,
        ))
    };
    // The first field, CPU time as the scheduler last accounted it, lags a running thread
    // (ticks and switches); the thread's CPU clock below does not.
    nanos()?;
    let waited = nanos()?;
    let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let cpu = Duration::new(cpu.tv_sec as u64, cpu.tv_nsec as u32);
    let stat = StatFields::read("/proc/thread-self/stat")?;
    Ok(ThreadCounters {
        cpu,
        waited,
        minor_faults: stat.number(10)?,
        major_faults: stat.number(12)?,
        processor: stat.number(39)?,
    })
}

/// The machine's stolen time so far (the `steal` column of /proc/stat's cpu line), in ticks.
fn steal_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("/proc/stat is empty")?;
    Ok(line
        .split_whitespace()
        .nth(8)
        .context("/proc/stat's cpu line is short")?
        .parse()?)
}

struct Sample {
    elapsed: Duration,
    cpu: Duration,
    waited: Duration,
    faults: u64,
    /// The CPU the run ended on.
    processor: u64,
}

/// Work of a fixed size that touches memory as a query does: passes over a 128 KiB buffer.
fn control_work(buffer: &[u64], passes: usize) -> u64 {
    let mut sum = 0u64;
    for pass in 0..passes {
        for word in buffer {
            sum = sum.wrapping_mul(31).wrapping_add(word ^ pass as u64);
        }
    }
    std::hint::black_box(sum)
}

fn strided(buffer: &[u64]) -> u64 {
    let mut sum = 0u64;
    for offset in 0..8 {
        for word in buffer.iter().skip(offset).step_by(8) {
            sum = sum.wrapping_add(*word);
        }
    }
    std::hint::black_box(sum)
}

fn describe(name: &str, samples: &[Sample]) {
    let mut elapsed: Vec<Duration> = samples.iter().map(|sample| sample.elapsed).collect();
    elapsed.sort();
    let at = |fraction: f64| percentile(&elapsed, fraction);
    let p50 = at(0.5);
    let slow: Vec<&Sample> = samples
        .iter()
        .filter(|sample| sample.elapsed > p50 * 2)
        .collect();
    let waited = slow.iter().filter(|s| !s.waited.is_zero()).count();
    let faulted = slow.iter().filter(|s| s.faults > 0).count();
    let cpu_bound = slow.iter().filter(|s| s.cpu > p50 * 2).count();
    println!(
        "{name}: p50 {:.3} ms, p99 {:.3} ms ({:.2}x p50), p99.9 {:.3} ms, max {:.3} ms; runs over 2x p50: {} (waited for a CPU {waited}, page-faulted {faulted}, own CPU time over 2x p50 {cpu_bound})",
        p50.as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() / p50.as_secs_f64(),
        at(0.999).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        slow.len()
    );
    // The median per CPU: a virtual CPU whose host core is busier shows here.
    let mut by_processor: std::collections::BTreeMap<u64, Vec<Duration>> = Default::default();
    for sample in samples {
        by_processor
            .entry(sample.processor)
            .or_default()
            .push(sample.elapsed);
    }
    for (processor, mut elapsed) in by_processor {
        elapsed.sort();
        println!(
            "  on CPU {processor}: {} runs, p50 {:.3} ms",
            elapsed.len(),
            percentile(&elapsed, 0.5).as_secs_f64() * 1e3
        );
    }
    let mut slowest: Vec<&Sample> = samples.iter().collect();
    slowest.sort_by_key(|sample| std::cmp::Reverse(sample.elapsed));
    println!("| {name}: slowest runs | thread CPU | waited | faults |");
    for sample in slowest.iter().take(8) {
        println!(
            "| {:.3} ms | {:.3} ms | {:.3} ms | {} |",
            sample.elapsed.as_secs_f64() * 1e3,
            sample.cpu.as_secs_f64() * 1e3,
            sample.waited.as_secs_f64() * 1e3,
            sample.faults
        );
    }
}

fn measure(work: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Sample> {
    let before = thread_counters()?;
    let run = Instant::now();
    work()?;
    let elapsed = run.elapsed();
    let after = thread_counters()?;
    Ok(Sample {
        elapsed,
        cpu: after.cpu - before.cpu,
        waited: after.waited - before.waited,
        processor: after.processor,
        faults: (after.minor_faults - before.minor_faults)
            + (after.major_faults - before.major_faults),
    })
}

pub fn study(
    actors: &SearchActors,
    principal: &Principal,
    request: &SearchRequest,
    runs: usize,
) -> anyhow::Result<()> {
    actors.engine.run(&principal.tenant, request)?;
    let buffer: Vec<u64> = (0..16_384u64).collect();
    // Passes of the control work that take about as long as a query.
    let query_time = measure(|| {
        actors
            .engine
            .run(&principal.tenant, request)
            .map(drop)
            .map_err(Into::into)
    })?
    .elapsed;
    let one_pass = measure(|| {
        control_work(&buffer, 1);
        Ok(())
    })?
    .elapsed;
    let passes = (query_time.as_nanos() / one_pass.as_nanos().max(1)).max(1) as usize;
    let one_hit = SearchRequest {
        page: Some(palisade_proto::v1::PageRequest {
            limit: 1,
            cursor: String::new(),
        }),
        ..request.clone()
    };
    // A 4 MiB buffer read at a stride of a cache line: work that misses the core's caches.
    let large: Vec<u64> = (0..524_288u64).collect();
    let steal_before = steal_ticks()?;
    let started = Instant::now();
    let mut queries = Vec::with_capacity(runs);
    let mut one_hits = Vec::with_capacity(runs);
    let mut controls = Vec::with_capacity(runs);
    let mut large_controls = Vec::with_capacity(runs);
    for _ in 0..runs {
        queries.push(measure(|| {
            actors
                .engine
                .run(&principal.tenant, request)
                .map(drop)
                .map_err(Into::into)
        })?);
        one_hits.push(measure(|| {
            actors
                .engine
                .run(&principal.tenant, &one_hit)
                .map(drop)
                .map_err(Into::into)
        })?);
        if std::env::var_os("PALISADE_BENCH_TAIL_QUERIES_ONLY").is_some() {
            continue;
        }
        controls.push(measure(|| {
            control_work(&buffer, passes);
            Ok(())
        })?);
        large_controls.push(measure(|| {
            strided(&large);
            Ok(())
        })?);
    }
    let wall = started.elapsed();
    let steal = steal_ticks()? - steal_before;
    println!();
    println!(
        "tail study: field filter, the same with one hit, control work ({passes} passes over 128 KiB) and a strided read of 4 MiB, {runs} times each, alternating on one thread, in {wall:.2?}; machine steal {steal} ticks"
    );
    describe("field filter", &queries);
    describe("field filter, 1 hit", &one_hits);
    if !controls.is_empty() {
        describe("control", &controls);
        describe("strided 4 MiB", &large_controls);
    }
    Ok(())
}
