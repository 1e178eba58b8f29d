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
    /// Report the health of each component of a running server.
    Status(StatusArgs),
    /// Send alerts to the server, or read one back.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Search alerts and findings: free text, field:value (Falco field names), phrases,
    /// wildcards, AND/OR/NOT, ranges, facets, live tail; reindex, saved searches, retention.
    Search(SearchArgs),
    /// Manage tenants and API keys.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Run the node agent (eBPF runtime detection).
    Agent(PendingArgs),
    /// Scan container images for packages and vulnerabilities.
    Scan(PendingArgs),
    /// Detect threats in Kubernetes audit logs.
    Audit(PendingArgs),
    /// Inventory, security graph, attack paths and the explorer.
    Graph(PendingArgs),
    /// Import and inspect the vulnerability database.
    Vulndb(PendingArgs),
    /// Validate and test detection rules.
    Rules(PendingArgs),
}

/// Arguments of a command whose capability is not in this build yet.
#[derive(Debug, Args)]
pub struct PendingArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
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
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first admin key (as `api_key` in JSON).
    Create(TenantCreateArgs),
    /// List tenants.
    List(TenantListArgs),
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
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// A name to recognise the key by.
    pub name: String,
    #[arg(long, value_enum, default_value_t = RoleArg::ReadOnly)]
    pub role: RoleArg,
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
