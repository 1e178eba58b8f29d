//! Running the platform as real processes for tests: `palisade up`, or, when
//! `PALISADE_TEST_MODE=distributed`, the distributed mode's services (`palisade serve gateway`,
//! `search`, `graph`, `scanner`) as four processes on loopback, so the same tests run against
//! both modes. The gateway keeps the data directory the test gave; the other services keep
//! theirs beside it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// The `palisade` binary: `PALISADE_BIN`, or `palisade` in the target directory of the running
/// test (target/debug/deps/TEST -> target/debug/palisade). Panics with instructions when it is
/// missing.
pub fn palisade_binary() -> PathBuf {
    if let Some(explicit) = std::env::var_os("PALISADE_BIN") {
        return PathBuf::from(explicit);
    }
    let test_executable = std::env::current_exe().expect("the test knows its own path");
    let candidates = test_executable
        .ancestors()
        .skip(1)
        .take(3)
        .map(|directory| directory.join("palisade"))
        .collect::<Vec<_>>();
    candidates
        .iter()
        .find(|candidate| candidate.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the palisade binary was not found (looked at {candidates:?}); build it first with \
                 `cargo build -p palisade` (make test does) or set PALISADE_BIN"
            )
        })
}

/// Where and how a server process runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Command the server runs under, e.g. `ip netns exec NAME` (empty: none).
    pub wrapper: Vec<String>,
    /// The three listeners: gRPC, HTTP, agents (the gateway's, in the distributed mode).
    pub listen: [String; 3],
    /// Run the distributed mode's services instead of `palisade up` [default: as
    /// `PALISADE_TEST_MODE` says].
    pub distributed: bool,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            wrapper: Vec::new(),
            listen: [
                "127.0.0.1:0".into(),
                "127.0.0.1:0".into(),
                "127.0.0.1:0".into(),
            ],
            distributed: distributed_mode(),
        }
    }
}

/// Environment variable choosing how tests run the platform: `embedded` (default) or
/// `distributed`.
pub const TEST_MODE_ENV: &str = "PALISADE_TEST_MODE";

/// The services of the distributed mode other than the gateway, in start order.
const PEER_SERVICES: [&str; 3] = ["search", "scanner", "graph"];

/// Whether tests run the distributed mode (`PALISADE_TEST_MODE=distributed`). Any other value
/// than `embedded` or `distributed` is a mistake and fails loudly.
pub fn distributed_mode() -> bool {
    match std::env::var(TEST_MODE_ENV).as_deref() {
        Err(_) | Ok("") | Ok("embedded") => false,
        Ok("distributed") => true,
        Ok(other) => panic!("{TEST_MODE_ENV}={other:?}: expected embedded or distributed"),
    }
}

/// Where the process running `service` keeps its data when a test's server uses `data_dir`:
/// `data_dir` itself in the embedded mode (and for the gateway), else a directory beside it.
/// For data a test puts in place before the server starts (a vulnerability database for the
/// scanner, say).
pub fn service_data_dir(data_dir: &Path, service: &str) -> PathBuf {
    match distributed_mode() && !matches!(service, "gateway" | "up") {
        true => data_dir.with_extension(service),
        false => data_dir.to_path_buf(),
    }
}

/// A service of the distributed mode other than the gateway.
struct PeerProcess {
    service: String,
    child: Option<Child>,
    config: PathBuf,
    listen: [String; 3],
}

/// Ports [`free_port`] hands out: below Linux's ephemeral range (32768-60999), so a listener
/// bound to port 0 or an outgoing connection cannot take one between the check and the
/// service's bind.
const TEST_PORTS: std::ops::Range<u32> = 20_000..32_000;

/// A free TCP port on loopback, for a service that must know the others' ports before they
/// start (the distributed mode). Each call in this process gives another port, from an offset
/// of its own, so neither parallel tests nor other test processes pick the same one.
pub fn free_port() -> u16 {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU32> = std::sync::OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
        std::sync::atomic::AtomicU32::new(std::process::id().wrapping_mul(7_919) ^ nanos)
    });
    let span = TEST_PORTS.end - TEST_PORTS.start;
    for _ in 0..span {
        let offset = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span;
        let Ok(port) = u16::try_from(TEST_PORTS.start + offset) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on loopback in {TEST_PORTS:?}")
}

/// The platform (one `palisade up` process, or the distributed mode's four) on a data
/// directory of its own, with listeners on free ports.
pub struct Server {
    child: Option<Child>,
    /// The distributed mode's other services (search, graph, scanner), when running.
    peers: Vec<PeerProcess>,
    data_dir: PathBuf,
    config: Option<PathBuf>,
    options: ServerOptions,
    /// Base URL of the gRPC listener.
    pub grpc_url: String,
    /// Base URL of the HTTP listener.
    pub http_url: String,
    /// Base URL of the agent listener (TLS).
    pub agent_url: String,
    /// The distributed mode's other services and their gRPC URLs, e.g. ("search", URL).
    pub peer_urls: Vec<(String, String)>,
    peer_http_urls: Vec<(String, String)>,
    stderr_log: PathBuf,
}

impl Server {
    /// Starts a server on `data_dir` (created if needed).
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with_config(data_dir, None)
    }

    /// Starts a server on `data_dir` with a configuration file.
    pub fn start_with_config(data_dir: &Path, config: Option<&Path>) -> Server {
        Server::start_with_options(data_dir, config, ServerOptions::default())
    }

    /// Starts a server on `data_dir` with a configuration file, run and listening as `options`
    /// say.
    pub fn start_with_options(
        data_dir: &Path,
        config: Option<&Path>,
        options: ServerOptions,
    ) -> Server {
        let mut server = Server {
            child: None,
            peers: Vec::new(),
            data_dir: data_dir.to_path_buf(),
            config: config.map(Path::to_path_buf),
            options,
            grpc_url: String::new(),
            http_url: String::new(),
            agent_url: String::new(),
            peer_urls: Vec::new(),
            peer_http_urls: Vec::new(),
            stderr_log: data_dir.with_extension("stderr.log"),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        if !self.options.distributed {
            let (child, ready) =
                self.start_process("up", self.config.clone(), &self.options.listen.clone());
            self.accept_ready(child, &ready);
            return;
        }
        // The distributed mode: the gateway first (it makes the internal CA the others share),
        // then the services it forwards to, each on a port chosen now.
        let [grpc, http, agent] = self.options.listen.clone();
        let gateway_port = match grpc
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
        {
            Some(0) | None => free_port(),
            Some(port) => port,
        };
        let grpc = grpc
            .rsplit_once(':')
            .map(|(host, _)| format!("{host}:{gateway_port}"))
            .unwrap_or(grpc);
        let peer_ports: Vec<u16> = PEER_SERVICES.iter().map(|_| free_port()).collect();
        self.peer_urls.clear();
        self.peer_http_urls.clear();
        let gateway_listen = [grpc, http, agent];
        let gateway_config = self.distributed_config("gateway", gateway_port, &peer_ports);
        let (child, ready) = self.start_process("gateway", Some(gateway_config), &gateway_listen);
        self.accept_ready(child, &ready);
        for (service, port) in PEER_SERVICES.iter().zip(&peer_ports) {
            let config = self.distributed_config(service, gateway_port, &peer_ports);
            let listen = [
                format!("127.0.0.1:{port}"),
                "127.0.0.1:0".to_string(),
                "127.0.0.1:0".to_string(),
            ];
            let (child, ready) = self.start_process(service, Some(config.clone()), &listen);
            self.peers.push(PeerProcess {
                service: (*service).to_string(),
                child: Some(child),
                config,
                listen,
            });
            let url = ready["grpc_url"].as_str().expect("grpc url").to_string();
            self.peer_urls.push(((*service).to_string(), url));
            let http = ready["http_url"].as_str().expect("http url").to_string();
            self.peer_http_urls.push(((*service).to_string(), http));
        }
        self.wait_until_every_service_serves();
    }

    /// Waits until the gateway reaches every other service: each reports its component
    /// (serving, or degraded by what it holds) through the gateway's status.
    fn wait_until_every_service_serves(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // from where the server runs (inside its network namespace, when it has one)
            let mut command = self.wrapped();
            let output = command
                .args(["status", "--format", "json", "--server", &self.grpc_url])
                .env("PALISADE_TOKEN", self.admin_token())
                .env("PALISADE_CA_FILE", self.ca_file())
                .env_remove("PALISADE_DATA_DIR")
                .output()
                .expect("palisade CLI runs");
            let status: serde_json::Value =
                serde_json::from_slice(&output.stdout).unwrap_or_default();
            let reached = PEER_SERVICES.iter().all(|service| {
                status["components"].as_array().is_some_and(|components| {
                    components.iter().any(|component| {
                        component["name"] == *service
                            && matches!(component["state"].as_str(), Some("serving" | "degraded"))
                    })
                })
            });
            if reached {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the gateway did not reach every service within 30 s:\n{}\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where the process running `service` keeps its data: the test's data directory in the
    /// embedded mode and for the gateway, else a directory beside it.
    pub fn service_data_dir(&self, service: &str) -> PathBuf {
        match (self.options.distributed, service) {
            (false, _) | (true, "up" | "gateway") => self.data_dir.clone(),
            (true, other) => self.data_dir.with_extension(other),
        }
    }

    /// The test's configuration (if any) plus what the distributed mode needs: the peers, the
    /// shared service credential, the gateway's internal CA.
    fn distributed_config(&self, service: &str, gateway_port: u16, peer_ports: &[u16]) -> PathBuf {
        let mut config: toml::Table = match &self.config {
            Some(path) => std::fs::read_to_string(path)
                .expect("the test's configuration")
                .parse()
                .expect("the test's configuration is TOML"),
            None => toml::Table::new(),
        };
        let token_file = self.data_dir.with_extension("service-token");
        if !token_file.exists() {
            let token: String = format!(
                "svc-{:032x}{:016x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_nanos(),
                std::process::id()
            );
            std::fs::write(&token_file, format!("{token}\n")).expect("service token file");
        }
        let mut peers = toml::Table::new();
        peers.insert(
            "gateway".into(),
            format!("https://127.0.0.1:{gateway_port}").into(),
        );
        for (name, port) in PEER_SERVICES.iter().zip(peer_ports) {
            peers.insert((*name).into(), format!("https://127.0.0.1:{port}").into());
        }
        peers.insert(
            "service_token_file".into(),
            token_file.display().to_string().into(),
        );
        config.insert("peers".into(), peers.into());
        config.insert(
            "pki_dir".into(),
            self.data_dir.join("pki").display().to_string().into(),
        );
        let path = self.data_dir.with_extension(format!("{service}.toml"));
        std::fs::write(&path, toml::to_string(&config).expect("TOML")).expect("config file");
        path
    }

    /// Starts `palisade up` (`service` "up") or `palisade serve SERVICE` and waits for its
    /// ready line.
    fn start_process(
        &self,
        service: &str,
        config: Option<PathBuf>,
        listen: &[String; 3],
    ) -> (Child, serde_json::Value) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_log)
            .expect("server log file");
        let mut command = self.wrapped();
        match service {
            "up" => command.arg("up"),
            other => command.args(["serve", other]),
        };
        let [grpc, http, agent] = listen;
        command
            .arg("--data-dir")
            .arg(self.service_data_dir(service))
            .args(["--grpc-listen", grpc, "--http-listen", http])
            .args(["--agent-listen", agent])
            .env_remove("PALISADE_CONFIG")
            .env("PALISADE_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(config) = &config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("palisade {service} does not start: {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = sender.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let ready = match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(error) => {
                let _ = child.kill();
                let how = match error {
                    std::sync::mpsc::RecvTimeoutError::Timeout => {
                        "did not become ready within 60 s".to_string()
                    }
                    std::sync::mpsc::RecvTimeoutError::Disconnected => format!(
                        "ended before it was ready ({})",
                        child
                            .wait()
                            .map_or_else(|error| error.to_string(), |status| status.to_string())
                    ),
                };
                panic!(
                    "palisade {service} {how}; the servers' stderr:\n{}",
                    self.stderr()
                );
            }
        };
        let ready: serde_json::Value = serde_json::from_str(&ready)
            .unwrap_or_else(|error| panic!("ready line {ready:?}: {error}"));
        (child, ready)
    }

    /// The palisade binary, run under the server's wrapper (e.g. `ip netns exec NAME`).
    fn wrapped(&self) -> Command {
        match self.options.wrapper.split_first() {
            Some((program, arguments)) => {
                let mut command = Command::new(program);
                command.args(arguments).arg(palisade_binary());
                command
            }
            None => Command::new(palisade_binary()),
        }
    }

    fn accept_ready(&mut self, child: Child, ready: &serde_json::Value) {
        self.grpc_url = ready["grpc_url"].as_str().expect("grpc url").to_string();
        self.http_url = ready["http_url"].as_str().expect("http url").to_string();
        self.agent_url = format!(
            "https://{}",
            ready["agent"].as_str().expect("agent address")
        );
        self.child = Some(child);
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The internal CA's certificate, which verifies the listeners' certificates.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir.join("pki").join("ca.pem")
    }

    /// A channel to the gRPC listener, verifying its certificate with the server's CA.
    pub async fn channel(&self) -> tonic::transport::Channel {
        let mut endpoint =
            tonic::transport::Endpoint::from_shared(self.grpc_url.clone()).expect("grpc url");
        if self.grpc_url.starts_with("https://") {
            let pem = std::fs::read_to_string(self.ca_file()).expect("the server's CA");
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem));
            endpoint = endpoint.tls_config(tls).expect("tls");
        }
        endpoint.connect().await.expect("connect to the server")
    }

    /// The admin token written on first start.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("admin token exists after start")
            .trim()
            .to_string()
    }

    /// Everything the server wrote to stderr so far (all runs).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Kills the processes with SIGKILL: no shutdown code runs.
    pub fn kill_hard(&mut self) {
        let peers = self.peers.drain(..).filter_map(|peer| peer.child);
        for mut child in self.child.take().into_iter().chain(peers) {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// Kills one service of the distributed mode (search, graph, scanner) with SIGKILL.
    pub fn kill_service_hard(&mut self, service: &str) {
        let peer = self.peer_mut(service);
        let mut child = peer.child.take().expect("the service is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// Starts a killed service of the distributed mode again, on its port and data directory.
    pub fn restart_service(&mut self, service: &str) {
        let peer = self.peer_mut(service);
        assert!(peer.child.is_none(), "stop {service} before restarting it");
        let (config, listen) = (peer.config.clone(), peer.listen.clone());
        let (child, ready) = self.start_process(service, Some(config), &listen);
        self.peer_mut(service).child = Some(child);
        let http = ready["http_url"].as_str().expect("http url").to_string();
        for (name, url) in &mut self.peer_http_urls {
            if name == service {
                *url = http.clone();
            }
        }
    }

    /// The HTTP URL (/metrics, /healthz) of the process running `service` (search, graph,
    /// scanner, gateway): the one process of the embedded mode, or the service's own.
    pub fn http_url_of(&self, service: &str) -> String {
        self.peer_http_urls
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, url)| url.clone())
            .unwrap_or_else(|| self.http_url.clone())
    }

    fn peer_mut(&mut self, service: &str) -> &mut PeerProcess {
        assert!(
            self.options.distributed,
            "{service} is a process of its own only in the distributed mode"
        );
        self.peers
            .iter_mut()
            .find(|peer| peer.service == service)
            .unwrap_or_else(|| panic!("no service {service}; services: search, graph, scanner"))
    }

    /// The gRPC URL of a service of the distributed mode.
    pub fn service_url(&self, service: &str) -> String {
        self.peer_urls
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, url)| url.clone())
            .unwrap_or_else(|| panic!("no service {service} is running distributed"))
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status (of the gateway, in
    /// the distributed mode, after the other services stopped cleanly).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let peers = std::mem::take(&mut self.peers);
        for peer in peers.into_iter().rev().filter_map(|peer| peer.child) {
            let status = self.terminate_child(peer);
            assert!(
                status.success(),
                "a service exited with {status} at SIGTERM; stderr:\n{}",
                self.stderr()
            );
        }
        let child = self.child.take().expect("server is running");
        self.terminate_child(child)
    }

    fn terminate_child(&self, mut child: Child) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill command");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the server did not exit within 60 s of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data directories (new ports).
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none() && self.peers.is_empty(),
            "stop the server before restarting it"
        );
        self.spawn();
    }

    /// Whether the process (the gateway, in the distributed mode) is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("wait").is_none(),
            None => false,
        }
    }

    /// Runs the palisade CLI against this server with its admin token; returns the output.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(palisade_binary())
            .args(args)
            .args(["--server", &self.grpc_url])
            .env("PALISADE_TOKEN", self.admin_token())
            .env("PALISADE_CA_FILE", self.ca_file())
            .env_remove("PALISADE_DATA_DIR")
            .output()
            .expect("palisade CLI runs")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let peers = self.peers.drain(..).filter_map(|peer| peer.child);
        for mut child in self.child.take().into_iter().chain(peers) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process that is killed when dropped, so a failing test leaves nothing running.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    /// The process.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child is guarded until into_inner")
    }

    /// Stops guarding: the caller waits for the process itself.
    pub fn into_inner(mut self) -> Child {
        self.0.take().expect("child is guarded until into_inner")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
