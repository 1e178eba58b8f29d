//! Slack incoming webhooks and Splunk HEC against a real HTTP receiver.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use palisade_core::config::NotifyKind;
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_notify::Notifier;
use palisade_proto::v1::Priority;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_one_message_per_alert_with_its_blocks() {
    let receiver = Receiver::start().await;
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("slack", "acme", NotifyKind::Slack);
    target.url = Some(receiver.url("/services/T000/B000/XXXX"));
    target.min_priority = "critical".into();
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    let alerts = corpus_alerts("acme", 3);
    let critical = with_priority(alerts[1].clone(), Priority::Critical);
    append(
        &topic,
        &[alerts[0].clone(), critical.clone(), alerts[2].clone()],
    )
    .await;
    wait_until("the log read", WAIT, || {
        notifier.status().targets[0].lag == 0
    })
    .await;

    let received = receiver.received();
    assert_eq!(
        received.len(),
        1,
        "only the Critical alert passes min_priority"
    );
    let message = received[0].json();
    assert_eq!(received[0].path, "/services/T000/B000/XXXX");
    assert!(
        message["text"]
            .as_str()
            .expect("text")
            .starts_with("[Critical] open_from_cat: "),
        "{message}"
    );
    let blocks = message["blocks"].as_array().expect("blocks");
    let fields: BTreeSet<&str> = blocks[2]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|field| field["text"].as_str().expect("text"))
        .collect();
    assert!(fields.contains("*Cluster*\nprod-eu"), "{fields:?}");
    assert!(fields.contains("*Pod*\npayments/api-1"), "{fields:?}");
    assert!(fields.contains("*Priority*\nCritical"), "{fields:?}");
    let context = blocks[3]["elements"][0]["text"].as_str().expect("context");
    assert!(
        context.contains(&critical.id),
        "the alert id is shown: {context}"
    );
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_hec_gets_batches_with_its_token_and_a_bad_event_is_isolated() {
    let receiver = Receiver::start().await;
    let alerts = corpus_alerts("acme", 120);
    let bad_id = alerts[57].id.clone();
    let bad = bad_id.clone();
    receiver.decide(move |body| {
        String::from_utf8_lossy(body)
            .contains(&bad)
            .then(|| Answer::status(400))
    });
    let temp = tempfile::tempdir().expect("temp dir");
    let token_path = temp.path().join("hec.token");
    write_secret(&token_path, "11111111-2222-3333-4444-555555555555");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("splunk", "acme", NotifyKind::SplunkHec);
    target.url = Some(receiver.url(""));
    target.secret_file = Some(token_path);
    target.batch_size = 50;
    target.splunk_index = Some("security".into());
    // The alerts are in the log before the notifier starts: batches fill up.
    append(&topic, &alerts).await;
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    wait_until("the log read", WAIT, || {
        notifier.status().targets[0].lag == 0
    })
    .await;

    let received = receiver.received();
    let mut delivered = Vec::new();
    let mut batch_sizes = Vec::new();
    for request in &received {
        assert_eq!(request.path, "/services/collector/event");
        assert_eq!(
            request.header("authorization"),
            Some("Splunk 11111111-2222-3333-4444-555555555555")
        );
        let events: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&request.body)
            .into_iter::<serde_json::Value>()
            .collect::<Result<_, _>>()
            .expect("concatenated JSON events");
        batch_sizes.push(events.len());
        for event in &events {
            assert_eq!(event["index"], "security");
            assert_eq!(event["sourcetype"], "palisade:alert");
            assert_eq!(event["host"], "test-falco-hostname");
            assert_eq!(event["fields"]["tenant"], "acme");
            assert!(event["time"].as_f64().expect("time") > 1.4e9);
        }
        if request.status == 200 {
            delivered.extend(
                events
                    .iter()
                    .map(|event| event["event"]["uuid"].as_str().expect("uuid").to_string()),
            );
        }
    }
    // 50 delivered; 50 refused for the bad event, then one by one (49 delivered, 1 refused);
    // the last 20 delivered.
    assert_eq!(batch_sizes[..3], [50, 50, 1], "{batch_sizes:?}");
    assert_eq!(received.len(), 3 + 49 + 1, "{batch_sizes:?}");
    let expected: Vec<String> = alerts
        .iter()
        .filter(|alert| alert.id != bad_id)
        .map(|alert| alert.id.clone())
        .collect();
    assert_eq!(delivered, expected, "every other alert once, in log order");
    let letters = notifier
        .dead_letters("splunk")
        .expect("target")
        .list(None, 10)
        .expect("list");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].alert_id, bad_id);
    assert_eq!(letters[0].offset, 57);
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}
