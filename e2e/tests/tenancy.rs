//! Tenancy and roles across every API of a real server: unauthenticated calls get nothing but
//! health; a key of one tenant never reads, counts or changes another tenant's alerts, search
//! documents, graph, keys or clusters, whatever it sends; each role can do only what it
//! allows; a deleted tenant's keys stop working at once.

mod common;

use std::time::Duration;

use common::json_output;
use palisade_core::auth::BearerToken;
use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::agent_service_client::AgentServiceClient;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::graph_service_client::GraphServiceClient;
use palisade_proto::v1::scanner_service_client::ScannerServiceClient;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{
    Alert, CreateApiKeyRequest, CreateTenantRequest, DeleteTenantRequest, GetAlertRequest,
    GetStatusRequest, GetVulnDbStatusRequest, GraphQueryRequest, ListAdminEventsRequest,
    ListApiKeysRequest, ListAttackPathsRequest, ListClustersRequest, ListSavedSearchesRequest,
    ListTenantsRequest, Priority, PublishAlertsRequest, RegisterClusterRequest,
    RevokeClusterCredentialsRequest, Role, SaveSearchRequest, SavedSearch, ScanImageRequest,
    SearchRequest, SetRetentionRequest, TailRequest,
};
use palisade_testkit::Server;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Authed = InterceptedService<Channel, BearerToken>;

async fn channel_as(server: &Server, token: &str) -> Authed {
    let channel = anonymous(server).await;
    InterceptedService::new(
        channel,
        BearerToken::new(token).expect("a key a header can carry"),
    )
}

async fn anonymous(server: &Server) -> Channel {
    server.channel().await
}

fn alerts(tenant_rule: &str, count: usize) -> Vec<Alert> {
    (0..count)
        .map(|index| Alert {
            id: format!("{tenant_rule}-{index}"),
            rule: tenant_rule.to_string(),
            output: format!("{tenant_rule} detection {index}"),
            priority: Priority::Warning as i32,
            source: "syscall".into(),
            ..Alert::default()
        })
        .collect()
}

async fn search_total(channel: Authed, query: &str) -> u64 {
    SearchServiceClient::new(channel)
        .search(SearchRequest {
            query: query.to_string(),
            ..SearchRequest::default()
        })
        .await
        .expect("search")
        .into_inner()
        .total
}

fn code<T>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_calls_get_nothing_but_health() {
    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));
    let channel = anonymous(&server).await;
    assert!(
        tonic_health_client(channel.clone()).await,
        "health answers without a credential"
    );

    let mut refused = Vec::new();
    refused.push(code(
        AlertServiceClient::new(channel.clone())
            .get_alert(GetAlertRequest { id: "x".into() })
            .await,
    ));
    refused.push(code(
        AlertServiceClient::new(channel.clone())
            .publish_alerts(PublishAlertsRequest {
                alerts: alerts("anonymous", 1),
            })
            .await,
    ));
    refused.push(code(
        SearchServiceClient::new(channel.clone())
            .search(SearchRequest::default())
            .await,
    ));
    refused.push(code(
        SearchServiceClient::new(channel.clone())
            .tail(TailRequest::default())
            .await,
    ));
    refused.push(code(
        GraphServiceClient::new(channel.clone())
            .query(GraphQueryRequest {
                query: "pod".into(),
                ..GraphQueryRequest::default()
            })
            .await,
    ));
    refused.push(code(
        GraphServiceClient::new(channel.clone())
            .list_attack_paths(ListAttackPathsRequest::default())
            .await,
    ));
    refused.push(code(
        ScannerServiceClient::new(channel.clone())
            .get_vuln_db_status(GetVulnDbStatusRequest {})
            .await,
    ));
    refused.push(code(
        AdminServiceClient::new(channel.clone())
            .get_status(GetStatusRequest {})
            .await,
    ));
    refused.push(code(
        AdminServiceClient::new(channel.clone())
            .list_clusters(ListClustersRequest {})
            .await,
    ));
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    drop(requests);
    refused.push(code(
        AgentServiceClient::new(channel.clone())
            .connect(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await,
    ));
    assert!(
        refused.iter().all(|code| *code == Code::Unauthenticated),
        "every call without a credential is refused: {refused:?}"
    );
}

/// Whether the standard health service answers SERVING without a credential.
async fn tonic_health_client(channel: Channel) -> bool {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    matches!(response, Ok(response) if response.get_ref().status == 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_confined_and_roles_hold_on_every_api() {
    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));
    let mut operator = AdminServiceClient::new(channel_as(&server, &server.admin_token()).await);
    let acme_admin = operator
        .create_tenant(CreateTenantRequest {
            name: "acme".into(),
        })
        .await
        .expect("acme")
        .into_inner()
        .api_key;
    let globex_admin = operator
        .create_tenant(CreateTenantRequest {
            name: "globex".into(),
        })
        .await
        .expect("globex")
        .into_inner()
        .api_key;
    let acme_reader = AdminServiceClient::new(channel_as(&server, &acme_admin).await)
        .create_api_key(CreateApiKeyRequest {
            name: "dashboard".into(),
            role: Role::ReadOnly as i32,
            ttl_seconds: 0,
        })
        .await
        .expect("read-only key")
        .into_inner()
        .api_key;

    for (token, rule, count) in [
        (&acme_admin, "acme-rule", 30),
        (&globex_admin, "globex-rule", 20),
    ] {
        AlertServiceClient::new(channel_as(&server, token).await)
            .publish_alerts(PublishAlertsRequest {
                alerts: alerts(rule, count),
            })
            .await
            .expect("published");
    }
    // wait until both tenants' alerts are searchable
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while search_total(channel_as(&server, &acme_admin).await, "*").await < 30
        || search_total(channel_as(&server, &globex_admin).await, "*").await < 20
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alerts were not indexed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // search: whatever the query says, acme sees its 30 and none of globex's 20
    for query in [
        "*",
        "globex*",
        "rule:globex-rule",
        "output:globex OR rule:acme-rule",
    ] {
        let total = search_total(channel_as(&server, &acme_admin).await, query).await;
        let expected = if query.contains("acme") || query == "*" {
            30
        } else {
            0
        };
        assert_eq!(total, expected, "acme's query {query:?}");
    }
    for query in ["tenant:globex", "tenant_id:globex OR rule:globex-rule"] {
        let refused = SearchServiceClient::new(channel_as(&server, &acme_admin).await)
            .search(SearchRequest {
                query: query.to_string(),
                ..SearchRequest::default()
            })
            .await
            .expect_err("naming a tenant is an error, not a widening");
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{query:?}: {refused}"
        );
    }
    // alerts: another tenant's id is not found, not forbidden (nothing leaks)
    let cross = AlertServiceClient::new(channel_as(&server, &acme_admin).await)
        .get_alert(GetAlertRequest {
            id: "globex-rule-0".into(),
        })
        .await;
    assert_eq!(code(cross), Code::NotFound);
    // a published alert claiming another tenant lands in the caller's
    let mut claimed = alerts("claims-globex", 1);
    claimed[0].tenant_id = "globex".into();
    AlertServiceClient::new(channel_as(&server, &acme_admin).await)
        .publish_alerts(PublishAlertsRequest { alerts: claimed })
        .await
        .expect("published");
    let stored = AlertServiceClient::new(channel_as(&server, &acme_admin).await)
        .get_alert(GetAlertRequest {
            id: "claims-globex-0".into(),
        })
        .await
        .expect("stored under acme")
        .into_inner()
        .alert
        .expect("alert");
    assert_eq!(stored.tenant_id, "acme");
    assert_eq!(
        code(
            AlertServiceClient::new(channel_as(&server, &globex_admin).await)
                .get_alert(GetAlertRequest {
                    id: "claims-globex-0".into(),
                })
                .await
        ),
        Code::NotFound
    );

    // admin: tenant management is the operator's; clusters, keys and events are per tenant
    let mut acme = AdminServiceClient::new(channel_as(&server, &acme_admin).await);
    assert_eq!(
        code(acme.list_tenants(ListTenantsRequest {}).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            acme.delete_tenant(DeleteTenantRequest {
                id: "globex".into()
            })
            .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            acme.create_tenant(CreateTenantRequest {
                name: "acme-2".into()
            })
            .await
        ),
        Code::PermissionDenied
    );
    let mut globex = AdminServiceClient::new(channel_as(&server, &globex_admin).await);
    globex
        .register_cluster(RegisterClusterRequest {
            name: "globex-prod".into(),
            token_ttl_seconds: 0,
        })
        .await
        .expect("globex registers its cluster");
    assert_eq!(
        code(
            acme.revoke_cluster_credentials(RevokeClusterCredentialsRequest {
                cluster_id: "globex-prod".into(),
                credential_id: String::new(),
            })
            .await
        ),
        Code::NotFound
    );
    let acme_clusters = acme
        .list_clusters(ListClustersRequest {})
        .await
        .expect("list")
        .into_inner()
        .clusters;
    assert!(acme_clusters.is_empty(), "{acme_clusters:?}");
    let acme_keys = acme
        .list_api_keys(ListApiKeysRequest {})
        .await
        .expect("keys")
        .into_inner()
        .keys;
    assert_eq!(acme_keys.len(), 2, "acme's admin and reader keys only");
    let acme_events = acme
        .list_admin_events(ListAdminEventsRequest { limit: 100 })
        .await
        .expect("events")
        .into_inner()
        .events;
    // acme's log holds its own attempts (refused ones too), never globex's registration
    let acme_key_ids: Vec<&str> = acme_keys.iter().map(|key| key.key_id.as_str()).collect();
    assert!(
        acme_events
            .iter()
            .all(|event| acme_key_ids.contains(&event.actor.as_str())),
        "{acme_events:?}"
    );
    assert!(
        acme_events
            .iter()
            .all(|event| event.action != "cluster.register"),
        "{acme_events:?}"
    );
    // status: other tenants get states, not the platform-wide numbers
    let status = acme
        .get_status(GetStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert!(
        status
            .components
            .iter()
            .all(|component| component.detail.is_empty() && component.metrics.is_empty())
    );

    // roles: a read-only key reads, and every write is refused
    let reader = channel_as(&server, &acme_reader).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while search_total(reader.clone(), "*").await < 31 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the claimed alert was not indexed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(search_total(reader.clone(), "*").await, 31);
    let writes = [
        code(
            AlertServiceClient::new(reader.clone())
                .publish_alerts(PublishAlertsRequest {
                    alerts: alerts("reader", 1),
                })
                .await,
        ),
        code(
            SearchServiceClient::new(reader.clone())
                .save_search(SaveSearchRequest {
                    search: Some(SavedSearch {
                        name: "mine".into(),
                        query: "*".into(),
                        ..SavedSearch::default()
                    }),
                })
                .await,
        ),
        code(
            SearchServiceClient::new(reader.clone())
                .set_retention(SetRetentionRequest { days: 1 })
                .await,
        ),
        code(
            ScannerServiceClient::new(reader.clone())
                .scan_image(ScanImageRequest {
                    image: "docker.io/library/alpine:3.20".into(),
                    ..ScanImageRequest::default()
                })
                .await,
        ),
        code(
            AdminServiceClient::new(reader.clone())
                .create_api_key(CreateApiKeyRequest {
                    name: "escalate".into(),
                    role: Role::Admin as i32,
                    ttl_seconds: 0,
                })
                .await,
        ),
        code(
            AdminServiceClient::new(reader.clone())
                .register_cluster(RegisterClusterRequest {
                    name: "sneaky".into(),
                    token_ttl_seconds: 0,
                })
                .await,
        ),
    ];
    assert!(
        writes.iter().all(|code| *code == Code::PermissionDenied),
        "read-only writes: {writes:?}"
    );
    let graph = GraphServiceClient::new(reader)
        .query(GraphQueryRequest {
            query: "pod".into(),
            ..GraphQueryRequest::default()
        })
        .await;
    assert_eq!(code(graph), Code::Ok, "a reader queries its graph");

    // deleting a tenant cuts its keys off at once and erases its data
    SearchServiceClient::new(channel_as(&server, &globex_admin).await)
        .save_search(SaveSearchRequest {
            search: Some(SavedSearch {
                name: "shells".into(),
                query: "proc.name:bash".into(),
                ..SavedSearch::default()
            }),
        })
        .await
        .expect("globex saves a search");
    let deleted =
        json_output(&server.cli(&["admin", "tenant", "delete", "globex", "--format", "json"]));
    assert_eq!(deleted["deleted"], "globex");
    assert_eq!(
        deleted["records_erased"]["alerts"], 20,
        "globex's 20 alerts: {deleted}"
    );
    assert!(
        deleted["admin_events_removed"].as_u64() >= Some(1),
        "globex registered a cluster: {deleted}"
    );
    assert_eq!(
        deleted["search_settings_removed"], 1,
        "globex's saved search: {deleted}"
    );
    let after = SearchServiceClient::new(channel_as(&server, &globex_admin).await)
        .search(SearchRequest::default())
        .await;
    assert_eq!(code(after), Code::Unauthenticated);
    let tenants = json_output(&server.cli(&["admin", "tenant", "list", "--format", "json"]));
    let ids: Vec<&str> = tenants["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|tenant| tenant["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["acme", "default"]);

    // a tenant created again under the same name inherits nothing of the deleted one
    let globex_again = operator
        .create_tenant(CreateTenantRequest {
            name: "globex".into(),
        })
        .await
        .expect("globex again")
        .into_inner()
        .api_key;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while search_total(channel_as(&server, &globex_again).await, "*").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted tenant's alerts are still searchable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let old_alert = AlertServiceClient::new(channel_as(&server, &globex_again).await)
        .get_alert(GetAlertRequest {
            id: "globex-rule-0".into(),
        })
        .await;
    assert_eq!(code(old_alert), Code::NotFound);
    let saved = SearchServiceClient::new(channel_as(&server, &globex_again).await)
        .list_saved_searches(ListSavedSearchesRequest {})
        .await
        .expect("saved searches")
        .into_inner()
        .searches;
    assert!(saved.is_empty(), "{saved:?}");
    let mut again = AdminServiceClient::new(channel_as(&server, &globex_again).await);
    let clusters = again
        .list_clusters(ListClustersRequest {})
        .await
        .expect("clusters")
        .into_inner()
        .clusters;
    assert!(clusters.is_empty(), "{clusters:?}");
    let keys = again
        .list_api_keys(ListApiKeysRequest {})
        .await
        .expect("keys")
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 1, "only the new first admin key: {keys:?}");
    let events = again
        .list_admin_events(ListAdminEventsRequest { limit: 100 })
        .await
        .expect("events")
        .into_inner()
        .events;
    assert!(
        events
            .iter()
            .all(|event| event.action != "cluster.register"),
        "{events:?}"
    );
    // the old key stays refused, and acme keeps everything
    let old_key = SearchServiceClient::new(channel_as(&server, &globex_admin).await)
        .search(SearchRequest::default())
        .await;
    assert_eq!(code(old_key), Code::Unauthenticated);
    assert_eq!(
        search_total(channel_as(&server, &acme_admin).await, "*").await,
        31
    );
}
