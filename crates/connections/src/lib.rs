//! The connections core: services over the store and the Salesforce client. Today: the
//! [`TokenKeeper`] (B1), which keeps every connection's Salesforce session usable.
//! The server's API and the Admin Center call these services; they never talk to Salesforce
//! or the database directly.

mod health;
mod keeper;

pub use health::SweepSummary;
pub use keeper::{Clock, KeeperError, LoginUrls, SystemClock, TokenKeeper};
