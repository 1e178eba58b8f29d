//! rpm databases in their three backends: SQLite (rpm >= 4.16), BerkeleyDB hash (older RHEL,
//! CentOS, Amazon Linux 2) and NDB (SUSE). No crate reads the last two, so their on-disk formats
//! are read here with every offset and length checked against the file.

mod berkeley;
mod header;
mod ndb;

use rusqlite::{Connection, OpenFlags};

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::PackageKind;
pub(crate) use header::{RpmHeader, parse_header_blob};

/// Header blobs of every package in a database, in storage order, with a per-blob error.
type Blobs = Vec<(u64, Result<Vec<u8>, String>)>;

fn catalog_blobs(blobs: Result<Blobs, String>, context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let blobs = match blobs {
        Ok(blobs) => blobs,
        Err(reason) => {
            catalog.issue(context.location, None, reason);
            return catalog;
        }
    };
    for (record, blob) in blobs {
        let header = blob.and_then(|bytes| parse_header_blob(&bytes));
        match header {
            // gpg-pubkey entries are imported keys, not installed software.
            Ok(header) if header.name == "gpg-pubkey" => {}
            Ok(header) => catalog.packages.push(package_of(&header, context)),
            Err(reason) => catalog.issue(
                context.location,
                Some(record),
                format!("record {record}: {reason}"),
            ),
        }
    }
    catalog
}

fn package_of(header: &RpmHeader, context: &CatalogContext<'_>) -> crate::sbom::Package {
    let epoch = header.epoch.map(|e| e.to_string()).unwrap_or_default();
    let arch = header.arch.clone().unwrap_or_default();
    let version = format!("{}-{}", header.version, header.release);
    let purl = purl::build(
        "rpm",
        None,
        &header.name,
        &version,
        &[
            ("arch", &arch),
            ("epoch", if epoch == "0" { "" } else { &epoch }),
        ],
    );
    let mut package = context.package(PackageKind::Rpm, &header.name, header.evr(), purl);
    package.source_name = header.source_name();
    package.arch = header.arch.clone();
    package
}

pub(super) fn catalog_sqlite(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    catalog_blobs(sqlite_blobs(content), context)
}

pub(super) fn catalog_berkeley(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    catalog_blobs(berkeley::hash_values(content), context)
}

pub(super) fn catalog_ndb(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    catalog_blobs(ndb::blobs(content), context)
}

/// Reads `Packages(hnum, blob)` from an in-memory copy of the database: nothing is written to
/// disk and SQLite's defensive mode guards against a crafted file.
fn sqlite_blobs(content: &[u8]) -> Result<Blobs, String> {
    const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
    if !content.starts_with(SQLITE_MAGIC) || content.len() < 100 {
        return Err("not an SQLite database".to_string());
    }
    let mut image = content.to_vec();
    // An in-memory database cannot use a write-ahead log; marking the copy as a rollback-journal
    // database (format bytes 18 and 19) lets SQLite read it as it is.
    image[18] = 1;
    image[19] = 1;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut connection = Connection::open_in_memory_with_flags(flags)
        .map_err(|error| format!("cannot open SQLite: {error}"))?;
    let _ = connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true);
    let size = image.len();
    connection
        .deserialize_read_exact(rusqlite::MAIN_DB, &image[..], size, true)
        .map_err(|error| format!("cannot load SQLite database: {error}"))?;
    let mut statement = connection
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|error| format!("no Packages table: {error}"))?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(|error| format!("cannot read Packages: {error}"))?;
    let mut blobs = Vec::new();
    for row in rows {
        match row {
            Ok((number, blob)) => blobs.push((number.max(0) as u64, Ok(blob))),
            Err(error) => blobs.push((blobs.len() as u64, Err(format!("unreadable row: {error}")))),
        }
    }
    Ok(blobs)
}
