use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::Value;

/// Shared, immutable schema. Converters cache schemas and hand out clones of the `Arc`.
pub type SchemaRef = Arc<Schema>;

/// Names of the Connect logical types (`org.apache.kafka.connect.data.*`).
pub mod logical {
    /// Decimal: bytes holding a big-endian two's-complement unscaled value; parameter `scale`.
    pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
    /// Date: int32 days since the epoch.
    pub const DATE: &str = "org.apache.kafka.connect.data.Date";
    /// Time: int32 milliseconds of the day.
    pub const TIME: &str = "org.apache.kafka.connect.data.Time";
    /// Timestamp: int64 milliseconds since the epoch.
    pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
    /// The decimal parameter holding the scale.
    pub const SCALE_PARAM: &str = "scale";
}

/// The Connect schema types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl SchemaType {
    /// The lower-case name used by the JsonConverter schema format.
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float32",
            SchemaType::Float64 => "float64",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    /// Parses a JsonConverter type name.
    pub fn from_name(name: &str) -> Option<SchemaType> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float32" => SchemaType::Float32,
            "float64" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A struct field: name plus schema. Its position is its index in [`Schema::fields`].
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: SchemaRef,
}

/// A Connect schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub schema_type: SchemaType,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub default: Option<Value>,
    /// Struct fields, in order.
    pub fields: Vec<Field>,
    /// Array element schema.
    pub items: Option<SchemaRef>,
    /// Map key schema.
    pub keys: Option<SchemaRef>,
    /// Map value schema.
    pub values: Option<SchemaRef>,
}

impl Schema {
    /// A primitive schema of the given type.
    pub fn new(schema_type: SchemaType) -> Schema {
        Schema {
            schema_type,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            default: None,
            fields: Vec::new(),
            items: None,
            keys: None,
            values: None,
        }
    }

    /// Marks the schema optional.
    pub fn optional(mut self) -> Schema {
        self.optional = true;
        self
    }

    /// Sets the schema name (used for logical types).
    pub fn named(mut self, name: &str) -> Schema {
        self.name = Some(name.to_string());
        self
    }

    /// A struct schema with the given fields.
    pub fn structure(fields: Vec<Field>) -> Schema {
        let mut s = Schema::new(SchemaType::Struct);
        s.fields = fields;
        s
    }

    /// An array schema.
    pub fn array(items: Schema) -> Schema {
        let mut s = Schema::new(SchemaType::Array);
        s.items = Some(Arc::new(items));
        s
    }

    /// A map schema.
    pub fn map(keys: Schema, values: Schema) -> Schema {
        let mut s = Schema::new(SchemaType::Map);
        s.keys = Some(Arc::new(keys));
        s.values = Some(Arc::new(values));
        s
    }

    /// A Connect decimal schema with the given scale.
    pub fn decimal(scale: i32) -> Schema {
        let mut s = Schema::new(SchemaType::Bytes).named(logical::DECIMAL);
        s.version = Some(1);
        s.parameters
            .insert(logical::SCALE_PARAM.to_string(), scale.to_string());
        s
    }

    /// The logical type name, if this is one of the Connect logical types.
    pub fn logical_name(&self) -> Option<&str> {
        match self.name.as_deref() {
            Some(n @ (logical::DECIMAL | logical::DATE | logical::TIME | logical::TIMESTAMP)) => {
                Some(n)
            }
            _ => None,
        }
    }

    /// The decimal scale parameter, if this is a decimal schema.
    pub fn decimal_scale(&self) -> Option<i32> {
        if self.name.as_deref() != Some(logical::DECIMAL) {
            return None;
        }
        self.parameters
            .get(logical::SCALE_PARAM)
            .and_then(|s| s.parse().ok())
    }

    /// Looks a struct field up by name.
    pub fn field(&self, name: &str) -> Option<(usize, &Field)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }
}

impl Field {
    /// A field with the given name and schema.
    pub fn new(name: &str, schema: Schema) -> Field {
        Field {
            name: name.to_string(),
            schema: Arc::new(schema),
        }
    }
}
