"""Secured clusters (docs/security.md): connectors over SASL_SSL/SCRAM and over mutual TLS with
exactly-once commits, a three-worker cluster on SASL_SSL with an HTTPS REST API behind basic
authentication (forwarding between workers, a SIGKILL), the Schema Registry and the REST catalog
behind TLS, and secrets that appear in no log line (at trace level), status trace or REST answer."""

import json
import signal
import ssl
import time

import requests

from harness import (
    MTLS_BOOTSTRAP, REST_CATALOG_URI, SASL_PASSWORD, SASL_SSL_BOOTSTRAP, SASL_USER, TLS_DIR, TLS_KEY_PASSWORD,
    TLS_STORE_PASSWORD, DistributedWorker, FaultProxy, Worker, connector_config, create_topic, delete_topics,
    pyiceberg_catalog, read_rows, rest_catalog_config, sqlite_catalog_config, unique, wait_for,
)
from registry import REGISTRY_URL, avro_frame, register
from test_exactly_once import FAST_FAILOVER, KeyedProducer, assert_exactly

REST_USER, REST_PASSWORD = "floe-admin", "floe-rest-secret"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
TRACE = {"FLOE_LOG": "trace"}
PROVIDERS = {
    "config.providers": "file,directory",
    "config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
    "config.providers.directory.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
}


def secrets_file(tmp_path):
    """The secrets, kept out of every config: configs name them with ${file:…} placeholders."""
    path = tmp_path / "secrets.properties"
    path.write_text(f"sasl.password={SASL_PASSWORD}\nstore.password={TLS_STORE_PASSWORD}\n"
                    f"key.password={TLS_KEY_PASSWORD}\n")
    return path


def secret_values():
    """Every secret the tests use, and the body of each private key."""
    values = [SASL_PASSWORD, TLS_STORE_PASSWORD, TLS_KEY_PASSWORD, REST_PASSWORD, "PRIVATE KEY"]
    for key in ("client.key", "worker.key", "client-encrypted.key"):
        lines = (TLS_DIR / key).read_text().splitlines()
        values.append(lines[1])
    return values


def assert_no_secrets(what, texts):
    for i, text in enumerate(texts):
        for secret in secret_values():
            assert secret not in text, f"a secret ({secret[:4]}…) appears in {what} #{i}: …{text[max(0, text.find(secret) - 200):text.find(secret) + 50]}…"


def sasl_ssl(secrets, prefix="", mechanism="SCRAM-SHA-512", module=SCRAM):
    """SASL_SSL with the password read from the secrets file and the JKS truststore (Java's
    default store type, so no type key)."""
    return {
        f"{prefix}security.protocol": "SASL_SSL",
        f"{prefix}sasl.mechanism": mechanism,
        f"{prefix}sasl.jaas.config": f'{module} required username="{SASL_USER}" password="${{file:{secrets}:sasl.password}}";',
        f"{prefix}ssl.truststore.location": str(TLS_DIR / "truststore.jks"),
        f"{prefix}ssl.truststore.password": f"${{file:{secrets}:store.password}}",
    }


def mtls_pkcs12(secrets, prefix=""):
    return {
        f"{prefix}security.protocol": "SSL",
        f"{prefix}ssl.keystore.type": "PKCS12",
        f"{prefix}ssl.keystore.location": str(TLS_DIR / "client.p12"),
        f"{prefix}ssl.keystore.password": f"${{file:{secrets}:store.password}}",
        f"{prefix}ssl.truststore.type": "PEM",
        f"{prefix}ssl.truststore.location": str(TLS_DIR / "ca.pem"),
    }


def mtls_pem(secrets, prefix=""):
    """Mutual TLS with PEM text: the encrypted client key and the chain, as Java's PEM keys."""
    return {
        f"{prefix}security.protocol": "SSL",
        f"{prefix}ssl.keystore.type": "PEM",
        f"{prefix}ssl.keystore.key": f"${{directory:{TLS_DIR}:client-encrypted.key}}",
        f"{prefix}ssl.keystore.certificate.chain": f"${{directory:{TLS_DIR}:client.pem}}",
        f"{prefix}ssl.key.password": f"${{file:{secrets}:key.password}}",
        f"{prefix}ssl.truststore.type": "PEM",
        f"{prefix}ssl.truststore.certificates": f"${{directory:{TLS_DIR}:ca.pem}}",
    }


def tls_server(require_client_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(TLS_DIR / "broker.pem", TLS_DIR / "broker.key")
    if require_client_cert:
        ctx.load_verify_locations(TLS_DIR / "ca.pem")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def rest_answers(worker, name):
    paths = [f"/connectors/{name}", f"/connectors/{name}/config", f"/connectors/{name}/tasks",
             f"/connectors/{name}/status", "/connectors?expand=info&expand=status"]
    return [worker.get(p).text for p in paths]


ORDER = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"},
                                                       {"name": "payload", "type": "string"}]}


def test_connectors_over_sasl_ssl_and_mutual_tls_commit_exactly_once(tmp_path):
    secrets = secrets_file(tmp_path)
    sasl_topic, mtls_topic = unique("sasl"), unique("mtls")
    sasl_table, mtls_table = f"db_{unique('ns')}.sasl", f"db_{unique('ns')}.mtls"
    total = 3000
    create_topic(sasl_topic, partitions=2)
    create_topic(mtls_topic, partitions=2)
    # The registry behind TLS that requires a client certificate; the REST catalog behind TLS.
    registry_proxy = FaultProxy(18080, tls=tls_server(require_client_cert=True))
    catalog_proxy = FaultProxy(int(REST_CATALOG_URI.rsplit(":", 1)[1]), tls=tls_server(require_client_cert=False))
    schema_id = register(f"{sasl_topic}-value", ORDER)
    # Worker A: every client on SASL_SSL/SCRAM-SHA-512 (the worker's own, and consumer.* as Java
    # needs for task consumers), Avro from the registry over mutual TLS.
    sasl_worker = Worker(tmp_path, {
        **PROVIDERS, "bootstrap.servers": SASL_SSL_BOOTSTRAP, **sasl_ssl(secrets), **sasl_ssl(secrets, "consumer."),
        **sasl_ssl(secrets, "producer."), **FAST_FAILOVER,
    }, env=TRACE)
    # Worker B: mutual TLS with a PKCS12 keystore for the worker's clients; the connector's
    # consumer overrides it with PEM keys (consumer.override.*).
    mtls_worker = Worker(tmp_path, {
        **PROVIDERS, "bootstrap.servers": MTLS_BOOTSTRAP, **mtls_pkcs12(secrets), **FAST_FAILOVER,
    }, env=TRACE)
    sasl_catalog = sqlite_catalog_config(tmp_path)
    registry_url = REGISTRY_URL.replace("http://127.0.0.1:18080", registry_proxy.url)
    sasl_config = connector_config(sasl_topic, sasl_table, sasl_catalog, **{
        "tasks.max": "2",
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": registry_url,
        "value.converter.schema.registry.ssl.truststore.type": "PEM",
        "value.converter.schema.registry.ssl.truststore.location": str(TLS_DIR / "ca.pem"),
        "value.converter.schema.registry.ssl.keystore.type": "PKCS12",
        "value.converter.schema.registry.ssl.keystore.location": str(TLS_DIR / "client.p12"),
        "value.converter.schema.registry.ssl.keystore.password": f"${{file:{secrets}:store.password}}",
    })
    mtls_config = connector_config(mtls_topic, mtls_table, {
        **rest_catalog_config(),
        "iceberg.catalog.uri": catalog_proxy.url,
        "iceberg.catalog.ssl.truststore.type": "PKCS12",
        "iceberg.catalog.ssl.truststore.location": str(TLS_DIR / "truststore.p12"),
        "iceberg.catalog.ssl.truststore.password": f"${{file:{secrets}:store.password}}",
    }, **{"tasks.max": "2", **mtls_pem(secrets, "consumer.override.")})
    from confluent_kafka import Producer
    from harness import BOOTSTRAP

    try:
        sasl_worker.start()
        mtls_worker.start()
        sasl_name = unique("sasl")
        sasl_worker.create_connector(sasl_name, sasl_config)
        mtls_name = unique("mtls")
        mtls_worker.create_connector(mtls_name, mtls_config)
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
        for i in range(total):
            producer.produce(sasl_topic, key=str(i), value=avro_frame(schema_id, ORDER, {"id": i, "payload": f"v{i}"}))
        producer.flush(30)
        mtls_producer = KeyedProducer(mtls_topic, total, batch=100, pause=0.02)
        mtls_producer.run()
        assert mtls_producer.error is None

        sasl_reader = pyiceberg_catalog(sasl_catalog)
        rest_reader = pyiceberg_catalog(rest_catalog_config())
        for reader, table in ((sasl_reader, sasl_table), (rest_reader, mtls_table)):
            wait_for(lambda: len(read_rows(reader, table)) >= total, 120, f"{total} rows in {table}")
        time.sleep(3)  # a late duplicate commit would show now
        for reader, table in ((sasl_reader, sasl_table), (rest_reader, mtls_table)):
            rows = read_rows(reader, table)
            assert_exactly(rows, total)
            print(f"security: {table}: records produced {total}, found {len(rows)}")
        assert registry_proxy.connections > 0 and catalog_proxy.connections > 0

        # Offsets over SASL_SSL: read, altered, and one partition's deleted (OffsetDelete on
        # Floe's own connection).
        assert sasl_worker.put(f"/connectors/{sasl_name}/stop").status_code == 204
        offsets = sasl_worker.get(f"/connectors/{sasl_name}/offsets").json()["offsets"]
        assert sum(o["offset"]["kafka_offset"] for o in offsets) == total, offsets
        reset_one = {"offsets": [{"partition": {"kafka_topic": sasl_topic, "kafka_partition": 1}, "offset": None}]}
        r = sasl_worker.patch(f"/connectors/{sasl_name}/offsets", reset_one)
        assert r.status_code == 200, r.text
        left = sasl_worker.get(f"/connectors/{sasl_name}/offsets").json()["offsets"]
        assert [o["partition"]["kafka_partition"] for o in left] == [0], left

        # Nothing secret in the REST answers (placeholders stay as given), validate hides
        # secret-named keys, and no log line at trace level holds a secret.
        answers = rest_answers(mtls_worker, mtls_name)
        assert "${file:" in answers[1] and "${directory:" in answers[2]
        # A key Floe refuses, holding a secret: the error names the key, the value is hidden.
        refused = "iceberg.hadoop.fs.gs.auth.client.secret"
        validate = mtls_worker.put("/connector-plugins/IcebergSinkConnector/config/validate", {
            **mtls_config, refused: TLS_STORE_PASSWORD,
        }).json()
        shown = {c["value"]["name"]: c["value"] for c in validate["configs"]}
        assert shown[refused]["value"] == "[hidden]" and shown[refused]["errors"], shown[refused]
        answers.append(json.dumps(validate))
        assert_no_secrets("a REST answer", answers)
        assert_no_secrets("the log of a worker at trace level", [sasl_worker.log(), mtls_worker.log()])
        assert "SASL" in sasl_worker.log() or "sasl" in sasl_worker.log()
    finally:
        sasl_worker.stop()
        mtls_worker.stop()
        registry_proxy.close()
        catalog_proxy.close()
        delete_topics(sasl_topic, mtls_topic)


def test_a_wrong_password_fails_the_task_without_showing_it(tmp_path):
    secrets = secrets_file(tmp_path)
    topic, name, table = unique("badauth"), unique("sink"), f"db_{unique('ns')}.t"
    create_topic(topic)
    worker = Worker(tmp_path, {**PROVIDERS, "bootstrap.servers": SASL_SSL_BOOTSTRAP, **sasl_ssl(secrets)}, env=TRACE)
    wrong = "not-the-password-4711"
    config = connector_config(topic, table, sqlite_catalog_config(tmp_path), **{
        **sasl_ssl(secrets, "consumer.override."),
        "consumer.override.sasl.jaas.config": f'{SCRAM} required username="{SASL_USER}" password="{wrong}";',
        "consumer.override.session.timeout.ms": "6000",
    })
    try:
        worker.start()
        worker.create_connector(name, config)
        # librdkafka reports the failed authentication; the task fails with it, not the password.
        trace = worker.failed_task_trace(name, timeout=90)
        assert "uthentication" in trace, trace
        status = worker.get(f"/connectors/{name}/status").text
        validate = worker.put("/connector-plugins/IcebergSinkConnector/config/validate", config).text
        for text in (trace, status, worker.log()):
            assert wrong not in text and SASL_PASSWORD not in text
        assert wrong not in validate, validate
        # An unsupported mechanism is refused at startup, naming the key.
        bad = Worker(tmp_path, {"bootstrap.servers": SASL_SSL_BOOTSTRAP, "security.protocol": "SASL_SSL",
                                "sasl.mechanism": "GSSAPI"})
        try:
            bad.start_timeout = 5
            bad.start()
            raise AssertionError("a worker with GSSAPI started")
        except AssertionError as e:
            assert "sasl.mechanism" in bad.log() and "GSSAPI" in bad.log(), (str(e), bad.log())
        finally:
            bad.stop()
    finally:
        worker.stop()
        delete_topics(topic)


def test_distributed_on_sasl_ssl_with_https_and_basic_auth(tmp_path):
    secrets = secrets_file(tmp_path)
    credentials = tmp_path / "rest-credentials.properties"
    credentials.write_text(f"{REST_USER}={REST_PASSWORD}\n")
    jaas = tmp_path / "rest-jaas.conf"
    jaas.write_text("KafkaConnect {\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule "
                    f'required\n  file="{credentials}";\n}};\n')
    group = unique("secure-cluster")
    topic, name, table = unique("secure"), unique("sink"), f"db_{unique('ns')}.events"
    total, tasks = 9000, 3
    create_topic(topic, partitions=6)
    catalog_cfg = sqlite_catalog_config(tmp_path)
    workers = []
    for _ in range(3):
        w = DistributedWorker(tmp_path, group, {
            **PROVIDERS, "bootstrap.servers": SASL_SSL_BOOTSTRAP,
            # The worker group and internal topics on SCRAM-SHA-256, task consumers on PLAIN.
            **sasl_ssl(secrets, mechanism="SCRAM-SHA-256"), **sasl_ssl(secrets, "consumer.", "PLAIN", PLAIN),
            **sasl_ssl(secrets, "admin."),
            "rest.extension.classes": "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension",
            "listeners.https.ssl.keystore.type": "PKCS12",
            "listeners.https.ssl.keystore.location": str(TLS_DIR / "worker.p12"),
            "listeners.https.ssl.keystore.password": f"${{file:{secrets}:store.password}}",
            "listeners.https.ssl.truststore.type": "PEM",
            "listeners.https.ssl.truststore.location": str(TLS_DIR / "ca.pem"),
            **FAST_FAILOVER,
        })
        w.props["listeners"] = f"https://localhost:{w.port}"
        w.url = f"https://localhost:{w.port}"
        w.id = f"localhost:{w.port}"
        w.env = {**TRACE, "KAFKA_OPTS": f"-Xmx1g -Djava.security.auth.login.config={jaas}"}
        w.http.verify = str(TLS_DIR / "ca.pem")
        w.http.auth = (REST_USER, REST_PASSWORD)
        workers.append(w)
    config = connector_config(topic, table, catalog_cfg, **{"tasks.max": str(tasks)})
    producer = KeyedProducer(topic, total, batch=100, pause=0.1)
    try:
        for w in workers:
            w.start()
        ca = str(TLS_DIR / "ca.pem")
        # Without credentials: 401 in Java's words; /health stays open for probes; plain HTTP
        # is not served.
        r = requests.get(workers[0].url + "/connectors", verify=ca, timeout=10)
        assert (r.status_code, r.text) == (401, "User cannot access the resource."), (r.status_code, r.text)
        r = requests.get(workers[0].url + "/connectors", verify=ca, auth=(REST_USER, "wrong"), timeout=10)
        assert r.status_code == 401
        assert requests.get(workers[0].url + "/health", verify=ca, timeout=10).status_code == 200
        try:
            requests.get(f"http://localhost:{workers[0].port}/connectors", timeout=5)
            raise AssertionError("plain HTTP answered")
        except requests.exceptions.ConnectionError:
            pass
        # Through each worker in turn: two of them are not the leader and forward the call with
        # the caller's credentials.
        wait_for(lambda: workers[2].post("/connectors", {"name": name, "config": config}).status_code == 201,
                 60, "the connector created through a worker")
        for w in workers:
            wait_for(lambda: w.put(f"/connectors/{name}/config", config).status_code == 200, 60,
                     f"a config update through {w.id}")
        wait_for(lambda: [t["state"] for t in workers[0].get(f"/connectors/{name}/status").json()["tasks"]]
                 == ["RUNNING"] * tasks, 90, f"{tasks} tasks RUNNING")
        producer.start()
        time.sleep(8)
        # SIGKILL a worker running tasks mid-stream; the others take them over.
        status = workers[0].get(f"/connectors/{name}/status").json()
        owners = {t["worker_id"] for t in status["tasks"]}
        victim = next(w for w in workers[1:] if w.id in owners) if owners & {w.id for w in workers[1:]} else workers[1]
        victim.stop(signal.SIGKILL)
        producer.join(300)
        assert producer.error is None and not producer.is_alive()
        catalog = pyiceberg_catalog(catalog_cfg)
        wait_for(lambda: len(read_rows(catalog, table)) >= total, 180, f"{total} rows")
        time.sleep(3)
        rows = read_rows(catalog, table)
        assert_exactly(rows, total)
        print(f"security (cluster): killed {victim.id}; records produced {total}, found {len(rows)}")
        alive = [w for w in workers if w is not victim]
        answers = rest_answers(alive[0], name)
        assert_no_secrets("a REST answer", answers)
        assert_no_secrets("the log of a worker at trace level", [w.log() for w in workers])
    finally:
        producer.stopped.set()
        for w in workers:
            try:
                w.stop()
            except AssertionError:
                pass
        delete_topics(topic, f"{group}-configs", f"{group}-status", f"{group}-offsets")


def test_placeholders_stay_placeholders_and_providers_stay_in_their_paths(tmp_path):
    """A value resolved from a config provider never appears in a REST answer, validation
    messages included: a bad `errors.tolerance` given as a placeholder is refused by POST, PUT
    and validate quoting the placeholder, not the value. With `allowed.paths` (KIP-993) the file
    provider reads nothing outside them (`..` included), and the directory provider reads only
    regular files of its directory."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "secrets.properties").write_text("tolerance=hunter2-not-a-mode\n")
    (allowed / "dir").mkdir()
    (allowed / "dir" / "pw").write_text("hunter2-in-a-directory")
    outside = tmp_path / "outside.properties"
    outside.write_text("tolerance=hunter2-outside\n")
    worker = Worker(tmp_path, extra={
        **PROVIDERS,
        "config.providers.file.param.allowed.paths": str(allowed),
        "config.providers.directory.param.allowed.paths": str(allowed),
    }).start()
    topic, name = unique("placeholders"), unique("sink")
    try:
        inside = f"${{file:{allowed / 'secrets.properties'}:tolerance}}"
        config = connector_config(topic, f"db_{unique('ns')}.t", sqlite_catalog_config(tmp_path),
                                  **{"errors.tolerance": inside})
        answers = [
            requests.post(f"{worker.url}/connectors", json={"name": name, "config": config}, timeout=30),
            requests.put(f"{worker.url}/connectors/{name}/config", json=config, timeout=30),
            requests.put(f"{worker.url}/connector-plugins/IcebergSinkConnector/config/validate",
                         json={**config, "name": name}, timeout=30),
        ]
        assert [a.status_code for a in answers] == [400, 400, 200], [a.text for a in answers]
        for a in answers:
            assert "hunter2" not in a.text, a.text
        assert inside in answers[0].text, answers[0].text
        # Outside the allowed paths, by name or by climbing out with `..`: refused, never read.
        escapes = [f"${{file:{outside}:tolerance}}",
                   f"${{file:{allowed}/../outside.properties:tolerance}}",
                   f"${{directory:{allowed / 'dir'}:../secrets.properties}}"]
        for placeholder in escapes:
            a = requests.put(f"{worker.url}/connector-plugins/IcebergSinkConnector/config/validate",
                             json={**config, "errors.tolerance": placeholder, "name": name}, timeout=30)
            assert "hunter2" not in a.text, (placeholder, a.text)
            assert a.status_code == 400 or (a.status_code == 200 and a.json()["error_count"] > 0), a.text
        assert "hunter2" not in worker.log()
    finally:
        worker.stop()


def test_the_client_override_policy_is_enforced(tmp_path):
    """`connector.client.config.override.policy` as Java enforces it: with `Principal` a connector
    may override its clients' principal (`security.protocol`, `sasl.*`) but nothing else; the
    refusal is a validation error with Java's message, and creating the connector answers 400."""
    worker = Worker(tmp_path, extra={"connector.client.config.override.policy": "Principal"}).start()
    try:
        config = connector_config(unique("t"), f"db_{unique('ns')}.t", sqlite_catalog_config(tmp_path), **{
            "consumer.override.max.poll.records": "10",
            "consumer.override.security.protocol": "PLAINTEXT",
        })
        body = worker.put("/connector-plugins/IcebergSinkConnector/config/validate",
                          {**config, "name": "policy"}).json()
        errors = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"] if c["value"]["errors"]}
        assert errors == {"consumer.override.max.poll.records": [
            "The 'Principal' policy does not allow 'max.poll.records' to be overridden in the connector configuration."
        ]}, errors
        r = worker.post("/connectors", {"name": unique("policy"), "config": config})
        assert r.status_code == 400 and "max.poll.records" in r.text, r.text
        del config["consumer.override.max.poll.records"]
        r = worker.post("/connectors", {"name": unique("policy"), "config": config})
        assert r.status_code == 201, r.text
    finally:
        worker.stop()
