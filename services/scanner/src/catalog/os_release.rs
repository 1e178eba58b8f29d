//! Operating-system detection: os-release, with alpine-release and debian_version as fallbacks.

use crate::sbom::OsInfo;

/// Which file the OS was read from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OsSource {
    EtcOsRelease,
    UsrLibOsRelease,
    AlpineRelease,
    DebianVersion,
}

/// Parses one OS identification file. `None` when it names no OS.
pub(crate) fn parse_os_file(source: OsSource, content: &[u8]) -> Option<OsInfo> {
    let text = String::from_utf8_lossy(content);
    match source {
        OsSource::EtcOsRelease | OsSource::UsrLibOsRelease => parse_os_release_text(&text),
        OsSource::AlpineRelease => {
            let version = text.lines().next()?.trim();
            (!version.is_empty()).then(|| OsInfo {
                id: "alpine".to_string(),
                version_id: version.to_string(),
                codename: None,
                pretty_name: None,
            })
        }
        OsSource::DebianVersion => {
            let version = text.lines().next()?.trim();
            // Testing/unstable write "trixie/sid": no numbered release to match against.
            let numbered = version.chars().next().is_some_and(|c| c.is_ascii_digit());
            numbered.then(|| OsInfo {
                id: "debian".to_string(),
                version_id: version.to_string(),
                codename: None,
                pretty_name: None,
            })
        }
    }
}

fn parse_os_release_text(text: &str) -> Option<OsInfo> {
    let mut info = OsInfo::default();
    for line in text.lines() {
        let Some((key, raw_value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw_value.trim());
        match key.trim() {
            "ID" => info.id = value.to_ascii_lowercase(),
            "VERSION_ID" => info.version_id = value,
            "VERSION_CODENAME" if !value.is_empty() => info.codename = Some(value),
            "PRETTY_NAME" if !value.is_empty() => info.pretty_name = Some(value),
            _ => {}
        }
    }
    (!info.id.is_empty()).then_some(info)
}

/// os-release values follow shell quoting: strip one level of quotes and backslash escapes.
fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for character in inner.chars() {
        if escaped {
            out.push(character);
            escaped = false;
        } else if character == '\\' {
            escaped = true;
        } else {
            out.push(character);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpine_and_debian_fallbacks() {
        let alpine = parse_os_file(OsSource::AlpineRelease, b"3.16.2\n");
        assert_eq!(alpine.map(|o| o.release()).as_deref(), Some("3.16"));
        assert!(parse_os_file(OsSource::DebianVersion, b"trixie/sid\n").is_none());
        let os = parse_os_file(
            OsSource::EtcOsRelease,
            b"ID=\"ubuntu\"\nVERSION_ID='18.04'\n",
        );
        assert_eq!(
            os.map(|o| o.display_name()).as_deref(),
            Some("ubuntu 18.04")
        );
    }
}
