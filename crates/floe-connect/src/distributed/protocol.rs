//! The byte layout of the Connect group protocol: the member metadata a worker offers in
//! `JoinGroup` and the assignment the leader hands out in `SyncGroup`.
//!
//! Floe offers the `compatible` protocol (version 1, incremental cooperative), laid out as the
//! Java worker's `IncrementalCooperativeConnectProtocol` lays it out, so tooling that decodes a
//! Connect group's metadata reads Floe's too:
//!
//! ```text
//! metadata   = version:INT16 url:STRING config_offset:INT64 allocation:NULLABLE_BYTES
//! allocation = assignment (the worker's previous one), or null
//! assignment = version:INT16 error:INT16 leader:STRING leader_url:STRING config_offset:INT64
//!              assigned:ARRAY<{connector:STRING tasks:ARRAY<INT32>}>   (task -1 = the connector)
//!              revoked:ARRAY<same>  delay:INT32
//! ```

use std::collections::BTreeSet;

/// The protocol name Floe offers (`IncrementalCooperativeConnectProtocol`, version 1).
pub const PROTOCOL_NAME: &str = "compatible";
/// Its version number, the first field of metadata and assignments.
pub const PROTOCOL_VERSION: i16 = 1;
/// The task number that stands for the connector itself.
pub const CONNECTOR_TASK: i32 = -1;

/// One unit of work: a connector (`task == None`) or one of its tasks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unit {
    pub connector: String,
    pub task: Option<u32>,
}

impl Unit {
    pub fn connector(name: &str) -> Unit {
        Unit {
            connector: name.to_string(),
            task: None,
        }
    }

    pub fn task(name: &str, task: u32) -> Unit {
        Unit {
            connector: name.to_string(),
            task: Some(task),
        }
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.task {
            Some(t) => write!(f, "{}-{t}", self.connector),
            None => write!(f, "{}", self.connector),
        }
    }
}

/// What a member tells the leader when it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// The member's REST URL (`http://host:port/`).
    pub url: String,
    /// How far the member has read the config topic.
    pub config_offset: i64,
    /// The member's assignment from the previous generation.
    pub previous: Option<Assignment>,
}

/// What the leader hands a member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// 0, or 1 (`CONFIG_MISMATCH`) when the leader could not read the config topic far enough.
    pub error: i16,
    pub leader: String,
    pub leader_url: String,
    /// The config topic offset the assignment was computed at.
    pub config_offset: i64,
    pub assigned: BTreeSet<Unit>,
    pub revoked: BTreeSet<Unit>,
    /// Milliseconds until the leader wants the group to rebalance again (held units).
    pub delay: i32,
}

/// A malformed metadata or assignment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed Connect protocol {what}: {reason}")]
pub struct ProtocolError {
    pub what: &'static str,
    pub reason: String,
}

impl MemberMetadata {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_i16(&mut out, PROTOCOL_VERSION);
        put_string(&mut out, &self.url);
        put_i64(&mut out, self.config_offset);
        match &self.previous {
            Some(a) => {
                let bytes = a.encode();
                put_i32(&mut out, bytes.len() as i32);
                out.extend_from_slice(&bytes);
            }
            None => put_i32(&mut out, -1),
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<MemberMetadata, ProtocolError> {
        let mut r = Reader::new(bytes, "metadata");
        let version = r.i16()?;
        let url = r.string()?;
        let config_offset = r.i64()?;
        let previous = if version >= 1 && !r.is_empty() {
            match r.nullable_bytes()? {
                Some(b) => Some(Assignment::decode(b)?),
                None => None,
            }
        } else {
            None
        };
        Ok(MemberMetadata {
            url,
            config_offset,
            previous,
        })
    }
}

impl Assignment {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_i16(&mut out, PROTOCOL_VERSION);
        put_i16(&mut out, self.error);
        put_string(&mut out, &self.leader);
        put_string(&mut out, &self.leader_url);
        put_i64(&mut out, self.config_offset);
        put_units(&mut out, &self.assigned);
        put_units(&mut out, &self.revoked);
        put_i32(&mut out, self.delay);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Assignment, ProtocolError> {
        let mut r = Reader::new(bytes, "assignment");
        let version = r.i16()?;
        let error = r.i16()?;
        let leader = r.string()?;
        let leader_url = r.string()?;
        let config_offset = r.i64()?;
        let assigned = r.units()?;
        let (revoked, delay) = if version >= 1 {
            (r.units()?, r.i32()?)
        } else {
            (BTreeSet::new(), 0)
        };
        Ok(Assignment {
            error,
            leader,
            leader_url,
            config_offset,
            assigned,
            revoked,
            delay,
        })
    }
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    put_i16(out, bytes.len() as i16);
    out.extend_from_slice(bytes);
}

/// Units grouped by connector, tasks in order, the connector itself as task -1.
fn put_units(out: &mut Vec<u8>, units: &BTreeSet<Unit>) {
    let mut grouped: Vec<(&str, Vec<i32>)> = Vec::new();
    for u in units {
        let task = u.task.map(|t| t as i32).unwrap_or(CONNECTOR_TASK);
        match grouped.last_mut() {
            Some((c, tasks)) if *c == u.connector => tasks.push(task),
            _ => grouped.push((&u.connector, vec![task])),
        }
    }
    put_i32(out, grouped.len() as i32);
    for (connector, tasks) in grouped {
        put_string(out, connector);
        put_i32(out, tasks.len() as i32);
        for t in tasks {
            put_i32(out, t);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { bytes, what }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.bytes.len() < n {
            return Err(ProtocolError {
                what: self.what,
                reason: format!("needs {n} more bytes, has {}", self.bytes.len()),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, ProtocolError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, ProtocolError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, ProtocolError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn string(&mut self) -> Result<String, ProtocolError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(String::new());
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtocolError {
            what: self.what,
            reason: "a string is not UTF-8".into(),
        })
    }

    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, ProtocolError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }

    fn units(&mut self) -> Result<BTreeSet<Unit>, ProtocolError> {
        let mut units = BTreeSet::new();
        let count = self.i32()?;
        for _ in 0..count.max(0) {
            let connector = self.string()?;
            let tasks = self.i32()?;
            for _ in 0..tasks.max(0) {
                let t = self.i32()?;
                units.insert(if t < 0 {
                    Unit::connector(&connector)
                } else {
                    Unit::task(&connector, t as u32)
                });
            }
        }
        Ok(units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Assignment {
        Assignment {
            error: 0,
            leader: "member-1".into(),
            leader_url: "http://w1:8083/".into(),
            config_offset: 42,
            assigned: [
                Unit::connector("ice"),
                Unit::task("ice", 0),
                Unit::task("ice", 2),
            ]
            .into_iter()
            .collect(),
            revoked: [Unit::task("other", 1)].into_iter().collect(),
            delay: 5000,
        }
    }

    #[test]
    fn assignment_layout_is_javas() {
        let a = Assignment {
            error: 0,
            leader: "m".into(),
            leader_url: "u".into(),
            config_offset: 7,
            assigned: [Unit::connector("c"), Unit::task("c", 1)]
                .into_iter()
                .collect(),
            revoked: BTreeSet::new(),
            delay: 0,
        };
        let expected: Vec<u8> = [
            &[0, 1][..],   // version
            &[0, 0],       // error
            &[0, 1, b'm'], // leader
            &[0, 1, b'u'], // leader url
            &[0, 0, 0, 0, 0, 0, 0, 7],
            &[0, 0, 0, 1], // one connector
            &[0, 1, b'c'],
            &[0, 0, 0, 2], // two entries: the connector (-1) and task 1
            &[0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 1],
            &[0, 0, 0, 0], // nothing revoked
            &[0, 0, 0, 0], // no delay
        ]
        .concat();
        assert_eq!(a.encode(), expected);
        assert_eq!(Assignment::decode(&expected), Ok(a));
    }

    #[test]
    fn metadata_round_trips_with_and_without_a_previous_assignment() {
        for previous in [None, Some(sample())] {
            let m = MemberMetadata {
                url: "http://127.0.0.1:8083/".into(),
                config_offset: 12,
                previous,
            };
            assert_eq!(MemberMetadata::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn eager_metadata_has_no_allocation() {
        let mut bytes = vec![0, 0];
        bytes.extend_from_slice(&[0, 1, b'u']);
        bytes.extend_from_slice(&5i64.to_be_bytes());
        let m = MemberMetadata::decode(&bytes).expect("v0 metadata");
        assert_eq!(m.url, "u");
        assert_eq!(m.config_offset, 5);
        assert_eq!(m.previous, None);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = sample().encode();
        let err = Assignment::decode(&bytes[..bytes.len() - 2]).unwrap_err();
        assert_eq!(err.what, "assignment");
    }
}
