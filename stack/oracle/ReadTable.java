import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.FileFormat;
import org.apache.iceberg.MetadataColumns;
import org.apache.iceberg.Schema;
import org.apache.iceberg.Table;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.connect.events.AvroUtil;
import org.apache.iceberg.connect.events.DataWritten;
import org.apache.iceberg.connect.events.Event;
import org.apache.iceberg.connect.events.TableReference;
import org.apache.iceberg.data.GenericFileWriterFactory;
import org.apache.iceberg.data.GenericRecord;
import org.apache.iceberg.data.IcebergGenerics;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.encryption.EncryptionUtil;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.io.DataWriter;
import org.apache.iceberg.io.OutputFile;
import org.apache.iceberg.types.TypeUtil;
import org.apache.iceberg.types.Types;

/**
 * The test oracle: reads a table with Iceberg's own generic reader, which applies every kind of
 * delete (position deletes, equality deletes, deletion vectors), and prints one JSON object per
 * row on stdout.
 *
 * <p>Usage: ReadTable key=value... namespace.table, where the keys are catalog properties
 * (type, uri, warehouse, ...), oracle.catalog-name, the catalog's name (default iceberg), and
 * oracle.format-version, a format version to upgrade the table to before reading it (as a
 * user's engine upgrades a table: the table property, committed through the catalog), and
 * oracle.lineage=true, which adds each row's _row_id and _last_updated_sequence_number (format
 * version 3 row lineage, as the reader derives them), and oracle.snapshot-id, a snapshot to read
 * instead of the current one.
 *
 * <p>With oracle.data-written=FILE, oracle.group-id=GROUP and oracle.ids=FROM-TO, it reads
 * nothing: it writes the rows id FROM..TO-1 (with payload "value-<id>" where the table has that
 * column) to a Parquet data file of the unpartitioned table, as a Java sink task would, and
 * writes to FILE the control-topic record a Java task before 1.11 announces it with: a
 * DataWritten of GROUP whose table reference names no table UUID. Nothing is committed.
 */
public class ReadTable {
  public static void main(String[] args) throws Exception {
    Map<String, String> props = new HashMap<>();
    for (int i = 0; i < args.length - 1; i++) {
      int eq = args[i].indexOf('=');
      props.put(args[i].substring(0, eq), args[i].substring(eq + 1));
    }
    // The catalog's name matters to the JDBC catalog: its rows carry the name they were
    // created under.
    String name = props.getOrDefault("oracle.catalog-name", "iceberg");
    props.remove("oracle.catalog-name");
    String upgrade = props.remove("oracle.format-version");
    boolean lineage = Boolean.parseBoolean(props.remove("oracle.lineage"));
    String snapshotId = props.remove("oracle.snapshot-id");
    String dataWritten = props.remove("oracle.data-written");
    String groupId = props.remove("oracle.group-id");
    String ids = props.remove("oracle.ids");
    Catalog catalog =
        CatalogUtil.buildIcebergCatalog(name, props, new org.apache.hadoop.conf.Configuration());
    TableIdentifier ident = TableIdentifier.parse(args[args.length - 1]);
    Table table = catalog.loadTable(ident);
    if (dataWritten != null) {
      String[] range = ids.split("-");
      announce(table, name, ident, groupId, Long.parseLong(range[0]), Long.parseLong(range[1]),
          dataWritten);
      return;
    }
    if (upgrade != null) {
      table.updateProperties().set("format-version", upgrade).commit();
      table.refresh();
    }
    Schema schema = table.schema();
    if (lineage) {
      schema =
          TypeUtil.join(
              schema,
              new Schema(MetadataColumns.ROW_ID, MetadataColumns.LAST_UPDATED_SEQUENCE_NUMBER));
    }
    StringBuilder out = new StringBuilder();
    IcebergGenerics.ScanBuilder scan = IcebergGenerics.read(table).project(schema);
    if (snapshotId != null) {
      scan = scan.useSnapshot(Long.parseLong(snapshotId));
    }
    try (CloseableIterable<Record> rows = scan.build()) {
      for (Record row : rows) {
        out.setLength(0);
        out.append('{');
        List<Types.NestedField> fields = schema.columns();
        for (int i = 0; i < fields.size(); i++) {
          if (i > 0) {
            out.append(',');
          }
          out.append(quote(fields.get(i).name())).append(':');
          append(out, row.getField(fields.get(i).name()));
        }
        out.append('}');
        System.out.println(out);
      }
    }
  }

  private static void announce(Table table, String catalogName, TableIdentifier ident,
      String groupId, long from, long to, String out) throws Exception {
    Schema schema = table.schema();
    OutputFile file =
        table.io().newOutputFile(
            table.locationProvider().newDataLocation("java-task-" + UUID.randomUUID() + ".parquet"));
    DataWriter<Record> writer =
        new GenericFileWriterFactory.Builder(table)
            .dataFileFormat(FileFormat.PARQUET)
            .build()
            .newDataWriter(EncryptionUtil.plainAsEncryptedOutput(file), table.spec(), null);
    try (DataWriter<Record> w = writer) {
      for (long id = from; id < to; id++) {
        GenericRecord row = GenericRecord.create(schema);
        row.setField("id", id);
        if (schema.findField("payload") != null) {
          row.setField("payload", "value-" + id);
        }
        w.write(row);
      }
    }
    DataFile data = writer.toDataFile();
    Event event =
        new Event(
            groupId,
            new DataWritten(
                table.spec().partitionType(),
                UUID.randomUUID(),
                TableReference.of(catalogName, ident, null),
                List.of(data),
                List.of()));
    Files.write(Paths.get(out), AvroUtil.encode(event));
  }

  private static void append(StringBuilder out, Object value) {
    if (value == null) {
      out.append("null");
    } else if (value instanceof Boolean || value instanceof Integer || value instanceof Long) {
      out.append(value);
    } else if (value instanceof Float || value instanceof Double || value instanceof BigDecimal) {
      out.append(quote(value.toString()));
    } else if (value instanceof ByteBuffer) {
      out.append(quote("bytes:" + ((ByteBuffer) value).remaining()));
    } else {
      out.append(quote(value.toString()));
    }
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        b.append('\\').append(c);
      } else if (c < 0x20) {
        b.append(String.format("\\u%04x", (int) c));
      } else {
        b.append(c);
      }
    }
    return b.append('"').toString();
  }
}
