//! The node agent against the server: real eBPF detections (with the runtime pack and a rule
//! of the test's own) travel the agent stream into the
//! server's log and index, and nothing is lost or doubled when the server and then the agent
//! are killed with SIGKILL while alerts are in flight.
//!
//! Needs root (the eBPF sensor); CI runs as root. Without root the test fails and says so.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use palisade_proto::v1::SearchRequest;
use palisade_testkit::{ChildGuard, Server, palisade_binary};
use tokio::time::Instant;

/// Marker-file reads per round; the agent's per-window limit (20) stays above it.
const READS: usize = 5;

/// The runtime pack plus one rule of the test's own: the pack rightly ignores processes run by
/// build tools (cargo runs this test), the extra rule fires on reads of the marker files.
fn rules_files(directory: &Path) -> [std::path::PathBuf; 2] {
    let pack =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/runtime/palisade_runtime_rules.yaml");
    let extra = directory.join("e2e_rules.yaml");
    std::fs::write(
        &extra,
        format!(
            "- rule: E2E marker file read\n  desc: the test read one of its marker files\n  condition: pal_open_read and fd.name startswith {}/\n  output: marker file read (file=%fd.name command=%proc.cmdline)\n  priority: WARNING\n  source: syscall\n  tags: [e2e]\n",
            directory.join("markers").display()
        ),
    )
    .expect("rules file");
    [pack, extra]
}

fn start_agent(server: &Server, directory: &Path, spool: &Path, status: &Path) -> ChildGuard {
    let [pack, extra] = rules_files(directory);
    let child = Command::new(palisade_binary())
        .args(["agent", "--sensor", "ebpf", "--node-name", "e2e-node"])
        .arg("--rules")
        .arg(pack)
        .arg("--rules")
        .arg(extra)
        .args(["--server", &server.grpc_url])
        .arg("--spool-dir")
        .arg(spool)
        .arg("--status-file")
        .arg(status)
        .env("PALISADE_AGENT_TOKEN", server.admin_token())
        .env("PALISADE_CA_FILE", server.ca_file())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("agent starts");
    ChildGuard::new(child)
}

fn agent_status(status: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(status).ok()?;
    serde_json::from_str(&text).ok()
}

/// Waits until the agent has written its status file (its sensor runs).
async fn wait_for_agent(agent: &mut ChildGuard, status: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while agent_status(status).is_none() {
        assert!(
            agent.child().try_wait().expect("wait").is_none(),
            "the agent exited before its sensor ran"
        );
        assert!(Instant::now() < deadline, "the agent wrote no status");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads `READS` marker files named after `marker`, each with its own `cat`.
fn read_markers(directory: &Path, marker: &str) {
    let markers = directory.join("markers");
    std::fs::create_dir_all(&markers).expect("markers");
    for round in 0..READS {
        let file = markers.join(format!("{marker}-{round}"));
        std::fs::write(&file, "marker").expect("marker");
        let status = Command::new("cat")
            .arg(&file)
            .stdout(Stdio::null())
            .status()
            .expect("cat");
        assert!(status.success());
    }
}

async fn count(server: &Server, query: &str) -> u64 {
    let mut client = common::search_client(server).await;
    client
        .search(SearchRequest {
            query: query.to_string(),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner()
        .total
}

async fn wait_for_count(server: &Server, query: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let found = count(server, query).await;
        if found == expected {
            return;
        }
        assert!(
            found < expected,
            "{query}: {found} alerts, expected {expected}"
        );
        assert!(
            Instant::now() < deadline,
            "{query}: stuck at {found} alerts, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the agent's spool has made `at_least` alerts durable.
async fn wait_for_durable(status: &Path, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let durable = agent_status(status)
            .and_then(|status| status["durable_seq"].as_u64())
            .unwrap_or(0);
        if durable >= at_least {
            return durable;
        }
        assert!(
            Instant::now() < deadline,
            "agent spool stuck at seq {durable}, expected {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebpf_alerts_reach_the_server_and_survive_sigkill_of_server_and_agent() {
    let euid = Command::new("id").arg("-u").output().expect("id").stdout;
    assert_eq!(
        String::from_utf8_lossy(&euid).trim(),
        "0",
        "this test loads eBPF programs: run it as root (CI does)"
    );
    let temp = tempfile::tempdir().expect("temp");
    let mut server = Server::start(&temp.path().join("data"));
    let spool = temp.path().join("spool");
    let status = temp.path().join("agent-status.json");
    let mut agent = start_agent(&server, temp.path(), &spool, &status);
    wait_for_agent(&mut agent, &status).await;
    let marker = format!("pmark{}", std::process::id());

    // Round 1: live delivery.
    read_markers(temp.path(), &format!("{marker}a"));
    let first = format!("{marker}a");
    wait_for_count(&server, &first, READS as u64).await;
    let durable_before = wait_for_durable(&status, 1).await;

    // Round 2: the server is killed; the agent keeps the alerts in its spool, is itself killed,
    // and a new agent on the same spool delivers them to the restarted server.
    server.kill_hard();
    read_markers(temp.path(), &format!("{marker}b"));
    wait_for_durable(&status, durable_before + READS as u64).await;
    drop(agent); // SIGKILL
    server.restart();
    let _agent = start_agent(&server, temp.path(), &spool, &status);
    let second = format!("{marker}b");
    wait_for_count(&server, &second, READS as u64).await;
    assert_eq!(
        count(&server, &first).await,
        READS as u64,
        "round 1 kept once"
    );
}

mod protocol {
    use palisade_proto::v1::agent_service_client::AgentServiceClient;
    use palisade_proto::v1::{
        AgentHello, AgentKind, Alert, AlertBatch, ConnectRequest, ConnectResponse, connect_request,
        connect_response,
    };
    use palisade_testkit::Server;
    use tokio_stream::StreamExt;

    fn alert(seq: u64) -> Alert {
        Alert {
            rule: "Protocol test".into(),
            output: format!("protocol test alert {seq}"),
            source: "syscall".into(),
            ..Default::default()
        }
    }

    fn hello() -> ConnectRequest {
        ConnectRequest {
            msg: Some(connect_request::Msg::Hello(AgentHello {
                agent_id: "node/protocol-test".into(),
                kind: AgentKind::Node as i32,
                ..Default::default()
            })),
        }
    }

    fn batch(first_seq: u64, count: u64) -> ConnectRequest {
        ConnectRequest {
            msg: Some(connect_request::Msg::Batch(AlertBatch {
                first_seq,
                alerts: (first_seq..first_seq + count).map(alert).collect(),
            })),
        }
    }

    /// Sends `messages` on one stream and collects the answers until the server ends it.
    async fn exchange(
        server: &Server,
        messages: Vec<ConnectRequest>,
    ) -> Result<Vec<ConnectResponse>, tonic::Status> {
        let (channel, interceptor) =
            crate::common::authenticated(server, &server.admin_token()).await;
        let mut client = AgentServiceClient::with_interceptor(channel, interceptor);
        let expected = messages.len();
        let mut responses = client
            .connect(tokio_stream::iter(messages).chain(tokio_stream::pending()))
            .await?
            .into_inner();
        let mut received = Vec::new();
        // One answer per message (ServerHello answers AgentHello), then stop waiting.
        while received.len() < expected {
            match tokio::time::timeout(std::time::Duration::from_secs(30), responses.next()).await {
                Ok(Some(Ok(response))) => received.push(response),
                Ok(Some(Err(status))) => return Err(status),
                Ok(None) => break,
                Err(_) => panic!("no answer from the server after {received:?}"),
            }
        }
        Ok(received)
    }

    fn acks(responses: &[ConnectResponse]) -> Vec<(u64, u64)> {
        responses
            .iter()
            .filter_map(|response| match &response.msg {
                Some(connect_response::Msg::Ack(ack)) => Some((ack.up_to_seq, ack.duplicates)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_server_enforces_the_agent_stream_protocol() {
        let temp = tempfile::tempdir().expect("temp");
        let server = Server::start(&temp.path().join("data"));

        let refused = exchange(&server, vec![batch(1, 1)])
            .await
            .expect_err("a batch before AgentHello is refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused}");
        assert!(refused.message().contains("AgentHello"), "{refused}");

        let responses = exchange(&server, vec![hello(), batch(1, 3), batch(4, 2)])
            .await
            .expect("stream");
        match &responses[0].msg {
            Some(connect_response::Msg::Hello(hello)) => {
                assert_eq!(hello.resume_after_seq, 0);
                assert!(hello.window > 0);
            }
            other => panic!("expected ServerHello, got {other:?}"),
        }
        assert_eq!(acks(&responses), vec![(3, 0), (5, 0)]);

        // A reconnecting agent learns where to resume; a resent batch is acked as duplicates.
        let responses = exchange(&server, vec![hello(), batch(4, 2), batch(6, 1)])
            .await
            .expect("stream");
        match &responses[0].msg {
            Some(connect_response::Msg::Hello(hello)) => assert_eq!(hello.resume_after_seq, 5),
            other => panic!("expected ServerHello, got {other:?}"),
        }
        assert_eq!(acks(&responses), vec![(5, 2), (6, 0)]);

        let gap = exchange(&server, vec![hello(), batch(9, 1)]).await;
        let status = gap.expect_err("a sequence gap is refused");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status}");
        assert!(status.message().contains("sequence gap"), "{status}");
    }
}
