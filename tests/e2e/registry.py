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


def register(subject: str, schema: dict | str, schema_type: str = "AVRO", references: list | None = None) -> int:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    body = {"schema": text}
    if schema_type != "AVRO":
        body["schemaType"] = schema_type
    if references:
        body["references"] = references
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


# Protobuf, encoded by hand (the wire format is small) so no generated classes are needed.

def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _zigzag(v: int) -> bytes:
    return _varint((v << 1) ^ (v >> 31))


def pb_int(field: int, v: int) -> bytes:
    """A varint field (int32/int64/uint/bool/enum); negative values as 64-bit two's complement."""
    return _varint(field << 3) + _varint(v & 0xFFFFFFFFFFFFFFFF)


def pb_bytes(field: int, data: bytes | str) -> bytes:
    """A length-delimited field: string, bytes, or an embedded message's encoding."""
    if isinstance(data, str):
        data = data.encode()
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def pb_double(field: int, v: float) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", v)


def protobuf_frame(schema_id: int, body: bytes, indexes: tuple[int, ...] = (0,)) -> bytes:
    """Confluent framing: magic, id, message indexes (a single 0 for the first message), body."""
    if tuple(indexes) == (0,):
        idx = b"\x00"
    else:
        idx = _zigzag(len(indexes)) + b"".join(_zigzag(i) for i in indexes)
    return b"\x00" + struct.pack(">I", schema_id) + idx + body
