//! Describe: the global list of objects, one object's summary and its fields.

use super::*;

pub(super) fn column_metadata(object: &str, fields: &[&str]) -> Value {
    let columns: Vec<Value> = fields
        .iter()
        .map(|f| {
            let (apex, boolean, number) = match *f {
                "Id" | "CreatedById" | "LastModifiedById" | "OrganizationId" => ("Id", false, false),
                "IsSandbox" | "IsActive" => ("Boolean", true, false),
                "BodyLength" => ("Integer", false, true),
                f if f.starts_with("Permissions") => ("Boolean", true, false),
                f if f.ends_with("Date") || f == "SystemModstamp" || f == "LastCacheUpdate" => {
                    ("Datetime", false, false)
                }
                _ => ("String", false, false),
            };
            json!({
                "aggregate": false,
                "apexType": apex,
                "booleanType": boolean,
                "columnName": f,
                "custom": false,
                "displayName": f,
                "foreignKeyName": null,
                "insertable": matches!(*f, "Name" | "ContentType" | "Body" | "Description" | "CacheControl"),
                "joinColumns": [],
                "numberType": number,
                "textType": apex == "String",
                "updatable": matches!(*f, "Name" | "ContentType" | "Body" | "Description" | "CacheControl"),
            })
        })
        .collect();
    json!({
        "columnMetadata": columns,
        "entityName": object,
        "groupBy": false,
        "idSelected": fields.contains(&"Id"),
        "keyPrefix": match object { "StaticResource" => Some(ids::STATIC_RESOURCE_PREFIX), "Organization" => Some(ids::ORG_PREFIX), "User" => Some(ids::USER_PREFIX), _ => None },
    })
}

pub(super) async fn describe_global(
    Extension(ctx): Extension<Ctx>,
    request_path: axum::extract::OriginalUri,
) -> Response {
    let api = if request_path.path().contains("/tooling/") { Api::Tooling } else { Api::Data };
    let objects: Vec<Value> = ["StaticResource", "Organization", "User"]
        .iter()
        .map(|name| describe_summary(api, &ctx.version, name))
        .collect();
    op(
        axum::Json(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})).into_response(),
        "describe_global".into(),
    )
}

pub(super) fn describe_summary(api: Api, version: &str, name: &str) -> Value {
    let writable = name == "StaticResource";
    let base = format!("{}/sobjects/{name}", api.path(version));
    json!({
        "name": name, "label": name, "labelPlural": format!("{name}s"), "custom": false,
        "keyPrefix": match name { "StaticResource" => ids::STATIC_RESOURCE_PREFIX, "Organization" => ids::ORG_PREFIX, _ => ids::USER_PREFIX },
        "layoutable": false, "activateable": false, "updateable": writable, "searchable": false,
        "createable": writable, "customSetting": false, "deletable": writable, "deprecatedAndHidden": false,
        "feedEnabled": false, "mergeable": false, "queryable": true, "replicateable": true,
        "retrieveable": true, "undeletable": false, "triggerable": false,
        "urls": {"sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}")},
    })
}

pub(super) async fn object_info(
    Extension(ctx): Extension<Ctx>,
    api: Api,
    Path((_, object)): Path<(String, String)>,
) -> Response {
    info(&ctx, api, &object)
}

pub(super) fn info(ctx: &Ctx, api: Api, object: &str) -> Response {
    let Some((name, _)) = object_def(api, object).filter(|(n, _)| *n != "UserPermissionAccess") else {
        return not_found_body();
    };
    op(
        axum::Json(json!({"objectDescribe": describe_summary(api, &ctx.version, name), "recentItems": []}))
            .into_response(),
        format!("describe:{name}"),
    )
}

pub(super) fn describe(api: Api, version: &str, name: &str, fields: &[&str]) -> Value {
    let mut summary = describe_summary(api, version, name);
    let field_list: Vec<Value> = fields
        .iter()
        .map(|f| {
            let writable = name == "StaticResource" && matches!(*f, "Name" | "ContentType" | "Body" | "Description" | "CacheControl");
            let kind = match *f {
                "Id" => "id",
                "Body" => "base64",
                "BodyLength" => "int",
                "CacheControl" => "picklist",
                "Description" => "textarea",
                f if f.ends_with("ById") => "reference",
                f if f.ends_with("Date") || f == "SystemModstamp" => "datetime",
                f if f.starts_with("Is") => "boolean",
                _ => "string",
            };
            json!({"name": f, "label": f, "type": kind, "createable": writable, "updateable": writable,
                   "nillable": !matches!(*f, "Id" | "Name" | "Body" | "ContentType"), "length": if kind == "string" { 255 } else { 0 }})
        })
        .collect();
    if let Some(m) = summary.as_object_mut() {
        m.insert("fields".into(), Value::Array(field_list));
    }
    summary
}
