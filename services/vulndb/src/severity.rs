//! Severity: computed from CVSS vectors with the FIRST formulas (v2, v3.0, v3.1 and v4.0, by
//! RustSec's `cvss` crate), falling back to the feed's own label only when no vector parses.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Severity, ordered (mirrors palisade.v1.Severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// No score and no usable label.
    Unknown,
    /// Negligible (Debian `unimportant`, Ubuntu `negligible`, CVSS 0.0).
    Negligible,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Stable uppercase name as scanners print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Negligible => "NEGLIGIBLE",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Maps a vendor label (GHSA `MODERATE`, Debian `low**`, Ubuntu `negligible`) to a severity.
    pub fn from_label(label: &str) -> Severity {
        let normalized = label.trim().trim_end_matches('*').to_ascii_lowercase();
        match normalized.as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" | "unimportant" | "none" => Severity::Negligible,
            _ => Severity::Unknown,
        }
    }

    fn from_cvss(severity: cvss::Severity) -> Severity {
        match severity {
            cvss::Severity::None => Severity::Negligible,
            cvss::Severity::Low => Severity::Low,
            cvss::Severity::Medium => Severity::Medium,
            cvss::Severity::High => Severity::High,
            cvss::Severity::Critical => Severity::Critical,
        }
    }
}

/// Where a severity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeveritySource {
    /// Computed from a CVSS v4.0 vector.
    CvssV4,
    /// Computed from a CVSS v3.x vector.
    CvssV3,
    /// Computed from a CVSS v2 vector.
    CvssV2,
    /// The feed's own label (no vector available).
    VendorLabel,
    /// Nothing known.
    None,
}

/// A severity with the evidence it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityAssessment {
    /// The severity.
    pub severity: Severity,
    /// Where it came from.
    pub source: SeveritySource,
    /// The CVSS vector used, when one was.
    pub cvss_vector: Option<String>,
    /// Its base score.
    pub cvss_score: Option<f64>,
}

impl SeverityAssessment {
    /// Nothing known.
    pub fn unknown() -> Self {
        SeverityAssessment {
            severity: Severity::Unknown,
            source: SeveritySource::None,
            cvss_vector: None,
            cvss_score: None,
        }
    }
}

/// A computed CVSS score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CvssScore {
    /// Base score, 0.0 to 10.0.
    pub score: f64,
    /// Qualitative rating of the score.
    pub severity: Severity,
    /// Which CVSS version the vector was.
    pub source: SeveritySource,
}

/// Computes the score of a CVSS vector (`CVSS:3.1/...`, `CVSS:4.0/...`, or a bare v2 vector).
pub fn score_vector(vector: &str) -> Option<CvssScore> {
    let trimmed = vector.trim();
    if !trimmed.starts_with("CVSS:") {
        let parsed = cvss::v2::Vector::from_str(trimmed).ok()?;
        let score = parsed.score();
        return Some(CvssScore {
            score: score.value(),
            severity: Severity::from_cvss(score.severity()),
            source: SeveritySource::CvssV2,
        });
    }
    let parsed = cvss::Cvss::from_str(trimmed).ok()?;
    let source = if trimmed.starts_with("CVSS:4") {
        SeveritySource::CvssV4
    } else {
        SeveritySource::CvssV3
    };
    Some(CvssScore {
        score: parsed.score(),
        severity: Severity::from_cvss(parsed.severity()),
        source,
    })
}

fn preference(source: SeveritySource) -> u8 {
    match source {
        SeveritySource::CvssV4 => 3,
        SeveritySource::CvssV3 => 2,
        SeveritySource::CvssV2 => 1,
        SeveritySource::VendorLabel | SeveritySource::None => 0,
    }
}

/// Assesses a record: the newest CVSS version that parses wins (the latest assessment of the
/// same vulnerability); among vectors of one version the highest score; else the first label.
pub fn assess<'a>(
    vectors: impl IntoIterator<Item = &'a str>,
    labels: impl IntoIterator<Item = &'a str>,
) -> SeverityAssessment {
    let mut best: Option<(CvssScore, &str)> = None;
    for vector in vectors {
        let Some(scored) = score_vector(vector) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((current, _)) => {
                (preference(scored.source), scored.score)
                    > (preference(current.source), current.score)
            }
        };
        if better {
            best = Some((scored, vector));
        }
    }
    if let Some((scored, vector)) = best {
        return SeverityAssessment {
            severity: scored.severity,
            source: scored.source,
            cvss_vector: Some(vector.trim().to_owned()),
            cvss_score: Some(scored.score),
        };
    }
    for label in labels {
        let severity = Severity::from_label(label);
        if severity != Severity::Unknown {
            return SeverityAssessment {
                severity,
                source: SeveritySource::VendorLabel,
                cvss_vector: None,
                cvss_score: None,
            };
        }
    }
    SeverityAssessment::unknown()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores of the FIRST calculators for CVSS v3.1, as recorded in RedHatProductSecurity/cvss
    /// tests/vectors_simple31 (the same numbers the v3.1 specification's formula gives).
    const V31_EXPECTATIONS: [(&str, f64); 12] = [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:L/A:L", 9.9),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N", 5.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:N/A:N", 4.3),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:U/C:L/I:N/A:N", 3.5),
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:L/A:L", 8.2),
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:N", 0.0),
    ];

    /// Scores of the FIRST CVSS v4.0 calculator, as recorded in RedHatProductSecurity/cvss
    /// tests/vectors_simple4.
    const V40_EXPECTATIONS: [(&str, f64); 12] = [
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:H/VA:L/SC:N/SI:H/SA:L",
            9.2,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:H/SI:N/SA:L",
            7.8,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:L/SA:N",
            6.9,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:L/VI:N/VA:N/SC:L/SI:N/SA:L",
            5.3,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:A/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            8.6,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:A/VC:H/VI:H/VA:H/SC:H/SI:N/SA:H",
            9.3,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:N/SA:H",
            9.5,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:N/SA:N",
            2.1,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:A/VC:N/VI:L/VA:L/SC:L/SI:N/SA:N",
            1.8,
        ),
        (
            "CVSS:4.0/AV:N/AC:H/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:L/SI:H/SA:L",
            9.4,
        ),
        (
            "CVSS:4.0/AV:N/AC:H/AT:N/PR:H/UI:A/VC:N/VI:N/VA:N/SC:N/SI:H/SA:N",
            4.0,
        ),
        (
            "CVSS:4.0/AV:N/AC:H/AT:N/PR:L/UI:P/VC:H/VI:H/VA:H/SC:H/SI:L/SA:H",
            8.8,
        ),
    ];

    #[test]
    fn cvss_v31_scores_match_the_first_calculator() {
        for (vector, expected) in V31_EXPECTATIONS {
            let scored = score_vector(vector).expect("vector parses");
            assert!(
                (scored.score - expected).abs() < 1e-9,
                "{vector}: {} != {expected}",
                scored.score
            );
            assert_eq!(scored.source, SeveritySource::CvssV3);
        }
    }

    #[test]
    fn cvss_v40_scores_match_the_first_calculator() {
        for (vector, expected) in V40_EXPECTATIONS {
            let scored = score_vector(vector).expect("vector parses");
            assert!(
                (scored.score - expected).abs() < 1e-9,
                "{vector}: {} != {expected}",
                scored.score
            );
            assert_eq!(scored.source, SeveritySource::CvssV4);
        }
    }

    #[test]
    fn ratings_follow_the_specification_bands() {
        assert_eq!(
            score_vector(V31_EXPECTATIONS[0].0).map(|scored| scored.severity),
            Some(Severity::Critical)
        );
        assert_eq!(
            score_vector(V31_EXPECTATIONS[4].0).map(|scored| scored.severity),
            Some(Severity::High)
        );
        assert_eq!(
            score_vector(V31_EXPECTATIONS[6].0).map(|scored| scored.severity),
            Some(Severity::Medium)
        );
        assert_eq!(
            score_vector(V31_EXPECTATIONS[8].0).map(|scored| scored.severity),
            Some(Severity::Low)
        );
        assert_eq!(
            score_vector(V40_EXPECTATIONS[8].0).map(|scored| scored.severity),
            Some(Severity::Low)
        );
    }

    #[test]
    fn newest_cvss_version_wins_and_labels_are_a_fallback() {
        let assessed = assess([V31_EXPECTATIONS[0].0, V40_EXPECTATIONS[3].0], ["LOW"]);
        assert_eq!(assessed.source, SeveritySource::CvssV4);
        assert_eq!(assessed.severity, Severity::Medium);
        let labelled = assess(["not a vector"], ["MODERATE"]);
        assert_eq!(labelled.severity, Severity::Medium);
        assert_eq!(labelled.source, SeveritySource::VendorLabel);
        assert_eq!(assess([], ["high**"]).severity, Severity::High);
        assert_eq!(assess([], []).severity, Severity::Unknown);
    }
}
