//! Falco's priority names and their mapping onto [`Priority`].

use crate::v1::Priority;

/// A priority name that is not one of Falco's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePriorityError {
    /// The text that was given.
    pub given: String,
}

impl std::fmt::Display for ParsePriorityError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "unknown priority {:?}: expected one of emergency, alert, critical, error, warning, notice, informational (info), debug",
            self.given
        )
    }
}

impl std::error::Error for ParsePriorityError {}

/// Falco-style names for [`Priority`].
pub trait PriorityExt: Sized {
    /// Parses a Falco priority name, case-insensitively ("Warning", "INFO", "informational").
    fn from_falco_name(name: &str) -> Result<Self, ParsePriorityError>;
    /// The name Falco prints for this priority ("Warning").
    fn falco_name(self) -> &'static str;
    /// Lower-case name used in queries ("warning").
    fn query_name(self) -> &'static str;
}

impl PriorityExt for Priority {
    fn from_falco_name(name: &str) -> Result<Self, ParsePriorityError> {
        let priority = match name.trim().to_ascii_lowercase().as_str() {
            "emergency" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" => Priority::Critical,
            "error" => Priority::Error,
            "warning" | "warn" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => {
                return Err(ParsePriorityError {
                    given: name.to_string(),
                });
            }
        };
        Ok(priority)
    }

    fn falco_name(self) -> &'static str {
        match self {
            Priority::Unspecified => "Unspecified",
            Priority::Debug => "Debug",
            Priority::Informational => "Informational",
            Priority::Notice => "Notice",
            Priority::Warning => "Warning",
            Priority::Error => "Error",
            Priority::Critical => "Critical",
            Priority::Alert => "Alert",
            Priority::Emergency => "Emergency",
        }
    }

    fn query_name(self) -> &'static str {
        match self {
            Priority::Unspecified => "unspecified",
            Priority::Debug => "debug",
            Priority::Informational => "informational",
            Priority::Notice => "notice",
            Priority::Warning => "warning",
            Priority::Error => "error",
            Priority::Critical => "critical",
            Priority::Alert => "alert",
            Priority::Emergency => "emergency",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falco_names_round_trip_and_order_by_severity() {
        let names = [
            "debug",
            "informational",
            "notice",
            "warning",
            "error",
            "critical",
            "alert",
            "emergency",
        ];
        let mut previous = Priority::Unspecified as i32;
        for name in names {
            let priority = Priority::from_falco_name(name).expect("known name");
            assert_eq!(priority.query_name(), name);
            assert!(
                priority as i32 > previous,
                "{name} must rank above the one before"
            );
            previous = priority as i32;
        }
        assert_eq!(
            Priority::from_falco_name("INFO"),
            Ok(Priority::Informational)
        );
        assert!(Priority::from_falco_name("severe").is_err());
    }
}
