//! Model-based test of the spool: random sequences of appends, acks, reads, flushes and
//! reopenings, checked against a plain in-memory model.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn alert(index: u32, padding: usize) -> Alert {
    Alert {
        id: format!("alert-{index}"),
        rule: "r".into(),
        output: "x".repeat(padding),
        ..Alert::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Ack(u8),
    Read(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..300).prop_map(Op::Append),
        2 => any::<u8>().prop_map(Op::Ack),
        2 => any::<u8>().prop_map(Op::Read),
        1 => Just(Op::Reopen),
    ]
}

/// The model: what the spool must hold.
#[derive(Debug, Default)]
struct Model {
    held: BTreeMap<u64, (String, usize)>,
    next_seq: u64,
    acked: u64,
    evicted: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn the_spool_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let max_bytes = 2000;
        let mut spool = Spool::open(dir.path(), max_bytes).expect("open");
        let mut model = Model { next_seq: 1, ..Model::default() };
        let mut counter = 0u32;
        for op in ops {
            match op {
                Op::Append(padding) => {
                    counter += 1;
                    let alert = alert(counter, padding);
                    let size = alert.encoded_len();
                    let appended = spool.append(&alert).expect("append");
                    prop_assert_eq!(appended.seq, model.next_seq);
                    model.held.insert(model.next_seq, (alert.id.clone(), size));
                    model.next_seq += 1;
                    let mut evicted = 0;
                    while model.held.values().map(|(_, size)| size).sum::<usize>() > max_bytes && model.held.len() > 1 {
                        let oldest = *model.held.keys().next().expect("non-empty");
                        model.held.remove(&oldest);
                        evicted += 1;
                    }
                    model.evicted += evicted;
                    prop_assert_eq!(appended.evicted, evicted);
                }
                Op::Ack(offset) => {
                    let up_to = (model.acked + u64::from(offset % 8)).min(model.next_seq - 1);
                    spool.ack(up_to).expect("ack");
                    model.held.retain(|seq, _| *seq > up_to);
                    model.acked = model.acked.max(up_to);
                }
                Op::Read(after_offset) => {
                    let after = model.acked + u64::from(after_offset % 6);
                    let read = spool.read_after(after, 5).expect("read");
                    let expected: Vec<(u64, String)> = model
                        .held
                        .range(after + 1..)
                        .take(5)
                        .map(|(seq, (id, _))| (*seq, id.clone()))
                        .collect();
                    let got: Vec<(u64, String)> = read.into_iter().map(|(seq, alert)| (seq, alert.id)).collect();
                    prop_assert_eq!(got, expected);
                }
                Op::Reopen => {
                    spool.flush().expect("flush");
                    drop(spool);
                    spool = Spool::open(dir.path(), max_bytes).expect("reopen");
                }
            }
            prop_assert_eq!(spool.len(), model.held.len());
            prop_assert_eq!(spool.bytes(), model.held.values().map(|(_, size)| size).sum::<usize>());
            prop_assert_eq!(spool.next_seq(), model.next_seq);
            prop_assert_eq!(spool.acked(), model.acked);
            prop_assert_eq!(spool.evicted(), model.evicted);
        }
    }
}

#[test]
fn a_reopened_spool_continues_its_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::open(dir.path(), 1 << 20).expect("open");
    for index in 0..5 {
        spool.append(&alert(index, 10)).expect("append");
    }
    spool.ack(2).expect("ack");
    spool.flush().expect("flush");
    drop(spool);
    let spool = Spool::open(dir.path(), 1 << 20).expect("reopen");
    assert_eq!(spool.acked(), 2);
    assert_eq!(spool.len(), 3);
    assert_eq!(spool.append(&alert(9, 1)).expect("append").seq, 6);
    let ids: Vec<String> = spool
        .read_after(0, 10)
        .expect("read")
        .into_iter()
        .map(|(_, alert)| alert.id)
        .collect();
    assert_eq!(ids, ["alert-2", "alert-3", "alert-4", "alert-9"]);
}
