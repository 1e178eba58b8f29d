//! Falco's syscall rules (stable, incubating, sandbox) must parse and compile unchanged given a
//! field table of the syscall source, and a table missing fields must yield located errors for
//! exactly the rules that use them while the rest still load.
//!
//! The table below is test data describing Falco's syscall fields by name and type; the node
//! agent provides the real syscall source.

use std::path::PathBuf;

use palisade_rules::fields::{
    ArgRule, FieldError, FieldInfo, FieldSchema, FieldSpec, TableSchema, ValueType,
    parse_index_or_key,
};
use palisade_rules::{CompileOptions, DiagnosticCode, RulesLoader, Severity, compile_rules};

struct SyscallTable {
    table: TableSchema,
    removed: Vec<&'static str>,
}

fn field(name: &'static str, value_type: ValueType, is_list: bool, arg: ArgRule) -> FieldInfo {
    FieldInfo {
        name,
        value_type,
        is_list,
        arg,
        description: "",
    }
}

impl SyscallTable {
    fn new(removed: Vec<&'static str>) -> Self {
        use ArgRule::{None as NoArg, Optional, Required};
        use ValueType::{Bool, Int, Ip, String as Text};
        let mut fields = vec![
            field("evt.type", Text, false, NoArg),
            field("evt.num", Int, false, NoArg),
            field("evt.res", Text, false, NoArg),
            field("evt.rawres", Int, false, NoArg),
            field("evt.args", Text, false, NoArg),
            field("evt.buffer", Text, false, NoArg),
            field("evt.dir", Text, false, NoArg),
            field("evt.is_open_read", Bool, false, NoArg),
            field("evt.is_open_write", Bool, false, NoArg),
            field("evt.is_open_exec", Bool, false, NoArg),
            field("evt.arg", Text, false, Required),
            field("evt.time", Int, false, NoArg),
            field("proc.pid", Int, false, NoArg),
            field("proc.ppid", Int, false, NoArg),
            field("proc.vpid", Int, false, NoArg),
            field("proc.tty", Int, false, NoArg),
            field("proc.duration", Int, false, NoArg),
            field("proc.ppid.duration", Int, false, NoArg),
            field("proc.exe_ino.ctime", Int, false, NoArg),
            field("proc.exe_ino.mtime", Int, false, NoArg),
            field("proc.exe_ino.ctime_duration_proc_start", Int, false, NoArg),
            field("proc.is_exe_upper_layer", Bool, false, NoArg),
            field("proc.is_exe_from_memfd", Bool, false, NoArg),
            field("proc.is_vpgid_leader", Bool, false, NoArg),
            field("proc.aname", Text, false, Optional),
            field("proc.aexe", Text, false, Optional),
            field("proc.aexepath", Text, false, Optional),
            field("fd.num", Int, false, NoArg),
            field("fd.cip", Ip, false, NoArg),
            field("fd.sip", Ip, false, NoArg),
            field("fd.rip", Ip, false, NoArg),
            field("fd.ip", Ip, false, NoArg),
            field("fd.cnet", Ip, false, NoArg),
            field("fd.snet", Ip, false, NoArg),
            field("fd.rnet", Ip, false, NoArg),
            field("fd.net", Ip, false, NoArg),
            field("fd.lport", Int, false, NoArg),
            field("fd.rport", Int, false, NoArg),
            field("fd.sport", Int, false, NoArg),
            field("fd.port", Int, false, NoArg),
            field("fd.connected", Bool, false, NoArg),
            field("fd.name_changed", Bool, false, NoArg),
            field("fd.types", Text, true, Optional),
            field("user.uid", Int, false, NoArg),
            field("user.loginuid", Int, false, NoArg),
            field("group.gid", Int, false, NoArg),
            field("container.privileged", Bool, false, NoArg),
            field("container.start_ts", Int, false, NoArg),
            field("container.mount.dest", Text, false, Required),
        ];
        for name in [
            "proc.name",
            "proc.exe",
            "proc.exepath",
            "proc.cmdline",
            "proc.args",
            "proc.cwd",
            "proc.pname",
            "proc.pexe",
            "proc.pexepath",
            "proc.pcmdline",
            "proc.sname",
            "proc.env",
            "proc.vpgid.name",
            "proc.vpgid.exe",
            "fd.name",
            "fd.nameraw",
            "fd.directory",
            "fd.filename",
            "fd.type",
            "fd.typechar",
            "fd.l4proto",
            "fd.sockfamily",
            "fd.cip.name",
            "fd.lip.name",
            "fd.rip.name",
            "fd.sip.name",
            "user.name",
            "user.loginname",
            "group.name",
            "container.id",
            "container.name",
            "container.image.repository",
            "container.mounts",
            "k8s.ns.name",
            "k8s.pod.name",
            "thread.cap_effective",
            "thread.cap_permitted",
        ] {
            fields.push(field(name, Text, false, NoArg));
        }
        fields.retain(|info| !removed.contains(&info.name));
        Self {
            table: TableSchema::new("syscall", fields, &["evt.type"]),
            removed,
        }
    }
}

impl FieldSchema for SyscallTable {
    fn source_name(&self) -> &str {
        "syscall"
    }

    fn resolve(&self, name: &str, arg: Option<&str>) -> Result<FieldSpec, FieldError> {
        // evt.arg.NAME is the named-argument form of evt.arg[NAME].
        if let Some(argument) = name.strip_prefix("evt.arg.") {
            if self.removed.contains(&"evt.arg") {
                return Err(FieldError::Unknown);
            }
            let mut spec = self.table.resolve("evt.arg", Some(argument))?;
            spec.arg = parse_index_or_key(Some(argument));
            return Ok(spec);
        }
        self.table.resolve(name, arg)
    }

    fn index_fields(&self) -> &[&'static str] {
        self.table.index_fields()
    }
}

fn syscall_rule_files() -> Vec<PathBuf> {
    [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|file| palisade_testkit::corpus_path(format!("runtime/falco-rules/{file}")))
    .collect()
}

fn count_rule_items(files: &[PathBuf]) -> usize {
    files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file)
                .expect("corpus file readable")
                .lines()
                .filter(|line| line.starts_with("- rule:"))
                .count()
        })
        .sum()
}

#[test]
fn falco_syscall_rules_compile_unchanged() -> anyhow::Result<()> {
    let files = syscall_rule_files();
    let mut loader = RulesLoader::new();
    for file in &files {
        loader.add_file(file)?;
    }
    let loaded = loader.finish();
    let schema = SyscallTable::new(Vec::new());
    let compiled = compile_rules(&loaded, &schema, CompileOptions::default());
    let errors: Vec<String> = compiled
        .diagnostics()
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "errors: {errors:#?}");
    let summary = compiled.summary();
    assert_eq!(
        summary.loaded + summary.disabled,
        count_rule_items(&files),
        "every rule of the three files compiles: {summary}"
    );
    assert_eq!(summary.skipped, 0);
    assert!(summary.loaded >= 25, "{summary}");
    Ok(())
}

#[test]
fn missing_fields_are_reported_per_rule_and_the_rest_loads() -> anyhow::Result<()> {
    let files = syscall_rule_files();
    let mut loader = RulesLoader::new();
    for file in &files {
        loader.add_file(file)?;
    }
    let loaded = loader.finish();
    let schema = SyscallTable::new(vec!["proc.aname", "fd.sip"]);
    let compiled = compile_rules(&loaded, &schema, CompileOptions::default());
    let unknown: Vec<_> = compiled
        .diagnostics()
        .iter()
        .filter(|diagnostic| diagnostic.code == DiagnosticCode::UnknownField)
        .collect();
    assert!(!unknown.is_empty());
    for diagnostic in &unknown {
        assert_eq!(diagnostic.severity, Severity::Error);
        assert!(
            diagnostic
                .item
                .as_deref()
                .is_some_and(|item| item.starts_with("rule "))
        );
        assert!(diagnostic.line > 0 && diagnostic.column > 0, "{diagnostic}");
        assert!(
            diagnostic.message.contains("proc.aname") || diagnostic.message.contains("fd.sip"),
            "{diagnostic}"
        );
        assert!(diagnostic.file.ends_with(".yaml"));
    }
    let summary = compiled.summary();
    let others: Vec<String> = compiled
        .diagnostics()
        .iter()
        .filter(|diagnostic| {
            diagnostic.severity == Severity::Error
                && diagnostic.code != DiagnosticCode::UnknownField
        })
        .map(ToString::to_string)
        .collect();
    assert!(others.is_empty(), "{others:#?}");
    assert_eq!(summary.skipped, unknown.len());
    assert_eq!(
        summary.loaded + summary.disabled + summary.skipped,
        count_rule_items(&files)
    );
    assert!(summary.loaded > 0);
    Ok(())
}
