//! Configuration: zero-config defaults, an optional TOML file, then overrides from the command
//! line. The binary declares every override flag with a `PALISADE_*` environment variable, so
//! the order of precedence is defaults < file < environment < flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};

mod notify;
pub use notify::{NotifyConfig, NotifyKind, NotifyTarget, SYSLOG_FACILITIES, SyslogTransport};

/// Default gRPC listener: loopback only, so a first start exposes nothing.
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:7400";
/// Default HTTP listener (metrics, webhooks, console).
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:7401";
/// Default agent listener (TLS, client certificates): loopback only until configured.
pub const DEFAULT_AGENT_LISTEN: &str = "127.0.0.1:7402";
/// Default URL clients use to reach the server.
pub const DEFAULT_SERVER_URL: &str = "https://127.0.0.1:7400";

/// The whole configuration of a Palisade process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded storage (sled, tantivy) and the admin token live.
    pub data_dir: PathBuf,
    /// Address of the gRPC listener.
    pub grpc_listen: SocketAddr,
    /// Address of the HTTP listener (/metrics, /healthz, webhooks).
    pub http_listen: SocketAddr,
    /// Address of the agent listener: TLS with a certificate of Palisade's internal CA;
    /// agents and audit watchers enroll there and then present their client certificates.
    pub agent_listen: SocketAddr,
    pub enrollment: EnrollmentConfig,
    /// TLS of the gRPC and HTTP listeners (the agent listener always speaks TLS).
    pub tls: TlsConfig,
    pub log: LogConfig,
    pub limits: Limits,
    pub search: SearchConfig,
    pub scanner: ScannerConfig,
    pub graph: GraphConfig,
    /// Alert notifications (`[[notify.targets]]`).
    pub notify: NotifyConfig,
    pub agents: AgentsConfig,
    /// The internal CA's directory (ca.pem, ca.key) [default: DATA_DIR/pki]. Processes of the
    /// distributed mode on one machine may share one, so each trusts the others' listeners.
    pub pki_dir: Option<PathBuf>,
    /// Where the services of the distributed mode (`palisade serve`) reach each other.
    pub peers: PeersConfig,
    /// The audit-log watcher run by `palisade serve audit`.
    pub audit_watch: AuditWatchConfig,
}

/// The services of the distributed mode, each reached over gRPC. Every `palisade serve` process
/// reads the same section; a service ignores the entries it does not call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PeersConfig {
    /// The gateway's gRPC URL: the durable log the other services read and append to.
    pub gateway: Option<String>,
    /// The search service's gRPC URL.
    pub search: Option<String>,
    /// The graph service's gRPC URL.
    pub graph: Option<String>,
    /// The scanner service's gRPC URL.
    pub scanner: Option<String>,
    /// A file holding the internal credential the services present to each other (one line of
    /// at least 32 characters, the same file for every service; keep it mode 0600).
    pub service_token_file: Option<PathBuf>,
    /// CA certificate (PEM) that verifies the peers' listeners [default: the internal CA's
    /// ca.pem when the peers' certificates are self-signed by it, else the system roots].
    pub ca_file: Option<PathBuf>,
}

/// `palisade serve audit`: the options of `palisade audit watch`, from the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuditWatchConfig {
    /// The gateway's agent listener URL [default: the URL in the credentials].
    pub server: Option<String>,
    /// CA certificate (PEM) that verifies the gateway.
    pub ca_file: Option<PathBuf>,
    /// Enrolled credentials directory (`palisade enroll --out DIR`).
    pub credentials: Option<PathBuf>,
    /// Address of the webhook the API server posts audit events to.
    pub webhook_listen: Option<SocketAddr>,
    /// Audit log files to follow.
    pub files: Vec<PathBuf>,
    /// Rule files (Falco's k8s_audit syntax) [default: the built-in rules].
    pub rules: Vec<PathBuf>,
    /// Where file offsets and the anomaly baseline are kept.
    pub state_dir: Option<PathBuf>,
    /// Where alerts wait until the gateway acknowledges them.
    pub spool_dir: Option<PathBuf>,
    /// Flag actions never seen for a user during the learning period.
    pub anomaly: bool,
    /// This watcher's id [default: the host name].
    pub agent_id: Option<String>,
}

/// TLS of the API listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub mode: TlsMode,
    /// Certificate chain (PEM) for mode "files".
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) for mode "files".
    pub key_file: Option<PathBuf>,
    /// Extra host names and IP addresses for the self-signed certificate (localhost, the
    /// loopback addresses, the host name and the listen addresses are always in it).
    pub server_names: Vec<String>,
}

/// Where the API listeners' certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// A certificate of Palisade's internal CA (DATA_DIR/pki/ca.pem, which clients on this
    /// machine trust by themselves; elsewhere pass it with --ca-file).
    #[default]
    SelfSigned,
    /// The certificate and key in cert_file and key_file.
    Files,
    /// Plain text: only behind a TLS-terminating proxy, or on loopback for development.
    Off,
}

/// Cluster enrollment: what bundles tell agents, and how long tokens and certificates last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollmentConfig {
    /// The URL agents use to reach the agent listener, written into enrollment bundles
    /// [default: https:// and the agent listener's address].
    pub agent_url: Option<String>,
    /// Extra host names and IP addresses for the agent listener's certificate. Agents verify
    /// the fixed name gateway.palisade.internal, so these are only needed for other clients.
    pub server_names: Vec<String>,
    /// How long an enrollment token stays valid, in seconds.
    pub token_ttl_seconds: u64,
    /// Lifetime of agent certificates, in days; agents renew when a third is left.
    pub certificate_validity_days: u64,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        EnrollmentConfig {
            agent_url: None,
            server_names: Vec::new(),
            token_ttl_seconds: 24 * 3600,
            certificate_validity_days: 30,
        }
    }
}

/// The agent stream (node agents and audit watchers connected to the gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// How often (seconds) an idle agent sends a heartbeat; three missed intervals make it dead.
    pub heartbeat_seconds: u64,
    /// Unacknowledged batches an agent may have in flight.
    pub window: u32,
    /// Largest alert batch accepted, in encoded bytes.
    pub max_batch_bytes: u32,
    /// Alerts per second each tenant may send over agent streams, summed over its agents;
    /// past it agents are told to wait (Throttle) and keep their alerts spooled.
    pub tenant_alerts_per_second: u32,
    /// Alerts a tenant may send at once above its rate (the token bucket's depth).
    pub tenant_alert_burst: u32,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            heartbeat_seconds: 15,
            window: 8,
            max_batch_bytes: 4 << 20,
            tenant_alerts_per_second: 50_000,
            tenant_alert_burst: 100_000,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. "info" or "palisade_search=debug,info".
    pub level: String,
}

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}: expected human or json"
            )),
        }
    }
}

/// Bounds on what a single request may carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most alerts accepted in one PublishAlerts call.
    pub max_alerts_per_batch: usize,
}

/// The search service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Memory budget of the index writer, in bytes.
    pub writer_memory_bytes: usize,
    /// Threads answering queries.
    pub searcher_threads: usize,
    /// Most hits returned in one page.
    pub max_page_size: u32,
    /// Memory for term bitsets and segment time summaries kept between queries (the filter
    /// cache), in bytes; 0 keeps nothing.
    pub filter_cache_bytes: usize,
}

/// The image scanner of the server (scans requested over the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScannerConfig {
    /// The vulnerability database [default: DATA_DIR/vulndb], filled by `palisade vulndb
    /// import`; without one, scans list packages and raise no findings.
    pub vulndb: Option<PathBuf>,
    /// Directories under which API callers may name local images (`oci:`, `oci-archive:`,
    /// `docker-archive:`, `dir:`). Empty by default: a caller cannot make the server read its
    /// own files; registry and containerd images are always allowed.
    pub local_roots: Vec<PathBuf>,
    /// Registries (host:port) spoken to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Credentials for private registries, each sent only to its own host.
    pub registries: Vec<RegistryLogin>,
    /// containerd socket for `containerd:` images.
    pub containerd_socket: PathBuf,
    /// containerd namespace (Kubernetes nodes use `k8s.io`).
    pub containerd_namespace: String,
    /// Scans run at once; further requests wait.
    pub max_concurrent_scans: usize,
    /// Requests that may wait for a scan slot; beyond this they are refused as busy.
    pub max_waiting_scans: usize,
    /// How often (seconds) the database is checked for a new import, after which every scanned
    /// image is matched again from its cached SBOM.
    pub rematch_check_seconds: u64,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            vulndb: None,
            local_roots: Vec::new(),
            insecure_registries: Vec::new(),
            registries: Vec::new(),
            containerd_socket: PathBuf::from("/run/containerd/containerd.sock"),
            containerd_namespace: "k8s.io".to_string(),
            max_concurrent_scans: 2,
            max_waiting_scans: 32,
            rematch_check_seconds: 30,
        }
    }
}

/// A login to a private registry. The password lives in a file of its own (a mounted
/// Kubernetes secret, a file readable by the server only), read at every pull so a rotated
/// password is picked up without a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryLogin {
    /// Registry host (and port) as image references name it, e.g. `registry.example.com:5000`.
    pub host: String,
    /// User name.
    pub username: String,
    /// File holding the password or token (surrounding whitespace ignored).
    pub password_file: PathBuf,
}

/// The graph service: where its inventory comes from, and what it asks the scanner for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// Clusters whose inventory the graph reads: live through a kubeconfig context, or from
    /// manifests and `kubectl get -o json` dumps on disk. Empty by default.
    pub sources: Vec<InventorySource>,
    /// Scan every image the inventory runs (registry images, through the scanner service).
    pub scan_images: bool,
    /// How long (seconds) an image whose scan failed waits before it is tried again.
    pub scan_retry_seconds: u64,
    /// How long (seconds) a scanned image waits before it is asked for again: a tag moved to
    /// a new digest is scanned, an unchanged one answers from the scanner's cache.
    pub rescan_seconds: u64,
    /// Runtime and audit alerts older than this many days no longer count on the graph.
    pub alert_window_days: u32,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            sources: Vec::new(),
            scan_images: true,
            scan_retry_seconds: 3600,
            rescan_seconds: 86_400,
            alert_window_days: 7,
        }
    }
}

/// One cluster's inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySource {
    /// Tenant the cluster belongs to [default: "default"].
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Cluster id in entity ids and findings [default: the context name, or the path's file
    /// name].
    #[serde(default)]
    pub cluster: Option<String>,
    /// A kubeconfig whose context is watched live (list, then watch).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context [default: its current context].
    #[serde(default)]
    pub context: Option<String>,
    /// A manifest file or directory, or a `kubectl get -o json` dump, read at start.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

fn default_tenant() -> String {
    crate::ids::DEFAULT_TENANT.to_string()
}

impl InventorySource {
    /// The cluster id this source fills.
    pub fn cluster_id(&self) -> String {
        if let Some(cluster) = &self.cluster {
            return cluster.clone();
        }
        if let Some(context) = &self.context {
            return context.clone();
        }
        self.path
            .as_deref()
            .and_then(Path::file_stem)
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "default".to_string())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            grpc_listen: parse_default_addr(DEFAULT_GRPC_LISTEN),
            http_listen: parse_default_addr(DEFAULT_HTTP_LISTEN),
            agent_listen: parse_default_addr(DEFAULT_AGENT_LISTEN),
            enrollment: EnrollmentConfig::default(),
            tls: TlsConfig::default(),
            log: LogConfig::default(),
            limits: Limits::default(),
            search: SearchConfig::default(),
            scanner: ScannerConfig::default(),
            graph: GraphConfig::default(),
            notify: NotifyConfig::default(),
            agents: AgentsConfig::default(),
            pki_dir: None,
            peers: PeersConfig::default(),
            audit_watch: AuditWatchConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".to_string(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 16 * 1024 * 1024,
            max_alerts_per_batch: 10_000,
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            writer_memory_bytes: 64 * 1024 * 1024,
            searcher_threads: 2,
            max_page_size: 1_000,
            filter_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

fn parse_default_addr(text: &str) -> SocketAddr {
    // The defaults are literals checked by a unit test.
    text.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// `$HOME/.local/share/palisade`, or `./palisade-data` without a home directory.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(".local/share/palisade"),
        _ => PathBuf::from("palisade-data"),
    }
}

/// Values given on the command line (or through their environment variables); each one set
/// replaces the file's.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    pub data_dir: Option<PathBuf>,
    pub grpc_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub agent_listen: Option<SocketAddr>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
}

impl Config {
    /// Defaults, replaced by the TOML file if one is given.
    pub fn load(file: Option<&Path>) -> CoreResult<Config> {
        let Some(path) = file else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| CoreError::ConfigParse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses a TOML document; unknown keys are errors so that typos do not pass silently.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|error| error.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// The internal CA's directory: `pki_dir`, or DATA_DIR/pki.
    pub fn pki_dir(&self) -> PathBuf {
        self.pki_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("pki"))
    }

    /// Applies command-line overrides and checks the result.
    pub fn with_overrides(mut self, overrides: ConfigOverrides) -> CoreResult<Config> {
        if let Some(data_dir) = overrides.data_dir {
            self.data_dir = data_dir;
        }
        if let Some(grpc_listen) = overrides.grpc_listen {
            self.grpc_listen = grpc_listen;
        }
        if let Some(http_listen) = overrides.http_listen {
            self.http_listen = http_listen;
        }
        if let Some(agent_listen) = overrides.agent_listen {
            self.agent_listen = agent_listen;
        }
        if let Some(log_format) = overrides.log_format {
            self.log.format = log_format;
        }
        if let Some(log_level) = overrides.log_level {
            self.log.level = log_level;
        }
        self.validate().map_err(CoreError::ConfigInvalid)?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), String> {
        if self.limits.max_message_bytes < 1024 {
            return Err("limits.max_message_bytes must be at least 1024".into());
        }
        if self.limits.max_alerts_per_batch == 0 {
            return Err("limits.max_alerts_per_batch must be at least 1".into());
        }
        if self.search.writer_memory_bytes < 15 * 1024 * 1024 {
            return Err(
                "search.writer_memory_bytes must be at least 15 MiB (tantivy's minimum)".into(),
            );
        }
        let has_files = self.tls.cert_file.is_some() && self.tls.key_file.is_some();
        if self.tls.mode == TlsMode::Files && !has_files {
            return Err("tls.mode = \"files\" needs tls.cert_file and tls.key_file".into());
        }
        for (name, url) in [
            ("gateway", &self.peers.gateway),
            ("search", &self.peers.search),
            ("graph", &self.peers.graph),
            ("scanner", &self.peers.scanner),
        ] {
            if let Some(url) = url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(format!(
                    "peers.{name} {url:?} must be an http:// or https:// URL"
                ));
            }
        }
        if self.enrollment.token_ttl_seconds == 0 {
            return Err("enrollment.token_ttl_seconds must be at least 1".into());
        }
        if self.enrollment.certificate_validity_days == 0 {
            return Err("enrollment.certificate_validity_days must be at least 1".into());
        }
        if let Some(url) = &self.enrollment.agent_url
            && !url.starts_with("https://")
        {
            return Err(format!(
                "enrollment.agent_url {url:?} must start with https:// (the agent listener speaks TLS only)"
            ));
        }
        if self.search.searcher_threads == 0 {
            return Err("search.searcher_threads must be at least 1".into());
        }
        if self.scanner.max_concurrent_scans == 0 {
            return Err("scanner.max_concurrent_scans must be at least 1".into());
        }
        if self.scanner.rematch_check_seconds == 0 {
            return Err("scanner.rematch_check_seconds must be at least 1".into());
        }
        if let Some(login) = self.scanner.registries.iter().find(|login| {
            login.host.is_empty() || login.host.contains('/') || !login.password_file.is_absolute()
        }) {
            return Err(format!(
                "scanner.registries: {:?} needs a host without a path and an absolute password_file",
                login.host
            ));
        }
        if let Some(root) = self
            .scanner
            .local_roots
            .iter()
            .find(|root| !root.is_absolute())
        {
            return Err(format!(
                "scanner.local_roots: {} is not an absolute path",
                root.display()
            ));
        }
        self.validate_graph()?;
        self.notify.validate()?;
        self.validate_agents()?;
        if self.grpc_listen == self.http_listen && self.grpc_listen.port() != 0 {
            return Err(format!(
                "grpc_listen and http_listen are both {}; they need different ports",
                self.grpc_listen
            ));
        }
        Ok(())
    }

    fn validate_agents(&self) -> Result<(), String> {
        let agents = &self.agents;
        if agents.heartbeat_seconds == 0 || agents.window == 0 {
            return Err("agents.heartbeat_seconds and agents.window must be at least 1".into());
        }
        if agents.max_batch_bytes < 1024 {
            return Err("agents.max_batch_bytes must be at least 1024".into());
        }
        if agents.tenant_alerts_per_second == 0 {
            return Err("agents.tenant_alerts_per_second must be at least 1".into());
        }
        if agents.tenant_alert_burst < agents.tenant_alerts_per_second {
            return Err(format!(
                "agents.tenant_alert_burst ({}) must be at least agents.tenant_alerts_per_second ({})",
                agents.tenant_alert_burst, agents.tenant_alerts_per_second
            ));
        }
        Ok(())
    }

    fn validate_graph(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (index, source) in self.graph.sources.iter().enumerate() {
            let name = format!("graph.sources[{index}]");
            match (&source.kubeconfig, &source.path) {
                (Some(_), Some(_)) => {
                    return Err(format!("{name}: give either kubeconfig or path, not both"));
                }
                (None, None) => return Err(format!("{name}: needs kubeconfig or path")),
                (None, Some(_)) if source.context.is_some() => {
                    return Err(format!("{name}: context only goes with kubeconfig"));
                }
                _ => {}
            }
            if source.kubeconfig.is_some() && source.cluster.is_none() && source.context.is_none() {
                return Err(format!(
                    "{name}: name the cluster (cluster = \"...\") or the context of the kubeconfig"
                ));
            }
            crate::ids::TenantId::new(source.tenant.clone())
                .map_err(|error| format!("{name}: {error}"))?;
            let key = (source.tenant.clone(), source.cluster_id());
            if !seen.insert(key.clone()) {
                return Err(format!(
                    "{name}: cluster {:?} of tenant {:?} has another source already",
                    key.1, key.0
                ));
            }
        }
        if self.graph.scan_retry_seconds == 0 || self.graph.rescan_seconds == 0 {
            return Err(
                "graph.scan_retry_seconds and graph.rescan_seconds must be at least 1".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_and_validate() {
        let config = Config::default();
        assert_eq!(config.grpc_listen.to_string(), DEFAULT_GRPC_LISTEN);
        assert_eq!(config.http_listen.to_string(), DEFAULT_HTTP_LISTEN);
        assert_eq!(config.agent_listen.to_string(), DEFAULT_AGENT_LISTEN);
        assert!(config.grpc_listen.ip().is_loopback());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn file_values_replace_defaults_and_flags_replace_file() {
        let config = Config::from_toml(
            r#"
            data_dir = "/var/lib/palisade"
            grpc_listen = "0.0.0.0:9000"
            [log]
            format = "json"
            "#,
        )
        .expect("valid file");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/palisade"));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.http_listen.to_string(), DEFAULT_HTTP_LISTEN);

        let overridden = config
            .with_overrides(ConfigOverrides {
                grpc_listen: Some("127.0.0.1:9100".parse().expect("addr")),
                ..Default::default()
            })
            .expect("valid overrides");
        assert_eq!(overridden.grpc_listen.to_string(), "127.0.0.1:9100");
        assert_eq!(overridden.data_dir, PathBuf::from("/var/lib/palisade"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_name_them() {
        let error = Config::from_toml("grpc_listn = \"x\"").expect_err("typo must fail");
        assert!(error.contains("grpc_listn"), "{error}");
        let error =
            Config::from_toml("[limits]\nmax_alerts_per_batch = 0").expect_err("zero batch");
        assert!(error.contains("max_alerts_per_batch"), "{error}");
        let error =
            Config::from_toml("grpc_listen = \"127.0.0.1:1\"\nhttp_listen = \"127.0.0.1:1\"")
                .expect_err("same port");
        assert!(error.contains("different ports"), "{error}");
    }

    #[test]
    fn agent_stream_limits_have_defaults_and_refuse_a_burst_below_the_rate() {
        let config =
            Config::from_toml("[agents]\ntenant_alerts_per_second = 500\ntenant_alert_burst = 800")
                .expect("valid agents section");
        assert_eq!(config.agents.tenant_alerts_per_second, 500);
        assert_eq!(config.agents.heartbeat_seconds, 15);
        let error =
            Config::from_toml("[agents]\ntenant_alerts_per_second = 500\ntenant_alert_burst = 10")
                .expect_err("burst below rate");
        assert!(error.contains("agents.tenant_alert_burst"), "{error}");
        let error = Config::from_toml("[agents]\nheartbeat_seconds = 0").expect_err("zero");
        assert!(error.contains("agents.heartbeat_seconds"), "{error}");
    }

    #[test]
    fn graph_sources_need_one_origin_and_distinct_clusters() {
        let config = Config::from_toml(
            r#"
            [[graph.sources]]
            kubeconfig = "/etc/kube/config"
            context = "prod-eu"
            [[graph.sources]]
            tenant = "acme"
            path = "/srv/manifests/staging"
            "#,
        )
        .expect("valid sources");
        assert_eq!(config.graph.sources[0].tenant, "default");
        assert_eq!(config.graph.sources[0].cluster_id(), "prod-eu");
        assert_eq!(config.graph.sources[1].cluster_id(), "staging");
        assert!(config.graph.scan_images);

        let both = "[[graph.sources]]\nkubeconfig = \"/k\"\ncontext = \"c\"\npath = \"/p\"";
        let error = Config::from_toml(both).expect_err("two origins");
        assert!(error.contains("graph.sources[0]"), "{error}");
        let error = Config::from_toml("[[graph.sources]]\ncluster = \"x\"").expect_err("none");
        assert!(error.contains("needs kubeconfig or path"), "{error}");
        let unnamed = "[[graph.sources]]\nkubeconfig = \"/k\"";
        let error = Config::from_toml(unnamed).expect_err("unnamed live cluster");
        assert!(error.contains("name the cluster"), "{error}");
        let twice = "[[graph.sources]]\npath = \"/a/x\"\n[[graph.sources]]\npath = \"/b/x\"";
        let error = Config::from_toml(twice).expect_err("same cluster twice");
        assert!(error.contains("graph.sources[1]"), "{error}");
    }
}
