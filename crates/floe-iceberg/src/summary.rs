//! Snapshot summary keys, identical to the Java sink's (the recovery contract).

use chrono::{DateTime, Timelike, Utc};

/// The commit id of the cycle that produced the snapshot.
pub const COMMIT_ID: &str = "kafka.connect.commit-id";
/// `<connector>-<task>` of the committer.
pub const TASK_ID: &str = "kafka.connect.task-id";
/// Every record with an earlier Kafka timestamp is in the table.
pub const VALID_THROUGH_TS: &str = "kafka.connect.valid-through-ts";

/// Java `OffsetDateTime.toString()` in UTC for epoch milliseconds: seconds are omitted when
/// seconds and fraction are zero; the fraction is printed in groups of three digits.
pub fn format_timestamp(epoch_ms: i64) -> String {
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(epoch_ms) else {
        return epoch_ms.to_string();
    };
    let millis = t.nanosecond() / 1_000_000;
    if t.second() == 0 && millis == 0 {
        t.format("%Y-%m-%dT%H:%MZ").to_string()
    } else if millis == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        format!("{}.{millis:03}Z", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_java_offset_date_time() {
        assert_eq!(
            format_timestamp(1_721_306_096_789),
            "2024-07-18T12:34:56.789Z"
        );
        assert_eq!(format_timestamp(1_721_306_096_000), "2024-07-18T12:34:56Z");
        assert_eq!(format_timestamp(1_721_306_040_000), "2024-07-18T12:34Z");
    }
}
