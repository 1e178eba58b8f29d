//! The console's pages. Each one asks the gRPC API as the signed-in key and renders the
//! answer; an answer the API refuses becomes an error page with the API's own words.

use std::collections::BTreeMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use palisade_proto::v1::{
    Alert, Finding, GetAgentConfigRequest, GetAlertRequest, GraphQueryRequest, ListAgentsRequest,
    ListAttackPathsRequest, PageRequest, SearchRequest, SearchResponse, SortOrder, TimeRange,
    search_hit,
};

use super::SignedIn;
use super::html::{self, encode, page, severity, time};
use super::svg;

/// Attack paths the list and a path's page look through.
const MAX_PATHS: u32 = 500;

/// An error page for a refused or failed call.
pub fn status_page(status: &tonic::Status) -> Response {
    if status.code() == tonic::Code::Unauthenticated {
        // The key was revoked or expired since sign-in.
        return Redirect::to("/console/signin").into_response();
    }
    let code = match status.code() {
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_GATEWAY,
    };
    let body = html::bare(
        "Error",
        html! {
            main.signin {
                h1 { "The request was refused" }
                p.error { (status.message()) }
                a href="/console/" { "Back to the overview" }
            }
        },
    );
    (code, body).into_response()
}

/// The 404 page.
pub fn not_found(what: &str) -> Response {
    let body = html::bare(
        "Not found",
        html! { main.signin { h1 { "Not found" } p { (what) } } },
    );
    (StatusCode::NOT_FOUND, body).into_response()
}

/// The time ranges offered, as (parameter, label, seconds back).
const RANGES: &[(&str, &str, Option<i64>)] = &[
    ("1h", "Last hour", Some(3_600)),
    ("24h", "Last 24 hours", Some(86_400)),
    ("7d", "Last 7 days", Some(7 * 86_400)),
    ("30d", "Last 30 days", Some(30 * 86_400)),
    ("all", "All time", None),
    ("custom", "From … to …", None),
];

/// A `datetime-local` value ("2026-11-28T09:30"), read as UTC.
fn moment(text: &str) -> Option<prost_types::Timestamp> {
    let parsed = chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    Some(prost_types::Timestamp {
        seconds: parsed.and_utc().timestamp(),
        nanos: 0,
    })
}

/// The time range of the range picker: a preset, or `custom` between `from` and `to` (either
/// may be empty).
fn custom_range(range: &str, from: &str, to: &str) -> Option<TimeRange> {
    if range != "custom" {
        return time_range(range);
    }
    let (start, end) = (moment(from), moment(to));
    (start.is_some() || end.is_some()).then_some(TimeRange { start, end })
}

fn time_range(range: &str) -> Option<TimeRange> {
    let seconds = RANGES
        .iter()
        .find(|(id, _, _)| *id == range)
        .and_then(|(_, _, seconds)| *seconds)?;
    let start = chrono::Utc::now().timestamp() - seconds;
    Some(TimeRange {
        start: Some(prost_types::Timestamp {
            seconds: start,
            nanos: 0,
        }),
        end: None,
    })
}

/// Facets shown beside the results: (requested facet, label, query field).
const FACETS: &[(&str, &str, &str)] = &[
    ("severity", "Severity", "severity"),
    ("rule:15", "Rule", "rule"),
    ("namespace:15", "Namespace", "namespace"),
    ("cluster:15", "Cluster", "cluster"),
    ("technique:15", "MITRE technique", "technique"),
];

/// The query adding `field:"value"` to `query`.
fn refine(query: &str, field: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    let term = format!("{field}:\"{escaped}\"");
    match query.trim() {
        "" | "*" => term,
        query => format!("{query} AND {term}"),
    }
}

/// A value as a string of the explorer's text form, which has no escapes: in double quotes,
/// else in single quotes; `None` for a value holding both.
fn graph_quote(value: &str) -> Option<String> {
    if !value.contains('"') {
        Some(format!("\"{value}\""))
    } else if !value.contains('\'') {
        Some(format!("'{value}'"))
    } else {
        None
    }
}

/// The column of a query error ("at column N: ...").
fn error_column(message: &str) -> Option<usize> {
    let rest = message.split("at column ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn url(path: &str, parameters: &[(&str, &str)]) -> String {
    let query: Vec<String> = parameters
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key}={}", encode(value)))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn alert_severity(alert: &Alert) -> String {
    palisade_proto::v1::Priority::try_from(alert.priority)
        .map(|priority| {
            priority
                .as_str_name()
                .trim_start_matches("PRIORITY_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

fn finding_severity(finding: &Finding) -> String {
    palisade_proto::v1::Severity::try_from(finding.severity)
        .map(|severity| {
            severity
                .as_str_name()
                .trim_start_matches("SEVERITY_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Falco priorities and finding severities, most severe first.
fn priority_rank(name: &str) -> usize {
    [
        "emergency",
        "alert",
        "critical",
        "error",
        "high",
        "warning",
        "medium",
        "notice",
        "low",
        "informational",
        "info",
        "debug",
    ]
    .iter()
    .position(|known| name.eq_ignore_ascii_case(known))
    .unwrap_or(usize::MAX)
}

fn field<'a>(alert: &'a Alert, name: &str) -> &'a str {
    alert
        .output_fields
        .get(name)
        .map(String::as_str)
        .filter(|value| *value != "<NA>")
        .unwrap_or("")
}

/// The alert's namespace: its entities, else its output fields.
fn alert_namespace(alert: &Alert) -> &str {
    alert
        .entities
        .iter()
        .map(|entity| entity.namespace.as_str())
        .find(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| {
            let from_fields = field(alert, "k8s.ns.name");
            if from_fields.is_empty() {
                field(alert, "ka.target.namespace")
            } else {
                from_fields
            }
        })
}

/// The overview: alerts over time by severity, top rules, namespaces and clusters, and the
/// agents with their health.
pub async fn overview(signed_in: SignedIn) -> Response {
    // The last 7 calendar days (UTC), today included, so that every alert counted is drawn.
    let today = chrono::Utc::now().date_naive();
    let first_day = today - chrono::Days::new(6);
    let week = Some(TimeRange {
        start: Some(prost_types::Timestamp {
            seconds: first_day
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp(),
            nanos: 0,
        }),
        end: None,
    });
    let mut search = signed_in.api.search();
    let answer = search
        .search(SearchRequest {
            query: "kind:alert".to_string(),
            time_range: week,
            page: Some(PageRequest {
                limit: 1,
                cursor: String::new(),
            }),
            facets: vec![
                "severity".to_string(),
                "rule:10".to_string(),
                "namespace:10".to_string(),
                "cluster:10".to_string(),
            ],
            ..SearchRequest::default()
        })
        .await;
    let answer = match answer {
        Ok(answer) => answer.into_inner(),
        Err(status) => return status_page(&status),
    };
    // One histogram per severity present, most severe first, for the chart.
    let mut series: Vec<(String, Vec<(String, u64)>)> = Vec::new();
    let mut severities: Vec<String> = answer
        .facets
        .iter()
        .find(|facet| facet.field == "severity")
        .map(|facet| {
            facet
                .buckets
                .iter()
                .map(|bucket| bucket.value.clone())
                .collect()
        })
        .unwrap_or_default();
    severities.sort_by_key(|name| priority_rank(name));
    let days: Vec<String> = (0..7)
        .rev()
        .map(|back| {
            (today - chrono::Days::new(back))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    for level in severities {
        let histogram = search
            .search(SearchRequest {
                query: format!("kind:alert AND severity:\"{level}\""),
                time_range: week,
                page: Some(PageRequest {
                    limit: 1,
                    cursor: String::new(),
                }),
                facets: vec!["time:1d".to_string()],
                ..SearchRequest::default()
            })
            .await;
        let histogram = match histogram {
            Ok(histogram) => histogram.into_inner(),
            Err(status) => return status_page(&status),
        };
        let buckets = histogram
            .facets
            .first()
            .map(|facet| {
                facet
                    .buckets
                    .iter()
                    .map(|bucket| (bucket.value.chars().take(10).collect(), bucket.count))
                    .collect()
            })
            .unwrap_or_default();
        series.push((level, buckets));
    }
    let agents = match signed_in
        .api
        .admin()
        .list_agents(ListAgentsRequest::default())
        .await
    {
        Ok(agents) => Some(agents.into_inner().agents),
        // An analyst or read-only key may not list agents: the rest of the page still shows.
        Err(status) if status.code() == tonic::Code::PermissionDenied => None,
        Err(status) => return status_page(&status),
    };
    let top = |field: &str| -> Markup {
        let facet = answer.facets.iter().find(|facet| facet.field == field);
        html! {
            @match facet {
                Some(facet) if !facet.buckets.is_empty() => {
                    ol.top {
                        @for bucket in &facet.buckets {
                            li {
                                a href=(url("/console/alerts", &[("q", &refine("", field, &bucket.value)), ("range", "7d")])) { (bucket.value) }
                                span.count { (bucket.count) }
                            }
                        }
                    }
                }
                _ => { p.empty { "No alerts in the last 7 days." } }
            }
        }
    };
    let body = html! {
        section.card #chart-card {
            h2 { "Alerts per day by severity, last 7 days (" (answer.total) ")" }
            (svg::severity_chart(&days, &series))
        }
        div.grid {
            section.card { h2 { "Top rules" } (top("rule")) }
            section.card { h2 { "Top namespaces" } (top("namespace")) }
            section.card { h2 { "Top clusters" } (top("cluster")) }
        }
        section.card {
            h2 { "Agents and audit watchers" }
            @match &agents {
                None => { p.empty { "Your key's role may not list agents." } }
                Some(agents) if agents.is_empty() => { p.empty { "No agent has connected yet." } }
                Some(agents) => {
                    div.scroll { table #agents {
                        thead { tr { th { "Agent" } th { "Kind" } th { "Cluster" } th { "Node" } th { "Version" } th { "State" } th { "Last seen" } th { "Dropped" } th { "Config" } } }
                        tbody {
                            @for agent in agents {
                                @let drops = agent.drops.as_ref().map(|drops| drops.kernel_ringbuf_full + drops.decode_errors + drops.rules_queue_full + drops.spool_evicted + drops.malformed_events).unwrap_or(0);
                                tr {
                                    td { (agent.agent_id) }
                                    td { (palisade_proto::v1::AgentKind::try_from(agent.kind).map(|kind| kind.as_str_name().trim_start_matches("AGENT_KIND_").to_ascii_lowercase()).unwrap_or_default()) }
                                    td { (agent.cluster_id) }
                                    td { (agent.node_name) }
                                    td { (agent.version) }
                                    td { (palisade_proto::v1::AgentState::try_from(agent.state).map(|state| state.as_str_name().trim_start_matches("AGENT_STATE_").to_ascii_lowercase()).unwrap_or_default()) }
                                    td { (time(agent.last_seen.as_ref())) }
                                    td { (drops) }
                                    td { (agent.config_version) @if !agent.config_error.is_empty() { " " span.error { (agent.config_error) } } }
                                }
                            }
                        }
                    } }
                }
            }
        }
    };
    page(&signed_in.session, "overview", "Overview", body).into_response()
}

#[derive(serde::Deserialize, Default)]
pub struct AlertsParameters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    range: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    cursor: String,
    /// With `range=custom`: UTC, as a `datetime-local` input gives it.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The search page.
pub async fn alerts(signed_in: SignedIn, Query(parameters): Query<AlertsParameters>) -> Response {
    let range = if parameters.range.is_empty() {
        "24h"
    } else {
        parameters.range.as_str()
    };
    let sort = match parameters.sort.as_str() {
        "oldest" => SortOrder::TimeAsc,
        "severity" => SortOrder::SeverityDesc,
        "relevance" => SortOrder::Relevance,
        _ => SortOrder::TimeDesc,
    };
    let query = parameters.q.trim().to_string();
    let answer = signed_in
        .api
        .search()
        .search(SearchRequest {
            query: if query.is_empty() {
                "*".to_string()
            } else {
                query.clone()
            },
            time_range: custom_range(range, &parameters.from, &parameters.to),
            page: Some(PageRequest {
                limit: 50,
                cursor: parameters.cursor.clone(),
            }),
            sort: sort as i32,
            facets: FACETS
                .iter()
                .map(|(facet, _, _)| facet.to_string())
                .collect(),
            ..SearchRequest::default()
        })
        .await;
    let (answer, error) = match answer {
        Ok(answer) => (answer.into_inner(), None),
        Err(status) if status.code() == tonic::Code::InvalidArgument => (
            SearchResponse::default(),
            Some(status.message().to_string()),
        ),
        Err(status) => return status_page(&status),
    };
    let here = |cursor: &str, sort: &str| {
        url(
            "/console/alerts",
            &[
                ("q", &query),
                ("range", range),
                ("from", &parameters.from),
                ("to", &parameters.to),
                ("sort", sort),
                ("cursor", cursor),
            ],
        )
    };
    let body = html! {
        form #search method="get" action="/console/alerts" role="search" {
            label.visually-hidden for="query" { "Query" }
            input #query type="search" name="q" value=(query) placeholder="rule:\"Terminal shell\" AND k8s.ns.name:prod, or free text" spellcheck="false";
            label.visually-hidden for="range" { "Time range" }
            select #range name="range" {
                @for (id, label, _) in RANGES {
                    option value=(id) selected[*id == range] { (label) }
                }
            }
            label for="from" { "from" }
            input #from type="datetime-local" name="from" value=(parameters.from) title="UTC; used with the range \"From … to …\"";
            label for="to" { "to" }
            input #to type="datetime-local" name="to" value=(parameters.to) title="UTC; used with the range \"From … to …\"";
            label.visually-hidden for="sort" { "Order" }
            select #sort name="sort" {
                @for (id, label) in [("newest", "Newest first"), ("oldest", "Oldest first"), ("severity", "Most severe first"), ("relevance", "Most relevant first")] {
                    option value=(id) selected[parameters.sort == id || (parameters.sort.is_empty() && id == "newest")] { (label) }
                }
            }
            button #search-submit type="submit" { "Search" }
            a.live href=(url("/console/alerts", &[("q", &query), ("range", "1h"), ("sort", "newest"), ("live", "1")])) data-live="1" { "Live tail" }
        }
        @if let Some(error) = &error {
            @let column = error_column(error);
            p #query-error.error role="alert" data-position=[column] {
                "Query error: " (error)
                @if let Some(column) = column {
                    br;
                    code.query-echo { (query.chars().take(column.saturating_sub(1)).collect::<String>()) mark { (query.chars().nth(column.saturating_sub(1)).map(String::from).unwrap_or_else(|| "⏎".to_string())) } (query.chars().skip(column).collect::<String>()) }
                }
            }
        }
        div.results-layout {
            aside.facets aria-label="Filters" {
                @for (requested, label, query_field) in FACETS {
                    @let name = requested.split(':').next().unwrap_or(requested);
                    @if let Some(facet) = answer.facets.iter().find(|facet| facet.field == name) {
                        section.facet data-field=(name) {
                            h2 { (label) }
                            @if facet.buckets.is_empty() { p.empty { "—" } }
                            ul {
                                @for bucket in &facet.buckets {
                                    li {
                                        a.facet-value data-value=(bucket.value) href=(url("/console/alerts", &[("q", &refine(&query, query_field, &bucket.value)), ("range", range), ("from", &parameters.from), ("to", &parameters.to), ("sort", &parameters.sort)])) {
                                            (bucket.value)
                                        }
                                        span.count { (bucket.count) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.results {
                p.total { (answer.total) " matching, in " (answer.took_micros / 1000) " ms" }
                div.scroll { table #alerts {
                    thead { tr { th { "Time" } th { "Severity" } th { "Rule" } th { "Namespace" } th { "Cluster" } th { "Output" } } }
                    tbody {
                        @for hit in &answer.hits {
                            @match &hit.document {
                                Some(search_hit::Document::Alert(alert)) => {
                                    tr.alert data-id=(alert.id) {
                                        td.time { (time(alert.time.as_ref())) }
                                        td.severity { (severity(&alert_severity(alert))) }
                                        td.rule { a.alert-link href={ "/console/alerts/" (encode(&alert.id)) } { (alert.rule) } }
                                        td.namespace { (alert_namespace(alert)) }
                                        td.cluster { (alert.cluster_id) }
                                        td.output { (alert.output) }
                                    }
                                }
                                Some(search_hit::Document::Finding(finding)) => {
                                    tr.finding data-id=(finding.id) {
                                        td.time { (time(finding.last_seen.as_ref())) }
                                        td.severity { (severity(&finding_severity(finding))) }
                                        td.rule { (finding.title) }
                                        td.namespace { (finding.subject.as_ref().map(|subject| subject.namespace.as_str()).unwrap_or("")) }
                                        td.cluster { (finding.cluster_id) }
                                        td.output { (finding.description) }
                                    }
                                }
                                None => {}
                            }
                        }
                    }
                } }
                nav.pager aria-label="Pages" {
                    @if !parameters.cursor.is_empty() { a #first-page href=(here("", &parameters.sort)) { "First page" } }
                    @if !answer.next_cursor.is_empty() { a #next-page href=(here(&answer.next_cursor, &parameters.sort)) { "Next page" } }
                }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, page(&signed_in.session, "alerts", "Alerts", body)).into_response()
}

/// One alert with every field.
pub async fn alert(signed_in: SignedIn, Path(id): Path<String>) -> Response {
    let alert = match signed_in
        .api
        .alerts()
        .get_alert(GetAlertRequest { id: id.clone() })
        .await
    {
        Ok(answer) => answer.into_inner().alert.unwrap_or_default(),
        Err(status) => return status_page(&status),
    };
    let mitre = alert.mitre.clone().unwrap_or_default();
    // Process ancestry from Falco's proc.aname[N] fields, nearest first.
    let ancestry: Vec<&str> = std::iter::once(field(&alert, "proc.name"))
        .chain((1..=7).map(|level| field(&alert, &format!("proc.aname[{level}]"))))
        .take_while(|name| !name.is_empty())
        .collect();
    let audit: Vec<(&String, &String)> = alert
        .output_fields
        .iter()
        .filter(|(key, _)| key.starts_with("ka."))
        .collect();
    let body = html! {
        h2 #alert-rule { (alert.rule) }
        p { (severity(&alert_severity(&alert))) " " (alert.output) }
        dl #alert-detail {
            dt { "Id" } dd { code { (alert.id) } }
            dt { "Time" } dd { (time(alert.time.as_ref())) }
            dt { "Received" } dd { (time(alert.received_time.as_ref())) }
            dt { "Source" } dd { (alert.source) }
            dt { "Cluster" } dd { (alert.cluster_id) }
            dt { "Host" } dd { (alert.hostname) }
            dt { "Count" } dd { (alert.count.max(1)) }
            @if !alert.description.is_empty() { dt { "Description" } dd { (alert.description) } }
            dt { "Tags" } dd { (alert.tags.join(", ")) }
            dt { "MITRE ATT&CK" }
            dd #alert-mitre {
                @for technique in &mitre.technique_ids {
                    a href={ "https://attack.mitre.org/techniques/" (technique.replace('.', "/")) "/" } rel="noreferrer" { (technique) } " "
                }
                @if !mitre.tactics.is_empty() { "(" (mitre.tactics.join(", ")) ")" }
            }
        }
        @if !ancestry.is_empty() {
            section.card {
                h2 { "Process ancestry" }
                ol #ancestry.ancestry { @for name in &ancestry { li { code { (name) } } } }
            }
        }
        @if !audit.is_empty() {
            section.card {
                h2 { "Audit request" }
                dl #audit-request { @for (key, value) in &audit { dt { (key) } dd { code { (value) } } } }
            }
        }
        section.card {
            h2 { "Entities" }
            ul #alert-entities {
                @for entity in &alert.entities {
                    li {
                        (entity.kind) " "
                        @match graph_quote(&entity.name) {
                            Some(name) => { a href=(url("/console/explorer", &[("q", &format!("{} where name = {name}", entity.kind))])) { (entity.name) } }
                            None => { (entity.name) }
                        }
                        @if !entity.namespace.is_empty() { " in " (entity.namespace) }
                    }
                }
            }
        }
        section.card {
            h2 { "Output fields" }
            dl #alert-fields { @for (key, value) in &alert.output_fields { dt { (key) } dd { code { (value) } } } }
        }
    };
    page(&signed_in.session, "alerts", "Alert", body).into_response()
}

async fn all_paths(signed_in: &SignedIn) -> Result<Vec<palisade_proto::v1::AttackPath>, Response> {
    signed_in
        .api
        .graph()
        .list_attack_paths(ListAttackPathsRequest {
            page: Some(PageRequest {
                limit: MAX_PATHS,
                cursor: String::new(),
            }),
            cluster_id: String::new(),
        })
        .await
        .map(|answer| answer.into_inner().paths)
        .map_err(|status| status_page(&status))
}

fn entity_label(entity: Option<&palisade_proto::v1::Entity>) -> String {
    entity
        .and_then(|entity| entity.r#ref.as_ref())
        .map(|reference| match reference.namespace.as_str() {
            "" => format!("{} {}", reference.kind, reference.name),
            namespace => format!("{} {}/{}", reference.kind, namespace, reference.name),
        })
        .unwrap_or_default()
}

/// Attack paths, highest risk first.
pub async fn paths(signed_in: SignedIn) -> Response {
    let paths = match all_paths(&signed_in).await {
        Ok(paths) => paths,
        Err(response) => return response,
    };
    let body = html! {
        @if paths.is_empty() {
            p.empty { "No attack path: no entry point reaches a target." }
        } @else {
            div.scroll { table #paths {
                thead { tr { th { "Risk" } th { "Path" } th { "Entry" } th { "Target" } th { "Steps" } th { "Cluster" } } }
                tbody {
                    @for path in &paths {
                        tr.path {
                            td.risk { (format!("{:.1}", path.risk_score)) }
                            td { a.path-link href={ "/console/paths/" (encode(&path.id)) } { (path.title) } }
                            td { (entity_label(path.entry.as_ref())) }
                            td { (entity_label(path.target.as_ref())) }
                            td { (path.steps.len()) }
                            td { (path.entry.as_ref().and_then(|entry| entry.r#ref.as_ref()).map(|reference| reference.cluster_id.as_str()).unwrap_or("")) }
                        }
                    }
                }
            } }
        }
    };
    page(&signed_in.session, "paths", "Attack paths", body).into_response()
}

/// One attack path drawn as a picture, with its risk reasons and remediation.
pub async fn path(signed_in: SignedIn, Path(id): Path<String>) -> Response {
    let paths = match all_paths(&signed_in).await {
        Ok(paths) => paths,
        Err(response) => return response,
    };
    let Some(path) = paths.into_iter().find(|path| path.id == id) else {
        return not_found("no attack path of your tenant has this id");
    };
    // The most severe vulnerabilities of each image on the path, to draw under it.
    let mut cves: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let images = path
        .steps
        .iter()
        .filter_map(|step| step.entity.as_ref()?.r#ref.as_ref())
        .filter(|reference| reference.kind == "image");
    for image in images {
        let Some(name) = graph_quote(&image.name) else {
            continue;
        };
        let answer = signed_in
            .api
            .graph()
            .query(GraphQueryRequest {
                query: format!("vulnerability where severity >= high and has image(name = {name})"),
                query_json: String::new(),
                page: Some(PageRequest {
                    limit: 3,
                    cursor: String::new(),
                }),
            })
            .await;
        match answer {
            Ok(answer) => {
                let names = answer
                    .into_inner()
                    .entities
                    .into_iter()
                    .filter_map(|entity| entity.r#ref.map(|reference| reference.name))
                    .collect();
                cves.insert(image.name.clone(), names);
            }
            Err(status) => return status_page(&status),
        }
    }
    let body = html! {
        p.lead { "Risk " strong { (format!("{:.1}", path.risk_score)) } " — " (path.title) }
        section.card {
            h2 { "The path" }
            div.scroll { (svg::attack_path(&path, &cves)) }
        }
        div.grid {
            section.card {
                h2 { "Why this risk" }
                ul #risk-reasons { @for reason in &path.risk_reasons { li { (reason) } } }
            }
            section.card {
                h2 { "Remediation" }
                ol #remediation { @for step in &path.remediation { li { (step) } } }
            }
        }
        section.card {
            h2 { "Steps" }
            ol #steps {
                @for step in &path.steps {
                    li {
                        (entity_label(step.entity.as_ref()))
                        @if !step.technique.is_empty() { " → " em { (step.technique) } @if !step.mitre_id.is_empty() { " (" (step.mitre_id) ")" } }
                    }
                }
            }
        }
    };
    page(&signed_in.session, "paths", "Attack path", body).into_response()
}

#[derive(serde::Deserialize, Default, Clone)]
pub struct ExplorerParameters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    /// The builder's entity type; when set, the builder's fields make the query.
    #[serde(default)]
    entity: String,
    /// The builder's conditions on the entity: property, operator, value.
    #[serde(default)]
    p1: String,
    #[serde(default)]
    o1: String,
    #[serde(default)]
    v1: String,
    #[serde(default)]
    p2: String,
    #[serde(default)]
    o2: String,
    #[serde(default)]
    v2: String,
    /// A related entity it must have, and a condition on that entity.
    #[serde(default)]
    related: String,
    #[serde(default)]
    rp: String,
    #[serde(default)]
    ro: String,
    #[serde(default)]
    rv: String,
    /// Related kinds listed with each result.
    #[serde(default)]
    include: String,
}

/// The entity kinds of the graph, for the builder.
const ENTITY_KINDS: &[&str] = &[
    "pod",
    "container",
    "image",
    "vulnerability",
    "workload",
    "namespace",
    "node",
    "cluster",
    "service",
    "ingress",
    "load_balancer",
    "endpoint",
    "service_account",
    "user",
    "group",
    "permission_set",
    "role",
    "cluster_role",
    "role_binding",
    "cluster_role_binding",
    "secret",
    "config_map",
    "volume",
    "persistent_volume",
    "network_policy",
    "cloud_identity",
    "internet",
];

/// The builder's operators.
const OPERATORS: &[&str] = &["=", "!=", ">", ">=", "<", "<=", "~", "exists"];

/// A builder value: true/false and numbers as such, anything else as text; no value means
/// the property is a flag that is set.
fn builder_value(text: &str) -> serde_json::Value {
    let text = text.trim();
    match text {
        "" | "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        number if number.parse::<f64>().is_ok() => number
            .parse::<serde_json::Number>()
            .map(serde_json::Value::Number)
            .unwrap_or_else(|_| serde_json::Value::String(number.to_string())),
        other => serde_json::Value::String(other.to_string()),
    }
}

fn builder_condition(property: &str, op: &str, value: &str) -> Option<serde_json::Value> {
    let property = property.trim();
    (!property.is_empty()).then(|| {
        serde_json::json!({
            "property": property,
            "op": if op.is_empty() { "=" } else { op },
            "value": builder_value(value),
        })
    })
}

/// The query builder's JSON form (the graph's query-builder structure) of the parameters.
fn builder_query(parameters: &ExplorerParameters) -> serde_json::Value {
    let mut conditions: Vec<serde_json::Value> = [
        builder_condition(&parameters.p1, &parameters.o1, &parameters.v1),
        builder_condition(&parameters.p2, &parameters.o2, &parameters.v2),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !parameters.related.trim().is_empty() {
        let mut related = serde_json::json!({ "entity": parameters.related.trim() });
        if let Some(inner) = builder_condition(&parameters.rp, &parameters.ro, &parameters.rv) {
            related["where"] = inner;
        }
        conditions.push(serde_json::json!({ "related": related }));
    }
    let mut query = serde_json::json!({ "entity": parameters.entity.trim() });
    match conditions.len() {
        0 => {}
        1 => query["where"] = conditions.remove(0),
        _ => query["where"] = serde_json::json!({ "and": conditions }),
    }
    let include: Vec<&str> = parameters
        .include
        .split(',')
        .map(str::trim)
        .filter(|kind| !kind.is_empty())
        .collect();
    if !include.is_empty() {
        query["include"] = serde_json::json!(include);
    }
    query
}

fn kind_select(id: &str, name: &str, selected: &str, optional: bool) -> Markup {
    html! {
        select id=(id) name=(name) {
            @if optional { option value="" selected[selected.is_empty()] { "—" } }
            @for kind in ENTITY_KINDS { option value=(kind) selected[*kind == selected] { (kind) } }
        }
    }
}

fn operator_select(id: &str, name: &str, selected: &str) -> Markup {
    html! {
        select id=(id) name=(name) aria-label="Operator" {
            @for op in OPERATORS { option value=(op) selected[*op == selected] { (op) } }
        }
    }
}

/// The explorer's templates, as (id, title, query text), shown as links.
const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "exposed-pods-critical-vulnerabilities",
        "Internet-exposed pods with critical vulnerabilities",
        "pod where exposed_to_internet and has vulnerability(severity >= critical) include image",
    ),
    (
        "service-accounts-create-pods-kube-system",
        "Service accounts that can create pods in kube-system",
        "service_account where has permission_set(creates_pods = \"kube-system\" or creates_pods = \"*\")",
    ),
    (
        "pods-high-severity-vulnerabilities",
        "Pods running images with high severity vulnerabilities",
        "pod where has vulnerability(severity >= high) include image",
    ),
    (
        "namespaces-with-vulnerable-pods",
        "Namespaces containing vulnerable pods",
        "namespace where has pod(has vulnerability(severity >= high))",
    ),
    (
        "containers-escaping-to-node",
        "Containers that can escape to their node",
        "container where escapes_to_node include pod",
    ),
    (
        "identities-reading-secrets-cluster-wide",
        "Identities that can read secrets cluster-wide",
        "service_account where has permission_set(reads_secrets and namespaced = false)",
    ),
    (
        "rce-images-exposed",
        "Exposed pods running images vulnerable to remote code execution",
        "pod where exposed_to_internet and has image(rce_vulnerability)",
    ),
];

/// The explorer: templates, a query box, the results and a link to share the query.
pub async fn explorer(
    signed_in: SignedIn,
    Query(parameters): Query<ExplorerParameters>,
) -> Response {
    let query = parameters.q.trim().to_string();
    let built = (!parameters.entity.trim().is_empty()).then(|| builder_query(&parameters));
    let mut error = None;
    let mut answer = None;
    if !query.is_empty() || built.is_some() {
        let result = signed_in
            .api
            .graph()
            .query(GraphQueryRequest {
                query: if built.is_some() {
                    String::new()
                } else {
                    query.clone()
                },
                query_json: built.as_ref().map(ToString::to_string).unwrap_or_default(),
                page: Some(PageRequest {
                    limit: 100,
                    cursor: parameters.cursor.clone(),
                }),
            })
            .await;
        match result {
            Ok(result) => answer = Some(result.into_inner()),
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                error = Some(status.message().to_string())
            }
            Err(status) => return status_page(&status),
        }
    }
    let share = match &built {
        Some(_) => url(
            "/console/explorer",
            &[
                ("entity", &parameters.entity),
                ("p1", &parameters.p1),
                ("o1", &parameters.o1),
                ("v1", &parameters.v1),
                ("p2", &parameters.p2),
                ("o2", &parameters.o2),
                ("v2", &parameters.v2),
                ("related", &parameters.related),
                ("rp", &parameters.rp),
                ("ro", &parameters.ro),
                ("rv", &parameters.rv),
                ("include", &parameters.include),
            ],
        ),
        None => url("/console/explorer", &[("q", &query)]),
    };
    let body = html! {
        section.card {
            h2 { "Templates" }
            ul #templates.templates {
                @for (id, title, text) in TEMPLATES {
                    li { a.template data-id=(id) href=(url("/console/explorer", &[("q", text)])) { (title) } }
                }
            }
        }
        form #explorer method="get" action="/console/explorer" {
            label for="explorer-query" { "Query: " code { "KIND where CONDITION [include KIND, ...]" } }
            textarea #explorer-query name="q" rows="3" spellcheck="false" { (query) }
            button #explorer-submit type="submit" { "Run" }
        }
        details #builder-panel open[built.is_some()] {
            summary { "Query builder" }
            form #builder method="get" action="/console/explorer" {
                div.builder-row {
                    label for="builder-entity" { "Entity type" }
                    (kind_select("builder-entity", "entity", if parameters.entity.is_empty() { "pod" } else { &parameters.entity }, false))
                }
                @for (index, (property, op, value)) in [(&parameters.p1, &parameters.o1, &parameters.v1), (&parameters.p2, &parameters.o2, &parameters.v2)].into_iter().enumerate() {
                    @let number = index + 1;
                    div.builder-row {
                        label for={ "builder-p" (number) } { "Condition " (number) }
                        input id={ "builder-p" (number) } name={ "p" (number) } value=(property) placeholder="property, e.g. exposed_to_internet";
                        (operator_select(&format!("builder-o{number}"), &format!("o{number}"), op))
                        input id={ "builder-v" (number) } name={ "v" (number) } value=(value) placeholder="value (empty: the flag is set)" aria-label="Value";
                    }
                }
                div.builder-row {
                    label for="builder-related" { "Has a related" }
                    (kind_select("builder-related", "related", &parameters.related, true))
                    input #builder-rp name="rp" value=(parameters.rp) placeholder="where property, e.g. severity" aria-label="Related entity's property";
                    (operator_select("builder-ro", "ro", &parameters.ro))
                    input #builder-rv name="rv" value=(parameters.rv) placeholder="value, e.g. critical" aria-label="Related entity's value";
                }
                div.builder-row {
                    label for="builder-include" { "List with each result" }
                    input #builder-include name="include" value=(parameters.include) placeholder="kinds, e.g. image, node";
                }
                button #builder-submit type="submit" { "Run" }
            }
            @if let Some(built) = &built {
                p { "As JSON (the " code { "query_json" } " of GraphService/Query):" }
                pre #builder-json { (serde_json::to_string_pretty(built).unwrap_or_default()) }
            }
        }
        @if let Some(error) = &error {
            p #query-error.error role="alert" { "Query error: " (error) }
        }
        @if let Some(answer) = &answer {
            p.total {
                (answer.total) " matching. "
                a #share-link href=(share) { "Link to this query" }
            }
            @let columns: Vec<String> = {
                let mut keys: BTreeMap<&str, ()> = BTreeMap::new();
                for entity in &answer.entities { for key in entity.properties.keys() { keys.insert(key, ()); } }
                keys.into_keys().take(8).map(str::to_string).collect()
            };
            div.scroll { table #results {
                thead { tr { th { "Kind" } th { "Name" } th { "Namespace" } th { "Cluster" } @for column in &columns { th { (column) } } } }
                tbody {
                    @for entity in &answer.entities {
                        @let reference = entity.r#ref.clone().unwrap_or_default();
                        tr.result data-id=(entity.id) {
                            td { (reference.kind) }
                            td { (reference.name) }
                            td { (reference.namespace) }
                            td { (reference.cluster_id) }
                            @for column in &columns { td { (entity.properties.get(column).map(String::as_str).unwrap_or("")) } }
                        }
                    }
                }
            } }
            @if !answer.next_cursor.is_empty() {
                a #next-page href=(url("/console/explorer", &[("q", &query), ("cursor", &answer.next_cursor)])) { "Next page" }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        page(&signed_in.session, "explorer", "Explorer", body),
    )
        .into_response()
}

#[derive(serde::Deserialize, Default)]
pub struct ImagesParameters {
    #[serde(default)]
    image: String,
}

/// Images with vulnerabilities, and one image's vulnerabilities and the workloads running it.
pub async fn images(signed_in: SignedIn, Query(parameters): Query<ImagesParameters>) -> Response {
    let mut search = signed_in.api.search();
    // The images some pod of the fleet runs, with the scanner's counts on each.
    let listing = signed_in
        .api
        .graph()
        .query(GraphQueryRequest {
            query: "image where has pod".to_string(),
            query_json: String::new(),
            page: Some(PageRequest {
                limit: 1_000,
                cursor: String::new(),
            }),
        })
        .await;
    let mut images = match listing {
        Ok(listing) => listing.into_inner().entities,
        Err(status) => return status_page(&status),
    };
    let count = |image: &palisade_proto::v1::Entity, property: &str| -> u64 {
        image
            .properties
            .get(property)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    images.sort_by_key(|image| {
        (
            std::cmp::Reverse(count(image, "critical_vulnerabilities")),
            std::cmp::Reverse(count(image, "high_vulnerabilities")),
            image.r#ref.as_ref().map(|reference| reference.name.clone()),
        )
    });
    let mut detail = None;
    if !parameters.image.is_empty() {
        let vulnerabilities = search
            .search(SearchRequest {
                query: refine("kind:vulnerability", "image", &parameters.image),
                page: Some(PageRequest {
                    limit: 200,
                    cursor: String::new(),
                }),
                sort: SortOrder::SeverityDesc as i32,
                ..SearchRequest::default()
            })
            .await;
        let vulnerabilities = match vulnerabilities {
            Ok(answer) => answer.into_inner(),
            Err(status) => return status_page(&status),
        };
        let workloads = signed_in
            .api
            .graph()
            .query(GraphQueryRequest {
                query: format!(
                    "pod where has image(name = {})",
                    graph_quote(&parameters.image).unwrap_or_default()
                ),
                query_json: String::new(),
                page: Some(PageRequest {
                    limit: 100,
                    cursor: String::new(),
                }),
            })
            .await
            .map(|answer| answer.into_inner().entities)
            .unwrap_or_default();
        detail = Some((vulnerabilities, workloads));
    }
    let body = html! {
        div.results-layout.wide-aside {
            aside.facets aria-label="Images" {
                section.facet data-field="image" {
                    h2 { "Images running in the fleet (" (images.len()) ")" }
                    @if images.is_empty() { p.empty { "No pod in the inventory yet." } }
                    table #images {
                        thead { tr { th { "Image" } th title="critical / high vulnerabilities" { "Crit. / high" } } }
                        tbody {
                            @for image in &images {
                                @let name = image.r#ref.as_ref().map(|reference| reference.name.as_str()).unwrap_or("");
                                tr.image {
                                    td { a.image-link href=(url("/console/images", &[("image", name)])) { (name) } }
                                    td.count {
                                        @if image.properties.get("scanned").map(String::as_str) == Some("true") {
                                            (count(image, "critical_vulnerabilities")) " / " (count(image, "high_vulnerabilities"))
                                        } @else { "not scanned" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.results {
                @if let Some((vulnerabilities, workloads)) = &detail {
                    h2 { (parameters.image) }
                    p.total { (vulnerabilities.total) " vulnerabilities" }
                    div.scroll { table #vulnerabilities {
                        thead { tr { th { "Severity" } th { "Vulnerability" } th { "Package" } th { "Installed" } th { "Fixed in" } th { "Layer" } } }
                        tbody {
                            @for hit in &vulnerabilities.hits {
                                @if let Some(search_hit::Document::Finding(finding)) = &hit.document {
                                    @let detail = match &finding.detail { Some(palisade_proto::v1::finding::Detail::Vulnerability(detail)) => detail.clone(), _ => Default::default() };
                                    tr.vulnerability {
                                        td { (severity(&finding_severity(finding))) }
                                        td { (detail.vulnerability_id) }
                                        td { (detail.package_name) }
                                        td { (detail.package_version) }
                                        td { @if detail.fixed_version.is_empty() { "no fix" } @else { (detail.fixed_version) } }
                                        td { code { (detail.layer_digest.chars().take(19).collect::<String>()) } }
                                    }
                                }
                            }
                        }
                    } }
                    h2 { "Pods running it" }
                    @if workloads.is_empty() { p.empty { "No pod in the inventory runs this image." } }
                    ul #workloads {
                        @for pod in workloads {
                            @let reference = pod.r#ref.clone().unwrap_or_default();
                            li { (reference.cluster_id) " / " (reference.namespace) " / " (reference.name) }
                        }
                    }
                } @else {
                    p.empty { "Choose an image." }
                }
            }
        }
    };
    page(&signed_in.session, "images", "Images", body).into_response()
}

/// Alert counts per rule, and the rules configuration each agent reported.
pub async fn rules(signed_in: SignedIn) -> Response {
    let counts = signed_in
        .api
        .search()
        .search(SearchRequest {
            query: "kind:alert".to_string(),
            page: Some(PageRequest {
                limit: 1,
                cursor: String::new(),
            }),
            facets: vec!["rule:1000".to_string(), "source:20".to_string()],
            ..SearchRequest::default()
        })
        .await;
    let counts = match counts {
        Ok(counts) => counts.into_inner(),
        Err(status) => return status_page(&status),
    };
    let agents = signed_in
        .api
        .admin()
        .list_agents(ListAgentsRequest::default())
        .await
        .map(|answer| answer.into_inner().agents)
        .ok();
    let pushed = signed_in
        .api
        .admin()
        .get_agent_config(GetAgentConfigRequest::default())
        .await
        .ok()
        .and_then(|answer| answer.into_inner().config);
    let rule_facet = counts.facets.iter().find(|facet| facet.field == "rule");
    let body = html! {
        section.card {
            h2 { "Alerts per rule, all time" }
            @match rule_facet {
                Some(facet) if !facet.buckets.is_empty() => {
                    div.scroll { table #rule-counts {
                        thead { tr { th { "Rule" } th { "Alerts" } } }
                        tbody {
                            @for bucket in &facet.buckets {
                                tr.rule {
                                    td { a href=(url("/console/alerts", &[("q", &refine("", "rule", &bucket.value)), ("range", "all")])) { (bucket.value) } }
                                    td.count { (bucket.count) }
                                }
                            }
                        }
                    } }
                }
                _ => { p.empty { "No alert yet." } }
            }
        }
        section.card {
            h2 { "Rule packs pushed to the agents" }
            @match &pushed {
                Some(config) if !config.rules_files.is_empty() => {
                    table #rule-packs {
                        thead { tr { th { "File" } th { "Rules" } th { "Configuration version" } } }
                        tbody {
                            @for (name, text) in &config.rules_files {
                                tr {
                                    td { (name) }
                                    td { (text.lines().filter(|line| line.trim_start().starts_with("- rule:")).count()) }
                                    td { (config.version) }
                                }
                            }
                        }
                    }
                }
                _ => { p.empty { "No tenant-wide rules pushed: agents run the packs they were started with." } }
            }
        }
        section.card {
            h2 { "Rules configuration of the agents" }
            @match &agents {
                None => { p.empty { "Your key's role may not list agents." } }
                Some(agents) if agents.is_empty() => { p.empty { "No agent has connected yet." } }
                Some(agents) => {
                    table #rule-config {
                        thead { tr { th { "Agent" } th { "Cluster" } th { "Configuration applied" } th { "Load errors" } } }
                        tbody {
                            @for agent in agents {
                                tr {
                                    td { (agent.agent_id) }
                                    td { (agent.cluster_id) }
                                    td { (agent.config_version) }
                                    td { @if agent.config_error.is_empty() { "none" } @else { span.error { (agent.config_error) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&signed_in.session, "rules", "Rules", body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facet_clicks_add_a_quoted_term() {
        assert_eq!(refine("", "rule", "Shell"), "rule:\"Shell\"");
        assert_eq!(refine("*", "namespace", "a\"b"), "namespace:\"a\\\"b\"");
        assert_eq!(refine("bash", "cluster", "c1"), "bash AND cluster:\"c1\"");
        assert_eq!(error_column("at column 7: expected a value"), Some(7));
        assert_eq!(error_column("no position"), None);
    }

    #[test]
    fn explorer_strings_take_the_quote_they_do_not_hold() {
        assert_eq!(graph_quote("web"), Some("\"web\"".to_string()));
        assert_eq!(graph_quote("a\"b"), Some("'a\"b'".to_string()));
        assert_eq!(graph_quote("a\"b'c"), None);
    }

    #[test]
    fn a_custom_range_reads_the_pickers_as_utc() {
        let range = custom_range("custom", "2026-11-28T09:30", "").expect("range");
        assert_eq!(range.start.map(|start| start.seconds), Some(1_795_858_200));
        assert_eq!(range.end, None);
        assert!(
            custom_range("custom", "", "").is_none(),
            "no bound: all time"
        );
        assert!(custom_range("custom", "yesterday", "").is_none());
        assert!(
            custom_range("all", "2026-11-28T09:30", "").is_none(),
            "presets ignore them"
        );
    }

    #[test]
    fn the_builder_makes_the_graphs_query_structure() {
        let parameters = ExplorerParameters {
            entity: "pod".into(),
            p1: "exposed_to_internet".into(),
            p2: "replicas".into(),
            o2: ">=".into(),
            v2: "3".into(),
            related: "vulnerability".into(),
            rp: "severity".into(),
            ro: ">=".into(),
            rv: "critical".into(),
            include: "image, node".into(),
            ..ExplorerParameters::default()
        };
        assert_eq!(
            builder_query(&parameters),
            serde_json::json!({
                "entity": "pod",
                "where": {"and": [
                    {"property": "exposed_to_internet", "op": "=", "value": true},
                    {"property": "replicas", "op": ">=", "value": 3},
                    {"related": {"entity": "vulnerability",
                                 "where": {"property": "severity", "op": ">=", "value": "critical"}}}
                ]},
                "include": ["image", "node"]
            })
        );
        let bare = ExplorerParameters {
            entity: "node".into(),
            ..ExplorerParameters::default()
        };
        assert_eq!(builder_query(&bare), serde_json::json!({"entity": "node"}));
    }
}
