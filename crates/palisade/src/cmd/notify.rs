//! `palisade notify targets|dead-letters|resend`.

use std::process::ExitCode;

use palisade_proto::v1::notify_service_client::NotifyServiceClient;
use palisade_proto::v1::{ListDeadLettersRequest, ListTargetsRequest, ResendDeadLettersRequest};
use serde_json::json;

use crate::cli::{NotifyCommand, OutputFormat};
use crate::client::{ClientLimits, connect, describe_status};
use crate::output::print_table;

pub async fn run(command: NotifyCommand) -> anyhow::Result<ExitCode> {
    let fail = |status: tonic::Status| anyhow::anyhow!("{}", describe_status(&status));
    match command {
        NotifyCommand::Targets(args) => {
            let mut client = NotifyServiceClient::new(connect(&args.client).await?).with_limits();
            let targets = client
                .list_targets(ListTargetsRequest {})
                .await
                .map_err(fail)?
                .into_inner()
                .targets;
            match args.format {
                OutputFormat::Json => {
                    let targets: Vec<serde_json::Value> = targets
                        .iter()
                        .map(|target| {
                            json!({
                                "name": target.name,
                                "kind": target.kind,
                                "lag": target.lag,
                                "delivered": target.delivered,
                                "dead_lettered": target.dead_lettered,
                                "dead_letters_kept": target.dead_letters_kept,
                                "retrying": target.retrying,
                                "last_error": target.last_error,
                            })
                        })
                        .collect();
                    println!("{}", json!({ "targets": targets }));
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = targets
                        .iter()
                        .map(|target| {
                            vec![
                                target.name.clone(),
                                target.kind.clone(),
                                target.lag.to_string(),
                                target.delivered.to_string(),
                                target.dead_letters_kept.to_string(),
                                target.last_error.clone(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "TARGET",
                            "KIND",
                            "LAG",
                            "DELIVERED",
                            "DEAD LETTERS",
                            "LAST ERROR",
                        ],
                        &rows,
                    );
                }
            }
        }
        NotifyCommand::DeadLetters(args) => {
            let mut client = NotifyServiceClient::new(connect(&args.client).await?).with_limits();
            let page = client
                .list_dead_letters(ListDeadLettersRequest {
                    target: args.target.clone(),
                    after: args.after.unwrap_or(0),
                    from_start: args.after.is_none(),
                    limit: args.limit,
                })
                .await
                .map_err(fail)?
                .into_inner();
            match args.format {
                OutputFormat::Json => {
                    let letters: Vec<serde_json::Value> = page
                        .letters
                        .iter()
                        .map(|letter| {
                            json!({
                                "sequence": letter.sequence,
                                "offset": letter.offset,
                                "alert_id": letter.alert_id,
                                "rule": letter.rule,
                                "priority": letter.priority,
                                "attempts": letter.attempts,
                                "error": letter.error,
                                "failed_at": letter.failed_at.map(|time| time.seconds),
                            })
                        })
                        .collect();
                    println!(
                        "{}",
                        json!({ "target": args.target, "letters": letters, "next_after": page.next_after })
                    );
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = page
                        .letters
                        .iter()
                        .map(|letter| {
                            vec![
                                letter.sequence.to_string(),
                                letter.alert_id.clone(),
                                letter.rule.clone(),
                                letter.priority.clone(),
                                letter.attempts.to_string(),
                                letter.error.clone(),
                            ]
                        })
                        .collect();
                    print_table(
                        &["SEQ", "ALERT", "RULE", "PRIORITY", "ATTEMPTS", "ERROR"],
                        &rows,
                    );
                    if let Some(next) = page.next_after {
                        println!("more: --after {next}");
                    }
                }
            }
        }
        NotifyCommand::Resend(args) => {
            let mut client = NotifyServiceClient::new(connect(&args.client).await?).with_limits();
            let resent = client
                .resend_dead_letters(ResendDeadLettersRequest {
                    target: args.target.clone(),
                    sequences: args.sequence.clone(),
                    all: args.all,
                })
                .await
                .map_err(fail)?
                .into_inner();
            match args.format {
                OutputFormat::Json => println!(
                    "{}",
                    json!({
                        "target": args.target,
                        "delivered": resent.delivered,
                        "failed": resent.failed,
                        "missing": resent.missing,
                    })
                ),
                OutputFormat::Table => {
                    println!(
                        "{}: {} delivered, {} refused again (kept)",
                        args.target, resent.delivered, resent.failed
                    );
                    if !resent.missing.is_empty() {
                        println!("not kept (already sent or evicted): {:?}", resent.missing);
                    }
                }
            }
            if resent.failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
