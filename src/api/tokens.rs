//! Token handlers: `POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/{id}`, for the
//! admin only.
//!
//! A new token's secret is generated here, answered once, and dropped: the store and the
//! request path keep its SHA-256 ([`super::auth`]). A revoke deletes the row and removes the
//! hash from the request path's map before answering, so the token fails from its next use.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::auth::{self, Caller};
use super::error::ApiError;
use super::openapi::WriteErrors;
use super::types::{CreatedToken, ErrorBody, NewToken, TokenJson, TokenList};
use super::{AppState, JsonBody};
use crate::record::{Scope, unix_now};
use crate::store::TokenRow;

/// The longest lifetime a token may be given: ten years.
const MAX_EXPIRES_IN: u64 = 10 * 366 * 86_400;
/// The longest description kept.
const MAX_DESCRIPTION: usize = 256;

/// `POST /v1/tokens`: 201 with the secret, shown once.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "The token; its secret is shown this once", body = CreatedToken),
        WriteErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<JsonBody<NewToken>, ApiError>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    caller.check_admin()?;
    let JsonBody(req) = body?;
    let zone = state.served_zone(&req.zone)?;
    let scope = Scope::parse(&zone, &req.nodes).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let now = unix_now();
    let expires = match req.expires_in {
        None => None,
        Some(s @ 1..=MAX_EXPIRES_IN) => Some(now + s),
        Some(s) => {
            return Err(ApiError::Invalid(format!(
                "expires_in must be 1 to {MAX_EXPIRES_IN} seconds, got {s}"
            )));
        }
    };
    let description = req.description.unwrap_or_default();
    if description.len() > MAX_DESCRIPTION || description.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "description must be at most {MAX_DESCRIPTION} bytes, without control characters"
        )));
    }
    let internal = |e: auth::AuthError| ApiError::Internal(e.into());
    let secret = auth::generate().map_err(internal)?;
    let row = TokenRow {
        id: auth::generate_id().map_err(internal)?,
        hash: auth::hash(&secret),
        zone: scope.zone.clone(),
        nodes: scope.nodes.to_string(),
        description,
        created: now,
        expires,
    };
    let stored = row.clone();
    state.write_control(move |w| w.add_token(&stored)).await?;
    state.auth.insert(&row).map_err(internal)?;
    tracing::info!(id = %row.id, scope = %scope, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: row.id,
            token: secret,
            zone: row.zone,
            nodes: row.nodes,
            expires,
        }),
    ))
}

/// `GET /v1/tokens`: every scoped token, without secrets or hashes.
#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "Every scoped token, without secrets", body = TokenList),
        (status = 401, description = "No token, or not a valid one", body = ErrorBody),
        (status = 403, description = "Not the admin token", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<TokenList>, ApiError> {
    caller.check_admin()?;
    let now = unix_now();
    let rows = state.read(|s| s.tokens()).await?;
    Ok(Json(TokenList {
        tokens: rows.into_iter().map(|r| TokenJson::new(r, now)).collect(),
    }))
}

/// `DELETE /v1/tokens/{id}`: 204, or 404 for an unknown id.
#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id, as `POST /v1/tokens` and `GET /v1/tokens` show it")),
    responses(
        (status = 204, description = "Revoked: refused from now on"),
        WriteErrors,
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.check_admin()?;
    let Path(id) = id.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let key = id.clone();
    let removed = state.write_control(move |w| w.remove_token(&key)).await?;
    // Removed from the request path in any case: the store is the source of truth.
    state.auth.remove(&id);
    if !removed {
        return Err(ApiError::NotFound(format!("token {id} does not exist")));
    }
    tracing::info!(%id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
