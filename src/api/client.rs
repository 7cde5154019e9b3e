//! `herald publish`: a small client of the admin API, for operators and CI jobs.
//!
//! It uses the same JSON types as the server ([`super::types`]), so the two cannot drift.

use std::time::Duration;

use thiserror::Error;
use ureq::Agent;

use super::types::{ErrorBody, NodeJson, PutNode};

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
        cause: ureq::Error,
    },
    /// The answer was not what the API returns.
    #[error("unexpected answer from the API")]
    Decode(#[source] ureq::Error),
}

/// A client for one API base URL and token.
pub struct AdminClient {
    base: String,
    token: String,
    agent: Agent,
}

impl AdminClient {
    /// `api` is the base URL, such as `http://127.0.0.1:8053`.
    pub fn new(api: &str, token: &str) -> Self {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            base: api.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            agent,
        }
    }

    /// Publishes `commit` for `node` of `zone`.
    pub fn publish(&self, zone: &str, node: &str, commit: &str) -> Result<NodeJson, ClientError> {
        let url = format!("{}/v1/zones/{zone}/nodes/{node}", self.base);
        let mut response = self
            .agent
            .put(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_json(PutNode {
                commit: commit.to_owned(),
            })
            .map_err(|cause| ClientError::Transport {
                url: url.clone(),
                cause,
            })?;
        let status = response.status().as_u16();
        let body = response.body_mut();
        if (200..300).contains(&status) {
            body.read_json::<NodeJson>().map_err(ClientError::Decode)
        } else {
            let message = body
                .read_json::<ErrorBody>()
                .map(|e| e.error)
                .unwrap_or_else(|_| "no error message".into());
            Err(ClientError::Api { status, message })
        }
    }
}
