//! `palisade alerts import|get`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use palisade_core::falco::alert_from_falco_json;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::{Alert, GetAlertRequest, PublishAlertsRequest};
use serde_json::json;

use crate::cli::{AlertsCommand, GetAlertArgs, ImportArgs, OutputFormat};
use crate::client::{AuthChannel, ClientLimits, connect, describe_status};
use crate::output::alert_json;

/// Longest line accepted in an import file.
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Malformed lines listed individually before only counting them.
const MAX_REPORTED_ERRORS: usize = 100;

pub async fn run(command: AlertsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AlertsCommand::Import(args) => import(args).await,
        AlertsCommand::Get(args) => get(args).await,
    }
}

/// Totals of an import.
#[derive(Default)]
struct ImportReport {
    imported: u64,
    duplicates: u64,
    skipped: u64,
    errors: Vec<serde_json::Value>,
}

impl ImportReport {
    fn skip(&mut self, file: &Path, line: u64, message: String) {
        self.skipped += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            eprintln!("{}:{line}: {message}; skipped", file.display());
            self.errors.push(
                json!({ "file": file.display().to_string(), "line": line, "message": message }),
            );
        } else if self.errors.len() == MAX_REPORTED_ERRORS {
            eprintln!("(more malformed lines are counted but not listed)");
        }
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.client).await?;
    let mut client = AlertServiceClient::new(channel).with_limits();
    let mut report = ImportReport::default();
    let batch_size = args.batch_size as usize;
    for file in &args.files {
        let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
            Box::new(BufReader::new(std::io::stdin()))
        } else {
            let opened = std::fs::File::open(file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            Box::new(BufReader::new(opened))
        };
        let mut lines = BoundedLines::new(reader, MAX_LINE_BYTES);
        let mut batch: Vec<Alert> = Vec::with_capacity(batch_size);
        let mut line_number = 0u64;
        while let Some(line) = lines
            .next_line()
            .with_context(|| format!("cannot read {}", file.display()))?
        {
            line_number += 1;
            let text = match line {
                Line::Text(text) => text,
                Line::TooLong(length) => {
                    report.skip(
                        file,
                        line_number,
                        format!("line is {length} bytes; at most {MAX_LINE_BYTES} are accepted"),
                    );
                    continue;
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            match alert_from_falco_json(&text) {
                Ok(alert) => batch.push(alert),
                Err(error) => report.skip(file, line_number, error.to_string()),
            }
            if batch.len() >= batch_size {
                publish(&mut client, std::mem::take(&mut batch), &mut report).await?;
            }
        }
        publish(&mut client, batch, &mut report).await?;
    }
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            json!({ "imported": report.imported, "duplicates": report.duplicates, "skipped": report.skipped, "errors": report.errors })
        ),
        OutputFormat::Table => eprintln!(
            "imported {} alerts ({} already present), skipped {} malformed lines",
            report.imported, report.duplicates, report.skipped
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn publish(
    client: &mut AlertServiceClient<AuthChannel>,
    alerts: Vec<Alert>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    if alerts.is_empty() {
        return Ok(());
    }
    let count = alerts.len();
    let response = client
        .publish_alerts(PublishAlertsRequest { alerts })
        .await
        .map_err(|status| {
            anyhow::anyhow!(
                "publishing {count} alerts failed: {}",
                describe_status(&status)
            )
        })?
        .into_inner();
    report.imported += u64::from(response.accepted);
    report.duplicates += u64::from(response.duplicates);
    Ok(())
}

async fn get(args: GetAlertArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.client).await?;
    let mut client = AlertServiceClient::new(channel).with_limits();
    let response = client
        .get_alert(GetAlertRequest {
            id: args.id.clone(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("{}", describe_status(&status)))?
        .into_inner();
    let alert = response.alert.unwrap_or_default();
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&alert_json(&alert))?),
        OutputFormat::Table => {
            println!("{}  {}  {}", alert.id, alert.rule, alert.output);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A line, or the length of a line too long to keep.
enum Line {
    Text(String),
    TooLong(usize),
}

/// Lines of a reader, never holding more than `max` bytes of one line in memory.
struct BoundedLines<R> {
    reader: R,
    max: usize,
}

impl<R: BufRead> BoundedLines<R> {
    fn new(reader: R, max: usize) -> Self {
        BoundedLines { reader, max }
    }

    fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut buffer = Vec::new();
        let mut length = 0usize;
        let mut saw_any = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            saw_any = true;
            let (chunk, found_newline) = match available.iter().position(|byte| *byte == b'\n') {
                Some(position) => (&available[..position], true),
                None => (available, false),
            };
            length += chunk.len();
            if length <= self.max {
                buffer.extend_from_slice(chunk);
            }
            let consumed = chunk.len() + usize::from(found_newline);
            self.reader.consume(consumed);
            if found_newline {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        if length > self.max {
            return Ok(Some(Line::TooLong(length)));
        }
        Ok(Some(Line::Text(
            String::from_utf8_lossy(&buffer).into_owned(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &str, max: usize) -> Vec<String> {
        let mut lines = BoundedLines::new(std::io::Cursor::new(input.as_bytes().to_vec()), max);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().expect("read") {
            out.push(match line {
                Line::Text(text) => text,
                Line::TooLong(length) => format!("<too long: {length}>"),
            });
        }
        out
    }

    #[test]
    fn lines_are_split_and_overlong_ones_reported_without_being_kept() {
        assert_eq!(collect("a\nbb\n\nccc", 10), ["a", "bb", "", "ccc"]);
        assert_eq!(
            collect("short\nthis line is long\nok\n", 5),
            ["short", "<too long: 17>", "ok"]
        );
        assert!(collect("", 5).is_empty());
    }
}
