//! `floe table`: maintenance of any Iceberg table in a catalog Floe can open, named by a
//! connector file (its `iceberg.catalog.*` keys), without a worker.
//!
//! ```text
//! floe table compact <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--target-file-size-bytes N]
//! ```

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use floe_iceberg::catalog::load_catalog;
use floe_iceberg::config::catalog_of;
use floe_iceberg::maintenance::compact::{compact, CompactOptions, CompactReport};
use floe_iceberg::maintenance::load_table;

pub const USAGE: &str = "floe table compact <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--target-file-size-bytes N]";

/// Runs `floe table <args>`.
pub async fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        bail!("usage: {USAGE}");
    };
    match command.as_str() {
        "compact" => compact_command(rest).await,
        other => bail!("unknown table command {other}; usage: {USAGE}"),
    }
}

async fn compact_command(args: &[String]) -> Result<()> {
    let mut positional = Vec::new();
    let (mut dry_run, mut json, mut target) = (false, false, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dry-run" => dry_run = true,
            "--json" => json = true,
            "--target-file-size-bytes" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--target-file-size-bytes needs a value"))?;
                target = Some(
                    v.parse::<u64>()
                        .with_context(|| format!("invalid --target-file-size-bytes {v}"))?,
                );
            }
            flag if flag.starts_with("--") => bail!("unknown option {flag}; usage: {USAGE}"),
            _ => positional.push(a.clone()),
        }
    }
    let [file, table] = positional.as_slice() else {
        bail!("usage: {USAGE}");
    };
    let (_, config) = crate::read_connector_file(Path::new(file))?;
    let (catalog_name, props) = catalog_of(&config);
    let catalog = load_catalog(&catalog_name, &props)
        .await
        .with_context(|| format!("cannot open catalog {catalog_name}"))?;
    let loaded = load_table(&catalog, table).await.map_err(|e| anyhow!(e))?;
    let mut options = CompactOptions::for_table(&loaded, target);
    options.dry_run = dry_run;
    let report = compact(&catalog, &loaded, &options).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report, dry_run));
    }
    Ok(())
}

fn human(r: &CompactReport, dry_run: bool) -> String {
    if let Some(why) = &r.skipped {
        return format!("{}: nothing to compact: {why}\n", r.table);
    }
    let mut out = format!(
        "{}: {} {} data files ({} bytes) in {} partitions",
        r.table,
        if dry_run { "would rewrite" } else { "rewrote" },
        r.data_files_rewritten,
        r.bytes_rewritten,
        r.partitions
    );
    if !dry_run {
        out.push_str(&format!(
            " into {} ({} bytes, {} rows, {} deleted rows applied)",
            r.data_files_written, r.bytes_written, r.rows, r.deleted_rows_applied
        ));
    }
    out.push_str(&format!(
        "; {} delete files {}",
        r.delete_files_removed,
        if dry_run { "would go" } else { "removed" }
    ));
    if let Some(id) = r.snapshot_id {
        out.push_str(&format!("; snapshot {id}"));
    }
    out.push('\n');
    out
}
