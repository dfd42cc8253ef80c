//! Payment-request statuses and the ownership registry records (CONTRACT §3, §5).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The status of a payment request. `completed`, `failed`, `cancelled` and `expired` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentRequestStatus {
    Pending,
    Authorized,
    Completed,
    Failed,
    Cancelled,
    Expired,
}

impl PaymentRequestStatus {
    pub const ALL: [PaymentRequestStatus; 6] = [
        PaymentRequestStatus::Pending,
        PaymentRequestStatus::Authorized,
        PaymentRequestStatus::Completed,
        PaymentRequestStatus::Failed,
        PaymentRequestStatus::Cancelled,
        PaymentRequestStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentRequestStatus::Pending => "pending",
            PaymentRequestStatus::Authorized => "authorized",
            PaymentRequestStatus::Completed => "completed",
            PaymentRequestStatus::Failed => "failed",
            PaymentRequestStatus::Cancelled => "cancelled",
            PaymentRequestStatus::Expired => "expired",
        }
    }

    /// A terminal request gets no further updates: its subscriptions are closed.
    pub fn is_terminal(self) -> bool {
        match self {
            PaymentRequestStatus::Pending | PaymentRequestStatus::Authorized => false,
            PaymentRequestStatus::Completed
            | PaymentRequestStatus::Failed
            | PaymentRequestStatus::Cancelled
            | PaymentRequestStatus::Expired => true,
        }
    }
}

impl fmt::Display for PaymentRequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentRequestStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentRequestStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or(())
    }
}

/// `{prefix}:payment-request:{payment_request_id}`: who owns a request and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequestRecord {
    pub project_id: Uuid,
    pub provider_payment_id: Option<String>,
    pub status: PaymentRequestStatus,
}

/// `{prefix}:provider-payment:{provider_payment_id}`: the request a provider id stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderPaymentRecord {
    pub project_id: Uuid,
    pub payment_request_id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses() {
        let terminal: Vec<_> = PaymentRequestStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(PaymentRequestStatus::as_str)
            .collect();
        assert_eq!(terminal, ["completed", "failed", "cancelled", "expired"]);
        assert_eq!("expired".parse(), Ok(PaymentRequestStatus::Expired));
        assert!("done".parse::<PaymentRequestStatus>().is_err());
    }

    #[test]
    fn registry_records_read_the_contract_json() {
        let r: PaymentRequestRecord = serde_json::from_str(
            r#"{"project_id":"93425026-6BB8-4F81-A75D-63F538E1A123","provider_payment_id":null,"status":"pending"}"#,
        )
        .expect("record parses");
        assert_eq!(r.status, PaymentRequestStatus::Pending);
        assert_eq!(r.provider_payment_id, None);
    }
}
