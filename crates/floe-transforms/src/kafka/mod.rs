//! Kafka's built-in transformations and predicates (`org.apache.kafka.connect.transforms`),
//! `$Key` and `$Value` variants where Java has them.

pub mod cast;
pub mod extract_field;
pub mod flatten;
pub mod headers;
pub mod hoist_field;
pub mod insert_field;
pub mod mask_field;
pub mod predicates;
pub mod replace_field;
pub mod routers;
pub mod set_schema_metadata;
pub mod timestamp_converter;
pub mod value_to_key;

use floe_data::SinkRecord;

use crate::plugins::{Build, Plugin, PluginKind};
use crate::props::{KeySpec, Props};
use crate::support::Target;
use crate::{ConfigError, Predicate, TransformError, Transformation};

/// The Kafka release whose transforms these follow (the version they report).
pub const VERSION: &str = "4.3.1";

/// A transformation, boxed.
pub fn boxed<T: Transformation + 'static>(
    t: Result<T, ConfigError>,
) -> Result<Box<dyn Transformation>, ConfigError> {
    t.map(|t| Box::new(t) as Box<dyn Transformation>)
}

/// A predicate, boxed.
pub fn boxed_predicate<T: Predicate + 'static>(
    p: Result<T, ConfigError>,
) -> Result<Box<dyn Predicate>, ConfigError> {
    p.map(|p| Box::new(p) as Box<dyn Predicate>)
}

fn transformation(
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

/// `Filter`: drops every record it is applied to (with a predicate, those that match).
pub struct Filter;

impl Transformation for Filter {
    fn apply(&self, _record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        Ok(None)
    }
}

/// The `$Key`/`$Value` classes of a transform: one builder per target.
macro_rules! keyed {
    ($out:ident, $name:literal, $keys:path, $ty:path) => {
        $out.push(transformation(
            concat!("org.apache.kafka.connect.transforms.", $name, "$Key"),
            $keys,
            |p: &Props| boxed(<$ty>::new(Target::Key, p)),
        ));
        $out.push(transformation(
            concat!("org.apache.kafka.connect.transforms.", $name, "$Value"),
            $keys,
            |p: &Props| boxed(<$ty>::new(Target::Value, p)),
        ));
    };
}

/// Kafka's transformations and predicates.
pub fn plugins() -> Vec<Plugin> {
    let mut v = Vec::with_capacity(32);
    keyed!(v, "Cast", cast::keys, cast::Cast);
    keyed!(
        v,
        "ExtractField",
        extract_field::keys,
        extract_field::ExtractField
    );
    keyed!(v, "Flatten", flatten::keys, flatten::Flatten);
    keyed!(
        v,
        "HeaderFrom",
        headers::header_from_keys,
        headers::HeaderFrom
    );
    keyed!(v, "HoistField", hoist_field::keys, hoist_field::HoistField);
    keyed!(
        v,
        "InsertField",
        insert_field::keys,
        insert_field::InsertField
    );
    keyed!(v, "MaskField", mask_field::keys, mask_field::MaskField);
    keyed!(
        v,
        "ReplaceField",
        replace_field::keys,
        replace_field::ReplaceField
    );
    keyed!(
        v,
        "SetSchemaMetadata",
        set_schema_metadata::keys,
        set_schema_metadata::SetSchemaMetadata
    );
    keyed!(
        v,
        "TimestampConverter",
        timestamp_converter::keys,
        timestamp_converter::TimestampConverter
    );
    v.push(transformation(
        "org.apache.kafka.connect.transforms.DropHeaders",
        headers::drop_headers_keys,
        |p| boxed(headers::DropHeaders::new(p)),
    ));
    v.push(transformation(
        "org.apache.kafka.connect.transforms.InsertHeader",
        headers::insert_header_keys,
        |p| boxed(headers::InsertHeader::new(p)),
    ));
    v.push(transformation(
        "org.apache.kafka.connect.transforms.Filter",
        Vec::new,
        |_| boxed(Ok(Filter)),
    ));
    v.push(transformation(
        "org.apache.kafka.connect.transforms.RegexRouter",
        routers::regex_router_keys,
        |p| boxed(routers::RegexRouter::new(p)),
    ));
    v.push(transformation(
        "org.apache.kafka.connect.transforms.TimestampRouter",
        routers::timestamp_router_keys,
        |p| boxed(routers::TimestampRouter::new(p)),
    ));
    v.push(transformation(
        "org.apache.kafka.connect.transforms.ValueToKey",
        value_to_key::keys,
        |p| boxed(value_to_key::ValueToKey::new(p)),
    ));
    v.extend(predicates::plugins());
    v
}
