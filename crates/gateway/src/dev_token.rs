//! `livegate dev-token`: mints a user JWT for development, so a newcomer connects in a minute.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;
use uuid::Uuid;

use crate::config::DEV_JWT_SECRET;

/// What a development token says.
pub struct DevToken<'a> {
    pub user: &'a str,
    pub projects: &'a [Uuid],
    pub sid: Option<&'a str>,
    pub permissions: &'a [String],
    pub ttl: std::time::Duration,
    pub secret: Option<&'a str>,
}

impl DevToken<'_> {
    /// Signs the token with HS256.
    pub fn mint(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let sid = self
            .sid
            .map(str::to_owned)
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        let claims = json!({
            "sub": self.user,
            "sid": sid,
            "iat": now,
            "exp": now + self.ttl.as_secs(),
            "token_use": "user",
            "projects": self.projects,
            "permissions": self.permissions,
        });
        let secret = self.secret.unwrap_or(DEV_JWT_SECRET);
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
    }
}
