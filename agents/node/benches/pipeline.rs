//! Rule evaluation throughput: a stream recorded from this machine's kernel by the eBPF
//! sensor is replayed through decode alone, and through decode + attribution (process table,
//! cgroup -> container) + every rule of Falco's stable set and Palisade's pack, on two
//! threads of rule workers fed by one decode/state thread. Prints events/s for each and the
//! ratio. Needs root (to record) and the corpora (Falco's rules).
//!
//! `cargo bench -p palisade-agent --bench pipeline`

// A synchronous benchmark: wall-clock timing with std's clock.
#![allow(clippy::disallowed_types)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_agent::batches::batch_channel;
use palisade_agent::cgroup::{CgroupConfig, CgroupResolver};
use palisade_agent::container::ContainerRegistry;
use palisade_agent::engine::{BUILTIN_PACK, BUILTIN_PACK_NAME, Evaluator};
use palisade_agent::record::Record;
use palisade_agent::sensor::RecordSource;
use palisade_agent::sensor::ebpf::{EbpfOptions, EbpfSensor};
use palisade_agent::sensor::replay::{Recorder, split_recording};
use palisade_agent::state::{BootClock, State};
use palisade_rules::{EvalScratch, RulesLoader};

const TARGET_RECORDS: usize = 200_000;
/// Passes over the attributed events for the rules-alone figure.
const RULES_ALONE_ROUNDS: usize = 5;

fn record_stream(path: &PathBuf) -> anyhow::Result<()> {
    let cgroup = CgroupConfig::detect()?;
    let mut sensor = EbpfSensor::load(&EbpfOptions {
        ringbuf_bytes: 64 << 20,
        skip_tgid: std::process::id(),
        cgroup,
        syscalls: Vec::new(),
    })?;
    // a mixed workload: a build-like shell loop (exec, open, stat), plus network connects
    let mut workload = std::process::Command::new("sh")
        .arg("-c")
        .arg("for i in $(seq 1 4000); do cat /etc/hostname /etc/passwd > /dev/null; ls /usr/bin > /dev/null; grep -q root /etc/group; done")
        .spawn()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let connector = std::thread::spawn(move || {
        for _ in 0..3000 {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "exec 3<>/dev/tcp/{}/{} 2>/dev/null || true",
                    address.ip(),
                    address.port()
                ))
                .status();
            if listener.set_nonblocking(true).is_ok() {
                while listener.accept().is_ok() {}
            }
        }
    });
    let mut recorder = Recorder::new(std::io::BufWriter::new(std::fs::File::create(path)?));
    let start = Instant::now();
    while recorder.written < TARGET_RECORDS as u64 && start.elapsed() < Duration::from_secs(120) {
        sensor.next_batch(Duration::from_millis(100), &mut |bytes| {
            let _ = recorder.write(bytes);
        })?;
        if workload.try_wait()?.is_some() && recorder.written < TARGET_RECORDS as u64 {
            workload = std::process::Command::new("sh")
                .arg("-c")
                .arg("for i in $(seq 1 2000); do cat /etc/hostname > /dev/null; ls /tmp > /dev/null; done")
                .spawn()?;
        }
    }
    let _ = workload.kill();
    let _ = connector.join();
    eprintln!(
        "recorded {} records, drops {:?}",
        recorder.written,
        sensor.stats()
    );
    recorder.finish()?;
    Ok(())
}

fn evaluator() -> anyhow::Result<Evaluator> {
    let mut loader = RulesLoader::new();
    loader.add_file(&palisade_testkit::corpus_path(
        "runtime/falco-rules/falco_rules.yaml",
    ))?;
    loader.add_text(BUILTIN_PACK_NAME, BUILTIN_PACK);
    Ok(Evaluator::from_loader(loader, "bench-node"))
}

/// Mean number of rules left to evaluate per event after the event-type index, and the most
/// frequent event types with their candidate counts: where rule evaluation spends its time.
fn candidate_profile(
    evaluator: &Evaluator,
    records: &[&[u8]],
    config: &CgroupConfig,
) -> (f64, Vec<(String, usize, usize)>) {
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(
        CgroupResolver::new(config.clone()),
        Arc::clone(&registry),
        BootClock::now(),
    );
    state.seed();
    let mut by_type: std::collections::HashMap<String, (usize, usize)> =
        std::collections::HashMap::new();
    let (mut events, mut candidates) = (0usize, 0usize);
    let mut kept = Vec::new();
    for bytes in records {
        if let Ok(record) = Record::decode(bytes)
            && let Some(enriched) = state.apply(&record)
        {
            let count = evaluator.engine().candidate_rules(&enriched.event).len();
            kept.push(enriched.event.clone());
            let entry = by_type
                .entry(enriched.event.evt_type.to_string())
                .or_insert((0, count));
            entry.0 += 1;
            events += 1;
            candidates += count;
        }
    }
    let mut types: Vec<(String, usize, usize)> = by_type
        .into_iter()
        .map(|(name, (count, rules))| (name, count, rules))
        .collect();
    types.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    types.truncate(12);
    // rules alone on one thread, over events already attributed (kept alive: no drop cost),
    // as many rounds as the other stages so the figure is not a fraction of a second's
    let start = Instant::now();
    let mut detections = Vec::new();
    let mut scratch = EvalScratch::new();
    for _ in 0..RULES_ALONE_ROUNDS {
        for batch in kept.chunks(512) {
            evaluator.evaluate_batch(batch, &mut scratch, &mut detections);
        }
    }
    eprintln!(
        "rules alone, 1 thread: {:.0} events/s ({} detections)",
        (kept.len() * RULES_ALONE_ROUNDS) as f64 / start.elapsed().as_secs_f64(),
        detections.len()
    );
    (candidates as f64 / events.max(1) as f64, types)
}

fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pipeline-recording.bin");
    if !path.exists() {
        record_stream(&path)?;
    }
    let data = std::fs::read(&path)?;
    let records = split_recording(&data)?;
    let rounds = 10usize;
    let total = records.len() * rounds;
    eprintln!(
        "{} records in the recording, {rounds} rounds",
        records.len()
    );

    // decode alone, one thread, then two
    let start = Instant::now();
    let mut decoded = 0usize;
    for _ in 0..rounds {
        for bytes in &records {
            if Record::decode(bytes).is_ok() {
                decoded += 1;
            }
        }
    }
    let decode_one = decoded as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let halves: Vec<&[&[u8]]> = records.chunks(records.len().div_ceil(2)).collect();
    std::thread::scope(|scope| {
        for half in &halves {
            scope.spawn(move || {
                let mut count = 0usize;
                for _ in 0..rounds {
                    for bytes in half.iter() {
                        if Record::decode(bytes).is_ok() {
                            count += 1;
                        }
                    }
                }
                count
            });
        }
    });
    let decode_two = total as f64 / start.elapsed().as_secs_f64();

    // decode + attribution (state) alone, one thread
    let config = CgroupConfig::detect()?;
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(
        CgroupResolver::new(config.clone()),
        Arc::clone(&registry),
        BootClock::now(),
    );
    state.seed();
    let start = Instant::now();
    let mut events = 0usize;
    for _ in 0..rounds {
        for bytes in &records {
            if let Ok(record) = Record::decode(bytes)
                && state.apply(&record).is_some()
            {
                events += 1;
            }
        }
    }
    let state_rate = events as f64 / start.elapsed().as_secs_f64();

    // decode + attribution + all rules: one state thread feeding two rule workers
    let evaluator = Arc::new(evaluator()?);
    let (candidate_mean, event_types) = candidate_profile(&evaluator, &records, &config);
    eprintln!("candidate rules per event after indexing: {candidate_mean:.2}");
    eprintln!("most frequent event types (type, events, candidate rules): {event_types:?}");
    let rule_count = evaluator.summary().loaded;
    let (registry, _requests) = ContainerRegistry::new(false);
    let mut state = State::new(
        CgroupResolver::new(config),
        Arc::clone(&registry),
        BootClock::now(),
    );
    state.seed();
    // the agent's channel: evaluated batches go back to the state thread, which drops their
    // events; PALISADE_BENCH_DROP_IN_WORKER=1 drops them in the workers instead, for comparison
    let drop_in_worker = std::env::var_os("PALISADE_BENCH_DROP_IN_WORKER").is_some();
    let (sender, receiver) = batch_channel(64);
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let receiver = receiver.clone();
            let evaluator = Arc::clone(&evaluator);
            std::thread::spawn(move || {
                let mut detections = Vec::new();
                let mut scratch = EvalScratch::new();
                let mut evaluated = 0usize;
                let mut fired = 0usize;
                while let Some(batch) = receiver.recv() {
                    evaluator.evaluate_batch(&batch, &mut scratch, &mut detections);
                    evaluated += batch.len();
                    fired += detections.len();
                    detections.clear();
                    if !drop_in_worker {
                        receiver.give_back(batch);
                    }
                }
                (evaluated, fired)
            })
        })
        .collect();
    drop(receiver);
    let start = Instant::now();
    let mut batch = sender.empty_batch(512);
    for _ in 0..rounds {
        for bytes in &records {
            if let Ok(record) = Record::decode(bytes)
                && let Some(enriched) = state.apply(&record)
            {
                batch.push(enriched.event);
                if batch.len() == 512 {
                    sender.send(std::mem::replace(&mut batch, sender.empty_batch(512)))?;
                }
            }
        }
    }
    sender.send(batch)?;
    drop(sender);
    let (mut evaluated, mut fired) = (0usize, 0usize);
    for worker in workers {
        let (count, hits) = worker
            .join()
            .map_err(|_| anyhow::anyhow!("worker panicked"))?;
        evaluated += count;
        fired += hits;
    }
    let full_rate = evaluated as f64 / start.elapsed().as_secs_f64();

    println!(
        "pipeline benchmark ({} records x {rounds} rounds, {rule_count} rules: Falco stable + Palisade pack)",
        records.len()
    );
    println!("  decode alone, 1 thread:                      {decode_one:>12.0} records/s");
    println!("  decode alone, 2 threads:                     {decode_two:>12.0} records/s");
    println!("  decode + attribution, 1 thread:              {state_rate:>12.0} events/s");
    println!(
        "  decode + attribution + rules, 1+2 threads:   {full_rate:>12.0} events/s ({fired} detections{})",
        if drop_in_worker {
            ", events dropped in the workers"
        } else {
            ""
        }
    );
    println!(
        "  full pipeline / decode alone (2 threads):    {:>12.3}",
        full_rate / decode_two
    );
    println!(
        "  target 1,000,000 events/s on 2 cores:        {}",
        if full_rate >= 1_000_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
