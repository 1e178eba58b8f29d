//! The page frame and the small pieces every page shares.

use maud::{DOCTYPE, Markup, html};

use super::session::Session;

/// The pages of the navigation: (data-page, path, label).
const PAGES: &[(&str, &str, &str)] = &[
    ("overview", "/console/", "Overview"),
    ("alerts", "/console/alerts", "Alerts"),
    ("paths", "/console/paths", "Attack paths"),
    ("explorer", "/console/explorer", "Explorer"),
    ("images", "/console/images", "Images"),
    ("rules", "/console/rules", "Rules"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Palisade" }
            link rel="stylesheet" href="/console/assets/console.css";
            script src="/console/assets/console.js" defer {}
        }
    }
}

/// A page without navigation (sign-in, refusals).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { (body) }
        }
    }
}

/// A signed-in page: navigation with `current` marked, the tenant, sign-out, then `body`.
pub fn page(session: &Session, current: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#content" { "Skip to content" }
                header.top {
                    span.brand { "Palisade" }
                    nav #nav aria-label="Pages" {
                        @for (id, path, label) in PAGES {
                            @if *id == current {
                                a href=(path) data-page=(id) aria-current="page" { (label) }
                            } @else {
                                a href=(path) data-page=(id) { (label) }
                            }
                        }
                    }
                    span.tenant title="Tenant of your key" { "tenant " strong { (session.tenant) } }
                    form #signout method="post" action="/console/signout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button #signout-submit type="submit" { "Sign out" }
                    }
                }
                main #content tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A severity as a badge whose colour and text both tell the level.
pub fn severity(name: &str) -> Markup {
    let level = severity_level(name);
    html! { span class={ "sev sev-" (level) } { (name) } }
}

/// The colour class of a severity or Falco priority name.
pub fn severity_level(name: &str) -> &'static str {
    match name.to_ascii_lowercase().as_str() {
        "emergency" | "alert" | "critical" => "critical",
        "error" | "high" => "high",
        "warning" | "medium" => "medium",
        "notice" | "low" => "low",
        _ => "info",
    }
}

/// A protobuf time as "YYYY-MM-DD HH:MM:SS UTC".
pub fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|time| chrono::DateTime::from_timestamp(time.seconds, time.nanos.max(0) as u32))
        .map(|time| time.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".to_string())
}

/// A percent-encoded query parameter value.
pub fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_and_severities_named() {
        assert_eq!(encode("rule:\"a b\"&x"), "rule%3A%22a%20b%22%26x");
        assert_eq!(severity_level("WARNING"), "medium");
        assert_eq!(severity_level("Critical"), "critical");
        assert_eq!(severity_level("debug"), "info");
    }
}
