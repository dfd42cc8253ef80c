//! The HTTP backend: `POST /api/v1/publish` and `POST /api/v1/revoke` on a gateway, for
//! gateways on the embedded engine (no Redis between publisher and node).

use std::time::Duration;

use livegate_protocol::Publication;
use livegate_protocol::chat::ChatPublication;
use serde_json::{Value, json};

use crate::{Error, Publisher, ensure_chat_event_id, ensure_event_id};

#[derive(Clone)]
pub struct HttpPublisher {
    client: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl HttpPublisher {
    /// `base_url` like `http://127.0.0.1:8080`; `api_key` is the gateway's publish key.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        HttpPublisher {
            client: reqwest::Client::new(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.into(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        let url = format!("{}{}", self.base_url, path);
        let http = |source| Error::Http {
            url: url.clone(),
            source,
        };
        let response = self
            .client
            .post(&url)
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        let text = response.text().await.map_err(http)?;
        if !status.is_success() {
            return Err(Error::Rejected {
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Publisher for HttpPublisher {
    async fn publish(&self, mut publication: Publication) -> Result<String, Error> {
        let event_id = ensure_event_id(&mut publication);
        self.post("/api/v1/publish", &publication.to_json()).await?;
        Ok(event_id)
    }

    async fn publish_chat(&self, mut publication: ChatPublication) -> Result<String, Error> {
        let event_id = ensure_chat_event_id(&mut publication);
        self.post("/api/v1/publish", &publication.to_json()).await?;
        Ok(event_id)
    }

    async fn revoke_session(&self, sid: &str, reason: &str, _ttl: Duration) -> Result<(), Error> {
        // The gateway applies its own LIVEGATE_REVOCATION_TTL.
        self.post("/api/v1/revoke", &json!({"sid": sid, "reason": reason}))
            .await
            .map(|_| ())
    }
}
