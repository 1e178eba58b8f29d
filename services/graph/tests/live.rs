//! The graph service as a server runs it ([`GraphCore`]): inventory from its configured
//! sources, scanner findings and alerts from the durable log, positions kept across restarts;
//! and a live cluster through a kubeconfig context, answered by recorded real API server
//! responses (no kube-apiserver can be installed on the build machines).

use std::path::Path;
use std::time::Duration;

use palisade_core::config::{GraphConfig, InventorySource};
use palisade_core::log::{LogEntry, Topic};
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_graph::live::{
    GraphCore, GraphServiceStatus, GraphSettings, GraphTopics, ImageScanner, ScanOrder,
};
use palisade_graph::model::{EntityKind, image_id};
use palisade_graph::object::ObjectKind;
use palisade_proto::v1::{
    Alert, EntityRef, Finding, FindingKind, Priority, Severity, VulnerabilityDetail, finding,
};
use palisade_testkit::corpus_path;
use prost::Message;

mod replay_server;

fn topics(directory: &Path) -> GraphTopics {
    let store = Store::open(&directory.join("log")).expect("log store");
    GraphTopics {
        alerts: Topic::open(&store, "alerts").expect("alerts topic"),
        findings: Topic::open(&store, "findings").expect("findings topic"),
    }
}

fn settings(directory: &Path, sources: Vec<InventorySource>) -> GraphSettings {
    GraphSettings {
        store_path: directory.join("graph"),
        config: GraphConfig {
            sources,
            ..GraphConfig::default()
        },
    }
}

fn manifest_source(cluster: &str, path: &Path) -> InventorySource {
    InventorySource {
        tenant: "acme".into(),
        cluster: Some(cluster.into()),
        kubeconfig: None,
        context: None,
        path: Some(path.to_path_buf()),
    }
}

fn vulnerability(advisory: &str, image: &str, resolved: bool) -> Vec<u8> {
    Finding {
        id: format!("{image}/{advisory}"),
        tenant_id: "acme".into(),
        kind: FindingKind::Vulnerability as i32,
        severity: Severity::Critical as i32,
        title: format!("{advisory} in openssl"),
        resolved,
        detail: Some(finding::Detail::Vulnerability(VulnerabilityDetail {
            vulnerability_id: advisory.into(),
            package_name: "openssl".into(),
            package_version: "1.1.1f".into(),
            image: image.into(),
            image_digest: "sha256:0123".into(),
            ..VulnerabilityDetail::default()
        })),
        ..Finding::default()
    }
    .encode_to_vec()
}

fn alert(id: &str, time: i64) -> Vec<u8> {
    Alert {
        id: id.into(),
        tenant_id: "acme".into(),
        cluster_id: "lab".into(),
        rule: "Terminal shell in container".into(),
        priority: Priority::Warning as i32,
        entities: vec![
            EntityRef {
                kind: "container".into(),
                name: "priv-pod".into(),
                namespace: "default".into(),
                ..EntityRef::default()
            },
            EntityRef {
                kind: "pod".into(),
                name: "priv-exec-pod".into(),
                namespace: "default".into(),
                ..EntityRef::default()
            },
        ],
        time: Some(prost_types::Timestamp {
            seconds: time,
            nanos: 0,
        }),
        ..Alert::default()
    }
    .encode_to_vec()
}

/// An alert or finding of `acme` made `tenant`'s.
fn of_tenant(payload: &[u8], tenant: &str) -> Vec<u8> {
    match Alert::decode(payload) {
        Ok(mut alert) if !alert.rule.is_empty() => {
            alert.tenant_id = tenant.into();
            alert.encode_to_vec()
        }
        _ => {
            let mut finding = Finding::decode(payload).expect("a finding");
            finding.tenant_id = tenant.into();
            finding.encode_to_vec()
        }
    }
}

fn append(topic: &Topic, payloads: Vec<Vec<u8>>) {
    topic
        .append_blocking(
            payloads
                .into_iter()
                .map(|payload| LogEntry {
                    dedupe_key: None,
                    payload,
                })
                .collect(),
        )
        .expect("append");
}

async fn wait_until(core: &GraphCore, what: &str, done: impl Fn(&GraphServiceStatus) -> bool) {
    for _ in 0..300 {
        if done(&core.status()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {:?}", core.status());
}

fn critical_count(core: &GraphCore, image: &str) -> Option<u64> {
    critical_count_of(core, "acme", image)
}

fn critical_count_of(core: &GraphCore, tenant: &str, image: &str) -> Option<u64> {
    let engine = core.read();
    engine
        .tenant(tenant)?
        .graph()
        .entity_by_id(&image_id(image))?
        .properties
        .get("critical_vulnerabilities")?
        .as_u64()
}

fn recent_alerts(core: &GraphCore) -> usize {
    recent_alerts_of(core, "acme")
}

fn recent_alerts_of(core: &GraphCore, tenant: &str) -> usize {
    let engine = core.read();
    engine
        .tenant(tenant)
        .map(|tenant| {
            tenant
                .insights()
                .iter()
                .filter(|insight| insight.control_id == "recent-alert")
                .count()
        })
        .unwrap_or(0)
}

fn compromised_paths(core: &GraphCore) -> usize {
    let engine = core.read();
    engine
        .tenant("acme")
        .map(|tenant| {
            tenant
                .attack_paths()
                .iter()
                .filter(|path| path.template == "compromised-container")
                .count()
        })
        .unwrap_or(0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_and_alerts_from_the_log_land_on_the_inventory_and_survive_a_restart() {
    let directory = tempfile::tempdir().expect("tempdir");
    let topics = topics(directory.path());
    let pod = corpus_path("k8s/badpods/manifests/priv/pod/priv-exec-pod.yaml");
    let sources = vec![manifest_source("lab", &pod)];
    let core =
        GraphCore::open(settings(directory.path(), sources.clone()), topics.clone()).expect("open");
    let shutdown = Shutdown::new();
    let running = tokio::spawn(core.clone().run(None, shutdown.clone()));

    // Two vulnerabilities of the pod's image (named as the scanner names it), then one resolved.
    append(
        &topics.findings,
        vec![
            vulnerability("CVE-2022-0778", "docker://ubuntu", false),
            vulnerability("CVE-2023-0286", "ubuntu:latest", false),
        ],
    );
    wait_until(&core, "findings applied", |status| {
        status.findings_position == 2
    })
    .await;
    let ubuntu = "docker.io/library/ubuntu:latest";
    assert_eq!(critical_count(&core, ubuntu), Some(2));
    append(
        &topics.findings,
        vec![vulnerability("CVE-2022-0778", "ubuntu", true)],
    );
    wait_until(&core, "resolution applied", |status| {
        status.findings_position == 3
    })
    .await;
    assert_eq!(critical_count(&core, ubuntu), Some(1));

    // Alerts on the pod's container: one insight however many alerts of the same rule, and
    // alerts older than the window, about no pod or about a cluster the graph does not hold
    // change nothing.
    assert_eq!(compromised_paths(&core), 0);
    let mut hostless = Alert::decode(alert("a-host", now()).as_slice()).expect("alert");
    hostless.entities.clear();
    let mut elsewhere = Alert::decode(alert("a-elsewhere", now()).as_slice()).expect("alert");
    elsewhere.cluster_id = "not-in-the-graph".into();
    append(
        &topics.alerts,
        vec![
            alert("a-1", now() - 60),
            alert("a-2", now()),
            alert("a-old", now() - 30 * 86_400),
            hostless.encode_to_vec(),
            elsewhere.encode_to_vec(),
            b"not a protobuf alert".to_vec(),
        ],
    );
    wait_until(&core, "alerts applied", |status| {
        status.alerts_position == 6
    })
    .await;
    assert_eq!(recent_alerts(&core), 1);
    assert!(
        compromised_paths(&core) >= 1,
        "the alerted privileged container is a compromised entry point"
    );
    let with_alert = core.status().attack_paths;

    shutdown.trigger();
    running.await.expect("graph task");
    drop(core);

    // Restart: what the log said is there, and the positions make nothing apply twice.
    let again =
        GraphCore::open(settings(directory.path(), sources), topics.clone()).expect("reopen");
    let status = again.status();
    assert_eq!((status.findings_position, status.alerts_position), (3, 6));
    assert_eq!(critical_count(&again, ubuntu), Some(1));
    assert_eq!(recent_alerts(&again), 1);
    assert_eq!(status.attack_paths, with_alert);
    assert!(compromised_paths(&again) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_watched_through_its_kubeconfig_context_and_removed_when_unconfigured() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut script = replay_server::Script::default();
    let pods = replay_server::read("k8s-api/list/k8s-openapi-v1.36/podlist-kube-system.json");
    let listed = serde_json::from_str::<serde_json::Value>(&pods).expect("pod list")["items"]
        .as_array()
        .expect("items")
        .len();
    script
        .lists
        .insert(replay_server::collection_path(ObjectKind::Pod), vec![pods]);
    let (url, _) = replay_server::serve(script).await;
    let kubeconfig = replay_server::kubeconfig(directory.path(), &[("kind-lab", &url)]);
    // the context is the kubeconfig's current one
    let live = InventorySource {
        tenant: "acme".into(),
        cluster: Some("kind-lab".into()),
        kubeconfig: Some(kubeconfig),
        context: None,
        path: None,
    };
    let topics = topics(directory.path());
    let core = GraphCore::open(
        settings(directory.path(), vec![live.clone()]),
        topics.clone(),
    )
    .expect("open");
    let shutdown = Shutdown::new();
    let running = tokio::spawn(core.clone().run(None, shutdown.clone()));
    let pods_of = |core: &GraphCore| {
        core.read()
            .tenant("acme")
            .and_then(|tenant| tenant.inventory("kind-lab"))
            .map(|inventory| inventory.of_kind(ObjectKind::Pod).count())
            .unwrap_or(0)
    };
    for _ in 0..300 {
        if pods_of(&core) == listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pods_of(&core), listed, "{:?}", core.status());
    wait_until(&core, "source counted", |status| {
        status
            .sources
            .get("acme/kind-lab")
            .is_some_and(|source| source.origin == "kubeconfig" && source.objects >= listed)
    })
    .await;
    assert!(
        core.read()
            .tenant("acme")
            .is_some_and(|tenant| tenant.graph().count_of_kind(EntityKind::Pod) == listed)
    );
    shutdown.trigger();
    running.await.expect("graph task");
    drop(core);

    // A kubeconfig that names no usable context is a source problem, not a crash.
    let broken = directory.path().join("broken-kubeconfig");
    std::fs::write(&broken, "apiVersion: v1\nkind: Config\n").expect("write");
    let unusable = InventorySource {
        cluster: Some("gone".into()),
        kubeconfig: Some(broken),
        ..live
    };
    let core = GraphCore::open(settings(directory.path(), vec![unusable]), topics)
        .expect("reopen with another source");
    // the cluster no longer configured is gone from the graph
    assert_eq!(pods_of(&core), 0);
    let shutdown = Shutdown::new();
    let running = tokio::spawn(core.clone().run(None, shutdown.clone()));
    wait_until(&core, "problem reported", |status| {
        status
            .sources
            .get("acme/gone")
            .is_some_and(|source| source.problems == 1)
    })
    .await;
    let status = core.status();
    assert_eq!(
        status.recent_problem().map(|(source, _)| source),
        Some("acme/gone"),
        "a fresh problem degrades the service"
    );
    let problem = status.sources["acme/gone"].last_problem.clone();
    assert!(
        problem
            .as_deref()
            .is_some_and(|text| text.contains("current-context")),
        "{problem:?}"
    );
    shutdown.trigger();
    running.await.expect("graph task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_images_are_asked_of_the_scanner_retried_after_a_failure_and_rescanned() {
    let directory = tempfile::tempdir().expect("tempdir");
    let pod = corpus_path("k8s/badpods/manifests/priv/pod/priv-exec-pod.yaml");
    let mut settings = settings(directory.path(), vec![manifest_source("lab", &pod)]);
    settings.config.scan_retry_seconds = 1;
    settings.config.rescan_seconds = 1;
    let core = GraphCore::open(settings, topics(directory.path())).expect("open");
    let orders: std::sync::Arc<std::sync::Mutex<Vec<ScanOrder>>> = Default::default();
    let recorded = orders.clone();
    // the first scan fails (a registry outage), later ones succeed
    let scanner: ImageScanner = std::sync::Arc::new(move |order: ScanOrder| {
        let mut seen = recorded.lock().expect("orders");
        seen.push(order);
        let outcome = if seen.len() == 1 {
            Err("registry unavailable".to_string())
        } else {
            Ok(())
        };
        Box::pin(async move { outcome })
    });
    let shutdown = Shutdown::new();
    let running = tokio::spawn(core.clone().run(Some(scanner), shutdown.clone()));
    wait_until(&core, "first scan failed", |status| {
        status.images_failed == 1
    })
    .await;
    assert!(
        core.status()
            .last_scan_error
            .is_some_and(|error| error.contains("registry unavailable"))
    );
    for _ in 0..400 {
        if orders.lock().expect("orders").len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.trigger();
    running.await.expect("graph task");
    let seen = orders.lock().expect("orders").clone();
    assert!(seen.len() >= 3, "retried, then rescanned: {seen:?}");
    for order in &seen {
        assert_eq!(
            (
                order.tenant.as_str(),
                order.cluster.as_str(),
                order.image.as_str()
            ),
            ("acme", "lab", "docker.io/library/ubuntu:latest")
        );
    }
    let status = core.status();
    assert_eq!(status.images_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_tenant_is_forgotten_in_memory_and_on_disk_and_another_keeps_its_graph() {
    let directory = tempfile::tempdir().expect("tempdir");
    let topics = topics(directory.path());
    let pod = corpus_path("k8s/badpods/manifests/priv/pod/priv-exec-pod.yaml");
    let mut globex_source = manifest_source("lab", &pod);
    globex_source.tenant = "globex".into();
    let sources = vec![manifest_source("lab", &pod), globex_source];
    let core =
        GraphCore::open(settings(directory.path(), sources.clone()), topics.clone()).expect("open");
    let shutdown = Shutdown::new();
    let running = tokio::spawn(core.clone().run(None, shutdown.clone()));
    let finding = vulnerability("CVE-2022-0778", "ubuntu:latest", false);
    let alerted = alert("a-1", now());
    append(
        &topics.findings,
        vec![finding.clone(), of_tenant(&finding, "globex")],
    );
    append(
        &topics.alerts,
        vec![alerted.clone(), of_tenant(&alerted, "globex")],
    );
    wait_until(&core, "both tenants applied", |status| {
        (status.findings_position, status.alerts_position) == (2, 2)
    })
    .await;
    let ubuntu = "docker.io/library/ubuntu:latest";
    for tenant in ["acme", "globex"] {
        assert_eq!(
            critical_count_of(&core, tenant, ubuntu),
            Some(1),
            "{tenant}"
        );
        assert_eq!(recent_alerts_of(&core, tenant), 1, "{tenant}");
    }

    // the tenant deletion has the graph forget the tenant, then erases its records
    let forgotten = core.forget_tenant("acme").expect("forget");
    assert_eq!(forgotten, 1, "acme had one cluster");
    assert!(core.read().tenant("acme").is_none(), "acme's graph is gone");
    let findings = topics.findings.erase_tenant("acme").await.expect("erase");
    let alerts = topics.alerts.erase_tenant("acme").await.expect("erase");
    wait_until(&core, "erasures applied", |status| {
        (status.findings_position, status.alerts_position)
            == (findings.marker + 1, alerts.marker + 1)
    })
    .await;
    assert!(core.read().tenant("acme").is_none(), "acme's graph is gone");
    assert_eq!(critical_count_of(&core, "globex", ubuntu), Some(1));
    assert_eq!(recent_alerts_of(&core, "globex"), 1);
    let stored = core.read().store().expect("persisted").tenants();
    assert_eq!(stored, ["globex"], "acme's trees are dropped");

    shutdown.trigger();
    running.await.expect("graph task");
    drop(core);

    // a restart with acme's source still configured brings its inventory back from the
    // source, but none of what the log said about it
    let again =
        GraphCore::open(settings(directory.path(), sources), topics.clone()).expect("reopen");
    let shutdown = Shutdown::new();
    let running = tokio::spawn(again.clone().run(None, shutdown.clone()));
    wait_until(&again, "acme inventory reloaded", |status| {
        status.tenants == 2
    })
    .await;
    assert_eq!(critical_count_of(&again, "acme", ubuntu).unwrap_or(0), 0);
    assert_eq!(recent_alerts_of(&again, "acme"), 0);
    assert_eq!(critical_count_of(&again, "globex", ubuntu), Some(1));
    assert_eq!(recent_alerts_of(&again, "globex"), 1);
    shutdown.trigger();
    running.await.expect("graph task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_marker_drops_only_what_its_own_log_said_about_the_tenant() {
    let directory = tempfile::tempdir().expect("tempdir");
    let topics = topics(directory.path());
    let pod = corpus_path("k8s/badpods/manifests/priv/pod/priv-exec-pod.yaml");
    let core = GraphCore::open(
        settings(directory.path(), vec![manifest_source("lab", &pod)]),
        topics.clone(),
    )
    .expect("open");
    let shutdown = Shutdown::new();
    let running = tokio::spawn(core.clone().run(None, shutdown.clone()));
    let ubuntu = "docker.io/library/ubuntu:latest";
    append(
        &topics.findings,
        vec![vulnerability("CVE-2022-0778", "ubuntu:latest", false)],
    );
    append(&topics.alerts, vec![alert("a-1", now())]);
    wait_until(&core, "acme applied", |status| {
        (status.findings_position, status.alerts_position) == (1, 1)
    })
    .await;
    assert_eq!(critical_count_of(&core, "acme", ubuntu), Some(1));
    assert_eq!(recent_alerts_of(&core, "acme"), 1);

    // the findings log reaches its marker first: the alerts and the inventory stay
    let findings = topics.findings.erase_tenant("acme").await.expect("erase");
    wait_until(&core, "findings erasure applied", |status| {
        status.findings_position == findings.marker + 1
    })
    .await;
    assert_eq!(critical_count_of(&core, "acme", ubuntu).unwrap_or(0), 0);
    assert_eq!(
        recent_alerts_of(&core, "acme"),
        1,
        "the alerts log said nothing yet"
    );
    assert!(core.read().tenant("acme").is_some(), "the inventory stays");

    // findings of the id after the marker (a new tenant's) survive the alerts log's marker
    topics.findings.reopen_tenant("acme").expect("reopen");
    append(
        &topics.findings,
        vec![vulnerability("CVE-2022-0778", "ubuntu:latest", false)],
    );
    let position = topics.findings.durable_end();
    wait_until(&core, "new findings applied", |status| {
        status.findings_position == position
    })
    .await;
    let alerts = topics.alerts.erase_tenant("acme").await.expect("erase");
    wait_until(&core, "alerts erasure applied", |status| {
        status.alerts_position == alerts.marker + 1
    })
    .await;
    assert_eq!(recent_alerts_of(&core, "acme"), 0);
    assert_eq!(
        critical_count_of(&core, "acme", ubuntu),
        Some(1),
        "findings after their marker stay"
    );
    let stored = core
        .read()
        .store()
        .expect("persisted")
        .load_alerts("acme")
        .expect("alerts");
    assert!(
        stored.is_empty(),
        "acme's stored alerts are gone: {stored:?}"
    );
    shutdown.trigger();
    running.await.expect("graph task");
}
