//! Overhead of the running agent on the node's workloads. Each round runs every workload
//! once without the agent and once with it (eBPF sensor, Palisade's pack, `--stdout`),
//! alternating which comes first; the summary gives the median and the range over rounds,
//! and the with/without ratio of each round. Needs root: the agent must load its eBPF
//! sensor, and the benchmark fails if it cannot.
//!
//! - paced opens: 10,000 opens/s; the workload's CPU time and each open's latency.
//! - mixed workload: fixed CPU work interleaved with file reads, connects and execs, about
//!   10,000 traced events/s without the agent; its wall and CPU time, and the CPU of
//!   workload and agent together.
//! - storms: opens, connects and execs as fast as they go (the cost per traced syscall).
//!
//! `cargo bench -p palisade-agent --bench overhead`; PALISADE_OVERHEAD_ROUNDS (default 5)
//! and PALISADE_OVERHEAD_SECONDS (the paced and mixed windows, default 10).

// A synchronous benchmark: wall-clock timing with std's clock.
#![allow(clippy::disallowed_types)]

mod agent;
mod measure;
mod report;
mod workloads;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent::Agent;
use report::{Phase, WithAgent};
use workloads::MixPlan;

/// The event rate the target is stated at.
const EVENTS_PER_SECOND: u32 = 10_000;
const STORM_OPENS: usize = 200_000;
const STORM_CONNECTS: usize = 5_000;
const STORM_EXECS: usize = 1_000;

fn setting(name: &str, default: u32) -> u32 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a whole number")),
        Err(_) => default,
    }
}

struct Workloads {
    scratch: PathBuf,
    file: PathBuf,
    mix_files: Vec<PathBuf>,
    mix_plan: MixPlan,
    window: Duration,
}

fn run_phase(workloads: &Workloads, with_agent: bool) -> Phase {
    let mut agent = with_agent.then(|| Agent::start(&workloads.scratch));
    if agent.is_some() {
        // start-up work (seeding state from /proc, loading rules) is not the steady cost
        std::thread::sleep(Duration::from_secs(1));
    }
    let agent_cpu = |agent: &Option<Agent>| {
        agent
            .as_ref()
            .map_or(Duration::ZERO, |agent| measure::process_cpu(agent.pid()))
    };
    let start_status = agent.as_mut().map(Agent::fresh_status);

    let paced_agent_before = agent_cpu(&agent);
    let paced_wall = Instant::now();
    let paced = workloads::paced_opens(EVENTS_PER_SECOND, workloads.window, &workloads.file);
    let paced_wall = paced_wall.elapsed();
    let paced_agent_cpu = agent_cpu(&agent) - paced_agent_before;

    let mix_status = agent.as_mut().map(Agent::fresh_status);
    let mix_agent_before = agent_cpu(&agent);
    let machine_before = measure::machine_busy();
    let mix = workloads::mix(workloads.mix_plan, &workloads.mix_files);
    let mix_machine_busy = measure::machine_busy() - machine_before;
    let mix_agent_cpu = agent_cpu(&agent) - mix_agent_before;
    let after_mix_status = agent.as_mut().map(Agent::fresh_status);

    let storms_agent_before = agent_cpu(&agent);
    let storms_wall = Instant::now();
    let open_storm = workloads::open_storm(STORM_OPENS, &workloads.file);
    let connect_storm = workloads::connect_storm(STORM_CONNECTS);
    let exec_storm = workloads::exec_storm(STORM_EXECS);
    let storms_wall = storms_wall.elapsed();
    let storms_agent_cpu = agent_cpu(&agent) - storms_agent_before;

    let with_agent = agent.as_mut().map(|agent| {
        let end_status = agent.fresh_status();
        let (Some(start_status), Some(mix_status), Some(after_mix_status)) =
            (start_status, mix_status, after_mix_status)
        else {
            unreachable!("statuses are read whenever the agent runs");
        };
        let mix_records = after_mix_status.records - mix_status.records;
        let mix_drops = after_mix_status.kernel_drops - mix_status.kernel_drops;
        let issued =
            u64::from(workloads.mix_plan.blocks) * u64::from(workloads::CERTAIN_EVENTS_PER_BLOCK);
        assert!(
            mix_records + mix_drops >= issued,
            "the agent read {mix_records} records during a workload that issued at least \
             {issued} traced syscalls: its sensor is not seeing them"
        );
        WithAgent {
            paced_cpu: paced_agent_cpu,
            paced_wall,
            mix_cpu: mix_agent_cpu,
            mix_records,
            storms_cpu: storms_agent_cpu,
            storms_wall,
            kernel_drops: end_status.kernel_drops - start_status.kernel_drops,
            rss_mib: measure::rss_mib(agent.pid()),
        }
    });
    Phase {
        paced,
        mix,
        mix_machine_busy,
        open_storm,
        connect_storm,
        exec_storm,
        with_agent,
    }
}

fn main() {
    let rounds = setting("PALISADE_OVERHEAD_ROUNDS", 5).max(1);
    let window = Duration::from_secs(u64::from(setting("PALISADE_OVERHEAD_SECONDS", 10).max(1)));
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("target.txt");
    std::fs::write(&file, "x").expect("file");
    let mix_files = workloads::mix_files(scratch.path());

    // warm the caches, then size the mixed workload without the agent
    let _ = workloads::open_storm(STORM_OPENS / 10, &file);
    let mix_plan = workloads::plan_mix(EVENTS_PER_SECOND, window, &mix_files);
    println!(
        "overhead benchmark: {rounds} rounds; paced opens at {EVENTS_PER_SECOND}/s for {}s; \
         mixed workload {} blocks of {} units, {} hash rounds per unit, {} traced events per \
         block",
        window.as_secs(),
        mix_plan.blocks,
        workloads::UNITS_PER_BLOCK,
        mix_plan.work_rounds,
        workloads::EVENTS_PER_BLOCK
    );
    let workloads = Workloads {
        scratch: scratch.path().to_path_buf(),
        file,
        mix_files,
        mix_plan,
        window,
    };
    let mut without = Vec::new();
    let mut with = Vec::new();
    for round in 0..rounds {
        // alternate the order so that drift over the run falls on both sides; the agent
        // goes first in round 0 so that a sensor that cannot load fails the run at once
        let agent_first = round % 2 == 0;
        for with_agent in [agent_first, !agent_first] {
            let phase = run_phase(&workloads, with_agent);
            report::print_phase(round, &phase, &workloads.mix_plan);
            if with_agent {
                with.push(phase);
            } else {
                without.push(phase);
            }
        }
    }
    report::print_summary(&without, &with, &workloads.mix_plan, EVENTS_PER_SECOND);
}
