//! `/resource/<modstamp>/<Name>[/<path>]`: how an org serves a ZIP static resource to browsers.

use super::*;

pub(super) async fn serve_resource_root(
    State(shared): State<Shared>,
    Path((ts, name)): Path<(String, String)>,
) -> Response {
    serve(&shared, &ts, &name, None)
}

pub(super) async fn serve_resource(
    State(shared): State<Shared>,
    Path((ts, name, path)): Path<(String, String, String)>,
) -> Response {
    serve(&shared, &ts, &name, Some(&path))
}

/// `/resource/<lastModMs>/<Name>[/<path in zip>]`. The timestamp picks the version (the
/// emulator hands out unique modstamps, so it also picks the org); a stale timestamp still
/// serves the current version when only one org has a resource of that name, as Salesforce
/// serves the latest version behind any timestamp.
pub(super) fn serve(shared: &Shared, ts: &str, name: &str, path: Option<&str>) -> Response {
    let resource = {
        let world = shared.world();
        let ts: Option<i64> = ts.parse().ok();
        let same_name: Vec<&StaticResource> =
            world.all_resources().filter(|r| served_name(r).eq_ignore_ascii_case(name)).collect();
        let exact = same_name.iter().find(|r| Some(r.modified_ms) == ts).copied();
        let found = exact.or(if same_name.len() == 1 { same_name.first().copied() } else { None });
        match found {
            Some(r) => r.clone(),
            None => return op((StatusCode::NOT_FOUND, "Static resource not found").into_response(), "resource".into()),
        }
    };
    let cache = if resource.cache_control == "Public" { "public, max-age=86400" } else { "private, max-age=86400" };
    let mut response = match path {
        None => {
            let mut r = (StatusCode::OK, resource.body.clone()).into_response();
            if let Ok(ct) = HeaderValue::from_str(&resource.content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            r
        }
        Some(inner) => match read_zip_entry(&resource.body, inner) {
            Some(bytes) => {
                let mime = mime_guess::from_path(inner).first_or_octet_stream();
                let mut r = (StatusCode::OK, bytes).into_response();
                if let Ok(ct) = HeaderValue::from_str(mime.essence_str()) {
                    r.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                r
            }
            None => (StatusCode::NOT_FOUND, "File not found in static resource").into_response(),
        },
    };
    if let Ok(v) = HeaderValue::from_str(cache) {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response.extensions_mut().insert(Actor { org_id: resource.org_id, user_id: None });
    op(response, "resource".into())
}

/// The name a resource is served under: `<namespace>__<Name>` for a managed package's.
fn served_name(r: &StaticResource) -> std::borrow::Cow<'_, str> {
    match &r.namespace_prefix {
        Some(ns) => format!("{ns}__{}", r.name).into(),
        None => r.name.as_str().into(),
    }
}

pub(super) fn read_zip_entry(zip_bytes: &[u8], path: &str) -> Option<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).ok()?;
    let mut file = archive.by_name(path.trim_start_matches('/')).ok()?;
    if file.is_dir() {
        return None;
    }
    let mut out = Vec::with_capacity(file.size() as usize);
    file.read_to_end(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_labels_follow_salesforce_releases() {
        assert_eq!(version_label(20), "Winter '11");
        assert_eq!(version_label(60), "Spring '24");
        assert_eq!(version_label(66), "Spring '26");
    }

    #[test]
    fn resource_names_follow_the_rules() {
        for good in ["walkme", "WalkMe_Lightning_2", "a"] {
            assert!(name_problem(good).is_none(), "{good} is valid");
        }
        for bad in ["", "1abc", "_abc", "abc_", "a__b", "a b", "a-b", "é"] {
            assert!(name_problem(bad).is_some(), "{bad:?} is invalid");
        }
    }
}
