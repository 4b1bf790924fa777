//! The converters read bytes from Kafka topics anyone can write to: whatever the bytes, each
//! answers a value or an error, never a panic, in bounded time and memory. Arbitrary bytes and
//! valid records with bytes changed, inserted or cut, for every converter. The case count
//! follows proptest's `PROPTEST_CASES`: a short run by default (CI), a long one by hand
//! (docs/security.md, "Untrusted input").

use std::collections::HashMap;
use std::sync::Arc;

use floe_convert::registry::{RegisteredSchema, SchemaSource};
use floe_convert::{
    AvroConverter, Converter, JsonConverter, JsonSchemaConverter, ProtobufConverter,
    StringConverter,
};
use proptest::prelude::*;

struct Fixed(HashMap<u32, RegisteredSchema>);

impl SchemaSource for Fixed {
    fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, String> {
        self.0
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("schema id {id} not found"))
    }
}

fn source(schema_type: &str, schema: &str) -> Arc<Fixed> {
    Arc::new(Fixed(HashMap::from([(
        1,
        RegisteredSchema {
            id: 1,
            schema_type: schema_type.into(),
            schema: schema.into(),
            references: vec![],
        },
    )])))
}

const AVRO: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"id","type":"long"},
    {"name":"note","type":["null","string"],"default":null},
    {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
    {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
    {"name":"day","type":{"type":"int","logicalType":"date"}},
    {"name":"tags","type":{"type":"array","items":"string"}},
    {"name":"attrs","type":{"type":"map","values":["null","double"]}},
    {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},
    {"name":"digest","type":{"type":"fixed","name":"Digest","size":4}},
    {"name":"next","type":["null",{"type":"record","name":"Line","fields":[{"name":"sku","type":"string"}]}]}
]}"#;

/// A valid datum of [`AVRO`]: id 7, note "n", amount 1.00, ts 5, day 3, tags ["a"],
/// attrs {"x": 1.5}, kind B, digest "abcd", next {sku "s"}.
fn avro_datum() -> Vec<u8> {
    let mut d = vec![
        14, 2, 2, b'n', 4, 0, 100, 10, 6, 2, 2, b'a', 0, 2, 2, b'x', 2,
    ];
    d.extend_from_slice(&1.5f64.to_le_bytes());
    d.extend_from_slice(&[0, 2, b'a', b'b', b'c', b'd', 2, 2, b's']);
    d
}

const PROTO: &str = r#"
    syntax = "proto3";
    package shop;
    message Order {
      int64 id = 1;
      sint32 qty = 2;
      string note = 3;
      repeated string tags = 4;
      map<string, int64> counts = 5;
      message Line { string sku = 1; double price = 2; }
      repeated Line lines = 6;
      oneof payment { string card = 7; bytes iban = 8; }
      enum Kind { A = 0; B = 1; }
      Kind kind = 9;
      fixed64 f = 10;
      float ratio = 11;
    }
"#;

/// A valid Order: message index 0, id 7, qty -2, note "n", tags ["a"], lines [{sku "s"}],
/// kind B.
const PROTO_BODY: &[u8] = &[
    0, 8, 7, 16, 3, 26, 1, b'n', 34, 1, b'a', 50, 3, 10, 1, b's', 72, 1,
];

const JSON_SCHEMA: &str = r#"{"type":"object","title":"shop.Order","properties":{
    "id":{"type":"integer"},
    "qty":{"type":"integer","connect.type":"int32"},
    "note":{"oneOf":[{"type":"null"},{"type":"string"}]},
    "amount":{"type":"number","title":"org.apache.kafka.connect.data.Decimal","connect.type":"bytes","connect.parameters":{"scale":"2"}},
    "tags":{"type":"array","items":{"type":"string"}},
    "attrs":{"type":"object","connect.type":"map","additionalProperties":{"type":"integer"}}
},"required":["id","qty","amount","tags","attrs"]}"#;

const JSON_BODY: &[u8] =
    br#"{"id":1,"qty":2,"note":null,"amount":12.345,"tags":["a"],"attrs":{"x":5}}"#;

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// `valid` with some bytes changed, some inserted and the end cut somewhere.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (
        proptest::collection::vec((0..len.max(1), any::<u8>()), 0..4),
        proptest::collection::vec((0..=len, any::<u8>()), 0..3),
        0..=len + 3,
    )
        .prop_map(move |(changes, inserts, cut)| {
            let mut v = valid.clone();
            for (i, b) in changes {
                if let Some(x) = v.get_mut(i) {
                    *x = b;
                }
            }
            for (i, b) in inserts {
                v.insert(i.min(v.len()), b);
            }
            v.truncate(cut);
            v
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..256)
}

/// Converting never panics; the answer (a value or an error) is all that is asked.
fn convert(converter: &dyn Converter, bytes: &[u8]) {
    let _ = converter.to_connect("t", Some(bytes));
}

proptest! {
    #[test]
    fn json_with_and_without_schemas(raw in bytes(), text in "\\PC{0,64}") {
        for schemas in [true, false] {
            let c = JsonConverter::new(schemas);
            convert(&c, &raw);
            convert(&c, text.as_bytes());
            let enveloped = format!(r#"{{"schema":{{"type":"struct","fields":[{{"field":"a","type":"int32"}}]}},"payload":{text}}}"#);
            convert(&c, enveloped.as_bytes());
        }
    }

    #[test]
    fn avro_arbitrary_and_mutated(raw in bytes(), body in mutated(avro_datum())) {
        let c = AvroConverter::with_source(source("AVRO", AVRO));
        convert(&c, &raw);
        convert(&c, &framed(1, &raw));
        convert(&c, &framed(1, &body));
    }

    #[test]
    fn protobuf_arbitrary_and_mutated(raw in bytes(), body in mutated(PROTO_BODY.to_vec())) {
        let c = ProtobufConverter::with_source(source("PROTOBUF", PROTO));
        convert(&c, &raw);
        convert(&c, &framed(1, &raw));
        convert(&c, &framed(1, &body));
    }

    #[test]
    fn json_schema_arbitrary_and_mutated(raw in bytes(), body in mutated(JSON_BODY.to_vec())) {
        let c = JsonSchemaConverter::with_source(source("JSON", JSON_SCHEMA));
        convert(&c, &raw);
        convert(&c, &framed(1, &raw));
        convert(&c, &framed(1, &body));
    }

    #[test]
    fn strings(raw in bytes()) {
        convert(&StringConverter, &raw);
    }
}

#[test]
fn the_valid_records_decode() {
    let avro = AvroConverter::with_source(source("AVRO", AVRO));
    avro.to_connect("t", Some(&framed(1, &avro_datum())))
        .unwrap_or_else(|e| panic!("{e}"));
    let json_schema = JsonSchemaConverter::with_source(source("JSON", JSON_SCHEMA));
    json_schema
        .to_connect("t", Some(&framed(1, JSON_BODY)))
        .unwrap_or_else(|e| panic!("{e}"));
    let protobuf = ProtobufConverter::with_source(source("PROTOBUF", PROTO));
    protobuf
        .to_connect("t", Some(&framed(1, PROTO_BODY)))
        .unwrap_or_else(|e| panic!("{e}"));
}
