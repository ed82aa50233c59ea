//! The objects this API serves (`StaticResource`, `Organization`, `User`, `PermissionSetAccess`
//! records), their fields, and the rows a caller can see.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// Which API a request is on; as an extractor, read from the path (the Tooling API's paths
/// have `tooling` right after the version), so one handler serves both.
pub(super) enum Api {
    Data,
    Tooling,
}

impl Api {
    pub(super) fn path(self, version: &str) -> String {
        match self {
            Api::Data => format!("/services/data/v{version}"),
            Api::Tooling => format!("/services/data/v{version}/tooling"),
        }
    }
}

pub(super) const STATIC_RESOURCE_FIELDS: &[&str] = &[
    "Id",
    "NamespacePrefix",
    "Name",
    "ContentType",
    "BodyLength",
    "Body",
    "Description",
    "CacheControl",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
];
pub(super) const TOOLING_STATIC_RESOURCE_FIELDS: &[&str] = &[
    "Id",
    "NamespacePrefix",
    "Name",
    "ContentType",
    "BodyLength",
    "Body",
    "Description",
    "CacheControl",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "ManageableState",
];
pub(super) const ORGANIZATION_FIELDS: &[&str] = &[
    "Id",
    "Name",
    "Division",
    "InstanceName",
    "IsSandbox",
    "TrialExpirationDate",
    "NamespacePrefix",
    "OrganizationType",
    "PrimaryContact",
    "DefaultLocaleSidKey",
    "LanguageLocaleKey",
    "TimeZoneSidKey",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
];
pub(super) const USER_FIELDS: &[&str] = &[
    "Id",
    "Username",
    "Email",
    "Name",
    "FirstName",
    "LastName",
    "IsActive",
    "OrganizationId",
    "UserType",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
];
pub(super) const PERMISSION_ACCESS_FIELDS: &[&str] = &[
    "Id",
    "LastCacheUpdate",
    "PermissionsApiEnabled",
    "PermissionsCustomizeApplication",
    "PermissionsModifyAllData",
    "PermissionsModifyMetadata",
    "PermissionsViewSetup",
    "PermissionsViewAllData",
    "PermissionsManageUsers",
];

pub(super) const AURA_FIELDS: &[&str] = &[
    "Id",
    "DeveloperName",
    "MasterLabel",
    "NamespacePrefix",
    "Description",
    "ApiVersion",
    "ManageableState",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
];
pub(super) const LWC_FIELDS: &[&str] = &[
    "Id",
    "DeveloperName",
    "MasterLabel",
    "NamespacePrefix",
    "Description",
    "ApiVersion",
    "IsExposed",
    "ManageableState",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
];
pub(super) const CSP_FIELDS: &[&str] = &[
    "Id",
    "DeveloperName",
    "MasterLabel",
    "NamespacePrefix",
    "Description",
    "EndpointUrl",
    "Context",
    "IsActive",
    "IsApplicableToConnectSrc",
    "IsApplicableToImgSrc",
    "IsApplicableToMediaSrc",
    "IsApplicableToStyleSrc",
    "IsApplicableToFontSrc",
    "IsApplicableToFrameSrc",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
];

pub(super) const APP_DEFINITION_FIELDS: &[&str] = &[
    "Id",
    "DurableId",
    "DeveloperName",
    "NamespacePrefix",
    "Label",
    "MasterLabel",
    "Description",
    "NavType",
    "UiType",
    "UtilityBar",
];
pub(super) const FLEXIPAGE_FIELDS: &[&str] = &[
    "Id",
    "DeveloperName",
    "MasterLabel",
    "NamespacePrefix",
    "Description",
    "Type",
    "Metadata",
    "FullName",
    "ManageableState",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
];

/// The canonical name and fields of an object this API serves.
pub(super) fn object_def(api: Api, name: &str) -> Option<(&'static str, &'static [&'static str])> {
    let all: &[(&str, &[&str])] = match api {
        Api::Data => &[
            ("StaticResource", STATIC_RESOURCE_FIELDS),
            ("Organization", ORGANIZATION_FIELDS),
            ("User", USER_FIELDS),
            ("UserPermissionAccess", PERMISSION_ACCESS_FIELDS),
            ("AuraDefinitionBundle", AURA_FIELDS),
            ("CspTrustedSite", CSP_FIELDS),
            ("AppDefinition", APP_DEFINITION_FIELDS),
        ],
        Api::Tooling => &[
            ("StaticResource", TOOLING_STATIC_RESOURCE_FIELDS),
            ("Organization", ORGANIZATION_FIELDS),
            ("User", USER_FIELDS),
            ("AuraDefinitionBundle", AURA_FIELDS),
            ("LightningComponentBundle", LWC_FIELDS),
            ("CspTrustedSite", CSP_FIELDS),
            ("FlexiPage", FLEXIPAGE_FIELDS),
        ],
    };
    all.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).copied()
}

pub(super) fn attributes(api: Api, version: &str, object: &str, id: &str) -> Value {
    json!({"type": object, "url": format!("{}/sobjects/{object}/{id}", api.path(version))})
}

pub(super) fn resource_row(api: Api, version: &str, r: &StaticResource) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("attributes".into(), attributes(api, version, "StaticResource", &r.id));
    m.insert("Id".into(), json!(r.id));
    m.insert("NamespacePrefix".into(), r.namespace_prefix.as_ref().map_or(Value::Null, |n| json!(n)));
    m.insert("Name".into(), json!(r.name));
    m.insert("ContentType".into(), json!(r.content_type));
    m.insert("BodyLength".into(), json!(r.body.len()));
    m.insert("Body".into(), json!(format!("{}/sobjects/StaticResource/{}/Body", api.path(version), r.id)));
    m.insert("Description".into(), r.description.as_ref().map_or(Value::Null, |d| json!(d)));
    m.insert("CacheControl".into(), json!(r.cache_control));
    m.insert("CreatedDate".into(), json!(sf_datetime(r.created_ms)));
    m.insert("CreatedById".into(), json!(r.created_by));
    m.insert("LastModifiedDate".into(), json!(sf_datetime(r.modified_ms)));
    m.insert("LastModifiedById".into(), json!(r.modified_by));
    m.insert("SystemModstamp".into(), json!(sf_datetime(r.modified_ms)));
    if api == Api::Tooling {
        m.insert("ManageableState".into(), json!("unmanaged"));
    }
    m
}

pub(super) fn org_row(api: Api, version: &str, org: &state::Org) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("attributes".into(), attributes(api, version, "Organization", &org.id));
    m.insert("Id".into(), json!(org.id));
    m.insert("Name".into(), json!(org.name));
    m.insert("Division".into(), Value::Null);
    m.insert("InstanceName".into(), json!(org.instance_name));
    m.insert("IsSandbox".into(), json!(org.sandbox));
    m.insert("TrialExpirationDate".into(), Value::Null);
    m.insert("NamespacePrefix".into(), Value::Null);
    m.insert("OrganizationType".into(), json!(org.edition));
    m.insert("PrimaryContact".into(), Value::Null);
    m.insert("DefaultLocaleSidKey".into(), json!("en_US"));
    m.insert("LanguageLocaleKey".into(), json!("en_US"));
    m.insert("TimeZoneSidKey".into(), json!("America/Los_Angeles"));
    m.insert("CreatedDate".into(), json!(sf_datetime(org.created_ms)));
    m.insert("LastModifiedDate".into(), json!(sf_datetime(org.created_ms)));
    m.insert("SystemModstamp".into(), json!(sf_datetime(org.created_ms)));
    m
}

pub(super) fn user_row(api: Api, version: &str, user: &state::User, org: &state::Org) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("attributes".into(), attributes(api, version, "User", &user.id));
    m.insert("Id".into(), json!(user.id));
    m.insert("Username".into(), json!(user.username));
    m.insert("Email".into(), json!(user.email));
    m.insert("Name".into(), json!(user.display_name()));
    m.insert("FirstName".into(), json!(user.first_name));
    m.insert("LastName".into(), json!(user.last_name));
    m.insert("IsActive".into(), json!(user.active));
    m.insert("OrganizationId".into(), json!(user.org_id));
    m.insert("UserType".into(), json!("Standard"));
    m.insert("CreatedDate".into(), json!(sf_datetime(org.created_ms)));
    m.insert("LastModifiedDate".into(), json!(sf_datetime(org.created_ms)));
    m.insert("SystemModstamp".into(), json!(sf_datetime(org.created_ms)));
    m
}

pub(super) fn permission_row(world: &World, ctx: &Ctx, now: i64) -> Map<String, Value> {
    let user = &world.users[&ctx.user_id];
    let org = &world.orgs[&ctx.org_id];
    let id = ids::make(ids::PERMISSION_ACCESS_PREFIX, &org.pod, 1);
    let mut m = Map::new();
    m.insert("attributes".into(), json!({"type": "UserPermissionAccess", "url": format!("/services/data/v{}/sobjects/UserPermissionAccess/{id}", ctx.version)}));
    m.insert("Id".into(), json!(id));
    m.insert("LastCacheUpdate".into(), json!(sf_datetime(now)));
    m.insert("PermissionsApiEnabled".into(), json!(user.api_enabled));
    m.insert("PermissionsCustomizeApplication".into(), json!(user.customize_application));
    m.insert("PermissionsModifyAllData".into(), json!(user.modify_all_data));
    m.insert("PermissionsModifyMetadata".into(), json!(user.modify_metadata));
    m.insert("PermissionsViewSetup".into(), json!(true));
    m.insert("PermissionsViewAllData".into(), json!(user.customize_application));
    m.insert("PermissionsManageUsers".into(), json!(user.customize_application));
    m
}

/// Every record of `object` the caller can see, as full rows.
pub(super) fn rows(world: &World, ctx: &Ctx, api: Api, object: &str, now: i64) -> Vec<Map<String, Value>> {
    match object {
        "StaticResource" => {
            let mut list: Vec<&StaticResource> = world.org_resources(&ctx.org_id).collect();
            list.sort_by(|a, b| a.id.cmp(&b.id));
            list.into_iter().map(|r| resource_row(api, &ctx.version, r)).collect()
        }
        "Organization" => vec![org_row(api, &ctx.version, &world.orgs[&ctx.org_id])],
        "User" => {
            let org = &world.orgs[&ctx.org_id];
            let mut users: Vec<&state::User> = world.users.values().filter(|u| u.org_id == ctx.org_id).collect();
            users.sort_by(|a, b| a.id.cmp(&b.id));
            users.into_iter().map(|u| user_row(api, &ctx.version, u, org)).collect()
        }
        "UserPermissionAccess" => vec![permission_row(world, ctx, now)],
        "AuraDefinitionBundle" => component_rows(world, ctx, api, crate::metadata::Kind::Aura),
        "LightningComponentBundle" => component_rows(world, ctx, api, crate::metadata::Kind::Lwc),
        "CspTrustedSite" => component_rows(world, ctx, api, crate::metadata::Kind::CspTrustedSite),
        "FlexiPage" => component_rows(world, ctx, api, crate::metadata::Kind::FlexiPage),
        "AppDefinition" => world
            .orgs
            .get(&ctx.org_id)
            .map(|o| o.apps.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|app| {
                let mut m = Map::new();
                m.insert("attributes".into(), attributes(api, &ctx.version, "AppDefinition", &app.durable_id));
                m.insert("Id".into(), json!("000000000000000AAA"));
                m.insert("DurableId".into(), json!(app.durable_id));
                m.insert("DeveloperName".into(), json!(app.developer_name));
                m.insert("NamespacePrefix".into(), app.namespace.as_ref().map_or(Value::Null, |n| json!(n)));
                m.insert("Label".into(), json!(app.label));
                m.insert("MasterLabel".into(), json!(app.label));
                m.insert("Description".into(), Value::Null);
                m.insert("NavType".into(), json!("Standard"));
                m.insert("UiType".into(), json!("Lightning"));
                m.insert("UtilityBar".into(), app.utility_bar.as_ref().map_or(Value::Null, |b| json!(b)));
                m
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The org's metadata components of a kind (issue #15), as rows.
fn component_rows(world: &World, ctx: &Ctx, api: Api, kind: crate::metadata::Kind) -> Vec<Map<String, Value>> {
    let mut list: Vec<&crate::metadata::Component> = world.org_components(&ctx.org_id, kind).collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    list.into_iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("attributes".into(), attributes(api, &ctx.version, kind.type_name(), &c.id));
            m.insert("Id".into(), json!(c.id));
            m.insert("DeveloperName".into(), json!(c.full_name));
            m.insert("MasterLabel".into(), json!(c.full_name));
            m.insert("NamespacePrefix".into(), Value::Null);
            m.insert("Description".into(), c.description.as_ref().map_or(Value::Null, |d| json!(d)));
            m.insert("ManageableState".into(), json!("unmanaged"));
            m.insert("CreatedDate".into(), json!(sf_datetime(c.created_ms)));
            m.insert("CreatedById".into(), json!(c.created_by));
            m.insert("LastModifiedDate".into(), json!(sf_datetime(c.modified_ms)));
            m.insert("LastModifiedById".into(), json!(c.modified_by));
            if kind == crate::metadata::Kind::FlexiPage {
                let xml = c.files.values().next().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                let metadata = crate::flexipage::metadata_json(&xml);
                m.insert("MasterLabel".into(), metadata.get("masterLabel").cloned().unwrap_or(Value::Null));
                m.insert("Type".into(), metadata.get("type").cloned().unwrap_or(Value::Null));
                m.insert("FullName".into(), json!(c.full_name));
                m.insert("Metadata".into(), metadata);
            } else if kind != crate::metadata::Kind::CspTrustedSite {
                m.insert("ApiVersion".into(), json!(c.api_version.parse::<f64>().unwrap_or(60.0)));
            }
            if kind == crate::metadata::Kind::Lwc {
                let meta =
                    c.files.iter().find(|(p, _)| p.ends_with(".js-meta.xml")).map(|(_, b)| String::from_utf8_lossy(b));
                let exposed = meta
                    .is_some_and(|m| crate::metadata::tag_values(&m, "isExposed").first().is_some_and(|v| v == "true"));
                m.insert("IsExposed".into(), json!(exposed));
            }
            if let Some(site) = &c.csp {
                m.insert("EndpointUrl".into(), json!(site.endpoint_url));
                m.insert("Context".into(), json!(site.context));
                m.insert("IsActive".into(), json!(site.is_active));
                m.insert("IsApplicableToConnectSrc".into(), json!(site.connect));
                m.insert("IsApplicableToImgSrc".into(), json!(site.img));
                m.insert("IsApplicableToMediaSrc".into(), json!(site.media));
                m.insert("IsApplicableToStyleSrc".into(), json!(site.style));
                m.insert("IsApplicableToFontSrc".into(), json!(site.font));
                m.insert("IsApplicableToFrameSrc".into(), json!(site.frame));
            }
            m
        })
        .collect()
}

/// Keeps `attributes` and the named fields, in the order written.
pub(super) fn project(row: &Map<String, Value>, fields: &[&str]) -> Value {
    let mut out = Map::new();
    if let Some(a) = row.get("attributes") {
        out.insert("attributes".into(), a.clone());
    }
    for f in fields {
        out.insert((*f).to_string(), row.get(*f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Api {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        // `/services/data/v60.0/tooling/...`
        Ok(if parts.uri.path().split('/').nth(4) == Some("tooling") { Api::Tooling } else { Api::Data })
    }
}
