//! Small decimal helpers shared by converters and connectors (no big-decimal dependency:
//! Connect decimals that Floe handles fit an `i128`, i.e. precision ≤ 38).

/// Parses decimal text (`-12.50`, `1e3`, `7`) into an unscaled value and its scale.
pub fn parse_decimal(text: &str) -> Option<(i128, i32)> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
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
    let mut unscaled: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    let scale = i32::try_from(frac_part.len()).ok()? - exponent;
    Some((if negative { -unscaled } else { unscaled }, scale))
}

/// Changes the scale of an unscaled value, rounding half away from zero (Java's `HALF_UP`).
pub fn rescale(unscaled: i128, from_scale: i32, to_scale: i32) -> Option<i128> {
    if to_scale >= from_scale {
        let factor = 10i128.checked_pow(u32::try_from(to_scale - from_scale).ok()?)?;
        return unscaled.checked_mul(factor);
    }
    let drop = u32::try_from(from_scale - to_scale).ok()?;
    let Some(factor) = 10i128.checked_pow(drop) else {
        return Some(0);
    };
    let quotient = unscaled / factor;
    let remainder = (unscaled % factor).abs();
    if remainder * 2 >= factor {
        Some(quotient + unscaled.signum())
    } else {
        Some(quotient)
    }
}

/// Decodes a big-endian two's-complement integer (Java `BigInteger.toByteArray`).
pub fn unscaled_from_be_bytes(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() {
        return Some(0);
    }
    if bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0x00 };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_text() {
        assert_eq!(parse_decimal("12.50"), Some((1250, 2)));
        assert_eq!(parse_decimal("-0.005"), Some((-5, 3)));
        assert_eq!(parse_decimal("7"), Some((7, 0)));
        assert_eq!(parse_decimal("1.5e2"), Some((15, -1)));
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal(""), None);
    }

    #[test]
    fn rescales_half_up() {
        assert_eq!(rescale(1250, 2, 1), Some(125));
        assert_eq!(rescale(1255, 3, 2), Some(126));
        assert_eq!(rescale(-1255, 3, 2), Some(-126));
        assert_eq!(rescale(1254, 3, 2), Some(125));
        assert_eq!(rescale(15, -1, 2), Some(15000));
    }

    #[test]
    fn decodes_twos_complement() {
        assert_eq!(unscaled_from_be_bytes(&[0x00, 0xde]), Some(222));
        assert_eq!(unscaled_from_be_bytes(&[0xff]), Some(-1));
        assert_eq!(unscaled_from_be_bytes(&[0xff, 0x22]), Some(-222));
    }
}
