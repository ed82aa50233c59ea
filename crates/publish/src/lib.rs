//! Publishing (F3, B2): a folder or an uploaded ZIP becomes one deterministic ZIP bundle
//! ([`Bundle`]), refused before any API call when it breaks a rule; [`publish_to_org`] puts a
//! bundle into one org as a ZIP static resource — created the first time, its `Body` replaced
//! in place after, skipped when the org already holds the same content hash. Deployments
//! across many orgs build on these. Must not import the store or the server.

mod bundle;
pub mod drift;
pub mod loader;
mod org;

pub use bundle::{Bundle, BundleError, Limits};
pub use org::{
    Budgeted, CONTENT_TYPE, Guard, PublishAction, Published, Release, description, publish_release, publish_to_org,
    publish_within,
};
