//! Kubernetes resource quantities (`100m`, `1Gi`, `512Mi`, `1e3`, `0.5`): parsing to an exact
//! integer number of nano-units, for comparing requests and limits.
//!
//! This module owns the grammar only; it must not decide which quantities are valid where (that
//! is `validation`'s job) and does not reformat quantities (objects keep what clients sent).

/// A parsed quantity, exactly, in units of 10⁻⁹ (so `1m` is `1_000_000` and `1Ki` is
/// `1024_000_000_000`). Ordering is numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(pub i128);

impl Quantity {
    /// The value as a float, in whole units (approximate for huge values).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// True if the quantity is negative.
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
}

/// Parses a quantity as Kubernetes' `resource.ParseQuantity` accepts it: an optional sign, a
/// decimal number, then a binary suffix (`Ki`..`Ei`), a decimal SI suffix (`n`, `u`, `m`, ``,
/// `k`, `M`, `G`, `T`, `P`, `E`) or a decimal exponent (`e3`, `E-2`). Fractions smaller than a
/// nano-unit are rounded up, as Kubernetes rounds them. `None` for anything else or on overflow.
pub fn parse_quantity(s: &str) -> Option<Quantity> {
    let s = s.trim_matches(|c: char| c == ' ');
    if s.is_empty() || s.len() > 128 {
        return None;
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let negative = match bytes[0] {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let num_start = i;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    let number = &s[num_start..i];
    let suffix = &s[i..];
    let (int_part, frac_part) = match number.split_once('.') {
        Some((a, b)) => (a, b),
        None => (number, ""),
    };
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return None;
    }
    // Mantissa as an integer and a power-of-ten scale: value = mantissa * 10^exp10 * 2^exp2.
    let mut digits = String::with_capacity(number.len());
    digits.push_str(int_part);
    digits.push_str(frac_part);
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return None;
    }
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let digits_part = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits_part.is_empty() || !digits_part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let e: i32 = rest.parse().ok()?;
            exp10 = exp10.checked_add(e)?;
        }
    }
    // Convert to nano-units.
    let mut value = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    let scale = exp10 + 9;
    if scale >= 0 {
        if mantissa != 0 {
            value = value.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)?;
        }
    } else {
        let div = match 10i128.checked_pow(u32::try_from(-scale).ok()?) {
            Some(d) => d,
            None => return Some(Quantity(if value == 0 { 0 } else { 1 })),
        };
        let q = value / div;
        value = if value % div != 0 { q + 1 } else { q };
    }
    Some(Quantity(if negative { -value } else { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> i128 {
        parse_quantity(s)
            .unwrap_or_else(|| panic!("{s} should parse"))
            .0
    }

    #[test]
    fn parses_kubernetes_examples() {
        const G: i128 = 1_000_000_000;
        assert_eq!(q("0"), 0);
        assert_eq!(q("1"), G);
        assert_eq!(q("100m"), G / 10);
        assert_eq!(q("0.5"), G / 2);
        assert_eq!(q(".5"), G / 2);
        assert_eq!(q("5."), 5 * G);
        assert_eq!(q("1e3"), 1000 * G);
        assert_eq!(q("1E3"), 1000 * G);
        assert_eq!(q("1e-3"), G / 1000);
        assert_eq!(q("1Ki"), 1024 * G);
        assert_eq!(q("512Mi"), 512 * 1024 * 1024 * G);
        assert_eq!(q("1Gi"), (1 << 30) * G);
        assert_eq!(q("1.5Gi"), 3 * (1 << 29) * G);
        assert_eq!(q("1G"), G * G);
        assert_eq!(q("1k"), 1000 * G);
        assert_eq!(q("1E"), 1_000_000_000_000_000_000 * G);
        assert_eq!(q("1n"), 1);
        assert_eq!(q("1u"), 1000);
        assert_eq!(q("-1"), -G);
        assert_eq!(q("+1"), G);
        assert_eq!(q("0.1n"), 1);
        assert!(parse_quantity("128974848").is_some());
        assert!(parse_quantity("129e6").is_some());
        assert!(parse_quantity("123Mi").is_some());
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "", "abc", "1.2.3", "1KI", "1 Gi", "Gi", "1e", "1e+", ".", "1mm", "1iB", "--1", "1Zi",
            "1e3.5",
        ] {
            assert_eq!(parse_quantity(s), None, "{s:?}");
        }
    }

    #[test]
    fn orders_numerically() {
        assert!(parse_quantity("500m") < parse_quantity("1"));
        assert!(parse_quantity("1Gi") > parse_quantity("1G"));
        assert!(parse_quantity("1000Mi") < parse_quantity("1Gi"));
    }
}
