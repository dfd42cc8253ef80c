//! What can go wrong when publishing.

use livegate_protocol::publication::PublicationError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidPublication(#[from] PublicationError),
    #[error("redis command on {key} failed")]
    Redis {
        key: String,
        #[source]
        source: fred::error::Error,
    },
    #[error("the registry entry {key} is not valid JSON")]
    CorruptRegistry { key: String },
    #[error("HTTP request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the engine is unavailable: {0}")]
    Unavailable(String),
    #[error("the gateway answered {status}: {body}")]
    Rejected { status: u16, body: String },
}
