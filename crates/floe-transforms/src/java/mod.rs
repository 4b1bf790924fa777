//! The parts of the Java platform the transforms' behaviour depends on: regular expressions and
//! their replacement strings (`java.util.regex`), `java.text.SimpleDateFormat` in UTC, the
//! `toString` forms of numbers, and Connect's `Values.parseString`.

pub mod date_format;
pub mod number;
pub mod regex;
pub mod values;
