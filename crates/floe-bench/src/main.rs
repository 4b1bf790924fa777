//! `floe-ceiling BOOTSTRAP TOPIC RECORDS`: the benchmark's ceiling. Reads `RECORDS` records of
//! `TOPIC` from the beginning of every partition with a plain librdkafka consumer (the same
//! client library Floe uses), discards them, and prints one JSON line:
//! `{"records":…,"bytes":…,"seconds":…}`. Nothing is decoded or written, so no sink that
//! reads through librdkafka can go faster on this machine.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const USAGE: &str = "usage: floe-ceiling BOOTSTRAP TOPIC RECORDS";
const IDLE_LIMIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("floe-ceiling: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<String, String> {
    let [bootstrap, topic, records] = args.as_slice() else {
        return Err(USAGE.to_string());
    };
    let wanted: u64 = records
        .parse()
        .map_err(|e| format!("RECORDS {records:?} is not a count: {e}\n{USAGE}"))?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("floe-ceiling-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| kafka("creating the consumer", e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(|e| kafka(&format!("reading the metadata of {topic}"), e))?;
    let partitions = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("topic {topic} does not exist"))?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        let p = i32::try_from(p).map_err(|_| format!("{topic} has too many partitions"))?;
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| kafka("building the assignment", e))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| kafka(&format!("assigning {topic}"), e))?;

    let (mut count, mut bytes) = (0u64, 0u64);
    let mut start: Option<Instant> = None;
    let mut last_record = Instant::now();
    while count < wanted {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                start.get_or_insert_with(Instant::now);
                count += 1;
                bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
                last_record = Instant::now();
            }
            Some(Err(e)) => return Err(kafka(&format!("reading {topic}"), e)),
            None if last_record.elapsed() > IDLE_LIMIT => {
                return Err(format!(
                    "{topic} ran dry after {count} of {wanted} records (nothing for {}s)",
                    IDLE_LIMIT.as_secs()
                ))
            }
            None => {}
        }
    }
    let seconds = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(serde_json::json!({ "records": count, "bytes": bytes, "seconds": seconds }).to_string())
}

fn kafka(what: &str, e: KafkaError) -> String {
    format!("{what}: {e}")
}
