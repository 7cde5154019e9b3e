//! Secret files: the admin token and the zones' signing keys, and later the secrets a
//! configuration file names.
//!
//! A secret file must be readable by its owner only (mode 0600 or stricter): one that others
//! may read is refused with the `chmod` that fixes it, because a secret that leaked once cannot
//! be trusted again. New secret files are never readable by anyone else, not even for a
//! moment, and never half-written: see [`create`].

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

/// A secret file that cannot be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")]
    Mode { path: PathBuf, mode: u32 },
    #[error("{path} is not a text file")]
    NotText { path: PathBuf },
}

impl SecretError {
    /// Whether the file does not exist (as opposed to existing and being unusable).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { cause, .. } if cause.kind() == ErrorKind::NotFound)
    }
}

/// Reads the secret file at `path`, refusing it when other users may read it.
///
/// A systemd credential (a file under `$CREDENTIALS_DIRECTORY`, from `LoadCredential=`) may
/// also be readable by its group: recent systemd leaves credentials owned by root with mode
/// 0400 and grants the service user read access by an ACL entry, which `stat` shows as group
/// read (the ACL mask). That directory is the service's alone, and read-only.
pub fn read(path: &Path) -> Result<String, SecretError> {
    read_under(path, Path::new(CREDENTIALS_ROOT))
}

/// Where systemd makes services' credentials directories.
const CREDENTIALS_ROOT: &str = "/run/credentials";

/// [`read`], with systemd's credentials directories under `root`.
fn read_under(path: &Path, root: &Path) -> Result<String, SecretError> {
    let io = |cause| SecretError::Io {
        path: path.to_owned(),
        cause,
    };
    let mut file = File::open(path).map_err(io)?;
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
    let credential = is_credential(path, root);
    let forbidden = if credential { 0o037 } else { 0o077 };
    if mode & forbidden != 0 {
        return Err(SecretError::Mode {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| match e.kind() {
        ErrorKind::InvalidData => SecretError::NotText {
            path: path.to_owned(),
        },
        _ => io(e),
    })?;
    Ok(text)
}

/// Whether `path` is a file directly inside systemd's credentials directory: both resolved
/// (no `..`, no link leads elsewhere), and the directory under `root` (`/run/credentials`),
/// where systemd makes it, so that a variable pointing anywhere else widens nothing.
fn is_credential(path: &Path, root: &Path) -> bool {
    let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
        return false;
    };
    let (Ok(dir), Ok(file)) = (std::fs::canonicalize(&dir), std::fs::canonicalize(path)) else {
        return false;
    };
    let Ok(root) = std::fs::canonicalize(root) else {
        return false;
    };
    dir.starts_with(&root) && dir != root && file.parent() == Some(dir.as_path())
}

/// Creates the secret file `path` holding `text`, which must not exist yet (an `Io` error of
/// kind `AlreadyExists` if it does: a secret someone else just wrote is never replaced).
///
/// Its directory is created with mode 0700 if missing. The text goes to a temporary file of
/// its own (created new, mode 0600), is synced, and is then linked to `path`, which fails
/// rather than replace an existing file; the directory is synced last. A crash leaves no file
/// or the whole one, never a part. On a file system without hard links the temporary file is
/// renamed into place instead, after checking that `path` is still free.
pub fn create(path: &Path, text: &str) -> Result<(), SecretError> {
    let io = |cause| SecretError::Io {
        path: path.to_owned(),
        cause,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let tmp = temporary(path).map_err(io)?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists && !path.exists() => {
                std::fs::rename(&tmp, path)
            }
            other => other,
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    written.map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// A name next to `path` for a temporary file no other writer uses.
fn temporary(path: &Path) -> std::io::Result<PathBuf> {
    let mut random = [0u8; 8];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| std::io::Error::other("the system random number generator failed"))?;
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{:016x}.tmp", u64::from_le_bytes(random)));
    Ok(PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_read_back_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("secret");
        create(&path, "s3cret\n").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(read(&path).unwrap(), "s3cret\n");
        let files = || -> Vec<_> {
            std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect()
        };
        assert_eq!(files(), ["secret"], "no temporary file is left");

        let err = create(&path, "other\n").unwrap_err();
        assert!(
            matches!(&err, SecretError::Io { cause, .. } if cause.kind() == ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(read(&path).unwrap(), "s3cret\n", "the first secret stays");
        assert_eq!(files(), ["secret"], "nor after a refusal");
    }

    /// systemd's credentials show as 0440 (root's file, read by the service through an ACL):
    /// accepted there, and only there; write or other bits never.
    #[test]
    fn systemd_credentials_may_be_group_readable() {
        let run = tempfile::tempdir().unwrap();
        let creds = run.path().join("herald.service");
        std::fs::create_dir(&creds).unwrap();
        let path = creds.join("admin-token");
        std::fs::write(&path, "token").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
        let read = |p: &Path| read_under(p, run.path());
        assert!(matches!(
            read(&path),
            Err(SecretError::Mode { mode: 0o440, .. })
        ));
        // SAFETY of the test: no other test reads CREDENTIALS_DIRECTORY, and the others' files
        // are outside this directory.
        unsafe { std::env::set_var("CREDENTIALS_DIRECTORY", &creds) };
        let accepted = read(&path);
        // Not through `..` from inside, not for a directory outside the root.
        let outside = run.path().join("elsewhere");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o440)).unwrap();
        let dotdot = read(&creds.join("..").join("elsewhere"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o460)).unwrap();
        let group_write = read(&path);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let world = read(&path);
        unsafe { std::env::set_var("CREDENTIALS_DIRECTORY", run.path()) };
        let root_itself = read(&outside);
        unsafe { std::env::remove_var("CREDENTIALS_DIRECTORY") };
        assert_eq!(accepted.unwrap(), "token");
        assert!(
            matches!(dotdot, Err(SecretError::Mode { .. })),
            "{dotdot:?}"
        );
        assert!(
            matches!(root_itself, Err(SecretError::Mode { .. })),
            "{root_itself:?}"
        );
        assert!(matches!(
            group_write,
            Err(SecretError::Mode { mode: 0o460, .. })
        ));
        assert!(matches!(world, Err(SecretError::Mode { mode: 0o444, .. })));
    }

    #[test]
    fn refuses_files_others_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read(&path).unwrap_err();
        assert!(
            matches!(err, SecretError::Mode { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(read(&path), Err(SecretError::NotText { .. })));

        let missing = read(&dir.path().join("nothing")).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
    }
}
