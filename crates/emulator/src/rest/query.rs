//! SOQL over REST and Tooling: `query`, `queryAll` and paging through `nextRecordsUrl`.

use super::*;

pub(super) const DEFAULT_BATCH: usize = 2000;

pub(super) fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|p| p.trim().strip_prefix("batchSize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map_or(DEFAULT_BATCH, |n| n.clamp(200, DEFAULT_BATCH))
}

pub(super) async fn query(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    api: Api,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    run_query(&shared, &ctx, api, &headers, &q)
}

pub(super) fn run_query(
    shared: &Shared,
    ctx: &Ctx,
    api: Api,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Response {
    let label = if api == Api::Tooling { "tooling_query" } else { "query" };
    let Some(text) = q.get("q").filter(|t| !t.trim().is_empty()) else {
        return op(
            error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", "A query string has to be specified"),
            label.into(),
        );
    };
    let parsed = match soql::parse(text) {
        Ok(p) => p,
        Err(e) => return op(error(StatusCode::BAD_REQUEST, e.code, &e.message), label.into()),
    };
    let Some((object, known)) = object_def(api, &parsed.object.name) else {
        let e = soql::SoqlError::invalid_type(text, &parsed.object);
        return op(error(StatusCode::BAD_REQUEST, e.code, &e.message), label.into());
    };
    // Parent fields (`LastModifiedBy.Name`) are selected, never filtered or sorted on here.
    let (related, plain): (Vec<soql::FieldRef>, Vec<soql::FieldRef>) =
        parsed.fields.iter().cloned().partition(|f| f.name.contains('.'));
    let mut parents = Vec::with_capacity(related.len());
    for f in &related {
        match parent_field(object, &f.name) {
            Some(p) => parents.push(p),
            None => {
                let e = soql::SoqlError::invalid_field(text, f, object);
                return op(error(StatusCode::BAD_REQUEST, e.code, &e.message), label.into());
            }
        }
    }
    let checked = soql::Query { fields: plain.clone(), ..parsed.clone() };
    if let Err(e) = soql::check_fields(text, &checked, object, known) {
        return op(error(StatusCode::BAD_REQUEST, e.code, &e.message), label.into());
    }
    let fields: Vec<&str> = plain.iter().filter_map(|f| soql::canonical(known, &f.name)).collect();
    let label = format!("{label}:{object}");
    if q.get("columns").is_some_and(|c| c == "true") {
        return op(axum::Json(column_metadata(object, &fields)).into_response(), label);
    }
    let now = shared.clock.now_ms();
    let mut world = shared.world();
    world.settle_deploys(now);
    let hits = soql::run(&parsed, rows(&world, ctx, api, object, now));
    if parsed.count {
        return op(axum::Json(json!({"totalSize": hits.len(), "done": true, "records": []})).into_response(), label);
    }
    // Salesforce reads `Metadata` and `FullName` one record at a time.
    if fields.iter().any(|f| *f == "Metadata" || *f == "FullName") && hits.len() > 1 {
        let message = format!(
            "When retrieving results with Metadata or FullName fields, the query qualifications must specify no more than one row for retrieval. Result size: {}",
            hits.len()
        );
        return op(error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &message), label);
    }
    let records: Vec<Value> = hits
        .iter()
        .map(|r| {
            let mut record = project(r, &fields);
            for parent in &parents {
                parent.fill(&world, ctx, api, r, &mut record);
            }
            record
        })
        .collect();
    let batch = batch_size(headers);
    op(page(&mut world, ctx, api, Arc::new(records), 0, batch), label)
}

pub(super) fn page(
    world: &mut World,
    ctx: &Ctx,
    api: Api,
    records: Arc<Vec<Value>>,
    from: usize,
    batch: usize,
) -> Response {
    let total = records.len();
    let end = (from + batch).min(total);
    let slice: Vec<Value> = records[from.min(total)..end].to_vec();
    let mut body = Map::new();
    body.insert("totalSize".into(), json!(total));
    body.insert("done".into(), json!(end >= total));
    if end < total {
        let locator = world.store_cursor(QueryCursor { org_id: ctx.org_id.clone(), records, batch });
        body.insert("nextRecordsUrl".into(), json!(format!("{}/query/{locator}-{end}", api.path(&ctx.version))));
    }
    body.insert("records".into(), Value::Array(slice));
    axum::Json(Value::Object(body)).into_response()
}

pub(super) async fn query_more(
    State(shared): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    api: Api,
    Path((_, locator)): Path<(String, String)>,
) -> Response {
    more(&shared, &ctx, api, &locator)
}

pub(super) fn more(shared: &Shared, ctx: &Ctx, api: Api, locator: &str) -> Response {
    let mut world = shared.world();
    let (id, from) = locator.rsplit_once('-').unwrap_or((locator, "0"));
    let cursor = world.cursors.get(id).filter(|c| c.org_id == ctx.org_id).cloned();
    let (Some(cursor), Ok(from)) = (cursor, from.parse::<usize>()) else {
        return op(
            error(StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR", "invalid query locator"),
            "query_more".into(),
        );
    };
    op(page(&mut world, ctx, api, cursor.records, from, cursor.batch), "query_more".into())
}

/// A parent field a query may select through a lookup (`LastModifiedBy.Name`): the
/// relationship, the lookup's id field and the parent's field, in Salesforce's spelling.
pub(super) struct ParentField {
    relationship: &'static str,
    lookup: &'static str,
    field: &'static str,
}

/// The lookups to `User` a static resource has (`CreatedBy`, `LastModifiedBy`), with any
/// `User` field after the dot; `None` for anything else (Salesforce: `INVALID_FIELD`).
pub(super) fn parent_field(object: &str, path: &str) -> Option<ParentField> {
    let (relationship, field) = path.split_once('.')?;
    if object != "StaticResource" || field.contains('.') {
        return None;
    }
    let (relationship, lookup) = [("CreatedBy", "CreatedById"), ("LastModifiedBy", "LastModifiedById")]
        .into_iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(relationship))?;
    let field = soql::canonical(USER_FIELDS, field)?;
    Some(ParentField { relationship, lookup, field })
}

impl ParentField {
    /// Adds the parent to a record as Salesforce nests it: `{"attributes": …, "Name": …}`
    /// under the relationship's name, more fields of the same parent in the same object, and
    /// `null` when the lookup is empty.
    fn fill(&self, world: &World, ctx: &Ctx, api: Api, row: &Map<String, Value>, record: &mut Value) {
        let Some(record) = record.as_object_mut() else { return };
        let user = row
            .get(self.lookup)
            .and_then(Value::as_str)
            .and_then(|id| world.users.get(id))
            .and_then(|u| world.orgs.get(&u.org_id).map(|org| user_row(api, &ctx.version, u, org)));
        let Some(user) = user else {
            record.insert(self.relationship.into(), Value::Null);
            return;
        };
        let entry = record
            .entry(self.relationship)
            .or_insert_with(|| json!({"attributes": user.get("attributes").cloned().unwrap_or(Value::Null)}));
        if let Some(parent) = entry.as_object_mut() {
            parent.insert(self.field.into(), user.get(self.field).cloned().unwrap_or(Value::Null));
        }
    }
}
