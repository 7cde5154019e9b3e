//! Bearer-token authentication.
//!
//! The API has one token today, the admin token, which may do everything. It comes from
//! `HERALD_ADMIN_TOKEN`, or is generated on first start into `<data>/admin.token`, a secret file
//! that only its owner may read (`crate::config::secret`). Herald keeps only its SHA-256 hash,
//! and a presented token is hashed and compared in constant time.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::AppState;
use super::error::ApiError;
use crate::config::secret::{self, SecretError};

/// The environment variable that sets the admin token.
pub const ADMIN_TOKEN_ENV: &str = "HERALD_ADMIN_TOKEN";
/// The admin token file inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Tokens shorter than this are refused: a bearer token must not be guessable.
const MIN_TOKEN_LEN: usize = 16;

/// Errors of setting up authentication.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("{ADMIN_TOKEN_ENV} is shorter than {MIN_TOKEN_LEN} characters")]
    WeakToken,
    /// The token file is unreadable, or readable by others.
    #[error(transparent)]
    File(#[from] SecretError),
    #[error("{path} is empty or not a token; delete it to generate a new one")]
    BadFile { path: PathBuf },
    #[error("the system random number generator failed")]
    Random,
}

/// How the admin token was obtained, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

/// The hashes of the tokens that may use the API.
#[derive(Clone)]
pub struct Auth {
    admin: [u8; 32],
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

impl Auth {
    /// Keeps the hash of `admin_token`, not the token.
    pub fn new(admin_token: &str) -> Self {
        Self {
            admin: hash(admin_token),
        }
    }

    /// Whether `token` is the admin token, compared in constant time.
    pub fn is_admin(&self, token: &str) -> bool {
        bool::from(hash(token).ct_eq(&self.admin))
    }
}

fn hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// Finds the admin token: from `from_env` when set, else from `<data>/admin.token`, which is
/// created with a new random token on first start.
pub fn admin_token(
    data_dir: &Path,
    from_env: Option<String>,
) -> Result<(String, TokenSource), AuthError> {
    if let Some(token) = from_env {
        let token = token.trim().to_owned();
        if token.len() < MIN_TOKEN_LEN {
            return Err(AuthError::WeakToken);
        }
        return Ok((token, TokenSource::Environment));
    }
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match secret::read(&path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            if token.len() < MIN_TOKEN_LEN {
                return Err(AuthError::BadFile { path });
            }
            Ok((token, TokenSource::File(path)))
        }
        Err(e) if e.is_not_found() => {
            let token = generate()?;
            secret::create(&path, &format!("{token}\n"))?;
            Ok((token, TokenSource::Generated(path)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Prefix of generated tokens: makes them recognisable (to people and secret scanners), and
/// keeps them from starting with `-`, which command lines would take for an option.
pub const TOKEN_PREFIX: &str = "herald_";

/// A new token: the prefix and 32 random bytes in URL-safe base64.
pub fn generate() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Random)?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Middleware: lets the request through only with `Authorization: Bearer <admin token>`.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match token {
        Some(t) if state.auth.is_admin(t) => Ok(next.run(request).await),
        _ => Err(ApiError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generated_token_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (token, source) = admin_token(dir.path(), None).unwrap();
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        assert_eq!(source, TokenSource::Generated(path.clone()));
        assert_eq!(token.len(), 7 + 43);
        assert!(token.starts_with("herald_"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, source) = admin_token(dir.path(), None).unwrap();
        assert_eq!((again, source), (token, TokenSource::File(path)));
    }

    #[test]
    fn environment_wins_and_must_be_strong() {
        let dir = tempfile::tempdir().unwrap();
        let (t, s) = admin_token(dir.path(), Some("0123456789abcdef".into())).unwrap();
        assert_eq!(
            (t.as_str(), s),
            ("0123456789abcdef", TokenSource::Environment)
        );
        assert!(!dir.path().join(ADMIN_TOKEN_FILE).exists());
        assert!(matches!(
            admin_token(dir.path(), Some("short".into())),
            Err(AuthError::WeakToken)
        ));
    }

    #[test]
    fn refuses_a_readable_or_broken_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = admin_token(dir.path(), None).unwrap_err();
        assert!(
            matches!(err, AuthError::File(SecretError::Mode { mode: 0o644, .. })),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(admin_token(dir.path(), None).is_ok());
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            admin_token(dir.path(), None),
            Err(AuthError::BadFile { .. })
        ));
    }

    #[test]
    fn compares_hashes() {
        let auth = Auth::new("right-token-0123456789");
        assert!(auth.is_admin("right-token-0123456789"));
        assert!(!auth.is_admin("right-token-012345678"));
        assert!(!auth.is_admin(""));
        assert_eq!(format!("{auth:?}"), "Auth { .. }");
    }
}
