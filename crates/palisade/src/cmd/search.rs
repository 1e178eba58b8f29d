//! `palisade search QUERY`.

use std::process::ExitCode;

use palisade_core::falco::format_time;
use palisade_proto::PriorityExt;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{PageRequest, Priority, SearchRequest, SortOrder, TimeRange, search_hit};
use serde_json::json;

use crate::cli::{OutputFormat, SearchArgs, SortArg};
use crate::client::{ClientLimits, connect, describe_status};
use crate::output::{alert_json, print_table, truncate};

pub async fn run(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.client).await?;
    let mut client = SearchServiceClient::new(channel).with_limits();
    let time_range = args.since.map(|since| {
        let start = chrono::Utc::now()
            - chrono::Duration::from_std(*since).unwrap_or(chrono::Duration::MAX);
        TimeRange {
            start: Some(Timestamp {
                seconds: start.timestamp(),
                nanos: 0,
            }),
            end: None,
        }
    });
    let sort = match args.sort {
        SortArg::Time => SortOrder::TimeDesc,
        SortArg::TimeAsc => SortOrder::TimeAsc,
        SortArg::Severity => SortOrder::SeverityDesc,
        SortArg::Relevance => SortOrder::Relevance,
    };
    let request = SearchRequest {
        query: args.query.clone(),
        time_range,
        page: Some(PageRequest {
            limit: args.limit,
            cursor: args.cursor.clone().unwrap_or_default(),
        }),
        sort: sort as i32,
        facets: Vec::new(),
        highlight: false,
    };
    let response = match client.search(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            eprintln!("palisade search: {}", describe_status(&status));
            return Ok(ExitCode::FAILURE);
        }
    };
    let alerts = response.hits.iter().filter_map(|hit| match &hit.document {
        Some(search_hit::Document::Alert(alert)) => Some(alert),
        _ => None,
    });
    match args.format {
        OutputFormat::Json => {
            let hits: Vec<serde_json::Value> = alerts.map(alert_json).collect();
            let body = json!({
                "total": response.total,
                "hits": hits,
                "next_cursor": response.next_cursor,
                "took_micros": response.took_micros,
            });
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = alerts
                .map(|alert| {
                    let priority =
                        Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
                    vec![
                        alert.time.as_ref().map(format_time).unwrap_or_default(),
                        priority.falco_name().to_string(),
                        truncate(&alert.rule, 40),
                        truncate(&alert.output, 80),
                    ]
                })
                .collect();
            print_table(&["TIME", "PRIORITY", "RULE", "OUTPUT"], &rows);
            eprintln!("{} of {} matching alerts", rows.len(), response.total);
            if !response.next_cursor.is_empty() {
                eprintln!("next page: --cursor {}", response.next_cursor);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_print_like_falco() {
        let time = super::Timestamp {
            seconds: 1_470_327_477,
            nanos: 881_781_397,
        };
        assert_eq!(super::format_time(&time), "2016-08-04T16:17:57.881781397Z");
    }
}
