"""Schema Registry helpers for tests: register schemas through Apicurio's Confluent-compatible
API and frame payloads the way Confluent serializers do."""

from __future__ import annotations

import io
import json
import os
import struct

import fastavro
import requests

REGISTRY_URL = os.environ.get("FLOE_REGISTRY_URL", "http://127.0.0.1:18080/apis/ccompat/v7")


def register(subject: str, schema: dict | str, schema_type: str = "AVRO") -> int:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    body = {"schema": text}
    if schema_type != "AVRO":
        body["schemaType"] = schema_type
    r = requests.post(f"{REGISTRY_URL}/subjects/{subject}/versions", json=body,
                      headers={"Content-Type": "application/vnd.schemaregistry.v1+json"}, timeout=30)
    assert r.status_code == 200, f"registering {subject}: {r.status_code} {r.text}"
    return r.json()["id"]


def avro_frame(schema_id: int, schema: dict, record: dict) -> bytes:
    out = io.BytesIO()
    out.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def json_frame(schema_id: int, record: dict) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + json.dumps(record).encode()
