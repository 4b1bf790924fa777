package dev.floe.stack;

import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
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
import org.eclipse.jetty.servlet.FilterHolder;
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
 *
 * <p>With REST_CREDENTIAL=client_id:secret set, every request must carry a bearer token issued
 * by the OAuth2 client-credentials endpoint (/v1/oauth/tokens), valid for REST_TOKEN_TTL_SECONDS
 * (default 3600): anything else is answered 401. GET /floe/tokens reports how many tokens were
 * issued and how many requests were refused, so tests can see a client refresh its token.
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
    String credential = env.get("REST_CREDENTIAL");
    if (credential != null && !credential.isEmpty()) {
      long ttl = Long.parseLong(env.getOrDefault("REST_TOKEN_TTL_SECONDS", "3600"));
      context.addFilter(
          new FilterHolder(new TokenFilter(credential, ttl)), "/*", EnumSet.of(DispatcherType.REQUEST));
    }

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

  /** OAuth2 client credentials in front of the catalog: issues tokens, refuses requests without one. */
  static final class TokenFilter implements Filter {
    private final String clientId;
    private final String secret;
    private final long ttlSeconds;
    private final Map<String, Long> expiries = new ConcurrentHashMap<>();
    private final AtomicLong issued = new AtomicLong();
    private final AtomicLong refused = new AtomicLong();

    TokenFilter(String credential, long ttlSeconds) {
      int colon = credential.indexOf(':');
      this.clientId = colon < 0 ? "" : credential.substring(0, colon);
      this.secret = colon < 0 ? credential : credential.substring(colon + 1);
      this.ttlSeconds = ttlSeconds;
    }

    @Override
    public void doFilter(ServletRequest req, ServletResponse resp, FilterChain chain)
        throws IOException, jakarta.servlet.ServletException {
      HttpServletRequest request = (HttpServletRequest) req;
      HttpServletResponse response = (HttpServletResponse) resp;
      String path = request.getRequestURI();
      if (path.endsWith("/v1/oauth/tokens")) {
        issue(request, response);
        return;
      }
      if (path.equals("/floe/tokens")) {
        write(response, 200, String.format("{\"issued\": %d, \"refused\": %d}", issued.get(), refused.get()));
        return;
      }
      String auth = request.getHeader("Authorization");
      Long expiry = auth != null && auth.startsWith("Bearer ") ? expiries.get(auth.substring(7)) : null;
      if (expiry == null || expiry < System.currentTimeMillis()) {
        refused.incrementAndGet();
        write(response, 401,
            "{\"error\": {\"message\": \"Not authorized: missing or expired token\", \"type\": \"NotAuthorizedException\", \"code\": 401}}");
        return;
      }
      chain.doFilter(req, resp);
    }

    private void issue(HttpServletRequest request, HttpServletResponse response) throws IOException {
      if (!"client_credentials".equals(request.getParameter("grant_type"))
          || !secret.equals(request.getParameter("client_secret"))
          || (!clientId.isEmpty() && !clientId.equals(request.getParameter("client_id")))) {
        write(response, 401, "{\"error\": \"invalid_client\", \"error_description\": \"Bad client credentials\"}");
        return;
      }
      String token = "tok-" + UUID.randomUUID();
      expiries.put(token, System.currentTimeMillis() + ttlSeconds * 1000);
      issued.incrementAndGet();
      write(response, 200, String.format(
          "{\"access_token\": \"%s\", \"token_type\": \"bearer\", \"expires_in\": %d, \"issued_token_type\": \"urn:ietf:params:oauth:token-type:access_token\"}",
          token, ttlSeconds));
    }

    private static void write(HttpServletResponse response, int status, String body) throws IOException {
      response.setStatus(status);
      response.setContentType("application/json");
      response.getOutputStream().write(body.getBytes(StandardCharsets.UTF_8));
    }
  }
}
