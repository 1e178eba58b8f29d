//! MITRE ATT&CK and Kubernetes threat-matrix identifiers carried in rule tags.

/// Classification found in a rule's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MitreTags {
    /// Technique or sub-technique ids (`T1611`, `T1552.007`).
    pub technique_ids: Vec<String>,
    /// Tactics in ATT&CK's lower-case form (`privilege-escalation`), from `mitre_*` tags.
    pub tactics: Vec<String>,
    /// Microsoft threat matrix for Kubernetes technique ids (`MS-TA9013`).
    pub threat_matrix_ids: Vec<String>,
}

fn is_technique_id(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((main, sub)) => (main, Some(sub)),
        None => (rest, None),
    };
    main.len() == 4
        && main.bytes().all(|byte| byte.is_ascii_digit())
        && sub.is_none_or(|sub| sub.len() == 3 && sub.bytes().all(|byte| byte.is_ascii_digit()))
}

/// Extracts technique ids, tactics and threat-matrix ids from rule tags.
pub fn mitre_from_tags(tags: &[String]) -> MitreTags {
    let mut mitre = MitreTags::default();
    for tag in tags {
        if is_technique_id(tag) {
            mitre.technique_ids.push(tag.clone());
        } else if let Some(tactic) = tag.strip_prefix("mitre_") {
            mitre.tactics.push(tactic.replace('_', "-"));
        } else if tag.starts_with("MS-TA") {
            mitre.threat_matrix_ids.push(tag.clone());
        }
    }
    mitre
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn techniques_tactics_and_matrix_ids_are_recognised() {
        let tags: Vec<String> = [
            "k8s",
            "T1611",
            "T1552.007",
            "T161",
            "mitre_privilege_escalation",
            "MS-TA9013",
            "Txxxx",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let mitre = mitre_from_tags(&tags);
        assert_eq!(mitre.technique_ids, ["T1611", "T1552.007"]);
        assert_eq!(mitre.tactics, ["privilege-escalation"]);
        assert_eq!(mitre.threat_matrix_ids, ["MS-TA9013"]);
    }
}
