//! `herald publish` and `herald token`: a small client of the admin API, for operators and CI
//! jobs.
//!
//! It uses the same JSON types as the server ([`super::types`]), so the two cannot drift.

use std::time::Duration;

use std::path::{Path, PathBuf};
use thiserror::Error;

use ureq::Agent;
use ureq::tls::{PemItem, RootCerts, TlsConfig, parse_pem};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::{
    AbortJson, BatchRequest, BatchResponse, CreatedToken, DeniedJson, DenyJson, DsSeenJson,
    ErrorBody, KeysJson, NewRolloutJson, NewToken, NodeJson, NodeList, PutNode, RollKeyJson,
    RolloutJson, RolloutList, TokenList, ZoneJson,
};

/// Errors of the admin client.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The API answered with an error status.
    #[error("{status}: {message}")]
    Api { status: u16, message: String },
    /// The API could not be reached.
    #[error("cannot reach the API at {url}")]
    Transport {
        url: String,
        #[source]
        cause: Box<ureq::Error>,
    },
    /// The CA file of `--ca-file` cannot be read.
    #[error("cannot read the CA file {path}")]
    Ca {
        path: PathBuf,
        #[source]
        cause: Box<ureq::Error>,
    },
    #[error("{0} holds no certificate")]
    NoCa(PathBuf),
    /// The answer was not what the API returns.
    #[error("unexpected answer from the API")]
    Decode(#[source] Box<ureq::Error>),
}

/// A client for one API base URL and token.
pub struct AdminClient {
    base: String,
    token: String,
    agent: Agent,
}

impl AdminClient {
    /// `api` is the base URL, such as `http://127.0.0.1:8053` or `https://herald.example:8053`;
    /// an `https` API is trusted by the system's roots (webpki's).
    pub fn new(api: &str, token: &str) -> Self {
        Self::build(api, token, None)
    }

    /// [`AdminClient::new`] for an `https` API whose certificate is signed by the CA in the PEM
    /// file `ca` (and by nothing else).
    pub fn with_ca(api: &str, token: &str, ca: &Path) -> Result<Self, ClientError> {
        let bad = |cause| ClientError::Ca {
            path: ca.to_owned(),
            cause: Box::new(cause),
        };
        let pem = std::fs::read(ca).map_err(|e| bad(ureq::Error::Io(e)))?;
        let certs = parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        if certs.is_empty() {
            return Err(ClientError::NoCa(ca.to_owned()));
        }
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&certs))
            .build();
        Ok(Self::build(api, token, Some(tls)))
    }

    fn build(api: &str, token: &str, tls: Option<TlsConfig>) -> Self {
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)));
        if let Some(tls) = tls {
            config = config.tls_config(tls);
        }
        Self {
            base: api.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            agent: config.build().into(),
        }
    }

    /// Publishes `commit` for `node` of `zone`.
    pub fn publish(&self, zone: &str, node: &str, commit: &str) -> Result<NodeJson, ClientError> {
        let body = PutNode {
            commit: commit.to_owned(),
        };
        self.call(
            Method::Put(&body),
            &format!("/v1/zones/{zone}/nodes/{node}"),
        )?
        .read_json()
    }

    /// Applies a batch of publishes and deletes to `zone`, all or nothing.
    pub fn batch(&self, zone: &str, batch: &BatchRequest) -> Result<BatchResponse, ClientError> {
        self.call(Method::Post(batch), &format!("/v1/zones/{zone}/batch"))?
            .read_json()
    }

    /// One page of `zone`'s nodes in name order: up to `limit` (at most 1000) after `after`.
    /// Pass the answer's `next` as `after` for the next page; it is `None` on the last.
    pub fn nodes(
        &self,
        zone: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<NodeList, ClientError> {
        self.nodes_in_state(zone, None, after, limit)
    }

    /// [`AdminClient::nodes`], only those in `state` (`current`, `behind`, `failed`,
    /// `silent`) when given.
    pub fn nodes_in_state(
        &self,
        zone: &str,
        state: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<NodeList, ClientError> {
        // Node labels are a-z, 0-9 and '-', and states are words: nothing to escape.
        let mut path = format!("/v1/zones/{zone}/nodes?limit={limit}");
        if let Some(state) = state {
            path.push_str("&state=");
            path.push_str(state);
        }
        if let Some(after) = after {
            path.push_str("&after=");
            path.push_str(after);
        }
        self.call::<()>(Method::Get, &path)?.read_json()
    }

    /// Makes a scoped token (admin only).
    pub fn create_token(&self, token: &NewToken) -> Result<CreatedToken, ClientError> {
        self.call(Method::Post(token), "/v1/tokens")?.read_json()
    }

    /// Lists the scoped tokens (admin only).
    pub fn tokens(&self) -> Result<TokenList, ClientError> {
        self.call::<()>(Method::Get, "/v1/tokens")?.read_json()
    }

    /// Revokes a token (admin only).
    pub fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        self.call::<()>(Method::Delete, &format!("/v1/tokens/{id}"))?;
        Ok(())
    }

    /// Starts a rollout.
    pub fn start_rollout(
        &self,
        zone: &str,
        rollout: &NewRolloutJson,
    ) -> Result<RolloutJson, ClientError> {
        self.call(Method::Post(rollout), &format!("/v1/zones/{zone}/rollouts"))?
            .read_json()
    }

    /// The zone's rollouts, newest first.
    pub fn rollouts(&self, zone: &str, limit: usize) -> Result<RolloutList, ClientError> {
        self.call::<()>(
            Method::Get,
            &format!("/v1/zones/{zone}/rollouts?limit={limit}"),
        )?
        .read_json()
    }

    /// One rollout.
    pub fn rollout(&self, zone: &str, id: u64) -> Result<RolloutJson, ClientError> {
        self.call::<()>(Method::Get, &format!("/v1/zones/{zone}/rollouts/{id}"))?
            .read_json()
    }

    /// `pause`, `resume` or `abort` (with `revert`) a rollout.
    pub fn drive_rollout(
        &self,
        zone: &str,
        id: u64,
        action: &str,
        revert: bool,
    ) -> Result<RolloutJson, ClientError> {
        let path = format!("/v1/zones/{zone}/rollouts/{id}/{action}");
        self.call(Method::Post(&AbortJson { revert }), &path)?
            .read_json()
    }

    /// Puts a commit on the zone's deny-list (admin only).
    pub fn deny_commit(&self, zone: &str, deny: &DenyJson) -> Result<DeniedJson, ClientError> {
        self.call(
            Method::Post(deny),
            &format!("/v1/zones/{zone}/denied-commits"),
        )?
        .read_json()
    }

    /// Starts a key rollover of `zone`, or hurries the running one (`revoke_old`).
    pub fn roll_key(&self, zone: &str, req: &RollKeyJson) -> Result<KeysJson, ClientError> {
        self.call(Method::Post(req), &format!("/v1/zones/{zone}/keys/roll"))?
            .read_json()
    }

    /// Tells the server that the parent's DS names the new key, served with `ttl`.
    pub fn ds_seen(&self, zone: &str, seen: &DsSeenJson) -> Result<KeysJson, ClientError> {
        self.call(
            Method::Post(seen),
            &format!("/v1/zones/{zone}/keys/ds-seen"),
        )?
        .read_json()
    }

    /// One zone: serial, nodes, keys, rollover, secondaries.
    pub fn zone(&self, zone: &str) -> Result<ZoneJson, ClientError> {
        self.call::<()>(Method::Get, &format!("/v1/zones/{zone}"))?
            .read_json()
    }

    /// Sends one request; an error status becomes [`ClientError::Api`] with the API's message.
    fn call<B: Serialize>(&self, method: Method<'_, B>, path: &str) -> Result<Answer, ClientError> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let transport = |cause| ClientError::Transport {
            url: url.clone(),
            cause: Box::new(cause),
        };
        let mut response = match method {
            Method::Put(b) => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .send_json(b),
            Method::Post(b) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(b),
            Method::Delete => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            Method::Get => self.agent.get(&url).header("Authorization", &auth).call(),
        }
        .map_err(transport)?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Answer(response));
        }
        let message = response
            .body_mut()
            .read_json::<ErrorBody>()
            .map(|e| e.error)
            .unwrap_or_else(|_| "no error message".into());
        Err(ClientError::Api { status, message })
    }
}

/// A request's method, with the JSON body of those that have one.
enum Method<'b, B> {
    Get,
    Delete,
    Put(&'b B),
    Post(&'b B),
}

/// A successful answer, to be read as JSON.
struct Answer(ureq::http::Response<ureq::Body>);

impl Answer {
    fn read_json<T: DeserializeOwned>(mut self) -> Result<T, ClientError> {
        self.0
            .body_mut()
            .read_json()
            .map_err(|e| ClientError::Decode(Box::new(e)))
    }
}
