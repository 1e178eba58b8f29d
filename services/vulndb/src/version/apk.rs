//! Alpine package versions, ordered as apk-tools 3 orders them (src/version.c):
//! `digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}`.

use std::cmp::Ordering;

use super::dpkg::compare_numeric_str;

/// Token kinds in grammar order; the order itself is part of the comparison rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TokenKind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
    Invalid,
}

/// Suffix ranks: pre-release suffixes below `NONE_RANK`, post-release ones above.
const NONE_RANK: u8 = 5;

fn suffix_rank(word: &str) -> Option<u8> {
    match word {
        "alpha" => Some(1),
        "beta" => Some(2),
        "pre" => Some(3),
        "rc" => Some(4),
        "cvs" => Some(6),
        "svn" => Some(7),
        "git" => Some(8),
        "hg" => Some(9),
        "p" => Some(10),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: TokenKind,
    text: &'a str,
    suffix: u8,
}

struct Lexer<'a> {
    rest: &'a str,
    current: Token<'a>,
}

fn split_while(text: &str, predicate: impl Fn(u8) -> bool) -> (&str, &str) {
    let end = text
        .bytes()
        .position(|byte| !predicate(byte))
        .unwrap_or(text.len());
    text.split_at(end)
}

impl<'a> Lexer<'a> {
    fn new(version: &'a str) -> Self {
        let (digits, rest) = split_while(version, |byte| byte.is_ascii_digit());
        let kind = if digits.is_empty() {
            TokenKind::Invalid
        } else {
            TokenKind::InitialDigit
        };
        Lexer {
            rest,
            current: Token {
                kind,
                text: digits,
                suffix: 0,
            },
        }
    }

    fn invalid(&mut self) {
        self.current = Token {
            kind: TokenKind::Invalid,
            text: "",
            suffix: 0,
        };
    }

    fn advance(&mut self) {
        let previous = self.current.kind;
        let Some(&first) = self.rest.as_bytes().first() else {
            self.current = Token {
                kind: TokenKind::End,
                text: "",
                suffix: 0,
            };
            return;
        };
        match first {
            b'a'..=b'z' => {
                if previous > TokenKind::Digit {
                    return self.invalid();
                }
                let (letter, rest) = self.rest.split_at(1);
                self.rest = rest;
                self.current = Token {
                    kind: TokenKind::Letter,
                    text: letter,
                    suffix: 0,
                };
            }
            b'.' | b'0'..=b'9' => {
                if first == b'.' {
                    if previous > TokenKind::Digit {
                        return self.invalid();
                    }
                    self.rest = &self.rest[1..];
                }
                let kind = match previous {
                    TokenKind::InitialDigit | TokenKind::Digit => TokenKind::Digit,
                    TokenKind::Suffix => TokenKind::SuffixNumber,
                    _ => return self.invalid(),
                };
                let (digits, rest) = split_while(self.rest, |byte| byte.is_ascii_digit());
                self.rest = rest;
                if digits.is_empty() {
                    return self.invalid();
                }
                self.current = Token {
                    kind,
                    text: digits,
                    suffix: 0,
                };
            }
            b'_' => {
                if previous > TokenKind::SuffixNumber {
                    return self.invalid();
                }
                let (word, rest) = split_while(&self.rest[1..], |byte| byte.is_ascii_lowercase());
                self.rest = rest;
                let Some(rank) = suffix_rank(word) else {
                    return self.invalid();
                };
                self.current = Token {
                    kind: TokenKind::Suffix,
                    text: word,
                    suffix: rank,
                };
            }
            b'~' => {
                if previous >= TokenKind::CommitHash {
                    return self.invalid();
                }
                let (hash, rest) = split_while(&self.rest[1..], |byte| byte.is_ascii_hexdigit());
                self.rest = rest;
                if hash.is_empty() {
                    return self.invalid();
                }
                self.current = Token {
                    kind: TokenKind::CommitHash,
                    text: hash,
                    suffix: 0,
                };
            }
            b'-' => {
                if previous >= TokenKind::Revision || !self.rest.starts_with("-r") {
                    return self.invalid();
                }
                let (digits, rest) = split_while(&self.rest[2..], |byte| byte.is_ascii_digit());
                self.rest = rest;
                if digits.is_empty() {
                    return self.invalid();
                }
                self.current = Token {
                    kind: TokenKind::Revision,
                    text: digits,
                    suffix: 0,
                };
            }
            _ => self.invalid(),
        }
    }
}

fn compare_tokens(left: &Token<'_>, right: &Token<'_>) -> Ordering {
    match left.kind {
        // Gentoo rule: a component with a leading zero compares as a string.
        TokenKind::Digit if left.text.starts_with('0') || right.text.starts_with('0') => {
            left.text.cmp(right.text)
        }
        TokenKind::Digit
        | TokenKind::InitialDigit
        | TokenKind::SuffixNumber
        | TokenKind::Revision => compare_numeric_str(left.text, right.text),
        TokenKind::Suffix => left.suffix.cmp(&right.suffix),
        _ => left.text.cmp(right.text),
    }
}

/// Whether apk-tools accepts the string as a version.
pub fn is_valid(version: &str) -> bool {
    let mut lexer = Lexer::new(version);
    while lexer.current.kind < TokenKind::End {
        lexer.advance();
    }
    lexer.current.kind == TokenKind::End
}

/// Compares two apk versions; `fuzzy` makes a right side that is a prefix of the left compare
/// equal (apk's `~` operator).
pub fn compare_fuzzy(left: &str, right: &str, fuzzy: bool) -> Ordering {
    let mut left_lexer = Lexer::new(left);
    let mut right_lexer = Lexer::new(right);
    while left_lexer.current.kind == right_lexer.current.kind
        && left_lexer.current.kind < TokenKind::End
    {
        let ordering = compare_tokens(&left_lexer.current, &right_lexer.current);
        if ordering != Ordering::Equal {
            return ordering;
        }
        left_lexer.advance();
        right_lexer.advance();
    }
    let left_token = left_lexer.current;
    let right_token = right_lexer.current;
    if left_token.kind == right_token.kind {
        return Ordering::Equal;
    }
    if right_token.kind == TokenKind::End && fuzzy {
        return Ordering::Equal;
    }
    // Equal so far: the longer version is newer unless what follows is a pre-release suffix.
    if left_token.kind == TokenKind::Suffix && left_token.suffix < NONE_RANK {
        return Ordering::Less;
    }
    if right_token.kind == TokenKind::Suffix && right_token.suffix < NONE_RANK {
        return Ordering::Greater;
    }
    right_token.kind.cmp(&left_token.kind)
}

/// Compares two apk versions exactly.
pub fn compare(left: &str, right: &str) -> Ordering {
    compare_fuzzy(left, right, false)
}
