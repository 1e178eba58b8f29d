//! The web console in a real browser: headless Chromium, driven over WebDriver, uses the
//! console of a real `palisade up` as a person would. A tenant's API key signs in; a typed
//! alert query and a clicked facet value narrow the alert list to rows that all carry that
//! value; an alert's page shows its rule and MITRE technique; an attack path of the real
//! Kubernetes Goat inventory is drawn with one step per entity and a technique on each edge;
//! an explorer template fills a results table; after signing out the alerts page sends the
//! browser back to the sign-in page. A screenshot of every step lands in
//! `target/console-screenshots/`. A second test checks the browser harness alone.
//!
//! The HTTP listener serves TLS with a certificate of the server's own CA, which Chromium does
//! not know: these tests (only these) start it with `--ignore-certificate-errors`.

mod common;

use std::time::Duration;

use common::browser::Browser;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::graph_service_client::GraphServiceClient;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{
    Alert, AttackPath, EntityRef, ListAttackPathsRequest, Mitre, PageRequest, Priority,
    PublishAlertsRequest, SearchRequest,
};
use palisade_testkit::{Server, corpus_path};
use tokio::time::Instant;

/// Chromium's arguments for a test server: its listener's certificate is signed by the
/// server's own CA.
const TEST_SERVER_ARGUMENTS: &[&str] = &["--ignore-certificate-errors"];

/// The tenant the console is used as.
const TENANT: &str = "console";

/// The cluster the tenant's alerts and inventory belong to.
const CLUSTER: &str = "goat";

/// The shell rule, its technique and the namespaces its alerts are spread over (two each).
const SHELL_RULE: &str = "Terminal shell in container";
const SHELL_TECHNIQUE: &str = "T1059";
const NAMESPACES: [&str; 3] = ["payments", "frontend", "kube-system"];

/// The facet value the test clicks, and how many shell alerts carry it.
const CLICKED_NAMESPACE: &str = "payments";
const SHELL_ALERTS_IN_CLICKED_NAMESPACE: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_harness_loads_a_page() {
    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));
    let browser = Browser::start(TEST_SERVER_ARGUMENTS).await;

    let healthz = format!("{}/healthz", server.http_url);
    browser.goto("healthz", &healthz).await;
    let body = browser.wait_for("healthz", "body").await;
    let text = body.text().await.expect("the healthz page's text");
    assert_eq!(text.trim(), "ok", "healthz page at {healthz}");

    let screenshot = browser.screenshot("harness-healthz").await;
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        screenshot.display()
    );

    // A clean shutdown leaves no chromedriver listening.
    let port = browser.driver_port();
    browser.shutdown().await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "chromedriver still answers on port {port} after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_signs_in_searches_alerts_follows_an_attack_path_explores_and_signs_out() {
    let temp = tempfile::tempdir().expect("temp");
    // The tenant's inventory: Kubernetes Goat's real scenario manifests, read at start. Images
    // are not scanned (there is no registry to pull them from); the paths come from the
    // manifests alone.
    let config = temp.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[graph]\nscan_images = false\n\
             [[graph.sources]]\ntenant = {TENANT:?}\ncluster = {CLUSTER:?}\npath = {:?}\n",
            corpus_path("k8s/kubernetes-goat/scenarios")
                .display()
                .to_string(),
        ),
    )
    .expect("config");
    let server = Server::start_with_config(&temp.path().join("data"), Some(&config));
    let created = common::json_output(
        &server.cli(&["admin", "tenant", "create", TENANT, "--format", "json"]),
    );
    let api_key = created["api_key"].as_str().expect("api_key").to_string();

    let published = publish_alerts(&server, &api_key).await;
    wait_until_searchable(&server, &api_key, published).await;
    let paths = wait_for_attack_paths(&server, &api_key).await;

    let browser = Browser::start(TEST_SERVER_ARGUMENTS).await;
    let console = format!("{}/console", server.http_url);

    // Sign-in: a wrong key is refused on the page, the tenant's key leads to the overview.
    browser.goto("sign-in", &format!("{console}/signin")).await;
    browser.wait_for("sign-in", "form#signin").await;
    browser
        .wait_for("sign-in", "form#signin input[type=hidden][name=csrf]")
        .await;
    let key_field = browser
        .wait_for("sign-in", "input#api-key[name=api_key]")
        .await;
    key_field
        .send_keys("not-a-key")
        .await
        .expect("typing into input#api-key");
    let submit = browser.wait_for("sign-in", "button#signin-submit").await;
    browser
        .click_and_wait_for_page(&submit, "button#signin-submit (wrong key) on sign-in")
        .await;
    browser
        .wait_for("sign-in after a wrong key", ".error")
        .await;
    browser.screenshot("01-signin-refused").await;
    let key_field = browser
        .wait_for("sign-in after a wrong key", "input#api-key")
        .await;
    key_field.clear().await.expect("clearing input#api-key");
    key_field
        .send_keys(&api_key)
        .await
        .expect("typing into input#api-key");
    let submit = browser
        .wait_for("sign-in after a wrong key", "button#signin-submit")
        .await;
    browser
        .click_and_wait_for_page(&submit, "button#signin-submit on sign-in")
        .await;
    assert_eq!(
        browser.current_path().await,
        "/console/",
        "signing in leads to the overview"
    );
    for page in ["overview", "alerts", "paths", "explorer", "images", "rules"] {
        browser
            .wait_for("overview", &format!("nav#nav a[data-page={page}]"))
            .await;
    }
    browser.screenshot("02-overview").await;

    // Alerts: a typed query, then a facet value.
    let alerts_link = browser
        .wait_for("overview", "nav#nav a[data-page=alerts]")
        .await;
    browser
        .click_and_wait_for_page(&alerts_link, "a[data-page=alerts] in nav#nav on overview")
        .await;
    browser.wait_for("alerts", "table#alerts").await;
    let query_field = browser
        .wait_for("alerts", "form#search input#query[name=q]")
        .await;
    query_field.clear().await.expect("clearing input#query");
    query_field
        .send_keys("proc.name:bash")
        .await
        .expect("typing into input#query");
    let search = browser
        .wait_for("alerts", "form#search button#search-submit")
        .await;
    browser
        .click_and_wait_for_page(&search, "button#search-submit on alerts")
        .await;
    browser
        .wait_for("alerts for proc.name:bash", "table#alerts tr.alert")
        .await;
    let shell_rows = column_texts(&browser, "alerts for proc.name:bash", "rule").await;
    assert_eq!(
        shell_rows.len(),
        published.shell,
        "alerts for proc.name:bash: one tr.alert per shell alert"
    );
    assert!(
        shell_rows.iter().all(|rule| rule == SHELL_RULE),
        "alerts for proc.name:bash: every td.rule is {SHELL_RULE:?}: {shell_rows:?}"
    );
    browser.screenshot("03-alerts-query").await;

    let facet_value = browser
        .wait_for(
            "alerts for proc.name:bash",
            &format!(
                "section.facet[data-field=namespace] a.facet-value[data-value={CLICKED_NAMESPACE}]"
            ),
        )
        .await;
    browser
        .click_and_wait_for_page(
            &facet_value,
            "a.facet-value[data-value=payments] in section.facet[data-field=namespace] on alerts",
        )
        .await;
    browser
        .wait_for("alerts in namespace payments", "table#alerts tr.alert")
        .await;
    let namespaces = column_texts(&browser, "alerts in namespace payments", "namespace").await;
    assert_eq!(
        namespaces.len(),
        SHELL_ALERTS_IN_CLICKED_NAMESPACE,
        "alerts in namespace payments: the query and the facet both hold: {namespaces:?}"
    );
    assert!(
        namespaces
            .iter()
            .all(|namespace| namespace == CLICKED_NAMESPACE),
        "alerts in namespace payments: every td.namespace is {CLICKED_NAMESPACE}: {namespaces:?}"
    );
    let rules = column_texts(&browser, "alerts in namespace payments", "rule").await;
    assert!(
        rules.iter().all(|rule| rule == SHELL_RULE),
        "alerts in namespace payments: the typed query still holds: {rules:?}"
    );
    let clusters = column_texts(&browser, "alerts in namespace payments", "cluster").await;
    assert!(
        clusters.iter().all(|cluster| cluster == CLUSTER),
        "alerts in namespace payments: every td.cluster is {CLUSTER}: {clusters:?}"
    );
    browser.screenshot("04-alerts-facet").await;

    // One alert: its rule and its MITRE technique.
    let alert_link = browser
        .wait_for("alerts in namespace payments", "tr.alert a.alert-link")
        .await;
    let alert_href = alert_link
        .attr("href")
        .await
        .expect("a.alert-link's href")
        .expect("a.alert-link has an href");
    assert!(
        alert_href.contains("/console/alerts/"),
        "a.alert-link leads to /console/alerts/{{id}}: {alert_href}"
    );
    browser
        .click_and_wait_for_page(&alert_link, "a.alert-link on alerts")
        .await;
    let rule = browser.wait_for("alert detail", "#alert-rule").await;
    assert_eq!(
        rule.text().await.expect("#alert-rule's text").trim(),
        SHELL_RULE,
        "alert detail: #alert-rule"
    );
    let terms = browser.find_all("alert detail", "dl#alert-detail dt").await;
    let descriptions = browser.find_all("alert detail", "dl#alert-detail dd").await;
    assert!(
        !terms.is_empty() && terms.len() == descriptions.len(),
        "alert detail: dl#alert-detail holds dt/dd pairs ({} dt, {} dd)",
        terms.len(),
        descriptions.len()
    );
    let mitre = browser.wait_for("alert detail", "#alert-mitre").await;
    let mitre = mitre.text().await.expect("#alert-mitre's text");
    assert!(
        mitre.contains(SHELL_TECHNIQUE),
        "alert detail: #alert-mitre shows {SHELL_TECHNIQUE}: {mitre:?}"
    );
    browser.screenshot("05-alert-detail").await;

    // Attack paths: the list, then one path's picture.
    let paths_link = browser
        .wait_for("alert detail", "nav#nav a[data-page=paths]")
        .await;
    browser
        .click_and_wait_for_page(&paths_link, "a[data-page=paths] in nav#nav on alert detail")
        .await;
    browser
        .wait_for("attack paths", "table#paths tr.path")
        .await;
    browser.screenshot("06-paths").await;
    let path_link = browser
        .wait_for("attack paths", "tr.path a.path-link")
        .await;
    browser
        .click_and_wait_for_page(&path_link, "a.path-link on attack paths")
        .await;
    let graph = browser.wait_for("attack path", "svg#path-graph").await;
    let page_path = browser.current_path().await;
    let path_id = percent_decode(
        page_path
            .strip_prefix("/console/paths/")
            .unwrap_or_else(|| panic!("a.path-link leads to /console/paths/{{id}}: {page_path}")),
    );
    let path = paths
        .iter()
        .find(|path| path.id == path_id)
        .unwrap_or_else(|| {
            panic!(
                "attack path: {path_id} is none of the tenant's paths ({:?})",
                paths.iter().map(|path| &path.id).collect::<Vec<_>>()
            )
        });
    let steps = graph
        .find_all(fantoccini::Locator::Css("g.step"))
        .await
        .expect("g.step in svg#path-graph");
    assert_eq!(
        steps.len(),
        path.steps.len(),
        "attack path {path_id}: one g.step in svg#path-graph per entity of the path"
    );
    for (drawn, step) in steps.iter().zip(&path.steps) {
        let kind = drawn
            .attr("data-kind")
            .await
            .expect("g.step's data-kind")
            .unwrap_or_default();
        let expected = step
            .entity
            .as_ref()
            .and_then(|entity| entity.r#ref.as_ref())
            .map(|reference| reference.kind.clone())
            .unwrap_or_default();
        assert_eq!(
            kind, expected,
            "attack path {path_id}: g.step[data-kind] follows the path's entities in order"
        );
    }
    let labels = graph
        .find_all(fantoccini::Locator::Css("text.technique"))
        .await
        .expect("text.technique in svg#path-graph");
    assert_eq!(
        labels.len(),
        path.steps.len() - 1,
        "attack path {path_id}: one text.technique in svg#path-graph per edge"
    );
    for label in &labels {
        let text = label.text().await.expect("text.technique's text");
        let names_a_technique = path.steps.iter().any(|step| {
            (!step.technique.is_empty() && text.contains(&step.technique))
                || (!step.mitre_id.is_empty() && text.contains(&step.mitre_id))
        });
        assert!(
            names_a_technique,
            "attack path {path_id}: text.technique {text:?} names a technique of the path"
        );
    }
    let remediation = browser.find_all("attack path", "ol#remediation li").await;
    assert_eq!(
        remediation.len(),
        path.remediation.len(),
        "attack path {path_id}: ol#remediation lists each remediation"
    );
    browser.screenshot("07-path-graph").await;

    // Explorer: a template runs and fills the results table.
    let explorer_link = browser
        .wait_for("attack path", "nav#nav a[data-page=explorer]")
        .await;
    browser
        .click_and_wait_for_page(
            &explorer_link,
            "a[data-page=explorer] in nav#nav on attack path",
        )
        .await;
    browser
        .wait_for("explorer", "form#explorer textarea#explorer-query[name=q]")
        .await;
    browser
        .wait_for("explorer", "form#explorer button#explorer-submit")
        .await;
    let template_ids = template_ids(&browser).await;
    assert!(
        !template_ids.is_empty(),
        "explorer: at least one a.template[data-id]"
    );
    // Not every template matches Kubernetes Goat (nothing here is scanned for
    // vulnerabilities): run them in order until one fills the table.
    let mut tried = Vec::new();
    let mut rows = 0;
    for template_id in &template_ids {
        let template = browser
            .wait_for(
                "explorer",
                &format!("a.template[data-id=\"{template_id}\"]"),
            )
            .await;
        browser
            .click_and_wait_for_page(
                &template,
                &format!("a.template[data-id={template_id}] on explorer"),
            )
            .await;
        let page = format!("explorer after template {template_id}");
        browser.wait_for(&page, "table#results").await;
        rows = browser
            .find_all(&page, "table#results tr.result")
            .await
            .len();
        tried.push((template_id.clone(), rows));
        if rows > 0 {
            break;
        }
    }
    assert!(
        rows > 0,
        "explorer: no template gave table#results a tr.result: {tried:?}"
    );
    let (template_id, _) = tried.last().expect("a template ran").clone();
    let page = format!("explorer after template {template_id}");
    let query = browser
        .wait_for(&page, "textarea#explorer-query")
        .await
        .prop("value")
        .await
        .expect("textarea#explorer-query's value")
        .unwrap_or_default();
    assert!(
        !query.trim().is_empty(),
        "{page}: the template's query is in textarea#explorer-query"
    );
    browser.screenshot("08-explorer-template").await;
    // The share link reproduces the query.
    let share = browser
        .wait_for(&page, "a#share-link")
        .await
        .attr("href")
        .await
        .expect("a#share-link's href")
        .expect("a#share-link has an href");
    let share = if share.starts_with('/') {
        format!("{}{share}", server.http_url)
    } else {
        share
    };
    browser.goto("explorer share link", &share).await;
    browser
        .wait_for("explorer share link", "table#results")
        .await;
    let shared_rows = browser
        .find_all("explorer share link", "table#results tr.result")
        .await
        .len();
    assert_eq!(
        shared_rows, rows,
        "explorer share link {share}: the same tr.result rows as the template"
    );

    // Images: the images the fleet runs, and for one of them the pods running it.
    browser.goto("images", &format!("{console}/images")).await;
    browser.wait_for("images", "table#images tr.image").await;
    let image = browser.wait_for("images", "a.image-link").await;
    browser
        .click_and_wait_for_page(&image, "a.image-link on images")
        .await;
    let pods = browser.find_all("image detail", "ul#workloads li").await;
    assert!(
        !pods.is_empty(),
        "image detail: ul#workloads lists the pods running the image"
    );
    browser.screenshot("09-image-detail").await;

    // Keyboard: from the top of a page, Tab reaches the skip link first, then the pages.
    browser
        .goto("alerts by keyboard", &format!("{console}/alerts?range=all"))
        .await;
    let body = browser.wait_for("alerts by keyboard", "body").await;
    let tab = char::from(fantoccini::key::Key::Tab).to_string();
    let mut focused = Vec::new();
    for _ in 0..3 {
        body.send_keys(&tab).await.expect("alerts by keyboard: Tab");
        let answer = browser
            .client()
            .execute(
                "const e = document.activeElement; return e.className + '|' + (e.dataset.page || '');",
                vec![],
            )
            .await
            .expect("alerts by keyboard: the focused element");
        focused.push(answer.as_str().unwrap_or_default().to_string());
    }
    assert_eq!(
        focused,
        ["skip|", "|overview", "|alerts"],
        "alerts by keyboard: Tab goes to the skip link, then the pages in order"
    );

    // On a phone's width the alerts page fits the screen: tables scroll inside their box.
    browser
        .client()
        .set_window_size(390, 844)
        .await
        .expect("a phone's window size");
    browser
        .goto("alerts on a phone", &format!("{console}/alerts?range=all"))
        .await;
    browser.wait_for("alerts on a phone", "table#alerts").await;
    let overflow = browser
        .client()
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .expect("alerts on a phone: the page's width");
    browser.screenshot("10-alerts-phone").await;
    assert!(
        overflow.as_i64().is_some_and(|wider| wider <= 0),
        "alerts on a phone: the page is {overflow} px wider than the screen"
    );
    browser
        .client()
        .set_window_size(1280, 900)
        .await
        .expect("the desktop window size");

    // Sign-out: the alerts page then leads to the sign-in page.
    browser.goto("explorer share link", &share).await;
    let sign_out = browser
        .wait_for("explorer share link", "form#signout button#signout-submit")
        .await;
    browser
        .click_and_wait_for_page(&sign_out, "button#signout-submit on explorer")
        .await;
    browser.screenshot("11-signed-out").await;
    browser
        .goto("alerts after sign-out", &format!("{console}/alerts"))
        .await;
    browser
        .wait_for("alerts after sign-out", "form#signin")
        .await;
    assert_eq!(
        browser.current_path().await,
        "/console/signin",
        "alerts after sign-out: redirected to the sign-in page"
    );
    browser.screenshot("12-alerts-after-signout").await;
    browser.shutdown().await;
}

/// How many alerts the test published, in all and of the shell rule.
#[derive(Debug, Clone, Copy)]
struct Published {
    total: usize,
    shell: usize,
}

/// Publishes the tenant's alerts, all of `CLUSTER` and from the last minutes (inside the
/// alerts page's default time range): the shell rule twice in each of `NAMESPACES`, half
/// Warning and half Critical, and a credential-read rule whose process is not bash.
async fn publish_alerts(server: &Server, api_key: &str) -> Published {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut alerts = Vec::new();
    for (index, namespace) in NAMESPACES.iter().cycle().take(6).enumerate() {
        alerts.push(alert(
            &format!("console-shell-{index}"),
            SHELL_RULE,
            "bash",
            namespace,
            if index % 2 == 0 {
                Priority::Warning
            } else {
                Priority::Critical
            },
            (SHELL_TECHNIQUE, "execution"),
            now - 60 * index as i64,
        ));
    }
    let shell = alerts.len();
    for index in 0..4 {
        alerts.push(alert(
            &format!("console-read-{index}"),
            "Read sensitive file untrusted",
            "cat",
            NAMESPACES[index % 2],
            Priority::Error,
            ("T1555", "credential-access"),
            now - 90 * index as i64,
        ));
    }
    let total = alerts.len();
    let (channel, interceptor) = common::authenticated(server, api_key).await;
    let response = AlertServiceClient::with_interceptor(channel, interceptor)
        .publish_alerts(PublishAlertsRequest { alerts })
        .await
        .expect("the tenant publishes its alerts")
        .into_inner();
    assert_eq!(response.accepted as usize, total);
    Published { total, shell }
}

/// One alert of a pod in `namespace` of `CLUSTER`.
fn alert(
    id: &str,
    rule: &str,
    process: &str,
    namespace: &str,
    priority: Priority,
    (technique, tactic): (&str, &str),
    seconds: i64,
) -> Alert {
    Alert {
        id: id.to_string(),
        cluster_id: CLUSTER.to_string(),
        source: "syscall".into(),
        rule: rule.to_string(),
        priority: priority as i32,
        output: format!("{rule} (user=root proc.name={process} k8s.ns.name={namespace})"),
        output_fields: [
            ("proc.name".to_string(), process.to_string()),
            ("k8s.ns.name".to_string(), namespace.to_string()),
            ("k8s.pod.name".to_string(), format!("{id}-pod")),
        ]
        .into_iter()
        .collect(),
        tags: vec!["container".into(), technique.to_string()],
        mitre: Some(Mitre {
            technique_ids: vec![technique.to_string()],
            tactics: vec![tactic.to_string()],
        }),
        entities: vec![EntityRef {
            kind: "pod".into(),
            name: format!("{id}-pod"),
            namespace: namespace.to_string(),
            cluster_id: CLUSTER.to_string(),
            uid: String::new(),
        }],
        time: Some(Timestamp { seconds, nanos: 0 }),
        hostname: "goat-node-1".into(),
        ..Alert::default()
    }
}

/// Waits until the tenant's search finds every published alert.
async fn wait_until_searchable(server: &Server, api_key: &str, published: Published) {
    let (channel, interceptor) = common::authenticated(server, api_key).await;
    let mut search = SearchServiceClient::with_interceptor(channel, interceptor);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let total = search
            .search(SearchRequest {
                query: "*".into(),
                ..SearchRequest::default()
            })
            .await
            .expect("search")
            .into_inner()
            .total;
        if total == published.total as u64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{total} of the tenant's {} alerts searchable after 60 s",
            published.total
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the tenant's graph has attack paths from its Kubernetes Goat inventory; returns
/// them all.
async fn wait_for_attack_paths(server: &Server, api_key: &str) -> Vec<AttackPath> {
    let (channel, interceptor) = common::authenticated(server, api_key).await;
    let mut graph = GraphServiceClient::with_interceptor(channel, interceptor);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut paths = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = graph
                .list_attack_paths(ListAttackPathsRequest {
                    page: Some(PageRequest {
                        limit: 1000,
                        cursor: cursor.clone(),
                    }),
                    ..ListAttackPathsRequest::default()
                })
                .await
                .expect("list attack paths")
                .into_inner();
            paths.extend(page.paths);
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        if !paths.is_empty() {
            return paths;
        }
        assert!(
            Instant::now() < deadline,
            "no attack path from Kubernetes Goat for tenant {TENANT} after 120 s; server log:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The texts of the `td.CLASS` cells of every `tr.alert` of the alerts page `page`.
async fn column_texts(browser: &Browser, page: &str, class: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for row in browser.find_all(page, "table#alerts tr.alert").await {
        let cell = row
            .find(fantoccini::Locator::Css(&format!("td.{class}")))
            .await
            .unwrap_or_else(|error| panic!("{page}: a tr.alert without td.{class}: {error}"));
        let text = cell
            .text()
            .await
            .unwrap_or_else(|error| panic!("{page}: td.{class}'s text: {error}"));
        texts.push(text.trim().to_string());
    }
    texts
}

/// The `data-id` of every `a.template` of the explorer page, in page order.
async fn template_ids(browser: &Browser) -> Vec<String> {
    let mut ids = Vec::new();
    for template in browser.find_all("explorer", "a.template[data-id]").await {
        let id = template
            .attr("data-id")
            .await
            .expect("a.template's data-id")
            .unwrap_or_default();
        ids.push(id);
    }
    ids
}

/// A URL path segment with its `%XX` escapes decoded.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| segment.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
