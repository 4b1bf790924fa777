package dev.floe.interop;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.iceberg.ContentFile;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.DataFiles;
import org.apache.iceberg.FileFormat;
import org.apache.iceberg.Metrics;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.Schema;
import org.apache.iceberg.StructLike;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.connect.events.AvroUtil;
import org.apache.iceberg.connect.events.CommitComplete;
import org.apache.iceberg.connect.events.CommitToTable;
import org.apache.iceberg.connect.events.DataComplete;
import org.apache.iceberg.connect.events.DataWritten;
import org.apache.iceberg.connect.events.Event;
import org.apache.iceberg.connect.events.Payload;
import org.apache.iceberg.connect.events.StartCommit;
import org.apache.iceberg.connect.events.TableReference;
import org.apache.iceberg.connect.events.TopicPartitionOffset;
import org.apache.iceberg.types.Conversions;
import org.apache.iceberg.types.Types;

/**
 * The Java side of Floe's control-topic interop test.
 *
 * <pre>
 * read DIR   decode every DIR/*.bin with the Iceberg library, print one canonical JSON line each
 * write DIR  write events with the Iceberg library as DIR/java-*.bin, and their canonical JSON
 *            lines in DIR/java-expected.jsonl
 * </pre>
 */
public class EventsInterop {
  private static final ObjectMapper JSON =
      new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);

  public static void main(String[] args) throws Exception {
    Path dir = Paths.get(args[1]);
    if (args[0].equals("read")) {
      try (Stream<Path> files = Files.list(dir)) {
        for (Path p : files.filter(f -> f.toString().endsWith(".bin")).sorted().collect(Collectors.toList())) {
          Event event = AvroUtil.decode(Files.readAllBytes(p));
          System.out.println(p.getFileName() + "\t" + JSON.writeValueAsString(canonical(event)));
        }
      }
    } else if (args[0].equals("write")) {
      write(dir);
    } else {
      throw new IllegalArgumentException("usage: read|write DIR");
    }
  }

  static long micros(OffsetDateTime t) {
    return t == null ? Long.MIN_VALUE : ChronoUnit.MICROS.between(Instant.EPOCH, t.toInstant());
  }

  static Object microsOrNull(OffsetDateTime t) {
    return t == null ? null : micros(t);
  }

  static Map<String, Object> canonical(Event e) {
    Map<String, Object> m = new TreeMap<>();
    m.put("id", e.id().toString());
    m.put("type", e.type().id());
    m.put("timestamp_micros", micros(e.timestamp()));
    m.put("group_id", e.groupId());
    m.put("payload", payload(e.payload()));
    return m;
  }

  static Map<String, Object> table(TableReference t) {
    Map<String, Object> m = new TreeMap<>();
    m.put("catalog", t.catalog());
    m.put("namespace", List.of(t.identifier().namespace().levels()));
    m.put("name", t.identifier().name());
    m.put("uuid", t.uuid() == null ? null : t.uuid().toString());
    return m;
  }

  static String hex(ByteBuffer b) {
    StringBuilder s = new StringBuilder();
    ByteBuffer d = b.duplicate();
    while (d.hasRemaining()) {
      s.append(String.format("%02x", d.get()));
    }
    return s.toString();
  }

  static <V> Object intMap(Map<Integer, V> m, java.util.function.Function<V, Object> f) {
    if (m == null || m.isEmpty()) {
      return null;
    }
    Map<String, Object> out = new TreeMap<>();
    m.forEach((k, v) -> out.put(String.valueOf(k), f.apply(v)));
    return out;
  }

  static Map<String, Object> file(ContentFile<?> f) {
    Map<String, Object> m = new TreeMap<>();
    m.put("path", f.location());
    m.put("format", f.format().name());
    m.put("content", f.content().id());
    m.put("spec_id", f.specId());
    m.put("record_count", f.recordCount());
    m.put("file_size", f.fileSizeInBytes());
    List<Object> partition = new ArrayList<>();
    StructLike p = f.partition();
    for (int i = 0; i < p.size(); i++) {
      Object v = p.get(i, Object.class);
      partition.add(v == null ? null : v.toString());
    }
    m.put("partition", partition);
    m.put("column_sizes", intMap(f.columnSizes(), v -> v));
    m.put("value_counts", intMap(f.valueCounts(), v -> v));
    m.put("null_value_counts", intMap(f.nullValueCounts(), v -> v));
    m.put("nan_value_counts", intMap(f.nanValueCounts(), v -> v));
    m.put("lower_bounds", intMap(f.lowerBounds(), EventsInterop::hex));
    m.put("upper_bounds", intMap(f.upperBounds(), EventsInterop::hex));
    m.put("split_offsets", f.splitOffsets());
    m.put("equality_ids", f.equalityFieldIds());
    m.put("sort_order_id", f.sortOrderId());
    return m;
  }

  static Map<String, Object> payload(Payload p) {
    Map<String, Object> m = new TreeMap<>();
    if (p instanceof StartCommit s) {
      m.put("kind", "StartCommit");
      m.put("commit_id", s.commitId().toString());
    } else if (p instanceof DataWritten d) {
      m.put("kind", "DataWritten");
      m.put("commit_id", d.commitId().toString());
      m.put("table", table(d.tableReference()));
      m.put("data_files", d.dataFiles() == null ? List.of() : d.dataFiles().stream().map(EventsInterop::file).collect(Collectors.toList()));
      m.put("delete_files", d.deleteFiles() == null ? List.of() : d.deleteFiles().stream().map(EventsInterop::file).collect(Collectors.toList()));
    } else if (p instanceof DataComplete d) {
      m.put("kind", "DataComplete");
      m.put("commit_id", d.commitId().toString());
      List<Object> a = new ArrayList<>();
      for (TopicPartitionOffset t : d.assignments()) {
        Map<String, Object> tm = new TreeMap<>();
        tm.put("topic", t.topic());
        tm.put("partition", t.partition());
        tm.put("offset", t.offset());
        tm.put("timestamp_micros", microsOrNull(t.timestamp()));
        a.add(tm);
      }
      m.put("assignments", a);
    } else if (p instanceof CommitToTable c) {
      m.put("kind", "CommitToTable");
      m.put("commit_id", c.commitId().toString());
      m.put("table", table(c.tableReference()));
      m.put("snapshot_id", c.snapshotId());
      m.put("valid_through_micros", microsOrNull(c.validThroughTs()));
    } else if (p instanceof CommitComplete c) {
      m.put("kind", "CommitComplete");
      m.put("commit_id", c.commitId().toString());
      m.put("valid_through_micros", microsOrNull(c.validThroughTs()));
    }
    return m;
  }

  static void write(Path dir) throws Exception {
    Files.createDirectories(dir);
    UUID commit = UUID.fromString("6f1c2a3e-0000-4000-8000-00000000c0de");
    OffsetDateTime ts = OffsetDateTime.of(2024, 7, 18, 12, 34, 56, 789_000_000, ZoneOffset.UTC);
    TableReference ref =
        TableReference.of("iceberg", TableIdentifier.of(Namespace.of("db"), "events"), UUID.fromString("0a0b0c0d-0000-4000-8000-000000000001"));
    Schema schema =
        new Schema(
            Types.NestedField.required(1, "id", Types.LongType.get()),
            Types.NestedField.optional(2, "ts", Types.TimestampType.withZone()),
            Types.NestedField.optional(3, "name", Types.StringType.get()),
            Types.NestedField.optional(4, "kind", Types.StringType.get()));
    PartitionSpec spec = PartitionSpec.builderFor(schema).identity("kind").day("ts").bucket("id", 16).truncate("name", 4).build();
    Metrics metrics =
        new Metrics(
            10L,
            Map.of(1, 100L, 3, 30L),
            Map.of(1, 10L),
            Map.of(1, 0L, 3, 2L),
            null,
            Map.of(1, Conversions.toByteBuffer(Types.LongType.get(), 1L)),
            Map.of(1, Conversions.toByteBuffer(Types.LongType.get(), 9L)));
    DataFile file =
        DataFiles.builder(spec)
            .withPath("file:///wh/db/events/data/kind=a/ts_day=2024-07-18/id_bucket=3/name_trunc=abcd/00001.parquet")
            .withFormat(FileFormat.PARQUET)
            .withPartitionPath("kind=a/ts_day=2024-07-18/id_bucket=3/name_trunc=abcd")
            .withFileSizeInBytes(4321L)
            .withMetrics(metrics)
            .withSplitOffsets(List.of(4L))
            .withSortOrder(org.apache.iceberg.SortOrder.unsorted())
            .build();
    List<Event> events =
        List.of(
            new Event("connect-ice", new StartCommit(commit)),
            new Event("connect-ice", new DataWritten(spec.partitionType(), commit, ref, List.of(file), List.of())),
            new Event(
                "connect-ice",
                new DataComplete(
                    commit,
                    List.of(new TopicPartitionOffset("events", 0, 42L, ts), new TopicPartitionOffset("events", 1, null, null)))),
            new Event("connect-ice", new CommitToTable(commit, ref, 123L, ts)),
            new Event("connect-ice", new CommitToTable(commit, ref, null, null)),
            new Event("connect-ice", new CommitComplete(commit, ts)),
            new Event("connect-ice", new CommitComplete(commit, null)));
    StringBuilder expected = new StringBuilder();
    for (int i = 0; i < events.size(); i++) {
      String name = String.format("java-%02d.bin", i);
      Files.write(dir.resolve(name), AvroUtil.encode(events.get(i)));
      // What Java itself reads back: what Floe must decode.
      Event back = AvroUtil.decode(Files.readAllBytes(dir.resolve(name)));
      expected.append(name).append('\t').append(JSON.writeValueAsString(canonical(back))).append('\n');
    }
    Files.writeString(dir.resolve("java-expected.jsonl"), expected.toString());
  }
}
