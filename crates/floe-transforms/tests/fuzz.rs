//! What a record or a connector config brings to the transforms' Java emulation — date
//! patterns and the texts parsed with them, regular expressions and replacement strings,
//! numbers, the values `Values.parseString` reads — is answered with a result or an error,
//! never a panic. The case count follows proptest's `PROPTEST_CASES`: a short run by default
//! (CI), a long one by hand (docs/security.md, "Untrusted input").

use floe_transforms::java::date_format::DateFormat;
use floe_transforms::java::number::{
    big_decimal_to_string, decimal_integral, parse_big_decimal, parse_java_double, parse_java_int,
};
use floe_transforms::java::regex::compile;
use floe_transforms::java::values::{date_text, parse_string};
use proptest::prelude::*;

/// Pattern letters and text pieces that reach the parser's arithmetic, with anything else.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        "[yMdHhmsSEaZXz'. :/-]{0,24}",
        Just("yyyy-MM-dd".to_string()),
        Just("yyyy-MM-dd'T'HH:mm:ss.SSSXXX".to_string()),
        "\\PC{0,16}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,22}-[0-9]{1,22}-[0-9]{1,22}",
        "[0-9:. TZ+-]{0,40}",
        "\\PC{0,32}",
    ]
}

proptest! {
    #[test]
    fn date_patterns_texts_and_times(p in pattern(), t in text(), millis in any::<i64>()) {
        if let Ok(format) = DateFormat::new(&p) {
            let _ = format.parse(&t);
            let _ = format.format(millis);
        }
        let _ = date_text(millis);
    }

    #[test]
    fn regexes_and_replacements(p in "\\PC{0,24}", t in "\\PC{0,24}", r in "[$\\\\{}a-z0-9]{0,12}") {
        if let Ok(re) = compile(&p) {
            let _ = re.matches(&t);
            let _ = re.replace(&t, &r);
        }
    }

    #[test]
    fn numbers(s in "[-+0-9.eE]{0,48}", u in any::<i128>(), scale in any::<i32>()) {
        let _ = parse_big_decimal(&s);
        let _ = parse_java_double(&s);
        let _ = parse_java_int::<i32>(&s);
        let _ = parse_java_int::<i64>(&s);
        let _ = big_decimal_to_string(u, scale);
        let _ = decimal_integral(u, scale);
    }

    #[test]
    fn values_read_from_strings(s in "\\PC{0,48}", json in "[\\[\\]{}:,\"a-z0-9. -]{0,48}") {
        let _ = parse_string(&s);
        let _ = parse_string(&json);
    }
}
