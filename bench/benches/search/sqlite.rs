//! The SQLite FTS5 peer, run by Python's sqlite3 on the same alerts and questions.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use palisade_proto::v1::Alert;
use prost::Message as _;
use serde_json::{Value, json};

use crate::alerts::{TENANT, time_micros};
use crate::{
    Answer, Percentiles, QUERY_CASES, QUERY_MAX_RUNS, QUERY_RUNS, QUERY_TIME_BUDGET, QueryCase,
};

/// Statements of one query case for SQLite: total, newest ids, one per facet.
fn sql_statements(case: &QueryCase) -> Value {
    let mut conditions = vec![format!("a.tenant = '{TENANT}'")];
    let from = match case.fts_match {
        Some(text) => {
            conditions.push(format!("alerts_fts MATCH '{text}'"));
            // CROSS JOIN keeps the FTS5 match as the outer loop; with a plain JOIN SQLite's
            // planner may walk the tenant index and re-run the MATCH per row, which would
            // measure a bad plan instead of FTS5.
            "alerts_fts CROSS JOIN alerts a ON a.rowid = alerts_fts.rowid"
        }
        None => "alerts a",
    };
    conditions.extend(
        case.sql_conditions
            .iter()
            .map(|condition| condition.to_string()),
    );
    let filter = conditions.join(" AND ");
    let facets: serde_json::Map<String, Value> = case
        .facets
        .iter()
        .map(|(facet, column)| {
            let sql = format!(
                "SELECT a.{column}, count(*) FROM {from} WHERE {filter} GROUP BY a.{column}"
            );
            (facet.to_string(), Value::String(sql))
        })
        .collect();
    json!({
        "name": case.name,
        "total": format!("SELECT count(*) FROM {from} WHERE {filter}"),
        "newest": format!(
            "SELECT a.record FROM {from} WHERE {filter} ORDER BY a.time DESC, a.id DESC LIMIT {}",
            case.limit
        ),
        "facets": facets,
    })
}

const FTS5_SCRIPT: &str = include_str!("fts5.py");

/// What the SQLite side measured and answered.
pub struct SqliteRun {
    pub load: Duration,
    pub rows: u64,
    pub fts_rows: u64,
    pub queries: Vec<(Percentiles, Answer)>,
    pub size: u64,
}

fn seconds_field(value: &Value, name: &str) -> anyhow::Result<Duration> {
    let seconds = value[name]
        .as_f64()
        .with_context(|| format!("no {name} in the SQLite output"))?;
    Ok(Duration::from_secs_f64(seconds))
}

fn count_field(value: &Value, name: &str) -> anyhow::Result<u64> {
    value[name]
        .as_u64()
        .with_context(|| format!("no {name} in the SQLite output"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> anyhow::Result<Vec<u8>> {
    ensure!(text.len().is_multiple_of(2), "odd-length hex record");
    (0..text.len())
        .step_by(2)
        .map(|at| {
            u8::from_str_radix(&text[at..at + 2], 16)
                .with_context(|| format!("bad hex at {at} of a record"))
        })
        .collect()
}

fn sqlite_answer(value: &Value) -> anyhow::Result<(Percentiles, Answer)> {
    let newest = value["newest"]
        .as_array()
        .context("no newest records in the SQLite output")?
        .iter()
        .map(|record| {
            let text = record.as_str().context("a record is not hex text")?;
            Ok(Alert::decode(unhex(text)?.as_slice())?)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut facets = BTreeMap::new();
    for (facet, buckets) in value["facets"]
        .as_object()
        .context("no facets in the SQLite output")?
    {
        let buckets = buckets
            .as_object()
            .context("facet buckets are not an object")?
            .iter()
            .map(|(bucket, count)| {
                let count = count.as_u64().context("a facet count is not a number")?;
                Ok((bucket.clone(), count))
            })
            .collect::<anyhow::Result<_>>()?;
        facets.insert(facet.clone(), buckets);
    }
    let answer = Answer {
        total: count_field(value, "total")?,
        newest,
        facets,
    };
    let timings = Percentiles {
        p50: seconds_field(value, "p50")?,
        p99: seconds_field(value, "p99")?,
    };
    Ok((timings, answer))
}

/// Loads `alerts` into SQLite FTS5 under `directory` and asks it every query case.
pub fn sqlite_fts5(alerts: &[Alert], directory: &Path) -> anyhow::Result<SqliteRun> {
    let jsonl = directory.join("alerts.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&jsonl)?);
    for alert in alerts {
        let line = json!({
            "id": alert.id, "tenant": alert.tenant_id, "time": time_micros(alert),
            "severity": alert.priority, "rule": alert.rule, "output": alert.output,
            "output_fields": alert.output_fields, "record": hex(&alert.encode_to_vec()),
        });
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    drop(file);
    let cases_path = directory.join("cases.json");
    let cases: Vec<Value> = QUERY_CASES.iter().map(sql_statements).collect();
    std::fs::write(&cases_path, serde_json::to_vec(&cases)?)?;
    let output = Command::new("python3")
        .arg("-c")
        .arg(FTS5_SCRIPT)
        .arg(directory.join("alerts.sqlite"))
        .arg(&jsonl)
        .arg(&cases_path)
        .arg(QUERY_RUNS.to_string())
        .arg(QUERY_MAX_RUNS.to_string())
        .arg(QUERY_TIME_BUDGET.as_secs_f64().to_string())
        .stderr(Stdio::inherit())
        .output()
        .context("running python3 for the SQLite FTS5 peer")?;
    ensure!(
        output.status.success(),
        "the SQLite FTS5 peer failed: {}",
        output.status
    );
    let result: Value = serde_json::from_slice(&output.stdout)?;
    let queries = result["queries"]
        .as_array()
        .context("no queries in the SQLite output")?
        .iter()
        .map(sqlite_answer)
        .collect::<anyhow::Result<_>>()?;
    Ok(SqliteRun {
        load: seconds_field(&result, "load_seconds")?,
        rows: count_field(&result, "rows")?,
        fts_rows: count_field(&result, "fts_rows")?,
        queries,
        size: count_field(&result, "size_bytes")?,
    })
}
