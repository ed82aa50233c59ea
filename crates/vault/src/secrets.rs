//! One newtype per credential.

use zeroize::Zeroizing;

macro_rules! secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(Zeroizing<String>);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                $name(Zeroizing::new(value.into()))
            }
            /// The secret itself. Every call site is a place the secret leaves its box.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name::new(value)
            }
        }

        /// Read from a request body or a file as a plain string; there is deliberately no
        /// `Serialize`, so a secret cannot be written out by accident.
        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map($name::new)
            }
        }
    };
}

secret!(
    /// A Salesforce access token (session id).
    AccessToken
);
secret!(
    /// A Salesforce refresh token.
    RefreshToken
);
secret!(
    /// A connected app's consumer secret.
    ClientSecret
);
secret!(
    /// A PEM private key for the JWT bearer flow.
    JwtPrivateKey
);
secret!(
    /// A Lightbridge API token for automation.
    ApiToken
);
secret!(
    /// A Lightbridge user's password, only while it is being hashed or checked.
    Password
);
secret!(
    /// A person's TOTP secret (RFC 6238), base32 as authenticator apps take it.
    TotpSecret
);
secret!(
    /// An OpenID Connect provider's client secret for an account's single sign-on.
    SsoClientSecret
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let token = AccessToken::new("00Dxx!very-secret-token");
        let key = JwtPrivateKey::new("-----BEGIN PRIVATE KEY-----abc");
        let rendered = format!("{token:?} {key:?} {:?}", Some(RefreshToken::new("5Aep861secret")));
        assert!(
            !rendered.contains("secret-token") && !rendered.contains("abc") && !rendered.contains("5Aep"),
            "{rendered}"
        );
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert_eq!(token.expose_secret(), "00Dxx!very-secret-token");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn a_secret_read_from_json_keeps_its_value_and_hides_it_in_debug() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Input {
            consumer_secret: ClientSecret,
            password: Password,
        }
        let input: Input =
            serde_json::from_str(r#"{"consumer_secret": "s3cr3t-consumer", "password": "hunter2-hunter2"}"#)
                .expect("json");
        assert_eq!(input.consumer_secret.expose_secret(), "s3cr3t-consumer");
        let rendered = format!("{input:?}");
        assert!(!rendered.contains("s3cr3t") && !rendered.contains("hunter2"), "{rendered}");
    }
}
