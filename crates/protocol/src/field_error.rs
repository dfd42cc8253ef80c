//! One field-level validation failure, as it appears in `meta.errors` and in publish API errors.

use serde::Serialize;

/// `{"field": "<json pointer or name>", "message": "<why>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The failing field: a name (`payment_request_id`) or a JSON pointer (`/target/kind`);
    /// empty for the frame as a whole.
    pub field: String,
    /// Why it failed, for humans.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
