//! Authentication and scopes.
//!
//! Two kinds of token use the API:
//! - **the admin token**, which may do everything. It comes from `HERALD_ADMIN_TOKEN`, or is
//!   generated on first start into `<data>/admin.token`, a secret file that only its owner may
//!   read (`crate::config::secret`);
//! - **scoped tokens**, made by the admin through `POST /v1/tokens`, which may publish, delete
//!   and read the nodes of one zone that their pattern matches ([`Scope`]), and nothing else.
//!
//! Herald keeps only SHA-256 hashes of tokens: the admin token's in memory, scoped tokens' in
//! the store and, for the request path, in a map loaded at start and updated by every create
//! and revoke, so a revoked token fails on its next request. Expiry is checked on every
//! request. A token is presented as `Authorization: Bearer <token>` or, for PowerDNS tooling,
//! `X-API-Key: <token>`; [`authenticate`] turns it into the request's [`Caller`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

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
use crate::record::{Scope, unix_now};
use crate::store::TokenRow;

/// The environment variable that sets the admin token.
pub const ADMIN_TOKEN_ENV: &str = "HERALD_ADMIN_TOKEN";
/// The admin token file inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Tokens shorter than this are refused: a bearer token must not be guessable.
const MIN_TOKEN_LEN: usize = 16;
/// The header PowerDNS clients send their key in.
pub const API_KEY_HEADER: &str = "x-api-key";

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
    /// A stored token's scope no longer parses: the store was changed behind Herald's back.
    #[error("stored token {id} has an invalid scope")]
    StoredScope {
        id: String,
        #[source]
        cause: crate::record::ScopeError,
    },
}

/// How the admin token was obtained, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// A scoped token, by id.
    Scoped {
        id: String,
        scope: Scope,
    },
}

impl Caller {
    /// Whether the caller may publish, delete and read `node` of `zone` (API forms).
    pub fn may(&self, zone: &str, node: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Scoped { scope, .. } => scope.allows(zone, node),
        }
    }

    /// Whether the caller may see `zone` at all (its zone JSON, its node list).
    pub fn may_see(&self, zone: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Scoped { scope, .. } => scope.zone == zone,
        }
    }

    /// [`Caller::may`], or 403.
    pub fn check(&self, zone: &str, node: &str) -> Result<(), ApiError> {
        if self.may(zone, node) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token may not touch node {node} of zone {zone}"
            )))
        }
    }

    /// [`Caller::may_see`], or 403.
    pub fn check_zone(&self, zone: &str) -> Result<(), ApiError> {
        if self.may_see(zone) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token is not scoped to zone {zone}"
            )))
        }
    }

    /// 403 unless the caller is the admin.
    pub fn check_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Scoped { .. } => Err(ApiError::Forbidden(
                "only the admin token may do this".into(),
            )),
        }
    }
}

/// A scoped token as the request path knows it.
#[derive(Debug, Clone)]
struct Live {
    id: String,
    scope: Scope,
    expires: Option<u64>,
}

/// The hashes of the tokens that may use the API, and their scopes.
pub struct Auth {
    admin: [u8; 32],
    scoped: RwLock<HashMap<[u8; 32], Live>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

impl Auth {
    /// Keeps the hash of `admin_token`, not the token; no scoped tokens yet.
    pub fn new(admin_token: &str) -> Self {
        Self {
            admin: hash(admin_token),
            scoped: RwLock::new(HashMap::new()),
        }
    }

    /// [`Auth::new`] with the scoped tokens of the store.
    pub fn with_tokens(admin_token: &str, rows: &[TokenRow]) -> Result<Self, AuthError> {
        let auth = Self::new(admin_token);
        for row in rows {
            auth.insert(row)?;
        }
        Ok(auth)
    }

    /// Makes a stored token usable.
    pub fn insert(&self, row: &TokenRow) -> Result<(), AuthError> {
        let scope =
            Scope::parse(&row.zone, &row.nodes).map_err(|cause| AuthError::StoredScope {
                id: row.id.clone(),
                cause,
            })?;
        let live = Live {
            id: row.id.clone(),
            scope,
            expires: row.expires,
        };
        self.scoped
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.hash, live);
        Ok(())
    }

    /// Makes the token `id` unusable at once.
    pub fn remove(&self, id: &str) {
        self.scoped
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, live| live.id != id);
    }

    /// Whether `token` is the admin token, compared in constant time.
    pub fn is_admin(&self, token: &str) -> bool {
        bool::from(hash(token).ct_eq(&self.admin))
    }

    /// Who presents `token` at `now`: `None` for an unknown, revoked or expired token. The
    /// map is keyed by hash, so the lookup reveals nothing about a secret through timing.
    pub fn identify(&self, token: &str, now: u64) -> Option<Caller> {
        let h = hash(token);
        if bool::from(h.ct_eq(&self.admin)) {
            return Some(Caller::Admin);
        }
        let scoped = self.scoped.read().unwrap_or_else(|p| p.into_inner());
        let live = scoped.get(&h)?;
        if live.expires.is_some_and(|e| now >= e) {
            return None;
        }
        Some(Caller::Scoped {
            id: live.id.clone(),
            scope: live.scope.clone(),
        })
    }
}

/// The SHA-256 of a token: what is stored and compared. Tokens are 32 random bytes, so a
/// plain hash is as strong as a slow one would be.
pub fn hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// Finds the admin token: from `from_env` when set, else from `file` (the configuration's
/// `admin-token-file`, which must exist), else from `<data>/admin.token`, which is created
/// with a new random token on first start.
pub fn admin_token(
    data_dir: &Path,
    from_env: Option<String>,
    file: Option<&Path>,
) -> Result<(String, TokenSource), AuthError> {
    if let Some(token) = from_env {
        let token = token.trim().to_owned();
        if token.len() < MIN_TOKEN_LEN {
            return Err(AuthError::WeakToken);
        }
        return Ok((token, TokenSource::Environment));
    }
    if let Some(path) = file {
        let token = secret::read(path)?.trim().to_owned();
        if token.len() < MIN_TOKEN_LEN {
            return Err(AuthError::BadFile {
                path: path.to_owned(),
            });
        }
        return Ok((token, TokenSource::File(path.to_owned())));
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

/// A new token id: 8 random bytes in hex. Ids are not secret; they name a token in lists and
/// in `DELETE /v1/tokens/{id}`.
pub fn generate_id() -> Result<String, AuthError> {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The token a request presents: `Authorization: Bearer <token>`, else `X-API-Key: <token>`.
pub fn presented(request: &Request) -> Option<&str> {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    bearer.or_else(|| {
        headers
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })
}

/// Middleware: identifies the caller and hands it to the handlers as an extension; 401 for a
/// missing, unknown, revoked or expired token.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = presented(&request)
        .and_then(|t| state.auth.identify(t, unix_now()))
        .ok_or(ApiError::Unauthorized)?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generated_token_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (token, source) = admin_token(dir.path(), None, None).unwrap();
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        assert_eq!(source, TokenSource::Generated(path.clone()));
        assert_eq!(token.len(), 7 + 43);
        assert!(token.starts_with("herald_"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, source) = admin_token(dir.path(), None, None).unwrap();
        assert_eq!((again, source), (token, TokenSource::File(path)));
    }

    #[test]
    fn environment_wins_and_must_be_strong() {
        let dir = tempfile::tempdir().unwrap();
        let (t, s) = admin_token(dir.path(), Some("0123456789abcdef".into()), None).unwrap();
        assert_eq!(
            (t.as_str(), s),
            ("0123456789abcdef", TokenSource::Environment)
        );
        assert!(!dir.path().join(ADMIN_TOKEN_FILE).exists());
        assert!(matches!(
            admin_token(dir.path(), Some("short".into()), None),
            Err(AuthError::WeakToken)
        ));
    }

    #[test]
    fn refuses_a_readable_or_broken_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = admin_token(dir.path(), None, None).unwrap_err();
        assert!(
            matches!(err, AuthError::File(SecretError::Mode { mode: 0o644, .. })),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(admin_token(dir.path(), None, None).is_ok());
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            admin_token(dir.path(), None, None),
            Err(AuthError::BadFile { .. })
        ));
    }

    #[test]
    fn scoped_tokens_expire_and_revoke() {
        let row = |id: &str, secret: &str, expires| TokenRow {
            id: id.into(),
            hash: hash(secret),
            zone: "example.test".into(),
            nodes: "web-*".into(),
            description: String::new(),
            created: 100,
            expires,
        };
        let auth = Auth::with_tokens(
            "right-token-0123456789",
            &[row("a", "secret-a", None), row("b", "secret-b", Some(200))],
        )
        .unwrap();
        assert_eq!(
            auth.identify("right-token-0123456789", 0),
            Some(Caller::Admin)
        );
        let a = auth.identify("secret-a", 1_000_000).unwrap();
        assert!(a.may("example.test", "web-1"));
        assert!(!a.may("example.test", "db-1"));
        assert!(!a.may("other.test", "web-1"));
        assert!(a.check_admin().is_err());
        assert!(auth.identify("secret-b", 199).is_some());
        assert_eq!(auth.identify("secret-b", 200), None);
        auth.remove("a");
        assert_eq!(auth.identify("secret-a", 0), None);
        assert_eq!(auth.identify("unknown", 0), None);
        let mut bad = row("c", "secret-c", None);
        bad.nodes = "a*b".into();
        assert!(matches!(
            auth.insert(&bad),
            Err(AuthError::StoredScope { .. })
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
