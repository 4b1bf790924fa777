//! The dead-letter queue of a sink task (`errors.deadletterqueue.*`): records that failed
//! conversion under `errors.tolerance=all` go there with their original key, value, headers and
//! timestamp, and, when enabled, the `__connect.errors.*` context headers. Each record is
//! acknowledged by Kafka before its offset can be committed, so nothing is dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::metrics::{ClientMetrics, StatsContext, CLIENT_STATISTICS_INTERVAL_MS};

use crate::error::TaskError;
use crate::kafka_config::client_config;
use crate::plugin::ConfigMap;
use crate::worker_config::{strip_prefix, WorkerConfig};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A record that could not be converted, and why.
pub struct Failure {
    pub stage: &'static str,
    pub class: &'static str,
    pub exception_class: &'static str,
    pub message: String,
    pub record: OwnedMessage,
}

/// The DLQ producer of one task.
pub struct DeadLetterQueue {
    producer: FutureProducer<StatsContext>,
    topic: String,
    context_headers: bool,
    connector: String,
    task_id: u32,
}

impl DeadLetterQueue {
    /// The task's DLQ, if `errors.deadletterqueue.topic.name` is set; creates the topic (one
    /// partition) when it is missing.
    pub async fn open(
        worker: &WorkerConfig,
        config: &ConfigMap,
        connector: &str,
        task_id: u32,
    ) -> Result<Option<DeadLetterQueue>, TaskError> {
        let Some(topic) = config
            .get("errors.deadletterqueue.topic.name")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        // As Java: the producer from `producer.*` and the connector's `producer.override.*`, the
        // admin client from the worker's own keys, `admin.*` and `admin.override.*`.
        let mut props: BTreeMap<String, String> = worker.with_prefix("producer.");
        props.extend(strip_prefix(config, "producer.override."));
        props.insert("bootstrap.servers".into(), worker.bootstrap_servers.clone());
        let mut admin_props = worker.admin_props();
        admin_props.extend(strip_prefix(config, "admin.override."));
        props.insert(
            "client.id".into(),
            format!("connector-dlq-producer-{connector}-{task_id}"),
        );
        props.entry("acks".into()).or_insert_with(|| "all".into());
        let replication: i32 = config
            .get("errors.deadletterqueue.topic.replication.factor")
            .and_then(|r| r.trim().parse().ok())
            .unwrap_or(3);
        let admin: AdminClient<DefaultClientContext> = client_config(&admin_props)
            .map_err(|e| TaskError::connect(format!("Failed to create the DLQ admin client: {e}")))?
            .create()
            .map_err(|e| {
                TaskError::connect(format!("Failed to create the DLQ admin client: {e}"))
            })?;
        let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(replication));
        let created = admin
            .create_topics(
                [&new],
                &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
            )
            .await
            .map_err(|e| TaskError::connect(format!("Failed to create DLQ topic {topic}: {e}")))?;
        for r in created {
            match r {
                Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                // A cluster with fewer brokers than the replication factor: fall back to its default.
                Err((_, rdkafka::types::RDKafkaErrorCode::InvalidReplicationFactor)) => {
                    let fallback = NewTopic::new(&topic, 1, TopicReplication::Fixed(-1));
                    let _ = admin
                        .create_topics(
                            [&fallback],
                            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
                        )
                        .await;
                }
                Err((t, code)) => {
                    return Err(TaskError::connect(format!(
                        "Failed to create DLQ topic {t}: {code}"
                    )))
                }
            }
        }
        // Its bytes and connections go to /metrics (kafka_producer_*{clientId}), as Java's.
        props
            .entry("statistics.interval.ms".into())
            .or_insert_with(|| CLIENT_STATISTICS_INTERVAL_MS.to_string());
        let client_id = format!("connector-dlq-producer-{connector}-{task_id}");
        let producer: FutureProducer<StatsContext> = client_config(&props)
            .map_err(|e| TaskError::connect(format!("Failed to create the DLQ producer: {e}")))?
            .create_with_context(StatsContext(ClientMetrics::register(true, &client_id)))
            .map_err(|e| TaskError::connect(format!("Failed to create the DLQ producer: {e}")))?;
        let context_headers = config
            .get("errors.deadletterqueue.context.headers.enable")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Ok(Some(DeadLetterQueue {
            producer,
            topic,
            context_headers,
            connector: connector.to_string(),
            task_id,
        }))
    }

    /// Writes the failed record to the DLQ and waits for Kafka to acknowledge it.
    pub async fn report(&self, failure: &Failure) -> Result<(), TaskError> {
        let r = &failure.record;
        let mut headers = OwnedHeaders::new();
        if let Some(original) = r.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        if self.context_headers {
            let partition = r.partition().to_string();
            let offset = r.offset().to_string();
            let task = self.task_id.to_string();
            let context: [(&str, &str); 9] = [
                ("__connect.errors.topic", r.topic()),
                ("__connect.errors.partition", &partition),
                ("__connect.errors.offset", &offset),
                ("__connect.errors.connector.name", &self.connector),
                ("__connect.errors.task.id", &task),
                ("__connect.errors.stage", failure.stage),
                ("__connect.errors.class.name", failure.class),
                (
                    "__connect.errors.exception.class.name",
                    failure.exception_class,
                ),
                ("__connect.errors.exception.message", &failure.message),
            ];
            for (k, v) in context {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let trace = format!("{}: {}", failure.exception_class, failure.message);
            headers = headers.insert(Header {
                key: "__connect.errors.exception.stacktrace",
                value: Some(&trace),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(k) = r.key() {
            record = record.key(k);
        }
        if let Some(v) = r.payload() {
            record = record.payload(v);
        }
        if let Some(ts) = r.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        self.producer.send(record, TIMEOUT).await.map_err(|(e, _)| {
            TaskError::connect(format!(
                "Failed to write record (topic {}, partition {}, offset {}) to the dead letter queue {}: {e}",
                r.topic(),
                r.partition(),
                r.offset(),
                self.topic
            ))
        })?;
        Ok(())
    }
}
