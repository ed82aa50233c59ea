//! The connections core, below the service layer: the [`TokenKeeper`] (B1), which keeps every
//! connection's Salesforce session usable (one renewal per connection, across instances), and
//! its periodic health sweep. The `service` crate's actions and publish worker call it; it
//! knows nothing of HTTP.

mod failure;
mod health;
mod keeper;

pub use failure::{Failure, classify};
pub use health::{KeepAliveSummary, SweepSummary, Trigger};
pub use keeper::{Clock, DEFAULT_GRACE, KeeperError, LoginUrls, SystemClock, TokenKeeper};
