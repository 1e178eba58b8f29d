//! Cluster enrollment against a real server: an admin of a tenant registers a cluster, the
//! one-time token is exchanged once for the cluster's certificate, an agent renews it into its
//! own and streams alerts over mutual TLS; the alerts land under the tenant and cluster of the
//! certificate whatever they claim. Revoking the cluster cuts the open stream off at once and
//! refuses the next. Every admin action is in the tenant's own audit log.

mod common;

use std::time::Duration;

use common::{json_output, palisade};
use palisade_core::agent_identity::{AgentIdentity, own_identity};
use palisade_proto::v1::agent_service_client::AgentServiceClient;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::{
    AgentHello, AgentKind, Alert, AlertBatch, ConnectRequest, ConnectResponse, GetAlertRequest,
    Priority, connect_request, connect_response,
};
use palisade_testkit::Server;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// Runs the CLI against `server` with `token`.
fn cli_as(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    let ca_file = server.ca_file();
    all.extend(["--server", &server.grpc_url, "--token", token]);
    all.extend(["--ca-file", ca_file.to_str().expect("path")]);
    palisade(&all)
}

fn alert(id: &str) -> Alert {
    Alert {
        id: id.to_string(),
        rule: "Terminal shell in container".into(),
        output: "a shell was spawned".into(),
        priority: Priority::Warning as i32,
        source: "syscall".into(),
        // what an agent claims is overwritten by what its certificate says
        tenant_id: "default".into(),
        cluster_id: "someone-elses-cluster".into(),
        ..Alert::default()
    }
}

struct OpenStream {
    requests: mpsc::Sender<ConnectRequest>,
    responses: tonic::Streaming<ConnectResponse>,
}

async fn open_stream(
    identity: &AgentIdentity,
    agent_id: &str,
) -> Result<OpenStream, tonic::Status> {
    let channel = identity
        .channel()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let mut client = AgentServiceClient::new(channel);
    let (requests, receiver) = mpsc::channel(8);
    requests
        .send(ConnectRequest {
            msg: Some(connect_request::Msg::Hello(AgentHello {
                agent_id: agent_id.to_string(),
                kind: AgentKind::Node as i32,
                version: "test".into(),
                ..AgentHello::default()
            })),
        })
        .await
        .expect("queue hello");
    let responses = client
        .connect(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    Ok(OpenStream {
        requests,
        responses,
    })
}

async fn next_message(stream: &mut OpenStream) -> Result<connect_response::Msg, tonic::Status> {
    let next = tokio::time::timeout(Duration::from_secs(20), stream.responses.next())
        .await
        .expect("the server answers within 20 s");
    match next {
        Some(Ok(ConnectResponse { msg: Some(msg) })) => Ok(msg),
        Some(Ok(_)) => panic!("empty response"),
        Some(Err(status)) => Err(status),
        None => Err(tonic::Status::cancelled("stream ended without a status")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_cluster_streams_as_itself_until_it_is_revoked() {
    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));
    let created =
        json_output(&server.cli(&["admin", "tenant", "create", "acme", "--format", "json"]));
    let acme_key = created["api_key"].as_str().expect("api key").to_string();

    // register: the bundle names the agent listener, and its token works once
    let bundle = temp.path().join("prod-eu.enrollment.json");
    let bundle_arg = bundle.to_str().expect("path");
    let registered = json_output(&cli_as(
        &server,
        &acme_key,
        &[
            "admin", "cluster", "register", "prod-eu", "--output", bundle_arg, "--format", "json",
        ],
    ));
    assert_eq!(registered["tenant"], "acme");
    assert_eq!(registered["agent_url"], server.agent_url.as_str());
    let mode = std::fs::metadata(&bundle).expect("bundle").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    let bootstrap_dir = temp.path().join("credential");
    let enrolled = json_output(&palisade(&[
        "enroll",
        "--bundle",
        bundle_arg,
        "--out",
        bootstrap_dir.to_str().expect("path"),
        "--format",
        "json",
    ]));
    assert_eq!(enrolled["cluster"], "prod-eu");
    assert_eq!(enrolled["tenant"], "acme");
    let again = palisade(&[
        "enroll",
        "--bundle",
        bundle_arg,
        "--out",
        temp.path().join("second").to_str().expect("path"),
    ]);
    assert!(!again.status.success(), "a token works once");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("used already"), "{stderr}");

    // the agent renews into a certificate of its own, then streams with it
    let own_dir = temp.path().join("agent-state/credential");
    let own = own_identity(&bootstrap_dir, &own_dir, "node/worker-1")
        .await
        .expect("own certificate");
    let bootstrap = AgentIdentity::load(&bootstrap_dir).expect("bootstrap");
    assert_ne!(own.info.credential_id, bootstrap.info.credential_id);
    let mut stream = open_stream(&own, "node/worker-1").await.expect("connected");
    let Ok(connect_response::Msg::Hello(hello)) = next_message(&mut stream).await else {
        panic!("ServerHello first");
    };
    assert_eq!(hello.tenant_id, "acme");
    assert_eq!(hello.cluster_id, "prod-eu");
    stream
        .requests
        .send(ConnectRequest {
            msg: Some(connect_request::Msg::Batch(AlertBatch {
                first_seq: 1,
                alerts: vec![alert("enrolled-1")],
            })),
        })
        .await
        .expect("send batch");
    let Ok(connect_response::Msg::Ack(ack)) = next_message(&mut stream).await else {
        panic!("an ack for the batch");
    };
    assert_eq!(ack.up_to_seq, 1);

    let (channel, interceptor) = common::authenticated(&server, &acme_key).await;
    let stored = AlertServiceClient::with_interceptor(channel, interceptor)
        .get_alert(GetAlertRequest {
            id: "enrolled-1".into(),
        })
        .await
        .expect("acme reads its alert")
        .into_inner()
        .alert
        .expect("alert");
    assert_eq!(stored.tenant_id, "acme");
    assert_eq!(stored.cluster_id, "prod-eu");
    let (channel, interceptor) = common::authenticated(&server, &server.admin_token()).await;
    let other_tenant = AlertServiceClient::with_interceptor(channel, interceptor)
        .get_alert(GetAlertRequest {
            id: "enrolled-1".into(),
        })
        .await
        .expect_err("the default tenant does not see acme's alert");
    assert_eq!(other_tenant.code(), tonic::Code::NotFound);

    // revoking the cluster ends the open stream at once and refuses the next connection
    let revoked = json_output(&cli_as(
        &server,
        &acme_key,
        &["admin", "cluster", "revoke", "prod-eu", "--format", "json"],
    ));
    assert_eq!(revoked["revoked_credentials"], 2);
    let cut_off = next_message(&mut stream).await.expect_err("cut off");
    assert_eq!(cut_off.code(), tonic::Code::Unauthenticated, "{cut_off}");
    let refused = match open_stream(&own, "node/worker-1").await {
        Ok(mut stream) => next_message(&mut stream).await.expect_err("refused"),
        Err(status) => status,
    };
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");

    // the tenant's audit log has its actions; the operator's does not
    let events = json_output(&cli_as(
        &server,
        &acme_key,
        &["admin", "audit-log", "--format", "json"],
    ));
    let actions: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["cluster.revoke", "cluster.register"], "{events}");
    let operator = json_output(&server.cli(&["admin", "audit-log", "--format", "json"]));
    let operator_actions: Vec<&str> = operator["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["action"].as_str().expect("action"))
        .collect();
    assert_eq!(operator_actions, ["tenant.create"], "{operator}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_listener_refuses_streams_without_a_certificate_and_unknown_tokens() {
    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));
    let created =
        json_output(&server.cli(&["admin", "tenant", "create", "acme", "--format", "json"]));
    let acme_key = created["api_key"].as_str().expect("api key").to_string();
    let bundle = temp.path().join("bundle.json");
    json_output(&cli_as(
        &server,
        &acme_key,
        &[
            "admin",
            "cluster",
            "register",
            "edge",
            "--output",
            bundle.to_str().expect("path"),
            "--format",
            "json",
        ],
    ));
    let mut forged =
        palisade_core::agent_identity::EnrollmentBundle::load(&bundle).expect("bundle");
    forged.enrollment_token = "pal_enroll_0000".into();
    let forged_path = temp.path().join("forged.json");
    forged.save(&forged_path).expect("save");
    let refused = palisade(&[
        "enroll",
        "--bundle",
        forged_path.to_str().expect("path"),
        "--out",
        temp.path()
            .join("forged-credential")
            .to_str()
            .expect("path"),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown enrollment token"), "{stderr}");

    // TLS with the right CA but no client certificate: the stream is refused
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            &forged.ca_certificate_pem,
        ))
        .domain_name(forged.server_name.clone());
    let channel = tonic::transport::Endpoint::from_shared(server.agent_url.clone())
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("TLS connects without a client certificate");
    let (requests, receiver) = mpsc::channel(1);
    requests
        .send(ConnectRequest {
            msg: Some(connect_request::Msg::Hello(AgentHello {
                agent_id: "intruder".into(),
                ..AgentHello::default()
            })),
        })
        .await
        .expect("queue");
    let status = AgentServiceClient::new(channel)
        .connect(ReceiverStream::new(receiver))
        .await
        .expect_err("no certificate, no stream");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");

    // API keys: an expired one and a revoked one are refused
    let short = json_output(&cli_as(
        &server,
        &acme_key,
        &[
            "admin",
            "key",
            "create",
            "short",
            "--expires-in",
            "1s",
            "--format",
            "json",
        ],
    ));
    let revoked = json_output(&cli_as(
        &server,
        &acme_key,
        &["admin", "key", "create", "leaked", "--format", "json"],
    ));
    json_output(&cli_as(
        &server,
        &acme_key,
        &[
            "admin",
            "key",
            "revoke",
            revoked["key_id"].as_str().expect("key id"),
            "--format",
            "json",
        ],
    ));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for key in [&short, &revoked] {
        let output = cli_as(
            &server,
            key["api_key"].as_str().expect("key"),
            &["admin", "cluster", "list", "--format", "json"],
        );
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("expired") || stderr.contains("revoked"),
            "{stderr}"
        );
    }
    // a key id of another tenant cannot be revoked, and is not even found
    let operator_keys = json_output(&server.cli(&["admin", "key", "list", "--format", "json"]));
    let operator_key_id = operator_keys["keys"][0]["key_id"].as_str().expect("key id");
    let output = cli_as(
        &server,
        &acme_key,
        &["admin", "key", "revoke", operator_key_id],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not found"));
    let still = json_output(&server.cli(&["admin", "key", "list", "--format", "json"]));
    assert_eq!(still["keys"][0]["revoked"], false);
}
