//! Fuzz entry point of the audit decoder, shared by the cargo-fuzz target and unit tests.

use std::sync::{Arc, OnceLock};

use palisade_rules::{CompileOptions, RuleEngine, RulesLoader};

use crate::decode::{DecodeLimits, decode_document, decode_lines};
use crate::fields::K8sAuditSource;
use crate::pack::builtin_rules;

fn engine() -> &'static RuleEngine<K8sAuditSource> {
    static ENGINE: OnceLock<RuleEngine<K8sAuditSource>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut loader = RulesLoader::new();
        for (name, text) in builtin_rules() {
            loader.add_text(&name, &text);
        }
        RuleEngine::new(
            Arc::new(K8sAuditSource),
            &loader.finish(),
            CompileOptions::default(),
        )
    })
}

/// Decodes arbitrary bytes as a webhook body and as JSON lines, then evaluates every decoded
/// event with the built-in pack, so field extraction sees the same hostile input. Must never
/// panic or hang.
pub fn fuzz_decode(data: &[u8]) {
    let limits = DecodeLimits {
        max_event_bytes: 64 * 1024,
        max_document_bytes: 256 * 1024,
    };
    let mut events = Vec::new();
    if let Ok(decoded) = decode_document(data, &limits) {
        events.extend(decoded.events);
    }
    events.extend(decode_lines(data, &limits).events);
    for event in &events {
        for detection in engine().detect(event) {
            let _ =
                crate::alert::AuditAlert::from_detection(&detection, event, "fuzz").to_falco_json();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_inputs_do_not_panic() {
        let inputs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"{".to_vec(),
            br#"{"kind":"EventList","items":[1,"x",{"kind":"Event","verb":"create","objectRef":{"resource":"pods"},"requestObject":{"spec":{"containers":"x","volumes":[{"hostPath":1}]}}}]}"#.to_vec(),
            br#"{"records":[{"properties":{"log":"{\"kind\":\"Event\",\"verb\":{}}"}}]}"#.to_vec(),
            br#"{"protoPayload":{"methodName":"io.k8s.v1","resourceName":"/////"}}"#.to_vec(),
            br#"{"kind":"Event","verb":"get","requestURI":"/x?%zz=%%&command","sourceIPs":["::ffff:1.2.3.4"]}"#.to_vec(),
            "[".repeat(10_000).into_bytes(),
        ];
        for input in inputs {
            fuzz_decode(&input);
        }
    }
}
