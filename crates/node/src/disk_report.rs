//! Where a stopped node's data directory puts its bytes: every file's size
//! and the bytes the file system allocated to it, each redb file's tables
//! (rows, the bytes they store, the pages they take) and the plaintext the
//! vault holds, from the sizes `custody.redb` records (BENCHMARKS.md
//! §11.15). Read only; run it on a stopped node (a running one holds its
//! redb files locked).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("disk report: {0}")]
pub struct ReportError(String);

fn err(e: impl std::fmt::Display) -> ReportError {
    ReportError(e.to_string())
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    /// Relative to the data directory.
    pub path: String,
    pub size: u64,
    pub allocated: u64,
}

#[derive(Debug, Serialize)]
pub struct TableReport {
    pub file: String,
    pub table: String,
    pub rows: u64,
    /// Keys and values as stored, without redb's per-entry overhead.
    pub stored: u64,
    pub leaf_pages: u64,
    pub branch_pages: u64,
    /// The table's pages (leaf and branch) at 4 KiB each: a page holding a
    /// value larger than 4 KiB is in fact a run of pages rounded up to a
    /// power of two, which this does not see.
    pub page_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct DiskReport {
    pub files: Vec<FileReport>,
    pub tables: Vec<TableReport>,
    /// Records in `vault/custody.redb`.
    pub records: u64,
    /// The sum of their plaintext lengths.
    pub plaintext: u64,
    pub size: u64,
    pub allocated: u64,
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(&entry.path(), out)?;
        } else if meta.is_file() {
            out.push((entry.path(), meta));
        }
    }
    Ok(())
}

/// The report of the stopped node's data directory `data_dir`.
pub fn report(data_dir: &Path) -> Result<DiskReport, ReportError> {
    let mut found = Vec::new();
    walk(data_dir, &mut found).map_err(err)?;
    let mut files = Vec::new();
    let mut tables = Vec::new();
    for (path, meta) in &found {
        let relative = path
            .strip_prefix(data_dir)
            .unwrap_or(path)
            .display()
            .to_string();
        files.push(FileReport {
            path: relative.clone(),
            size: meta.len(),
            allocated: meta.blocks() * 512,
        });
        if path.extension().is_some_and(|e| e == "redb") {
            tables.extend(redb_tables(path, &relative)?);
        }
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.allocated));
    let (records, plaintext) = plaintext(&data_dir.join("vault").join("custody.redb"))?;
    Ok(DiskReport {
        size: files.iter().map(|f| f.size).sum(),
        allocated: files.iter().map(|f| f.allocated).sum(),
        files,
        tables,
        records,
        plaintext,
    })
}

/// redb's page size (its default, which the node keeps).
const REDB_PAGE: u64 = 4096;

fn redb_tables(path: &Path, relative: &str) -> Result<Vec<TableReport>, ReportError> {
    let db = redb::ReadOnlyDatabase::open(path).map_err(err)?;
    let read = db.begin_read().map_err(err)?;
    let mut out = Vec::new();
    for handle in read.list_tables().map_err(err)? {
        let table = read.open_untyped_table(handle.clone()).map_err(err)?;
        let stats = table.stats().map_err(err)?;
        out.push(TableReport {
            file: relative.to_owned(),
            table: handle.name().to_owned(),
            rows: table.len().map_err(err)?,
            stored: stats.stored_bytes(),
            leaf_pages: stats.leaf_pages(),
            branch_pages: stats.branch_pages(),
            page_bytes: (stats.leaf_pages() + stats.branch_pages()) * REDB_PAGE,
        });
    }
    Ok(out)
}

/// Records and the sum of their plaintext lengths, from `custody.redb`.
fn plaintext(path: &Path) -> Result<(u64, u64), ReportError> {
    if !path.exists() {
        return Ok((0, 0));
    }
    // Rows keyed by bytes, and by text in files written before.
    const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records_by_bytes");
    const TEXT_KEYED: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
    let db = redb::ReadOnlyDatabase::open(path).map_err(err)?;
    let read = db.begin_read().map_err(err)?;
    let (mut records, mut bytes) = (0, 0);
    let mut add = |row: &[u8]| -> Result<(), ReportError> {
        records += 1;
        bytes += crate::custody::decode_meta(row).map_err(err)?.size;
        Ok(())
    };
    match read.open_table(RECORDS) {
        Ok(table) => {
            for row in table.iter().map_err(err)? {
                add(row.map_err(err)?.1.value())?;
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(err(e)),
    }
    match read.open_table(TEXT_KEYED) {
        Ok(table) => {
            for row in table.iter().map_err(err)? {
                add(row.map_err(err)?.1.value())?;
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(err(e)),
    }
    Ok((records, bytes))
}
