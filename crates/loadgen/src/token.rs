//! User tokens, minted here with the server's HS256 secret: one per connection, each its own
//! user and session, valid for a day.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    sid: &'a str,
    iat: u64,
    exp: u64,
    token_use: &'static str,
    projects: [&'a str; 1],
    permissions: [&'static str; 1],
}

pub fn mint(key: &EncodingKey, user: &str, sid: &str, project: &str) -> String {
    let now = crate::state::now_us() / 1_000_000;
    let claims = Claims {
        sub: user,
        sid,
        iat: now,
        exp: now + 24 * 3600,
        token_use: "user",
        projects: [project],
        permissions: ["all"],
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
        .expect("HS256 signing of a serializable claim set cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn mints_a_token_the_server_would_read() {
        let t = mint(&EncodingKey::from_secret(b"s"), "u1", "s1", "p1");
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &t,
            &DecodingKey::from_secret(b"s"),
            &Validation::new(Algorithm::HS256),
        )
        .expect("valid");
        assert_eq!(data.claims["token_use"], "user");
        assert_eq!(data.claims["projects"][0], "p1");
        assert_eq!(data.claims["sid"], "s1");
    }
}
