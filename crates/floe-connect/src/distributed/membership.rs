//! Membership of the worker group through Kafka's group coordinator, with protocol type
//! `connect` — the classic `FindCoordinator` / `JoinGroup` / `SyncGroup` / `Heartbeat` /
//! `LeaveGroup` exchange (librdkafka offers only protocol type `consumer`, so this speaks the
//! wire protocol itself, with the `kafka-protocol` crate's message codecs).
//!
//! The coordinator elects the leader and carries the leader's assignment to every member; what
//! a generation means is decided by a [`GroupListener`] (the distributed herder).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use super::protocol::{Assignment, MemberMetadata, PROTOCOL_NAME};
use crate::kafka_security::Security;
use crate::wire::{find_coordinator, Conn, WireError as GroupError};

const PROTOCOL_TYPE: &str = "connect";
const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_GROUP_VERSION: i16 = 3;

// Kafka error codes the member reacts to.
const NONE: i16 = 0;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// The group settings (`group.id`, `session.timeout.ms`, …).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub bootstrap_servers: Vec<String>,
    pub group_id: String,
    pub client_id: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// TLS and SASL for the connection to the group coordinator.
    pub security: Security,
}

/// What the distributed herder does at each step of a generation.
#[async_trait]
pub trait GroupListener: Send + Sync {
    /// The metadata to offer when joining.
    async fn metadata(&self) -> MemberMetadata;
    /// Leader only: the assignment of every member.
    async fn assign(
        &self,
        leader_id: &str,
        generation: i32,
        members: BTreeMap<String, MemberMetadata>,
    ) -> BTreeMap<String, Assignment>;
    /// This member's assignment for `generation`.
    async fn assigned(&self, member_id: &str, generation: i32, assignment: Assignment);
}

/// Handle to a running membership: ask for a rebalance, or leave.
#[derive(Clone)]
pub struct Membership {
    rejoin: Arc<Notify>,
    stop: watch::Sender<bool>,
    contact: Arc<StdMutex<Contact>>,
}

/// When the member last had an answer from its group coordinator, and the last failure since.
#[derive(Debug, Default)]
struct Contact {
    answered: Option<Instant>,
    failure: Option<String>,
    /// Between asking to join (or learning the group rebalances) and getting an assignment.
    joining: bool,
}

impl Contact {
    fn answered(contact: &StdMutex<Contact>) {
        if let Ok(mut c) = contact.lock() {
            c.answered = Some(Instant::now());
            c.failure = None;
        }
    }

    fn failed(contact: &StdMutex<Contact>, why: &GroupError) {
        if let Ok(mut c) = contact.lock() {
            c.failure = Some(why.to_string());
        }
    }
}

impl Membership {
    /// Whether the member is (re)joining its group: from the rebalance it starts or learns of
    /// to the assignment that ends it.
    pub fn is_joining(&self) -> bool {
        self.contact.lock().map(|c| c.joining).unwrap_or(false)
    }

    /// Why this member is not in its group, when it has had no answer from the group
    /// coordinator for longer than `limit` (a rebalance may keep a join waiting that long).
    pub fn out_of_group(&self, group: &str, limit: Duration) -> Option<String> {
        let c = self.contact.lock().ok()?;
        let silent = c.answered.map(|t| t.elapsed());
        if silent.is_some_and(|s| s <= limit) {
            return None;
        }
        let since = match silent {
            Some(s) => format!("for {} s", s.as_secs()),
            None => "since it started".to_string(),
        };
        let why = c
            .failure
            .as_deref()
            .map(|f| format!(" (last error: {f})"))
            .unwrap_or_default();
        Some(format!(
            "Worker is not a member of its group {group}: no answer from the group coordinator {since}{why}"
        ))
    }

    /// Asks the group to rebalance (this member rejoins).
    pub fn request_rejoin(&self) {
        self.rejoin.notify_one();
    }

    /// Leaves the group; the returned future of [`Membership::start`] then ends.
    pub fn leave(&self) {
        let _ = self.stop.send(true);
    }

    /// Joins the group and stays in it until [`Membership::leave`].
    pub fn start(
        config: GroupConfig,
        listener: Arc<dyn GroupListener>,
    ) -> (Membership, tokio::task::JoinHandle<()>) {
        let rejoin = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let contact = Arc::new(StdMutex::new(Contact {
            answered: Some(Instant::now()),
            failure: None,
            joining: true,
        }));
        let handle = tokio::spawn(run(
            config,
            listener,
            rejoin.clone(),
            stop_rx,
            contact.clone(),
        ));
        (
            Membership {
                rejoin,
                stop,
                contact,
            },
            handle,
        )
    }
}

struct Member {
    config: GroupConfig,
    conn: Option<Conn>,
    member_id: String,
    generation: i32,
}

async fn run(
    config: GroupConfig,
    listener: Arc<dyn GroupListener>,
    rejoin: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    contact: Arc<StdMutex<Contact>>,
) {
    let mut member = Member {
        config,
        conn: None,
        member_id: String::new(),
        generation: -1,
    };
    let mut backoff = Duration::from_millis(100);
    'outer: loop {
        if *stop.borrow() {
            break;
        }
        if let Ok(mut c) = contact.lock() {
            c.joining = true;
        }
        match member.join_and_sync(listener.as_ref()).await {
            Ok(()) => {
                Contact::answered(&contact);
                if let Ok(mut c) = contact.lock() {
                    c.joining = false;
                }
                backoff = Duration::from_millis(100)
            }
            Err(e) => {
                Contact::failed(&contact, &e);
                warn!(group = %member.config.group_id, error = %e, "joining the worker group failed; retrying");
                member.conn = None;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        // Heartbeat until the group rebalances or this member is asked to rejoin or leave.
        loop {
            tokio::select! {
                _ = tokio::time::sleep(member.config.heartbeat_interval) => {}
                _ = rejoin.notified() => {
                    debug!("rejoining the worker group on request");
                    continue 'outer;
                }
                _ = stop.changed() => break 'outer,
            }
            let beat = member.heartbeat().await;
            match &beat {
                Ok(_) => Contact::answered(&contact),
                Err(e) => Contact::failed(&contact, e),
            }
            match beat {
                Ok(NONE) => {}
                Ok(REBALANCE_IN_PROGRESS) => {
                    debug!("worker group is rebalancing");
                    continue 'outer;
                }
                Ok(UNKNOWN_MEMBER_ID) => {
                    member.member_id.clear();
                    continue 'outer;
                }
                Ok(code) => {
                    debug!(code, "heartbeat refused; rejoining");
                    if matches!(code, NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE) {
                        member.conn = None;
                    }
                    continue 'outer;
                }
                Err(e) => {
                    warn!(error = %e, "heartbeat failed; reconnecting");
                    member.conn = None;
                    continue 'outer;
                }
            }
        }
    }
    if let Err(e) = member.leave().await {
        warn!(error = %e, "leaving the worker group failed");
    } else {
        info!(group = %member.config.group_id, "left the worker group");
    }
}

impl Member {
    async fn coordinator(&mut self) -> Result<&mut Conn, GroupError> {
        if self.conn.is_none() {
            self.conn = Some(self.find_coordinator().await?);
        }
        self.conn.as_mut().ok_or_else(|| GroupError::Connect {
            addr: "coordinator".into(),
            reason: "no connection".into(),
        })
    }

    async fn find_coordinator(&self) -> Result<Conn, GroupError> {
        find_coordinator(
            &self.config.bootstrap_servers,
            &self.config.group_id,
            &self.config.client_id,
            &self.config.security,
        )
        .await
    }

    async fn join_and_sync(&mut self, listener: &dyn GroupListener) -> Result<(), GroupError> {
        let metadata = listener.metadata().await.encode();
        let group = self.config.group_id.clone();
        let joined: JoinGroupResponse = loop {
            let mut protocol = JoinGroupRequestProtocol::default();
            protocol.name = StrBytes::from_static_str(PROTOCOL_NAME);
            protocol.metadata = Bytes::from(metadata.clone());
            let mut request = JoinGroupRequest::default();
            request.group_id = GroupId(StrBytes::from_string(group.clone()));
            request.session_timeout_ms = millis(self.config.session_timeout);
            request.rebalance_timeout_ms = millis(self.config.rebalance_timeout);
            request.member_id = StrBytes::from_string(self.member_id.clone());
            request.protocol_type = StrBytes::from_static_str(PROTOCOL_TYPE);
            request.protocols = vec![protocol];
            let response: JoinGroupResponse = self
                .coordinator()
                .await?
                .call(ApiKey::JoinGroup, JOIN_GROUP_VERSION, &request)
                .await?;
            match response.error_code {
                NONE => break response,
                MEMBER_ID_REQUIRED => self.member_id = response.member_id.to_string(),
                UNKNOWN_MEMBER_ID => self.member_id.clear(),
                COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR => {
                    self.conn = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                REBALANCE_IN_PROGRESS => tokio::time::sleep(Duration::from_millis(100)).await,
                code => {
                    return Err(GroupError::Kafka {
                        api: "JoinGroup",
                        group,
                        code,
                    })
                }
            }
        };
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        let leader = joined.leader.to_string();
        info!(
            member = %self.member_id,
            generation = self.generation,
            leader = %leader,
            members = joined.members.len(),
            "joined the worker group"
        );
        let mut assignments = Vec::new();
        if leader == self.member_id {
            let mut members = BTreeMap::new();
            for m in &joined.members {
                match MemberMetadata::decode(&m.metadata) {
                    Ok(meta) => {
                        members.insert(m.member_id.to_string(), meta);
                    }
                    Err(e) => {
                        warn!(member = %m.member_id.as_str(), error = %e, "ignoring a member with unreadable metadata")
                    }
                }
            }
            for (member_id, assignment) in listener.assign(&leader, self.generation, members).await
            {
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = StrBytes::from_string(member_id);
                a.assignment = Bytes::from(assignment.encode());
                assignments.push(a);
            }
        }
        let mut request = SyncGroupRequest::default();
        request.group_id = GroupId(StrBytes::from_string(group.clone()));
        request.generation_id = self.generation;
        request.member_id = StrBytes::from_string(self.member_id.clone());
        request.assignments = assignments;
        let synced: SyncGroupResponse = self
            .coordinator()
            .await?
            .call(ApiKey::SyncGroup, SYNC_GROUP_VERSION, &request)
            .await?;
        if synced.error_code != NONE {
            if synced.error_code == UNKNOWN_MEMBER_ID {
                self.member_id.clear();
            }
            return Err(GroupError::Kafka {
                api: "SyncGroup",
                group,
                code: synced.error_code,
            });
        }
        let assignment = Assignment::decode(&synced.assignment).map_err(|e| GroupError::Io {
            api: "SyncGroup",
            addr: "coordinator".into(),
            reason: e.to_string(),
        })?;
        listener
            .assigned(&self.member_id, self.generation, assignment)
            .await;
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<i16, GroupError> {
        let mut request = HeartbeatRequest::default();
        request.group_id = GroupId(StrBytes::from_string(self.config.group_id.clone()));
        request.generation_id = self.generation;
        request.member_id = StrBytes::from_string(self.member_id.clone());
        let response: HeartbeatResponse = self
            .coordinator()
            .await?
            .call(ApiKey::Heartbeat, HEARTBEAT_VERSION, &request)
            .await?;
        if response.error_code == ILLEGAL_GENERATION {
            return Ok(REBALANCE_IN_PROGRESS);
        }
        Ok(response.error_code)
    }

    async fn leave(&mut self) -> Result<(), GroupError> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let mut who = MemberIdentity::default();
        who.member_id = StrBytes::from_string(self.member_id.clone());
        let mut request = LeaveGroupRequest::default();
        request.group_id = GroupId(StrBytes::from_string(self.config.group_id.clone()));
        request.members = vec![who];
        let _: LeaveGroupResponse = self
            .coordinator()
            .await?
            .call(ApiKey::LeaveGroup, LEAVE_GROUP_VERSION, &request)
            .await?;
        Ok(())
    }
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
