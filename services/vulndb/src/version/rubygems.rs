//! RubyGems versions ordered as `Gem::Version#<=>`: a `-` means `.pre.`, segments are runs of
//! digits or letters, letters make a pre-release, trailing zeros of the numeric and of the
//! textual part are dropped.

use std::cmp::Ordering;

use super::dpkg::compare_numeric_str;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Number(String),
    Text(String),
}

fn segments(version: &str) -> Vec<Segment> {
    let replaced = version.trim().replace('-', ".pre.");
    let mut parsed = Vec::new();
    let mut current = String::new();
    let mut current_is_digit = false;
    let flush = |current: &mut String, is_digit: bool, parsed: &mut Vec<Segment>| {
        if current.is_empty() {
            return;
        }
        let taken = std::mem::take(current);
        parsed.push(if is_digit {
            let trimmed = taken.trim_start_matches('0');
            Segment::Number(if trimmed.is_empty() {
                "0".to_owned()
            } else {
                trimmed.to_owned()
            })
        } else {
            Segment::Text(taken)
        });
    };
    for character in replaced.chars() {
        let is_digit = character.is_ascii_digit();
        let is_letter = character.is_ascii_alphabetic();
        if !is_digit && !is_letter {
            flush(&mut current, current_is_digit, &mut parsed);
            continue;
        }
        if !current.is_empty() && is_digit != current_is_digit {
            flush(&mut current, current_is_digit, &mut parsed);
        }
        current_is_digit = is_digit;
        current.push(character);
    }
    flush(&mut current, current_is_digit, &mut parsed);
    canonical(parsed)
}

fn is_zero(segment: &Segment) -> bool {
    matches!(segment, Segment::Number(value) if value == "0")
}

fn canonical(parsed: Vec<Segment>) -> Vec<Segment> {
    let string_start = parsed
        .iter()
        .position(|segment| matches!(segment, Segment::Text(_)));
    let split_at = string_start.unwrap_or(parsed.len());
    let (numeric, textual) = parsed.split_at(split_at);
    let mut numeric_part = numeric.to_vec();
    while numeric_part.last().is_some_and(is_zero) {
        numeric_part.pop();
    }
    let mut textual_part = textual.to_vec();
    while textual_part.last().is_some_and(is_zero) {
        textual_part.pop();
    }
    numeric_part.extend(textual_part);
    numeric_part
}

/// Compares two gem versions.
pub fn compare(left: &str, right: &str) -> Ordering {
    let left_segments = segments(left);
    let right_segments = segments(right);
    let zero = Segment::Number("0".to_owned());
    let length = left_segments.len().max(right_segments.len());
    for index in 0..length {
        let left_segment = left_segments.get(index).unwrap_or(&zero);
        let right_segment = right_segments.get(index).unwrap_or(&zero);
        let ordering = match (left_segment, right_segment) {
            (Segment::Number(left_value), Segment::Number(right_value)) => {
                compare_numeric_str(left_value, right_value)
            }
            (Segment::Text(_), Segment::Number(_)) => Ordering::Less,
            (Segment::Number(_), Segment::Text(_)) => Ordering::Greater,
            (Segment::Text(left_value), Segment::Text(right_value)) => left_value.cmp(right_value),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gem_prereleases_sort_before_releases() {
        assert_eq!(compare("1.0.a", "1.0"), Ordering::Less);
        assert_eq!(compare("1.0.0.pre1", "1.0.0"), Ordering::Less);
        assert_eq!(compare("1.0-1", "1.0"), Ordering::Less);
        assert_eq!(compare("1.0", "1.0.0.0"), Ordering::Equal);
        assert_eq!(compare("1.10", "1.9"), Ordering::Greater);
        assert_eq!(compare("5.2.4.3", "5.2.4.rc1"), Ordering::Greater);
        assert_eq!(compare("1.0.b1", "1.0.a2"), Ordering::Greater);
    }
}
