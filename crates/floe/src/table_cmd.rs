//! `floe table`: maintenance of any Iceberg table in a catalog Floe can open, named by a
//! connector file (its `iceberg.catalog.*` keys), without a worker.
//!
//! ```text
//! floe table compact <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--target-file-size-bytes N]
//! floe table expire-snapshots <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--older-than-ms N] [--retain-last N]
//! floe table remove-orphans <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--older-than-ms N]
//! floe table health <connector.json|connector.properties> <namespace.table> [--json] [--small-file-bytes N]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use floe_iceberg::catalog::{load_catalog, CatalogHandle};
use floe_iceberg::config::catalog_of;
use floe_iceberg::maintenance::compact::{compact, CompactOptions, CompactReport};
use floe_iceberg::maintenance::expire::{expire, ExpireOptions};
use floe_iceberg::maintenance::health::{self, health};
use floe_iceberg::maintenance::load_table;
use floe_iceberg::maintenance::orphans::{remove_orphans, OrphanOptions};
use iceberg::table::Table;

pub const USAGE: &str = "floe table compact <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--target-file-size-bytes N]\n       floe table expire-snapshots <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--older-than-ms N] [--retain-last N]\n       floe table remove-orphans <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--older-than-ms N]\n       floe table health <connector.json|connector.properties> <namespace.table> [--json] [--small-file-bytes N]";

/// Runs `floe table <args>`.
pub async fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        bail!("usage: {USAGE}");
    };
    match command.as_str() {
        "compact" => compact_command(rest).await,
        "expire-snapshots" => expire_command(rest).await,
        "remove-orphans" => orphans_command(rest).await,
        "health" => health_command(rest).await,
        other => bail!("unknown table command {other}; usage: {USAGE}"),
    }
}

/// A table command's arguments: the connector file, the table, the flags, and the numeric
/// options named in `numbers`.
struct Args {
    file: String,
    table: String,
    dry_run: bool,
    json: bool,
    numbers: BTreeMap<&'static str, u64>,
}

fn parse_args(args: &[String], numbers: &[&'static str]) -> Result<Args> {
    let mut positional = Vec::new();
    let mut out = Args {
        file: String::new(),
        table: String::new(),
        dry_run: false,
        json: false,
        numbers: BTreeMap::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dry-run" => out.dry_run = true,
            "--json" => out.json = true,
            flag if flag.starts_with("--") => {
                let Some(name) = numbers.iter().find(|n| **n == flag) else {
                    bail!("unknown option {flag}; usage: {USAGE}");
                };
                let v = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
                let n = v
                    .parse::<u64>()
                    .with_context(|| format!("invalid {flag} {v}"))?;
                out.numbers.insert(name, n);
            }
            _ => positional.push(a.clone()),
        }
    }
    let [file, table] = positional.as_slice() else {
        bail!("usage: {USAGE}");
    };
    out.file = file.clone();
    out.table = table.clone();
    Ok(out)
}

/// The catalog the connector file names, and the table in it.
async fn open(args: &Args) -> Result<(CatalogHandle, Table)> {
    let (_, config) = crate::read_connector_file(Path::new(&args.file))?;
    let (catalog_name, props) = catalog_of(&config);
    let catalog = load_catalog(&catalog_name, &props)
        .await
        .with_context(|| format!("cannot open catalog {catalog_name}"))?;
    let table = load_table(&catalog, &args.table)
        .await
        .map_err(|e| anyhow!(e))?;
    Ok((catalog, table))
}

async fn compact_command(args: &[String]) -> Result<()> {
    let args = parse_args(args, &["--target-file-size-bytes"])?;
    let (catalog, table) = open(&args).await?;
    let mut options = CompactOptions::for_table(
        &table,
        args.numbers.get("--target-file-size-bytes").copied(),
    );
    options.dry_run = args.dry_run;
    let report = compact(&catalog, &table, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report, args.dry_run));
    }
    Ok(())
}

async fn expire_command(args: &[String]) -> Result<()> {
    let args = parse_args(args, &["--older-than-ms", "--retain-last"])?;
    let (catalog, table) = open(&args).await?;
    let mut options = ExpireOptions::for_table(&table);
    if let Some(ms) = args.numbers.get("--older-than-ms") {
        options.max_age = Duration::from_millis(*ms);
    }
    if let Some(n) = args.numbers.get("--retain-last") {
        options.min_to_keep = (*n).max(1) as usize;
    }
    options.dry_run = args.dry_run;
    let r = expire(&catalog, &table, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if let Some(why) = &r.skipped {
        println!("{}: nothing to expire: {why}", r.table);
    } else {
        println!(
            "{}: {} {} snapshots ({} kept, {} of them old but on the way to the sink's offsets); {} manifest lists, {} manifests and {} data and delete files {}",
            r.table,
            if args.dry_run { "would expire" } else { "expired" },
            r.snapshots_expired,
            r.snapshots_kept,
            r.kept_for_offsets,
            r.manifest_lists_deleted,
            r.manifests_deleted,
            r.files_deleted,
            if args.dry_run { "would go" } else { "deleted" }
        );
        if !r.refs_removed.is_empty() {
            println!(
                "  refs older than their max-ref-age-ms {}: {}",
                if args.dry_run {
                    "would be removed"
                } else {
                    "removed"
                },
                r.refs_removed.join(", ")
            );
        }
    }
    Ok(())
}

async fn orphans_command(args: &[String]) -> Result<()> {
    let args = parse_args(args, &["--older-than-ms"])?;
    let (_, table) = open(&args).await?;
    let (_, config) = crate::read_connector_file(Path::new(&args.file))?;
    let (_, props) = catalog_of(&config);
    let mut options = OrphanOptions {
        dry_run: args.dry_run,
        warehouse: props.get("warehouse").cloned(),
        ..OrphanOptions::default()
    };
    if let Some(ms) = args.numbers.get("--older-than-ms") {
        options.older_than = Duration::from_millis(*ms);
    }
    let r = remove_orphans(&table, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{}: {} files under {}, {} referenced; {} orphans ({} bytes) {}, {} unreferenced files younger than {} ms kept{}",
        r.table,
        r.files_listed,
        r.roots.join(" and "),
        r.files_referenced,
        r.orphans,
        r.orphan_bytes,
        if args.dry_run { "would go" } else { "deleted" },
        r.too_young,
        options.older_than.as_millis(),
        if r.failed > 0 {
            format!("; {} could not be deleted", r.failed)
        } else {
            String::new()
        }
    );
    for path in &r.orphan_paths {
        println!("  {path}");
    }
    if r.orphans > r.orphan_paths.len() {
        println!("  … and {} more", r.orphans - r.orphan_paths.len());
    }
    Ok(())
}

async fn health_command(args: &[String]) -> Result<()> {
    let args = parse_args(args, &["--small-file-bytes"])?;
    if args.dry_run {
        bail!("floe table health changes nothing; --dry-run does not apply");
    }
    let (_, table) = open(&args).await?;
    let small = match args.numbers.get("--small-file-bytes") {
        Some(n) => *n,
        None => CompactOptions::for_table(&table, None).min_file_size,
    };
    let r = health(&table, small).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", health::human(&r));
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
