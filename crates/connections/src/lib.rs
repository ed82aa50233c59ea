//! The connections core, below the service layer: the [`TokenKeeper`] (B1), which keeps every
//! connection's Salesforce session usable (one renewal per connection, across instances), and
//! its periodic health sweep. The `service` crate's actions and publish worker call it; it
//! knows nothing of HTTP.

mod health;
mod keeper;

pub use health::SweepSummary;
pub use keeper::{Clock, KeeperError, LoginUrls, SystemClock, TokenKeeper};
