use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn entry(key: Option<&str>, payload: &str) -> LogEntry {
    LogEntry {
        dedupe_key: key.map(|key| key.as_bytes().to_vec()),
        payload: payload.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn appended_records_are_read_back_in_order_and_survive_reopen() {
    let temp = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(temp.path()).expect("open");
        let topic = Topic::open(&store, "alerts").expect("topic");
        let results = topic
            .append(vec![entry(Some("a"), "one"), entry(None, "two")])
            .await
            .expect("append");
        assert_eq!(
            results,
            vec![AppendResult::Appended(0), AppendResult::Appended(1)]
        );
        assert_eq!(topic.durable_end(), 2);
    }
    let store = Store::open(temp.path()).expect("reopen");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let records = topic.read(0, 10).expect("read");
    let payloads: Vec<&[u8]> = records
        .iter()
        .map(|record| record.payload.as_slice())
        .collect();
    assert_eq!(payloads, vec![b"one".as_slice(), b"two".as_slice()]);
    let results = topic
        .append(vec![entry(Some("a"), "again"), entry(Some("b"), "three")])
        .await
        .expect("append");
    assert_eq!(
        results,
        vec![AppendResult::Duplicate(0), AppendResult::Appended(2)]
    );
}

#[tokio::test]
async fn duplicate_keys_inside_one_batch_are_stored_once() {
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let results = topic
        .append(vec![entry(Some("k"), "first"), entry(Some("k"), "second")])
        .await
        .expect("append");
    assert_eq!(
        results,
        vec![AppendResult::Appended(0), AppendResult::Duplicate(0)]
    );
    assert_eq!(topic.read(0, 10).expect("read").len(), 1);
}

#[tokio::test]
async fn subscribers_are_woken_when_records_become_durable() {
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut receiver = topic.subscribe();
    let writer = topic.clone();
    let handle = tokio::spawn(async move { writer.append(vec![entry(None, "x")]).await });
    receiver.changed().await.expect("woken");
    assert_eq!(*receiver.borrow(), 1);
    handle.await.expect("join").expect("append");
}

#[tokio::test]
async fn concurrent_appends_get_distinct_dense_offsets() {
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let mut handles = Vec::new();
    for writer_index in 0..8 {
        let topic = topic.clone();
        handles.push(tokio::spawn(async move {
            let batch = (0..25)
                .map(|i| entry(Some(&format!("{writer_index}-{i}")), "p"))
                .collect();
            topic.append(batch).await
        }));
    }
    for handle in handles {
        handle.await.expect("join").expect("append");
    }
    let records = topic.read(0, 1_000).expect("read");
    let offsets: Vec<u64> = records.iter().map(|record| record.offset).collect();
    assert_eq!(offsets, (0..200).collect::<Vec<u64>>());
}

#[test]
fn consumer_offsets_start_at_zero_and_persist() {
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    assert_eq!(topic.consumer_offset("search").expect("offset"), 0);
    topic.commit_consumer_offset("search", 42).expect("commit");
    assert_eq!(topic.consumer_offset("search").expect("offset"), 42);
    assert_eq!(topic.consumer_offset("graph").expect("offset"), 0);
}

/// Operations of the model-based test.
#[derive(Debug, Clone)]
enum Operation {
    Append(Vec<(Option<u8>, u8)>),
    Read { from: u8, max: u8 },
    Reopen,
}

fn operation_strategy() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => prop::collection::vec((prop::option::of(0u8..20), any::<u8>()), 0..6).prop_map(Operation::Append),
        2 => (any::<u8>(), 1u8..10).prop_map(|(from, max)| Operation::Read { from, max }),
        1 => Just(Operation::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The log behaves like a vector of payloads plus a map from key to offset, across
    /// reopenings of the database.
    #[test]
    fn log_matches_its_model(operations in prop::collection::vec(operation_strategy(), 1..30)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let temp = tempfile::tempdir().expect("temp dir");
        let mut store = Store::open(temp.path()).expect("open");
        let mut topic = Topic::open(&store, "model").expect("topic");
        let mut model_records: Vec<Vec<u8>> = Vec::new();
        let mut model_keys: HashMap<u8, u64> = HashMap::new();
        for operation in operations {
            match operation {
                Operation::Append(batch) => {
                    let entries: Vec<LogEntry> = batch.iter().map(|(key, payload)| LogEntry {
                        dedupe_key: key.map(|key| vec![key]),
                        payload: vec![*payload],
                    }).collect();
                    let results = runtime.block_on(topic.append(entries)).expect("append");
                    let mut expected = Vec::new();
                    for (key, payload) in batch {
                        match key.and_then(|key| model_keys.get(&key).copied()) {
                            Some(existing) => expected.push(AppendResult::Duplicate(existing)),
                            None => {
                                let offset = model_records.len() as u64;
                                if let Some(key) = key {
                                    model_keys.insert(key, offset);
                                }
                                model_records.push(vec![payload]);
                                expected.push(AppendResult::Appended(offset));
                            }
                        }
                    }
                    prop_assert_eq!(results, expected);
                }
                Operation::Read { from, max } => {
                    let records = topic.read(u64::from(from), usize::from(max)).expect("read");
                    let expected: Vec<LogRecord> = model_records
                        .iter()
                        .enumerate()
                        .skip(usize::from(from))
                        .take(usize::from(max))
                        .map(|(offset, payload)| LogRecord { offset: offset as u64, payload: payload.clone() })
                        .collect();
                    prop_assert_eq!(records, expected);
                }
                Operation::Reopen => {
                    drop(topic);
                    drop(store);
                    store = Store::open(temp.path()).expect("reopen");
                    topic = Topic::open(&store, "model").expect("topic");
                }
            }
            prop_assert_eq!(topic.durable_end(), model_records.len() as u64);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_each_return_only_once_their_records_are_durable() {
    let temp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(temp.path()).expect("open");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let appenders = (0..40)
        .map(|appender| {
            let topic = topic.clone();
            tokio::spawn(async move {
                let batch = (0..25)
                    .map(|index| entry(Some(&format!("{appender}/{index}")), "x"))
                    .collect();
                let results = topic.append(batch).await.expect("append");
                // at return, every offset of the batch is visible to readers
                let durable = topic.durable_end();
                for result in &results {
                    let AppendResult::Appended(offset) = result else {
                        panic!("no duplicates here: {result:?}");
                    };
                    assert!(
                        *offset < durable,
                        "offset {offset} returned before durable {durable}"
                    );
                }
                results.len()
            })
        })
        .collect::<Vec<_>>();
    let mut appended = 0;
    for appender in appenders {
        appended += appender.await.expect("appender");
    }
    assert_eq!(appended, 1000);
    assert_eq!(topic.durable_end(), 1000);
    drop(topic);
    drop(store);
    let store = Store::open(temp.path()).expect("reopen");
    let topic = Topic::open(&store, "alerts").expect("topic");
    assert_eq!(topic.read(0, 2000).expect("read").len(), 1000);
}

/// An alert record of `tenant` as the gateway appends it.
fn alert_entry(tenant: &str, id: &str) -> LogEntry {
    let alert = palisade_proto::v1::Alert {
        id: id.to_string(),
        tenant_id: tenant.to_string(),
        rule: format!("rule of {id}"),
        ..palisade_proto::v1::Alert::default()
    };
    LogEntry {
        dedupe_key: Some(format!("{tenant}/{id}").into_bytes()),
        payload: prost::Message::encode_to_vec(&alert),
    }
}

#[tokio::test]
async fn erasing_a_tenant_replaces_its_records_keeps_offsets_and_frees_its_keys() {
    let temp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(temp.path()).expect("open");
    let topic = Topic::open(&store, "alerts").expect("topic");
    // more records than one erase chunk, the two tenants interleaved
    let entries: Vec<LogEntry> = (0..10_000)
        .map(|index| {
            let tenant = if index % 3 == 0 { "acme" } else { "globex" };
            alert_entry(tenant, &format!("a-{index}"))
        })
        .collect();
    let acme_count = entries.iter().step_by(3).count() as u64;
    topic.append(entries.clone()).await.expect("append");
    // a finding-like record of another tenant whose name acme prefixes is not acme's
    topic
        .append(vec![alert_entry("acme-2", "b-0")])
        .await
        .expect("append");

    let erasure = topic.erase_tenant("acme").await.expect("erase");
    assert_eq!(erasure.erased, acme_count);
    assert_eq!(erasure.marker, 10_001);
    assert_eq!(topic.durable_end(), 10_002);
    // the tenant's records are refused until its deletion is done, and control records always
    let refused = topic
        .append(vec![alert_entry("acme", "late")])
        .await
        .expect_err("acme is closed");
    assert!(refused.to_string().contains("being deleted"), "{refused}");
    let forged = LogEntry {
        dedupe_key: None,
        payload: ControlRecord::TenantErased {
            tenant: "globex".into(),
        }
        .encode(),
    };
    let forged = topic
        .append(vec![forged])
        .await
        .expect_err("only the log writes them");
    assert!(forged.to_string().contains("control record"), "{forged}");
    assert_eq!(topic.durable_end(), 10_002, "nothing of either was written");
    drop(topic);
    drop(store);

    let store = Store::open(temp.path()).expect("reopen");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let records = topic.read(0, 20_000).expect("read");
    assert_eq!(records.len(), 10_002, "offsets stay dense");
    for (record, entry) in records.iter().zip(&entries) {
        let tenant = record_tenant(&entry.payload).expect("tenant");
        if tenant == "acme" {
            assert_eq!(
                ControlRecord::decode(&record.payload).expect("control"),
                Some(ControlRecord::Erased),
                "offset {}",
                record.offset
            );
        } else {
            assert_eq!(record.payload, entry.payload, "offset {}", record.offset);
        }
    }
    assert_eq!(
        record_tenant(&records[10_000].payload).as_deref(),
        Some("acme-2")
    );
    assert_eq!(
        ControlRecord::decode(&records[10_001].payload).expect("marker"),
        Some(ControlRecord::TenantErased {
            tenant: "acme".into()
        })
    );
    assert_eq!(topic.offset_of_key(b"acme/a-0").expect("key"), None);
    assert_eq!(topic.offset_of_key(b"globex/a-1").expect("key"), Some(1));
    assert_eq!(
        topic.offset_of_key(b"acme-2/b-0").expect("key"),
        Some(10_000)
    );
    // a tenant created again under the same name starts afresh (the closing of a tenant
    // lasts until its deletion is done or the process restarts, when the deletion resumes)
    let again = topic
        .append(vec![alert_entry("acme", "a-0")])
        .await
        .expect("append");
    assert_eq!(again, vec![AppendResult::Appended(10_002)]);
    // erasing again erases what came since and appends another marker
    let second = topic.erase_tenant("acme").await.expect("erase again");
    assert_eq!(
        second,
        Erasure {
            erased: 1,
            marker: 10_003
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_sharing_keys_store_each_key_once_at_the_offset_all_are_told() {
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    // 30 appenders, each sending the same 50 keys in its own order
    let appenders = (0..30u64)
        .map(|appender| {
            let topic = topic.clone();
            tokio::spawn(async move {
                let batch = (0..50u64)
                    .map(|index| {
                        let key = (index + appender * 7) % 50;
                        entry(Some(&format!("t/{key}")), &format!("{appender}"))
                    })
                    .collect();
                topic.append(batch).await.expect("append")
            })
        })
        .collect::<Vec<_>>();
    let mut offsets_of: HashMap<u64, std::collections::BTreeSet<u64>> = HashMap::new();
    let mut appended = 0;
    for (appender, task) in appenders.into_iter().enumerate() {
        for (index, result) in task.await.expect("appender").into_iter().enumerate() {
            let key = (index as u64 + appender as u64 * 7) % 50;
            let offset = match result {
                AppendResult::Appended(offset) => {
                    appended += 1;
                    offset
                }
                AppendResult::Duplicate(offset) => offset,
            };
            offsets_of.entry(key).or_default().insert(offset);
        }
    }
    assert_eq!(appended, 50, "each key stored once");
    assert!(offsets_of.values().all(|offsets| offsets.len() == 1));
    assert_eq!(topic.durable_end(), 50);
    for (key, offsets) in &offsets_of {
        let offset = *offsets.iter().next().expect("offset");
        assert_eq!(
            topic
                .offset_of_key(format!("t/{key}").as_bytes())
                .expect("key"),
            Some(offset)
        );
    }
}
