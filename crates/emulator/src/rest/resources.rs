//! `StaticResource` reads and writes: validation in Salesforce's order and with its errors,
//! JSON and multipart bodies, and the `Body` blob.

use super::*;

pub(super) const WRITABLE: &[&str] = &["Name", "ContentType", "CacheControl", "Description", "Body"];

/// Name rules from salesforce-api.md §5.4; the length limit (255) was not found in Salesforce's
/// documentation and is our decision.
pub fn name_problem(name: &str) -> Option<&'static str> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__");
    (!valid).then_some(
        "The Name field can only contain underscores and alphanumeric characters. It must be unique, begin with a letter, not include spaces, not end with an underscore, and not contain two consecutive underscores.",
    )
}

pub(super) struct Changes {
    name: Option<String>,
    content_type: Option<String>,
    cache_control: Option<String>,
    description: Option<Option<String>>,
    body: Option<Bytes>,
}

/// Reads a create/update body — JSON with a base64 `Body`, or the multipart form Salesforce takes
/// for blobs (the fields as a JSON part, then the `Body` part as raw bytes) — answering
/// Salesforce's errors for what it refuses.
/// A write's fields: JSON (`application/json`), or on the REST API (not Tooling) a
/// `multipart/form-data` body — the fields as a named JSON part first, then the `Body` part.
/// Any other media type answers 415, as Salesforce does for a type a resource does not take.
pub(super) fn read_changes(shared: &Shared, api: Api, headers: &HeaderMap, body: &Bytes) -> Result<Changes, SfError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let unsupported = || {
        SfError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            &format!("MediaType of '{media}' is not supported by this resource"),
        )
    };
    match media.as_str() {
        "application/json" => {
            let mut changes = read_json_changes(body)?;
            changes.body = changes.body.map(|b| shared.blobs.intern(b));
            return Ok(changes);
        }
        "multipart/form-data" if api == Api::Data => {}
        _ => return Err(unsupported()),
    }
    if !shared.observe.multipart_blobs() {
        return Err(SfError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content type multipart/form-data is not supported for this resource",
        ));
    }
    let malformed =
        |why: &str| SfError::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", &format!("Multipart message: {why}"));
    let boundary =
        crate::multipart::boundary(content_type).ok_or_else(|| malformed("no boundary in the Content-Type"))?;
    let parts = crate::multipart::parts(body, boundary).map_err(malformed)?;
    let Some((entity, blobs)) = parts.split_first() else {
        return Err(malformed("no parts"));
    };
    if !entity.content_type.as_deref().is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json")) {
        return Err(malformed("the first part must be the record's fields as application/json"));
    }
    if entity.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(malformed("the fields part needs a name in its Content-Disposition (e.g. entity_staticresource)"));
    }
    let mut changes = read_json_changes(&entity.data)?;
    for blob in blobs {
        match blob.name.as_deref() {
            // A slice of the request body, itself shared with equal uploads before it.
            Some(name) if name.eq_ignore_ascii_case("Body") => changes.body = Some(blob.data.clone()),
            other => {
                return Err(SfError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    &format!("No such column '{}' on sobject of type StaticResource", other.unwrap_or_default()),
                ));
            }
        }
    }
    Ok(changes)
}

pub(super) fn read_json_changes(body: &[u8]) -> Result<Changes, SfError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| {
        SfError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Unexpected character at [line:{},column:{}]", e.line(), e.column()),
        )
    })?;
    let Value::Object(map) = parsed else {
        return Err(SfError::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of StaticResource from a non-object value",
        ));
    };
    let mut changes = Changes { name: None, content_type: None, cache_control: None, description: None, body: None };
    for (key, value) in map {
        if key == "attributes" {
            continue;
        }
        let Some(field) = WRITABLE.iter().find(|f| f.eq_ignore_ascii_case(&key)) else {
            if STATIC_RESOURCE_FIELDS.iter().chain(["ManageableState"].iter()).any(|f| f.eq_ignore_ascii_case(&key)) {
                return Err(SfError::fields(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    &format!(
                        "Unable to create/update fields: {key}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."
                    ),
                    &[&key],
                ));
            }
            return Err(SfError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!("No such column '{key}' on sobject of type StaticResource"),
            ));
        };
        let text = match value {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => {
                return Err(SfError::new(
                    StatusCode::BAD_REQUEST,
                    "JSON_PARSER_ERROR",
                    &format!(
                        "Cannot deserialize instance of string from {} value {other}",
                        if other.is_number() { "VALUE_NUMBER_INT" } else { "START_OBJECT" }
                    ),
                ));
            }
        };
        match *field {
            "Name" => changes.name = Some(text.unwrap_or_default()),
            "ContentType" => changes.content_type = Some(text.unwrap_or_default()),
            "CacheControl" => changes.cache_control = Some(text.unwrap_or_default()),
            "Description" => changes.description = Some(text),
            _ => {
                // Salesforce accepts line-wrapped base64 (MIME style); strip the breaks only when there are any.
                let mut encoded = text.unwrap_or_default();
                if encoded.bytes().any(|b| b.is_ascii_whitespace()) {
                    encoded.retain(|c| !c.is_ascii_whitespace());
                }
                let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).map_err(|_| {
                    SfError::new(
                        StatusCode::BAD_REQUEST,
                        "JSON_PARSER_ERROR",
                        "Cannot deserialize instance of base64 from VALUE_STRING value: not valid Base64",
                    )
                })?;
                changes.body = Some(Bytes::from(bytes));
            }
        }
    }
    Ok(changes)
}

pub(super) fn validate(
    world: &World,
    ctx: &Ctx,
    api: Api,
    existing: Option<&StaticResource>,
    c: &Changes,
) -> Result<(), SfError> {
    let creating = existing.is_none();
    let mut missing = Vec::new();
    if creating {
        if c.name.as_deref().is_none_or(str::is_empty) {
            missing.push("Name");
        }
        if c.body.is_none() {
            missing.push("Body");
        }
        if c.content_type.as_deref().is_none_or(str::is_empty) {
            missing.push("ContentType");
        }
        if api == Api::Tooling && c.cache_control.as_deref().is_none_or(str::is_empty) {
            missing.push("CacheControl");
        }
    } else {
        for (field, value) in [("Name", &c.name), ("ContentType", &c.content_type)] {
            if value.as_deref().is_some_and(str::is_empty) {
                missing.push(field);
            }
        }
    }
    if !missing.is_empty() {
        return Err(SfError::fields(
            StatusCode::BAD_REQUEST,
            "REQUIRED_FIELD_MISSING",
            &format!("Required fields are missing: [{}]", missing.join(", ")),
            &missing,
        ));
    }
    if let Some(name) = &c.name {
        if name.chars().count() > 255 {
            return Err(SfError::fields(
                StatusCode::BAD_REQUEST,
                "STRING_TOO_LONG",
                &format!("Name: data value too large: {name} (max length=255)"),
                &["Name"],
            ));
        }
        if let Some(problem) = name_problem(name) {
            return Err(SfError::fields(StatusCode::BAD_REQUEST, "FIELD_INTEGRITY_EXCEPTION", problem, &["Name"]));
        }
        if let Some(other) = world.resource_by_name(&ctx.org_id, name)
            && existing.is_none_or(|e| e.id != other.id)
        {
            return Err(SfError::fields(
                StatusCode::BAD_REQUEST,
                "DUPLICATE_VALUE",
                &format!("duplicate value found: Name duplicates value on record with id: {}", other.id),
                &[],
            ));
        }
    }
    if let Some(ct) = &c.content_type
        && ct.chars().count() > 120
    {
        return Err(SfError::fields(
            StatusCode::BAD_REQUEST,
            "STRING_TOO_LONG",
            "Mime Type: data value too large (max length=120)",
            &["ContentType"],
        ));
    }
    if let Some(cc) = &c.cache_control
        && !(cc == "Private" || cc == "Public" || (cc.is_empty() && api == Api::Data))
    {
        return Err(SfError::fields(
            StatusCode::BAD_REQUEST,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            &format!("Cache Control: bad value for restricted picklist field: {cc}"),
            &["CacheControl"],
        ));
    }
    if let Some(Some(d)) = &c.description
        && d.chars().count() > 255
    {
        return Err(SfError::fields(
            StatusCode::BAD_REQUEST,
            "STRING_TOO_LONG",
            "Description: data value too large (max length=255)",
            &["Description"],
        ));
    }
    if let Some(body) = &c.body {
        if body.len() > state::MAX_RESOURCE_BYTES {
            return Err(SfError::fields(
                StatusCode::BAD_REQUEST,
                "FIELD_INTEGRITY_EXCEPTION",
                "static resource cannot exceed 5MB",
                &["Body"],
            ));
        }
        let others = world.org_resource_bytes(&ctx.org_id) - existing.map_or(0, |e| e.body.len());
        if others + body.len() > state::MAX_ORG_RESOURCE_BYTES {
            return Err(SfError::new(
                StatusCode::BAD_REQUEST,
                "STORAGE_LIMIT_EXCEEDED",
                "storage limit exceeded: static resources may use at most 250 MB per org",
            ));
        }
    }
    Ok(())
}

pub(super) fn may_customize(world: &World, ctx: &Ctx) -> bool {
    world.users.get(&ctx.user_id).is_some_and(|u| u.customize_application)
}

pub(super) fn insufficient_access() -> Response {
    error(StatusCode::BAD_REQUEST, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
}

pub(super) fn only_static_resource(api: Api, object: &str) -> Result<(), SfError> {
    match object_def(api, object) {
        Some(("StaticResource", _)) => Ok(()),
        Some((name, _)) => Err(SfError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            &format!("{name} records cannot be changed through this emulator"),
        )),
        None => Err(SfError::not_found()),
    }
}

pub(super) async fn create(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    api: Api,
    Path((_, object)): Path<(String, String)>,
    headers: HeaderMap,
    crate::blobs::Upload(body): crate::blobs::Upload,
) -> Response {
    create_in(&s, &ctx, api, &object, &headers, &body)
}

pub(super) fn create_in(
    shared: &Shared,
    ctx: &Ctx,
    api: Api,
    object: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let label = "create:StaticResource".to_string();
    if let Err(e) = only_static_resource(api, object) {
        return op(e.into_response(), format!("create:{object}"));
    }
    let changes = match read_changes(shared, api, headers, body) {
        Ok(c) => c,
        Err(e) => return op(e.into_response(), label),
    };
    let mut world = shared.world();
    if !may_customize(&world, ctx) {
        return op(insufficient_access(), label);
    }
    if let Err(e) = validate(&world, ctx, api, None, &changes) {
        return op(e.into_response(), label);
    }
    let now = shared.clock.unique_ms();
    let id = world.new_record_id(&ctx.org_id, ids::STATIC_RESOURCE_PREFIX);
    let name = changes.name.unwrap_or_default();
    world.put_resource(StaticResource {
        id: id.clone(),
        org_id: ctx.org_id.clone(),
        namespace_prefix: None,
        name,
        content_type: changes.content_type.unwrap_or_default(),
        cache_control: changes.cache_control.filter(|c| !c.is_empty()).unwrap_or_else(|| "Private".into()),
        description: changes.description.flatten(),
        body: changes.body.unwrap_or_default(),
        created_ms: now,
        created_by: ctx.user_id.clone(),
        modified_ms: now,
        modified_by: ctx.user_id.clone(),
    });
    let response = (StatusCode::CREATED, axum::Json(json!({"id": id, "success": true, "errors": []}))).into_response();
    op(response, label)
}

/// A managed package's component refused, in the words Salesforce uses for them.
fn managed(code: &str, words: &str, r: &StaticResource) -> Response {
    let message = format!("{words}: entity=StaticResource, component={}, state=installed", &r.id[..15]);
    SfError::new(StatusCode::BAD_REQUEST, code, &message).into_response()
}

/// Finds a static resource of the caller's org by a 15- or 18-character id.
pub(super) fn find<'w>(world: &'w World, ctx: &Ctx, id: &str) -> Result<&'w StaticResource, SfError> {
    ids::normalize(id).and_then(|id| world.resource(&id)).filter(|r| r.org_id == ctx.org_id).ok_or_else(|| {
        SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {id}"),
        )
    })
}

pub(super) async fn update(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    api: Api,
    Path((_, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    crate::blobs::Upload(body): crate::blobs::Upload,
) -> Response {
    update_in(&s, &ctx, api, &object, &id, &headers, &body)
}

pub(super) fn update_in(
    shared: &Shared,
    ctx: &Ctx,
    api: Api,
    object: &str,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let label = "update:StaticResource".to_string();
    if let Err(e) = only_static_resource(api, object) {
        return op(e.into_response(), format!("update:{object}"));
    }
    let changes = match read_changes(shared, api, headers, body) {
        Ok(c) => c,
        Err(e) => return op(e.into_response(), label),
    };
    let mut world = shared.world();
    let existing = match find(&world, ctx, id) {
        Ok(r) => r.clone(),
        Err(e) => return op(e.into_response(), label),
    };
    if !may_customize(&world, ctx) {
        return op(insufficient_access(), label);
    }
    if existing.namespace_prefix.is_some() {
        return op(managed("CANNOT_MODIFY_MANAGED_OBJECT", "Cannot modify managed object", &existing), label);
    }
    if let Err(e) = validate(&world, ctx, api, Some(&existing), &changes) {
        return op(e.into_response(), label);
    }
    let now = shared.clock.unique_ms();
    let mut updated = existing.clone();
    if let Some(name) = changes.name {
        updated.name = name;
    }
    if let Some(ct) = changes.content_type {
        updated.content_type = ct;
    }
    if let Some(cc) = changes.cache_control.filter(|c| !c.is_empty()) {
        updated.cache_control = cc;
    }
    if let Some(d) = changes.description {
        updated.description = d;
    }
    if let Some(b) = changes.body {
        updated.body = b;
    }
    updated.modified_ms = now;
    updated.modified_by = ctx.user_id.clone();
    world.put_resource(updated);
    op(StatusCode::NO_CONTENT.into_response(), label)
}

pub(super) async fn delete(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    api: Api,
    Path((_, object, id)): Path<(String, String, String)>,
) -> Response {
    delete_in(&s, &ctx, api, &object, &id)
}

pub(super) fn delete_in(shared: &Shared, ctx: &Ctx, api: Api, object: &str, id: &str) -> Response {
    let label = "delete:StaticResource".to_string();
    if let Err(e) = only_static_resource(api, object) {
        return op(e.into_response(), format!("delete:{object}"));
    }
    let mut world = shared.world();
    let existing = match find(&world, ctx, id) {
        Ok(r) => r.clone(),
        Err(e) => return op(e.into_response(), label),
    };
    if !may_customize(&world, ctx) {
        return op(insufficient_access(), label);
    }
    if existing.namespace_prefix.is_some() {
        return op(managed("CANNOT_DELETE_MANAGED_OBJECT", "Cannot delete managed object", &existing), label);
    }
    world.remove_resource(&existing.id);
    op(StatusCode::NO_CONTENT.into_response(), label)
}

pub(super) async fn read(
    State(s): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    api: Api,
    Path((_, object, id)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    read_in(&s, &ctx, api, &object, &id, &q)
}

pub(super) fn read_in(
    shared: &Shared,
    ctx: &Ctx,
    api: Api,
    object: &str,
    id: &str,
    q: &HashMap<String, String>,
) -> Response {
    let Some((name, known)) = object_def(api, object).filter(|(n, _)| *n != "UserPermissionAccess") else {
        return not_found_body();
    };
    if id == "describe" {
        return op(axum::Json(describe(api, &ctx.version, name, known)).into_response(), format!("describe:{name}"));
    }
    let label = format!("read:{name}");
    let now = shared.clock.now_ms();
    let world = shared.world();
    let wanted = ids::normalize(id);
    let row = rows(&world, ctx, api, name, now)
        .into_iter()
        .find(|r| r.get("Id").and_then(Value::as_str) == wanted.as_deref());
    let Some(row) = row else {
        return op(
            error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("Provided external ID field does not exist or is not accessible: {id}"),
            ),
            label,
        );
    };
    let fields: Vec<&str> = match q.get("fields") {
        Some(list) => {
            let mut out = Vec::new();
            for f in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                match soql::canonical(known, f) {
                    Some(c) => out.push(c),
                    None => {
                        return op(
                            error(
                                StatusCode::BAD_REQUEST,
                                "INVALID_FIELD",
                                &format!("No such column '{f}' on sobject of type {name}"),
                            ),
                            label,
                        );
                    }
                }
            }
            out
        }
        None => known.to_vec(),
    };
    op(axum::Json(project(&row, &fields)).into_response(), label)
}

pub(super) async fn read_blob(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id, field)): Path<(String, String, String, String)>,
) -> Response {
    let label = "read_body:StaticResource".to_string();
    if !object.eq_ignore_ascii_case("StaticResource") || !field.eq_ignore_ascii_case("Body") {
        return op(not_found_body(), label);
    }
    let world = shared.world();
    match find(&world, &ctx, &id) {
        Ok(r) => {
            let mut response = (StatusCode::OK, r.body.clone()).into_response();
            if let Ok(ct) = HeaderValue::from_str(&r.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            op(response, label)
        }
        Err(e) => op(e.into_response(), label),
    }
}
