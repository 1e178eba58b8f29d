//! The workloads timed with and without the agent: unpaced storms (the cost per traced
//! syscall at full speed), opens paced at a fixed rate (CPU and latency per open), and a
//! mixed workload, a fixed amount of CPU work interleaved with file reads, connects and
//! execs, sized to issue about 10,000 traced events per second when run without the agent:
//! "slowdown at 10,000 events/s" as a user of the node sees it.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::measure;

pub fn open_storm(count: usize, file: &Path) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        let _ = std::fs::File::open(file);
    }
    start.elapsed()
}

/// Accepts `count` connections on `listener` on another thread.
fn spawn_acceptor(listener: TcpListener, count: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..count {
            if listener.accept().is_err() {
                break;
            }
        }
    })
}

fn loopback_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("loopback listener");
    let address = listener.local_addr().expect("listener address");
    (listener, address)
}

pub fn connect_storm(count: usize) -> Duration {
    let (listener, address) = loopback_listener();
    let acceptor = spawn_acceptor(listener, count);
    let start = Instant::now();
    for _ in 0..count {
        let _ = TcpStream::connect(address);
    }
    let elapsed = start.elapsed();
    acceptor.join().expect("acceptor thread");
    elapsed
}

fn exec_true() {
    // `cargo bench` puts five directories on LD_LIBRARY_PATH; with them the dynamic loader
    // of /bin/true tries 95 paths that do not exist before it finds libc, each a failed
    // openat that the sensor records, so an exec would issue 100 traced events instead of
    // the 5 a node's exec of it issues.
    let status = Command::new("/bin/true")
        .env_remove("LD_LIBRARY_PATH")
        .status()
        .expect("/bin/true runs");
    assert!(status.success(), "/bin/true failed: {status}");
}

pub fn exec_storm(count: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        exec_true();
    }
    start.elapsed()
}

/// Opens paced at a fixed rate.
pub struct Paced {
    /// CPU time of this process over the window (the pacing sleeps and wake-ups included).
    pub cpu: Duration,
    /// Time of each open, sorted.
    pub open_latencies: Vec<Duration>,
}

/// Opens `file` `rate` times a second for `window`. Each open is timed alone; the close
/// that follows is not.
pub fn paced_opens(rate: u32, window: Duration, file: &Path) -> Paced {
    let interval = Duration::from_secs(1) / rate;
    let total = (window.as_secs_f64() * f64::from(rate)) as u32;
    let mut open_latencies = Vec::with_capacity(total as usize);
    let cpu_before = measure::own_cpu();
    let start = Instant::now();
    for index in 0..total {
        let due = start + interval * index;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let before_open = Instant::now();
        let opened = std::fs::File::open(file);
        open_latencies.push(before_open.elapsed());
        drop(opened);
    }
    let cpu = measure::own_cpu() - cpu_before;
    open_latencies.sort_unstable();
    Paced {
        cpu,
        open_latencies,
    }
}

/// Units of work in one block of the mixed workload; each unit does CPU work over a file it
/// opens and reads.
pub const UNITS_PER_BLOCK: u32 = 200;
/// Every this many units, one loopback TCP connect.
const CONNECT_EVERY: u32 = 10;
const CONNECTS_PER_BLOCK: u32 = UNITS_PER_BLOCK / CONNECT_EVERY;
/// Traced events a block issues whatever happens to the exec: an open per unit, and socket,
/// connect and the listener's accept4 per connect.
pub const CERTAIN_EVENTS_PER_BLOCK: u32 = UNITS_PER_BLOCK + CONNECTS_PER_BLOCK * 3;
/// Traced events a block issues: the certain ones and one exec of /bin/true (clone, exec,
/// the dynamic loader's two opens of /etc/ld.so.cache and libc, exit). A recording of the
/// sensor over 227 blocks counted exactly these 265 records a block from the workload.
pub const EVENTS_PER_BLOCK: u32 = CERTAIN_EVENTS_PER_BLOCK + 5;
const FILES: usize = 16;
const FILE_BYTES: usize = 1024;

/// The mixed workload's inputs: the amount of work is fixed by `blocks` and `work_rounds`.
#[derive(Debug, Clone, Copy)]
pub struct MixPlan {
    /// Passes of the hash over each file read (the CPU work per unit).
    pub work_rounds: u32,
    /// Blocks to run.
    pub blocks: u32,
}

/// What one run of the mixed workload cost.
pub struct Mix {
    pub wall: Duration,
    /// This process (both threads) and the reaped /bin/true children.
    pub cpu: Duration,
}

/// Creates the files the mixed workload reads.
pub fn mix_files(directory: &Path) -> Vec<PathBuf> {
    (0..FILES)
        .map(|index| {
            let path = directory.join(format!("input-{index}.bin"));
            let bytes: Vec<u8> = (0..FILE_BYTES)
                .map(|offset| (offset * 31 + index * 7) as u8)
                .collect();
            std::fs::write(&path, bytes).expect("mixed workload input");
            path
        })
        .collect()
}

/// FNV-1a over `data`, `rounds` times: the workload's own CPU work.
fn work(rounds: u32, data: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..rounds {
        for &byte in data {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

pub fn mix(plan: MixPlan, files: &[PathBuf]) -> Mix {
    let (listener, address) = loopback_listener();
    let acceptor = spawn_acceptor(listener, (plan.blocks * CONNECTS_PER_BLOCK) as usize);
    let mut buffer = [0u8; FILE_BYTES];
    let mut checksum = 0u64;
    let cpu_before = measure::workload_cpu();
    let start = Instant::now();
    for _ in 0..plan.blocks {
        for unit in 0..UNITS_PER_BLOCK {
            let path = &files[unit as usize % files.len()];
            let mut file = std::fs::File::open(path).expect("mixed workload input opens");
            let read = file.read(&mut buffer).expect("mixed workload input reads");
            drop(file);
            checksum ^= work(plan.work_rounds, &buffer[..read]);
            if unit % CONNECT_EVERY == 0 {
                drop(TcpStream::connect(address).expect("loopback connect"));
            }
        }
        exec_true();
    }
    acceptor.join().expect("acceptor thread");
    let wall = start.elapsed();
    let cpu = measure::workload_cpu() - cpu_before;
    std::hint::black_box(checksum);
    Mix { wall, cpu }
}

/// Chooses the hash rounds per unit so that, without the agent, the mixed workload issues
/// `events_per_second` traced events, and the number of blocks so that it runs for about
/// `window`. Times blocks without work and with a known amount of work (the median of three
/// tries of each), then corrects the estimate once against a run of about a second.
pub fn plan_mix(events_per_second: u32, window: Duration, files: &[PathBuf]) -> MixPlan {
    const PROBE_ROUNDS: u32 = 100;
    let target_block = f64::from(EVENTS_PER_BLOCK) / f64::from(events_per_second);
    let block_seconds = |work_rounds: u32, blocks: u32| {
        let mut tries: Vec<f64> = (0..3)
            .map(|_| {
                mix(
                    MixPlan {
                        work_rounds,
                        blocks,
                    },
                    files,
                )
                .wall
                .as_secs_f64()
                    / f64::from(blocks)
            })
            .collect();
        tries.sort_by(f64::total_cmp);
        tries[1]
    };
    let without_work = block_seconds(0, 8);
    let per_unit_round =
        (block_seconds(PROBE_ROUNDS, 8) - without_work) / f64::from(UNITS_PER_BLOCK * PROBE_ROUNDS);
    assert!(
        target_block > without_work && per_unit_round > 0.0,
        "a block without work takes {without_work} s, more than the {target_block} s that \
         {events_per_second} events/s allows: this machine cannot run the mixed workload at that rate"
    );
    let estimate = (target_block - without_work) / (f64::from(UNITS_PER_BLOCK) * per_unit_round);
    let second_of_blocks = (1.0 / target_block).ceil() as u32;
    let measured = block_seconds(estimate.round().max(1.0) as u32, second_of_blocks);
    let corrected = estimate * (target_block - without_work) / (measured - without_work);
    MixPlan {
        work_rounds: corrected.round().max(1.0) as u32,
        blocks: (window.as_secs_f64() / target_block).ceil() as u32,
    }
}
