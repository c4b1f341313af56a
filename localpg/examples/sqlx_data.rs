//! Checks (or writes) sqlx's offline query data, `.sqlx/query-<sha256>.json`, against the
//! schema the migrations build, with sqlx's own `describe` (what the query macros run when they
//! are online) — without sqlx-cli and without compiling the workspace against a live database:
//!
//! ```text
//! sqlx_data --migrations migrations/realm --migrations migrations/hub \
//!     --source instance/src --source operator/src ... --data .sqlx [--write]
//! ```
//!
//! The queries are the first string literal of every `query!`, `query_scalar!` and (after the
//! record type) `query_as!` invocation in the `.rs` files under the sources, found in the token
//! stream (so comments and strings are skipped, and macros nested in other macros are found).
//! Check mode fails when a query has no data file, a data file belongs to no query, or a data
//! file's description (columns, types, nullability, parameters) differs from what the
//! database says now; `--write` makes `.sqlx` exactly what it should be. A fresh throwaway
//! cluster is migrated as the hub does at start-up (realm set then hub set). The files have
//! sqlx-macros' format: `{db_name, query, describe, hash}`, pretty-printed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use localpg::LocalPostgres;
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::{Connection, Executor};

type Error = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sqlx_data: {e}");
            ExitCode::from(2)
        }
    }
}

/// The query macros and how many arguments precede the SQL literal.
const MACROS: [(&str, usize); 3] = [("query", 0), ("query_scalar", 0), ("query_as", 1)];

/// Collects the SQL of every query macro in `tokens` (recursively, into every group).
fn queries_in(tokens: TokenStream, out: &mut BTreeSet<String>) -> Result<(), Error> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) => {
                let name = ident.to_string();
                let Some(&(_, skip)) = MACROS.iter().find(|(m, _)| *m == name) else {
                    continue;
                };
                let (Some(TokenTree::Punct(bang)), Some(TokenTree::Group(args))) =
                    (trees.get(i + 1), trees.get(i + 2))
                else {
                    continue;
                };
                if bang.as_char() != '!' || args.delimiter() != Delimiter::Parenthesis {
                    continue;
                }
                if let Some(sql) = sql_argument(args.stream(), skip)? {
                    out.insert(sql);
                }
            }
            TokenTree::Group(g) => queries_in(g.stream(), out)?,
            _ => {}
        }
    }
    Ok(())
}

/// The string literal after `skip` comma-separated arguments, if it is one.
fn sql_argument(args: TokenStream, skip: usize) -> Result<Option<String>, Error> {
    let mut commas = 0;
    for tree in args {
        if commas < skip {
            if matches!(&tree, TokenTree::Punct(p) if p.as_char() == ',') {
                commas += 1;
            }
            continue;
        }
        return Ok(match tree {
            TokenTree::Literal(lit) => syn::parse_str::<syn::LitStr>(&lit.to_string())
                .ok()
                .map(|s| s.value()),
            _ => None,
        });
    }
    Ok(None)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            // Build output and installed npm packages hold no query of ours.
            if !path.ends_with("target") && !path.ends_with("node_modules") {
                rust_files(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn hash(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// sqlx-macros' data file, field for field in its order.
#[derive(serde::Serialize)]
struct QueryData<'a> {
    db_name: &'a str,
    query: &'a str,
    describe: &'a sqlx::Describe<sqlx::Postgres>,
    hash: &'a str,
}

async fn run() -> Result<bool, Error> {
    let mut args = std::env::args().skip(1);
    let (mut sets, mut sources, mut data, mut write) = (Vec::new(), Vec::new(), None, false);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--migrations" => sets.push(PathBuf::from(value()?)),
            "--source" => sources.push(PathBuf::from(value()?)),
            "--data" => data = Some(PathBuf::from(value()?)),
            "--write" => write = true,
            other => return Err(format!("unexpected argument {other:?}").into()),
        }
    }
    let data = data.ok_or("--data DIR is required")?;
    if sources.is_empty() {
        return Err("no --source given".into());
    }

    let mut files = Vec::new();
    for s in &sources {
        rust_files(s, &mut files)?;
    }
    let mut queries = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let tokens = TokenStream::from_str(&text)
            .map_err(|e| format!("{}: not Rust tokens: {e}", f.display()))?;
        queries_in(tokens, &mut queries)?;
    }
    let wanted: BTreeMap<String, String> = queries
        .into_iter()
        .map(|sql| (format!("query-{}.json", hash(&sql)), sql))
        .collect();

    let mut existing = BTreeSet::new();
    if data.is_dir() {
        for entry in std::fs::read_dir(&data)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with("query-") && name.ends_with(".json") {
                existing.insert(name);
            }
        }
    }

    let pg = LocalPostgres::start()?;
    let db = pg.create_database("pek_sqlx").await?;
    let mut conn = sqlx::PgConnection::connect(&db.owner_url).await?;
    for dir in &sets {
        let mut m = Migrator::new(dir.as_path()).await?;
        m.set_ignore_missing(true);
        m.run(&mut conn).await?;
    }

    let mut problems = Vec::new();
    if write {
        std::fs::create_dir_all(&data)?;
    }
    for (name, sql) in &wanted {
        let described = match conn.describe(sql.as_str()).await {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!(
                    "{name}: the database refuses the query: {e}\n    {sql}"
                ));
                continue;
            }
        };
        let path = data.join(name);
        if write {
            // Serialized from the struct, not through a JSON map: the same field order as
            // sqlx-macros writes, so regenerating changes only what changed.
            let file = QueryData {
                db_name: "PostgreSQL",
                query: sql,
                describe: &described,
                hash: &name["query-".len()..name.len() - ".json".len()],
            };
            std::fs::write(&path, serde_json::to_string_pretty(&file)? + "\n")?;
            continue;
        }
        let describe = serde_json::to_value(&described)?;
        if !existing.contains(name) {
            problems.push(format!("{name}: no data file for the query\n    {sql}"));
            continue;
        }
        let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if saved["query"] != serde_json::Value::String(sql.clone()) {
            problems.push(format!("{name}: holds another query"));
        } else if saved["describe"] != describe {
            problems.push(format!(
                "{name}: the schema changed what the query returns or takes\n    {sql}\n    saved: {}\n    now:   {describe}",
                saved["describe"]
            ));
        }
    }
    for name in existing.difference(&wanted.keys().cloned().collect()) {
        if write {
            std::fs::remove_file(data.join(name))?;
        } else {
            problems.push(format!("{name}: no query in the code uses it"));
        }
    }
    conn.close().await?;
    drop(pg);

    if write {
        println!(
            "sqlx_data: wrote {} query files to {}",
            wanted.len(),
            data.display()
        );
        return Ok(problems.is_empty());
    }
    if problems.is_empty() {
        println!(
            "sqlx_data: {} queries in {} files match {} against the migrated schema",
            wanted.len(),
            files.len(),
            data.display()
        );
        return Ok(true);
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!(
        "sqlx_data: {} problem(s); regenerate with tests/checks/sqlx.sh --write",
        problems.len()
    );
    Ok(false)
}
