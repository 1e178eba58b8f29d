//! Signed webhooks against a real HTTP receiver: signatures checked with an independent
//! HMAC, key rotation, tenant and priority filters, retries and dead letters.

mod support;

use std::time::Duration;

use hmac::{Hmac, Mac};
use palisade_core::config::NotifyKind;
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_notify::Notifier;
use palisade_proto::v1::Priority;
use sha2::Sha256;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// What a receiver does, written without the crate's own verification code.
fn independently_verified(key: &[u8], request: &Received) -> bool {
    let timestamp = request
        .header("x-palisade-timestamp")
        .expect("timestamp header");
    let signature = request
        .header("x-palisade-signature")
        .expect("signature header");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    expected == signature
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_carry_falco_json_signed_over_timestamp_and_body() {
    let receiver = Receiver::start().await;
    let temp = tempfile::tempdir().expect("temp dir");
    let key_path = temp.path().join("webhook.key");
    write_secret(&key_path, "first-key");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("soc", "acme", NotifyKind::Webhook);
    target.url = Some(receiver.url("/hooks/palisade"));
    target.secret_file = Some(key_path.clone());
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");

    let alerts = corpus_alerts("acme", 8);
    append(&topic, &alerts[..4]).await;
    wait_until("the first four deliveries", WAIT, || {
        receiver.accepted_ids().len() == 4
    })
    .await;
    // The key is rotated on disk; the next sends use the new one without a restart.
    write_secret(&key_path, "second-key");
    append(&topic, &alerts[4..]).await;
    wait_until("all eight deliveries", WAIT, || {
        receiver.accepted_ids().len() == 8
    })
    .await;

    let received = receiver.received();
    let now = chrono::Utc::now().timestamp();
    for (index, request) in received.iter().enumerate() {
        assert_eq!(request.path, "/hooks/palisade");
        let key: &[u8] = if index < 4 {
            b"first-key"
        } else {
            b"second-key"
        };
        assert!(
            independently_verified(key, request),
            "request {index} is not signed with {key:?}"
        );
        let timestamp: i64 = request
            .header("x-palisade-timestamp")
            .expect("ts")
            .parse()
            .expect("unix seconds");
        assert!(
            (now - timestamp).abs() < 120,
            "timestamp {timestamp} is not now ({now})"
        );
        let body = request.json();
        let expected = &alerts[index];
        assert_eq!(body["uuid"], expected.id.as_str());
        assert_eq!(
            request.header("x-palisade-alert-id"),
            Some(expected.id.as_str())
        );
        assert_eq!(body["rule"], "open_from_cat");
        assert_eq!(body["priority"], "Warning");
        assert_eq!(body["tenant"], "acme");
        assert_eq!(body["cluster"], "prod-eu");
        assert_eq!(body["output_fields"]["proc.cmdline"], "cat /dev/null");
        assert_eq!(body["hostname"], "test-falco-hostname");
        assert_eq!(request.header("content-type"), Some("application/json"));
        // The crate's own verifier agrees with the independent one.
        palisade_notify::signature::verify_signature(
            key,
            request.header("x-palisade-timestamp"),
            request.header("x-palisade-signature"),
            &request.body,
            now,
            300,
        )
        .expect("verifies");
    }
    let status = notifier.status();
    assert_eq!(status.targets[0].delivered, 8);
    assert_eq!(status.targets[0].lag, 0);
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_only_gets_its_own_tenants_alerts_at_or_above_its_priority() {
    let receiver = Receiver::start().await;
    let temp = tempfile::tempdir().expect("temp dir");
    let key_path = temp.path().join("key");
    write_secret(&key_path, "k");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut for_acme = quick_target("acme-hook", "acme", NotifyKind::Webhook);
    for_acme.url = Some(receiver.url("/acme"));
    for_acme.secret_file = Some(key_path.clone());
    for_acme.min_priority = "Error".into();
    let mut for_globex = quick_target("globex-hook", "globex", NotifyKind::Webhook);
    for_globex.url = Some(receiver.url("/globex"));
    for_globex.secret_file = Some(key_path.clone());
    for_globex.tags = vec!["filesystem".into()];
    let shutdown = Shutdown::new();
    let notifier = Notifier::start(
        &config(vec![for_acme, for_globex]),
        &store,
        &topic,
        &shutdown,
    )
    .expect("start");

    let acme: Vec<_> = corpus_alerts("acme", 6)
        .into_iter()
        .enumerate()
        .map(|(index, alert)| {
            let priority = [Priority::Warning, Priority::Error, Priority::Critical][index % 3];
            with_priority(alert, priority)
        })
        .collect();
    let mut globex = corpus_alerts("globex", 3);
    globex[2].tags = vec!["network".into()];
    let mut interleaved = Vec::new();
    for (index, alert) in acme.iter().enumerate() {
        interleaved.push(alert.clone());
        if let Some(globex_alert) = globex.get(index) {
            interleaved.push(globex_alert.clone());
        }
    }
    append(&topic, &interleaved).await;
    wait_until("both targets to read the whole log", WAIT, || {
        notifier
            .status()
            .targets
            .iter()
            .all(|target| target.lag == 0)
    })
    .await;

    let mut by_path: std::collections::BTreeMap<String, Vec<serde_json::Value>> =
        Default::default();
    for request in receiver.received() {
        by_path
            .entry(request.path.clone())
            .or_default()
            .push(request.json());
    }
    let acme_got: Vec<&str> = by_path["/acme"]
        .iter()
        .map(|body| body["uuid"].as_str().expect("uuid"))
        .collect();
    let acme_expected: Vec<&str> = acme
        .iter()
        .filter(|alert| alert.priority >= Priority::Error as i32)
        .map(|alert| alert.id.as_str())
        .collect();
    assert_eq!(
        acme_got, acme_expected,
        "acme gets its Error and Critical alerts only"
    );
    assert!(by_path["/acme"].iter().all(|body| body["tenant"] == "acme"));
    let globex_got: Vec<&str> = by_path["/globex"]
        .iter()
        .map(|body| body["uuid"].as_str().expect("uuid"))
        .collect();
    assert_eq!(
        globex_got,
        [globex[0].id.as_str(), globex[1].id.as_str()],
        "globex gets its own tagged alerts only"
    );
    let status = notifier.status();
    assert_eq!(
        status.targets[0].filtered,
        2 + 3,
        "two Warnings and globex's three"
    );
    assert_eq!(
        status.targets[1].filtered,
        6 + 1,
        "acme's six and the untagged one"
    );
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_retry_after_is_honoured() {
    let receiver = Receiver::start().await;
    receiver.script([
        Answer::status(503),
        Answer::status(500),
        Answer {
            status: 429,
            retry_after: Some("1".into()),
        },
    ]);
    let temp = tempfile::tempdir().expect("temp dir");
    let key_path = temp.path().join("key");
    write_secret(&key_path, "k");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("soc", "acme", NotifyKind::Webhook);
    target.url = Some(receiver.url("/"));
    target.secret_file = Some(key_path);
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    let alerts = corpus_alerts("acme", 3);
    append(&topic, &alerts).await;
    wait_until("every alert delivered", WAIT, || {
        receiver.accepted_ids().len() == 3
    })
    .await;

    let received = receiver.received();
    assert_eq!(received.len(), 6, "three refusals, then three deliveries");
    let first_id = received[0].json()["uuid"].clone();
    assert!(
        received[..4]
            .iter()
            .all(|request| request.json()["uuid"] == first_id),
        "the same alert is retried"
    );
    assert!(
        received[3].at.duration_since(received[2].at) >= Duration::from_millis(950),
        "the 429's Retry-After of 1 s is waited for"
    );
    let status = &notifier.status().targets[0];
    assert_eq!(status.failed_attempts, 3);
    assert_eq!(status.delivered, 3);
    assert_eq!(status.dead_letters_kept, 0);
    assert!(!status.retrying);
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_exhausted_alerts_become_dead_letters_and_the_target_moves_on() {
    let receiver = Receiver::start().await;
    let alerts = corpus_alerts("acme", 5);
    let refused_id = alerts[1].id.clone();
    let failing_id = alerts[3].id.clone();
    let (refused, failing) = (refused_id.clone(), failing_id.clone());
    receiver.decide(move |body| {
        let text = String::from_utf8_lossy(body);
        if text.contains(&refused) {
            Some(Answer::status(422))
        } else if text.contains(&failing) {
            Some(Answer::status(502))
        } else {
            None
        }
    });
    let temp = tempfile::tempdir().expect("temp dir");
    let key_path = temp.path().join("key");
    write_secret(&key_path, "k");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("soc", "acme", NotifyKind::Webhook);
    target.url = Some(receiver.url("/"));
    target.secret_file = Some(key_path);
    target.max_attempts = 3;
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    append(&topic, &alerts).await;
    wait_until("the whole log read", WAIT, || {
        notifier.status().targets[0].lag == 0
    })
    .await;

    let accepted = receiver.accepted_ids();
    let expected: std::collections::BTreeMap<String, usize> = [0, 2, 4]
        .iter()
        .map(|index| (alerts[*index].id.clone(), 1))
        .collect();
    assert_eq!(accepted, expected, "the others are delivered once each");
    let attempts_of = |id: &str| {
        receiver
            .received()
            .iter()
            .filter(|request| request.json()["uuid"] == id)
            .count()
    };
    assert_eq!(attempts_of(&refused_id), 1, "a 422 is not retried");
    assert_eq!(
        attempts_of(&failing_id),
        3,
        "a 502 is tried max_attempts times"
    );

    let letters = notifier
        .dead_letters("soc")
        .expect("target")
        .list(None, 10)
        .expect("list");
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].alert_id, refused_id);
    assert_eq!(letters[0].attempts, 1);
    assert!(
        letters[0].error.starts_with("HTTP 422"),
        "{}",
        letters[0].error
    );
    assert_eq!(letters[0].offset, 1);
    assert_eq!(letters[1].alert_id, failing_id);
    assert_eq!(letters[1].attempts, 3);
    assert!(
        letters[1].error.starts_with("HTTP 502"),
        "{}",
        letters[1].error
    );
    let document: serde_json::Value = serde_json::from_str(&letters[1].alert).expect("alert json");
    assert_eq!(document["uuid"], failing_id.as_str());
    let status = notifier.status();
    assert_eq!(status.targets[0].dead_lettered, 2);
    let component = notifier.component_status();
    assert_eq!(component.name, "notify");
    assert_eq!(
        component.state,
        palisade_proto::v1::HealthState::Degraded as i32,
        "a fresh dead letter shows"
    );
    assert!(
        component.detail.contains("dead-lettered"),
        "{}",
        component.detail
    );

    // two callers send every letter again at once while the receiver is slow: the second
    // waits for the first, which delivers the failing alert; each arrives once more
    let (refused, failing) = (refused_id.clone(), failing_id.clone());
    receiver.decide(move |body| {
        String::from_utf8_lossy(body)
            .contains(&refused)
            .then(|| Answer::status(422))
    });
    receiver.set_delay(Duration::from_millis(200));
    let monitor = notifier.monitor();
    let (first, second) = tokio::join!(monitor.resend("soc", None), monitor.resend("soc", None));
    let (first, second) = (first.expect("resend"), second.expect("resend"));
    receiver.set_delay(Duration::ZERO);
    assert_eq!(
        first.delivered + second.delivered,
        1,
        "{first:?} {second:?}"
    );
    assert_eq!(
        first.failed + second.failed,
        2,
        "the 422 is refused by each"
    );
    assert_eq!(
        attempts_of(&failing),
        3 + 1,
        "delivered once more, not twice"
    );
    let left = notifier
        .dead_letters("soc")
        .expect("target")
        .list(None, 10)
        .expect("list");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].alert_id, refused_id);
    assert_eq!(left[0].attempts, 3, "refused on each of the three tries");

    // the tenant is erased: its dead letters, which hold its alerts, go too
    topic.erase_tenant("acme").await.expect("erase");
    wait_until("the erasure read", WAIT, || {
        notifier.status().targets[0].lag == 0
    })
    .await;
    let left = notifier
        .dead_letters("soc")
        .expect("target")
        .list(None, 10)
        .expect("list");
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(notifier.status().targets[0].undecodable, 0);
    assert_eq!(
        receiver.received().len(),
        1 + 3 + 3 + 3,
        "nothing more was sent"
    );
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_receiver_exhausts_its_attempts_with_the_connect_error_recorded() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let temp = tempfile::tempdir().expect("temp dir");
    let key_path = temp.path().join("key");
    write_secret(&key_path, "k");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("down", "acme", NotifyKind::Webhook);
    target.url = Some(format!("http://127.0.0.1:{port}/"));
    target.secret_file = Some(key_path);
    target.max_attempts = 2;
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    append(&topic, &corpus_alerts("acme", 1)).await;
    wait_until("the dead letter", WAIT, || {
        notifier.status().targets[0].dead_letters_kept == 1
    })
    .await;
    let letter = &notifier
        .dead_letters("down")
        .expect("target")
        .list(None, 1)
        .expect("list")[0];
    assert_eq!(letter.attempts, 2);
    assert!(
        letter.error.contains(&format!("127.0.0.1:{port}")),
        "{}",
        letter.error
    );
    assert!(
        letter.error.to_lowercase().contains("connect"),
        "{}",
        letter.error
    );
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_file_is_retried_until_it_appears() {
    let receiver = Receiver::start().await;
    let temp = tempfile::tempdir().expect("temp dir");
    let key_path = temp.path().join("late.key");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("soc", "acme", NotifyKind::Webhook);
    target.url = Some(receiver.url("/"));
    target.secret_file = Some(key_path.clone());
    target.max_attempts = 1_000;
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    append(&topic, &corpus_alerts("acme", 1)).await;
    wait_until("a failed attempt", WAIT, || {
        notifier.status().targets[0].retrying
    })
    .await;
    let error = notifier.status().targets[0]
        .last_error
        .clone()
        .expect("error");
    assert!(error.contains("late.key"), "{error}");
    assert!(receiver.received().is_empty(), "nothing is sent unsigned");
    write_secret(&key_path, "now-here");
    wait_until("the delivery", WAIT, || receiver.accepted_ids().len() == 1).await;
    assert!(independently_verified(b"now-here", &receiver.received()[0]));
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_targets_speak_tls() {
    // A listener that records the first bytes a client sends: a TLS client opens with a
    // handshake record (content type 22, version 3.x).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let first_bytes = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut bytes = [0u8; 3];
        stream.read_exact(&mut bytes).await.expect("read");
        bytes
    });
    let temp = tempfile::tempdir().expect("temp dir");
    let key_path = temp.path().join("key");
    write_secret(&key_path, "k");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("tls", "acme", NotifyKind::Webhook);
    target.url = Some(format!("https://{address}/hook"));
    target.secret_file = Some(key_path);
    target.max_attempts = 1;
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    append(&topic, &corpus_alerts("acme", 1)).await;
    let bytes = tokio::time::timeout(WAIT, first_bytes)
        .await
        .expect("a connection")
        .expect("task");
    assert_eq!(bytes[0], 0x16, "a TLS handshake record");
    assert_eq!(bytes[1], 0x03, "TLS version 3.x");
    wait_until("the dead letter", WAIT, || {
        notifier.status().targets[0].dead_letters_kept == 1
    })
    .await;
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test]
async fn a_target_with_an_unusable_url_is_refused_at_start_naming_it() {
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("broken", "acme", NotifyKind::Slack);
    target.url = Some("http://[::1/hook".into());
    let error = Notifier::start(&config(vec![target]), &store, &topic, &Shutdown::new())
        .err()
        .expect("refused");
    assert_eq!(error.code(), "NOTIFY_INVALID_TARGET");
    assert!(error.to_string().contains("broken"), "{error}");
}
