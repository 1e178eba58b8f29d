//! A compiled rule set for one event source: rules compiled once, indexed by the values their
//! conditions require of the source's index fields, evaluated per event.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use palisade_proto::v1::Priority;

use crate::compile::Compiler;
use crate::condition::FieldRef;
use crate::error::{Diagnostic, DiagnosticCode, RulesError, Severity};
use crate::eval::{EvalContext, EvalScratch, Matcher, Node, Slot};
use crate::explain::explain_node;
use crate::fields::{FieldSchema, FieldSource};
use crate::items::Origin;
use crate::loader::{LoadedRules, RulesLoader};
use crate::optimize::optimize;
use crate::output::{OutputPart, OutputTemplate, RawPart, parse_template};
use crate::program::{NodeId, Program, ProgramBuilder};
use rustc_hash::FxBuildHasher;

/// Whether evaluation stops at the first matching rule (Falco's default) or reports all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchMode {
    /// Every matching rule fires.
    #[default]
    All,
    /// Only the first matching rule, in load order, fires.
    First,
}

/// Compilation options.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompileOptions {
    /// First or all matches.
    pub match_mode: MatchMode,
}

/// A rule compiled for evaluation.
#[derive(Debug)]
pub struct CompiledRule {
    /// Rule name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: Vec<String>,
    /// Event source.
    pub source: String,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Where it was defined.
    pub origin: Origin,
    condition: Node,
    /// `condition` in evaluation form (see [`crate::optimize`]); explanations use `condition`.
    evaluation: Node,
    output: OutputTemplate,
}

/// What became of a rule of the loaded files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStatus {
    /// Compiled and evaluated.
    Loaded,
    /// Compiled, but `enabled: false`.
    Disabled,
    /// Could not be compiled; the reason.
    Skipped(String),
    /// Belongs to another event source.
    OtherSource(String),
}

/// Counts of what a load produced for one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadSummary {
    /// Event source compiled.
    pub source: String,
    /// Files read.
    pub files: usize,
    /// Rules of this source compiled and enabled.
    pub loaded: usize,
    /// Rules of this source compiled but disabled.
    pub disabled: usize,
    /// Rules of this source that could not be compiled.
    pub skipped: usize,
    /// Rules of other sources, by source.
    pub other_sources: BTreeMap<String, usize>,
    /// Items (appends, overrides, malformed rules) that could not be applied.
    pub rejected_items: usize,
    /// Error diagnostics.
    pub errors: usize,
    /// Warning diagnostics.
    pub warnings: usize,
}

impl std::fmt::Display for LoadSummary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}: {} rules loaded, {} disabled, {} skipped; {} items rejected; {} errors, {} warnings; {} files",
            self.source,
            self.loaded,
            self.disabled,
            self.skipped,
            self.rejected_items,
            self.errors,
            self.warnings,
            self.files
        )?;
        if !self.other_sources.is_empty() {
            let others: Vec<String> = self
                .other_sources
                .iter()
                .map(|(source, count)| format!("{count} {source}"))
                .collect();
            write!(
                formatter,
                " (rules of other sources: {})",
                others.join(", ")
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Possible {
    Any,
    Set(BTreeSet<String>),
}

fn possible_values(node: &Node, slot: usize) -> Possible {
    match node {
        Node::Const(true) | Node::Not(_) => Possible::Any,
        Node::Const(false) => Possible::Set(BTreeSet::new()),
        Node::Macro(_, inner) => possible_values(inner, slot),
        Node::And(children) => children.iter().fold(Possible::Any, |acc, child| {
            match (acc, possible_values(child, slot)) {
                (Possible::Any, other) | (other, Possible::Any) => other,
                (Possible::Set(left), Possible::Set(right)) => {
                    Possible::Set(left.intersection(&right).cloned().collect())
                }
            }
        }),
        Node::Or(children) => children
            .iter()
            .fold(Possible::Set(BTreeSet::new()), |acc, child| {
                match (acc, possible_values(child, slot)) {
                    (Possible::Any, _) | (_, Possible::Any) => Possible::Any,
                    (Possible::Set(mut left), Possible::Set(right)) => {
                        left.extend(right);
                        Possible::Set(left)
                    }
                }
            }),
        Node::Check(check) if check.slot == slot && !check.list_field => match &check.matcher {
            Matcher::StrEq(value) => Possible::Set(BTreeSet::from([value.clone()])),
            Matcher::StrIn(set) => {
                Possible::Set(set.items().into_iter().map(str::to_string).collect())
            }
            _ => Possible::Any,
        },
        Node::Check(_) => Possible::Any,
    }
}

type Bits = Vec<u64>;

fn set_bit(bits: &mut Bits, index: usize) {
    bits[index / 64] |= 1 << (index % 64);
}

#[derive(Debug)]
struct Dimension {
    slot: usize,
    /// Built once from the rules, only looked up with event values (see `StringSet`).
    by_value: HashMap<String, Bits, FxBuildHasher>,
    any: Bits,
}

/// Candidate rules per event, from the index fields.
#[derive(Debug, Default)]
struct RuleIndex {
    dimensions: Vec<Dimension>,
    enabled: Bits,
}

impl RuleIndex {
    fn build(rules: &[Arc<CompiledRule>], dimension_slots: &[usize]) -> Self {
        let words = rules.len().div_ceil(64).max(1);
        let mut enabled = vec![0; words];
        for (index, rule) in rules.iter().enumerate() {
            if rule.enabled {
                set_bit(&mut enabled, index);
            }
        }
        let mut dimensions = Vec::new();
        for slot in dimension_slots {
            let mut dimension = Dimension {
                slot: *slot,
                by_value: HashMap::default(),
                any: vec![0; words],
            };
            for (index, rule) in rules.iter().enumerate() {
                match possible_values(&rule.condition, *slot) {
                    Possible::Any => set_bit(&mut dimension.any, index),
                    Possible::Set(values) => {
                        for value in values {
                            let bits = dimension
                                .by_value
                                .entry(value)
                                .or_insert_with(|| vec![0; words]);
                            set_bit(bits, index);
                        }
                    }
                }
            }
            let any = dimension.any.clone();
            for bits in dimension.by_value.values_mut() {
                for (word, any_word) in bits.iter_mut().zip(&any) {
                    *word |= any_word;
                }
            }
            dimensions.push(dimension);
        }
        Self {
            dimensions,
            enabled,
        }
    }

    /// Fills `bits` with the candidate rules of the context's event.
    fn candidates<S: FieldSource>(&self, context: &mut EvalContext<'_, '_, S>, bits: &mut Bits) {
        bits.clear();
        bits.extend_from_slice(&self.enabled);
        for dimension in &self.dimensions {
            let values = context.values(dimension.slot);
            let selected = match values.first() {
                Some(value) if values.len() == 1 => dimension
                    .by_value
                    .get(value.render().as_ref())
                    .unwrap_or(&dimension.any),
                _ => &dimension.any,
            };
            for (word, selected_word) in bits.iter_mut().zip(selected) {
                *word &= selected_word;
            }
        }
    }
}

fn set_indices(bits: &Bits) -> impl Iterator<Item = usize> + '_ {
    bits.iter().enumerate().flat_map(|(word_index, word)| {
        let mut remaining = *word;
        std::iter::from_fn(move || {
            if remaining == 0 {
                return None;
            }
            let bit = remaining.trailing_zeros() as usize;
            remaining &= remaining - 1;
            Some(word_index * 64 + bit)
        })
    })
}

/// Rules of one source compiled against its schema.
#[derive(Debug)]
pub struct CompiledRules {
    source: String,
    rules: Vec<Arc<CompiledRule>>,
    statuses: Vec<(String, RuleStatus)>,
    slots: Vec<Slot>,
    index: RuleIndex,
    /// Every rule's evaluation form, sub-conditions shared across rules.
    program: Program,
    /// Root of each rule in `program`, in rule order.
    roots: Vec<NodeId>,
    summary: LoadSummary,
    diagnostics: Vec<Diagnostic>,
    match_mode: MatchMode,
    used_macros: HashSet<String>,
    used_lists: HashSet<String>,
}

/// Compiles the rules of `schema`'s source out of `loaded`.
pub fn compile_rules(
    loaded: &LoadedRules,
    schema: &dyn FieldSchema,
    options: CompileOptions,
) -> CompiledRules {
    let source_name = schema.source_name().to_string();
    let mut compiler = Compiler::new(loaded, schema);
    let mut diagnostics = loaded.diagnostics.clone();
    let mut rules = Vec::new();
    let mut statuses = Vec::new();
    let mut summary = LoadSummary {
        source: source_name.clone(),
        files: loaded.files.len(),
        rejected_items: loaded.skipped_rule_items,
        ..LoadSummary::default()
    };
    for rule in &loaded.rules {
        let label = format!("rule {:?}", rule.name);
        if rule.source != source_name {
            *summary
                .other_sources
                .entry(rule.source.clone())
                .or_default() += 1;
            statuses.push((
                rule.name.clone(),
                RuleStatus::OtherSource(rule.source.clone()),
            ));
            continue;
        }
        let compiled = compiler.compile_condition(rule).and_then(|condition| {
            let output =
                compile_output(&mut compiler, &rule.output.value).map_err(|(code, message)| {
                    crate::compile::CompileError {
                        code,
                        message,
                        origin: rule.output.origin.clone(),
                    }
                })?;
            Ok((condition, output))
        });
        match compiled {
            Ok((condition, output)) => {
                statuses.push((
                    rule.name.clone(),
                    if rule.enabled {
                        RuleStatus::Loaded
                    } else {
                        RuleStatus::Disabled
                    },
                ));
                if rule.enabled {
                    summary.loaded += 1;
                } else {
                    summary.disabled += 1;
                }
                let evaluation = optimize(&condition, &compiler.slots);
                rules.push(Arc::new(CompiledRule {
                    name: rule.name.clone(),
                    description: rule.desc.clone(),
                    priority: rule.priority,
                    tags: rule.tags.clone(),
                    source: rule.source.clone(),
                    enabled: rule.enabled,
                    origin: rule.origin.clone(),
                    condition,
                    evaluation,
                    output,
                }));
            }
            Err(error) => {
                let quiet =
                    rule.skip_if_unknown_filter && error.code == DiagnosticCode::UnknownField;
                summary.skipped += 1;
                statuses.push((
                    rule.name.clone(),
                    RuleStatus::Skipped(error.message.clone()),
                ));
                diagnostics.push(Diagnostic::new(
                    if quiet {
                        Severity::Warning
                    } else {
                        Severity::Error
                    },
                    error.code,
                    &error.origin.file,
                    error.origin.position,
                    Some(label),
                    format!("{}; rule skipped", error.message),
                ));
            }
        }
    }
    let mut dimension_slots = Vec::new();
    for field_name in schema.index_fields() {
        let reference = FieldRef {
            name: (*field_name).to_string(),
            arg: None,
            transformers: Vec::new(),
            span: crate::condition::Span::default(),
        };
        if let Ok(slot) = compiler.slot_for(&reference)
            && !compiler.slots[slot].is_list()
        {
            dimension_slots.push(slot);
        }
    }
    let index = RuleIndex::build(&rules, &dimension_slots);
    let mut builder = ProgramBuilder::new();
    let roots = rules
        .iter()
        .map(|rule| builder.add_root(&rule.evaluation))
        .collect();
    let program = builder.finish();
    summary.errors = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .count();
    summary.warnings = diagnostics.len() - summary.errors;
    CompiledRules {
        source: source_name,
        rules,
        statuses,
        slots: compiler.slots,
        index,
        program,
        roots,
        summary,
        diagnostics,
        match_mode: options.match_mode,
        used_macros: compiler.used_macros,
        used_lists: compiler.used_lists,
    }
}

fn compile_output(
    compiler: &mut Compiler<'_>,
    template: &str,
) -> Result<OutputTemplate, (DiagnosticCode, String)> {
    let raw = parse_template(template).map_err(|(offset, message)| {
        (
            DiagnosticCode::BadOutput,
            format!("{message} (output offset {offset})"),
        )
    })?;
    let mut parts = Vec::with_capacity(raw.len());
    for part in raw {
        match part {
            RawPart::Text(text) => parts.push(OutputPart::Text(text)),
            RawPart::Field(field, _) => {
                let slot = compiler
                    .slot_for(&field)
                    .map_err(|(code, message)| (code, format!("in output: {message}")))?;
                parts.push(OutputPart::Field {
                    slot,
                    name: field.to_string(),
                });
            }
        }
    }
    Ok(OutputTemplate { parts })
}

impl CompiledRules {
    /// The source compiled.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Compiled rules, enabled or not, in load order.
    pub fn rules(&self) -> &[Arc<CompiledRule>] {
        &self.rules
    }

    /// What became of every rule of the loaded files.
    pub fn statuses(&self) -> &[(String, RuleStatus)] {
        &self.statuses
    }

    /// Counts.
    pub fn summary(&self) -> &LoadSummary {
        &self.summary
    }

    /// Load and compile problems, located.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Macros the compiled rules use.
    pub fn used_macros(&self) -> &HashSet<String> {
        &self.used_macros
    }

    /// Lists the compiled rules use.
    pub fn used_lists(&self) -> &HashSet<String> {
        &self.used_lists
    }

    /// The rules' conditions as one program of shared sub-conditions.
    pub fn program(&self) -> &Program {
        &self.program
    }
}

/// A rule that fired on an event, with its rendered output.
#[derive(Debug, Clone)]
pub struct Detection {
    /// The rule.
    pub rule: Arc<CompiledRule>,
    /// The rendered output template.
    pub output: String,
    /// Values of the template's fields, in template order.
    pub output_fields: Vec<(String, String)>,
}

/// Why a rule matched an event or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The rule.
    pub rule: String,
    /// Whether it matched.
    pub matched: bool,
    /// Indented reasons, outermost first.
    pub lines: Vec<String>,
}

/// Rules of one source bound to the source that extracts their fields.
pub struct RuleEngine<S: FieldSource> {
    source: Arc<S>,
    compiled: CompiledRules,
}

impl<S: FieldSource> std::fmt::Debug for RuleEngine<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RuleEngine")
            .field("summary", &self.compiled.summary)
            .finish()
    }
}

impl<S: FieldSource> RuleEngine<S> {
    /// Compiles `loaded` for `source`.
    pub fn new(source: Arc<S>, loaded: &LoadedRules, options: CompileOptions) -> Self {
        let compiled = compile_rules(loaded, source.as_ref(), options);
        Self { source, compiled }
    }

    /// Loads the files in order and compiles them for `source`.
    pub fn from_files(
        source: Arc<S>,
        files: &[PathBuf],
        options: CompileOptions,
    ) -> Result<Self, RulesError> {
        let mut loader = RulesLoader::new();
        for file in files {
            loader.add_file(file)?;
        }
        Ok(Self::new(source, &loader.finish(), options))
    }

    /// The compiled rules, summary and diagnostics.
    pub fn compiled(&self) -> &CompiledRules {
        &self.compiled
    }

    /// The field source.
    pub fn source(&self) -> &Arc<S> {
        &self.source
    }

    /// Rules that fire on `event`, with their outputs.
    pub fn detect(&self, event: &S::Event) -> Vec<Detection> {
        let mut detections = Vec::new();
        self.detect_with(event, &mut EvalScratch::new(), &mut detections);
        detections
    }

    /// A context for `event` on the buffers of `scratch`.
    fn context<'engine, 'event>(
        &'engine self,
        event: &'event S::Event,
        scratch: &mut EvalScratch,
    ) -> EvalContext<'engine, 'event, S> {
        EvalContext::with_scratch(
            self.source.as_ref(),
            &self.compiled.slots,
            event,
            self.compiled.program.memo_cells(),
            scratch,
        )
    }

    /// Appends the rules that fire on `event`, with their outputs, to `detections`. The
    /// buffers of `scratch` are reused from call to call; see [`Self::detect_batch`].
    pub fn detect_with(
        &self,
        event: &S::Event,
        scratch: &mut EvalScratch,
        detections: &mut Vec<Detection>,
    ) {
        let mut context = self.context(event, scratch);
        let mut candidates = std::mem::take(&mut scratch.candidates);
        self.detect_in(&mut context, &mut candidates, &mut |detection| {
            detections.push(detection)
        });
        scratch.candidates = candidates;
        context.recycle(scratch);
    }

    /// Appends the rules that fire on each of `events`, with the event's position, to
    /// `detections`. One evaluation context serves the whole batch on the buffers of
    /// `scratch` (one per worker thread), so evaluating an event allocates nothing unless a
    /// rule fires.
    pub fn detect_batch(
        &self,
        events: &[S::Event],
        scratch: &mut EvalScratch,
        detections: &mut Vec<(usize, Detection)>,
    ) {
        let Some(first) = events.first() else {
            return;
        };
        let mut context = self.context(first, scratch);
        let mut candidates = std::mem::take(&mut scratch.candidates);
        for (position, event) in events.iter().enumerate() {
            context.reset(event);
            self.detect_in(&mut context, &mut candidates, &mut |detection| {
                detections.push((position, detection))
            });
        }
        scratch.candidates = candidates;
        context.recycle(scratch);
    }

    /// Evaluates the candidate rules of the context's event.
    fn detect_in(
        &self,
        context: &mut EvalContext<'_, '_, S>,
        candidates: &mut Vec<u64>,
        fired: &mut dyn FnMut(Detection),
    ) {
        self.compiled.index.candidates(context, candidates);
        for index in set_indices(candidates) {
            let rule = &self.compiled.rules[index];
            if !self
                .compiled
                .program
                .eval(self.compiled.roots[index], context)
            {
                continue;
            }
            let (output, output_fields) = rule.output.render(context);
            fired(Detection {
                rule: rule.clone(),
                output,
                output_fields,
            });
            if self.compiled.match_mode == MatchMode::First {
                break;
            }
        }
    }

    /// Names of the rules that are candidates for `event` after indexing (for tests and tools).
    pub fn candidate_rules(&self, event: &S::Event) -> Vec<&str> {
        let mut context = EvalContext::new(self.source.as_ref(), &self.compiled.slots, event);
        let mut candidates = Vec::new();
        self.compiled
            .index
            .candidates(&mut context, &mut candidates);
        set_indices(&candidates)
            .map(|index| self.compiled.rules[index].name.as_str())
            .collect()
    }

    /// Whether each compiled rule's condition holds on `event`, in rule order, evaluated the
    /// way [`Self::detect_with`] does: through the shared program, one memo for all rules.
    /// Every rule is evaluated, disabled ones and those the index would skip included (for
    /// tests comparing it with [`Self::verdicts_independent`]).
    pub fn verdicts_shared(&self, event: &S::Event, scratch: &mut EvalScratch) -> Vec<bool> {
        let mut context = self.context(event, scratch);
        let verdicts = self
            .compiled
            .roots
            .iter()
            .map(|root| self.compiled.program.eval(*root, &mut context))
            .collect();
        context.recycle(scratch);
        verdicts
    }

    /// Whether each compiled rule's condition holds on `event`, in rule order, each rule's
    /// evaluation form walked alone on a fresh context: no sharing, no memo.
    pub fn verdicts_independent(&self, event: &S::Event) -> Vec<bool> {
        self.compiled
            .rules
            .iter()
            .map(|rule| {
                let mut context =
                    EvalContext::new(self.source.as_ref(), &self.compiled.slots, event);
                context.eval(&rule.evaluation)
            })
            .collect()
    }

    /// Explains the named rule against `event`; `None` when no compiled rule has that name.
    pub fn explain(&self, rule_name: &str, event: &S::Event) -> Option<Explanation> {
        let rule = self
            .compiled
            .rules
            .iter()
            .find(|rule| rule.name == rule_name)?;
        let mut context = EvalContext::new(self.source.as_ref(), &self.compiled.slots, event);
        let mut lines = Vec::new();
        if !rule.enabled {
            lines.push("  the rule is disabled (enabled: false)".to_string());
        }
        let matched = explain_node(&rule.condition, &mut context, 0, &mut lines);
        Some(Explanation {
            rule: rule.name.clone(),
            matched: matched && rule.enabled,
            lines,
        })
    }
}
