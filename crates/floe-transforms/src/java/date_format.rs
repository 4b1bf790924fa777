//! `java.text.SimpleDateFormat` in UTC, as TimestampConverter and TimestampRouter use it:
//! formatting every pattern letter Java knows, and lenient parsing (fields may overflow —
//! month 13 is January of the next year — and text after the pattern is ignored).
//!
//! Neither parsing nor formatting panics, whatever the text, the pattern or the time: a value
//! outside what the calendar can hold (a day of 999999999999999, a year past `i32`, a sum past
//! `i64` milliseconds) does not parse, and a time outside chrono's range formats as nothing.

use chrono::{DateTime, Datelike, Days, Duration, Months, NaiveDate, Timelike, Utc};

/// A parsed `SimpleDateFormat` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat {
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    Field { letter: char, count: usize },
}

const LETTERS: &str = "GyYMLwWDdFEuaHkKhmsSzZX";
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl DateFormat {
    /// Parses a pattern; the error is Java's (`Illegal pattern character 'q'`, `Unterminated
    /// quote`).
    pub fn new(pattern: &str) -> Result<DateFormat, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut items: Vec<Item> = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err("Unterminated quote".into()),
                        Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                            literal.push('\'');
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(ch) => {
                            literal.push(*ch);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
            } else if c.is_ascii_alphabetic() {
                if !LETTERS.contains(c) {
                    return Err(format!("Illegal pattern character '{c}'"));
                }
                let mut count = 1;
                while chars.get(i + count) == Some(&c) {
                    count += 1;
                }
                if !literal.is_empty() {
                    items.push(Item::Literal(std::mem::take(&mut literal)));
                }
                items.push(Item::Field { letter: c, count });
                i += count;
            } else {
                literal.push(c);
                i += 1;
            }
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        Ok(DateFormat { items })
    }

    /// `format(new Date(millis))` in UTC.
    pub fn format(&self, millis: i64) -> String {
        let Some(t) = DateTime::<Utc>::from_timestamp_millis(millis) else {
            return String::new();
        };
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Literal(s) => out.push_str(s),
                Item::Field { letter, count } => format_field(&mut out, &t, *letter, *count),
            }
        }
        out
    }

    /// `parse(text)`, lenient: epoch milliseconds, or None when the text does not fit or its
    /// fields add up to a time out of range.
    pub fn parse(&self, text: &str) -> Option<i64> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let mut f = Parsed::default();
        for (n, item) in self.items.iter().enumerate() {
            match item {
                Item::Literal(s) => {
                    for expected in s.chars() {
                        if chars.get(pos) != Some(&expected) {
                            return None;
                        }
                        pos += 1;
                    }
                }
                Item::Field { letter, count } => {
                    let abutting = matches!(
                        self.items.get(n + 1),
                        Some(Item::Field { letter: next, count: c }) if is_numeric(*next, *c)
                    );
                    pos = parse_field(&chars, pos, *letter, *count, abutting, &mut f)?;
                }
            }
        }
        f.millis()
    }
}

fn is_numeric(letter: char, count: usize) -> bool {
    match letter {
        'M' | 'L' => count < 3,
        'G' | 'E' | 'a' | 'z' | 'Z' | 'X' => false,
        _ => true,
    }
}

fn pad(out: &mut String, value: i64, count: usize) {
    let s = value.unsigned_abs().to_string();
    if value < 0 {
        out.push('-');
    }
    for _ in s.len()..count {
        out.push('0');
    }
    out.push_str(&s);
}

/// The week-based year and week of year with Sunday as the first day and one day minimum
/// (the rules of Java's default US locale).
fn us_week(date: NaiveDate) -> (i32, i64) {
    let to_saturday = 6 - date.weekday().num_days_from_sunday();
    // A week ending past the last date chrono holds (December 31st) ends in the next year too.
    let week_end = date.checked_add_days(Days::new(u64::from(to_saturday)));
    if week_end.is_none_or(|end| end.year() > date.year()) {
        return (date.year() + 1, 1);
    }
    let jan1 = NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date);
    let offset = i64::from(jan1.weekday().num_days_from_sunday());
    (date.year(), (i64::from(date.ordinal0()) + offset) / 7 + 1)
}

fn format_field(out: &mut String, t: &DateTime<Utc>, letter: char, count: usize) {
    let date = t.date_naive();
    match letter {
        'G' => out.push_str(if t.year() > 0 { "AD" } else { "BC" }),
        'y' | 'Y' => {
            let year = if letter == 'y' {
                t.year()
            } else {
                us_week(date).0
            };
            if count == 2 {
                pad(out, i64::from(year.rem_euclid(100)), 2);
            } else {
                pad(out, i64::from(year), count);
            }
        }
        'M' | 'L' => {
            let m = t.month0() as usize;
            match count {
                1 | 2 => pad(out, m as i64 + 1, count),
                3 => out.push_str(&MONTHS[m][..3]),
                _ => out.push_str(MONTHS[m]),
            }
        }
        'w' => pad(out, us_week(date).1, count),
        'W' => {
            let first = date.with_day(1).unwrap_or(date);
            let offset = i64::from(first.weekday().num_days_from_sunday());
            pad(out, (i64::from(t.day0()) + offset) / 7 + 1, count);
        }
        'D' => pad(out, i64::from(t.ordinal()), count),
        'd' => pad(out, i64::from(t.day()), count),
        'F' => pad(out, i64::from(t.day0() / 7 + 1), count),
        'E' => {
            let d = DAYS[t.weekday().num_days_from_sunday() as usize];
            out.push_str(if count >= 4 { d } else { &d[..3] });
        }
        'u' => pad(out, i64::from(t.weekday().number_from_monday()), count),
        'a' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
        'H' => pad(out, i64::from(t.hour()), count),
        'k' => pad(
            out,
            i64::from(if t.hour() == 0 { 24 } else { t.hour() }),
            count,
        ),
        'K' => pad(out, i64::from(t.hour() % 12), count),
        'h' => pad(
            out,
            i64::from(if t.hour().is_multiple_of(12) {
                12
            } else {
                t.hour() % 12
            }),
            count,
        ),
        'm' => pad(out, i64::from(t.minute()), count),
        's' => pad(out, i64::from(t.second()), count),
        'S' => pad(out, i64::from(t.timestamp_subsec_millis()), count),
        'z' => out.push_str(if count >= 4 {
            "Coordinated Universal Time"
        } else {
            "UTC"
        }),
        'Z' => out.push_str("+0000"),
        'X' => out.push('Z'),
        _ => {}
    }
}

#[derive(Default)]
struct Parsed {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    day_of_year: Option<i64>,
    hour: i64,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: i64,
    second: i64,
    millis: i64,
    offset_minutes: i64,
}

impl Parsed {
    /// The epoch milliseconds the fields add up to, overflowing into the larger fields as a
    /// lenient calendar does; None when they add up to more than chrono's dates or `i64`
    /// milliseconds hold (every step is checked: the fields are whatever the text said).
    fn millis(&self) -> Option<i64> {
        let year = i32::try_from(self.year.unwrap_or(1970)).ok()?;
        let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
        let date = match (self.day_of_year, self.month, self.day) {
            (Some(doy), None, None) => add_days(jan1, doy.checked_sub(1)?)?,
            _ => {
                let months = self.month.unwrap_or(1).checked_sub(1)?;
                let shift = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
                let first = if months >= 0 {
                    jan1.checked_add_months(shift)?
                } else {
                    jan1.checked_sub_months(shift)?
                };
                add_days(first, self.day.unwrap_or(1).checked_sub(1)?)?
            }
        };
        let hour = match (self.hour12, self.pm) {
            (Some(h), pm) => h % 12 + if pm == Some(true) { 12 } else { 0 },
            (None, Some(true)) if self.hour < 12 => self.hour + 12,
            _ => self.hour,
        };
        let midnight = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        // Summed in i128, which no sum of these products of i64s overflows; the time must then
        // fit i64 milliseconds.
        let total = i128::from(midnight)
            + i128::from(hour) * 3_600_000
            + i128::from(self.minute) * 60_000
            + i128::from(self.second) * 1_000
            + i128::from(self.millis)
            - i128::from(self.offset_minutes) * 60_000;
        i64::try_from(total).ok()
    }
}

/// `date` moved by `days` (either way), or None past the dates chrono holds.
fn add_days(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    date.checked_add_signed(Duration::try_days(days)?)
}

fn parse_number(chars: &[char], mut pos: usize, max: Option<usize>) -> Option<(i64, usize)> {
    while chars.get(pos).is_some_and(|c| c.is_whitespace()) {
        pos += 1;
    }
    let negative = chars.get(pos) == Some(&'-');
    if negative {
        pos += 1;
    }
    let start = pos;
    while chars.get(pos).is_some_and(char::is_ascii_digit) && max.is_none_or(|m| pos - start < m) {
        pos += 1;
    }
    if pos == start {
        return None;
    }
    // Too many digits for an i64: the text does not parse.
    let n: i64 = chars
        .get(start..pos)?
        .iter()
        .collect::<String>()
        .parse()
        .ok()?;
    Some((if negative { -n } else { n }, pos))
}

fn parse_word(chars: &[char], pos: usize, words: &[&str]) -> Option<(usize, usize)> {
    let rest: String = chars
        .get(pos..)?
        .iter()
        .collect::<String>()
        .to_ascii_lowercase();
    // Longest match first, as Java tries full names before abbreviations.
    let mut best: Option<(usize, usize)> = None;
    for (i, w) in words.iter().enumerate() {
        for candidate in [w.to_string(), w.chars().take(3).collect()] {
            if rest.starts_with(&candidate.to_ascii_lowercase())
                && best.is_none_or(|(_, len)| candidate.len() > len)
            {
                best = Some((i, candidate.len()));
            }
        }
    }
    best.map(|(i, len)| (i, pos + len))
}

fn parse_field(
    chars: &[char],
    pos: usize,
    letter: char,
    count: usize,
    abutting: bool,
    f: &mut Parsed,
) -> Option<usize> {
    let width = abutting.then_some(count);
    match letter {
        'M' | 'L' if count >= 3 => {
            let (m, next) = parse_word(chars, pos, &MONTHS)?;
            f.month = Some(m as i64 + 1);
            Some(next)
        }
        'E' => parse_word(chars, pos, &DAYS).map(|(_, next)| next),
        'a' => {
            let (i, next) = parse_word(chars, pos, &["AM", "PM"])?;
            f.pm = Some(i == 1);
            Some(next)
        }
        'G' => parse_word(chars, pos, &["AD", "BC"]).map(|(_, next)| next),
        'z' | 'Z' | 'X' => parse_zone(chars, pos, f),
        _ => {
            let (n, next) = parse_number(chars, pos, width)?;
            match letter {
                'y' | 'Y' => {
                    // Two digits with a two-letter pattern: the century nearest now (Java:
                    // within 80 years before and 20 after).
                    let digits = next - pos;
                    f.year = Some(if count <= 2 && digits == 2 {
                        let now = i64::from(Utc::now().year());
                        let mut y = now - now.rem_euclid(100) + n;
                        if y > now + 20 {
                            y -= 100;
                        }
                        y
                    } else {
                        n
                    });
                }
                'M' | 'L' => f.month = Some(n),
                'd' => f.day = Some(n),
                'D' => f.day_of_year = Some(n),
                'H' => f.hour = n,
                'k' => f.hour = if n == 24 { 0 } else { n },
                'K' | 'h' => f.hour12 = Some(n),
                'm' => f.minute = n,
                's' => f.second = n,
                'S' => f.millis = n,
                _ => {}
            }
            Some(next)
        }
    }
}

fn parse_zone(chars: &[char], pos: usize, f: &mut Parsed) -> Option<usize> {
    let rest: String = chars.get(pos..)?.iter().collect();
    for name in ["UTC", "GMT", "Z"] {
        if rest.starts_with(name) {
            let after = pos + name.len();
            if name != "Z" && matches!(chars.get(after), Some('+' | '-')) {
                return parse_offset(chars, after, f);
            }
            f.offset_minutes = 0;
            return Some(after);
        }
    }
    parse_offset(chars, pos, f)
}

fn parse_offset(chars: &[char], pos: usize, f: &mut Parsed) -> Option<usize> {
    let sign = match chars.get(pos)? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let (hours, next) = parse_number(chars, pos + 1, Some(2))?;
    let (minutes, next) = if chars.get(next) == Some(&':') {
        parse_number(chars, next + 1, Some(2))?
    } else {
        parse_number(chars, next, Some(2)).unwrap_or((0, next))
    };
    f.offset_minutes = sign * (hours * 60 + minutes);
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(p: &str) -> DateFormat {
        DateFormat::new(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn formats_in_utc() {
        assert_eq!(fmt("yyyyMMdd").format(1_700_000_000_000), "20231114");
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").format(-1),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(fmt("YYYY-ww HH").format(1_700_000_000_000), "2023-46 22");
        assert_eq!(
            fmt("EEE, d MMM yyyy hh:mm a").format(0),
            "Thu, 1 Jan 1970 12:00 AM"
        );
        assert_eq!(fmt("''yy'' S").format(5), "'70' 5");
        assert_eq!(fmt("EEEE MMMM").format(0), "Thursday January");
    }

    #[test]
    fn bad_patterns_are_javas_errors() {
        assert_eq!(
            DateFormat::new("qqq").err().as_deref(),
            Some("Illegal pattern character 'q'")
        );
        assert!(DateFormat::new("'open").is_err());
    }

    #[test]
    fn parses_leniently() {
        let f = fmt("yyyy-MM-dd");
        assert_eq!(f.parse("2020-01-01"), Some(1_577_836_800_000));
        assert_eq!(f.parse("2020-01-01garbage"), Some(1_577_836_800_000));
        assert_eq!(f.parse("2020-1-1"), Some(1_577_836_800_000));
        assert_eq!(f.parse("2020-13-45"), Some(1_613_260_800_000));
        assert_eq!(f.parse("garbage"), None);
        assert_eq!(
            fmt("yyyyMMdd").parse("20240115"),
            fmt("yyyy-MM-dd").parse("2024-01-15")
        );
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").parse("1969-12-31T23:59:59.999Z"),
            Some(-1)
        );
        assert_eq!(
            fmt("yyyy-MM-dd HH:mm:ssZ").parse("1970-01-01 01:00:00+0100"),
            Some(0)
        );
        assert_eq!(
            fmt("hh:mm a").parse("01:30 PM"),
            Some(13 * 3_600_000 + 30 * 60_000)
        );
    }

    #[test]
    fn formatting_and_parsing_agree() {
        let f = fmt("yyyy-MM-dd HH:mm:ss.SSS");
        for ms in [
            0i64,
            1,
            86_399_999,
            1_700_000_000_123,
            -86_400_001,
            4_102_444_800_000,
        ] {
            assert_eq!(f.parse(&f.format(ms)), Some(ms), "{ms}");
        }
    }

    #[test]
    fn fields_out_of_range_do_not_parse() {
        let f = fmt("yyyy-MM-dd");
        // A day count whose duration overflows (it used to panic the task).
        assert_eq!(f.parse("2024-01-999999999999999"), None);
        assert_eq!(f.parse("2024-01--999999999999999"), None);
        assert_eq!(f.parse("2024-01-9223372036854775807"), None);
        assert_eq!(f.parse("2024-01-99999999999999999999"), None);
        // Month - 1 is i64::MIN, which has no negation.
        assert_eq!(f.parse("2024--9223372036854775807-01"), None);
        assert_eq!(f.parse("2024-9223372036854775807-01"), None);
        assert_eq!(f.parse("9999999999-01-01"), None);
        assert_eq!(fmt("D").parse("999999999999999"), None);
        assert_eq!(fmt("D").parse("-9223372036854775807"), None);
        // Time fields whose sum leaves i64 milliseconds.
        assert_eq!(
            fmt("yyyy-MM-dd HH").parse("2024-01-01 9223372036854775807"),
            None
        );
        assert_eq!(
            fmt("H:m:s.S").parse("0:0:0.9223372036854775807"),
            Some(i64::MAX)
        );
        assert_eq!(fmt("H:m:s.S").parse("1:0:0.9223372036854775807"), None);
        assert_eq!(
            fmt("H:m:s.S").parse("0:0:0.-9223372036854775807"),
            Some(-i64::MAX)
        );
        assert_eq!(
            fmt("m:s").parse("-9223372036854775807:-9223372036854775807"),
            None
        );
    }

    #[test]
    fn formatting_at_the_ends_of_the_range_does_not_panic() {
        let every_letter =
            fmt("G y yy Y YY M MMM MMMM L w W D d F E EEEE u a H k K h m s S z zzzz Z X");
        let first = NaiveDate::MIN
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or_default();
        let last = NaiveDate::MAX
            .and_hms_milli_opt(23, 59, 59, 999)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or_default();
        for ms in [
            i64::MIN,
            first - 1,
            first,
            first + 86_400_000,
            last - 86_400_000,
            last,
            last + 1,
            i64::MAX,
        ] {
            let _ = every_letter.format(ms);
        }
        assert!(!every_letter.format(first).is_empty());
        assert!(!every_letter.format(last).is_empty());
        assert_eq!(every_letter.format(i64::MIN), "");
    }

    /// A small deterministic generator (xorshift64): floe-transforms has no property-testing
    /// dependency.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }
    }

    #[test]
    fn no_pattern_text_or_time_panics() {
        const PATTERN_PIECES: &[&str] = &[
            "G", "y", "yy", "yyyy", "Y", "M", "MM", "MMM", "MMMM", "L", "w", "W", "D", "d", "F",
            "E", "EEEE", "u", "a", "H", "k", "K", "h", "m", "s", "S", "SSS", "z", "Z", "X", "XXX",
            "-", ":", ".", " ", "'T'", "''", "'", "q", "é",
        ];
        const TEXT_PIECES: &[&str] = &[
            "0",
            "1",
            "9",
            "12",
            "24",
            "60",
            "999",
            "999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
            "-",
            "+",
            ":",
            ".",
            " ",
            "T",
            "Z",
            "'",
            "UTC",
            "GMT",
            "GMT+",
            "+01:00",
            "AM",
            "PM",
            "Dec",
            "December",
            "Sun",
            "AD",
            "é",
            "\u{1F600}",
            "x",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..50_000 {
            let pattern: String = (0..rng.below(8))
                .map(|_| PATTERN_PIECES[rng.below(PATTERN_PIECES.len())])
                .collect();
            let Ok(format) = DateFormat::new(&pattern) else {
                continue;
            };
            let text: String = (0..rng.below(10))
                .map(|_| TEXT_PIECES[rng.below(TEXT_PIECES.len())])
                .collect();
            if let Some(ms) = format.parse(&text) {
                let _ = format.format(ms);
            }
            let ms = match rng.below(3) {
                0 => rng.next_u64() as i64,
                // Within chrono's range and around its ends (about ±8.2e15 ms).
                1 => (rng.next_u64() as i64) >> 10,
                _ => (rng.next_u64() as i64) >> 20,
            };
            let _ = format.format(ms);
        }
    }
}
