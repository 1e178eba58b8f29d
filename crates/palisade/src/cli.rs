//! The command line. Every flag that configures the server can also be set with a `PALISADE_*`
//! environment variable; flags win over the environment, which wins over the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use palisade_core::config::{DEFAULT_SERVER_URL, LogFormat};

/// Palisade: runtime threat detection, Kubernetes audit-log detection, image scanning, a
/// security graph with attack paths, and search over every alert and finding, for fleets of
/// Kubernetes clusters.
///
/// Start everything on one machine with `palisade up`; then use the client commands
/// (`alerts`, `search`, `status`, `admin`) against it. The first start writes an admin token to
/// DATA_DIR/admin.token; client commands read it from there when no --token is given.
#[derive(Debug, Parser)]
#[command(
    name = "palisade",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "PALISADE_LOG_FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. "info" or "palisade_search=debug,info".
    #[arg(long, global = true, env = "PALISADE_LOG_LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in one process on the embedded storage (sled + tantivy).
    Up(UpArgs),
    /// Run one service of the distributed mode as its own process: the gateway (credentials,
    /// the durable log, agents, admin; forwards the other APIs), search, graph, scanner, or the
    /// audit-log watcher ([audit_watch] of the configuration). The services reach each other as
    /// [peers] of the configuration file says, with the internal service credential.
    Serve(ServeArgs),
    /// Report the health of each component of a running server.
    Status(StatusArgs),
    /// Send alerts to the server, or read one back.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Search alerts and findings: free text, field:value (Falco field names), phrases,
    /// wildcards, AND/OR/NOT, ranges, facets, live tail; reindex, saved searches, retention.
    Search(SearchArgs),
    /// Manage tenants, API keys and clusters; read the audit log of admin actions.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Alert notification targets of your tenant ([[notify.targets]]): their delivery
    /// numbers, the alerts they did not take (dead letters), and sending those again.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Exchange a cluster's one-time enrollment token for its credential (a client
    /// certificate of Palisade's CA), which its agents and audit watcher then use.
    Enroll(EnrollArgs),
    /// Run the node agent: eBPF runtime detection with Falco-compatible rules, alerts streamed
    /// to the server (spooled on disk until acknowledged) or printed as Falco JSON.
    Agent(palisade_agent::AgentArgs),
    /// Scan container images for packages and vulnerabilities.
    #[command(subcommand)]
    Scan(ScanCommand),
    /// Detect threats in Kubernetes audit logs (webhook, files, AKS/EKS/GKE exports).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Security graph, attack paths and the explorer over manifests and cluster snapshots.
    #[command(subcommand)]
    Graph(GraphCommand),
    /// Import and inspect the vulnerability database (OSV, Alpine secdb, RustSec, Debian, VEX).
    #[command(subcommand)]
    Vulndb(VulndbCommand),
    /// Validate and test detection rules (Falco-compatible rules files).
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Configuration file (TOML); flags and PALISADE_* variables override it.
    #[arg(long, env = "PALISADE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ~/.local/share/palisade].
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listener [default: 127.0.0.1:7400]. Port 0 picks a free port (printed at start).
    #[arg(long, env = "PALISADE_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,
    /// HTTP listener for /metrics and /healthz [default: 127.0.0.1:7401].
    #[arg(long, env = "PALISADE_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Agent listener: TLS, where agents enroll and stream with their client certificates
    /// [default: 127.0.0.1:7402].
    #[arg(long, env = "PALISADE_AGENT_LISTEN")]
    pub agent_listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The service this process runs.
    #[arg(value_enum)]
    pub service: ServeService,
    #[command(flatten)]
    pub up: UpArgs,
}

/// A service of the distributed mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServeService {
    /// Credentials, tenants, the durable log, the agent listener, alerts, admin and
    /// notifications; authenticates every call and forwards search, graph and scanner calls.
    Gateway,
    /// The search index, on a replica of the gateway's log.
    Search,
    /// The security graph and attack paths, on a replica of the gateway's log.
    Graph,
    /// The image scanner; findings go to the gateway's log.
    Scanner,
    /// The Kubernetes audit-log watcher, configured by [audit_watch].
    Audit,
}

/// How to reach and authenticate to a server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server URL.
    #[arg(long, env = "PALISADE_SERVER", default_value = DEFAULT_SERVER_URL)]
    pub server: String,
    /// API token [default: the admin token in the data directory].
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory to read the admin token from when no token is given.
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// CA certificate (PEM) to verify an https:// server with [default: the internal CA in
    /// the data directory when present, else the system's roots].
    #[arg(long, env = "PALISADE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Your tenant's notification targets: kind, lag, delivered, dead letters, last error.
    Targets(NotifyTargetsArgs),
    /// The dead letters of a target, oldest first: sequence, alert, rule, attempts, error.
    DeadLetters(DeadLettersArgs),
    /// Send dead letters to their target again (one attempt each); those delivered are
    /// removed, the others stay with the new error. Needs an admin key.
    Resend(ResendArgs),
}

#[derive(Debug, Args)]
pub struct NotifyTargetsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DeadLettersArgs {
    /// The target's name.
    pub target: String,
    /// Start after this sequence (the `next_after` of the previous page).
    #[arg(long)]
    pub after: Option<u64>,
    /// At most this many letters (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["sequence", "all"])))]
pub struct ResendArgs {
    /// The target's name.
    pub target: String,
    /// A dead letter to send again (repeat for several).
    #[arg(long)]
    pub sequence: Vec<u64>,
    /// Send every kept dead letter of the target again.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Import alerts in Falco's JSON output format (one JSON object per line; "-" reads stdin).
    ///
    /// Malformed lines are reported with their file and line number and skipped; the rest is
    /// imported. Alerts get stable ids, so importing the same file twice stores each alert once.
    Import(ImportArgs),
    /// Show one alert by id.
    Get(GetAlertArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Files of Falco JSON alerts.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Alerts sent per call.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct GetAlertArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub id: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    /// Newest first.
    Time,
    /// Oldest first.
    TimeAsc,
    /// Most severe first.
    Severity,
    /// Best match first.
    Relevance,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SearchArgs {
    #[command(subcommand)]
    pub action: Option<SearchCommand>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// The query, e.g. `proc.name:bash AND k8s.ns.name:prod`, `"shell in container"`,
    /// `priority:>=warning`, `time:[2026-11-01 TO now]`, `image:nginx*`, `*`.
    #[arg(default_value = "*")]
    pub query: String,
    /// Most hits to return.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only records newer than this (e.g. 15m, 24h, 7d).
    #[arg(long)]
    pub since: Option<humantime::Duration>,
    #[arg(long, value_enum, default_value_t = SortArg::Time)]
    pub sort: SortArg,
    /// Cursor of the next page, from a previous result.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Facets to count, comma-separated: rule,k8s.ns.name:20,time:1h.
    #[arg(long, value_delimiter = ',')]
    pub facets: Vec<String>,
    /// Top values per facet.
    #[arg(long, default_value_t = 10)]
    pub facet_size: u32,
    /// Mark matched terms in the output (<b></b> in JSON).
    #[arg(long)]
    pub highlight: bool,
    /// Run a saved search (AND-ed with the query).
    #[arg(long)]
    pub saved: Option<String>,
    /// Keep printing new matching records as they arrive, until interrupted.
    #[arg(long)]
    pub follow: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Rebuild the search index from the durable log (your tenant, or --all-tenants).
    Reindex(SearchReindexArgs),
    /// Save a named query: `palisade search save NAME QUERY`.
    Save(SearchSaveArgs),
    /// List saved searches.
    Saved(SearchListArgs),
    /// Delete a saved search.
    Unsave(SearchUnsaveArgs),
    /// Show, or with DAYS set, how many days of records the index keeps (0 keeps all).
    Retention(SearchRetentionArgs),
}

#[derive(Debug, Args)]
pub struct SearchReindexArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Rebuild every tenant's documents (an admin key of the default tenant).
    #[arg(long)]
    pub all_tenants: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SearchSaveArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub name: String,
    pub query: String,
    #[arg(long, value_delimiter = ',')]
    pub facets: Vec<String>,
    #[arg(long, default_value = "")]
    pub description: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SearchListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SearchUnsaveArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SearchRetentionArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Days to keep; omit to show the current setting.
    pub days: Option<u32>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants (needs an admin key of the default tenant).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// API keys of the caller's tenant.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Clusters of the caller's tenant: register (one-time enrollment token), list, revoke.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The audit log of administrative actions of the caller's tenant, newest first.
    AuditLog(AuditLogArgs),
    /// Node agents and audit watchers of the caller's tenant: state (connected, dead after
    /// three missed heartbeats, disconnected), last seen, drops, spool and configuration.
    Agents(AgentsListArgs),
    /// The configuration (rules files, settings) the server pushes to the tenant's agents.
    #[command(subcommand)]
    AgentConfig(AgentConfigCommand),
}

#[derive(Debug, Args)]
pub struct AgentsListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only agents of this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum AgentConfigCommand {
    /// Replace the pushed configuration (needs an admin key); connected agents receive it at
    /// once, the others when they connect. Rules files are loaded in the order given.
    Set(AgentConfigSetArgs),
    /// Show the pushed configuration.
    Show(AgentConfigShowArgs),
}

#[derive(Debug, Args)]
pub struct AgentConfigSetArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Rules files (Falco-compatible YAML), in load order; none leaves each agent with the
    /// rules it was started with.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// A setting as KEY=VALUE (repeatable).
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Only for agents of this cluster [default: every cluster of the tenant without one of
    /// its own].
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct AgentConfigShowArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The configuration of this cluster [default: the tenant's].
    #[arg(long)]
    pub cluster: Option<String>,
    /// Print the rules files' text too.
    #[arg(long)]
    pub rules_text: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Register a cluster and write its enrollment bundle (agent URL, CA certificate and a
    /// one-time token) for `palisade enroll`.
    Register(ClusterTokenArgs),
    /// Issue a new one-time enrollment token for a registered cluster.
    Token(ClusterTokenArgs),
    /// List the clusters with their live credentials and pending tokens.
    List(ClusterListArgs),
    /// Revoke a cluster (every credential and pending token) or one credential of it; agents
    /// using a revoked credential are cut off at once.
    Revoke(ClusterRevokeArgs),
}

#[derive(Debug, Args)]
pub struct ClusterTokenArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Cluster id: lower-case letters, digits and '-', unique in the tenant.
    pub cluster: String,
    /// How long the token works, e.g. 1h or 7d [default: the server's, 24h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub token_ttl: Option<std::time::Duration>,
    /// Write the enrollment bundle here (mode 0600) [default: CLUSTER.enrollment.json].
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ClusterListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ClusterRevokeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub cluster: String,
    /// Revoke only this credential (an id from the server's logs or an agent's identity).
    #[arg(long)]
    pub credential: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct AuditLogArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Most events shown.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Arguments of `palisade enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The enrollment bundle `palisade admin cluster register` wrote.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// Directory for the cluster's credential (key made here, mode 0600); mount it for the
    /// cluster's agents and audit watcher, which renew it into their own.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first admin key (as `api_key` in JSON).
    Create(TenantCreateArgs),
    /// List tenants.
    List(TenantListArgs),
    /// Delete a tenant and its data: every key, cluster credential and token of it stops
    /// working at once; its alerts and findings are erased from the log, and the search index,
    /// graph, notifications, agent registry and audit log drop what they hold of it.
    Delete(TenantCreateArgs),
}

#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Tenant id: lower-case letters, digits and '-'.
    pub name: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct TenantListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    ReadOnly,
    Analyst,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key in the caller's tenant.
    Create(KeyCreateArgs),
    /// List the API keys of the caller's tenant (ids, names, roles; never the keys).
    List(TenantListArgs),
    /// Revoke an API key; calls and streams using it are refused at once.
    Revoke(KeyRevokeArgs),
}

#[derive(Debug, Args)]
pub struct KeyRevokeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The key id (as `key list` shows it).
    pub key_id: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// A name to recognise the key by.
    pub name: String,
    #[arg(long, value_enum, default_value_t = RoleArg::ReadOnly)]
    pub role: RoleArg,
    /// The key stops working after this long, e.g. 90d [default: never].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<std::time::Duration>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum VulndbCommand {
    /// Import vulnerability records: OSV files, directories and osv.dev all.zip archives,
    /// Alpine secdb YAML, RustSec advisories, Debian security tracker data, OpenVEX/CSAF/
    /// CycloneDX VEX. Importing a path again replaces what it imported before.
    Import(VulndbImportArgs),
    /// What the database holds: sources, record counts, import times.
    Status(VulndbStatusArgs),
}

/// Where the vulnerability database is.
#[derive(Debug, Clone, Args)]
pub struct VulndbDbArgs {
    /// Database directory [default: DATA_DIR/vulndb].
    #[arg(long, env = "PALISADE_VULNDB")]
    pub db: Option<PathBuf>,
    /// Data directory whose vulndb/ is used when --db is not given.
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VulndbImportArgs {
    #[command(flatten)]
    pub db: VulndbDbArgs,
    /// Files, directories or archives to import.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VulndbStatusArgs {
    #[command(flatten)]
    pub db: VulndbDbArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rules files: every problem with its file, line, column and rule; exit status 1
    /// when any rule cannot load.
    Check(RulesCheckArgs),
    /// Run audit events through rules: which rules fire on which events, and for --explain
    /// RULE why it does not fire where it does not.
    Test(RulesTestArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormatArg {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RulesCheckArgs {
    /// Rules files, loaded in this order (later files append to or override earlier ones).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = CheckFormatArg::Text)]
    pub format: CheckFormatArg,
    /// Also report lists and macros no rule uses.
    #[arg(long)]
    pub warn_unused: bool,
}

#[derive(Debug, Args)]
pub struct RulesTestArgs {
    /// Rules files [default: Palisade's audit rule pack].
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Event files: JSON lines, EventList, AKS/EKS/GKE exports.
    #[arg(required = true)]
    pub events: Vec<PathBuf>,
    /// Explain, for each event, why this rule does or does not fire.
    #[arg(long)]
    pub explain: Option<String>,
    /// Print each detection's output line.
    #[arg(long)]
    pub show_output: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Run recorded audit events through the rules offline: alerts on stdout (Falco's JSON
    /// format, or a table), a summary on stderr.
    Replay(AuditReplayArgs),
    /// Watch a cluster's audit log (webhook and/or files) and send alerts to the server.
    Watch(Box<AuditWatchArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatchArg {
    /// Every matching rule fires (Palisade's default).
    All,
    /// Only the first matching rule in load order fires (Falco's behaviour).
    First,
}

#[derive(Debug, Args)]
pub struct AuditReplayArgs {
    /// Audit log files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Rules files, in order [default: Palisade's audit rule pack].
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    #[arg(long = "match", value_enum, default_value_t = MatchArg::All)]
    pub match_mode: MatchArg,
    /// Also learn each identity's usual behaviour over the replayed events and alert on new
    /// behaviour.
    #[arg(long)]
    pub anomaly: bool,
    /// Host name put in alerts [default: this host's].
    #[arg(long)]
    pub hostname: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditWatchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The cluster's credential directory from `palisade enroll`: the watcher streams to the
    /// agent listener it names over mutual TLS, with a certificate of its own that it obtains
    /// with this one and keeps in its state directory. Without it, --server and an API key.
    #[arg(long, env = "PALISADE_AUDIT_CREDENTIALS", value_name = "DIR")]
    pub credentials: Option<PathBuf>,
    /// Serve the audit webhook (audit.k8s.io/v1 EventList POSTs to /k8s-audit) on this address.
    #[arg(long, env = "PALISADE_AUDIT_WEBHOOK_LISTEN")]
    pub webhook_listen: Option<SocketAddr>,
    /// Audit log files to tail (JSON lines; rotation and truncation are followed).
    #[arg(long = "file")]
    pub files: Vec<PathBuf>,
    /// Rules files, in order [default: Palisade's audit rule pack]. SIGHUP reloads them; the
    /// running set stays if the new one fails to load.
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Directory for tail offsets and anomaly baselines [default: DATA_DIR/audit-watch].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Learn each identity's usual behaviour and alert on new behaviour.
    #[arg(long)]
    pub anomaly: bool,
    /// Days during which a new identity's behaviour is only learned.
    #[arg(long, default_value_t = 7)]
    pub anomaly_learning_days: u64,
    /// Print alerts as Falco JSON lines on stdout instead of sending them to a server.
    #[arg(long)]
    pub stdout: bool,
    /// Spool directory holding alerts until the server acknowledges them
    /// [default: the state directory's path with "-spool" appended].
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Spool bound in bytes; past it the oldest alerts are evicted (counted and reported).
    #[arg(long, default_value_t = 256 << 20)]
    pub spool_max_bytes: usize,
    /// This watcher's agent id on the agent stream [default: audit/HOSTNAME].
    #[arg(long)]
    pub agent_id: Option<String>,
    #[arg(long = "match", value_enum, default_value_t = MatchArg::All)]
    pub match_mode: MatchArg,
}

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Scan one image: OCI layouts and archives, docker-archive, registries and containerd's
    /// content store. Reports as a table, JSON, SARIF, CycloneDX or SPDX. With --server the
    /// running platform scans it, keeps its findings and re-matches them when the
    /// vulnerability database changes.
    Image(ScanArgs),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The image, in skopeo's syntax: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE,
    /// docker://HOST/REPO:TAG, containerd:REF, dir:ROOTFS.
    pub target: String,
    /// Report format: table, json, sarif, cyclonedx, spdx.
    #[arg(long, default_value = "table")]
    pub format: String,
    #[command(flatten)]
    pub db: VulndbDbArgs,
    /// List packages only, without matching vulnerabilities (no database needed).
    #[arg(long)]
    pub skip_db: bool,
    /// Report only findings at or above this severity (low, medium, high, critical).
    #[arg(long, default_value = "unknown")]
    pub severity: String,
    /// Leave out vulnerabilities without a fixed version.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Exit with this status when any finding passes --severity and --ignore-unfixed (CI
    /// gates); 0 never fails on findings.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exit_code: u8,
    /// Registries (host:port) spoken to over plain HTTP.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// User name for the target's registry (basic auth, or a token service behind it).
    #[arg(long, env = "PALISADE_REGISTRY_USERNAME", requires = "password")]
    pub username: Option<String>,
    /// Password or token for the target's registry; prefer the environment variable.
    #[arg(
        long,
        env = "PALISADE_REGISTRY_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    pub password: Option<String>,
    /// containerd socket for containerd: targets.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// containerd namespace (Kubernetes nodes use k8s.io).
    #[arg(long, default_value = "default")]
    pub containerd_namespace: String,
    /// Print no progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Have the platform at this URL scan the image (`palisade up`): it keeps the SBOM and the
    /// findings, searchable, and matches them again when its vulnerability database changes.
    /// Local paths must lie under the server's scanner.local_roots.
    #[arg(long, value_name = "URL", conflicts_with_all = ["skip_db", "username"])]
    pub server: Option<String>,
    /// API token for --server [default: the admin token in the data directory].
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Cluster the image runs in, stamped on its findings (with --server).
    #[arg(long, requires = "server")]
    pub cluster: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// Build the security graph of manifests, `kubectl get -o json` snapshots and scanner
    /// findings, before anything is deployed: insights, attack paths, KubeHound's fleet
    /// questions. With --fail-on-attack-paths the exit status is 1 when any path exists.
    Analyze(GraphAnalyzeArgs),
    /// Ask the explorer a question over the same inputs, in text form
    /// (`container where escapes_to_node include pod`) or as the JSON builder form; with
    /// --server, over the server's graph of your tenant instead.
    Query(GraphQueryArgs),
    /// List the attack paths of the server's graph of your tenant, highest risk first.
    Paths(GraphPathsArgs),
}

#[derive(Debug, Args)]
pub struct GraphInputArgs {
    /// Manifest files or directories (YAML or JSON, multi-document, List kinds).
    #[arg(long = "manifests", value_name = "PATH")]
    pub manifests: Vec<PathBuf>,
    /// `kubectl get -o json` dumps.
    #[arg(long = "snapshot", value_name = "FILE")]
    pub snapshots: Vec<PathBuf>,
    /// Image scan findings: Palisade, Trivy or Grype JSON.
    #[arg(long = "findings", value_name = "FILE")]
    pub findings: Vec<PathBuf>,
    /// Cluster name given to the inputs.
    #[arg(long, default_value = "offline")]
    pub cluster: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormatArg {
    Table,
    Json,
    /// Graphviz DOT of the attack paths.
    Dot,
}

#[derive(Debug, Args)]
pub struct GraphAnalyzeArgs {
    #[command(flatten)]
    pub input: GraphInputArgs,
    #[arg(long, value_enum, default_value_t = GraphFormatArg::Table)]
    pub format: GraphFormatArg,
    /// Exit with status 1 when the graph holds any attack path (for CI gates).
    #[arg(long)]
    pub fail_on_attack_paths: bool,
}

#[derive(Debug, Args)]
pub struct GraphQueryArgs {
    /// The question, e.g. `container where escapes_to_node include pod`.
    pub query: String,
    #[command(flatten)]
    pub input: GraphInputArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Ask this server (its graph of your tenant) instead of reading local inputs.
    #[arg(long, value_name = "URL", conflicts_with_all = ["manifests", "snapshots", "findings"])]
    pub server: Option<String>,
    /// API token for --server [default: the admin token in the data directory].
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory to read the admin token from when no token is given.
    #[arg(long, env = "PALISADE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Most entities listed.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct GraphPathsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only paths touching this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Most paths listed.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
