//! Issue #16's console features over HTTP: the table's filters (kept in the URL and applied to
//! its exports), a sort on every column, page sizes and keyset paging, bulk actions, and a
//! connection's activity on its page.

use reqwest::Method;
use serde_json::json;
use testkit::{TestApp, spawn};

async fn seed(app: &TestApp, n: i64) -> Vec<domain::Connection> {
    let mut all = Vec::new();
    for i in 0..n {
        let status = match i % 5 {
            0 => domain::ConnectionStatus::LoggedOut,
            1 => domain::ConnectionStatus::NotAvailable,
            _ => domain::ConnectionStatus::LoggedIn,
        };
        let c = testkit::seeded_connection(&app.accounts["A"], i, status, i % 3 == 0, i % 4 == 0);
        store::ConnectionStore::insert(&*app.state.store, &c, &store::NewSecrets::default()).await.expect("seed");
        all.push(c);
    }
    all
}

async fn get(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let r = app.http.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.expect("get");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// The ids of the rows a table page shows, in order.
fn row_ids(html: &str) -> Vec<String> {
    html.split(r#"<tr data-id=""#).skip(1).map(|rest| rest.split('"').next().expect("id").to_string()).collect()
}

/// A link of the pager (`rel="next"`, `data-page="last"`, …), unescaped.
fn pager_link(html: &str, marker: &str) -> Option<String> {
    let nav = html.split(r#"<nav class="pager""#).nth(1)?;
    let (before, _) = nav.split_once(marker)?;
    let href = before.rsplit(r#"href=""#).next()?.split('"').next()?;
    Some(href.replace("&amp;", "&").replace("&#38;", "&"))
}

/// The message a redirect carries to the next page.
fn flash(r: &reqwest::Response) -> String {
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lb_flash="))
        .unwrap_or_else(|| panic!("no flash: {:?}", r.headers()))
        .to_string();
    let value = cookie.trim_start_matches("lb_flash=").split(';').next().expect("value");
    url::form_urlencoded::parse(format!("v={value}").as_bytes()).next().expect("pair").1.into_owned()
}

#[tokio::test]
async fn filters_sorts_and_keyset_pages_agree_and_exports_follow_the_filters() {
    let app = spawn().await;
    let all = seed(&app, 130).await;
    let (cookie, _) = app.sign_in("admin_a").await;

    // Each filter, alone and with the others and a search: only matching rows, the right count.
    let logged_out_sandboxes: Vec<&domain::Connection> = all
        .iter()
        .filter(|c| c.status == domain::ConnectionStatus::LoggedOut && c.org_type == domain::OrgType::Sandbox)
        .collect();
    let (status, html) = get(&app, &cookie, "/connections/salesforce?status=logged_out&environment=sandbox").await;
    assert_eq!(status, 200);
    let mut shown = row_ids(&html);
    let mut want: Vec<String> = logged_out_sandboxes.iter().map(|c| c.id.to_string()).collect();
    shown.sort();
    want.sort();
    assert_eq!(shown, want);
    assert!(html.contains(&format!("of {}</span>", want.len())), "the count is the filtered one");
    assert!(html.contains(r#"<option value="logged_out" selected>"#), "the form shows the filter");
    // The search form carries the filters, so a search narrows the filtered table, not all of it.
    let search_form =
        html.split(r#"role="search""#).nth(1).expect("search form").split("</form>").next().expect("form");
    assert!(
        search_form.contains(r#"name="status" value="logged_out""#)
            && search_form.contains(r#"name="environment" value="sandbox""#),
        "{search_form}"
    );
    assert!(html.contains("Clear filters"));
    let (_, html) = get(&app, &cookie, "/connections/salesforce?kind=legacy").await;
    assert!(html.contains("No connection matches these filters."), "no legacy rows here");
    let (_, html) = get(&app, &cookie, "/connections/salesforce?auth=jwt&search=user1%40seed&per_page=200").await;
    let jwt_user1 = all
        .iter()
        .filter(|c| matches!(c.auth, domain::AuthMethod::Jwt { .. }))
        .filter(|c| {
            c.created_by.as_deref() == Some("user1@seed.test") || c.modified_by.as_deref() == Some("user1@seed.test")
        })
        .count();
    assert_eq!(row_ids(&html).len(), jwt_user1);
    assert!(jwt_user1 > 0);

    // Every column sorts, both ways, from its header link; the filter stays in the link.
    let (_, html) = get(&app, &cookie, "/connections/salesforce?environment=production").await;
    for column in [
        "connection_id",
        "environment",
        "account_name",
        "created_at",
        "created_by",
        "last_modified_at",
        "last_modified_by",
        "connection_status",
        "activity_status",
    ] {
        let th = html.split(&format!(r#"data-column="{column}""#)).nth(1).expect("header");
        let href = th
            .split(r#"href=""#)
            .nth(1)
            .expect("sort link")
            .split('"')
            .next()
            .expect("href")
            .replace("&amp;", "&")
            .replace("&#38;", "&");
        assert!(href.contains("environment=production"), "{column}: {href}");
        let (status, sorted) = get(&app, &cookie, &href).await;
        assert_eq!(status, 200, "{href}");
        // The column it was sorted by says so (the default, created_at, flips to descending).
        let direction = if column == "created_at" { "descending" } else { "ascending" };
        assert!(sorted.contains(&format!(r#"data-column="{column}" aria-sort="{direction}""#)), "{column}");
    }
    // Sorted by created-by, descending: the rows come in that order.
    let (_, html) = get(&app, &cookie, "/connections/salesforce?sort=created_by&order=desc&per_page=200").await;
    let order: Vec<String> = row_ids(&html);
    let by_id = |id: &String| all.iter().find(|c| c.id.as_str() == id).expect("row");
    for pair in order.windows(2) {
        let (a, b) = (by_id(&pair[0]), by_id(&pair[1]));
        assert!(a.created_by >= b.created_by, "descending by created-by");
    }

    // Keyset pages of 25: Next to the end gives every row once, in order; Last then Previous
    // back to the start gives the same.
    let (_, html) = get(&app, &cookie, "/connections/salesforce?per_page=25&sort=account_name").await;
    let full = {
        let (_, all_rows) = get(&app, &cookie, "/connections/salesforce?per_page=200&sort=account_name").await;
        row_ids(&all_rows)
    };
    assert_eq!(full.len(), 130);
    assert!(html.contains("1–25 of 130"));
    assert!(pager_link(&html, "rel=\"prev\"").is_none() && html.contains(r#"data-page="last""#));
    let mut walked = row_ids(&html);
    let mut page = html;
    while let Some(next) = pager_link(&page, r#"rel="next""#) {
        assert!(next.contains("per_page=25") && next.contains("sort=account_name"), "{next}");
        page = get(&app, &cookie, &next).await.1;
        walked.extend(row_ids(&page));
    }
    assert_eq!(walked, full, "forwards");
    assert!(page.contains("126–130 of 130"), "the last page by Next says where it is");
    let last = pager_link(
        &get(&app, &cookie, "/connections/salesforce?per_page=25&sort=account_name").await.1,
        r#"data-page="last""#,
    )
    .expect("last");
    let mut page = get(&app, &cookie, &last).await.1;
    assert!(page.contains("106–130 of 130"), "Last shows the last 25 rows");
    assert!(pager_link(&page, r#"rel="next""#).is_none());
    let mut back = row_ids(&page);
    while let Some(prev) = pager_link(&page, r#"rel="prev""#) {
        page = get(&app, &cookie, &prev).await.1;
        let mut ids = row_ids(&page);
        ids.extend(back);
        back = ids;
    }
    assert_eq!(back, full, "backwards");
    // A page after a row that has since been deleted: the first page, not an error.
    let gone = domain::ConnectionId::generate();
    let (status, html) = get(&app, &cookie, &format!("/connections/salesforce?after={gone}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("1–50 of 130"));

    // The export follows the filters and the search: the same rows as the table.
    let r = app
        .http
        .get(format!("{}/connections/salesforce/export?format=csv&status=logged_out&environment=sandbox", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), 200);
    let csv = r.text().await.expect("csv");
    let ids: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().expect("id")).collect();
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    assert_eq!(ids, want, "the export holds the filtered rows only");
    // The page's export links carry the filters.
    let (_, html) = get(&app, &cookie, "/connections/salesforce?status=logged_out&environment=sandbox").await;
    assert!(
        html.replace("&#38;", "&")
            .contains("/connections/salesforce/export?format=xlsx&status=logged_out&environment=sandbox")
    );
}

#[tokio::test]
async fn bulk_actions_check_delete_after_one_confirmation_and_export_the_selection() {
    let app = spawn().await;
    let mut ids = Vec::new();
    for name in ["Bulk one", "Bulk two", "Bulk three"] {
        let (status, created) =
            app.call("admin_a", Method::POST, "/connections", Some(app.jwt(name, "admin@acme.test"))).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    let (status, theirs) =
        app.call("admin_b", Method::POST, "/connections", Some(app.jwt("B's own", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{theirs}");
    let theirs = theirs["id"].as_str().expect("id").to_string();
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let form = |action: &str, chosen: &[String]| {
        let mut pairs = vec![
            ("csrf", csrf.clone()),
            ("action", action.to_string()),
            ("back", "/connections/salesforce?per_page=25".to_string()),
        ];
        pairs.extend(chosen.iter().map(|id| ("id", id.clone())));
        pairs
    };
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let post_raw = |path: &str, pairs: Vec<(&str, String)>| {
        let request = http.post(format!("{}{path}", app.base)).header("cookie", &cookie).form(&pairs);
        async move { request.send().await.expect("post") }
    };

    // The table offers the bar and a box per row.
    let (_, html) = get(&app, &cookie, "/connections/salesforce").await;
    assert!(html.contains(r#"form="bulk""#) && html.contains(r#"value="check""#) && html.contains(r#"value="delete""#));

    // A way back that is not a page of the table (another host, a header break): the table.
    for back in ["//evil.example/x", "/connections/salesforce\r\nX-Evil: 1", "https://evil.example/"] {
        let mut pairs = form("check", &[]);
        pairs.retain(|(k, _)| *k != "back");
        pairs.push(("back", back.to_string()));
        let r = post_raw("/connections/salesforce/bulk", pairs).await;
        assert_eq!(r.status(), 303, "{back:?}");
        assert_eq!(r.headers()["location"], "/connections/salesforce", "{back:?}");
    }
    // Nothing selected: said so, nothing done.
    let r = post_raw("/connections/salesforce/bulk", form("check", &[])).await;
    assert_eq!(r.status(), 303);
    assert_eq!(flash(&r), "error|Select at least one connection first.");

    // Check now: each checked, the outcome counted, back to the page it came from.
    let r = post_raw("/connections/salesforce/bulk", form("check", &ids[..2])).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/connections/salesforce?per_page=25");
    assert_eq!(flash(&r), "success|Checked 2 connections: 2 Logged in.");
    let (_, audit) = app.call("admin_a", Method::GET, "/audit?action=connection.checked", None).await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(2), "each check is in the audit log: {audit}");

    // Export the selection: exactly the rows chosen (another account's id is no row).
    let chosen = vec![ids[0].clone(), ids[2].clone(), theirs.clone()];
    let r = post_raw("/connections/salesforce/bulk", form("csv", &chosen)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().expect("header").contains(".csv"));
    let csv = r.text().await.expect("csv");
    let mut exported: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().expect("id")).collect();
    exported.sort();
    let mut expected = vec![ids[0].as_str(), ids[2].as_str()];
    expected.sort();
    assert_eq!(exported, expected);

    // Delete: one confirmation listing them all (names, not ids alone); nothing gone yet.
    let r = post_raw("/connections/salesforce/bulk", form("delete", &ids[1..])).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("page");
    assert!(
        page.contains("Delete 2 connections?") && page.contains("Bulk two") && page.contains("Bulk three"),
        "{page}"
    );
    let (_, list) = app.call("admin_a", Method::GET, "/connections", None).await;
    assert_eq!(list["total"], 3, "asking deletes nothing");
    // A viewer may not delete.
    let (viewer, viewer_csrf) = app.sign_in("viewer_a").await;
    let r = http
        .post(format!("{}/connections/salesforce/bulk/delete", app.base))
        .header("cookie", &viewer)
        .form(&[("csrf", viewer_csrf.as_str()), ("id", ids[1].as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    // Without the form's token: refused.
    let r =
        post_raw("/connections/salesforce/bulk/delete", vec![("csrf", "forged".into()), ("id", ids[1].clone())]).await;
    assert_eq!(r.status(), 403);
    // Confirmed: both deleted and revoked, the other kept.
    let r = post_raw("/connections/salesforce/bulk/delete", form("", &ids[1..])).await;
    assert_eq!(r.status(), 303);
    assert_eq!(flash(&r), "success|Deleted 2 connections.");
    let (_, list) = app.call("admin_a", Method::GET, "/connections", None).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], ids[0].as_str());
    let (status, _) = app.call("admin_b", Method::GET, &format!("/connections/{theirs}"), None).await;
    assert_eq!(status, 200, "another account's connection is untouched");
}

#[tokio::test]
async fn a_connection_page_shows_its_activity_and_its_tokens() {
    let app = spawn().await;
    let (status, created) =
        app.call("admin_a", Method::POST, "/connections", Some(app.jwt("Timeline", "admin@acme.test"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let (status, _) =
        app.call("admin_a", Method::PATCH, &format!("/connections/{id}"), Some(json!({"name": "Timeline 2"}))).await;
    assert!(status == 200 || status == 204, "{status}");
    let (cookie, csrf) = app.sign_in("admin_a").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let r = http
        .post(format!("{}/connections/salesforce/{id}/check", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("check");
    assert_eq!(r.status(), 303);
    let (status, html) = get(&app, &cookie, &format!("/connections/salesforce/{id}")).await;
    assert_eq!(status, 200);
    let activity = html.split(r#"id="activity-title""#).nth(1).expect("an Activity section");
    let checked = activity.find("Checked now").expect("the check");
    let edited = activity.find("Edited").expect("the edit");
    let made = activity.find("Created").expect("the creation");
    assert!(checked < edited && edited < made, "newest first");
    assert!(activity.contains("admin_a@lightbridge.test"), "who did it");
    assert!(activity.contains("Health last checked") && activity.contains("Tokens last renewed"));
    assert!(!activity.contains("Next keep-alive"), "a JWT connection has no keep-alive");
    // Another account's connection has no activity to show.
    let (b_cookie, _) = app.sign_in("admin_b").await;
    let (status, _) = get(&app, &b_cookie, &format!("/connections/salesforce/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_empty_new_connection_form_names_every_missing_field_before_salesforce() {
    // #16 item 5: an empty form reported one field at a time; each missing one is named at once.
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("admin_a").await;
    app.em.clear_requests();
    let r = app
        .http
        .post(format!("{}/connections/salesforce/new", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("action", "save")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 422);
    let page = r.text().await.expect("page");
    let invalid: Vec<&str> = page
        .split(r#"class="field invalid""#)
        .skip(1)
        .map(|rest| rest.split("</label>").next().unwrap_or_default())
        .collect();
    for field in ["Connection name", "Org type", "Login host", "Consumer key"] {
        assert!(invalid.iter().any(|f| f.contains(field)), "{field} is marked: {invalid:?}");
    }
    assert!(app.em.requests().is_empty(), "nothing went to Salesforce");
}
