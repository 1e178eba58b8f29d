//! A notifier process killed with SIGKILL mid-stream and started again on the same data
//! directory delivers every alert at least once, and resumes rather than starting over.
//!
//! This test binary plays both parts: run plainly it is the test (a webhook receiver that
//! starts, kills and restarts children); run with `--child DIR URL` it is the notifier
//! process, which appends a fixed set of alerts to its log (deduplicated when they are
//! already there) and runs until killed.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use palisade_core::config::NotifyKind;
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_notify::Notifier;
use palisade_testkit::ChildGuard;
use support::*;

const ALERTS: usize = 200;
const CHUNK: usize = 20;
const WAIT: Duration = Duration::from_secs(60);

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if arguments.get(1).map(String::as_str) == Some("--child") {
        let directory = arguments.get(2).expect("child: data directory").clone();
        let url = arguments.get(3).expect("child: receiver url").clone();
        runtime.block_on(child(directory.into(), url));
        return;
    }
    runtime.block_on(parent());
    println!("kill9: 1 passed, 0 failed");
}

async fn child(directory: std::path::PathBuf, url: String) {
    let store = Store::open(&directory.join("db")).expect("child: store");
    let topic = Topic::open(&store, "alerts").expect("child: topic");
    let mut target = quick_target("soc", "acme", NotifyKind::Webhook);
    target.url = Some(url);
    target.secret_file = Some(directory.join("key"));
    let shutdown = Shutdown::new();
    let _notifier =
        Notifier::start(&config(vec![target]), &store, &topic, &shutdown).expect("child: start");
    // Alerts arrive while the notifier works; a restarted child appends the same ones, which
    // the log stores once.
    for chunk in corpus_alerts("acme", ALERTS).chunks(CHUNK) {
        append(&topic, chunk).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::future::pending::<()>().await;
}

/// The notifier process, killed if the test fails before it does.
fn spawn_child(directory: &std::path::Path, url: &str) -> ChildGuard {
    ChildGuard::new(
        Command::new(std::env::current_exe().expect("own executable"))
            .arg("--child")
            .arg(directory)
            .arg(url)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the notifier process"),
    )
}

/// Kills with SIGKILL (what `Child::kill` sends on Unix) and reaps.
fn kill_9(guard: ChildGuard) {
    let mut child = guard.into_inner();
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reap");
    assert!(
        !status.success(),
        "the child was killed, not finished: {status}"
    );
}

async fn parent() {
    let receiver = Receiver::start().await;
    // Slow enough that the kill lands mid-stream, well after the store's first flushes.
    receiver.set_delay(Duration::from_millis(10));
    let temp = tempfile::tempdir().expect("temp dir");
    write_secret(&temp.path().join("key"), "kill9-key");
    let url = receiver.url("/hook");
    let expected: Vec<String> = corpus_alerts("acme", ALERTS)
        .into_iter()
        .map(|alert| alert.id)
        .collect();

    let first = spawn_child(temp.path(), &url);
    wait_until("deliveries from the first process", WAIT, || {
        receiver.accepted_ids().len() >= 80
    })
    .await;
    kill_9(first);
    let before_kill: BTreeMap<String, usize> = receiver.accepted_ids();
    assert!(before_kill.len() < ALERTS, "killed mid-stream");

    let second = spawn_child(temp.path(), &url);
    let finished = tokio::time::timeout(WAIT, async {
        while receiver.accepted_ids().len() < ALERTS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    kill_9(second);
    assert!(
        finished.is_ok(),
        "the restarted process delivered every alert in time"
    );

    let accepted = receiver.accepted_ids();
    for id in &expected {
        assert!(accepted.contains_key(id), "alert {id} was never delivered");
    }
    assert_eq!(accepted.len(), ALERTS, "no alert beyond the expected ones");
    let repeats: usize = accepted.values().map(|count| count - 1).sum();
    assert!(
        repeats < before_kill.len(),
        "the restart resumed from its recorded position ({repeats} repeats of {} delivered before the kill)",
        before_kill.len()
    );
    println!(
        "kill9: {} delivered before SIGKILL, {repeats} delivered again after the restart, all {ALERTS} delivered",
        before_kill.len()
    );
}
