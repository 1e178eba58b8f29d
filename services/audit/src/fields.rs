//! The `k8s_audit` field source: the `ka.*` fields of Falco's k8saudit plugin, the json
//! plugin's `jevt.*` fields and the generic `evt.*` time fields, extracted from [`AuditEvent`].
//!
//! Values follow the plugin: strings as they are, other JSON values as compact JSON text,
//! absent members yield nothing. Where Palisade differs it is noted on the field.

use std::borrow::Cow;
use std::sync::OnceLock;

use palisade_rules::fields::{
    ArgRule, FieldArg, FieldError, FieldInfo, FieldSchema, FieldSource, FieldSpec, Value,
    ValueType, check_argument,
};
use serde_json::Value as Json;

use crate::event::AuditEvent;

/// Name of the event source.
pub const SOURCE_NAME: &str = "k8s_audit";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Containers {
    Regular,
    Init,
    Ephemeral,
}

impl Containers {
    fn key(self) -> &'static str {
        match self {
            Self::Regular => "containers",
            Self::Init => "initContainers",
            Self::Ephemeral => "ephemeralContainers",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerAttr {
    Name,
    Image,
    Repository,
    Command,
    Args,
    Privileged,
    AllowPrivilegeEscalation,
    ReadOnlyFs,
    RunAsUser,
    EffRunAsUser,
    RunAsGroup,
    EffRunAsGroup,
    ProcMount,
    AddCapabilities,
    HostPort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extract {
    /// A member at a path of keys.
    Path(&'static [&'static str]),
    /// An array at a path of keys, one value per element.
    PathList(&'static [&'static str]),
    /// An annotation.
    Annotation(&'static str),
    UriParam,
    TargetPodName,
    SubjectsOfKind(&'static str),
    ServiceAccountNamespacedNames,
    HasName,
    Container(Containers, ContainerAttr),
    FirstContainerImage,
    FirstContainerRepository,
    AnyContainerPrivileged,
    RoleRuleMember(&'static str),
    ServicePorts,
    VolumeHostPaths,
    VolumeHostPathPrefix,
    FlexVolumeDrivers,
    VolumeTypes,
    SourceIps,
    FirstSourceIp,
    ExecCommand,
    ClusterName,
    JsonPointer,
    WholeObject,
    TimeNs,
    TimeClock,
    TimeIso8601,
    SourceName,
}

struct FieldDef {
    info: FieldInfo,
    extract: Extract,
}

fn def(
    name: &'static str,
    is_list: bool,
    arg: ArgRule,
    extract: Extract,
    description: &'static str,
) -> FieldDef {
    FieldDef {
        info: FieldInfo {
            name,
            value_type: ValueType::String,
            is_list,
            arg,
            description,
        },
        extract,
    }
}

fn container_fields(fields: &mut Vec<FieldDef>) {
    use ContainerAttr as A;
    let attributes: [(&str, A, &str); 15] = [
        ("name", A::Name, "names"),
        ("image", A::Image, "images"),
        (
            "image.repository",
            A::Repository,
            "image repositories (image without tag or digest)",
        ),
        (
            "command",
            A::Command,
            "commands, one JSON array per container",
        ),
        ("args", A::Args, "arguments, one JSON array per container"),
        ("privileged", A::Privileged, "privileged flags"),
        (
            "allow_privilege_escalation",
            A::AllowPrivilegeEscalation,
            "allowPrivilegeEscalation flags",
        ),
        (
            "read_only_fs",
            A::ReadOnlyFs,
            "readOnlyRootFilesystem flags",
        ),
        ("run_as_user", A::RunAsUser, "runAsUser uids"),
        (
            "eff_run_as_user",
            A::EffRunAsUser,
            "effective uids (container, else pod, else 0)",
        ),
        ("run_as_group", A::RunAsGroup, "runAsGroup gids"),
        (
            "eff_run_as_group",
            A::EffRunAsGroup,
            "effective gids (container, else pod, else 0)",
        ),
        ("proc_mount", A::ProcMount, "procMount types"),
        (
            "add_capabilities",
            A::AddCapabilities,
            "added capabilities, one value per capability",
        ),
        (
            "host_port",
            A::HostPort,
            "hostPort values (containerPort when no hostPort)",
        ),
    ];
    for (kind, prefix) in [
        (Containers::Regular, "ka.req.pod.containers."),
        (Containers::Init, "ka.req.pod.initContainers."),
        (Containers::Ephemeral, "ka.req.pod.ephemeralContainers."),
    ] {
        for (suffix, attribute, description) in attributes {
            let name: &'static str = Box::leak(format!("{prefix}{suffix}").into_boxed_str());
            let description: &'static str = Box::leak(
                format!(
                    "When the request object is a pod, the {} {description}.",
                    kind.key()
                )
                .into_boxed_str(),
            );
            fields.push(def(
                name,
                true,
                ArgRule::Optional,
                Extract::Container(kind, attribute),
                description,
            ));
        }
    }
}

fn field_table() -> &'static [FieldDef] {
    static TABLE: OnceLock<Vec<FieldDef>> = OnceLock::new();
    TABLE.get_or_init(|| {
        use ArgRule::{None as NoArg, Optional, Required};
        use Extract as E;
        let mut fields = vec![
            def("ka.auditid", false, NoArg, E::Path(&["auditID"]), "The unique id of the audit event"),
            def("ka.stage", false, NoArg, E::Path(&["stage"]), "Stage of the request (RequestReceived, ResponseComplete ...)"),
            def("ka.auth.decision", false, NoArg, E::Annotation("authorization.k8s.io/decision"), "The authorization decision"),
            def("ka.auth.reason", false, NoArg, E::Annotation("authorization.k8s.io/reason"), "The authorization reason"),
            def("ka.auth.openshift.decision", false, NoArg, E::Annotation("authentication.openshift.io/decision"), "The OpenShift authentication decision"),
            def("ka.auth.openshift.username", false, NoArg, E::Annotation("authentication.openshift.io/username"), "The OpenShift authenticated user name"),
            def("ka.validations.admission.policy.failure", false, NoArg, E::Annotation("validation.policy.admission.k8s.io/validation_failure"), "The ValidatingAdmissionPolicy failure"),
            def("ka.security.pod.violations", false, NoArg, E::Annotation("pod-security.kubernetes.io/audit-violations"), "The pod security violations"),
            def("ka.user.name", false, NoArg, E::Path(&["user", "username"]), "The user name performing the request"),
            def("ka.user.groups", true, NoArg, E::PathList(&["user", "groups"]), "The groups of the user"),
            def("ka.impuser.name", false, NoArg, E::Path(&["impersonatedUser", "username"]), "The impersonated user name"),
            def("ka.verb", false, NoArg, E::Path(&["verb"]), "The action being performed"),
            def("ka.uri", false, NoArg, E::Path(&["requestURI"]), "The request URI"),
            def("ka.uri.param", false, Required, E::UriParam, "A query parameter of the request URI (ka.uri.param[command])"),
            def("ka.target.name", false, NoArg, E::Path(&["objectRef", "name"]), "The target object name"),
            def("ka.target.namespace", false, NoArg, E::Path(&["objectRef", "namespace"]), "The target object namespace"),
            def("ka.target.resource", false, NoArg, E::Path(&["objectRef", "resource"]), "The target object resource"),
            def("ka.target.subresource", false, NoArg, E::Path(&["objectRef", "subresource"]), "The target object subresource"),
            def("ka.target.pod.name", false, NoArg, E::TargetPodName, "The target pod name"),
            def("ka.req.binding.subjects", true, NoArg, E::PathList(&["requestObject", "subjects"]), "The subjects of a binding"),
            def("ka.req.binding.subjects.user_names", true, NoArg, E::SubjectsOfKind("User"), "The user names bound"),
            def("ka.req.binding.subjects.serviceaccount_names", true, NoArg, E::SubjectsOfKind("ServiceAccount"), "The service account names bound"),
            def("ka.req.binding.subjects.serviceaccount_ns_names", true, NoArg, E::ServiceAccountNamespacedNames, "The service accounts bound, as namespace:name"),
            def("ka.req.binding.subjects.group_names", true, NoArg, E::SubjectsOfKind("Group"), "The group names bound"),
            def("ka.req.binding.role", false, NoArg, E::Path(&["requestObject", "roleRef", "name"]), "The role a binding refers to"),
            def("ka.req.binding.subject.has_name", false, Required, E::HasName, "Deprecated; always true, kept for old rules"),
            def("ka.req.configmap.name", false, NoArg, E::Path(&["objectRef", "name"]), "The configmap name"),
            def("ka.req.configmap.obj", false, NoArg, E::Path(&["requestObject", "data"]), "The configmap data as JSON"),
            def("ka.req.container.image", false, NoArg, E::FirstContainerImage, "Deprecated: the image of the first container"),
            def("ka.req.container.image.repository", false, NoArg, E::FirstContainerRepository, "Deprecated: the repository of the first container"),
            def("ka.req.pod.host_ipc", false, NoArg, E::Path(&["requestObject", "spec", "hostIPC"]), "The hostIPC flag of a pod"),
            def("ka.req.pod.host_network", false, NoArg, E::Path(&["requestObject", "spec", "hostNetwork"]), "The hostNetwork flag of a pod"),
            def("ka.req.container.host_network", false, NoArg, E::Path(&["requestObject", "spec", "hostNetwork"]), "Deprecated alias of ka.req.pod.host_network"),
            def("ka.req.pod.host_pid", false, NoArg, E::Path(&["requestObject", "spec", "hostPID"]), "The hostPID flag of a pod"),
            def("ka.req.container.privileged", false, NoArg, E::AnyContainerPrivileged, "Deprecated: true if any container is privileged"),
            def("ka.req.pod.run_as_user", false, NoArg, E::Path(&["requestObject", "spec", "securityContext", "runAsUser"]), "The pod's runAsUser"),
            def("ka.req.pod.run_as_group", false, NoArg, E::Path(&["requestObject", "spec", "securityContext", "runAsGroup"]), "The pod's runAsGroup"),
            def("ka.req.pod.fs_group", false, NoArg, E::Path(&["requestObject", "spec", "securityContext", "fsGroup"]), "The pod's fsGroup"),
            def("ka.req.pod.supplemental_groups", true, NoArg, E::PathList(&["requestObject", "spec", "securityContext", "supplementalGroups"]), "The pod's supplementalGroups"),
            def("ka.req.role.rules", true, NoArg, E::PathList(&["requestObject", "rules"]), "The rules of a role"),
            def("ka.req.role.rules.apiGroups", true, Optional, E::RoleRuleMember("apiGroups"), "The api groups of a role's rules"),
            def("ka.req.role.rules.nonResourceURLs", true, Optional, E::RoleRuleMember("nonResourceURLs"), "The non-resource URLs of a role's rules"),
            def("ka.req.role.rules.verbs", true, Optional, E::RoleRuleMember("verbs"), "The verbs of a role's rules"),
            def("ka.req.role.rules.resources", true, Optional, E::RoleRuleMember("resources"), "The resources of a role's rules"),
            def("ka.req.service.type", false, NoArg, E::Path(&["requestObject", "spec", "type"]), "The type of a service"),
            def("ka.req.service.ports", true, Optional, E::ServicePorts, "The ports of a service, as JSON"),
            def("ka.req.pod.volumes.hostpath", true, Optional, E::VolumeHostPaths, "The hostPath paths of a pod's volumes"),
            def("ka.req.volume.hostpath", false, Required, E::VolumeHostPathPrefix, "Deprecated: true if a hostPath volume uses the path (prefix with a trailing *)"),
            def("ka.req.pod.volumes.flexvolume_driver", true, Optional, E::FlexVolumeDrivers, "The flexVolume drivers of a pod's volumes"),
            def("ka.req.pod.volumes.volume_type", true, Optional, E::VolumeTypes, "The volume types of a pod's volumes"),
            def("ka.resp.name", false, NoArg, E::Path(&["responseObject", "metadata", "name"]), "The response object name"),
            def("ka.response.code", false, NoArg, E::Path(&["responseStatus", "code"]), "The response code"),
            def("ka.response.reason", false, NoArg, E::Path(&["responseStatus", "reason"]), "The response reason"),
            def("ka.useragent", false, NoArg, E::Path(&["userAgent"]), "The user agent of the client"),
            def("ka.sourceips", true, Optional, E::SourceIps, "The client's IP addresses"),
            def("ka.cluster.name", false, NoArg, E::ClusterName, "The cluster name, when the envelope carries it"),
            def("ka.exec.command", true, Optional, E::ExecCommand, "Palisade: the command of an exec request, from the URI's command parameters or the request object"),
            def("jevt.value", false, Required, E::JsonPointer, "The value at a JSON pointer (jevt.value[/objectRef/name])"),
            def("jevt.obj", false, NoArg, E::WholeObject, "The whole event as JSON"),
            def("jevt.time", false, NoArg, E::TimeClock, "The event time as HH:MM:SS.nnnnnnnnn"),
            def("jevt.time.iso8601", false, NoArg, E::TimeIso8601, "The event time in ISO 8601"),
            def("evt.time.iso8601", false, NoArg, E::TimeIso8601, "The event time in ISO 8601"),
            def("evt.source", false, NoArg, E::SourceName, "The event source, k8s_audit"),
        ];
        for (name, description) in [
            ("jevt.rawtime", "The event time in nanoseconds since the epoch"),
            ("evt.time", "The event time in nanoseconds since the epoch"),
            ("evt.rawtime", "The event time in nanoseconds since the epoch"),
        ] {
            fields.push(FieldDef {
                info: FieldInfo {
                    name,
                    value_type: ValueType::Int,
                    is_list: false,
                    arg: NoArg,
                    description,
                },
                extract: E::TimeNs,
            });
        }
        fields.push(FieldDef {
            info: FieldInfo {
                name: "ka.sourceip",
                value_type: ValueType::Ip,
                is_list: false,
                arg: NoArg,
                description: "Palisade: the first client IP address, as an address (absent when it does not parse)",
            },
            extract: E::FirstSourceIp,
        });
        container_fields(&mut fields);
        fields
    })
}

fn field_id(name: &str) -> Option<u32> {
    field_table()
        .iter()
        .position(|field| field.info.name == name)
        .and_then(|position| u32::try_from(position).ok())
}

/// JSON pointers that read the same member as a dedicated field; resolving them to that field
/// lets rules written either way share extraction and the rule index.
const POINTER_ALIASES: &[(&str, &str)] = &[
    ("/stage", "ka.stage"),
    ("/verb", "ka.verb"),
    ("/auditID", "ka.auditid"),
    ("/requestURI", "ka.uri"),
    ("/userAgent", "ka.useragent"),
    ("/user/username", "ka.user.name"),
    ("/objectRef/resource", "ka.target.resource"),
    ("/objectRef/subresource", "ka.target.subresource"),
    ("/objectRef/namespace", "ka.target.namespace"),
    ("/objectRef/name", "ka.target.name"),
];

/// The `k8s_audit` field source.
#[derive(Debug, Clone, Copy, Default)]
pub struct K8sAuditSource;

impl FieldSchema for K8sAuditSource {
    fn source_name(&self) -> &str {
        SOURCE_NAME
    }

    fn resolve(&self, name: &str, arg: Option<&str>) -> Result<FieldSpec, FieldError> {
        if name == "jevt.value"
            && let Some(pointer) = arg
        {
            if !pointer.starts_with('/') {
                return Err(FieldError::BadArgument(format!(
                    "{pointer:?} is not a JSON pointer (it must start with '/')"
                )));
            }
            if let Some((_, alias)) = POINTER_ALIASES.iter().find(|(path, _)| *path == pointer) {
                return self.resolve(alias, None);
            }
        }
        let id = field_id(name).ok_or(FieldError::Unknown)?;
        let info = &field_table()[id as usize].info;
        let arg = check_argument(info.arg, arg)?;
        if info.is_list
            && info.arg == ArgRule::Optional
            && let FieldArg::Key(key) = &arg
        {
            return Err(FieldError::BadArgument(format!("{key:?} is not an index")));
        }
        Ok(FieldSpec {
            id,
            arg,
            value_type: info.value_type,
            is_list: info.is_list,
        })
    }

    fn index_fields(&self) -> &[&'static str] {
        &["ka.stage", "ka.verb", "ka.target.resource"]
    }

    fn fields(&self) -> Vec<FieldInfo> {
        field_table()
            .iter()
            .map(|field| field.info.clone())
            .collect()
    }
}

fn at<'event>(root: &'event Json, path: &[&str]) -> Option<&'event Json> {
    let mut value = root;
    for key in path {
        value = value.get(key)?;
    }
    Some(value)
}

/// A JSON value as the plugin renders it: strings raw, anything else as compact JSON.
fn render<'event>(value: &'event Json) -> Option<Value<'event>> {
    match value {
        Json::Null => None,
        Json::String(text) => Some(Value::Str(Cow::Borrowed(text))),
        other => Some(Value::Str(Cow::Owned(other.to_string()))),
    }
}

fn index_of(arg: &FieldArg) -> Option<usize> {
    match arg {
        FieldArg::Index(index) => Some(*index),
        _ => None,
    }
}

/// Elements of an array, all or only the one at `index`.
fn selected(array: Option<&Json>, index: Option<usize>) -> impl Iterator<Item = &Json> {
    let items: &[Json] = array
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (start, end) = match index {
        Some(index) if index < items.len() => (index, index + 1),
        Some(_) => (0, 0),
        None => (0, items.len()),
    };
    items[start..end].iter()
}

fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A tag follows the last ':' only when it comes after the last '/', so registry ports stay.
    match (without_digest.rfind(':'), without_digest.rfind('/')) {
        (Some(colon), Some(slash)) if colon > slash => &without_digest[..colon],
        (Some(colon), None) => &without_digest[..colon],
        _ => without_digest,
    }
}

fn format_time(time_ns: i64, iso: bool) -> String {
    let seconds = time_ns.div_euclid(1_000_000_000);
    let nanos = u32::try_from(time_ns.rem_euclid(1_000_000_000)).unwrap_or(0);
    match chrono::DateTime::from_timestamp(seconds, nanos) {
        Some(time) if iso => time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        Some(time) => time.format("%H:%M:%S%.9f").to_string(),
        None => time_ns.to_string(),
    }
}

fn extract_container<'event>(
    event: &'event AuditEvent,
    kind: Containers,
    attribute: ContainerAttr,
    index: Option<usize>,
    values: &mut Vec<Value<'event>>,
) {
    let Some(spec) = at(&event.object, &["requestObject", "spec"]) else {
        return;
    };
    let containers = spec.get(kind.key());
    for container in selected(containers, index) {
        let security = container.get("securityContext");
        let security_member = |key: &str| security.and_then(|context| context.get(key));
        match attribute {
            ContainerAttr::Name => values.extend(container.get("name").and_then(render)),
            ContainerAttr::Image => values.extend(container.get("image").and_then(render)),
            ContainerAttr::Repository => {
                if let Some(image) = container.get("image").and_then(Json::as_str) {
                    values.push(Value::Str(Cow::Borrowed(image_repository(image))));
                }
            }
            ContainerAttr::Command => values.extend(container.get("command").and_then(render)),
            ContainerAttr::Args => values.extend(container.get("args").and_then(render)),
            ContainerAttr::Privileged => {
                values.extend(security_member("privileged").and_then(render))
            }
            ContainerAttr::AllowPrivilegeEscalation => {
                values.extend(security_member("allowPrivilegeEscalation").and_then(render))
            }
            ContainerAttr::ReadOnlyFs => {
                values.extend(security_member("readOnlyRootFilesystem").and_then(render))
            }
            ContainerAttr::RunAsUser => {
                values.extend(security_member("runAsUser").and_then(render))
            }
            ContainerAttr::RunAsGroup => {
                values.extend(security_member("runAsGroup").and_then(render))
            }
            ContainerAttr::ProcMount => {
                values.extend(security_member("procMount").and_then(render))
            }
            ContainerAttr::EffRunAsUser | ContainerAttr::EffRunAsGroup => {
                let key = if attribute == ContainerAttr::EffRunAsUser {
                    "runAsUser"
                } else {
                    "runAsGroup"
                };
                let effective = security_member(key)
                    .and_then(render)
                    .or_else(|| {
                        spec.get("securityContext")
                            .and_then(|pod| pod.get(key))
                            .and_then(render)
                    })
                    .unwrap_or(Value::Str(Cow::Borrowed("0")));
                values.push(effective);
            }
            ContainerAttr::AddCapabilities => {
                let added = security_member("capabilities")
                    .and_then(|capabilities| capabilities.get("add"));
                values.extend(selected(added, None).filter_map(render));
            }
            ContainerAttr::HostPort => {
                for port in selected(container.get("ports"), None) {
                    values.extend(
                        port.get("hostPort")
                            .or_else(|| port.get("containerPort"))
                            .and_then(render),
                    );
                }
            }
        }
    }
}

impl FieldSource for K8sAuditSource {
    type Event = AuditEvent;

    fn extract<'event>(
        &self,
        field: &FieldSpec,
        event: &'event AuditEvent,
        values: &mut Vec<Value<'event>>,
    ) {
        let Some(definition) = field_table().get(field.id as usize) else {
            return;
        };
        let root = &event.object;
        let index = index_of(&field.arg);
        match definition.extract {
            Extract::Path(path) => values.extend(at(root, path).and_then(render)),
            Extract::PathList(path) => {
                values.extend(selected(at(root, path), index).filter_map(render))
            }
            Extract::Annotation(key) => values.extend(
                root.get("annotations")
                    .and_then(|annotations| annotations.get(key))
                    .and_then(render),
            ),
            Extract::UriParam => {
                let FieldArg::Key(wanted) = &field.arg else {
                    return;
                };
                let Some(uri) = root.get("requestURI").and_then(Json::as_str) else {
                    return;
                };
                let Some((_, query)) = uri.split_once('?') else {
                    return;
                };
                if let Some((_, value)) =
                    form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == wanted.as_str())
                {
                    values.push(Value::Str(Cow::Owned(value.into_owned())));
                }
            }
            Extract::TargetPodName => {
                if at(root, &["objectRef", "resource"]).and_then(Json::as_str) == Some("pods") {
                    values.extend(at(root, &["objectRef", "name"]).and_then(render));
                }
            }
            Extract::SubjectsOfKind(kind) => {
                for subject in selected(at(root, &["requestObject", "subjects"]), None) {
                    if subject.get("kind").and_then(Json::as_str) == Some(kind) {
                        values.extend(subject.get("name").and_then(render));
                    }
                }
            }
            Extract::ServiceAccountNamespacedNames => {
                for subject in selected(at(root, &["requestObject", "subjects"]), None) {
                    if subject.get("kind").and_then(Json::as_str) == Some("ServiceAccount") {
                        let namespace = subject
                            .get("namespace")
                            .and_then(Json::as_str)
                            .unwrap_or_default();
                        let name = subject
                            .get("name")
                            .and_then(Json::as_str)
                            .unwrap_or_default();
                        values.push(Value::Str(Cow::Owned(format!("{namespace}:{name}"))));
                    }
                }
            }
            Extract::HasName => values.push(Value::Str(Cow::Borrowed("true"))),
            Extract::Container(kind, attribute) => {
                extract_container(event, kind, attribute, index, values)
            }
            Extract::FirstContainerImage => extract_container(
                event,
                Containers::Regular,
                ContainerAttr::Image,
                Some(0),
                values,
            ),
            Extract::FirstContainerRepository => extract_container(
                event,
                Containers::Regular,
                ContainerAttr::Repository,
                Some(0),
                values,
            ),
            Extract::AnyContainerPrivileged => {
                let Some(containers) = at(root, &["requestObject", "spec", "containers"]) else {
                    return;
                };
                let privileged = selected(Some(containers), None).any(|container| {
                    at(container, &["securityContext", "privileged"]).and_then(Json::as_bool)
                        == Some(true)
                });
                values.push(Value::Str(Cow::Borrowed(if privileged {
                    "true"
                } else {
                    "false"
                })));
            }
            Extract::RoleRuleMember(member) => {
                for rule in selected(at(root, &["requestObject", "rules"]), index) {
                    values.extend(selected(rule.get(member), None).filter_map(render));
                }
            }
            Extract::ServicePorts => values.extend(
                selected(at(root, &["requestObject", "spec", "ports"]), index).filter_map(render),
            ),
            Extract::VolumeHostPaths => {
                for volume in selected(at(root, &["requestObject", "spec", "volumes"]), index) {
                    values.extend(at(volume, &["hostPath", "path"]).and_then(render));
                }
            }
            Extract::VolumeHostPathPrefix => {
                let FieldArg::Key(wanted) = &field.arg else {
                    return;
                };
                let Some(volumes) = at(root, &["requestObject", "spec", "volumes"]) else {
                    return;
                };
                let (prefix, is_prefix) = match wanted.strip_suffix('*') {
                    Some(prefix) => (prefix, true),
                    None => (wanted.as_str(), false),
                };
                let used = selected(Some(volumes), None).any(|volume| {
                    at(volume, &["hostPath", "path"])
                        .and_then(Json::as_str)
                        .is_some_and(|path| {
                            if is_prefix {
                                path.starts_with(prefix)
                            } else {
                                path == prefix
                            }
                        })
                });
                values.push(Value::Str(Cow::Borrowed(if used {
                    "true"
                } else {
                    "false"
                })));
            }
            Extract::FlexVolumeDrivers => {
                for volume in selected(at(root, &["requestObject", "spec", "volumes"]), index) {
                    values.extend(at(volume, &["flexVolume", "driver"]).and_then(render));
                }
            }
            Extract::VolumeTypes => {
                for volume in selected(at(root, &["requestObject", "spec", "volumes"]), index) {
                    if let Some(object) = volume.as_object() {
                        values.extend(
                            object
                                .keys()
                                .filter(|key| key.as_str() != "name")
                                .map(|key| Value::Str(Cow::Borrowed(key.as_str()))),
                        );
                    }
                }
            }
            Extract::SourceIps => {
                values.extend(selected(root.get("sourceIPs"), index).filter_map(render))
            }
            Extract::FirstSourceIp => {
                let first = selected(root.get("sourceIPs"), Some(0))
                    .next()
                    .and_then(Json::as_str);
                if let Some(address) =
                    first.and_then(|text| text.trim().parse::<std::net::IpAddr>().ok())
                {
                    values.push(Value::Ip(address));
                }
            }
            Extract::ExecCommand => {
                let mut command: Vec<Value<'event>> = Vec::new();
                if let Some((_, query)) = root
                    .get("requestURI")
                    .and_then(Json::as_str)
                    .and_then(|uri| uri.split_once('?'))
                {
                    command.extend(
                        form_urlencoded::parse(query.as_bytes())
                            .filter(|(key, _)| key == "command")
                            .map(|(_, value)| Value::Str(Cow::Owned(value.into_owned()))),
                    );
                }
                if command.is_empty() {
                    command.extend(
                        selected(at(root, &["requestObject", "command"]), None).filter_map(render),
                    );
                }
                match index {
                    Some(position) => values.extend(command.into_iter().nth(position)),
                    None => values.extend(command),
                }
            }
            Extract::ClusterName => {
                if let Some(cluster) = &event.cluster {
                    values.push(Value::Str(Cow::Borrowed(cluster)));
                }
            }
            Extract::JsonPointer => {
                let FieldArg::Key(pointer) = &field.arg else {
                    return;
                };
                values.extend(root.pointer(pointer).and_then(render));
            }
            Extract::WholeObject => values.push(Value::Str(Cow::Owned(root.to_string()))),
            Extract::TimeNs => values.push(Value::Int(event.time_ns)),
            Extract::TimeClock => {
                values.push(Value::Str(Cow::Owned(format_time(event.time_ns, false))))
            }
            Extract::TimeIso8601 => {
                values.push(Value::Str(Cow::Owned(format_time(event.time_ns, true))))
            }
            Extract::SourceName => values.push(Value::Str(Cow::Borrowed(SOURCE_NAME))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Envelope;

    fn values_of(name: &str, arg: Option<&str>, event: &AuditEvent) -> Vec<String> {
        let spec = K8sAuditSource.resolve(name, arg).expect("field resolves");
        let mut values = Vec::new();
        K8sAuditSource.extract(&spec, event, &mut values);
        values
            .iter()
            .map(|value| value.render().into_owned())
            .collect()
    }

    #[test]
    fn pod_fields_follow_the_plugin() {
        let object = serde_json::json!({
            "kind": "Event", "auditID": "1", "verb": "create",
            "requestURI": "/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&container=c",
            "objectRef": {"resource": "pods", "name": "p"},
            "requestObject": {"spec": {
                "securityContext": {"runAsUser": 1000},
                "hostNetwork": true,
                "containers": [
                    {"name": "a", "image": "registry:5000/team/app:1.2@sha256:ab", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}}, "ports": [{"containerPort": 80}, {"hostPort": 8080, "containerPort": 80}]},
                    {"name": "b", "image": "nginx", "securityContext": {"runAsUser": 0}}
                ],
                "volumes": [{"name": "v", "hostPath": {"path": "/etc"}}, {"name": "w", "emptyDir": {}}]
            }}
        });
        let event = AuditEvent::from_object(object, Envelope::Raw, Some("prod".into()));
        assert_eq!(
            values_of("ka.req.pod.containers.image.repository", None, &event),
            ["registry:5000/team/app", "nginx"]
        );
        assert_eq!(
            values_of("ka.req.pod.containers.image", Some("1"), &event),
            ["nginx"]
        );
        assert_eq!(
            values_of("ka.req.pod.containers.privileged", None, &event),
            ["true"]
        );
        assert_eq!(
            values_of("ka.req.pod.containers.eff_run_as_user", None, &event),
            ["1000", "0"]
        );
        assert_eq!(
            values_of("ka.req.pod.containers.add_capabilities", None, &event),
            ["SYS_ADMIN", "NET_ADMIN"]
        );
        assert_eq!(
            values_of("ka.req.pod.containers.host_port", None, &event),
            ["80", "8080"]
        );
        assert_eq!(
            values_of("ka.req.pod.volumes.hostpath", None, &event),
            ["/etc"]
        );
        assert_eq!(
            values_of("ka.req.pod.volumes.volume_type", None, &event),
            ["hostPath", "emptyDir"]
        );
        assert_eq!(
            values_of("ka.req.volume.hostpath", Some("/e*"), &event),
            ["true"]
        );
        assert_eq!(values_of("ka.req.pod.host_network", None, &event), ["true"]);
        assert_eq!(
            values_of("ka.req.container.privileged", None, &event),
            ["true"]
        );
        assert_eq!(values_of("ka.uri.param", Some("command"), &event), ["sh"]);
        assert_eq!(values_of("ka.target.pod.name", None, &event), ["p"]);
        assert_eq!(values_of("ka.cluster.name", None, &event), ["prod"]);
        assert!(values_of("ka.req.pod.initContainers.image", None, &event).is_empty());
        assert_eq!(
            values_of(
                "jevt.value",
                Some("/requestObject/spec/hostNetwork"),
                &event
            ),
            ["true"]
        );
    }

    #[test]
    fn resolution_rejects_unknown_fields_and_bad_arguments() {
        assert_eq!(
            K8sAuditSource.resolve("ka.nope", None),
            Err(FieldError::Unknown)
        );
        assert_eq!(
            K8sAuditSource.resolve("ka.uri.param", None),
            Err(FieldError::ArgumentRequired)
        );
        assert_eq!(
            K8sAuditSource.resolve("ka.verb", Some("x")),
            Err(FieldError::ArgumentNotAllowed)
        );
        assert!(matches!(
            K8sAuditSource.resolve("jevt.value", Some("stage")),
            Err(FieldError::BadArgument(_))
        ));
        assert!(matches!(
            K8sAuditSource.resolve("ka.req.pod.containers.image", Some("x")),
            Err(FieldError::BadArgument(_))
        ));
        let alias = K8sAuditSource
            .resolve("jevt.value", Some("/stage"))
            .expect("alias");
        assert_eq!(
            alias,
            K8sAuditSource.resolve("ka.stage", None).expect("stage")
        );
        assert!(K8sAuditSource.fields().len() > 100);
    }
}
