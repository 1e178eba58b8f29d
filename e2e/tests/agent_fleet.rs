//! The agent stream at the fleet's edge, across real processes: `palisade up` and `palisade
//! audit watch` talking through a TCP relay the test can cut (connections dropped) or stall
//! (bytes held, no reset, like a partition). Alerts raised while the link is down arrive once
//! when it is back; a stalled agent is declared dead by the gateway and reconnects on its own;
//! `palisade admin agents` and `palisade status` report it; configuration set with `palisade
//! admin agent-config` reaches a connected agent.

mod common;

use std::net::SocketAddr;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use palisade_testkit::{ChildGuard, Server, palisade_binary};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

const OPEN: u8 = 0;
const CUT: u8 = 1;
const STALLED: u8 = 2;

/// A TCP relay from a fixed local port to the server.
struct Relay {
    address: SocketAddr,
    mode: Arc<AtomicU8>,
    changes: watch::Sender<u8>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let mode = Arc::new(AtomicU8::new(OPEN));
        let (changes, _) = watch::channel(OPEN);
        let accept_mode = Arc::clone(&mode);
        let accept_changes = changes.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let mode = accept_mode.load(Ordering::SeqCst);
                if mode == CUT {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut changes = accept_changes.subscribe();
                tokio::spawn(async move {
                    if mode == STALLED {
                        // held open, nothing forwarded, until the link changes
                        let _ = changes.changed().await;
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = changes.changed() => {
                            if *changes.borrow() == STALLED {
                                // stop forwarding but keep both sockets open: no reset
                                let _ = changes.changed().await;
                            }
                        }
                    }
                });
            }
        });
        Relay {
            address,
            mode,
            changes,
        }
    }

    /// The relay passes TLS through untouched; the server's certificate names 127.0.0.1.
    fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        self.changes.send_replace(mode);
    }
}

fn agents_json(server: &Server) -> Vec<serde_json::Value> {
    let output = server.cli(&["admin", "agents", "--format", "json"]);
    common::json_output(&output)["agents"]
        .as_array()
        .expect("agents")
        .clone()
}

fn agent_field(server: &Server, agent_id: &str, field: &str) -> serde_json::Value {
    agents_json(server)
        .into_iter()
        .find(|agent| agent["agent_id"] == agent_id)
        .map(|agent| agent[field].clone())
        .unwrap_or(serde_json::Value::Null)
}

async fn wait_for_state(server: &Server, agent_id: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = agent_field(server, agent_id, "state");
        if found == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{agent_id} is {found}, expected {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn gateway_status(server: &Server) -> serde_json::Value {
    let output = server.cli(&["status", "--format", "json"]);
    let status = common::json_output(&output);
    status["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|component| component["name"] == "gateway")
        .cloned()
        .expect("gateway component")
}

async fn search_total(server: &Server) -> u64 {
    common::search_client(server)
        .await
        .search(palisade_proto::v1::SearchRequest {
            query: "*".into(),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner()
        .total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_alerts_cross_a_cut_and_a_stalled_link_once_and_a_silent_watcher_is_dead() {
    let temp = tempfile::tempdir().expect("temp");
    let config = temp.path().join("palisade.toml");
    // short heartbeats so three missed ones pass quickly
    std::fs::write(&config, "[agents]\nheartbeat_seconds = 1\n").expect("config");
    let server = Server::start_with_config(&temp.path().join("data"), Some(&config));
    let relay = Relay::start(server.grpc_url.trim_start_matches("https://").to_string()).await;

    let files = common::trace_files();
    let (first_half, second_half) = files.split_at(files.len() / 2);
    let expected_first = common::distinct_alerts(first_half);
    let expected_all = common::distinct_alerts(&files);
    assert!(expected_first > 0 && expected_all > expected_first);

    let log = temp.path().join("audit.log");
    std::fs::File::create(&log).expect("log");
    let mut watcher = ChildGuard::new(
        Command::new(palisade_binary())
            .args(["audit", "watch", "--server", &relay.url(), "--file"])
            .arg(&log)
            .arg("--state-dir")
            .arg(temp.path().join("watch-state"))
            .args(["--agent-id", "audit/e2e"])
            .env("PALISADE_TOKEN", server.admin_token())
            .env("PALISADE_CA_FILE", server.ca_file())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("watcher"),
    );

    common::append_events(&log, first_half);
    common::wait_for_total(&server, expected_first).await;
    wait_for_state(&server, "audit/e2e", "connected").await;
    assert_eq!(agent_field(&server, "audit/e2e", "kind"), "audit");

    // cut: connections dropped; the second half is raised meanwhile and spooled
    relay.set(CUT);
    common::append_events(&log, second_half);
    tokio::time::sleep(Duration::from_secs(2)).await;
    relay.set(OPEN);
    common::wait_for_total(&server, expected_all).await;

    // stall: no reset, nothing forwarded; the gateway hears nothing for three heartbeats
    relay.set(STALLED);
    wait_for_state(&server, "audit/e2e", "dead").await;
    let gateway = gateway_status(&server);
    assert_eq!(gateway["metrics"]["agents_dead"], "1", "{gateway}");
    assert!(
        gateway["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("1 dead")),
        "{gateway}"
    );
    relay.set(OPEN);
    // the watcher noticed the silence too and reconnects by itself
    wait_for_state(&server, "audit/e2e", "connected").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(search_total(&server).await, expected_all, "nothing doubled");

    let pid = watcher.child().id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exited = watcher.into_inner().wait().expect("watcher exits");
    assert!(exited.success(), "{exited:?}");
    wait_for_state(&server, "audit/e2e", "disconnected").await;
}

mod config_push {
    use palisade_proto::v1::agent_service_client::AgentServiceClient;
    use palisade_proto::v1::{
        AgentHello, AgentKind, ConfigApplied, ConnectRequest, connect_request, connect_response,
    };
    use palisade_testkit::{Server, corpus_path};
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    use super::{agent_field, wait_for_state};

    fn hello() -> ConnectRequest {
        ConnectRequest {
            msg: Some(connect_request::Msg::Hello(AgentHello {
                agent_id: "node/config-test".into(),
                kind: AgentKind::Node as i32,
                capabilities: vec!["config".into()],
                ..Default::default()
            })),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agent_config_set_by_the_cli_reaches_a_connected_agent_and_survives_a_restart() {
        let temp = tempfile::tempdir().expect("temp");
        let mut server = Server::start(&temp.path().join("data"));
        let (channel, interceptor) =
            crate::common::authenticated(&server, &server.admin_token()).await;
        let mut client = AgentServiceClient::with_interceptor(channel, interceptor)
            .max_decoding_message_size(16 << 20);
        let (outbound, receiver) = mpsc::channel(4);
        outbound.send(hello()).await.expect("hello");
        let mut inbound = client
            .connect(ReceiverStream::new(receiver))
            .await
            .expect("connect")
            .into_inner();
        assert!(matches!(
            inbound.message().await.expect("hello").and_then(|m| m.msg),
            Some(connect_response::Msg::Hello(_))
        ));
        wait_for_state(&server, "node/config-test", "connected").await;

        let falco_rules = corpus_path("runtime/falco-rules/falco_rules.yaml");
        let output = server.cli(&[
            "admin",
            "agent-config",
            "set",
            "--rules",
            falco_rules.to_str().expect("path"),
            "--setting",
            "mode=strict",
            "--format",
            "json",
        ]);
        let set = crate::common::json_output(&output);
        assert_eq!(set["config"]["version"], "1", "{set}");
        assert_eq!(set["pushed_to"], 1, "{set}");

        let pushed = match inbound.message().await.expect("config").and_then(|m| m.msg) {
            Some(connect_response::Msg::Config(config)) => config,
            other => panic!("expected AgentConfig, got {other:?}"),
        };
        assert_eq!(pushed.version, "1");
        assert_eq!(
            pushed.rules_files["01-falco_rules.yaml"],
            std::fs::read_to_string(&falco_rules).expect("rules"),
            "the agent receives the file as given"
        );
        assert_eq!(pushed.settings["mode"], "strict");
        outbound
            .send(ConnectRequest {
                msg: Some(connect_request::Msg::ConfigApplied(ConfigApplied {
                    version: "1".into(),
                    ok: true,
                    error: String::new(),
                })),
            })
            .await
            .expect("applied");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while agent_field(&server, "node/config-test", "config_version") != "1" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "ConfigApplied not recorded"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let shown = crate::common::json_output(&server.cli(&[
            "admin",
            "agent-config",
            "show",
            "--format",
            "json",
        ]));
        assert_eq!(shown["config"]["version"], "1");
        assert_eq!(
            shown["config"]["rules_files"][0]["name"],
            "01-falco_rules.yaml"
        );

        // a restarted gateway still knows the agent: disconnected, with its last-seen time
        // (the registry is a report written back by the store within 500 ms, not flushed)
        drop(inbound);
        drop(outbound);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        server.kill_hard();
        server.restart();
        assert_eq!(
            agent_field(&server, "node/config-test", "state"),
            "disconnected"
        );
        assert!(agent_field(&server, "node/config-test", "last_seen").is_string());
        assert_eq!(
            agent_field(&server, "node/config-test", "config_version"),
            "1"
        );
    }
}
