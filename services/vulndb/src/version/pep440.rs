//! PEP 440 versions (Python packages), parsed and ordered as `packaging.version.Version` does:
//! normalisation of spellings (`alpha`→`a`, `c`/`pre`/`preview`→`rc`, `rev`/`r`/`-N`→post,
//! separators, case, a leading `v`), trailing zeros ignored, `.devN < aN < bN < rcN < final <
//! .postN`, local versions after the public one.

use std::cmp::Ordering;

use super::dpkg::compare_numeric_str;

/// A parsed PEP 440 version; numbers are kept as digit strings so they never overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep440Version {
    epoch: String,
    release: Vec<String>,
    pre: Option<(PreKind, String)>,
    post: Option<String>,
    dev: Option<String>,
    local: Vec<String>,
}

/// Pre-release kinds in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PreKind {
    Alpha,
    Beta,
    ReleaseCandidate,
}

struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.position..]
    }

    fn digits(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let length = rest.bytes().take_while(u8::is_ascii_digit).count();
        if length == 0 {
            return None;
        }
        self.position += length;
        Some(&rest[..length])
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.rest().starts_with(literal) {
            self.position += literal.len();
            return true;
        }
        false
    }

    fn eat_separator(&mut self) -> bool {
        self.eat("-") || self.eat("_") || self.eat(".")
    }

    /// Tries `parse` and rewinds when it fails, like an optional regex group.
    fn optional<T>(&mut self, parse: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let saved = self.position;
        let parsed = parse(self);
        if parsed.is_none() {
            self.position = saved;
        }
        parsed
    }
}

fn normalize_number(digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Why a string is not a PEP 440 version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPep440(pub String);

impl Pep440Version {
    /// Parses a version; fails on what `packaging` rejects.
    pub fn parse(input: &str) -> Result<Self, InvalidPep440> {
        let lowered = input.trim().to_ascii_lowercase();
        let mut cursor = Cursor {
            text: &lowered,
            position: 0,
        };
        cursor.eat("v");
        let epoch = cursor
            .optional(|cursor| {
                let digits = cursor.digits()?;
                cursor.eat("!").then_some(digits)
            })
            .map_or_else(|| "0".to_owned(), normalize_number);
        let mut release = Vec::new();
        let Some(first) = cursor.digits() else {
            return Err(InvalidPep440(input.to_owned()));
        };
        release.push(normalize_number(first));
        while let Some(part) = cursor.optional(|cursor| {
            cursor.eat(".").then_some(())?;
            cursor.digits()
        }) {
            release.push(normalize_number(part));
        }
        let pre = cursor.optional(|cursor| {
            cursor.eat_separator();
            let kind = if cursor.eat("alpha") || cursor.eat("a") {
                PreKind::Alpha
            } else if cursor.eat("beta") || cursor.eat("b") {
                PreKind::Beta
            } else if cursor.eat("preview")
                || cursor.eat("pre")
                || cursor.eat("rc")
                || cursor.eat("c")
            {
                PreKind::ReleaseCandidate
            } else {
                return None;
            };
            let number = cursor.optional(|cursor| {
                cursor.eat_separator();
                cursor.digits()
            });
            Some((
                kind,
                number.map_or_else(|| "0".to_owned(), normalize_number),
            ))
        });
        let post = cursor
            .optional(|cursor| {
                cursor.eat("-").then_some(())?;
                cursor.digits().map(normalize_number)
            })
            .or_else(|| {
                cursor.optional(|cursor| {
                    cursor.eat_separator();
                    if !(cursor.eat("post") || cursor.eat("rev") || cursor.eat("r")) {
                        return None;
                    }
                    let number = cursor.optional(|cursor| {
                        cursor.eat_separator();
                        cursor.digits()
                    });
                    Some(number.map_or_else(|| "0".to_owned(), normalize_number))
                })
            });
        let dev = cursor.optional(|cursor| {
            cursor.eat_separator();
            cursor.eat("dev").then_some(())?;
            let number = cursor.optional(|cursor| {
                cursor.eat_separator();
                cursor.digits()
            });
            Some(number.map_or_else(|| "0".to_owned(), normalize_number))
        });
        let mut local = Vec::new();
        if cursor.eat("+") {
            let text = cursor.rest();
            for part in text.split(['-', '_', '.']) {
                if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
                    return Err(InvalidPep440(input.to_owned()));
                }
                local.push(part.to_owned());
            }
            cursor.position = cursor.text.len();
        }
        if !cursor.rest().is_empty() {
            return Err(InvalidPep440(input.to_owned()));
        }
        while release.len() > 1 && release.last().is_some_and(|part| part == "0") {
            release.pop();
        }
        Ok(Pep440Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// Whether this is a pre-release or a development release.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }
}

/// Orders optional components with "absent" placed below or above every present value.
fn compare_optional(
    left: Option<&String>,
    right: Option<&String>,
    absent_is_greatest: bool,
) -> Ordering {
    match (left, right) {
        (None, None) => Ordering::Equal,
        (Some(left), Some(right)) => compare_numeric_str(left, right),
        (None, Some(_)) => {
            if absent_is_greatest {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(_), None) => {
            if absent_is_greatest {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
    }
}

fn compare_release(left: &[String], right: &[String]) -> Ordering {
    let length = left.len().max(right.len());
    for index in 0..length {
        let left_part = left.get(index).map_or("0", String::as_str);
        let right_part = right.get(index).map_or("0", String::as_str);
        let ordering = compare_numeric_str(left_part, right_part);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// `packaging` ranks a dev release of a final version (`1.0.dev0`) below its pre-releases.
fn pre_key(version: &Pep440Version) -> (u8, Option<(PreKind, &str)>) {
    match (&version.pre, &version.post, &version.dev) {
        (None, None, Some(_)) => (0, None),
        (None, _, _) => (2, None),
        (Some((kind, number)), _, _) => (1, Some((*kind, number.as_str()))),
    }
}

fn compare_local(left: &[String], right: &[String]) -> Ordering {
    for (left_part, right_part) in left.iter().zip(right.iter()) {
        let left_numeric = left_part.bytes().all(|byte| byte.is_ascii_digit());
        let right_numeric = right_part.bytes().all(|byte| byte.is_ascii_digit());
        let ordering = match (left_numeric, right_numeric) {
            (true, true) => compare_numeric_str(left_part, right_part),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => left_part.cmp(right_part),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    left.len().cmp(&right.len())
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_numeric_str(&self.epoch, &other.epoch)
            .then_with(|| compare_release(&self.release, &other.release))
            .then_with(|| {
                let (left_rank, left_pre) = pre_key(self);
                let (right_rank, right_pre) = pre_key(other);
                left_rank
                    .cmp(&right_rank)
                    .then_with(|| match (left_pre, right_pre) {
                        (Some((left_kind, left_number)), Some((right_kind, right_number))) => {
                            left_kind
                                .cmp(&right_kind)
                                .then_with(|| compare_numeric_str(left_number, right_number))
                        }
                        _ => Ordering::Equal,
                    })
            })
            .then_with(|| compare_optional(self.post.as_ref(), other.post.as_ref(), false))
            .then_with(|| compare_optional(self.dev.as_ref(), other.dev.as_ref(), true))
            .then_with(|| compare_local(&self.local, &other.local))
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two PEP 440 versions; strings `packaging` rejects sort after valid ones, by text.
pub fn compare(left: &str, right: &str) -> Ordering {
    match (Pep440Version::parse(left), Pep440Version::parse(right)) {
        (Ok(left_version), Ok(right_version)) => left_version.cmp(&right_version),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => left.cmp(right),
    }
}
