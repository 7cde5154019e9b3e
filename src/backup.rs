//! `herald backup` and `herald restore`: a consistent copy of a data directory, and putting
//! one back so that nodes can trust what follows.
//!
//! The data directory is the whole state: the store, the zones' signing keys (every node pins
//! one) and the admin token. A backup is a directory holding the same:
//! - the store, copied by SQLite's online backup API while Herald serves
//!   ([`Store::backup_into`]), first: files that appear later (a new zone's key) are then
//!   still copied, while a key the store needs can never be missing;
//! - every other file of the data directory (keys, token), with its mode, so secrets stay 0600
//!   and their directories 0700.
//!
//! It is written under a temporary name beside `OUT`, fsynced, and renamed into place: a
//! crash leaves either no backup or a whole one. Restoring copies a backup into the data
//! directory the same way and marks the store restored, so that its next start takes the
//! epoch step of [`crate::store::restore`]: no seq is handed out again.

use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::store::{self, Store, restore};

/// Files of the data directory that belong to the store and are copied through SQLite.
const STORE_FILES: &[&str] = &["herald.sqlite3", "herald.sqlite3-wal", "herald.sqlite3-shm"];

/// Why a backup or restore did not happen. Nothing is left half-written in either case.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("{0} holds no Herald store (herald.sqlite3)")]
    NoStore(PathBuf),
    #[error("{0} exists; give a new path for the backup")]
    Exists(PathBuf),
    #[error("{0} is inside the data directory; write the backup elsewhere")]
    Inside(PathBuf),
    #[error("{0} is not empty; restore into an empty directory, or give --force")]
    NotEmpty(PathBuf),
    #[error("{0} was not made by herald backup (it has no backup stamp)")]
    NotABackup(PathBuf),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::Error),
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> BackupError + '_ {
    move |cause| BackupError::Io {
        path: path.to_owned(),
        cause,
    }
}

/// What a backup holds, for the command's output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Made {
    pub path: PathBuf,
    /// Microseconds since the Unix epoch when the store was copied.
    pub taken_us: u64,
    /// The files besides the store, relative to the backup.
    pub files: Vec<PathBuf>,
}

/// Backs up the data directory `data` (of a running Herald or not) into the new directory
/// `out`.
pub fn backup(data: &Path, out: &Path) -> Result<Made, BackupError> {
    let db = Store::path_in(data);
    if !db.is_file() {
        return Err(BackupError::NoStore(data.to_owned()));
    }
    if out.exists() {
        return Err(BackupError::Exists(out.to_owned()));
    }
    // Not inside the data directory: the copy would copy itself.
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let (Ok(d), Ok(p)) = (fs::canonicalize(data), fs::canonicalize(parent))
        && p.starts_with(&d)
    {
        return Err(BackupError::Inside(out.to_owned()));
    }
    let tmp = sibling(out, "partial");
    let result = (|| {
        make_dir(&tmp, 0o700)?;
        let taken_us = restore::now_us();
        Store::open_reader(&db)?.backup_into(&Store::path_in(&tmp), taken_us)?;
        set_mode(&Store::path_in(&tmp), 0o600)?;
        let mut files = Vec::new();
        copy_tree(data, &tmp, Path::new(""), &mut files)?;
        sync_tree(&tmp)?;
        Ok(taken_us)
    })();
    let taken_us = match result {
        Ok(t) => t,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    fs::rename(&tmp, out).map_err(io_at(out))?;
    sync_parent(out)?;
    let mut files = Vec::new();
    list_files(out, Path::new(""), &mut files)?;
    Ok(Made {
        path: out.to_owned(),
        taken_us,
        files,
    })
}

/// Restores the backup `from` into the data directory `data`, which must be empty or missing
/// unless `force` (then the old directory is kept beside it as `<data>.before-restore-<time>`).
/// With `store`, the store comes from that SQLite file instead (a Litestream replica restored
/// with `litestream restore -o FILE`), and only the keys and the token from the backup.
/// Returns where the old directory went, if anywhere.
pub fn restore(
    from: &Path,
    data: &Path,
    force: bool,
    store: Option<&Path>,
) -> Result<Option<PathBuf>, BackupError> {
    let db = Store::path_in(from);
    if !db.is_file() {
        return Err(BackupError::NoStore(from.to_owned()));
    }
    if restore::backup_time(&db)?.is_none() {
        return Err(BackupError::NotABackup(from.to_owned()));
    }
    if let Some(file) = store
        && !file.is_file()
    {
        return Err(BackupError::NoStore(file.to_owned()));
    }
    let occupied = match fs::read_dir(data) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_at(data)(e)),
    };
    if occupied && !force {
        return Err(BackupError::NotEmpty(data.to_owned()));
    }
    let tmp = sibling(data, "restoring");
    let result = (|| {
        make_dir(&tmp, 0o700)?;
        let mut files = Vec::new();
        copy_tree(from, &tmp, Path::new(""), &mut files)?;
        match store {
            Some(file) => {
                fs::copy(file, Store::path_in(&tmp)).map_err(io_at(file))?;
                set_mode(&Store::path_in(&tmp), 0o600)?;
            }
            None => {
                for name in STORE_FILES {
                    let src = from.join(name);
                    if src.exists() {
                        fs::copy(&src, tmp.join(name)).map_err(io_at(&src))?;
                    }
                }
            }
        }
        store::restore::mark_restored(&Store::path_in(&tmp))?;
        sync_tree(&tmp)
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let kept = if occupied {
        let aside = PathBuf::from(format!(
            "{}.before-restore-{}",
            data.display(),
            restore::now_us() / 1_000_000
        ));
        fs::rename(data, &aside).map_err(io_at(data))?;
        Some(aside)
    } else {
        if data.exists() {
            fs::remove_dir(data).map_err(io_at(data))?;
        }
        None
    };
    fs::rename(&tmp, data).map_err(io_at(data))?;
    sync_parent(data)?;
    Ok(kept)
}

/// `<parent>/.<name>.<what>-<pid>`: a temporary name on the same file system as `path`.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "herald".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}

fn make_dir(path: &Path, mode: u32) -> Result<(), BackupError> {
    DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(io_at(path))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BackupError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_at(path))
}

/// Copies every file and directory below `from` into `to` but the store's own files, keeping
/// modes; records the files copied (relative paths) in `files`.
fn copy_tree(
    from: &Path,
    to: &Path,
    rel: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<(), BackupError> {
    let dir = from.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io_at(&dir))?
        .collect::<Result<_, _>>()
        .map_err(io_at(&dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if rel.as_os_str().is_empty() && STORE_FILES.iter().any(|s| name == *s) {
            continue;
        }
        let rel = rel.join(&name);
        let src = from.join(&rel);
        let dst = to.join(&rel);
        // Links are followed: a key directory linked from elsewhere is still the zone's key.
        let meta = fs::metadata(&src).map_err(io_at(&src))?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            make_dir(&dst, mode)?;
            set_mode(&dst, mode)?;
            copy_tree(from, to, &rel, files)?;
        } else if meta.is_file() {
            // fs::copy keeps the mode bits; a secret file stays 0600.
            fs::copy(&src, &dst).map_err(io_at(&src))?;
            files.push(rel);
        } else {
            // A socket or a device: not Herald's; a backup that skipped it silently could
            // lack something, so say so.
            return Err(BackupError::Io {
                path: src,
                cause: io::Error::other("neither a file nor a directory"),
            });
        }
    }
    Ok(())
}

fn list_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
        let entry = entry.map_err(io_at(&dir))?;
        let rel = rel.join(entry.file_name());
        if entry.file_type().map_err(io_at(&dir))?.is_dir() {
            list_files(root, &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    out.sort();
    Ok(())
}

/// fsyncs every file and directory below `root`, and `root` itself.
fn sync_tree(root: &Path) -> Result<(), BackupError> {
    for entry in fs::read_dir(root).map_err(io_at(root))? {
        let path = entry.map_err(io_at(root))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_at(&path))?;
        }
    }
    File::open(root)
        .and_then(|f| f.sync_all())
        .map_err(io_at(root))
}

fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|f| f.sync_all())
        .map_err(io_at(parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory as Herald leaves it: the store, a key and the token, both 0600.
    fn data_dir(root: &Path) -> PathBuf {
        let data = root.join("data");
        make_dir(&data, 0o700).unwrap();
        let mut store = Store::open(&Store::path_in(&data)).unwrap();
        store.init_zone("example.test", 7, b"digest").unwrap();
        make_dir(&data.join("keys"), 0o700).unwrap();
        for (file, text) in [("keys/example.test.key", "key"), ("admin.token", "token")] {
            fs::write(data.join(file), text).unwrap();
            set_mode(&data.join(file), 0o600).unwrap();
        }
        data
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_backup_is_whole_and_keeps_secrets_private() {
        let root = tempfile::tempdir().unwrap();
        let data = data_dir(root.path());
        let out = root.path().join("backup");
        let made = backup(&data, &out).unwrap();
        assert_eq!(
            made.files,
            [
                PathBuf::from("admin.token"),
                PathBuf::from("herald.sqlite3"),
                PathBuf::from("keys/example.test.key")
            ]
        );
        for file in ["admin.token", "keys/example.test.key", "herald.sqlite3"] {
            assert_eq!(mode(&out.join(file)), 0o600, "{file}");
        }
        assert_eq!(mode(&out.join("keys")), 0o700);
        assert_eq!(mode(&out), 0o700);
        assert_eq!(
            restore::backup_time(&Store::path_in(&out)).unwrap(),
            Some(made.taken_us)
        );
        // No temporary left behind, and a second backup to the same path is refused.
        let names: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(matches!(backup(&data, &out), Err(BackupError::Exists(_))));
        assert!(matches!(
            backup(&root.path().join("nothing"), &root.path().join("b2")),
            Err(BackupError::NoStore(_))
        ));
        assert!(!root.path().join("b2").exists());
    }

    #[test]
    fn restore_refuses_occupied_directories_and_marks_the_store() {
        let root = tempfile::tempdir().unwrap();
        let data = data_dir(root.path());
        let out = root.path().join("backup");
        backup(&data, &out).unwrap();

        // Not a backup: a live data directory has no stamp.
        let target = root.path().join("new");
        assert!(matches!(
            restore(&data, &target, false, None),
            Err(BackupError::NotABackup(_))
        ));
        // Occupied, without --force: refused, nothing changed.
        assert!(matches!(
            restore(&out, &data, false, None),
            Err(BackupError::NotEmpty(_))
        ));
        // A store file that is not there.
        assert!(matches!(
            restore(&out, &target, false, Some(&root.path().join("nope"))),
            Err(BackupError::NoStore(_))
        ));
        assert!(!target.exists());
        assert_eq!(
            fs::read_to_string(data.join("admin.token")).unwrap(),
            "token"
        );

        // Into a new directory.
        assert_eq!(restore(&out, &target, false, None).unwrap(), None);
        assert_eq!(mode(&target.join("keys/example.test.key")), 0o600);
        let mut conn = rusqlite::Connection::open(Store::path_in(&target)).unwrap();
        assert!(
            restore::step_after_restore(&mut conn, restore::now_us())
                .unwrap()
                .is_some(),
            "marked restored"
        );

        // Over an occupied one with --force: the old one is kept aside.
        fs::write(data.join("admin.token"), "changed").unwrap();
        let kept = restore(&out, &data, true, None).unwrap().unwrap();
        assert_eq!(
            fs::read_to_string(kept.join("admin.token")).unwrap(),
            "changed"
        );
        assert_eq!(
            fs::read_to_string(data.join("admin.token")).unwrap(),
            "token"
        );
    }
}
