//! What one phase measured, and the summary over rounds: the median and range of each
//! figure without and with the agent, and of the with/without ratio taken within each round
//! (the rounds share the machine's state, so the paired ratio is the comparable figure).

use std::time::Duration;

use crate::measure;
use crate::workloads::{self, MixPlan, Paced};

/// Every workload run once, with or without the agent.
pub struct Phase {
    pub paced: Paced,
    pub mix: workloads::Mix,
    /// Busy time of all CPUs during the mixed workload (other processes included).
    pub mix_machine_busy: Duration,
    pub open_storm: Duration,
    pub connect_storm: Duration,
    pub exec_storm: Duration,
    pub with_agent: Option<WithAgent>,
}

/// What the agent cost during a phase it ran in.
pub struct WithAgent {
    pub paced_cpu: Duration,
    pub paced_wall: Duration,
    pub mix_cpu: Duration,
    /// Records the agent read during the mixed workload (other processes' included).
    pub mix_records: u64,
    pub storms_cpu: Duration,
    pub storms_wall: Duration,
    /// Records the kernel lost while the agent ran.
    pub kernel_drops: u64,
    pub rss_mib: f64,
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn open_p50(phase: &Phase) -> f64 {
    micros(measure::quantile(&phase.paced.open_latencies, 0.50))
}

fn open_p99(phase: &Phase) -> f64 {
    micros(measure::quantile(&phase.paced.open_latencies, 0.99))
}

fn agent_cpu(phase: &Phase, part: impl Fn(&WithAgent) -> Duration) -> Duration {
    phase.with_agent.as_ref().map_or(Duration::ZERO, part)
}

pub fn print_phase(round: u32, phase: &Phase, plan: &MixPlan) {
    let side = if phase.with_agent.is_some() {
        "with agent"
    } else {
        "without   "
    };
    let events_per_second =
        f64::from(plan.blocks * workloads::EVENTS_PER_BLOCK) / phase.mix.wall.as_secs_f64();
    println!(
        "round {round} {side}: paced CPU {:.4}s open p50 {:.2}us p99 {:.2}us | mix wall {:.4}s \
         CPU {:.4}s ({events_per_second:.0} events/s) machine {:.2}s | storms: open {:.3}s \
         connect {:.3}s exec {:.3}s",
        phase.paced.cpu.as_secs_f64(),
        open_p50(phase),
        open_p99(phase),
        phase.mix.wall.as_secs_f64(),
        phase.mix.cpu.as_secs_f64(),
        phase.mix_machine_busy.as_secs_f64(),
        phase.open_storm.as_secs_f64(),
        phase.connect_storm.as_secs_f64(),
        phase.exec_storm.as_secs_f64(),
    );
    if let Some(agent) = &phase.with_agent {
        println!(
            "        agent: paced {:.4}s CPU ({:.1}% of a core), mix {:.4}s CPU ({:.1}%), \
             {} records in the mix, storms {:.1}%, RSS {:.1} MiB, kernel drops {}",
            agent.paced_cpu.as_secs_f64(),
            100.0 * agent.paced_cpu.as_secs_f64() / agent.paced_wall.as_secs_f64(),
            agent.mix_cpu.as_secs_f64(),
            100.0 * agent.mix_cpu.as_secs_f64() / phase.mix.wall.as_secs_f64(),
            agent.mix_records,
            100.0 * agent.storms_cpu.as_secs_f64() / agent.storms_wall.as_secs_f64(),
            agent.rss_mib,
            agent.kernel_drops,
        );
    }
}

/// Median, smallest and largest.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    };
    (median, sorted[0], sorted[sorted.len() - 1])
}

fn format_spread(values: &[f64], decimals: usize) -> String {
    let (median, low, high) = spread(values);
    format!("{median:.decimals$} [{low:.decimals$}-{high:.decimals$}]")
}

/// One row: the figure without and with the agent, and the per-round ratios.
fn row(
    label: &str,
    without: &[Phase],
    with: &[Phase],
    decimals: usize,
    figure: impl Fn(&Phase) -> f64,
) -> f64 {
    let without_values: Vec<f64> = without.iter().map(&figure).collect();
    let with_values: Vec<f64> = with.iter().map(&figure).collect();
    let ratios: Vec<f64> = with_values
        .iter()
        .zip(&without_values)
        .map(|(with_value, without_value)| with_value / without_value)
        .collect();
    println!(
        "  {label:<44} {:>28} {:>28}   x{}",
        format_spread(&without_values, decimals),
        format_spread(&with_values, decimals),
        format_spread(&ratios, 3),
    );
    spread(&ratios).0
}

fn agent_row(label: &str, with: &[Phase], decimals: usize, figure: impl Fn(&Phase) -> f64) {
    let values: Vec<f64> = with.iter().map(figure).collect();
    println!("  {label:<44} {:>28}", format_spread(&values, decimals));
}

pub fn print_summary(without: &[Phase], with: &[Phase], plan: &MixPlan, events_per_second: u32) {
    println!(
        "\nsummary over {} rounds: median [min-max]; ratio = with / without within each round",
        with.len()
    );
    println!(
        "  {:<44} {:>28} {:>28}   ratio",
        "", "without the agent", "with the agent"
    );
    row("paced opens: workload CPU (s)", without, with, 4, |phase| {
        phase.paced.cpu.as_secs_f64()
    });
    row("paced opens: open p50 (us)", without, with, 2, open_p50);
    row("paced opens: open p99 (us)", without, with, 2, open_p99);
    row(
        "paced opens: workload + agent CPU (s)",
        without,
        with,
        4,
        |phase| (phase.paced.cpu + agent_cpu(phase, |agent| agent.paced_cpu)).as_secs_f64(),
    );
    let mix_wall = row("mixed workload: wall (s)", without, with, 4, |phase| {
        phase.mix.wall.as_secs_f64()
    });
    let mix_cpu = row("mixed workload: CPU (s)", without, with, 4, |phase| {
        phase.mix.cpu.as_secs_f64()
    });
    let mix_total = row(
        "mixed workload: workload + agent CPU (s)",
        without,
        with,
        4,
        |phase| (phase.mix.cpu + agent_cpu(phase, |agent| agent.mix_cpu)).as_secs_f64(),
    );
    row(
        "mixed workload: machine busy, all CPUs (s)",
        without,
        with,
        2,
        |phase| phase.mix_machine_busy.as_secs_f64(),
    );
    row("open storm, 200,000 opens (s)", without, with, 3, |phase| {
        phase.open_storm.as_secs_f64()
    });
    row(
        "connect storm, 5,000 connects (s)",
        without,
        with,
        3,
        |phase| phase.connect_storm.as_secs_f64(),
    );
    row(
        "exec storm, 1,000 execs of /bin/true (s)",
        without,
        with,
        3,
        |phase| phase.exec_storm.as_secs_f64(),
    );
    agent_row(
        "mixed workload: traced events/s without agent",
        without,
        0,
        |phase| f64::from(plan.blocks * workloads::EVENTS_PER_BLOCK) / phase.mix.wall.as_secs_f64(),
    );
    agent_row(
        "mixed workload: records the agent read /s",
        with,
        0,
        |phase| {
            let records = phase
                .with_agent
                .as_ref()
                .map_or(0, |agent| agent.mix_records);
            records as f64 / phase.mix.wall.as_secs_f64()
        },
    );
    agent_row("agent CPU, paced opens (% of a core)", with, 1, |phase| {
        phase.with_agent.as_ref().map_or(0.0, |agent| {
            100.0 * agent.paced_cpu.as_secs_f64() / agent.paced_wall.as_secs_f64()
        })
    });
    agent_row(
        "agent CPU, mixed workload (% of a core)",
        with,
        1,
        |phase| {
            phase.with_agent.as_ref().map_or(0.0, |agent| {
                100.0 * agent.mix_cpu.as_secs_f64() / phase.mix.wall.as_secs_f64()
            })
        },
    );
    agent_row("agent CPU, storms (% of a core)", with, 1, |phase| {
        phase.with_agent.as_ref().map_or(0.0, |agent| {
            100.0 * agent.storms_cpu.as_secs_f64() / agent.storms_wall.as_secs_f64()
        })
    });
    agent_row("agent RSS at the end of a phase (MiB)", with, 1, |phase| {
        phase.with_agent.as_ref().map_or(0.0, |agent| agent.rss_mib)
    });
    let drops: u64 = with
        .iter()
        .filter_map(|phase| phase.with_agent.as_ref())
        .map(|agent| agent.kernel_drops)
        .sum();
    println!("  kernel drops, all phases with the agent: {drops}");
    let verdict = |ratio: f64| if ratio < 1.05 { "under" } else { "over" };
    println!(
        "\nslowdown at {events_per_second} events/s (mixed workload, median of rounds): wall \
         x{mix_wall:.3} ({} 5 %), workload CPU x{mix_cpu:.3} ({} 5 %), workload + agent CPU \
         x{mix_total:.3}",
        verdict(mix_wall),
        verdict(mix_cpu),
    );
}
