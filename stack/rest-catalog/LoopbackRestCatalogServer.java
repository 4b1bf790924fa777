package dev.floe.stack;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogProperties;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

/**
 * Runs Iceberg's REST catalog test fixture on one address only.
 *
 * <p>org.apache.iceberg.rest.RESTCatalogServer always listens on every interface; this serves the
 * same adapter and servlet from iceberg-open-api's runtime jar behind a Jetty connector bound to
 * REST_HOST (default 127.0.0.1) and REST_PORT (default 8181). The backend catalog is configured
 * exactly like the fixture: every CATALOG_* variable becomes a catalog property (CATALOG_IO__IMPL
 * becomes io-impl, CATALOG_JDBC_USER becomes jdbc.user), with a JDBC catalog as the default.
 */
public final class LoopbackRestCatalogServer {
  private static final String CATALOG_ENV_PREFIX = "CATALOG_";

  private LoopbackRestCatalogServer() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> env = System.getenv();
    String host = env.getOrDefault("REST_HOST", "127.0.0.1");
    int port = Integer.parseInt(env.getOrDefault("REST_PORT", "8181"));

    Map<String, String> properties = catalogProperties(env);
    properties.putIfAbsent(CatalogProperties.CATALOG_IMPL, JdbcCatalog.class.getName());
    properties.putIfAbsent(CatalogProperties.URI, "jdbc:sqlite::memory:");
    properties.putIfAbsent("jdbc.schema-version", "V1");
    if (!properties.containsKey(CatalogProperties.WAREHOUSE_LOCATION)) {
      throw new IllegalArgumentException("CATALOG_WAREHOUSE must be set");
    }

    Catalog catalog =
        CatalogUtil.buildIcebergCatalog("rest_backend", properties, new Configuration());

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(new RESTCatalogAdapter(catalog))), "/*");
    context.insertHandler(new GzipHandler());

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(host);
    connector.setPort(port);
    server.addConnector(connector);
    server.setHandler(context);
    server.setStopAtShutdown(true);
    server.start();
    System.out.printf(
        "REST catalog listening on http://%s:%d (warehouse %s)%n",
        host, port, properties.get(CatalogProperties.WAREHOUSE_LOCATION));
    server.join();
  }

  private static Map<String, String> catalogProperties(Map<String, String> env) {
    Map<String, String> properties = new HashMap<>();
    env.forEach(
        (key, value) -> {
          if (key.startsWith(CATALOG_ENV_PREFIX)) {
            String name =
                key.substring(CATALOG_ENV_PREFIX.length())
                    .replace("__", "-")
                    .replace("_", ".")
                    .toLowerCase(Locale.ROOT);
            properties.put(name, value);
          }
        });
    return properties;
  }
}
