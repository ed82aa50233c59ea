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
}
