//! Scoped API tokens: their hashes and scopes (DESIGN.md, "Admin API").
//!
//! The secret of a token is never stored: only its SHA-256, which the API compares with the
//! hash of a presented token. The scope is kept as the zone and the node pattern the API
//! checked when the token was made.

use rusqlite::{Connection, params};

use super::Error;

/// One scoped token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
    /// The zone in API form.
    pub zone: String,
    /// The node pattern: `n1`, `prefix*` or `*`.
    pub nodes: String,
    pub description: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds from which the token is refused; `None`: never.
    pub expires: Option<u64>,
}

pub(super) fn list(conn: &Connection) -> Result<Vec<TokenRow>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, hash, zone, nodes, description, created, expires FROM token ORDER BY created, id",
    )?;
    let rows = stmt.query_map([], |r| {
        let hash: Vec<u8> = r.get(1)?;
        Ok((
            TokenRow {
                id: r.get(0)?,
                hash: [0; 32],
                zone: r.get(2)?,
                nodes: r.get(3)?,
                description: r.get(4)?,
                created: r.get(5)?,
                expires: r.get(6)?,
            },
            hash,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut token, hash) = row?;
        token.hash = hash.try_into().map_err(|_| {
            Error::Corrupt(format!("token {} has a hash of the wrong size", token.id))
        })?;
        out.push(token);
    }
    Ok(out)
}

pub(super) fn add(conn: &Connection, t: &TokenRow) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO token (id, hash, zone, nodes, description, created, expires) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        t.id,
        &t.hash[..],
        t.zone,
        t.nodes,
        t.description,
        t.created,
        t.expires
    ])?;
    Ok(())
}

pub(super) fn remove(conn: &Connection, id: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("DELETE FROM token WHERE id = ?1")?
        .execute([id])?
        > 0)
}
