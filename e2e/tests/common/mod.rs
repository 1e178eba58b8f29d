//! Helpers shared by the end-to-end tests.

#![allow(dead_code)]

pub mod browser;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{PageRequest, SearchRequest, SortOrder, search_hit};
use palisade_testkit::Server;

/// Writes `count` Falco JSON alerts, each carrying its sequence number in `test.seq`.
pub fn write_falco_alerts(path: &Path, count: usize, first_seq: usize) {
    let mut text = String::new();
    const PRIORITIES: [&str; 4] = ["Warning", "Notice", "Critical", "Error"];
    const RULES: [&str; 2] = [
        "Terminal shell in container",
        "Read sensitive file untrusted",
    ];
    for seq in first_seq..first_seq + count {
        let priority = PRIORITIES[seq % 4];
        let rule = RULES[seq % 2];
        let line = serde_json::json!({
            "hostname": format!("node-{}", seq % 7),
            "output": format!("Shell spawned in a container (user=root proc.name=bash seq={seq})"),
            "priority": priority,
            "rule": rule,
            "source": "syscall",
            "tags": ["container", "shell", "T1059", "mitre_execution"],
            "time": format!("2026-11-0{}T10:00:{:02}.{:09}Z", 1 + seq % 9, seq % 60, seq),
            "output_fields": { "proc.name": "bash", "k8s.ns.name": format!("ns-{}", seq % 5), "test.seq": seq.to_string(), "container.id": null }
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).expect("write alerts");
}

/// A channel to `server` and an interceptor that sends `token` as its bearer credential.
pub async fn authenticated(
    server: &Server,
    token: &str,
) -> (
    tonic::transport::Channel,
    impl tonic::service::Interceptor + Clone + use<>,
) {
    let channel = server.channel().await;
    let header: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().expect("header");
    let interceptor = move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", header.clone());
        Ok(request)
    };
    (channel, interceptor)
}

/// Connects an authenticated search client.
pub async fn search_client(
    server: &Server,
) -> SearchServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor + Clone,
    >,
> {
    let (channel, interceptor) = authenticated(server, &server.admin_token()).await;
    SearchServiceClient::with_interceptor(channel, interceptor)
        .max_decoding_message_size(256 * 1024 * 1024)
}

/// How many times each `test.seq` value occurs among all searchable alerts.
pub async fn sequence_counts(server: &Server) -> BTreeMap<usize, usize> {
    let mut client = search_client(server).await;
    let mut counts = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let response = client
            .search(SearchRequest {
                query: "*".into(),
                page: Some(PageRequest {
                    limit: 1000,
                    cursor: cursor.clone(),
                }),
                sort: SortOrder::TimeAsc as i32,
                ..Default::default()
            })
            .await
            .expect("search")
            .into_inner();
        for hit in &response.hits {
            let Some(search_hit::Document::Alert(alert)) = &hit.document else {
                panic!("expected an alert hit")
            };
            let seq: usize = alert.output_fields["test.seq"].parse().expect("seq");
            *counts.entry(seq).or_default() += 1;
        }
        if response.next_cursor.is_empty() {
            return counts;
        }
        cursor = response.next_cursor;
    }
}

/// Waits until the server's search total equals `expected`.
pub async fn wait_for_total(server: &Server, expected: u64) {
    let mut client = search_client(server).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let total = client
            .search(SearchRequest {
                query: "*".into(),
                ..Default::default()
            })
            .await
            .expect("search")
            .into_inner()
            .total;
        if total == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "search total stuck at {total}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a tool the tests need (installed by `make test`), failing loudly with its stderr.
pub fn run_tool(command: &mut std::process::Command) -> String {
    let description = format!("{command:?}");
    let output = command.output().unwrap_or_else(|error| {
        panic!("cannot start {description}: {error} (make test installs it)")
    });
    assert!(
        output.status.success(),
        "{description} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A root filesystem in `directory`/rootfs holding Alpine 3.4's real apk database (with its
/// one invalid entry) and an os-release naming Alpine 3.4.
pub fn alpine_rootfs(directory: &Path) -> std::path::PathBuf {
    let root = directory.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::create_dir_all(root.join("lib/apk/db")).expect("apk dir");
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME=\"Alpine Linux v3.4\"\n",
    )
    .expect("os-release");
    std::fs::copy(
        palisade_testkit::corpus_path("images/alpine-3.4-lib-apk-db-installed-with-invalid-entry"),
        root.join("lib/apk/db/installed"),
    )
    .expect("apk database");
    root
}

/// `root` packed as a one-layer image with umoci in an OCI layout under `directory`; returns
/// the layout path with its tag (`DIR:e2e`).
pub fn umoci_image(directory: &Path, root: &Path) -> String {
    use std::process::Command;
    let layout = directory.join("oci");
    let image = format!("{}:e2e", layout.display());
    let bundle = directory.join("bundle");
    run_tool(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    run_tool(Command::new("umoci").args(["new", "--image", &image]));
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle),
    );
    run_tool(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.display()))
            .arg(bundle.join("rootfs")),
    );
    run_tool(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    image
}

/// Debian's docker-registry on a free port of 127.0.0.1, storing under `directory`, with basic
/// auth for `user`:`password` (htpasswd from apache2-utils). Returns the running registry and
/// its address (`127.0.0.1:PORT`).
pub fn start_registry(
    directory: &Path,
    user: &str,
    password: &str,
) -> (palisade_testkit::ChildGuard, String) {
    use std::process::{Command, Stdio};
    let htpasswd = run_tool(Command::new("htpasswd").args(["-Bbn", user, password]));
    std::fs::write(directory.join("htpasswd"), htpasswd).expect("htpasswd");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let address = format!("127.0.0.1:{port}");
    let config = directory.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: e2e\n    path: {}\n",
            directory.join("registry").display(),
            directory.join("htpasswd").display()
        ),
    )
    .expect("registry config");
    let registry = palisade_testkit::ChildGuard::new(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts (make test installs it)"),
    );
    // Up to 20 s for the registry to listen.
    let listening = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::net::TcpStream::connect(&address).is_ok()
    });
    assert!(listening, "docker-registry did not listen on {address}");
    (registry, address)
}

/// Runs the palisade CLI with `args`; returns its output.
pub fn palisade(args: &[&str]) -> std::process::Output {
    std::process::Command::new(palisade_testkit::palisade_binary())
        .args(args)
        .output()
        .expect("palisade runs")
}

/// Runs the palisade CLI with `args`, trusting `server`'s CA; returns its output.
pub fn palisade_for(server: &Server, args: &[&str]) -> std::process::Output {
    std::process::Command::new(palisade_testkit::palisade_binary())
        .args(args)
        .env("PALISADE_CA_FILE", server.ca_file())
        .output()
        .expect("palisade runs")
}

/// `palisade vulndb import FILE` into the database of `data_dir`, which must succeed (the
/// server may be running).
pub fn vulndb_import(data_dir: &Path, file: &Path) {
    let output = palisade(&[
        "vulndb",
        "import",
        "--data-dir",
        data_dir.to_str().expect("path"),
        file.to_str().expect("path"),
    ]);
    assert!(
        output.status.success(),
        "import {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The JSON a successful CLI run printed.
pub fn json_output(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// The real audit events of Falco's legacy k8s_audit tests, one trace file each, sorted.
pub fn trace_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(palisade_testkit::corpus_path(
        "audit/falco-legacy-tests/trace_files",
    ))
    .expect("trace files")
    .map(|entry| entry.expect("entry").path())
    .collect();
    files.sort();
    files
}

/// Distinct alerts an offline replay of `files` raises (one per audit event and rule).
pub fn distinct_alerts(files: &[PathBuf]) -> u64 {
    let replay = std::process::Command::new(palisade_testkit::palisade_binary())
        .args(["audit", "replay"])
        .args(files)
        .output()
        .expect("replay");
    assert!(replay.status.success());
    String::from_utf8_lossy(&replay.stdout)
        .lines()
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64
}

/// Appends the events of `files` to the audit log `log`, one JSON line each.
pub fn append_events(log: &Path, files: &[PathBuf]) {
    let mut appender = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .expect("append");
    for file in files {
        let events = std::fs::read(file).expect("trace");
        appender.write_all(&events).expect("append");
        if !events.ends_with(b"\n") {
            appender.write_all(b"\n").expect("append");
        }
    }
    appender.flush().expect("flush");
}
