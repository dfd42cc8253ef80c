//! The engine seen as a [`Publisher`]: what in-process producers (the targets API on `make run`)
//! publish through, exactly as an external service would through Redis or HTTP.

use std::sync::Arc;
use std::time::Duration;

use livegate_protocol::Publication;
use livegate_protocol::chat::ChatPublication;
use livegate_publisher::{Error, Publisher, ensure_chat_event_id, ensure_event_id};

use super::Engine;

#[derive(Clone)]
pub struct EnginePublisher {
    engine: Arc<dyn Engine>,
}

impl EnginePublisher {
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        EnginePublisher { engine }
    }
}

impl Publisher for EnginePublisher {
    async fn publish(&self, mut publication: Publication) -> Result<String, Error> {
        let event_id = ensure_event_id(&mut publication);
        self.engine
            .publish(publication.into())
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(event_id)
    }

    async fn publish_chat(&self, mut publication: ChatPublication) -> Result<String, Error> {
        let event_id = ensure_chat_event_id(&mut publication);
        self.engine
            .publish(publication.into())
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(event_id)
    }

    async fn revoke_session(&self, sid: &str, reason: &str, ttl: Duration) -> Result<(), Error> {
        self.engine
            .revoke_session(sid, reason, ttl)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))
    }
}
