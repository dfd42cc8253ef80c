//! The allow-list a `payment_method` is reduced to before it reaches a client (CONTRACT §3).
//! A raw provider token, or anything else a publisher adds, is dropped here.

use serde_json::{Map, Value};

/// Top-level fields of `payment_method` a client may see.
pub const PAYMENT_METHOD_FIELDS: [&str; 5] = [
    "payment_method_id",
    "merchant_account_id",
    "label",
    "metadata",
    "user_id",
];

/// Display fields of `metadata`: the union over providers (card, PayPal, Paystack), since a
/// method names no provider.
pub const METADATA_FIELDS: [&str; 10] = [
    // card
    "last4",
    "brand",
    "exp_month",
    "exp_year",
    "country",
    "type",
    "billing_country",
    // PayPal
    "paypal_email",
    "paypal_payer_id",
    // Paystack
    "paystack_email",
];

/// Keeps only the allowed fields; `metadata` keeps only display fields (and stays an object).
pub fn sanitize(method: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for field in PAYMENT_METHOD_FIELDS {
        let Some(value) = method.get(field) else {
            continue;
        };
        let value = match (field, value) {
            ("metadata", Value::Object(meta)) => Value::Object(
                meta.iter()
                    .filter(|(k, _)| METADATA_FIELDS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => value.clone(),
        };
        out.insert(field.to_owned(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn drops_raw_tokens_and_unknown_fields() {
        let pm = obj(json!({
            "payment_method_id": "pm_1", "merchant_account_id": "ma_1", "label": "Visa",
            "user_id": "u1", "provider_token": "tok_secret", "stripe_customer": "cus_1",
            "metadata": {"last4": "4242", "brand": "visa", "fingerprint": "fp", "token": "tok"}
        }));
        assert_eq!(
            Value::Object(sanitize(&pm)),
            json!({"payment_method_id": "pm_1", "merchant_account_id": "ma_1", "label": "Visa",
                   "user_id": "u1", "metadata": {"last4": "4242", "brand": "visa"}})
        );
    }

    #[test]
    fn keeps_every_display_field_of_every_provider() {
        let meta: Map<String, Value> = METADATA_FIELDS
            .iter()
            .map(|f| ((*f).to_owned(), json!(format!("v-{f}"))))
            .collect();
        let pm = obj(json!({"payment_method_id": "pm", "metadata": meta.clone()}));
        assert_eq!(sanitize(&pm).get("metadata"), Some(&Value::Object(meta)));
    }

    #[test]
    fn non_object_metadata_is_kept_as_sent() {
        let pm = obj(json!({"payment_method_id": "pm", "metadata": null}));
        assert_eq!(sanitize(&pm).get("metadata"), Some(&Value::Null));
    }
}
