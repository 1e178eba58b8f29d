//! Maven versions ordered as maven-artifact's `ComparableVersion` (Maven 3.8.7): items split on
//! `.`, `-` and digit/letter transitions, a `-` opening a sub-list and a qualifier after a `.`
//! treated as if after a `-` (`1.0.RC2` is `1-rc-2`); qualifiers
//! `alpha < beta < milestone < rc < snapshot < "" (ga, final, release) < sp`, unknown
//! qualifiers after them by text; trailing null items dropped (`1.0 == 1`).

use std::cmp::Ordering;

use super::dpkg::compare_numeric_str;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Int(String),
    Text(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
/// Index of the release qualifier `""`, written as Maven writes it: a string.
const RELEASE_QUALIFIER: &str = "5";

fn text_item(value: &str, followed_by_digit: bool) -> Item {
    let expanded = match (followed_by_digit, value) {
        (true, "a") => "alpha",
        (true, "b") => "beta",
        (true, "m") => "milestone",
        (_, "ga" | "final" | "release") => "",
        (_, "cr") => "rc",
        (_, other) => other,
    };
    Item::Text(expanded.to_owned())
}

fn parse_item(is_digit: bool, text: &str) -> Item {
    if is_digit {
        let trimmed = text.trim_start_matches('0');
        Item::Int(if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        })
    } else {
        text_item(text, false)
    }
}

/// Qualifiers compare as strings: their index, or "7-<text>" for unknown ones.
fn comparable_qualifier(value: &str) -> String {
    match QUALIFIERS.iter().position(|qualifier| *qualifier == value) {
        Some(index) => index.to_string(),
        None => format!("{}-{value}", QUALIFIERS.len()),
    }
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Int(value) => value == "0",
        Item::Text(value) => value.is_empty(),
        Item::List(items) => items.is_empty(),
    }
}

fn normalize(items: &mut Vec<Item>) {
    for item in items.iter_mut() {
        if let Item::List(children) = item {
            normalize(children);
        }
    }
    // Maven walks back from the end removing null items, and walks past non-null sub-lists
    // too, so `1.0-1` becomes `1-1`; it stops at the first non-null plain item.
    let mut index = items.len();
    while index > 0 {
        index -= 1;
        if is_null(&items[index]) {
            items.remove(index);
        } else if !matches!(items[index], Item::List(_)) {
            break;
        }
    }
}

/// Parses into nested lists. Once a sub-list is opened nothing more is added to its parent, so
/// the open lists form a stack that is folded back into one tree at the end.
fn parse(version: &str) -> Vec<Item> {
    let lowered = version.trim().to_lowercase();
    let mut open_lists: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0usize;
    for (index, character) in lowered.char_indices() {
        let mut new_items = Vec::new();
        let mut opens_list = false;
        if character == '.' || character == '-' {
            new_items.push(if index == start {
                Item::Int("0".to_owned())
            } else {
                parse_item(is_digit, &lowered[start..index])
            });
            start = index + character.len_utf8();
            opens_list = character == '-';
        } else if character.is_ascii_digit() {
            if !is_digit && index > start {
                let innermost_is_empty = open_lists.last().is_none_or(Vec::is_empty);
                if !innermost_is_empty {
                    open_lists.push(Vec::new());
                }
                new_items.push(text_item(&lowered[start..index], true));
                start = index;
                opens_list = true;
            }
            is_digit = true;
        } else {
            if is_digit && index > start {
                new_items.push(parse_item(true, &lowered[start..index]));
                start = index;
                opens_list = true;
            }
            is_digit = false;
        }
        if let Some(innermost) = open_lists.last_mut() {
            innermost.extend(new_items);
        }
        if opens_list {
            open_lists.push(Vec::new());
        }
    }
    if lowered.len() > start {
        let innermost_is_empty = open_lists.last().is_none_or(Vec::is_empty);
        if !is_digit && !innermost_is_empty {
            open_lists.push(Vec::new());
        }
        if let Some(innermost) = open_lists.last_mut() {
            innermost.push(parse_item(is_digit, &lowered[start..]));
        }
    }
    let mut folded = open_lists.pop().unwrap_or_default();
    while let Some(mut parent) = open_lists.pop() {
        parent.push(Item::List(folded));
        folded = parent;
    }
    normalize(&mut folded);
    folded
}

fn compare_with_null(item: &Item) -> Ordering {
    match item {
        Item::Int(value) => {
            if value == "0" {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        Item::Text(value) => comparable_qualifier(value).as_str().cmp(RELEASE_QUALIFIER),
        Item::List(items) => items.first().map_or(Ordering::Equal, compare_with_null),
    }
}

fn compare_items(left: &Item, right: &Item) -> Ordering {
    match (left, right) {
        (Item::Int(left_value), Item::Int(right_value)) => {
            compare_numeric_str(left_value, right_value)
        }
        (Item::Int(_), _) => Ordering::Greater,
        (Item::Text(_), Item::Int(_)) => Ordering::Less,
        (Item::Text(left_value), Item::Text(right_value)) => {
            comparable_qualifier(left_value).cmp(&comparable_qualifier(right_value))
        }
        (Item::Text(_), Item::List(_)) => Ordering::Less,
        (Item::List(_), Item::Int(_)) => Ordering::Less,
        (Item::List(_), Item::Text(_)) => Ordering::Greater,
        (Item::List(left_items), Item::List(right_items)) => compare_lists(left_items, right_items),
    }
}

fn compare_lists(left: &[Item], right: &[Item]) -> Ordering {
    let length = left.len().max(right.len());
    for index in 0..length {
        let ordering = match (left.get(index), right.get(index)) {
            (Some(left_item), Some(right_item)) => compare_items(left_item, right_item),
            (Some(left_item), None) => compare_with_null(left_item),
            (None, Some(right_item)) => compare_with_null(right_item).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Compares two Maven versions.
pub fn compare(left: &str, right: &str) -> Ordering {
    compare_lists(&parse(left), &parse(right))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maven_qualifier_chain_is_ordered() {
        let chain = [
            "1-alpha2",
            "1-alpha123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ];
        for pair in chain.windows(2) {
            assert_eq!(
                compare(pair[0], pair[1]),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn maven_equivalent_spellings_are_equal() {
        for (left, right) in [
            ("1", "1.0.0"),
            ("1-ga", "1"),
            ("1-final", "1"),
            ("1.0-release", "1"),
            ("1a1", "1-alpha-1"),
            ("1cr", "1rc"),
        ] {
            assert_eq!(compare(left, right), Ordering::Equal, "{left} == {right}");
        }
        assert_eq!(compare("1.0.RC2", "1.0-RC3"), Ordering::Less);
        assert_eq!(compare("1.0-RC3", "1.0.1"), Ordering::Less);
        assert_eq!(compare("2.15.0", "2.15.0-rc1"), Ordering::Greater);
        assert_eq!(compare("2.12.2", "2.4"), Ordering::Greater);
    }
}
