//! `palisade search QUERY` and its subcommands (reindex, saved searches, retention).

use std::process::ExitCode;

use palisade_core::falco::format_time;
use palisade_proto::PriorityExt;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{
    DeleteSavedSearchRequest, Finding, GetRetentionRequest, ListSavedSearchesRequest, PageRequest,
    Priority, ReindexRequest, SaveSearchRequest, SavedSearch, SearchRequest, SearchResponse,
    SetRetentionRequest, SortOrder, TailRequest, TimeRange, search_hit,
};
use serde_json::{Value, json};

use crate::cli::{OutputFormat, SearchArgs, SearchCommand, SortArg};
use crate::client::{AuthChannel, ClientLimits, connect, describe_status};
use crate::output::{alert_json, print_table, truncate};

type Client = SearchServiceClient<AuthChannel>;

fn failed(status: &tonic::Status) -> ExitCode {
    eprintln!("palisade search: {}", describe_status(status));
    ExitCode::FAILURE
}

pub async fn run(args: SearchArgs) -> anyhow::Result<ExitCode> {
    if let Some(action) = args.action {
        return run_action(action).await;
    }
    let channel = connect(&args.client).await?;
    let mut client = SearchServiceClient::new(channel).with_limits();
    if args.follow {
        return follow(&mut client, &args).await;
    }
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
        facets: args.facets.clone(),
        highlight: args.highlight,
        facet_size: args.facet_size,
        saved_search: args.saved.clone().unwrap_or_default(),
    };
    let response = match client.search(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Ok(failed(&status)),
    };
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&response_json(&response))?
        ),
        OutputFormat::Table => print_response(&response),
    }
    Ok(ExitCode::SUCCESS)
}

fn response_json(response: &SearchResponse) -> Value {
    let hits: Vec<Value> = response
        .hits
        .iter()
        .filter_map(|hit| {
            let mut value = match &hit.document {
                Some(search_hit::Document::Alert(alert)) => alert_json(alert),
                Some(search_hit::Document::Finding(finding)) => finding_json(finding),
                None => return None,
            };
            if !hit.snippet.is_empty() {
                value["snippet"] = Value::String(hit.snippet.clone());
            }
            Some(value)
        })
        .collect();
    let facets: serde_json::Map<String, Value> = response
        .facets
        .iter()
        .map(|facet| {
            let buckets: Vec<Value> = facet
                .buckets
                .iter()
                .map(|bucket| json!({ "value": bucket.value, "count": bucket.count }))
                .collect();
            (
                facet.field.clone(),
                json!({ "buckets": buckets, "other_count": facet.other_count }),
            )
        })
        .collect();
    json!({
        "total": response.total,
        "hits": hits,
        "facets": facets,
        "next_cursor": response.next_cursor,
        "took_micros": response.took_micros,
    })
}

/// A finding as a JSON object.
fn finding_json(finding: &Finding) -> Value {
    let severity = palisade_proto::v1::Severity::try_from(finding.severity)
        .unwrap_or(palisade_proto::v1::Severity::Unspecified);
    let kind = palisade_proto::v1::FindingKind::try_from(finding.kind)
        .unwrap_or(palisade_proto::v1::FindingKind::Unspecified);
    json!({
        "id": finding.id,
        "kind": kind.as_str_name(),
        "severity": severity.as_str_name(),
        "title": finding.title,
        "description": finding.description,
        "cluster_id": finding.cluster_id,
        "tenant_id": finding.tenant_id,
        "resolved": finding.resolved,
        "first_seen": finding.first_seen.as_ref().map(format_time),
        "last_seen": finding.last_seen.as_ref().map(format_time),
    })
}

fn row(hit: &search_hit::Document) -> Vec<String> {
    match hit {
        search_hit::Document::Alert(alert) => {
            let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
            vec![
                alert.time.as_ref().map(format_time).unwrap_or_default(),
                priority.falco_name().to_string(),
                truncate(&alert.rule, 40),
                truncate(&alert.output, 80),
            ]
        }
        search_hit::Document::Finding(finding) => {
            let severity = palisade_proto::v1::Severity::try_from(finding.severity)
                .unwrap_or(palisade_proto::v1::Severity::Unspecified);
            vec![
                finding
                    .last_seen
                    .as_ref()
                    .map(format_time)
                    .unwrap_or_default(),
                severity
                    .as_str_name()
                    .trim_start_matches("SEVERITY_")
                    .to_lowercase(),
                truncate(&finding.id, 40),
                truncate(&finding.title, 80),
            ]
        }
    }
}

fn print_response(response: &SearchResponse) {
    let rows: Vec<Vec<String>> = response
        .hits
        .iter()
        .filter_map(|hit| hit.document.as_ref().map(row))
        .collect();
    print_table(&["TIME", "PRIORITY", "RULE", "OUTPUT"], &rows);
    for facet in &response.facets {
        println!();
        let facet_rows: Vec<Vec<String>> = facet
            .buckets
            .iter()
            .map(|bucket| vec![bucket.value.clone(), bucket.count.to_string()])
            .collect();
        print_table(&[facet.field.to_uppercase().as_str(), "COUNT"], &facet_rows);
        if facet.other_count > 0 {
            println!("(and {} more)", facet.other_count);
        }
    }
    eprintln!("{} of {} matches", rows.len(), response.total);
    if !response.next_cursor.is_empty() {
        eprintln!("next page: --cursor {}", response.next_cursor);
    }
}

async fn follow(client: &mut Client, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let mut stream = match client
        .tail(TailRequest {
            query: args.query.clone(),
        })
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => return Ok(failed(&status)),
    };
    if args.format == OutputFormat::Table {
        eprintln!("following new matches; interrupt to stop");
    }
    loop {
        let record = tokio::select! {
            message = stream.message() => message,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        let record = match record {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(ExitCode::SUCCESS),
            Err(status) => return Ok(failed(&status)),
        };
        let document = match (record.alert, record.finding) {
            (Some(alert), _) => search_hit::Document::Alert(alert),
            (None, Some(finding)) => search_hit::Document::Finding(finding),
            (None, None) => continue,
        };
        match args.format {
            OutputFormat::Json => {
                let value = match &document {
                    search_hit::Document::Alert(alert) => alert_json(alert),
                    search_hit::Document::Finding(finding) => finding_json(finding),
                };
                println!("{}", serde_json::to_string(&value)?);
            }
            OutputFormat::Table => println!("{}", row(&document).join("  ")),
        }
    }
}

async fn run_action(action: SearchCommand) -> anyhow::Result<ExitCode> {
    match action {
        SearchCommand::Reindex(args) => {
            let mut client = SearchServiceClient::new(connect(&args.client).await?).with_limits();
            let response = match client
                .reindex(ReindexRequest {
                    all_tenants: args.all_tenants,
                })
                .await
            {
                Ok(response) => response.into_inner(),
                Err(status) => return Ok(failed(&status)),
            };
            match args.format {
                OutputFormat::Json => println!(
                    "{}",
                    json!({ "documents": response.documents, "records_read": response.records_read })
                ),
                OutputFormat::Table => println!(
                    "index rebuilt: {} documents from {} log records",
                    response.documents, response.records_read
                ),
            }
        }
        SearchCommand::Save(args) => {
            let mut client = SearchServiceClient::new(connect(&args.client).await?).with_limits();
            let search = SavedSearch {
                name: args.name,
                query: args.query,
                facets: args.facets,
                description: args.description,
                ..Default::default()
            };
            let saved = match client
                .save_search(SaveSearchRequest {
                    search: Some(search),
                })
                .await
            {
                Ok(response) => response.into_inner().search.unwrap_or_default(),
                Err(status) => return Ok(failed(&status)),
            };
            match args.format {
                OutputFormat::Json => println!("{}", saved_json(&saved)),
                OutputFormat::Table => println!("saved search {} stored", saved.name),
            }
        }
        SearchCommand::Saved(args) => {
            let mut client = SearchServiceClient::new(connect(&args.client).await?).with_limits();
            let searches = match client
                .list_saved_searches(ListSavedSearchesRequest {})
                .await
            {
                Ok(response) => response.into_inner().searches,
                Err(status) => return Ok(failed(&status)),
            };
            match args.format {
                OutputFormat::Json => {
                    let values: Vec<Value> = searches.iter().map(saved_json).collect();
                    println!("{}", serde_json::to_string_pretty(&values)?);
                }
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = searches
                        .iter()
                        .map(|search| {
                            vec![
                                search.name.clone(),
                                truncate(&search.query, 60),
                                search.facets.join(","),
                            ]
                        })
                        .collect();
                    print_table(&["NAME", "QUERY", "FACETS"], &rows);
                }
            }
        }
        SearchCommand::Unsave(args) => {
            let mut client = SearchServiceClient::new(connect(&args.client).await?).with_limits();
            match client
                .delete_saved_search(DeleteSavedSearchRequest {
                    name: args.name.clone(),
                })
                .await
            {
                Ok(response) if response.get_ref().deleted => {
                    println!("saved search {} deleted", args.name)
                }
                Ok(_) => {
                    eprintln!("palisade search: no saved search named {:?}", args.name);
                    return Ok(ExitCode::FAILURE);
                }
                Err(status) => return Ok(failed(&status)),
            }
        }
        SearchCommand::Retention(args) => {
            let mut client = SearchServiceClient::new(connect(&args.client).await?).with_limits();
            let (days, deleted) = match args.days {
                Some(days) => match client.set_retention(SetRetentionRequest { days }).await {
                    Ok(response) => {
                        let response = response.into_inner();
                        (response.days, Some(response.deleted))
                    }
                    Err(status) => return Ok(failed(&status)),
                },
                None => match client.get_retention(GetRetentionRequest {}).await {
                    Ok(response) => (response.into_inner().days, None),
                    Err(status) => return Ok(failed(&status)),
                },
            };
            match args.format {
                OutputFormat::Json => println!("{}", json!({ "days": days, "deleted": deleted })),
                OutputFormat::Table => {
                    if days == 0 {
                        println!("retention: everything is kept");
                    } else {
                        println!("retention: {days} days");
                    }
                    if let Some(deleted) = deleted {
                        println!("{deleted} older documents deleted");
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn saved_json(search: &SavedSearch) -> Value {
    json!({
        "name": search.name,
        "query": search.query,
        "facets": search.facets,
        "description": search.description,
        "updated": search.updated.as_ref().map(format_time),
        "updated_by": search.updated_by,
    })
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
