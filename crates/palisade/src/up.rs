//! `palisade up`: the platform in one process until SIGTERM or SIGINT; `palisade serve ROLE`:
//! one service of the distributed mode, the same way.

use std::process::ExitCode;

use palisade::platform::{self, Role};
use palisade_core::config::{Config, ConfigOverrides, LogFormat};
use palisade_core::telemetry::init_tracing;

use crate::cli::{ServeService, UpArgs};

/// Runs `palisade up` (no service named) or `palisade serve SERVICE`.
pub fn run(
    args: UpArgs,
    service: Option<ServeService>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?.with_overrides(ConfigOverrides {
        data_dir: args.data_dir,
        grpc_listen: args.grpc_listen,
        http_listen: args.http_listen,
        agent_listen: args.agent_listen,
        log_format,
        log_level,
    })?;
    init_tracing(&config.log);
    let role = match service {
        None => Role::Embedded,
        Some(ServeService::Gateway) => Role::Gateway,
        Some(ServeService::Search) => Role::Search,
        Some(ServeService::Graph) => Role::Graph,
        Some(ServeService::Scanner) => Role::Scanner,
        Some(ServeService::Audit) => return crate::cmd::audit::serve_audit(&config),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("palisade-io")
        .build()?;
    runtime.block_on(serve(config, role))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config, role: Role) -> anyhow::Result<()> {
    let command = match role {
        Role::Embedded => "palisade up".to_string(),
        other => format!("palisade serve {}", other.name()),
    };
    let platform = platform::start_role(&config, role).await?;
    if platform.created_admin_token {
        let path = platform.admin_token_path();
        eprintln!(
            "{command}: first start: the admin token of tenant \"default\" is in {} (mode 0600)",
            path.display()
        );
        eprintln!("  client commands on this machine read it from there; elsewhere use");
        eprintln!("  export PALISADE_TOKEN=$(cat {})", path.display());
    }
    tracing::info!(grpc = %platform.grpc_address, http = %platform.http_address, data_dir = %config.data_dir.display(), "palisade is up");
    let agents = platform
        .agent_address
        .map(|address| format!(", agents on {address}"))
        .unwrap_or_default();
    eprintln!(
        "{command}: gRPC on {}, HTTP on {} (/metrics){agents}, data in {}",
        platform.grpc_address,
        platform.http_address,
        config.data_dir.display()
    );
    // One machine-readable line on stdout for scripts and tests.
    let scheme = if platform.tls { "https" } else { "http" };
    println!(
        "{}",
        serde_json::json!({
            "ready": true,
            "service": role.name(),
            "grpc": platform.grpc_address.to_string(),
            "http": platform.http_address.to_string(),
            "grpc_url": format!("{scheme}://{}", platform.grpc_address),
            "http_url": format!("{scheme}://{}", platform.http_address),
            "ca_file": platform.ca_file,
            "agent": platform.agent_address.map(|address| address.to_string()),
            "agent_url": platform.agent_url,
            "data_dir": config.data_dir,
        })
    );
    let shutdown = platform.shutdown_signal();
    let signals = tokio::spawn(async move { shutdown.trigger_on_signals().await });
    let stopping = platform.run_until_shutdown();
    tokio::pin!(stopping);
    // The platform waits for the trigger; report which signal it was once it fires.
    let result = tokio::select! {
        result = &mut stopping => result,
        signal = signals => {
            let signal = signal.ok().and_then(Result::ok).unwrap_or("shutdown request");
            eprintln!("{command}: {signal} received, shutting down");
            stopping.await
        }
    };
    eprintln!("{command}: stopped");
    result
}
