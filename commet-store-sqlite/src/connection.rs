//! Opening the database, and running blocking calls off the async executor.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use commet_engine::store::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::error::Result;
use crate::migrations;

/// How hard a commit works to survive a power loss.
///
/// Either way a commit is atomic, and it survives the process being killed: SQLite's
/// write-ahead log only ever exposes whole transactions. The difference is the operating
/// system crashing or the power failing right after a commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// `PRAGMA synchronous = FULL` (the default): the log is flushed to disk (`fsync`) before a
    /// commit returns, so a commit that returned survives a power loss. Billing records
    /// intents before it charges cards, so losing a returned commit could lose the record of a
    /// charge: this is the safe choice, and it costs one `fsync` per commit.
    #[default]
    Full,
    /// `PRAGMA synchronous = NORMAL`: the log is flushed at checkpoints only. After a power
    /// loss or an OS crash the most recent commits may be rolled back (never half-applied).
    /// Faster on disks with slow `fsync`; fine for data that can be rebuilt.
    Normal,
}

/// How [`SqliteStore::open_with`](crate::SqliteStore::open_with) sets up the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// See [`Durability`]; [`Durability::Full`] by default.
    pub durability: Durability,
    /// How long a commit waits for another process's write lock before failing with
    /// [`StoreError::Backend`]; 5 seconds by default.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteOptions {
    /// The defaults with another durability.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> SqliteOptions {
        self.durability = durability;
        self
    }

    /// The defaults with another busy timeout.
    #[must_use]
    pub fn with_busy_timeout(mut self, busy_timeout: Duration) -> SqliteOptions {
        self.busy_timeout = busy_timeout;
        self
    }
}

/// The one connection, behind a mutex.
#[derive(Debug)]
pub(crate) struct Database {
    conn: Mutex<Connection>,
}

impl Database {
    /// Open (creating if needed) the database at `path`, or a private in-memory one if `None`,
    /// set it up, and migrate it.
    pub(crate) fn open(path: Option<&Path>, options: SqliteOptions) -> Result<Database> {
        let mut conn = match path {
            // No URI interpretation: a path is a path. The connection is only ever used under
            // our mutex, so SQLite's own per-connection mutex is not needed.
            Some(path) => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
            None => Connection::open_in_memory()?,
        };
        configure(&conn, path.is_some(), options)?;
        migrations::migrate(&mut conn)?;
        Ok(Database {
            conn: Mutex::new(conn),
        })
    }

    /// Run `job` with the connection, alone.
    pub(crate) fn with<T>(&self, job: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        job(&mut conn)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A job that panicked mid-transaction dropped its `Transaction`, which rolls back; if a
        // transaction is somehow still open, roll it back before anyone reuses the connection.
        self.conn.lock().unwrap_or_else(|poisoned| {
            let conn = PoisonError::into_inner(poisoned);
            if !conn.is_autocommit() {
                // Best effort: if even this fails, the next BEGIN reports the problem.
                let _ = conn.execute_batch("ROLLBACK");
            }
            self.conn.clear_poison();
            conn
        })
    }
}

/// Switch a file to WAL, and the mode it is in after. While another process is creating the
/// same new file, SQLite answers `SQLITE_BUSY` at once instead of calling the busy handler
/// (the switch needs an exclusive lock it will not wait for), so the switch is tried again
/// every 10 ms for up to the busy timeout.
fn switch_to_wal(conn: &Connection, busy_timeout: Duration) -> Result<String> {
    const PAUSE: Duration = Duration::from_millis(10);
    let most = busy_timeout.as_millis() / PAUSE.as_millis() + 1;
    let mut tried = 0;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == rusqlite::ErrorCode::DatabaseBusy && tried < most =>
            {
                tried += 1;
                std::thread::sleep(PAUSE);
            }
            answer => return Ok(answer?),
        }
    }
}

/// The pragmas every connection runs with.
fn configure(conn: &Connection, file: bool, options: SqliteOptions) -> Result<()> {
    // First, so that switching to WAL waits for other processes instead of failing.
    conn.busy_timeout(options.busy_timeout)?;
    // Room for every statement the store uses, including each filter combination of the pages.
    conn.set_prepared_statement_cache_capacity(128);
    if file {
        let mode = switch_to_wal(conn, options.busy_timeout)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::backend(format_args!(
                "could not switch the database to WAL journal mode (it is in {mode} mode)"
            ))
            .into());
        }
    }
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let foreign_keys: bool = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))?;
    if !foreign_keys {
        return Err(StoreError::backend("SQLite refused to enforce foreign keys").into());
    }
    Ok(())
}

/// Run blocking work on Tokio's blocking pool, or inline when no Tokio runtime is running,
/// so that SQLite never blocks an async executor thread.
async fn off_executor<T, F>(what: &'static str, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(work)
            .await
            .map_err(|error| StoreError::backend(format_args!("{what} did not finish: {error}")))?,
        Err(_) => work(),
    }
}

/// Run `job` with the connection, alone, off the executor.
pub(crate) async fn blocking<T, F>(db: &Arc<Database>, job: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    let db = Arc::clone(db);
    off_executor("a SQLite call", move || {
        db.with(job).map_err(StoreError::from)
    })
    .await
}

/// Open a database off the executor: opening reads the file and may migrate it.
pub(crate) async fn open(
    path: Option<std::path::PathBuf>,
    options: SqliteOptions,
) -> Result<Database, StoreError> {
    off_executor("opening the SQLite database", move || {
        Database::open(path.as_deref(), options).map_err(StoreError::from)
    })
    .await
}

/// Close the connection off the executor, reporting SQLite's errors.
pub(crate) async fn close(db: Database) -> Result<(), StoreError> {
    off_executor("closing the SQLite database", move || {
        let conn = db.conn.into_inner().unwrap_or_else(PoisonError::into_inner);
        conn.close()
            .map_err(|(_conn, error)| StoreError::from(crate::error::Error::from(error)))
    })
    .await
}
