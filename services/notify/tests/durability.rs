//! Positions across restarts of the notifier on the same store: a stopped notifier resumes
//! where it was, a new target starts at the log's end unless told to replay it.

mod support;

use std::time::Duration;

use palisade_core::config::NotifyKind;
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_notify::Notifier;
use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn webhook_target(
    receiver: &Receiver,
    key: &std::path::Path,
) -> palisade_core::config::NotifyTarget {
    let mut target = quick_target("soc", "acme", NotifyKind::Webhook);
    target.url = Some(receiver.url("/"));
    target.secret_file = Some(key.to_path_buf());
    target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_stopped_mid_stream_resumes_without_skipping_or_repeating() {
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(3));
    let temp = tempfile::tempdir().expect("temp dir");
    let key = temp.path().join("key");
    write_secret(&key, "k");
    let db = temp.path().join("db");
    let alerts = corpus_alerts("acme", 150);
    let others = corpus_alerts("globex", 40);
    let targets = config(vec![webhook_target(&receiver, &key)]);
    let delivered_before_stop;
    {
        let store = Store::open(&db).expect("store");
        let topic = Topic::open(&store, "alerts").expect("topic");
        let shutdown = Shutdown::new();
        let notifier = Notifier::start(&targets, &store, &topic, &shutdown).expect("start");
        append(&topic, &alerts[..100]).await;
        append(&topic, &others).await;
        wait_until("some deliveries", WAIT, || {
            receiver.accepted_ids().len() >= 30
        })
        .await;
        shutdown.trigger();
        notifier.stopped().await.expect("stopped");
        delivered_before_stop = receiver.accepted_ids().len();
        assert!(
            delivered_before_stop < 100,
            "stopped mid-stream, not at the end"
        );
        // Alerts keep arriving while the notifier is down.
        append(&topic, &alerts[100..]).await;
    }
    let store = Store::open(&db).expect("reopen");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let shutdown = Shutdown::new();
    let notifier = Notifier::start(&targets, &store, &topic, &shutdown).expect("restart");
    assert!(
        notifier.status().targets[0].position > 0,
        "the position survived"
    );
    wait_until("every alert", WAIT, || {
        receiver.accepted_ids().len() == alerts.len()
    })
    .await;
    wait_until("the log read", WAIT, || {
        notifier.status().targets[0].lag == 0
    })
    .await;
    let accepted = receiver.accepted_ids();
    for alert in &alerts {
        assert_eq!(accepted.get(&alert.id), Some(&1), "alert {} once", alert.id);
    }
    let order: Vec<String> = receiver
        .received()
        .iter()
        .map(|request| request.json()["uuid"].as_str().expect("uuid").to_string())
        .collect();
    let expected: Vec<String> = alerts.iter().map(|alert| alert.id.clone()).collect();
    assert_eq!(order, expected, "log order across the restart");
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_notifier_redelivers_at_least_what_it_had_not_recorded() {
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(3));
    let temp = tempfile::tempdir().expect("temp dir");
    let key = temp.path().join("key");
    write_secret(&key, "k");
    let db = temp.path().join("db");
    let alerts = corpus_alerts("acme", 120);
    let targets = config(vec![webhook_target(&receiver, &key)]);
    {
        let store = Store::open(&db).expect("store");
        let topic = Topic::open(&store, "alerts").expect("topic");
        let shutdown = Shutdown::new();
        let notifier = Notifier::start(&targets, &store, &topic, &shutdown).expect("start");
        append(&topic, &alerts).await;
        wait_until("some deliveries", WAIT, || {
            receiver.accepted_ids().len() >= 40
        })
        .await;
        // No shutdown, no flush: the tasks are dropped where they are.
        notifier.abort().await;
    }
    let store = Store::open(&db).expect("reopen");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let shutdown = Shutdown::new();
    let notifier = Notifier::start(&targets, &store, &topic, &shutdown).expect("restart");
    wait_until("every alert", WAIT, || {
        receiver.accepted_ids().len() == alerts.len()
    })
    .await;
    wait_until("the log read", WAIT, || {
        notifier.status().targets[0].lag == 0
    })
    .await;
    let accepted = receiver.accepted_ids();
    assert!(
        alerts.iter().all(|alert| accepted.contains_key(&alert.id)),
        "none skipped"
    );
    assert_eq!(accepted.len(), alerts.len(), "nothing else");
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_target_starts_at_the_end_of_the_log_unless_it_replays_history() {
    let receiver = Receiver::start().await;
    let temp = tempfile::tempdir().expect("temp dir");
    let key = temp.path().join("key");
    write_secret(&key, "k");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let old = corpus_alerts("acme", 10);
    append(&topic, &old[..6]).await;
    let mut fresh = webhook_target(&receiver, &key);
    fresh.name = "fresh".into();
    fresh.url = Some(receiver.url("/fresh"));
    fresh.replay_history = false;
    let mut replaying = webhook_target(&receiver, &key);
    replaying.name = "replaying".into();
    replaying.url = Some(receiver.url("/replaying"));
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![fresh, replaying]), &store, &topic, &shutdown).expect("start");
    wait_until("the fresh target started", WAIT, || {
        notifier.status().targets[0].position == 6
    })
    .await;
    append(&topic, &old[6..]).await;
    wait_until("both read the log", WAIT, || {
        notifier
            .status()
            .targets
            .iter()
            .all(|target| target.lag == 0)
    })
    .await;
    let count = |path: &str| {
        receiver
            .received()
            .iter()
            .filter(|request| request.path == path)
            .count()
    };
    assert_eq!(count("/fresh"), 4, "only alerts stored after it started");
    assert_eq!(count("/replaying"), 10, "the whole log");
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}
