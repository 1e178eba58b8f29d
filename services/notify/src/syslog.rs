//! RFC 5424 syslog messages and their RFC 6587 octet-counting frames.
//!
//! An alert becomes
//! `<PRI>1 TIMESTAMP HOSTNAME palisade - SOURCE [palisade@32473 id="..." tenant="..." ...] BOM OUTPUT`:
//! PRI from the target's facility and the alert's priority (Falco's priorities are syslog's
//! severities), the alert's fields as structured data, its output line as the message.

use chrono::{DateTime, FixedOffset, SecondsFormat, Timelike};
use palisade_core::falco::NOT_AVAILABLE;
use palisade_proto::PriorityExt;
use palisade_proto::v1::{Alert, Priority};

/// SD-ID of the alert's structured data. 32473 is the private enterprise number RFC 5612
/// reserves for documentation; collectors match on the whole SD-ID.
pub const ALERT_SD_ID: &str = "palisade@32473";
/// APP-NAME of every message.
pub const APP_NAME: &str = "palisade";
/// Largest message sent over UDP: RFC 5426 receivers must take 480 bytes and should take
/// 2048; common collectors (rsyslog, syslog-ng) take 8 KiB.
pub const MAX_UDP_MESSAGE: usize = 8 * 1024;
/// Largest message sent over TCP.
pub const MAX_TCP_MESSAGE: usize = 64 * 1024;
/// Longest structured-data value; longer ones are cut (the full text is in the message).
const MAX_PARAM_VALUE: usize = 512;
/// The UTF-8 byte order mark RFC 5424 asks to put before a UTF-8 message.
const BOM: &str = "\u{feff}";

/// One structured-data element: `[id name="value" ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    /// SD-ID (an IANA name or `name@enterprise-number`).
    pub id: String,
    /// Parameters in order.
    pub params: Vec<(String, String)>,
}

/// An RFC 5424 message before formatting. Header fields are sanitized when formatted:
/// characters outside printable US-ASCII become '_' and each is cut to its RFC length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    /// Facility code, 0 to 23.
    pub facility: u8,
    /// Severity, 0 (emergency) to 7 (debug).
    pub severity: u8,
    /// When the event happened; `-` when unknown.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// HOSTNAME (at most 255 characters).
    pub hostname: String,
    /// APP-NAME (at most 48 characters).
    pub app_name: String,
    /// PROCID (at most 128 characters).
    pub proc_id: String,
    /// MSGID (at most 32 characters).
    pub msg_id: String,
    /// STRUCTURED-DATA elements, in order.
    pub structured_data: Vec<SdElement>,
    /// The free-form message, if any.
    pub message: Option<String>,
    /// Whether the message starts with a BOM (RFC 5424 §6.4: it SHOULD when it is UTF-8).
    pub bom: bool,
}

/// Syslog severity of a Falco priority: they are the same eight levels.
pub fn severity_of(priority: Priority) -> u8 {
    match priority {
        Priority::Emergency => 0,
        Priority::Alert => 1,
        Priority::Critical => 2,
        Priority::Error => 3,
        Priority::Warning => 4,
        Priority::Notice => 5,
        Priority::Informational => 6,
        Priority::Debug | Priority::Unspecified => 7,
    }
}

fn push_header_field(out: &mut String, value: &str, max: usize) {
    if value.is_empty() {
        out.push('-');
        return;
    }
    // PRINTUSASCII is 33..=126; each such character is one byte, so `max` counts bytes.
    out.extend(value.chars().take(max).map(|character| {
        if ('!'..='~').contains(&character) {
            character
        } else {
            '_'
        }
    }));
}

fn push_sd_name(out: &mut String, name: &str) {
    // SD-NAME: 1*32 PRINTUSASCII except '=', SP, ']' and '"'.
    let cleaned: String = name
        .chars()
        .filter(|character| ('!'..='~').contains(character) && !"= ]\"".contains(*character))
        .take(32)
        .collect();
    out.push_str(if cleaned.is_empty() { "_" } else { &cleaned });
}

fn push_param_value(out: &mut String, value: &str) {
    for character in value.chars() {
        if matches!(character, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(character);
    }
}

fn cut(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl SyslogMessage {
    /// The message as RFC 5424 text, at most `max_bytes` long (the free-form message is cut at
    /// a character boundary to fit; the header and structured data always fit, being bounded).
    pub fn format(&self, max_bytes: usize) -> String {
        let mut out = String::with_capacity(256);
        let prival = u16::from(self.facility.min(23)) * 8 + u16::from(self.severity.min(7));
        out.push('<');
        out.push_str(&prival.to_string());
        out.push_str(">1 ");
        match &self.timestamp {
            Some(time) => {
                // TIME-SECFRAC allows at most six digits.
                let micros = time.timestamp_subsec_micros() * 1_000;
                let truncated = time.with_nanosecond(micros).unwrap_or(*time);
                out.push_str(&truncated.to_rfc3339_opts(SecondsFormat::AutoSi, true));
            }
            None => out.push('-'),
        }
        out.push(' ');
        push_header_field(&mut out, &self.hostname, 255);
        out.push(' ');
        push_header_field(&mut out, &self.app_name, 48);
        out.push(' ');
        push_header_field(&mut out, &self.proc_id, 128);
        out.push(' ');
        push_header_field(&mut out, &self.msg_id, 32);
        out.push(' ');
        if self.structured_data.is_empty() {
            out.push('-');
        }
        for element in &self.structured_data {
            out.push('[');
            push_sd_name(&mut out, &element.id);
            for (name, value) in &element.params {
                out.push(' ');
                push_sd_name(&mut out, name);
                out.push_str("=\"");
                push_param_value(&mut out, cut(value, MAX_PARAM_VALUE));
                out.push('"');
            }
            out.push(']');
        }
        if let Some(message) = &self.message {
            out.push(' ');
            if self.bom {
                out.push_str(BOM);
            }
            let room = max_bytes.saturating_sub(out.len());
            out.push_str(cut(message, room));
        }
        out
    }
}

/// The syslog message of an alert for a target of `facility`.
pub fn alert_message(alert: &Alert, facility: u8) -> SyslogMessage {
    let priority = Priority::try_from(alert.priority).unwrap_or(Priority::Unspecified);
    let field = |name: &str| {
        alert
            .output_fields
            .get(name)
            .filter(|value| !value.is_empty() && value.as_str() != NOT_AVAILABLE)
            .cloned()
    };
    let mut params = vec![
        ("id".to_string(), alert.id.clone()),
        ("tenant".to_string(), alert.tenant_id.clone()),
        ("cluster".to_string(), alert.cluster_id.clone()),
        ("rule".to_string(), alert.rule.clone()),
        ("priority".to_string(), priority.falco_name().to_string()),
        ("source".to_string(), alert.source.clone()),
    ];
    for (name, field_name) in [
        ("namespace", "k8s.ns.name"),
        ("pod", "k8s.pod.name"),
        ("container", "container.name"),
        ("image", "container.image.repository"),
        ("user", "ka.user.name"),
        ("proc", "proc.name"),
    ] {
        if let Some(value) = field(field_name) {
            params.push((name.to_string(), value));
        }
    }
    if !alert.tags.is_empty() {
        params.push(("tags".to_string(), alert.tags.join(",")));
    }
    params.retain(|(_, value)| !value.is_empty());
    let timestamp = alert.time.as_ref().and_then(|time| {
        let nanos = u32::try_from(time.nanos).ok()?;
        DateTime::from_timestamp(time.seconds, nanos).map(|utc| utc.fixed_offset())
    });
    let message = if alert.output.is_empty() {
        alert.rule.clone()
    } else {
        alert.output.clone()
    };
    SyslogMessage {
        facility,
        severity: severity_of(priority),
        timestamp,
        hostname: alert.hostname.clone(),
        app_name: APP_NAME.to_string(),
        proc_id: String::new(),
        msg_id: alert.source.clone(),
        structured_data: vec![SdElement {
            id: ALERT_SD_ID.to_string(),
            params,
        }],
        message: Some(message),
        bom: true,
    }
}

/// RFC 6587 octet-counting framing: `MSG-LEN SP SYSLOG-MSG`.
pub fn octet_counting_frame(message: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message.len() + 8);
    frame.extend_from_slice(message.len().to_string().as_bytes());
    frame.push(b' ');
    frame.extend_from_slice(message.as_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> Option<DateTime<FixedOffset>> {
        Some(DateTime::parse_from_rfc3339(text).expect("time"))
    }

    // The four examples of RFC 5424 §6.5, where "BOM" stands for the byte order mark.
    #[test]
    fn the_rfc_examples_are_reproduced_byte_for_byte() {
        let example_1 = SyslogMessage {
            facility: 4,
            severity: 2,
            timestamp: time("2003-10-11T22:14:15.003Z"),
            hostname: "mymachine.example.com".into(),
            app_name: "su".into(),
            proc_id: String::new(),
            msg_id: "ID47".into(),
            structured_data: Vec::new(),
            message: Some("'su root' failed for lonvick on /dev/pts/8".into()),
            bom: true,
        };
        assert_eq!(
            example_1.format(MAX_TCP_MESSAGE),
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8"
        );
        let example_2 = SyslogMessage {
            facility: 20,
            severity: 5,
            timestamp: time("2003-08-24T05:14:15.000003-07:00"),
            hostname: "192.0.2.1".into(),
            app_name: "myproc".into(),
            proc_id: "8710".into(),
            msg_id: String::new(),
            structured_data: Vec::new(),
            message: Some("%% It's time to make the do-nuts.".into()),
            bom: false,
        };
        assert_eq!(
            example_2.format(MAX_TCP_MESSAGE),
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."
        );
        let event_sd = SdElement {
            id: "exampleSDID@32473".into(),
            params: vec![
                ("iut".into(), "3".into()),
                ("eventSource".into(), "Application".into()),
                ("eventID".into(), "1011".into()),
            ],
        };
        let example_3 = SyslogMessage {
            facility: 20,
            severity: 5,
            timestamp: time("2003-10-11T22:14:15.003Z"),
            hostname: "mymachine.example.com".into(),
            app_name: "evntslog".into(),
            proc_id: String::new(),
            msg_id: "ID47".into(),
            structured_data: vec![event_sd.clone()],
            message: Some("An application event log entry...".into()),
            bom: true,
        };
        assert_eq!(
            example_3.format(MAX_TCP_MESSAGE),
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry..."
        );
        let example_4 = SyslogMessage {
            structured_data: vec![
                event_sd,
                SdElement {
                    id: "examplePriority@32473".into(),
                    params: vec![("class".into(), "high".into())],
                },
            ],
            message: None,
            ..example_3
        };
        assert_eq!(
            example_4.format(MAX_TCP_MESSAGE),
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]"
        );
    }

    #[test]
    fn values_are_escaped_header_fields_sanitized_and_messages_cut_to_fit() {
        let message = SyslogMessage {
            facility: 4,
            severity: 4,
            timestamp: time("2026-11-27T02:47:52.881781397Z"),
            hostname: "node 1\u{e9}".into(),
            app_name: APP_NAME.into(),
            proc_id: String::new(),
            msg_id: "syscall".into(),
            structured_data: vec![SdElement {
                id: ALERT_SD_ID.into(),
                params: vec![("cmd".into(), "echo \"a]\\b\"".into())],
            }],
            message: Some("\u{e9}".repeat(400)),
            bom: true,
        };
        let text = message.format(300);
        assert!(
            text.starts_with("<36>1 2026-11-27T02:47:52.881781Z node_1_ palisade - syscall "),
            "{text}"
        );
        assert!(
            text.contains(r#"[palisade@32473 cmd="echo \"a\]\\b\""]"#),
            "{text}"
        );
        assert!(text.len() <= 300 && text.len() > 290, "{}", text.len());
        assert!(text.ends_with('\u{e9}'));
    }

    #[test]
    fn frames_count_bytes_not_characters() {
        assert_eq!(
            octet_counting_frame("<14>1 \u{e9}"),
            b"8 <14>1 \xc3\xa9".to_vec()
        );
    }

    #[test]
    fn priorities_map_to_the_syslog_severities() {
        assert_eq!(severity_of(Priority::Emergency), 0);
        assert_eq!(severity_of(Priority::Warning), 4);
        assert_eq!(severity_of(Priority::Informational), 6);
        assert_eq!(severity_of(Priority::Debug), 7);
    }
}
