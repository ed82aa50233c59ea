//! The server's integration tests, in one binary (one link instead of fourteen): each module is
//! what used to be its own test file. Every test starts its own server through the testkit
//! (`testkit::spawn`), the way `lightbridge serve` starts, beside its own emulator.

mod accessibility;
mod api;
mod browser;
mod catalog;
mod client;
mod console;
mod deployments;
mod dns_server;
mod domains;
mod drift;
mod edit;
mod export;
mod failures;
mod isolation;
mod lifecycle;
mod mail;
mod notifications;
mod oauth;
mod oidc_provider;
mod openapi;
mod operations;
mod process;
mod secrets;
mod sessions;
mod sso;
mod table;
mod throttle;
mod token_life;
mod two_factor;
mod users;
mod webhook_receiver;
