//! The Iceberg sink's own transforms (`org.apache.iceberg.connect.transforms`).

pub mod copy_value;
pub mod debezium;
pub mod dms;
pub mod json_to_map;
pub mod kafka_metadata;

use crate::kafka::boxed;
use crate::plugins::{Build, Plugin, PluginKind};
use crate::props::KeySpec;

/// The Iceberg release whose transforms these follow.
pub const VERSION: &str = "1.12.0";

/// `_cdc` and its fields, as `CdcConstants` names them.
pub const CDC: &str = "_cdc";

fn plugin(
    class: &'static str,
    keys: fn() -> Vec<KeySpec>,
    build: crate::plugins::BuildTransformation,
) -> Plugin {
    Plugin {
        class,
        kind: PluginKind::Transformation,
        version: VERSION,
        keys,
        build: Build::Transformation(build),
    }
}

/// The Iceberg sink's transforms.
pub fn plugins() -> Vec<Plugin> {
    vec![
        plugin(
            "org.apache.iceberg.connect.transforms.CopyValue",
            copy_value::keys,
            |p| boxed(copy_value::CopyValue::new(p)),
        ),
        plugin(
            "org.apache.iceberg.connect.transforms.DebeziumTransform",
            debezium::keys,
            |p| boxed(debezium::DebeziumTransform::new(p)),
        ),
        plugin(
            "org.apache.iceberg.connect.transforms.DmsTransform",
            Vec::new,
            |_| boxed(Ok(dms::DmsTransform)),
        ),
        plugin(
            "org.apache.iceberg.connect.transforms.JsonToMapTransform",
            json_to_map::keys,
            |p| boxed(json_to_map::JsonToMapTransform::new(p)),
        ),
        plugin(
            "org.apache.iceberg.connect.transforms.KafkaMetadataTransform",
            kafka_metadata::keys,
            |p| boxed(kafka_metadata::KafkaMetadataTransform::new(p)),
        ),
    ]
}
