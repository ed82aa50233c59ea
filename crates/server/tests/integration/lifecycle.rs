//! Issue #14's simulation in CI: 20 connections for 14 days of emulated time (the full 1,000 ×
//! 90 days is `cargo bench -p server --bench lifecycle`). Every goal is asserted: exactly the
//! connections whose cause needs a person are Logged out, each with the right reason in time;
//! none is lost to a cause Lightbridge could have prevented; at most two token requests per
//! connection per day; no calls on connections already shown dead; every event type happened.

use testkit::lifecycle::{SimConfig, simulate};

#[tokio::test]
async fn fourteen_days_of_a_fleets_token_life_need_a_person_only_where_salesforce_does() {
    let config = SimConfig::ci();
    let report = simulate(config.clone()).await;
    println!("{}", report.markdown());
    let problems = report.problems(config.min_events);
    assert!(problems.is_empty(), "{problems:#?}\n{}", report.markdown());
    assert!(report.needed_human > 0, "the schedule's causes needed people:\n{}", report.markdown());
}
