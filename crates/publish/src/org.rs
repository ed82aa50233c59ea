//! One bundle into one org (F3): find the org's own resource by `Name`; create it, or replace
//! its `Body` in place; skip the upload when its `Description` already carries the bundle's
//! SHA-256.

use domain::ResourceName;
use salesforce::{Client, NewStaticResource, SalesforceError, Session, StaticResource};

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

/// The `Description` Lightbridge writes: the release and the content hash (at most 255
/// characters), which is how an unchanged publish is recognized.
pub fn description(release: &str, sha256: &str) -> String {
    let text = format!("Published by Lightbridge: release {release}, sha256:{sha256}");
    text.chars().take(255).collect()
}

fn holds(resource: &StaticResource, sha256: &str) -> bool {
    resource.description.as_deref().is_some_and(|d| d.contains(&format!("sha256:{sha256}")))
}

/// Publishes `bundle` as the ZIP static resource `name`. `cache_control` is `Private` (the
/// default Lightbridge uses) or `Public`.
pub async fn publish_to_org(
    client: &Client,
    session: &Session,
    name: &ResourceName,
    bundle: &Bundle,
    release: &str,
    cache_control: &str,
) -> Result<Published, SalesforceError> {
    let existing = client.find_static_resource(session, name.as_str()).await?;
    let text = description(release, bundle.sha256());
    let action = match &existing {
        Some(resource) if holds(resource, bundle.sha256()) => {
            return Ok(Published { action: PublishAction::Unchanged, resource: resource.clone() });
        }
        Some(resource) => {
            client.update_static_resource(session, &resource.id, bundle.bytes(), &text).await?;
            PublishAction::Updated
        }
        None => {
            let new = NewStaticResource {
                name: name.as_str(),
                content_type: "application/zip",
                cache_control,
                description: &text,
                body: bundle.bytes(),
            };
            match client.create_static_resource(session, &new).await {
                Ok(_) => PublishAction::Created,
                // Created meanwhile (another connection to the same org, or an earlier attempt
                // whose answer was lost): take the resource that is there now.
                Err(SalesforceError::Api { code, .. }) if code == "DUPLICATE_VALUE" => {
                    match client.find_static_resource(session, name.as_str()).await? {
                        Some(found) if holds(&found, bundle.sha256()) => {
                            return Ok(Published { action: PublishAction::Unchanged, resource: found });
                        }
                        Some(found) => {
                            client.update_static_resource(session, &found.id, bundle.bytes(), &text).await?;
                            PublishAction::Updated
                        }
                        None => {
                            return Err(SalesforceError::Unexpected {
                                status: 400,
                                detail: format!("{} is reported as a duplicate but cannot be found", name.as_str()),
                            });
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    };
    // Read it back: the new modstamp names the URL the org now serves.
    let resource =
        client.find_static_resource(session, name.as_str()).await?.ok_or_else(|| SalesforceError::Unexpected {
            status: 200,
            detail: format!("{name:?} is not in the org after publishing", name = name.as_str()),
        })?;
    Ok(Published { action, resource })
}
