//! The emulator's own HTML: Salesforce's sign-in, approval and OAuth error pages. The user
//! types their Salesforce password here, never into the application asking for access.

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#eef2f6;color:#16325c}
main{max-width:420px;margin:48px auto;padding:0 16px}
.card{background:#fff;border:1px solid #d8dde6;border-radius:8px;padding:28px;box-shadow:0 2px 6px rgba(0,0,0,.06)}
.brand{display:flex;align-items:center;gap:10px;margin-bottom:20px;font-weight:600;color:#0b5cab}
.brand svg{flex:none}
h1{font-size:20px;margin:0 0 6px}
p.sub{margin:0 0 18px;color:#54698d}
label{display:block;font-size:13px;font-weight:600;margin:14px 0 4px}
input[type=text],input[type=password]{width:100%;padding:10px 12px;border:1px solid #b0adab;border-radius:4px;font:inherit}
input:focus,button:focus{outline:3px solid #1b96ff;outline-offset:1px}
.actions{display:flex;gap:10px;margin-top:22px}
button{flex:1;padding:10px 14px;border-radius:4px;border:1px solid #0176d3;background:#0176d3;color:#fff;font:inherit;font-weight:600;cursor:pointer}
button.secondary{background:#fff;color:#0176d3}
.error{background:#fef1ee;border:1px solid #ea001e;color:#8c0013;border-radius:4px;padding:10px 12px;margin-bottom:14px}
ul.scopes{padding-left:20px;margin:8px 0}
.note{font-size:12px;color:#54698d;margin-top:18px}
code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
"#;

fn layout(title: &str, body: &str) -> String {
    format!(
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{title} | Salesforce org emulator</title><style>{STYLE}</style></head><body><main><div class="card"><div class="brand"><svg width="34" height="24" viewBox="0 0 34 24" aria-hidden="true"><ellipse cx="17" cy="13" rx="16" ry="10" fill="#0b5cab"/></svg><span>Salesforce org emulator</span></div>{body}</div><p class="note">A local stand-in for Salesforce, for tests and demos. Nothing typed here leaves this machine.</p></main></body></html>"##,
        title = escape(title)
    )
}

pub fn login(
    action_base: &str,
    host_label: &str,
    app_name: &str,
    txn: &str,
    username: &str,
    error: Option<&str>,
) -> String {
    let error = error.map(|e| format!(r#"<div class="error" role="alert">{}</div>"#, escape(e))).unwrap_or_default();
    layout(
        "Log in",
        &format!(
            r#"<h1>Log in to Salesforce</h1><p class="sub">{app} is asking for access. Sign in at <code>{host}</code>.</p>{error}
<form method="post" action="{base}/login">
<input type="hidden" name="txn" value="{txn}">
<label for="username">Username</label><input type="text" id="username" name="username" value="{username}" autocomplete="username" required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="actions"><button type="submit" id="Login">Log In</button></div>
</form>"#,
            base = escape(action_base),
            app = escape(app_name),
            host = escape(host_label),
            txn = escape(txn),
            username = escape(username),
        ),
    )
}

pub fn approve(
    action_base: &str,
    app_name: &str,
    display_name: &str,
    username: &str,
    scopes: &[String],
    txn: &str,
) -> String {
    let scopes: String = scopes.iter().map(|s| format!("<li>{}</li>", escape(scope_label(s)))).collect();
    layout(
        "Allow access",
        &format!(
            r#"<h1>Allow access?</h1><p class="sub"><strong>{app}</strong> is asking to:</p><ul class="scopes">{scopes}</ul>
<p>Signed in as {name} (<code>{username}</code>).</p>
<form method="post" action="{base}/approve">
<input type="hidden" name="txn" value="{txn}">
<div class="actions"><button type="submit" name="decision" value="deny" class="secondary" id="oaapprove-deny">Deny</button><button type="submit" name="decision" value="allow" id="oaapprove">Allow</button></div>
</form>"#,
            base = escape(action_base),
            app = escape(app_name),
            name = escape(display_name),
            username = escape(username),
            txn = escape(txn),
        ),
    )
}

pub fn error(error: &str, description: &str) -> String {
    layout(
        "Error",
        &format!(
            r#"<h1>OAUTH_APPROVAL_ERROR_GENERIC</h1><div class="error" role="alert"><strong>{}</strong>: {}</div><p>Check the connected app's settings (consumer key, callback URL) and try again from the application.</p>"#,
            escape(error),
            escape(description)
        ),
    )
}

fn scope_label(scope: &str) -> &str {
    match scope {
        "api" => "Manage user data via APIs (api)",
        "refresh_token" | "offline_access" => "Perform requests at any time (refresh_token, offline_access)",
        "web" => "Manage user data via Web browsers (web)",
        "id" => "Access the identity URL service (id, profile, email, address, phone)",
        "openid" => "Access unique user identifiers (openid)",
        "full" => "Full access (full)",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_text_is_escaped() {
        let page = super::login("/x", "h", "<script>x</script>", "t", "a\"b", Some("<b>"));
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;") && page.contains("a&quot;b") && page.contains("&lt;b&gt;"));
    }
}
