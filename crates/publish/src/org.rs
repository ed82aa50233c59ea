//! One bundle into one org (F3): find the org's own resource by `Name`; create it, or replace
//! its `Body` (with its cache control and content type) in place; skip the upload when its
//! `Description` already carries the bundle's SHA-256 and its cache control is the one asked for.

use domain::ResourceName;
use salesforce::{Client, NewStaticResource, ResourceUpload, SalesforceError, Session, StaticResource};

use crate::Bundle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishAction {
    Created,
    Updated,
    /// The org already held these exact bytes: nothing was uploaded.
    Unchanged,
}

/// What publishing did in one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub action: PublishAction,
    pub resource: StaticResource,
}

/// The content type of every resource Lightbridge publishes.
pub const CONTENT_TYPE: &str = "application/zip";

/// The `Description` Lightbridge writes: the release and the content hash (at most 255
/// characters), which is how an unchanged publish is recognized.
pub fn description(release: &str, sha256: &str) -> String {
    let text = format!("Published by Lightbridge: release {release}, sha256:{sha256}");
    text.chars().take(255).collect()
}

/// One release of one resource, ready for any number of orgs: the request bodies are built
/// once (see [`ResourceUpload`]).
#[derive(Debug, Clone)]
pub struct Release {
    pub name: ResourceName,
    pub sha256: String,
    /// The bundle's length in bytes.
    pub len: u64,
    /// `Private` or `Public`.
    pub cache_control: String,
    upload: ResourceUpload,
}

impl Release {
    /// `cache_control` is `Private` (Lightbridge's default) or `Public`.
    pub fn new(
        name: &ResourceName,
        bundle: &Bundle,
        release: &str,
        cache_control: &str,
    ) -> Result<Self, SalesforceError> {
        let text = description(release, bundle.sha256());
        let upload = ResourceUpload::new(&NewStaticResource {
            name: name.as_str(),
            content_type: CONTENT_TYPE,
            cache_control,
            description: &text,
            body: bundle.bytes(),
        })?;
        Ok(Release {
            name: name.clone(),
            sha256: bundle.sha256().to_string(),
            len: bundle.bytes().len() as u64,
            cache_control: cache_control.to_string(),
            upload,
        })
    }
}

/// The org already holds this release: the same bytes (by the hash in `Description`) served
/// with the same cache control. A change of cache control alone is published.
fn holds(resource: &StaticResource, release: &Release) -> bool {
    resource.description.as_deref().is_some_and(|d| d.contains(&format!("sha256:{}", release.sha256)))
        && resource.cache_control.as_deref().is_none_or(|c| c.eq_ignore_ascii_case(&release.cache_control))
}

/// Publishes `bundle` as the ZIP static resource `name` (builds the [`Release`] for one org).
pub async fn publish_to_org(
    client: &Client,
    session: &Session,
    name: &ResourceName,
    bundle: &Bundle,
    release: &str,
    cache_control: &str,
) -> Result<Published, SalesforceError> {
    publish_release(client, session, &Release::new(name, bundle, release, cache_control)?).await
}

/// Publishes a prepared release into one org.
pub async fn publish_release(
    client: &Client,
    session: &Session,
    release: &Release,
) -> Result<Published, SalesforceError> {
    match publish_within(client, session, release, &Guard::default()).await? {
        Budgeted::Published(published) => Ok(published),
        // Nothing to compare with: never drifted.
        Budgeted::Drifted(drift) => Err(SalesforceError::Unexpected { status: 200, detail: drift.describe() }),
        // A reserve of nothing is never reached.
        Budgeted::AtReserve(usage) => Err(SalesforceError::Unexpected {
            status: 200,
            detail: format!("the org's API allowance is used up ({} of {})", usage.used, usage.max),
        }),
    }
}

/// A publish that leaves the org's daily API allowance a reserve (#17).
#[derive(Debug, Clone)]
pub enum Budgeted {
    Published(Published),
    /// The org's allowance, as its first answer reported it, is at or below the reserve:
    /// nothing was uploaded.
    AtReserve(salesforce::ApiUsage),
    /// Someone changed the resource in the org since Lightbridge published it there: nothing
    /// was uploaded (#17).
    Drifted(domain::Drift),
}

/// What a publish must respect in the org (#17).
#[derive(Debug, Clone, Default)]
pub struct Guard<'a> {
    /// The share (0 to 1) of the org's daily API allowance to leave alone.
    pub reserve: f64,
    /// What Lightbridge last published there: a copy someone changed since is left alone.
    pub baseline: Option<&'a crate::drift::Expected>,
    /// Publish over the org's copy whatever it holds (a person chose to overwrite a change):
    /// uploaded even when its `Description` names this release.
    pub overwrite: bool,
}

/// [`publish_release`], stopping before the upload when the org's daily API allowance left
/// (from the `Sforce-Limit-Info` of the lookup it makes first, so the check costs no call) is
/// below the guard's reserve. An org already holding the release costs one query and is never
/// held back. With a baseline (what Lightbridge last published there), a resource someone
/// changed in the org since is left alone and reported as drifted (#17) — unless the org's
/// copy is this very release (an upload whose outcome was not recorded, or another connection
/// to the same org).
pub async fn publish_within(
    client: &Client,
    session: &Session,
    release: &Release,
    guard: &Guard<'_>,
) -> Result<Budgeted, SalesforceError> {
    let name = release.name.as_str();
    let asked_at = client.now_ms();
    let existing = client.find_static_resource(session, name).await?;
    if let Some(expected) = guard.baseline {
        let this = crate::drift::Expected {
            sha256: release.sha256.clone(),
            content_type: CONTENT_TYPE.into(),
            cache_control: release.cache_control.clone(),
            body_length: release.len,
            modstamp_ms: i64::MIN,
        };
        match crate::drift::compare(client, session, existing.as_ref(), expected, Some(&this)).await? {
            crate::drift::Compared::Drifted(drift) => return Ok(Budgeted::Drifted(drift)),
            // The org's copy is this release, read to the byte: nothing to upload.
            crate::drift::Compared::IsRelease => {
                if let Some(resource) = existing {
                    return Ok(Budgeted::Published(Published { action: PublishAction::Unchanged, resource }));
                }
            }
            crate::drift::Compared::Clean => {}
        }
    }
    if let Some(resource) = existing.as_ref().filter(|r| !guard.overwrite && holds(r, release)) {
        return Ok(Budgeted::Published(Published { action: PublishAction::Unchanged, resource: resource.clone() }));
    }
    let reserve = guard.reserve;
    if reserve > 0.0
        && let Some(usage) = client.api_usage(&session.instance_url)
        // Only what this lookup's own answer said: never an older figure.
        && usage.seen_at >= asked_at
        && usage.remaining_share() < reserve
    {
        return Ok(Budgeted::AtReserve(usage));
    }
    let action = match &existing {
        Some(resource) => {
            client.update_prepared(session, &resource.id, &release.upload).await?;
            PublishAction::Updated
        }
        None => match client.create_prepared(session, &release.upload).await {
            Ok(_) => PublishAction::Created,
            // Created meanwhile (another connection to the same org, or an earlier attempt
            // whose answer was lost): take the resource that is there now.
            Err(SalesforceError::Api { code, .. }) if code == "DUPLICATE_VALUE" => {
                match client.find_static_resource(session, name).await? {
                    Some(found) if holds(&found, release) => {
                        return Ok(Budgeted::Published(Published {
                            action: PublishAction::Unchanged,
                            resource: found,
                        }));
                    }
                    Some(found) => {
                        client.update_prepared(session, &found.id, &release.upload).await?;
                        PublishAction::Updated
                    }
                    None => {
                        return Err(SalesforceError::Unexpected {
                            status: 400,
                            detail: format!("{name} is reported as a duplicate but cannot be found"),
                        });
                    }
                }
            }
            Err(e) => return Err(e),
        },
    };
    // Read it back: the new modstamp names the URL the org now serves.
    let resource = client.find_static_resource(session, name).await?.ok_or_else(|| SalesforceError::Unexpected {
        status: 200,
        detail: format!("{name:?} is not in the org after publishing"),
    })?;
    Ok(Budgeted::Published(Published { action, resource }))
}
