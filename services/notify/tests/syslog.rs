//! Syslog over real UDP and TCP listeners, frames read back with an independent RFC 5424
//! parser (syslog_loose).

mod support;

use std::time::Duration;

use palisade_core::config::{NotifyKind, SyslogTransport};
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_notify::Notifier;
use palisade_proto::v1::{Alert, Priority};
use support::*;
use syslog_loose::{Protocol, SyslogFacility, SyslogSeverity, Variant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);

/// Reads one octet-counted frame (RFC 6587 §3.4.1): `MSG-LEN SP SYSLOG-MSG`.
async fn read_frame(reader: &mut BufReader<tokio::net::TcpStream>) -> Option<String> {
    let mut length = Vec::new();
    let read = reader.read_until(b' ', &mut length).await.ok()?;
    if read == 0 {
        return None;
    }
    let length: usize = std::str::from_utf8(&length[..length.len() - 1])
        .expect("ascii length")
        .parse()
        .expect("MSG-LEN is a number");
    let mut message = vec![0u8; length];
    reader
        .read_exact(&mut message)
        .await
        .expect("a whole frame");
    Some(String::from_utf8(message).expect("UTF-8 message"))
}

/// A TCP syslog receiver sending every framed message it reads; `close_after` closes each
/// connection after that many messages.
async fn tcp_listener(close_after: Option<usize>) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let connection_sender = sender.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut count = 0;
                while let Some(message) = read_frame(&mut reader).await {
                    let _ = connection_sender.send(message);
                    count += 1;
                    if close_after == Some(count) {
                        return;
                    }
                }
            });
        }
    });
    (address, receiver)
}

/// Parses strictly: text that is not RFC 5424 fails the test.
fn strict_parse(text: &str) -> syslog_loose::Message<&str> {
    syslog_loose::parse_message_with_year_exact(text, |_| 2026, Variant::RFC5424)
        .unwrap_or_else(|error| panic!("{error}: {text}"))
}

fn check_message(text: &str, alert: &Alert, facility: SyslogFacility, severity: SyslogSeverity) {
    let parsed = strict_parse(text);
    assert_eq!(parsed.protocol, Protocol::RFC5424(1), "{text}");
    assert_eq!(parsed.facility, Some(facility), "{text}");
    assert_eq!(parsed.severity, Some(severity), "{text}");
    assert_eq!(parsed.hostname, Some("test-falco-hostname"));
    assert_eq!(parsed.appname, Some("palisade"));
    assert_eq!(parsed.msgid, Some("syscall"));
    let time = parsed.timestamp.expect("timestamp");
    let expected_time = alert.time.expect("time");
    assert_eq!(time.timestamp(), expected_time.seconds);
    assert_eq!(
        time.timestamp_subsec_micros(),
        u32::try_from(expected_time.nanos / 1_000).expect("micros")
    );
    assert_eq!(parsed.structured_data.len(), 1, "{text}");
    let element = &parsed.structured_data[0];
    assert_eq!(element.id, "palisade@32473");
    let param = |name: &str| {
        element
            .params()
            .find(|(key, _)| **key == name)
            .map(|(_, value)| value.to_string())
    };
    assert_eq!(param("id").as_deref(), Some(alert.id.as_str()));
    assert_eq!(param("tenant").as_deref(), Some("acme"));
    assert_eq!(param("cluster").as_deref(), Some("prod-eu"));
    assert_eq!(param("rule").as_deref(), Some("open_from_cat"));
    assert_eq!(param("namespace").as_deref(), Some("payments"));
    assert_eq!(param("tags").as_deref(), Some("filesystem,process,testing"));
    assert_eq!(
        parsed.msg.trim_start_matches('\u{feff}'),
        alert.output,
        "the message is the output line after a BOM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_syslog_frames_parse_as_rfc_5424_with_the_alert_as_structured_data() {
    let (address, mut messages) = tcp_listener(None).await;
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("siem", "acme", NotifyKind::Syslog);
    target.address = Some(address);
    target.transport = SyslogTransport::Tcp;
    target.facility = "local4".into();
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    let mut alerts = corpus_alerts("acme", 8);
    alerts[3] = with_priority(alerts[3].clone(), Priority::Emergency);
    append(&topic, &alerts).await;
    append(&topic, &corpus_alerts("globex", 2)).await;

    for (index, alert) in alerts.iter().enumerate() {
        let text = tokio::time::timeout(WAIT, messages.recv())
            .await
            .expect("a message in time")
            .expect("listener alive");
        let severity = if index == 3 {
            SyslogSeverity::SEV_EMERG
        } else {
            SyslogSeverity::SEV_WARNING
        };
        check_message(&text, alert, SyslogFacility::LOG_LOCAL4, severity);
    }
    wait_until("the log read", WAIT, || {
        notifier.status().targets[0].lag == 0
    })
    .await;
    assert!(messages.try_recv().is_err(), "globex's alerts are not sent");
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_closes_its_connection_gets_a_new_one_and_loses_nothing() {
    let (address, mut messages) = tcp_listener(Some(3)).await;
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("siem", "acme", NotifyKind::Syslog);
    target.address = Some(address);
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    let alerts = corpus_alerts("acme", 9);
    // One at a time, so each write follows the receiver's close of the one before.
    for alert in &alerts {
        append(&topic, std::slice::from_ref(alert)).await;
        wait_until("the alert sent", WAIT, || {
            notifier.status().targets[0].lag == 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ids = Vec::new();
    while ids.len() < alerts.len() {
        let text = tokio::time::timeout(WAIT, messages.recv())
            .await
            .expect("every message in time")
            .expect("listener alive");
        let parsed = strict_parse(&text);
        let id = parsed.structured_data[0]
            .params()
            .find(|(key, _)| **key == "id")
            .map(|(_, value)| value.to_string())
            .expect("id");
        ids.push(id);
    }
    let expected: Vec<String> = alerts.iter().map(|alert| alert.id.clone()).collect();
    assert_eq!(ids, expected);
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_syslog_sends_one_datagram_per_alert() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut target = quick_target("siem-udp", "acme", NotifyKind::Syslog);
    target.address = Some(socket.local_addr().expect("addr").to_string());
    target.transport = SyslogTransport::Udp;
    let shutdown = Shutdown::new();
    let notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("start");
    let mut alerts = corpus_alerts("acme", 4);
    alerts[2].output = "x".repeat(20_000);
    append(&topic, &alerts).await;
    let mut buffer = vec![0u8; 65_536];
    for (index, alert) in alerts.iter().enumerate() {
        let (length, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buffer))
            .await
            .expect("a datagram in time")
            .expect("recv");
        let text = std::str::from_utf8(&buffer[..length]).expect("UTF-8");
        if index == 2 {
            assert_eq!(
                length,
                palisade_notify::syslog::MAX_UDP_MESSAGE,
                "cut to fit"
            );
            let parsed = strict_parse(text);
            assert!(
                parsed
                    .msg
                    .trim_start_matches('\u{feff}')
                    .chars()
                    .all(|c| c == 'x')
            );
            continue;
        }
        check_message(
            text,
            alert,
            SyslogFacility::LOG_AUTH,
            SyslogSeverity::SEV_WARNING,
        );
    }
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
}
