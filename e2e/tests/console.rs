//! The web console over HTTP against a real server: every page carries the security headers;
//! nothing but the sign-in page answers without a session; sign-in and sign-out refuse a
//! form without the right CSRF token; a second tenant's key sees none of the first tenant's
//! alerts or graph (paths, entities, images) on any page; a revoked key's session ends at once.

mod common;

use palisade_core::auth::BearerToken;
use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::graph_service_client::GraphServiceClient;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{
    Alert, CreateTenantRequest, ListApiKeysRequest, ListAttackPathsRequest, Mitre, Priority,
    PublishAlertsRequest, RevokeApiKeyRequest, SearchRequest,
};
use palisade_testkit::{Server, corpus_path};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The console pages a signed-in browser can open.
const PAGES: &[&str] = &[
    "/console/",
    "/console/alerts?range=all",
    "/console/paths",
    "/console/explorer?q=pod",
    "/console/images",
    "/console/rules",
];

async fn channel_as(server: &Server, token: &str) -> InterceptedService<Channel, BearerToken> {
    InterceptedService::new(
        server.channel().await,
        BearerToken::new(token).expect("a key a header can carry"),
    )
}

/// A browser: an HTTPS client trusting the server's CA, following no redirect, keeping its
/// cookies by hand.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = std::fs::read(server.ca_file()).expect("CA file");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser {
            client,
            base: server.http_url.trim_end_matches('/').to_string(),
            cookies: Vec::new(),
        }
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().expect("cookie");
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(kept, _)| kept != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        self.page(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {path}: {error}"));
        self.page(response).await
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    /// The CSRF token of the page's form.
    fn csrf(page: &Page) -> String {
        let start = page
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in:\n{}", page.body))
            + "name=\"csrf\" value=\"".len();
        page.body[start..start + 64].to_string()
    }

    /// Signs in with `key`; returns the first signed-in page's CSRF token.
    async fn sign_in(&mut self, key: &str) -> String {
        let form = self.get("/console/signin").await;
        let csrf = Browser::csrf(&form);
        let answer = self
            .post("/console/signin", &[("api_key", key), ("csrf", &csrf)])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let overview = self.get("/console/").await;
        assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
        Browser::csrf(&overview)
    }
}

fn location(page: &Page) -> &str {
    page.headers
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

fn assert_security_headers(path: &str, page: &Page) {
    for (name, wanted) in [
        ("content-security-policy", "script-src 'self'"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("strict-transport-security", "max-age="),
        ("cache-control", "no-store"),
    ] {
        let value = page
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{path}: no {name} header"));
        assert!(value.contains(wanted), "{path}: {name} is {value:?}");
    }
    assert!(
        !page.body.contains("<script>") && !page.body.contains(" style="),
        "{path}: inline script or style"
    );
}

fn alerts(rule: &str, technique: &str) -> Vec<Alert> {
    (0..3)
        .map(|index| Alert {
            id: format!("{}-{index}", rule.replace(' ', "-")),
            rule: rule.to_string(),
            output: format!("{rule} fired {index}"),
            priority: Priority::Critical as i32,
            source: "syscall".into(),
            mitre: Some(Mitre {
                technique_ids: vec![technique.to_string()],
                tactics: vec!["execution".to_string()],
            }),
            ..Alert::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_csrf_headers_and_tenant_isolation() {
    let temp = tempfile::tempdir().expect("temp");
    // Tenant A also has a graph: Kubernetes Goat's manifests, with their attack paths.
    let config = temp.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[graph]\nscan_images = false\n\
             [[graph.sources]]\ntenant = \"console-a\"\ncluster = \"goat\"\npath = {:?}\n",
            corpus_path("k8s/kubernetes-goat/scenarios")
                .display()
                .to_string(),
        ),
    )
    .expect("config");
    let server = Server::start_with_config(&temp.path().join("data"), Some(&config));
    let admin = server.admin_token();

    // Two tenants, each with alerts of its own rule.
    let mut keys = Vec::new();
    for name in ["console-a", "console-b"] {
        let created = AdminServiceClient::new(channel_as(&server, &admin).await)
            .create_tenant(CreateTenantRequest { name: name.into() })
            .await
            .expect("create tenant")
            .into_inner();
        keys.push(created.api_key);
    }
    let (key_a, key_b) = (keys[0].clone(), keys[1].clone());
    AlertServiceClient::new(channel_as(&server, &key_a).await)
        .publish_alerts(PublishAlertsRequest {
            alerts: alerts("Tenant A secret rule", "T1059"),
        })
        .await
        .expect("publish A");
    AlertServiceClient::new(channel_as(&server, &key_b).await)
        .publish_alerts(PublishAlertsRequest {
            alerts: alerts("Tenant B own rule", "T1611"),
        })
        .await
        .expect("publish B");

    // Both tenants' alerts searchable before anything is compared.
    for key in [&key_a, &key_b] {
        let mut search = SearchServiceClient::new(channel_as(&server, key).await);
        let mut total = 0;
        for _ in 0..120 {
            total = search
                .search(SearchRequest::default())
                .await
                .expect("search")
                .into_inner()
                .total;
            if total == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert_eq!(total, 3, "each tenant's alerts searchable");
    }

    // Tenant A's attack paths are on its graph before anything is compared.
    let mut graph_a = GraphServiceClient::new(channel_as(&server, &key_a).await);
    let mut paths_a = Vec::new();
    for _ in 0..120 {
        paths_a = graph_a
            .list_attack_paths(ListAttackPathsRequest::default())
            .await
            .expect("tenant A's paths")
            .into_inner()
            .paths;
        if !paths_a.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let path_a = paths_a
        .first()
        .expect("tenant A has attack paths")
        .id
        .clone();

    // Without a session: only the sign-in page and the assets answer; every page sends the
    // browser to sign in, and sign-out is refused.
    let mut anonymous = Browser::new(&server);
    let signin = anonymous.get("/console/signin").await;
    assert_eq!(signin.status, StatusCode::OK);
    assert_security_headers("/console/signin", &signin);
    for path in PAGES
        .iter()
        .copied()
        .chain(["/console/alerts/Tenant-A-secret-rule-0"])
    {
        let page = anonymous.get(path).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{path} without a session"
        );
        assert_eq!(location(&page), "/console/signin", "{path}");
        assert!(!page.body.contains("Tenant A"), "{path}");
    }
    let refused = anonymous.post("/console/signout", &[("csrf", "x")]).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&refused), "/console/signin");

    // Sign-in refuses a form without the token of its own page, and a wrong key.
    let mut browser = Browser::new(&server);
    let form = browser.get("/console/signin").await;
    let forged = browser
        .post(
            "/console/signin",
            &[("api_key", &key_b), ("csrf", &"0".repeat(64))],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "forged sign-in form");
    assert!(
        !forged.headers.contains_key(SET_COOKIE)
            || !browser
                .cookies
                .iter()
                .any(|(name, _)| name == "palisade_session")
    );
    let csrf = Browser::csrf(&form);
    let wrong = browser
        .post(
            "/console/signin",
            &[("api_key", "not-a-key"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("class=\"error\""));

    // Tenant B signed in: its own alerts, none of tenant A's, on every page.
    let csrf_b = browser.sign_in(&key_b).await;
    for path in PAGES {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert_security_headers(path, &page);
        assert!(
            !page.body.contains("Tenant A"),
            "{path} shows tenant A's data"
        );
    }
    // Nor tenant A's graph: no path, entity or image of it is listed for B (the query itself
    // is echoed in its box, so rows are counted rather than names looked for).
    for path in [
        "/console/paths",
        "/console/explorer?q=container",
        "/console/explorer?q=container%20where%20name%20%3D%20%22health-check%22",
        "/console/explorer?entity=pod&include=image",
        "/console/images",
        "/console/images?image=madhuakula%2Fk8s-goat-health-check",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for row in [
            "<tr class=\"path\"",
            "<tr class=\"result\"",
            "<tr class=\"image\"",
            "<li>goat / ",
        ] {
            assert!(
                !page.body.contains(row),
                "{path} lists tenant A's graph ({row})"
            );
        }
    }
    for path in [
        "/console/paths",
        "/console/images",
        "/console/explorer?q=pod",
    ] {
        let page = browser.get(path).await;
        assert!(
            !page.body.contains("madhuakula") && !page.body.contains("health-check"),
            "{path}"
        );
    }
    let other_path = browser.get(&format!("/console/paths/{path_a}")).await;
    assert_eq!(other_path.status, StatusCode::NOT_FOUND, "tenant A's path");
    assert!(!other_path.body.contains("health-check"));

    let own = browser.get("/console/alerts?range=all&q=rule%3AB").await;
    assert!(own.body.contains("Tenant B own rule"), "{}", own.body);
    let own_alert = browser.get("/console/alerts/Tenant-B-own-rule-0").await;
    assert_eq!(own_alert.status, StatusCode::OK);
    assert!(own_alert.body.contains("T1611"));
    // Whatever it sends: tenant A's alert id, a query naming the tenant, A's rule.
    let other = browser.get("/console/alerts/Tenant-A-secret-rule-0").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
    assert!(!other.body.contains("T1059"));
    for query in [
        "tenant%3Aconsole-a",
        "rule%3A%22Tenant%20A%20secret%20rule%22",
        "secret",
    ] {
        let page = browser
            .get(&format!("/console/alerts?range=all&q={query}"))
            .await;
        // The query is echoed in its box; tenant A's alerts (their ids and output) are not.
        assert!(
            !page.body.contains("Tenant-A-secret-rule")
                && !page.body.contains("Tenant A secret rule fired"),
            "query {query}"
        );
        assert!(
            page.body.contains("0 matching") || page.body.contains("query-error"),
            "query {query}"
        );
    }

    // Sign-out needs the session's token; after it the session is gone.
    let forged = browser
        .post("/console/signout", &[("csrf", &"0".repeat(64))])
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "sign-out without the token"
    );
    assert_eq!(browser.get("/console/rules").await.status, StatusCode::OK);
    let out = browser.post("/console/signout", &[("csrf", &csrf_b)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = browser.get("/console/alerts").await;
    assert_eq!(location(&after), "/console/signin", "signed out");

    // Tenant A's own view, then a revoked key's session ends at once.
    let mut revoked = Browser::new(&server);
    revoked.sign_in(&key_a).await;
    assert!(
        revoked
            .get("/console/alerts?range=all")
            .await
            .body
            .contains("Tenant A secret rule")
    );
    // What B could not see, A sees: the rows the isolation checks above count.
    for (path, row) in [
        ("/console/paths", "<tr class=\"path\""),
        ("/console/explorer?q=container", "<tr class=\"result\""),
        ("/console/images", "<tr class=\"image\""),
    ] {
        let page = revoked.get(path).await;
        assert!(page.body.contains(row), "tenant A's {path} lists {row}");
    }
    let mut admin_a = AdminServiceClient::new(channel_as(&server, &key_a).await);
    let listed = admin_a
        .list_api_keys(ListApiKeysRequest::default())
        .await
        .expect("keys")
        .into_inner();
    for key in listed.keys {
        admin_a
            .revoke_api_key(RevokeApiKeyRequest { key_id: key.key_id })
            .await
            .expect("revoke");
    }
    let gone = revoked.get("/console/alerts?range=all").await;
    assert_eq!(
        location(&gone),
        "/console/signin",
        "revoked key: {}",
        gone.body
    );
    assert!(!gone.body.contains("Tenant A secret rule"));
}
