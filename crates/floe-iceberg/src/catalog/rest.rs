//! The REST catalog with renewed OAuth2 tokens. iceberg's `RestCatalog` keeps the token it got
//! first for ever; this catalog gets tokens from a [`TokenSource`] and uses a `RestCatalog`
//! built with the current one, building a new one when the token is renewed (before it
//! expires, or after the catalog refused it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use iceberg::io::StorageFactory;
use iceberg::table::Table;
use iceberg::{
    Catalog, CatalogBuilder, Namespace, NamespaceIdent, Result, TableCommit, TableCreation,
    TableIdent,
};
use iceberg_catalog_rest::{RestCatalog, RestCatalogBuilder};
use tokio::sync::RwLock;

use super::oauth::{unauthorized, TokenSource};

/// A REST catalog whose bearer token is kept fresh.
pub struct RenewingRestCatalog {
    name: String,
    /// The catalog properties without `credential` and `token` (the source holds those).
    props: HashMap<String, String>,
    storage: Arc<dyn StorageFactory>,
    tokens: Option<Arc<TokenSource>>,
    /// The token the current client was built with, and the client.
    current: RwLock<(Option<String>, Arc<RestCatalog>)>,
}

impl std::fmt::Debug for RenewingRestCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenewingRestCatalog")
            .field("name", &self.name)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl RenewingRestCatalog {
    /// Connects to the catalog `props` describe (`uri`, `credential`/`token`, …).
    pub async fn connect(
        name: &str,
        props: &BTreeMap<String, String>,
        storage: Arc<dyn StorageFactory>,
        tokens: Option<Arc<TokenSource>>,
    ) -> Result<RenewingRestCatalog> {
        let props: HashMap<String, String> = props
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "type" | "catalog-impl" | "io-impl" | "credential" | "token"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let token = match &tokens {
            Some(t) => Some(t.token().await?),
            None => None,
        };
        let client = build(name, &props, &storage, token.as_deref()).await?;
        Ok(RenewingRestCatalog {
            name: name.to_string(),
            props,
            storage,
            tokens,
            current: RwLock::new((token, Arc::new(client))),
        })
    }

    /// The client for the current token (a new one when the token changed).
    async fn client(&self) -> Result<Arc<RestCatalog>> {
        let Some(tokens) = &self.tokens else {
            return Ok(self.current.read().await.1.clone());
        };
        let token = tokens.token().await?;
        {
            let current = self.current.read().await;
            if current.0.as_deref() == Some(token.as_str()) {
                return Ok(current.1.clone());
            }
        }
        let mut current = self.current.write().await;
        if current.0.as_deref() != Some(token.as_str()) {
            let client = build(&self.name, &self.props, &self.storage, Some(&token)).await?;
            *current = (Some(token), Arc::new(client));
        }
        Ok(current.1.clone())
    }

    /// Runs `op` with the current client; a refused token is renewed and `op` run once more.
    async fn call<'a, T: 'a>(
        &'a self,
        op: impl Fn(Arc<RestCatalog>) -> BoxFuture<'a, Result<T>>,
    ) -> Result<T> {
        let first = op(self.client().await?).await;
        match (&self.tokens, first) {
            (Some(tokens), Err(e)) if tokens.renews() && unauthorized(&e) => {
                tokens.invalidate().await;
                op(self.client().await?).await
            }
            (_, outcome) => outcome,
        }
    }
}

async fn build(
    name: &str,
    props: &HashMap<String, String>,
    storage: &Arc<dyn StorageFactory>,
    token: Option<&str>,
) -> Result<RestCatalog> {
    let mut props = props.clone();
    if let Some(token) = token {
        props.insert("token".into(), token.to_string());
    }
    let client = super::http_builder(&props)?.build().map_err(|e| {
        iceberg::Error::new(
            iceberg::ErrorKind::Unexpected,
            format!("cannot build the HTTP client: {e}"),
        )
    })?;
    RestCatalogBuilder::default()
        .with_storage_factory(storage.clone())
        .with_client(client)
        .load(name, props)
        .await
}

#[async_trait]
impl Catalog for RenewingRestCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        self.call(|c| Box::pin(async move { c.list_namespaces(parent).await }))
            .await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.call(|c| {
            let properties = properties.clone();
            Box::pin(async move { c.create_namespace(namespace, properties).await })
        })
        .await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.call(|c| Box::pin(async move { c.get_namespace(namespace).await }))
            .await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.call(|c| Box::pin(async move { c.namespace_exists(namespace).await }))
            .await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.call(|c| {
            let properties = properties.clone();
            Box::pin(async move { c.update_namespace(namespace, properties).await })
        })
        .await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.call(|c| Box::pin(async move { c.drop_namespace(namespace).await }))
            .await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.call(|c| Box::pin(async move { c.list_tables(namespace).await }))
            .await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        // A creation is consumed by the call: sent once, with a token renewed first if due.
        self.client().await?.create_table(namespace, creation).await
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        self.call(|c| Box::pin(async move { c.load_table(table).await }))
            .await
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.call(|c| Box::pin(async move { c.drop_table(table).await }))
            .await
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.call(|c| Box::pin(async move { c.purge_table(table).await }))
            .await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.call(|c| Box::pin(async move { c.table_exists(table).await }))
            .await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.call(|c| Box::pin(async move { c.rename_table(src, dest).await }))
            .await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.call(|c| {
            let location = metadata_location.clone();
            Box::pin(async move { c.register_table(table, location).await })
        })
        .await
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        // A commit cannot be sent twice (it is consumed): no retry after a refused token.
        self.client().await?.update_table(commit).await
    }
}
