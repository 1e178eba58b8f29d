//! Kubernetes resource quantities ("500m", "2", "1.5Gi", "1e3"): the schemas accept any string
//! there, so the checks parse them themselves.

/// The quantity's value in base units (cores, bytes), or `None` when it is not a quantity.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let number_end = text
        .char_indices()
        .find(|(index, character)| {
            !(character.is_ascii_digit()
                || *character == '.'
                || (*index == 0 && (*character == '+' || *character == '-')))
        })
        .map(|(index, _)| index)
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    if number.is_empty() || number == "+" || number == "-" || number.ends_with('.') {
        return None;
    }
    let base: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent.get(1..)?.parse().ok()?;
            10.0_f64.powi(power)
        }
        _ => return None,
    };
    Some(base * multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_quantities_parse_to_base_units() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("256Mi"), Some(268435456.0));
        assert_eq!(parse_quantity("1.5k"), Some(1500.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("268435456"), Some(268435456.0));
    }

    #[test]
    fn what_kubernetes_would_refuse_is_not_a_quantity() {
        for text in ["", "abc", "1GB", "Gi", "1.", "--1", "1e", "m"] {
            assert_eq!(parse_quantity(text), None, "{text:?}");
        }
    }
}
