//! The `[[notify.targets]]` section: where each tenant's alerts are sent (signed webhooks,
//! Slack, syslog, Splunk HEC), which of them, and how hard to try.

use std::collections::BTreeSet;
use std::path::PathBuf;

use palisade_proto::PriorityExt;
use palisade_proto::v1::Priority;
use serde::{Deserialize, Serialize};

/// Syslog facility names in the order of their RFC 5424 codes (0 to 23).
pub const SYSLOG_FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Longest target name: it names a log consumer and a dead-letter tree.
const MAX_TARGET_NAME: usize = 64;
/// Most alerts in one Splunk HEC request.
const MAX_BATCH_SIZE: usize = 10_000;

/// Alert notifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// One entry per destination; none by default.
    pub targets: Vec<NotifyTarget>,
}

/// What a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// HTTP POST of the alert in Falco's JSON shape, signed with HMAC-SHA256.
    Webhook,
    /// A Slack incoming webhook (or a Slack-compatible one: Mattermost, Rocket.Chat).
    Slack,
    /// RFC 5424 syslog over UDP or TCP.
    Syslog,
    /// Splunk's HTTP Event Collector.
    SplunkHec,
}

impl NotifyKind {
    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            NotifyKind::Webhook => "webhook",
            NotifyKind::Slack => "slack",
            NotifyKind::Syslog => "syslog",
            NotifyKind::SplunkHec => "splunk_hec",
        }
    }
}

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// One datagram per message (RFC 5426); nothing tells whether it arrived.
    Udp,
    /// A kept-open connection with octet-counting framing (RFC 6587).
    #[default]
    Tcp,
}

/// One destination of one tenant's alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// Unique name: letters, digits, '-', '_' and '.'. It keys the target's position in the
    /// alert log and its dead letters, so renaming a target starts it afresh.
    pub name: String,
    /// The tenant whose alerts this target receives [default: "default"]; never another's.
    #[serde(default = "super::default_tenant")]
    pub tenant: String,
    /// webhook, slack, syslog or splunk_hec.
    pub kind: NotifyKind,
    /// Endpoint of webhook, slack and splunk_hec targets. For splunk_hec a URL without a path
    /// gets `/services/collector/event`.
    #[serde(default)]
    pub url: Option<String>,
    /// `host:port` of a syslog receiver.
    #[serde(default)]
    pub address: Option<String>,
    /// Syslog transport [default: tcp].
    #[serde(default)]
    pub transport: SyslogTransport,
    /// Syslog facility name [default: auth].
    #[serde(default = "default_facility")]
    pub facility: String,
    /// File holding the HMAC key (webhook) or the HEC token (splunk_hec), surrounding
    /// whitespace ignored. Read at every send, so a rotated secret needs no restart.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Lowest Falco priority sent [default: debug, so everything].
    #[serde(default = "default_min_priority")]
    pub min_priority: String,
    /// Only alerts of these rules, when not empty.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Only alerts carrying at least one of these tags, when not empty.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Time allowed for one request, connection included [default: 10].
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Time allowed to connect [default: 5].
    #[serde(default = "default_connect_timeout_seconds")]
    pub connect_timeout_seconds: u64,
    /// Attempts at one delivery before it becomes a dead letter [default: 8].
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry, doubled at each one, with jitter [default: 500].
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    /// Longest wait between two attempts [default: 60000].
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Most alerts in one Splunk HEC request [default: 100]; other kinds send one at a time.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Dead letters kept for this target; past it the oldest is dropped and counted
    /// [default: 100000].
    #[serde(default = "default_max_dead_letters")]
    pub max_dead_letters: usize,
    /// A new target also sends the alerts already in the log [default: false: only alerts
    /// stored after it first started].
    #[serde(default)]
    pub replay_history: bool,
    /// Splunk index of the events [default: the token's default index].
    #[serde(default)]
    pub splunk_index: Option<String>,
    /// Splunk sourcetype of the events [default: "palisade:alert"].
    #[serde(default)]
    pub splunk_sourcetype: Option<String>,
}

fn default_facility() -> String {
    "auth".to_string()
}
fn default_min_priority() -> String {
    "debug".to_string()
}
fn default_timeout_seconds() -> u64 {
    10
}
fn default_connect_timeout_seconds() -> u64 {
    5
}
fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_initial_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_batch_size() -> usize {
    100
}
fn default_max_dead_letters() -> usize {
    100_000
}

impl NotifyTarget {
    /// A target of `kind` with every optional setting at its default, for code and tests that
    /// build configurations.
    pub fn new(name: &str, tenant: &str, kind: NotifyKind) -> NotifyTarget {
        NotifyTarget {
            name: name.to_string(),
            tenant: tenant.to_string(),
            kind,
            url: None,
            address: None,
            transport: SyslogTransport::default(),
            facility: default_facility(),
            secret_file: None,
            min_priority: default_min_priority(),
            rules: Vec::new(),
            tags: Vec::new(),
            timeout_seconds: default_timeout_seconds(),
            connect_timeout_seconds: default_connect_timeout_seconds(),
            max_attempts: default_max_attempts(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            batch_size: default_batch_size(),
            max_dead_letters: default_max_dead_letters(),
            replay_history: false,
            splunk_index: None,
            splunk_sourcetype: None,
        }
    }

    /// The lowest priority sent (checked by validation; `Debug` if it somehow is not valid).
    pub fn min_priority(&self) -> Priority {
        Priority::from_falco_name(&self.min_priority).unwrap_or(Priority::Debug)
    }

    /// The RFC 5424 code of the syslog facility (checked by validation; `auth` otherwise).
    pub fn facility_code(&self) -> u8 {
        SYSLOG_FACILITIES
            .iter()
            .position(|name| *name == self.facility)
            .and_then(|code| u8::try_from(code).ok())
            .unwrap_or(4)
    }

    fn validate(&self, label: &str) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_TARGET_NAME
            && self
                .name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(format!(
                "{label}: name {:?} must be 1-{MAX_TARGET_NAME} letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        crate::ids::TenantId::new(self.tenant.clone())
            .map_err(|error| format!("{label}: {error}"))?;
        Priority::from_falco_name(&self.min_priority)
            .map_err(|error| format!("{label}: min_priority: {error}"))?;
        self.validate_endpoint(label)?;
        if let Some(secret_file) = &self.secret_file
            && !secret_file.is_absolute()
        {
            return Err(format!(
                "{label}: secret_file {} is not an absolute path",
                secret_file.display()
            ));
        }
        if self.timeout_seconds == 0 || self.connect_timeout_seconds == 0 {
            return Err(format!(
                "{label}: timeout_seconds and connect_timeout_seconds must be at least 1"
            ));
        }
        if self.max_attempts == 0 {
            return Err(format!("{label}: max_attempts must be at least 1"));
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return Err(format!(
                "{label}: backoff_initial_ms must be at least 1 and at most backoff_max_ms"
            ));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(format!(
                "{label}: batch_size must be between 1 and {MAX_BATCH_SIZE}"
            ));
        }
        if self.max_dead_letters == 0 {
            return Err(format!("{label}: max_dead_letters must be at least 1"));
        }
        Ok(())
    }

    fn validate_endpoint(&self, label: &str) -> Result<(), String> {
        let kind = self.kind.name();
        match self.kind {
            NotifyKind::Webhook | NotifyKind::Slack | NotifyKind::SplunkHec => {
                let Some(url) = &self.url else {
                    return Err(format!("{label}: a {kind} target needs url"));
                };
                let scheme_ok = ["http://", "https://"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len());
                if !scheme_ok {
                    return Err(format!(
                        "{label}: url {url:?} must be an http:// or https:// URL"
                    ));
                }
                if self.address.is_some() {
                    return Err(format!(
                        "{label}: address is for syslog targets; a {kind} target takes url"
                    ));
                }
            }
            NotifyKind::Syslog => {
                let Some(address) = &self.address else {
                    return Err(format!(
                        "{label}: a syslog target needs address (host:port)"
                    ));
                };
                let port_ok = address
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !port_ok {
                    return Err(format!("{label}: address {address:?} must be host:port"));
                }
                if self.url.is_some() {
                    return Err(format!(
                        "{label}: url is not for syslog targets; give address (host:port)"
                    ));
                }
                if !SYSLOG_FACILITIES.contains(&self.facility.as_str()) {
                    return Err(format!(
                        "{label}: facility {:?} is not one of {}",
                        self.facility,
                        SYSLOG_FACILITIES.join(", ")
                    ));
                }
            }
        }
        let needs_secret = matches!(self.kind, NotifyKind::Webhook | NotifyKind::SplunkHec);
        match (&self.secret_file, needs_secret) {
            (None, true) => Err(format!(
                "{label}: a {kind} target needs secret_file ({})",
                if self.kind == NotifyKind::Webhook {
                    "the HMAC signing key"
                } else {
                    "the HEC token"
                }
            )),
            (Some(_), false) => Err(format!(
                "{label}: a {kind} target takes no secret_file{}",
                if self.kind == NotifyKind::Slack {
                    " (the webhook URL is its secret)"
                } else {
                    ""
                }
            )),
            _ => Ok(()),
        }
    }
}

impl NotifyConfig {
    /// Checks every target; errors name the target by its place in the file.
    pub(super) fn validate(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        for (index, target) in self.targets.iter().enumerate() {
            let label = format!("notify.targets[{index}]");
            target.validate(&label)?;
            if !names.insert(target.name.as_str()) {
                return Err(format!(
                    "{label}: another target is already named {:?}",
                    target.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn targets_of_every_kind_parse_with_their_defaults() {
        let config = Config::from_toml(
            r#"
            [[notify.targets]]
            name = "soc-webhook"
            tenant = "acme"
            kind = "webhook"
            url = "https://soc.example.com/hooks/palisade"
            secret_file = "/etc/palisade/webhook.key"
            min_priority = "Warning"
            tags = ["T1059", "container"]

            [[notify.targets]]
            name = "slack"
            kind = "slack"
            url = "https://hooks.slack.com/services/T0/B0/x"
            rules = ["Terminal shell in container"]

            [[notify.targets]]
            name = "siem"
            kind = "syslog"
            address = "siem.example.com:6514"
            transport = "udp"
            facility = "local4"

            [[notify.targets]]
            name = "splunk"
            kind = "splunk_hec"
            url = "https://splunk.example.com:8088"
            secret_file = "/etc/palisade/hec.token"
            batch_size = 500
            "#,
        )
        .expect("valid targets");
        let targets = &config.notify.targets;
        assert_eq!(targets.len(), 4);
        assert_eq!(targets[0].tenant, "acme");
        assert_eq!(targets[0].min_priority(), Priority::Warning);
        assert_eq!(targets[1].tenant, "default");
        assert_eq!(targets[1].min_priority(), Priority::Debug);
        assert_eq!(targets[2].transport, SyslogTransport::Udp);
        assert_eq!(targets[2].facility_code(), 20);
        assert_eq!(targets[3].kind, NotifyKind::SplunkHec);
        assert_eq!(targets[3].batch_size, 500);
        assert_eq!(targets[3].max_attempts, 8);
        assert!(!targets[3].replay_history);
    }

    #[test]
    fn bad_targets_are_refused_with_their_place_and_reason() {
        let cases = [
            (
                "name = \"a b\"\nkind = \"syslog\"\naddress = \"h:1\"",
                "name \"a b\"",
            ),
            (
                "name = \"w\"\nkind = \"webhook\"\nsecret_file = \"/k\"",
                "needs url",
            ),
            (
                "name = \"w\"\nkind = \"webhook\"\nurl = \"ftp://x\"\nsecret_file = \"/k\"",
                "http:// or https://",
            ),
            (
                "name = \"w\"\nkind = \"webhook\"\nurl = \"https://x\"",
                "HMAC signing key",
            ),
            (
                "name = \"s\"\nkind = \"splunk_hec\"\nurl = \"https://x\"\nsecret_file = \"k\"",
                "not an absolute path",
            ),
            (
                "name = \"s\"\nkind = \"slack\"\nurl = \"https://x\"\nsecret_file = \"/k\"",
                "webhook URL is its secret",
            ),
            (
                "name = \"l\"\nkind = \"syslog\"\naddress = \"nohost\"",
                "host:port",
            ),
            (
                "name = \"l\"\nkind = \"syslog\"\naddress = \"h:514\"\nfacility = \"local9\"",
                "facility \"local9\"",
            ),
            (
                "name = \"l\"\nkind = \"syslog\"\naddress = \"h:514\"\nmin_priority = \"Severe\"",
                "min_priority",
            ),
            (
                "name = \"l\"\nkind = \"syslog\"\naddress = \"h:514\"\ntenant = \"Acme\"",
                "tenant id",
            ),
            (
                "name = \"l\"\nkind = \"syslog\"\naddress = \"h:514\"\nmax_attempts = 0",
                "max_attempts",
            ),
            (
                "name = \"l\"\nkind = \"syslog\"\naddress = \"h:514\"\nbackoff_initial_ms = 5000\nbackoff_max_ms = 10",
                "backoff_initial_ms",
            ),
            ("name = \"l\"\nkind = \"pager\"", "unknown variant"),
            (
                "name = \"l\"\nkind = \"syslog\"\naddress = \"h:514\"\nsecret = \"x\"",
                "unknown field",
            ),
        ];
        for (body, expected) in cases {
            let text = format!("[[notify.targets]]\n{body}");
            let error = Config::from_toml(&text).expect_err(body);
            assert!(error.contains(expected), "{body}: {error}");
            if !expected.starts_with("unknown") {
                assert!(error.contains("notify.targets[0]"), "{body}: {error}");
            }
        }
    }

    #[test]
    fn target_names_are_unique() {
        let text = "[[notify.targets]]\nname = \"x\"\nkind = \"syslog\"\naddress = \"h:1\"\n\
                    [[notify.targets]]\nname = \"x\"\nkind = \"syslog\"\naddress = \"h:2\"";
        let error = Config::from_toml(text).expect_err("same name twice");
        assert!(
            error.contains("notify.targets[1]") && error.contains("already named"),
            "{error}"
        );
    }

    #[test]
    fn a_target_built_in_code_has_the_file_defaults() {
        let text = "[[notify.targets]]\nname = \"x\"\nkind = \"syslog\"\naddress = \"h:1\"";
        let parsed = Config::from_toml(text).expect("valid");
        let mut built = NotifyTarget::new("x", "default", NotifyKind::Syslog);
        built.address = Some("h:1".into());
        assert_eq!(parsed.notify.targets[0], built);
    }
}
