//! Compiled conditions and their evaluation. Field values are extracted at most once per event
//! (a per-event cache indexed by slot) and literals are converted when the rule is compiled.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use crate::condition::{Operator, Transformer};
use crate::fields::{FieldSource, FieldSpec, Value, ValueType};
use rustc_hash::FxBuildHasher;

/// A field (with its transformers) that conditions or outputs read; identical references
/// share one slot so each is extracted once per event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The resolved field.
    pub spec: FieldSpec,
    /// Transformers, innermost first.
    pub transformers: Vec<Transformer>,
    /// The field as written, for outputs and explanations.
    pub display: String,
}

impl Slot {
    /// Whether the slot yields possibly many values after transformers.
    pub fn is_list(&self) -> bool {
        self.spec.is_list && !self.transformers.contains(&Transformer::Len)
    }

    /// Value type after transformers.
    pub fn value_type(&self) -> ValueType {
        match self.transformers.last() {
            Some(Transformer::Len) => ValueType::Int,
            Some(_) => ValueType::String,
            None => self.spec.value_type,
        }
    }
}

/// An IP network literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpNetwork {
    /// Network address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl IpNetwork {
    /// Parses `10.0.0.0/8`, `::1/128` or a plain address.
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().ok()?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { address, prefix })
    }

    /// Whether `candidate` lies in the network.
    pub fn contains(&self, candidate: &IpAddr) -> bool {
        match (self.address, candidate) {
            (IpAddr::V4(network), IpAddr::V4(candidate)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(network) & mask == u32::from(*candidate) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(candidate)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(network) & mask == u128::from(*candidate) & mask
            }
            _ => false,
        }
    }
}

/// A set of strings; small sets scan, large sets hash.
#[derive(Debug, Clone)]
pub enum StringSet {
    /// Up to a dozen entries.
    Small(Vec<String>),
    /// More entries, hashed with FxHash: the set is built once from the rules and only looked
    /// up with event values, which can at worst land in a probe sequence of a fixed table, so
    /// SipHash's protection of tables that grow from untrusted input buys nothing here.
    Large(HashSet<String, FxBuildHasher>),
}

impl StringSet {
    /// Builds the set representation fitting the size.
    pub fn new(items: Vec<String>) -> Self {
        if items.len() <= 12 {
            Self::Small(items)
        } else {
            Self::Large(items.into_iter().collect())
        }
    }

    /// Membership.
    pub fn contains(&self, candidate: &str) -> bool {
        match self {
            Self::Small(items) => items.iter().any(|item| item == candidate),
            Self::Large(items) => items.contains(candidate),
        }
    }

    /// The entries.
    pub fn items(&self) -> Vec<&str> {
        match self {
            Self::Small(items) => items.iter().map(String::as_str).collect(),
            Self::Large(items) => items.iter().map(String::as_str).collect(),
        }
    }
}

/// What a check compares extracted values against, converted at compile time.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// `exists`
    Exists,
    /// `=` on text.
    StrEq(String),
    /// `!=` on text.
    StrNe(String),
    /// `contains`
    Contains(String),
    /// `icontains` (the needle is lower-cased).
    IContains(String),
    /// `startswith`
    StartsWith(String),
    /// `endswith`
    EndsWith(String),
    /// `bcontains`
    BContains(Vec<u8>),
    /// `bstartswith`
    BStartsWith(Vec<u8>),
    /// `glob` / `iglob`
    Glob(glob::Pattern, bool),
    /// `regex` (anchored at both ends)
    Regex(regex::Regex),
    /// `in` on text: every value of a list field, or the value, in the set.
    StrIn(StringSet),
    /// `intersects` on text: some value in the set.
    StrIntersects(StringSet),
    /// `pmatch`: some value under one of the paths.
    Pmatch(Vec<String>),
    /// Numeric comparison; text values are parsed.
    IntCmp(Operator, i64),
    /// `in` / `intersects` on numbers.
    IntIn(Vec<i64>, bool),
    /// `=` / `!=` on booleans.
    BoolEq(bool, bool),
    /// `=` / `!=` against an address or network.
    IpEq(IpNetwork, bool),
    /// `in` / `intersects` on addresses and networks.
    IpIn(Vec<IpNetwork>, bool),
    /// Comparison with another field's values (`val(field)`).
    Field(Operator, usize),
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Node {
    /// Constant, from empty exceptions and folded literals.
    Const(bool),
    /// All children hold.
    And(Vec<Node>),
    /// Some child holds.
    Or(Vec<Node>),
    /// The child does not hold.
    Not(Box<Node>),
    /// A macro's expansion, kept for explanations.
    Macro(Box<str>, Box<Node>),
    /// A comparison.
    Check(Box<Check>),
}

/// A compiled comparison.
#[derive(Debug, Clone)]
pub struct Check {
    /// Slot of the compared field.
    pub slot: usize,
    /// The comparison.
    pub matcher: Matcher,
    /// Whether list semantics apply (all-in for `in`, any for the rest).
    pub list_field: bool,
    /// The check as written.
    pub text: Box<str>,
}

/// Per-event state: the value cache. A rule set has hundreds of slots (every output field,
/// every exception field) but an event touches a few dozen, so values live in a dense list
/// and the per-slot table holds only positions. The buffers come from an [`EvalScratch`] and go
/// back to it when the event is done, so a worker evaluating many events allocates once.
pub struct EvalContext<'engine, 'event, S: FieldSource> {
    source: &'engine S,
    slots: &'engine [Slot],
    event: &'event S::Event,
    /// For each slot, 1 + its position in `extracted`, or 0 when not extracted yet.
    positions: Vec<u32>,
    /// Values extracted so far, with their slot.
    extracted: Vec<(u32, Extracted<'event>)>,
    /// Reused for every extraction, so a single-valued field costs no allocation.
    scratch: Vec<Value<'event>>,
    /// Truth values of shared sub-conditions (see [`crate::program`]): 0 unknown, 1 false,
    /// 2 true.
    memo: Vec<u8>,
}

/// Buffers of [`EvalContext`] kept between events. Between two events every buffer is empty
/// or all zero, so a scratch can serve any rule set; one scratch per thread.
#[derive(Debug, Default)]
pub struct EvalScratch {
    positions: Vec<u32>,
    extracted: Vec<(u32, Extracted<'static>)>,
    values: Vec<Value<'static>>,
    memo: Vec<u8>,
    pub(crate) candidates: Vec<u64>,
}

impl EvalScratch {
    /// An empty scratch; buffers grow to the rule set's size on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The allocation of an emptied vector, retyped: values borrowed from one event never outlive
/// it, yet the buffer serves the next event. Collecting an empty `filter_map` over `into_iter`
/// reuses the allocation when both types have the same layout (they differ only in lifetime).
fn recycle<From, To>(mut buffer: Vec<From>) -> Vec<To> {
    buffer.clear();
    buffer.into_iter().filter_map(|_| None).collect()
}

/// The values of one slot: most fields yield one value, kept inline.
#[derive(Debug)]
enum Extracted<'event> {
    One(Value<'event>),
    Many(Vec<Value<'event>>),
}

impl<'event> Extracted<'event> {
    fn as_slice(&self) -> &[Value<'event>] {
        match self {
            Self::One(value) => std::slice::from_ref(value),
            Self::Many(values) => values,
        }
    }
}

fn decode_base64(text: &str) -> Option<String> {
    fn sextet(byte: u8) -> Option<u32> {
        Some(match byte {
            b'A'..=b'Z' => u32::from(byte - b'A'),
            b'a'..=b'z' => u32::from(byte - b'a') + 26,
            b'0'..=b'9' => u32::from(byte - b'0') + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    }
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let mut accumulator: u32 = 0;
    let mut bits = 0;
    for byte in text
        .bytes()
        .filter(|byte| *byte != b'=' && !byte.is_ascii_whitespace())
    {
        accumulator = (accumulator << 6) | sextet(byte)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push(u8::try_from((accumulator >> bits) & 0xff).ok()?);
        }
    }
    String::from_utf8(bytes).ok()
}

fn apply_transformer<'event>(
    transformer: Transformer,
    values: Vec<Value<'event>>,
    was_list: bool,
) -> Vec<Value<'event>> {
    match transformer {
        Transformer::Len => {
            if values.is_empty() {
                return values;
            }
            let length = if was_list {
                values.len()
            } else {
                values[0].render().len()
            };
            vec![Value::Int(i64::try_from(length).unwrap_or(i64::MAX))]
        }
        Transformer::ToLower => values
            .into_iter()
            .map(|value| Value::Str(Cow::Owned(value.render().to_lowercase())))
            .collect(),
        Transformer::ToUpper => values
            .into_iter()
            .map(|value| Value::Str(Cow::Owned(value.render().to_uppercase())))
            .collect(),
        Transformer::Basename => values
            .into_iter()
            .map(|value| {
                let rendered = value.render();
                let base = rendered.rsplit('/').next().unwrap_or_default().to_string();
                Value::Str(Cow::Owned(base))
            })
            .collect(),
        Transformer::Base64 => values
            .into_iter()
            .filter_map(|value| {
                decode_base64(&value.render()).map(|text| Value::Str(Cow::Owned(text)))
            })
            .collect(),
    }
}

impl<'engine, 'event, S: FieldSource> EvalContext<'engine, 'event, S> {
    /// A fresh context for one event.
    pub fn new(source: &'engine S, slots: &'engine [Slot], event: &'event S::Event) -> Self {
        Self::with_scratch(source, slots, event, 0, &mut EvalScratch::default())
    }

    /// A context for one event on the buffers of `scratch`, with `memo_cells` memo cells for
    /// shared sub-conditions. Give the buffers back with [`Self::recycle`].
    pub fn with_scratch(
        source: &'engine S,
        slots: &'engine [Slot],
        event: &'event S::Event,
        memo_cells: usize,
        scratch: &mut EvalScratch,
    ) -> Self {
        let mut positions = std::mem::take(&mut scratch.positions);
        debug_assert!(positions.iter().all(|position| *position == 0));
        if positions.len() < slots.len() {
            positions.resize(slots.len(), 0);
        }
        let mut memo = std::mem::take(&mut scratch.memo);
        debug_assert!(memo.iter().all(|cell| *cell == 0));
        if memo.len() < memo_cells {
            memo.resize(memo_cells, 0);
        }
        Self {
            source,
            slots,
            event,
            positions,
            extracted: recycle(std::mem::take(&mut scratch.extracted)),
            scratch: recycle(std::mem::take(&mut scratch.values)),
            memo,
        }
    }

    /// Forgets the values and memo cells of the current event, keeping the buffers, and moves
    /// on to `event` (of the same lifetime: a batch of events shares one context). Only the
    /// positions the previous event set are cleared, not the whole table.
    pub fn reset(&mut self, event: &'event S::Event) {
        for (slot, _) in &self.extracted {
            if let Some(position) = self.positions.get_mut(*slot as usize) {
                *position = 0;
            }
        }
        self.extracted.clear();
        self.memo.fill(0);
        self.event = event;
    }

    /// Returns the buffers to `scratch`, emptied.
    pub fn recycle(mut self, scratch: &mut EvalScratch) {
        let event = self.event;
        self.reset(event);
        let Self {
            positions,
            extracted,
            scratch: values,
            memo,
            ..
        } = self;
        scratch.positions = positions;
        scratch.memo = memo;
        scratch.extracted = recycle(extracted);
        scratch.values = recycle(values);
    }

    /// The memoized truth value of shared sub-condition `cell`, if this event evaluated it.
    pub(crate) fn memoized(&self, cell: u32) -> Option<bool> {
        match self.memo[cell as usize] {
            0 => None,
            value => Some(value == 2),
        }
    }

    /// Records the truth value of shared sub-condition `cell` for this event.
    pub(crate) fn memoize(&mut self, cell: u32, value: bool) {
        self.memo[cell as usize] = 1 + u8::from(value);
    }

    /// The values of a slot, extracting them on first use.
    pub fn values(&mut self, slot: usize) -> &[Value<'event>] {
        let position = self.positions[slot] as usize;
        if position != 0 {
            return self.extracted[position - 1].1.as_slice();
        }
        let definition = &self.slots[slot];
        let mut values = std::mem::take(&mut self.scratch);
        values.clear();
        self.source
            .extract(&definition.spec, self.event, &mut values);
        let mut was_list = definition.spec.is_list;
        for transformer in &definition.transformers {
            values = apply_transformer(*transformer, values, was_list);
            if *transformer == Transformer::Len {
                was_list = false;
            }
        }
        let entry = if values.len() == 1
            && let Some(value) = values.pop()
        {
            self.scratch = values;
            Extracted::One(value)
        } else if values.is_empty() {
            self.scratch = values;
            Extracted::Many(Vec::new())
        } else {
            Extracted::Many(values)
        };
        // slot numbers and the number of extracted slots are far below u32::MAX
        self.extracted
            .push((u32::try_from(slot).unwrap_or(u32::MAX), entry));
        self.positions[slot] = u32::try_from(self.extracted.len()).unwrap_or(u32::MAX);
        self.extracted[self.extracted.len() - 1].1.as_slice()
    }

    /// The field of a slot as first written.
    pub fn slot_display(&self, slot: usize) -> &str {
        &self.slots[slot].display
    }

    /// Evaluates a compiled condition.
    pub fn eval(&mut self, node: &Node) -> bool {
        match node {
            Node::Const(value) => *value,
            Node::And(children) => children.iter().all(|child| self.eval(child)),
            Node::Or(children) => children.iter().any(|child| self.eval(child)),
            Node::Not(child) => !self.eval(child),
            Node::Macro(_, child) => self.eval(child),
            Node::Check(check) => self.eval_check(check),
        }
    }

    /// Evaluates one comparison.
    pub(crate) fn eval_check(&mut self, check: &Check) -> bool {
        if let Matcher::Field(operator, other_slot) = &check.matcher {
            let right: Vec<String> = self
                .values(*other_slot)
                .iter()
                .map(|value| value.render().into_owned())
                .collect();
            let left = self.values(check.slot);
            if left.is_empty() || right.is_empty() {
                return false;
            }
            return left.iter().any(|value| {
                let rendered = value.render();
                right
                    .iter()
                    .any(|other| compare_rendered(*operator, &rendered, other))
            });
        }
        let values = self.values(check.slot);
        if values.is_empty() {
            return false;
        }
        match &check.matcher {
            Matcher::Exists => true,
            Matcher::StrNe(expected) => values
                .iter()
                .all(|value| value.render() != expected.as_str()),
            Matcher::StrIn(_) | Matcher::IntIn(_, false) | Matcher::IpIn(_, false)
                if check.list_field =>
            {
                values
                    .iter()
                    .all(|value| matches_one(&check.matcher, value))
            }
            Matcher::BoolEq(_, false) | Matcher::IpEq(_, false) => values
                .iter()
                .all(|value| matches_one(&check.matcher, value)),
            matcher => values.iter().any(|value| matches_one(matcher, value)),
        }
    }
}

fn compare_rendered(operator: Operator, left: &str, right: &str) -> bool {
    match operator {
        Operator::Eq => left == right,
        Operator::Ne => left != right,
        Operator::Contains => left.contains(right),
        Operator::IContains => left.to_lowercase().contains(&right.to_lowercase()),
        Operator::StartsWith => left.starts_with(right),
        Operator::EndsWith => left.ends_with(right),
        Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
            match (left.parse::<i64>(), right.parse::<i64>()) {
                (Ok(left), Ok(right)) => compare_int(operator, left, right),
                _ => false,
            }
        }
        _ => false,
    }
}

fn compare_int(operator: Operator, left: i64, right: i64) -> bool {
    match operator {
        Operator::Eq => left == right,
        Operator::Ne => left != right,
        Operator::Lt => left < right,
        Operator::Le => left <= right,
        Operator::Gt => left > right,
        Operator::Ge => left >= right,
        _ => false,
    }
}

fn value_as_int(value: &Value<'_>) -> Option<i64> {
    match value {
        Value::Int(number) => Some(*number),
        Value::Str(text) => text.trim().parse().ok(),
        Value::Bool(flag) => Some(i64::from(*flag)),
        Value::Ip(_) => None,
    }
}

fn value_as_ip(value: &Value<'_>) -> Option<IpAddr> {
    match value {
        Value::Ip(address) => Some(*address),
        Value::Str(text) => text.parse().ok(),
        _ => None,
    }
}

fn path_under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

fn matches_one(matcher: &Matcher, value: &Value<'_>) -> bool {
    match matcher {
        Matcher::Exists => true,
        Matcher::StrEq(expected) => value.render() == expected.as_str(),
        Matcher::StrNe(expected) => value.render() != expected.as_str(),
        Matcher::Contains(needle) => value.render().contains(needle.as_str()),
        Matcher::IContains(needle) => value.render().to_lowercase().contains(needle.as_str()),
        Matcher::StartsWith(prefix) => value.render().starts_with(prefix.as_str()),
        Matcher::EndsWith(suffix) => value.render().ends_with(suffix.as_str()),
        Matcher::BContains(bytes) => {
            let rendered = value.render();
            !bytes.is_empty()
                && rendered
                    .as_bytes()
                    .windows(bytes.len())
                    .any(|window| window == bytes.as_slice())
        }
        Matcher::BStartsWith(bytes) => value.render().as_bytes().starts_with(bytes),
        Matcher::Glob(pattern, case_insensitive) => {
            let options = glob::MatchOptions {
                case_sensitive: !case_insensitive,
                require_literal_separator: false,
                require_literal_leading_dot: false,
            };
            pattern.matches_with(&value.render(), options)
        }
        Matcher::Regex(regex) => regex.is_match(&value.render()),
        Matcher::StrIn(set) | Matcher::StrIntersects(set) => set.contains(&value.render()),
        Matcher::Pmatch(prefixes) => {
            let rendered = value.render();
            prefixes.iter().any(|prefix| path_under(&rendered, prefix))
        }
        Matcher::IntCmp(operator, expected) => {
            value_as_int(value).is_some_and(|number| compare_int(*operator, number, *expected))
        }
        Matcher::IntIn(items, _) => {
            value_as_int(value).is_some_and(|number| items.contains(&number))
        }
        Matcher::BoolEq(expected, equal) => {
            let actual = match value {
                Value::Bool(flag) => Some(*flag),
                Value::Str(text) => text.parse::<bool>().ok(),
                Value::Int(number) => Some(*number != 0),
                Value::Ip(_) => None,
            };
            actual.is_some_and(|flag| (flag == *expected) == *equal)
        }
        Matcher::IpEq(network, equal) => {
            value_as_ip(value).is_some_and(|address| network.contains(&address) == *equal)
        }
        Matcher::IpIn(networks, _) => value_as_ip(value)
            .is_some_and(|address| networks.iter().any(|network| network.contains(&address))),
        Matcher::Field(..) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses() {
        let network = IpNetwork::parse("10.0.0.0/8").expect("cidr");
        assert!(network.contains(&"10.1.2.3".parse().expect("ip")));
        assert!(!network.contains(&"11.1.2.3".parse().expect("ip")));
        let host = IpNetwork::parse("::1").expect("v6");
        assert!(host.contains(&"::1".parse().expect("ip")));
        assert!(IpNetwork::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn path_prefixes_match_whole_components() {
        assert!(path_under("/etc/passwd", "/etc"));
        assert!(path_under("/etc", "/etc"));
        assert!(!path_under("/etcetera", "/etc"));
        assert!(path_under("/anything", "/"));
    }

    #[test]
    fn recycled_buffers_keep_their_allocation_across_lifetimes() {
        let text = String::from("borrowed");
        let mut values: Vec<Value<'_>> = Vec::with_capacity(16);
        values.push(Value::Str(Cow::Borrowed(text.as_str())));
        let pointer = values.as_ptr() as usize;
        let kept: Vec<Value<'static>> = recycle(values);
        assert!(kept.is_empty());
        assert_eq!(kept.capacity(), 16);
        assert_eq!(kept.as_ptr() as usize, pointer);
    }

    #[test]
    fn base64_decodes_standard_and_url_alphabets() {
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Some("hello"));
        assert_eq!(decode_base64("aGVsbG8").as_deref(), Some("hello"));
        assert!(decode_base64("!!").is_none());
    }
}
