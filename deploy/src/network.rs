//! What a rendering's NetworkPolicies allow between the release's own pods, by Kubernetes'
//! rules: a pod selected by no policy of a direction is open in that direction; otherwise a
//! connection needs a rule of some selecting policy matching both port and peer. Peers are
//! pods of the same namespace: a namespaceSelector or an ipBlock never names them here.

use serde_json::{Map, Value};

use crate::manifest::{Manifest, selector_matches};

/// Which side of a connection a policy rule governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `spec.ingress`, peers in `from`.
    Ingress,
    /// `spec.egress`, peers in `to`.
    Egress,
}

impl Direction {
    fn fields(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Direction::Ingress => ("Ingress", "ingress", "from"),
            Direction::Egress => ("Egress", "egress", "to"),
        }
    }
}

/// Whether pods labelled `source` may open TCP connections to port `port` of pods labelled
/// `destination`: the source's egress and the destination's ingress must both allow it.
pub fn allows(
    manifest: &Manifest,
    source: &Map<String, Value>,
    destination: &Map<String, Value>,
    port: u16,
) -> bool {
    side_allows(manifest, Direction::Egress, source, port, |peer| {
        pod_peer_matches(peer, destination)
    }) && side_allows(manifest, Direction::Ingress, destination, port, |peer| {
        pod_peer_matches(peer, source)
    })
}

/// Whether pods labelled `source` may reach TCP port `port` of any address (0.0.0.0/0).
pub fn allows_egress_anywhere(manifest: &Manifest, source: &Map<String, Value>, port: u16) -> bool {
    side_allows(manifest, Direction::Egress, source, port, |peer| {
        peer["ipBlock"]["cidr"] == "0.0.0.0/0" && peer["ipBlock"]["except"].is_null()
    })
}

fn side_allows(
    manifest: &Manifest,
    direction: Direction,
    subject: &Map<String, Value>,
    port: u16,
    peer_matches: impl Fn(&Value) -> bool,
) -> bool {
    let (policy_type, rules_field, peers_field) = direction.fields();
    let mut selecting = manifest
        .of_kind("NetworkPolicy")
        .filter(|policy| {
            policy["spec"]["policyTypes"]
                .as_array()
                .is_some_and(|types| types.iter().any(|kind| kind == policy_type))
        })
        .filter(|policy| selector_matches(&policy["spec"]["podSelector"], subject))
        .peekable();
    if selecting.peek().is_none() {
        return true;
    }
    selecting.any(|policy| {
        policy["spec"][rules_field]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| {
                let ports_match = match rule["ports"].as_array() {
                    None => true,
                    Some(ports) if ports.is_empty() => true,
                    Some(ports) => ports.iter().any(|entry| {
                        entry["port"] == port
                            && (entry["protocol"].is_null() || entry["protocol"] == "TCP")
                    }),
                };
                let peers_match = match rule[peers_field].as_array() {
                    None => true,
                    Some(peers) if peers.is_empty() => true,
                    Some(peers) => peers.iter().any(&peer_matches),
                };
                ports_match && peers_match
            })
    })
}

fn pod_peer_matches(peer: &Value, labels: &Map<String, Value>) -> bool {
    let same_namespace_pods = peer["namespaceSelector"].is_null() && peer["ipBlock"].is_null();
    same_namespace_pods
        && peer
            .get("podSelector")
            .is_some_and(|selector| selector_matches(selector, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(component: &str) -> Map<String, Value> {
        json!({"component": component})
            .as_object()
            .cloned()
            .expect("an object")
    }

    fn policy(component: &str, spec_extra: Value) -> Value {
        let mut spec = json!({"podSelector": {"matchLabels": {"component": component}}});
        for (key, value) in spec_extra.as_object().expect("an object") {
            spec[key] = value.clone();
        }
        json!({"kind": "NetworkPolicy", "spec": spec})
    }

    #[test]
    fn a_connection_needs_the_egress_of_its_source_and_the_ingress_of_its_destination() {
        let deny_all = json!({"kind": "NetworkPolicy", "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}});
        let server_in = policy(
            "server",
            json!({"policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}], "from": [{"podSelector": {"matchLabels": {"component": "client"}}}]}]}),
        );
        let client_out = policy(
            "client",
            json!({"policyTypes": ["Egress"], "egress": [{"ports": [{"port": 80}], "to": [{"podSelector": {"matchLabels": {"component": "server"}}}]}, {"ports": [{"port": 443}], "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}),
        );
        let manifest =
            Manifest::from_objects(vec![deny_all.clone(), server_in.clone(), client_out])
                .expect("objects");
        let (client, server, other) = (labels("client"), labels("server"), labels("other"));
        assert!(allows(&manifest, &client, &server, 80));
        assert!(!allows(&manifest, &client, &server, 81));
        assert!(!allows(&manifest, &other, &server, 80));
        assert!(!allows(&manifest, &server, &client, 80));
        assert!(allows_egress_anywhere(&manifest, &client, 443));
        assert!(!allows_egress_anywhere(&manifest, &server, 443));
        // Without the client's egress rule the server's ingress alone is not enough.
        let manifest = Manifest::from_objects(vec![deny_all, server_in]).expect("objects");
        assert!(!allows(&manifest, &client, &server, 80));
        // Selected by no policy: open.
        let manifest = Manifest::from_objects(Vec::new()).expect("objects");
        assert!(allows(&manifest, &client, &server, 80));
    }
}
