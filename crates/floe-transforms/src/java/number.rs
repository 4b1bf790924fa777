//! Numbers as Java prints them (`Double.toString`, `Float.toString`, `BigDecimal.toString`) and
//! parses them (`Integer.parseInt` and friends, `new BigDecimal(s)`).

/// `Double.toString`: the shortest digits that read back as the same double, plain between
/// 10⁻³ and 10⁷, computerized scientific notation (`1.0E20`) outside.
pub fn double_to_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    java_style(&format!("{v:e}"), v.abs() >= 1e-3 && v.abs() < 1e7)
}

/// `Float.toString`, as [`double_to_string`] with a float's shortest digits.
pub fn float_to_string(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    java_style(&format!("{v:e}"), v.abs() >= 1e-3 && v.abs() < 1e7)
}

/// Rewrites Rust's `d.ddde±x` (shortest digits) in Java's form.
fn java_style(sci: &str, plain: bool) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if plain {
        // value = 0.digits × 10^(exp+1)
        let point = exp + 1;
        let (int_part, frac_part) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{}", "0".repeat((-point) as usize), digits),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{}{}", digits, "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac = frac_part.trim_end_matches('0');
        let frac = if frac.is_empty() { "0" } else { frac };
        format!("{sign}{int_part}.{frac}")
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = rest.trim_end_matches('0');
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exp}")
    }
}

/// `BigDecimal.toString` of `unscaled × 10^-scale`: plain unless the scale is negative or the
/// adjusted exponent is below −6 (`1E+3`, `1.5E-7`).
pub fn big_decimal_to_string(unscaled: i128, scale: i32) -> String {
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if negative { "-" } else { "" };
    let adjusted = -(scale as i64) + (digits.len() as i64 - 1);
    if scale >= 0 && adjusted >= -6 {
        return format!("{sign}{}", floe_data_decimal(&digits, scale as usize));
    }
    let (first, rest) = digits.split_at(1);
    let mantissa = if rest.is_empty() {
        first.to_string()
    } else {
        format!("{first}.{rest}")
    };
    let exp_sign = if adjusted >= 0 { "+" } else { "" };
    format!("{sign}{mantissa}E{exp_sign}{adjusted}")
}

fn floe_data_decimal(digits: &str, scale: usize) -> String {
    if scale == 0 {
        return digits.to_string();
    }
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale - digits.len() + 1), digits)
    } else {
        digits.to_string()
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{i}.{f}")
}

/// `new BigDecimal(s)`: an optional sign, digits with an optional point, an optional exponent.
/// Returns the unscaled value and the scale.
pub fn parse_big_decimal(s: &str) -> Option<(i128, i32)> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], s[at + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (negative, body) = match mantissa.as_bytes().first()? {
        b'-' => (true, &mantissa[1..]),
        b'+' => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let unscaled: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    let scale = frac_part.len() as i32 - exp;
    Some((if negative { -unscaled } else { unscaled }, scale))
}

/// The integral part of a decimal (`BigDecimal.longValue`'s value before narrowing).
pub fn decimal_integral(unscaled: i128, scale: i32) -> i128 {
    if scale <= 0 {
        unscaled.saturating_mul(10i128.saturating_pow((-scale) as u32))
    } else {
        unscaled / 10i128.saturating_pow(scale as u32)
    }
}

/// `Integer.parseInt`-style parsing: an optional sign and digits, nothing else.
pub fn parse_java_int<T: std::str::FromStr>(s: &str) -> Option<T> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    s.parse().ok()
}

/// `Double.parseDouble`: surrounding whitespace, `NaN`, `Infinity` and a trailing `f`/`d` are
/// accepted.
pub fn parse_java_double(s: &str) -> Option<f64> {
    let t = s.trim();
    let t = t
        .strip_suffix(['f', 'F', 'd', 'D'])
        .filter(|rest| !rest.is_empty() && !rest.ends_with(['N', 'y']))
        .unwrap_or(t);
    match t {
        "NaN" | "+NaN" | "-NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if t.contains(['i', 'I', 'n', 'N']) => None,
        _ => t.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java_prints_them() {
        assert_eq!(double_to_string(3.0), "3.0");
        assert_eq!(double_to_string(-3.9), "-3.9");
        assert_eq!(double_to_string(1e20), "1.0E20");
        assert_eq!(double_to_string(1234567.0), "1234567.0");
        assert_eq!(double_to_string(1e7), "1.0E7");
        assert_eq!(double_to_string(0.001), "0.001");
        assert_eq!(double_to_string(0.0001), "1.0E-4");
        assert_eq!(double_to_string(1.25e-5), "1.25E-5");
        assert_eq!(double_to_string(f64::NAN), "NaN");
        assert_eq!(double_to_string(100.5), "100.5");
        assert_eq!(float_to_string(3.99), "3.99");
        assert_eq!(float_to_string(1.2345679), "1.2345679");
    }

    #[test]
    fn big_decimals_print_as_java_prints_them() {
        assert_eq!(big_decimal_to_string(123450, 2), "1234.50");
        assert_eq!(big_decimal_to_string(1, -3), "1E+3");
        assert_eq!(big_decimal_to_string(15, 8), "1.5E-7");
        assert_eq!(big_decimal_to_string(-5, 3), "-0.005");
        assert_eq!(big_decimal_to_string(7, 0), "7");
    }

    #[test]
    fn java_parsing_is_strict_where_java_is() {
        assert_eq!(parse_java_int::<i32>("+5"), Some(5));
        assert_eq!(parse_java_int::<i32>(" 5 "), None);
        assert_eq!(parse_java_int::<i32>("1.5"), None);
        assert_eq!(parse_java_int::<i8>("300"), None);
        assert_eq!(parse_java_double(" 2.5 "), Some(2.5));
        assert_eq!(parse_java_double("1f"), Some(1.0));
        assert!(parse_java_double("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_java_double("abc"), None);
        assert_eq!(parse_big_decimal("1.5"), Some((15, 1)));
        assert_eq!(parse_big_decimal("1e3"), Some((1, -3)));
        assert_eq!(parse_big_decimal("-0.25"), Some((-25, 2)));
        assert_eq!(parse_big_decimal("abc"), None);
        assert_eq!(decimal_integral(123450, 2), 1234);
        assert_eq!(decimal_integral(1, -3), 1000);
    }
}
