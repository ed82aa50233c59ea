//! Prefixed, time-ordered ids: `conn_0193f0c5a8b47c5d9e1f2a3b4c5d6e7f`.

use crate::DomainError;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id; v7 UUIDs sort by creation time.
            pub fn generate() -> Self {
                $name(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            pub fn parse(text: &str) -> Result<Self, DomainError> {
                let valid = text
                    .strip_prefix(concat!($prefix, "_"))
                    .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                if valid {
                    Ok($name(text.to_string()))
                } else {
                    Err(DomainError::invalid("id", format!(concat!("not a valid ", $prefix, " id: {:?}"), text)))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id!(
    /// A tenant.
    AccountId,
    "acct"
);
id!(
    /// A person who signs in to the Admin Center.
    UserId,
    "user"
);
id!(
    /// A Salesforce connection (new or legacy).
    ConnectionId,
    "conn"
);
id!(
    /// An application content is built for, e.g. "Sales Cloud (Lightning)".
    SystemId,
    "sys"
);
id!(
    /// A content environment of a system (Production, Test, Sandbox, …).
    EnvironmentId,
    "env"
);

id!(
    /// A stored bundle: the exact bytes of one release.
    BundleId,
    "bun"
);
id!(
    /// One publish of one bundle to every connection bound to a system × environment.
    DeploymentId,
    "dep"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_other_kinds_and_junk() {
        let id = ConnectionId::generate();
        assert_eq!(ConnectionId::parse(id.as_str()), Ok(id.clone()));
        assert!(id.as_str().starts_with("conn_"));
        for bad in [
            "",
            "conn_",
            "acct_0193f0c5a8b47c5d9e1f2a3b4c5d6e7f",
            "conn_0193F0C5A8B47C5D9E1F2A3B4C5D6E7F",
            "conn_../../etc",
            "1 OR 1=1",
        ] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = AccountId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = AccountId::generate();
        assert!(a < b);
    }
}

id!(
    /// Something that happened that someone may need to hear about (#18); a webhook's
    /// `webhook-id`.
    EventId,
    "evt"
);
id!(
    /// An account's webhook endpoint (#18).
    WebhookId,
    "wh"
);
id!(
    /// One event's delivery to one webhook endpoint, with its attempts (#18).
    DeliveryId,
    "dlv"
);
