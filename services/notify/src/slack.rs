//! Slack incoming-webhook messages: a `text` fallback (what notifications and clients without
//! blocks show) and Block Kit blocks with priority, rule, output, cluster, pod and host.

use palisade_core::falco::{NOT_AVAILABLE, format_time};
use palisade_proto::PriorityExt;
use palisade_proto::v1::{Alert, Priority};
use serde_json::{Value, json};

/// Slack's limit on a header block's text.
const MAX_HEADER: usize = 150;
/// Slack's limit on a section's text is 3000; the output gets a little less, for the fences.
const MAX_OUTPUT: usize = 2_900;
/// Slack's limit on a field's text is 2000.
const MAX_FIELD: usize = 1_900;

fn cut(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut shortened: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    shortened.push('…');
    shortened
}

/// Escapes the three characters Slack's mrkdwn reserves.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn emoji(priority: Priority) -> &'static str {
    match priority {
        Priority::Emergency | Priority::Alert | Priority::Critical => ":rotating_light:",
        Priority::Error => ":red_circle:",
        Priority::Warning => ":warning:",
        _ => ":information_source:",
    }
}

/// The message posted for one alert.
pub fn slack_message(alert: &Alert) -> Value {
    let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
    let field = |name: &str| {
        alert
            .output_fields
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty() && *value != NOT_AVAILABLE)
    };
    let pod = match (field("k8s.ns.name"), field("k8s.pod.name")) {
        (Some(namespace), Some(pod)) => format!("{namespace}/{pod}"),
        (None, Some(pod)) => pod.to_string(),
        _ => "-".to_string(),
    };
    let or_dash = |text: &str| {
        if text.is_empty() {
            "-".to_string()
        } else {
            text.to_string()
        }
    };
    let mrkdwn_field = |label: &str, value: &str| json!({"type": "mrkdwn", "text": cut(&format!("*{label}*\n{}", escape(value)), MAX_FIELD)});
    let text = format!(
        "[{}] {}: {}",
        priority.falco_name(),
        alert.rule,
        if alert.output.is_empty() {
            &alert.rule
        } else {
            &alert.output
        }
    );
    let mut context = format!("tenant {} · alert {}", alert.tenant_id, alert.id);
    if let Some(time) = &alert.time {
        context.push_str(" · ");
        context.push_str(&format_time(time));
    }
    if !alert.tags.is_empty() {
        context.push_str(" · ");
        context.push_str(&alert.tags.join(", "));
    }
    json!({
        "text": cut(&escape(&text), MAX_OUTPUT),
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": cut(&format!("{} {}: {}", emoji(priority), priority.falco_name(), alert.rule), MAX_HEADER),
                    "emoji": true
                }
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": format!("```{}```", cut(&escape(&or_dash(&alert.output)), MAX_OUTPUT))}
            },
            {
                "type": "section",
                "fields": [
                    mrkdwn_field("Priority", priority.falco_name()),
                    mrkdwn_field("Rule", &alert.rule),
                    mrkdwn_field("Cluster", &or_dash(&alert.cluster_id)),
                    mrkdwn_field("Pod", &pod),
                    mrkdwn_field("Host", &or_dash(&alert.hostname)),
                    mrkdwn_field("Source", &or_dash(&alert.source)),
                ]
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": cut(&escape(&context), MAX_FIELD)}]
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use palisade_core::falco::alert_from_falco_json;

    use super::*;

    #[test]
    fn messages_carry_priority_rule_output_cluster_and_pod_within_slack_limits() {
        let line = r#"{"hostname":"node-1","output":"Shell <bash> spawned & attached","priority":"Critical","rule":"Terminal shell in container","source":"syscall","tags":["T1059"],"time":"2026-11-27T02:47:52Z","output_fields":{"k8s.ns.name":"prod","k8s.pod.name":"web-1"}}"#;
        let mut alert = alert_from_falco_json(line).expect("valid");
        alert.id = "a1".into();
        alert.tenant_id = "acme".into();
        alert.cluster_id = "prod-eu".into();
        let message = slack_message(&alert);
        assert_eq!(
            message["text"],
            "[Critical] Terminal shell in container: Shell &lt;bash&gt; spawned &amp; attached"
        );
        let blocks = message["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["type"], "header");
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .expect("header")
                .contains("Critical: Terminal shell")
        );
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|field| field["text"].as_str().expect("text"))
            .collect();
        assert!(fields.contains(&"*Cluster*\nprod-eu"), "{fields:?}");
        assert!(fields.contains(&"*Pod*\nprod/web-1"), "{fields:?}");

        alert.rule = "r".repeat(400);
        alert.output = "o".repeat(10_000);
        let long = slack_message(&alert);
        let header = long["blocks"][0]["text"]["text"].as_str().expect("header");
        assert!(header.chars().count() <= MAX_HEADER);
        let output = long["blocks"][1]["text"]["text"].as_str().expect("output");
        assert!(output.chars().count() <= 3_000);
    }
}
