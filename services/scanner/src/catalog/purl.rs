//! Package URLs (purl-spec) for every ecosystem the catalogers read.

use packageurl::PackageUrl;

/// Builds `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`. An input the purl library refuses (an
/// empty name) yields an empty string rather than a wrong URL.
pub(crate) fn build(
    package_type: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let Ok(mut purl) = PackageUrl::new(package_type, name) else {
        return String::new();
    };
    if let Some(namespace) = namespace.filter(|n| !n.is_empty())
        && purl.with_namespace(namespace).is_err()
    {
        return String::new();
    }
    if !version.is_empty() && purl.with_version(version).is_err() {
        return String::new();
    }
    let mut sorted: Vec<&(&str, &str)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    sorted.sort();
    for (key, value) in sorted {
        if purl.add_qualifier(*key, *value).is_err() {
            return String::new();
        }
    }
    purl.to_string()
}
