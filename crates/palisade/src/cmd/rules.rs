//! `palisade rules check|test`.

use std::process::ExitCode;

use palisade_audit::{AuditRulesTestArgs, K8sAuditSource, rules_test};
use palisade_rules::check::CheckFormat;
use palisade_rules::{CheckArgs, FieldSchema, check};

use crate::cli::{CheckFormatArg, RulesCommand};

pub fn run(command: RulesCommand) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match command {
        RulesCommand::Check(args) => {
            let check_args = CheckArgs {
                files: args.files,
                format: match args.format {
                    CheckFormatArg::Text => CheckFormat::Text,
                    CheckFormatArg::Json => CheckFormat::Json,
                },
                warn_unused: args.warn_unused,
            };
            let schemas: [&dyn FieldSchema; 1] = [&K8sAuditSource];
            let (_, status) = check(&check_args, &schemas, &mut stdout)?;
            Ok(exit_code(status.code()))
        }
        RulesCommand::Test(args) => {
            let test_args = AuditRulesTestArgs {
                rules: args.rules,
                events: args.events,
                explain_rule: args.explain,
                show_output: args.show_output,
            };
            let (_, status) = rules_test(&test_args, &mut stdout)?;
            Ok(exit_code(status.code()))
        }
    }
}

pub(crate) fn exit_code(code: i32) -> ExitCode {
    if code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
