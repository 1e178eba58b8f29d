//! Shared rendering of records for the terminal and for machines.

use palisade_core::falco::format_time;
use palisade_proto::PriorityExt;
use palisade_proto::v1::{Alert, Priority};
use serde_json::{Value, json};

/// An alert as a JSON object: Falco's field names plus Palisade's own.
pub fn alert_json(alert: &Alert) -> Value {
    let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
    let mut fields: Vec<(&String, &String)> = alert.output_fields.iter().collect();
    fields.sort();
    let output_fields: serde_json::Map<String, Value> = fields
        .into_iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
    let mitre = alert.mitre.clone().unwrap_or_default();
    json!({
        "id": alert.id,
        "time": alert.time.as_ref().map(format_time),
        "rule": alert.rule,
        "priority": priority.falco_name(),
        "source": alert.source,
        "output": alert.output,
        "output_fields": output_fields,
        "tags": alert.tags,
        "hostname": alert.hostname,
        "cluster_id": alert.cluster_id,
        "tenant_id": alert.tenant_id,
        "mitre": { "technique_ids": mitre.technique_ids, "tactics": mitre.tactics },
        "received_time": alert.received_time.as_ref().map(format_time),
    })
}

/// Cuts `text` to at most `width` characters, marking the cut.
pub fn truncate(text: &str, width: usize) -> String {
    let single_line = text.replace(['\n', '\r', '\t'], " ");
    if single_line.chars().count() <= width {
        return single_line;
    }
    let mut cut: String = single_line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Prints rows as aligned columns.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let render = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        cells
            .into_iter()
            .enumerate()
            .map(|(index, cell)| {
                if index == last {
                    cell
                } else {
                    format!("{cell:<width$}", width = widths[index])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!(
        "{}",
        render(headers.iter().map(|header| header.to_string()).collect())
    );
    for row in rows {
        println!("{}", render(row.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_short_text_and_marks_cuts() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a\nb", 10), "a b");
        assert_eq!(truncate("abcdefghij", 5), "abcd…");
    }
}
