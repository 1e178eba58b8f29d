//! The entry point: `palisade agent [--stdout] [--server URL --token T] [--containerd SOCKET]
//! [--rules PATH]... [--spool-dir DIR]`. [`AgentArgs`] is the clap argument set the
//! `palisade` binary embeds; [`run`] runs the agent until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use crate::alerts::limiter::{Limiter, LimiterConfig};
use crate::alerts::scope::Scopes;
use crate::cgroup::{CgroupConfig, CgroupResolver};
use crate::container::ContainerRegistry;
use crate::container::containerd::Containerd;
use crate::engine::Evaluator;
use crate::engine::RulesApplier;
use crate::error::AgentError;
use crate::metrics::AgentMetrics;
use crate::pipeline::{self, AlertStage, Outputs, SensorStage};
use crate::sensor::RecordSource;
use crate::sensor::ebpf::{EbpfOptions, EbpfSensor};
use crate::sensor::procfs::ProcfsSensor;
use crate::sensor::replay::{Recorder, ReplaySource};
use crate::spool::Spool;
use crate::state::{BootClock, State};
use crate::stream::{self, Link, StreamConfig, StreamCredential};

/// Which sensor to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SensorChoice {
    /// eBPF, falling back to /proc (loudly) where eBPF cannot load.
    Auto,
    /// eBPF only: fail when it cannot load.
    Ebpf,
    /// The /proc polling sensor (process starts and exits only).
    Procfs,
}

/// Arguments of `palisade agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Print alerts on stdout in Falco's JSON format.
    #[arg(long)]
    pub stdout: bool,
    /// Gateway URL to stream alerts to with an API key (http:// or https://); enrolled
    /// agents use --credentials instead.
    #[arg(long, requires = "token", conflicts_with = "credentials")]
    pub server: Option<String>,
    /// API key for --server.
    #[arg(long, env = "PALISADE_AGENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) that verifies an https:// --server [default: the system's roots].
    #[arg(long, env = "PALISADE_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The cluster's credential directory from `palisade enroll` (a mounted secret): the
    /// agent streams to the agent listener it names over mutual TLS, with a certificate of its
    /// own that it obtains with this one and keeps under --spool-dir.
    #[arg(long, env = "PALISADE_AGENT_CREDENTIALS", value_name = "DIR")]
    pub credentials: Option<PathBuf>,
    /// containerd API socket for container and pod metadata (default: /run/containerd/containerd.sock when present).
    #[arg(long, value_name = "SOCKET")]
    pub containerd: Option<PathBuf>,
    /// Rules files, loaded in order (default: Palisade's runtime pack).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Spool directory holding alerts until the server acknowledges them.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/palisade/agent-spool"
    )]
    pub spool_dir: PathBuf,
    /// Spool bound in bytes; past it the oldest alerts are evicted (counted and alerted).
    #[arg(long, default_value_t = 256 << 20)]
    pub spool_max_bytes: usize,
    /// Rule scopes (TOML, see alerts::scope).
    #[arg(long, value_name = "FILE")]
    pub scopes: Option<PathBuf>,
    /// Node name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Sensor to use.
    #[arg(long, value_enum, default_value_t = SensorChoice::Auto)]
    pub sensor: SensorChoice,
    /// Kernel ring buffer size in bytes (power of two).
    #[arg(long, default_value_t = 16 << 20)]
    pub ringbuf_bytes: u32,
    /// How long an event waits for its container's metadata, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub attribution_wait_ms: u64,
    /// Aggregation and rate-limit window, in seconds.
    #[arg(long, default_value_t = 60)]
    pub window_seconds: u64,
    /// Alerts per rule and workload per window before the rest are summarised.
    #[arg(long, default_value_t = 20)]
    pub max_alerts_per_window: u32,
    /// Rule worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Record every kernel record to this file (for replay in benchmarks).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Replay a recording instead of reading the kernel (rounds = 1).
    #[arg(long, value_name = "FILE", conflicts_with = "record")]
    pub replay: Option<PathBuf>,
    /// Write counters as JSON to this file after every spool flush.
    #[arg(long, value_name = "FILE")]
    pub status_file: Option<PathBuf>,
}

/// Where alerts go and with what credential, if anywhere.
fn stream_credential(args: &AgentArgs) -> Result<Option<(String, StreamCredential)>, AgentError> {
    if let Some(bootstrap_dir) = &args.credentials {
        let own_dir = palisade_core::agent_identity::own_identity_dir(&args.spool_dir);
        let enrolled = StreamCredential::enrolled(bootstrap_dir, own_dir).map_err(|error| {
            AgentError::Config {
                source_name: format!("--credentials {}", bootstrap_dir.display()),
                message: error.to_string(),
            }
        })?;
        return Ok(Some(enrolled));
    }
    Ok(args.server.clone().map(|url| {
        let credential = StreamCredential::Token {
            token: args.token.clone().unwrap_or_default(),
            ca_file: args.ca_file.clone(),
        };
        (url, credential)
    }))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Runs the agent until SIGINT or SIGTERM (or the end of a replay).
pub fn run(args: AgentArgs) -> Result<(), AgentError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("palisade-agent-io")
        .enable_all()
        .build()
        .map_err(|error| AgentError::io("tokio runtime", error))?;
    runtime.block_on(run_async(args))
}

async fn connect_containerd(args: &AgentArgs) -> Result<Option<Containerd>, AgentError> {
    match &args.containerd {
        Some(socket) => Containerd::connect(socket).await.map(Some),
        None => {
            let default = PathBuf::from("/run/containerd/containerd.sock");
            if !default.exists() {
                return Ok(None);
            }
            match Containerd::connect(&default).await {
                Ok(client) => Ok(Some(client)),
                Err(error) => {
                    warn!(%error, "containerd not reachable; containers get their ids only");
                    Ok(None)
                }
            }
        }
    }
}

fn open_sensor(
    args: &AgentArgs,
    cgroup: &CgroupConfig,
) -> Result<Box<dyn RecordSource>, AgentError> {
    if let Some(path) = &args.replay {
        return Ok(Box::new(ReplaySource::open(path, 1)?));
    }
    let options = EbpfOptions {
        ringbuf_bytes: args.ringbuf_bytes,
        skip_tgid: std::process::id(),
        cgroup: cgroup.clone(),
        syscalls: Vec::new(),
    };
    let procfs = || {
        Box::new(ProcfsSensor::new(
            CgroupResolver::new(cgroup.clone()),
            std::process::id(),
            Duration::from_millis(100),
        )) as Box<dyn RecordSource>
    };
    match args.sensor {
        SensorChoice::Procfs => Ok(procfs()),
        SensorChoice::Ebpf => Ok(Box::new(EbpfSensor::load(&options)?)),
        SensorChoice::Auto => match EbpfSensor::load(&options) {
            Ok(sensor) => Ok(Box::new(sensor)),
            Err(error) => {
                error!(
                    %error,
                    "eBPF sensor unavailable; falling back to the /proc sensor, which sees process starts and exits only: file, network and privilege rules stay silent"
                );
                Ok(procfs())
            }
        },
    }
}

async fn run_async(args: AgentArgs) -> Result<(), AgentError> {
    let hostname = args.node_name.clone().unwrap_or_else(hostname);
    let metrics = Arc::new(AgentMetrics::default());
    let cgroup = CgroupConfig::detect()?;
    let containerd = connect_containerd(&args).await?;
    let (registry, lookups) = ContainerRegistry::new(containerd.is_some());
    if let Some(client) = containerd {
        info!(socket = %client.socket().display(), "container metadata from containerd");
        tokio::spawn(client.clone().serve_lookups(Arc::clone(&registry), lookups));
        tokio::spawn(client.follow_events(Arc::clone(&registry)));
    }
    let evaluator = Evaluator::load(&args.rules, &hostname)?;
    info!(summary = %evaluator.summary(), "rules loaded");
    for problem in evaluator.problems() {
        warn!(%problem, "rule not loaded");
    }
    if evaluator.summary().loaded == 0 {
        return Err(AgentError::Config {
            source_name: "--rules".into(),
            message: "no rule of source syscall loaded".into(),
        });
    }
    // the workers read the set through this; rules pushed by the server replace it whole
    let rules = Arc::new(arc_swap::ArcSwap::from_pointee(evaluator));
    let scopes = match &args.scopes {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|error| AgentError::io(path, error))?;
            Scopes::parse(&path.display().to_string(), &text)?
        }
        None => Scopes::default(),
    };
    let mut state = State::new(
        CgroupResolver::new(cgroup.clone()),
        Arc::clone(&registry),
        BootClock::now(),
    );
    let (cgroups, processes) = state.seed();
    info!(cgroups, processes, "state seeded from /proc");
    let source = open_sensor(&args, &cgroup)?;
    info!(sensor = source.name(), "sensor started");
    let recorder = match &args.record {
        Some(path) => Some(Recorder::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|error| AgentError::io(path, error))?,
        ))),
        None => None,
    };
    let credential = stream_credential(&args)?;
    let needs_spool = credential.is_some();
    let spool = if needs_spool {
        Some(Arc::new(Spool::open(
            &args.spool_dir,
            args.spool_max_bytes,
        )?))
    } else {
        None
    };
    let appended = Arc::new(Notify::new());
    let (shutdown_sender, shutdown_receiver) = watch::channel(false);
    let mut stream_task = None;
    if let (Some((url, credential)), Some(spool)) = (credential, &spool) {
        metrics.set_durable(spool.next_seq().saturating_sub(1));
        let config = StreamConfig::new(url, credential, hostname.clone());
        let link = Link {
            config,
            spool: Arc::clone(spool),
            appended: Arc::clone(&appended),
            status: Arc::clone(&metrics) as Arc<dyn palisade_agent_link::AgentStatus>,
            applier: Some(Arc::new(RulesApplier::new(Arc::clone(&rules), &hostname))),
        };
        stream_task = Some(tokio::spawn(stream::run(link, shutdown_receiver)));
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    let ((event_sender, event_receiver), (detection_sender, detection_receiver)) =
        pipeline::channels();
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
    });
    let io_error = |error: std::io::Error| AgentError::io("thread", error);
    let sensor_thread = pipeline::spawn_sensor(
        SensorStage {
            source,
            state,
            attribution_wait: Duration::from_millis(args.attribution_wait_ms),
            recorder,
        },
        event_sender,
        Arc::clone(&metrics),
        Arc::clone(&shutdown),
    )
    .map_err(io_error)?;
    let worker_threads = pipeline::spawn_workers(
        workers,
        Arc::clone(&rules),
        event_receiver,
        detection_sender,
        Arc::clone(&metrics),
    )
    .map_err(io_error)?;
    let alert_thread = pipeline::spawn_alerts(
        AlertStage {
            scopes,
            limiter: Limiter::new(LimiterConfig {
                window_ns: args.window_seconds.saturating_mul(1_000_000_000),
                max_per_window: args.max_alerts_per_window,
            }),
            outputs: Outputs {
                stdout: args.stdout,
                spool: spool.clone(),
                appended: Arc::clone(&appended),
                status_file: args.status_file.clone(),
            },
            hostname: hostname.clone(),
        },
        detection_receiver,
        Arc::clone(&metrics),
    )
    .map_err(io_error)?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| AgentError::io("SIGTERM handler", error))?;
    let sensor_done = tokio::task::spawn_blocking(move || {
        let _ = sensor_thread.join();
    });
    tokio::pin!(sensor_done);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("interrupted; stopping"),
        _ = terminate.recv() => info!("terminated; stopping"),
        _ = &mut sensor_done => info!("sensor finished"),
    }
    shutdown.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || {
        for worker in worker_threads {
            let _ = worker.join();
        }
        let _ = alert_thread.join();
    })
    .await;
    if let Some(spool) = &spool {
        // give the stream a moment to deliver what was just spooled
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !spool.is_empty() && tokio::time::Instant::now() < deadline && stream_task.is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = shutdown_sender.send(true);
    if let Some(task) = stream_task {
        let _ = task.await;
    }
    Ok(())
}
