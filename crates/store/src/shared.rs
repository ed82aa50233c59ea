//! Store methods whose statements are the same on SQLite and PostgreSQL, written once: each
//! store expands these macros inside its own trait impls, where its own `query` and
//! `query_scalar` (SQLite's as written, PostgreSQL's with numbered placeholders), row mappers,
//! `pool()`, `writer()` and `keys` are in scope. What differs between the databases stays in
//! each store's file.

/// Connection-store methods whose statements are the same on both databases.
macro_rules! shared_connection_methods {
    () => {
        async fn take_renewal(
            &self,
            id: &ConnectionId,
            owner: &str,
            now: Millis,
            until: Millis,
        ) -> Result<bool, StoreError> {
            let done = query(
                "UPDATE connections SET renewal_owner = ?, renewal_until = ? \
                 WHERE id = ? AND (renewal_until IS NULL OR renewal_until < ? OR renewal_owner = ?)",
            )
            .bind(owner)
            .bind(until)
            .bind(id.as_str())
            .bind(now)
            .bind(owner)
            .execute(self.writer())
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn rotate_keys(&self, limit: u32) -> Result<Rotation, StoreError> {
            const SEALED: [&str; 4] = ["consumer_secret", "private_key", "access_token", "refresh_token"];
            let current = format!("v1.{}.%", self.keys.current().id());
            let old = |c: &str| format!("({c} IS NOT NULL AND {c} NOT LIKE ?)");
            let stale = SEALED.iter().map(|c| old(c)).collect::<Vec<_>>().join(" OR ");
            let mut rows = query(format!("SELECT id, {} FROM connections WHERE {stale} LIMIT ?", SEALED.join(", ")));
            for _ in SEALED {
                rows = rows.bind(&current);
            }
            let rows = rows.bind(i64::from(limit.max(1))).fetch_all(self.pool()).await?;
            let mut resealed = 0;
            for row in &rows {
                let id = ConnectionId::parse(&row.try_get::<String, _>("id")?)?;
                for column in SEALED {
                    let Some(value) = row.try_get::<Option<String>, _>(column)? else { continue };
                    if Sealed::from_stored(value.as_str()).key_id() == Some(self.keys.current().id()) {
                        continue;
                    }
                    let plain = self.keys.open(&Sealed::from_stored(value.as_str()), Binding::new(id.as_str(), column))?;
                    let fresh = self.keys.seal(&plain, Binding::new(id.as_str(), column))?;
                    // Only if unchanged: a token refreshed meanwhile is already sealed under the new key.
                    let done = query(format!("UPDATE connections SET {column} = ? WHERE id = ? AND {column} = ?"))
                        .bind(fresh.as_stored())
                        .bind(id.as_str())
                        .bind(&value)
                        .execute(self.writer())
                        .await?;
                    resealed += done.rows_affected();
                }
            }
            // Sealed values outside the connections table: (table, key column, sealed column,
            // the binding's field); each is bound to its row's key.
            const OTHERS: [(&str, &str, &str, &str); 6] = [
                ("oauth_states", "state_hash", "payload", "oauth_state"),
                ("webhook_secrets", "id", "secret", "webhook_secret"),
                ("two_factor", "user_id", "secret", "totp_secret"),
                ("pending_sign_ins", "id_hash", "payload", "pending_sign_in"),
                ("account_sso", "account_id", "client_secret", "sso_client_secret"),
                ("recovery_codes", "user_id", "code_hash", "recovery_code"),
            ];
            for (table, key, column, field) in OTHERS {
                let rows = query(format!("SELECT {key}, {column} FROM {table} WHERE {column} NOT LIKE ? LIMIT ?"))
                    .bind(&current)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(self.pool())
                    .await?;
                for row in &rows {
                    let owner: String = row.try_get(0)?;
                    let value: String = row.try_get(1)?;
                    let plain = self.keys.open(&Sealed::from_stored(value.as_str()), Binding::new(&owner, field))?;
                    let fresh = self.keys.seal(&plain, Binding::new(&owner, field))?;
                    let done = query(format!("UPDATE {table} SET {column} = ? WHERE {key} = ? AND {column} = ?"))
                        .bind(fresh.as_stored())
                        .bind(&owner)
                        .bind(&value)
                        .execute(self.writer())
                        .await?;
                    resealed += done.rows_affected();
                }
            }
            let others = OTHERS
                .iter()
                .map(|(table, _, column, _)| format!(" + (SELECT COUNT(*) FROM {table} WHERE {column} NOT LIKE ?)"))
                .collect::<String>();
            let mut count = query_scalar::<i64>(format!("SELECT (SELECT COUNT(*) FROM connections WHERE {stale}){others}"));
            for _ in 0..SEALED.len() + OTHERS.len() {
                count = count.bind(&current);
            }
            let remaining: i64 = count.fetch_one(self.pool()).await?;
            if remaining == 0 {
                query("UPDATE settings SET value = ? WHERE key = 'master_key_fingerprint'")
                    .bind(self.keys.current().fingerprint())
                    .execute(self.writer())
                    .await?;
            }
            Ok(Rotation { resealed, remaining: remaining as u64 })
        }

        async fn status_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM connections GROUP BY status ORDER BY status")
                    .fetch_all(self.pool())
                    .await?;
            Ok(rows.into_iter().map(|(s, n)| (s, n as u64)).collect())
        }

        async fn release_renewal(&self, id: &ConnectionId, owner: &str) -> Result<(), StoreError> {
            query("UPDATE connections SET renewal_owner = NULL, renewal_until = NULL WHERE id = ? AND renewal_owner = ?")
                .bind(id.as_str())
                .bind(owner)
                .execute(self.writer())
                .await?;
            Ok(())
        }

        async fn insert(&self, c: &Connection, secrets: &NewSecrets) -> Result<(), StoreError> {
            statements::insert_connection(self.writer(), &self.keys, c, secrets).await
        }

        async fn update(&self, c: &Connection, secrets: &NewSecrets) -> Result<(), StoreError> {
            c.validate()?;
            let (legacy, name, system, environment, active) = kind_columns(&c.kind);
            let (method, key, jwt_user) = auth_columns(&c.auth);
            let org = c.org.as_ref();
            let mut tx = self.writer().begin().await?;
            let done = query(
                "UPDATE connections SET legacy = ?, name = ?, system_id = ?, environment_id = ?, active = ?, org_type = ?, login_host = ?, \
                 auth_method = ?, consumer_key = ?, jwt_username = ?, org_id = ?, org_name = ?, instance_url = COALESCE(?, instance_url), \
                 sf_user_id = ?, sf_username = ?, sf_email = ?, modified_at = ?, \
                 modified_by = ?, search_text = ? WHERE id = ? AND account_id = ?",
            )
            .bind(legacy)
            .bind(name)
            .bind(system)
            .bind(environment)
            .bind(active)
            .bind(org_type(c.org_type))
            .bind(c.login_host.as_setting())
            .bind(method)
            .bind(key)
            .bind(jwt_user)
            .bind(org.map(|o| o.org_id.as_str()))
            .bind(org.map(|o| o.org_name.as_str()))
            .bind(org.map(|o| instance(&o.instance_url)))
            .bind(org.map(|o| o.user_id.as_str()))
            .bind(org.map(|o| o.username.as_str()))
            .bind(org.and_then(|o| o.email.as_deref()))
            .bind(c.modified_at)
            .bind(c.modified_by.as_deref())
            .bind(search_text(c))
            .bind(c.id.as_str())
            .bind(c.account_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(conflict)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            if let Some(secret) = &secrets.consumer_secret {
                query("UPDATE connections SET consumer_secret = ? WHERE id = ?")
                    .bind(seal_field(&self.keys, &c.id, "consumer_secret", Some(secret.expose_secret()))?)
                    .bind(c.id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(key) = &secrets.private_key {
                query("UPDATE connections SET private_key = ? WHERE id = ?")
                    .bind(seal_field(&self.keys, &c.id, "private_key", Some(key.expose_secret()))?)
                    .bind(c.id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(tokens) = &secrets.tokens {
                query(
                    "UPDATE connections SET access_token = ?, refresh_token = COALESCE(?, refresh_token), instance_url = ?, \
                     token_version = token_version + 1, renewed_at = ?, granted_at = COALESCE(?, granted_at) WHERE id = ?",
                )
                .bind(seal_field(&self.keys, &c.id, "access_token", Some(tokens.access_token.expose_secret()))?)
                .bind(seal_field(&self.keys, &c.id, "refresh_token", tokens.refresh_token.as_ref().map(RefreshToken::expose_secret))?)
                .bind(instance(&tokens.instance_url))
                .bind(c.modified_at)
                // A new refresh token is a new grant (one of the user's approvals for the app).
                .bind(tokens.refresh_token.as_ref().map(|_| c.modified_at))
                .bind(c.id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn get(&self, account: &AccountId, id: &ConnectionId) -> Result<Connection, StoreError> {
            let row = query(format!("SELECT {COLUMNS} FROM connections WHERE id = ? AND account_id = ?"))
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
            row_to_connection(&row)
        }

        fn stream<'a>(
            &'a self,
            account: &'a AccountId,
            q: &ListQuery,
        ) -> impl futures_util::Stream<Item = Result<Connection, StoreError>> + Send + 'a {
            use futures_util::StreamExt;
            let Clauses { filter, search, order, .. } = list_clauses(q, &[]);
            let sql = format!("SELECT {COLUMNS} FROM connections WHERE {filter} ORDER BY {order}");
            let search: Vec<String> = search;
            let mut query = query(sql).bind(account.as_str());
            for pattern in &search {
                query = query.bind(pattern.clone());
            }
            query.fetch(&self.pool).map(|row| row.map_err(StoreError::from).and_then(|r| row_to_connection(&r)))
        }

        async fn legacy_connectors(&self, account: &AccountId, system: &SystemId) -> Result<Vec<Connection>, StoreError> {
            let rows = query(format!(
                "SELECT {COLUMNS} FROM connections WHERE account_id = ? AND legacy = 1 AND system_id = ? ORDER BY created_at, id"
            ))
            .bind(account.as_str())
            .bind(system.as_str())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(row_to_connection).collect()
        }

        async fn delete(&self, account: &AccountId, id: &ConnectionId) -> Result<(), StoreError> {
            statements::delete_connection(self.writer(), account, id).await
        }

        async fn secrets(&self, id: &ConnectionId) -> Result<ConnectionSecrets, StoreError> {
            let row = query("SELECT consumer_secret, private_key, access_token, refresh_token, instance_url, token_version FROM connections WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
            let field = |name: &str| -> Result<Option<String>, StoreError> {
                Ok(open_field(&self.keys, id, name, row.try_get(name)?)?.map(|s| s.as_str().to_string()))
            };
            Ok(ConnectionSecrets {
                consumer_secret: field("consumer_secret")?.map(ClientSecret::new),
                private_key: field("private_key")?.map(JwtPrivateKey::new),
                access_token: field("access_token")?.map(AccessToken::new),
                refresh_token: field("refresh_token")?.map(RefreshToken::new),
                instance_url: row.try_get("instance_url")?,
                token_version: row.try_get("token_version")?,
            })
        }

        async fn save_tokens(
            &self,
            id: &ConnectionId,
            tokens: &TokenSet,
            seen_version: i64,
            now: Millis,
        ) -> Result<bool, StoreError> {
            let done = query(
                "UPDATE connections SET access_token = ?, refresh_token = COALESCE(?, refresh_token), instance_url = ?, \
                 token_version = token_version + 1, status_checked_at = ?, renewed_at = ? WHERE id = ? AND token_version = ?",
            )
            .bind(seal_field(&self.keys, id, "access_token", Some(tokens.access_token.expose_secret()))?)
            .bind(seal_field(
                &self.keys,
                id,
                "refresh_token",
                tokens.refresh_token.as_ref().map(RefreshToken::expose_secret),
            )?)
            .bind(instance(&tokens.instance_url))
            .bind(now)
            .bind(now)
            .bind(id.as_str())
            .bind(seen_version)
            .execute(self.writer())
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn due_for_check(&self, before: Millis, limit: u32) -> Result<Vec<Connection>, StoreError> {
            let rows = query(format!(
                "SELECT {COLUMNS} FROM connections WHERE status != 'logged_out' AND (status_checked_at IS NULL OR status_checked_at <= ?) \
                 ORDER BY COALESCE(status_checked_at, 0), seq LIMIT ?"
            ))
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(row_to_connection).collect()
        }

        async fn renewed_at(&self, account: &AccountId, id: &ConnectionId) -> Result<Option<Millis>, StoreError> {
            query_scalar::<Option<i64>>("SELECT renewed_at FROM connections WHERE id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)
        }

        async fn due_for_keep_alive(&self, before: Millis, limit: u32) -> Result<Vec<Connection>, StoreError> {
            let rows = query(format!(
                "SELECT {COLUMNS} FROM connections WHERE auth_method = 'oauth' AND status != 'logged_out' \
                 AND COALESCE(renewed_at, created_at) <= ? ORDER BY COALESCE(renewed_at, created_at), seq LIMIT ?"
            ))
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(row_to_connection).collect()
        }

        async fn connections_to_org(&self, account: &AccountId, org_id: &str) -> Result<Vec<Connection>, StoreError> {
            let rows = query(format!("SELECT {COLUMNS} FROM connections WHERE account_id = ? AND org_id = ? ORDER BY seq"))
                .bind(account.as_str())
                .bind(org_id)
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(row_to_connection).collect()
        }

        async fn oauth_grants(&self, account: &AccountId, consumer_key: &str) -> Result<Vec<Connection>, StoreError> {
            let rows = query(format!(
                "SELECT {COLUMNS} FROM connections WHERE account_id = ? AND auth_method = 'oauth' AND consumer_key = ? \
                 AND sf_user_id IS NOT NULL ORDER BY COALESCE(granted_at, created_at), seq"
            ))
            .bind(account.as_str())
            .bind(consumer_key)
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(row_to_connection).collect()
        }

        async fn observe(
            &self,
            id: &ConnectionId,
            observation: &crate::Observation,
            based_on: Option<i64>,
            now: Millis,
        ) -> Result<crate::StatusChange, StoreError> {
            let mut tx = self.writer().begin().await?;
            // A write first: it takes SQLite's write lock (a read first would make the later
            // write fail with SQLITE_BUSY_SNAPSHOT when another process wrote in between) and
            // PostgreSQL's row lock, so two observations of one connection take turns.
            let touched = query("UPDATE connections SET status_checked_at = ? WHERE id = ?")
                .bind(now)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            one_or_not_found(touched.rows_affected())?;
            let row = query(
                "SELECT account_id, name, status, status_reason, status_detail, failing_since, token_version FROM connections WHERE id = ?",
            )
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let status: String = row.try_get("status")?;
            let from = ConnectionStatus::parse(&status).ok_or_else(|| StoreError::Corrupt("unknown status".into()))?;
            let was_reason: Option<String> = row.try_get("status_reason")?;
            let was_reason = was_reason.as_deref().and_then(domain::StatusReason::parse);
            let failing_since: Option<Millis> = row.try_get("failing_since")?;
            let was_failing_since = failing_since;
            let was_detail: Option<String> = row.try_get("status_detail")?;
            let version: i64 = row.try_get("token_version")?;
            let good_news = matches!(
                observation,
                crate::Observation::Healthy | crate::Observation::Renewed | crate::Observation::Moved { .. }
            );
            if !good_news && based_on.is_some_and(|v| v != version) {
                // Seen with tokens since replaced: it says nothing about the stored ones.
                tx.commit().await?;
                return Ok(crate::StatusChange { from, to: from, reason: was_reason, changed: false });
            }
            let (to, reason, detail, failing_since) = match observation {
                crate::Observation::Healthy => (ConnectionStatus::LoggedIn, None, None, None),
                crate::Observation::Renewed | crate::Observation::Moved { .. } => match (from, was_reason) {
                    (ConnectionStatus::NotAvailable, Some(r)) if r != domain::StatusReason::SalesforceUnreachable => {
                        (from, was_reason, was_detail, None)
                    }
                    _ => (ConnectionStatus::LoggedIn, None, None, None),
                },
                crate::Observation::Failing { reason, detail, grace_ms } => {
                    let since = failing_since.unwrap_or(now);
                    let minutes = (now - since) / 60_000;
                    let detail = format!("failing for {minutes} min: {detail}");
                    if from == ConnectionStatus::LoggedOut {
                        // Dead stays dead (with why): only a person brings it back.
                        (from, was_reason, was_detail, failing_since)
                    } else if now - since >= *grace_ms {
                        (ConnectionStatus::NotAvailable, Some(*reason), Some(detail), Some(since))
                    } else {
                        (from, was_reason, Some(detail), Some(since))
                    }
                }
                crate::Observation::Refused { reason, detail } => {
                    (ConnectionStatus::NotAvailable, Some(*reason), Some(detail.clone()), None)
                }
                // Known to be the sixth approval's victim: a later refusal of its grant says no more.
                crate::Observation::Dead { reason: domain::StatusReason::RefreshTokenInvalid, .. }
                    if from == ConnectionStatus::LoggedOut && was_reason == Some(domain::StatusReason::ApprovalLimit) =>
                {
                    (from, was_reason, was_detail, None)
                }
                crate::Observation::Dead { reason, detail } => (ConnectionStatus::LoggedOut, Some(*reason), Some(detail.clone()), None),
            };
            query(
                "UPDATE connections SET status = ?, status_reason = ?, status_detail = ?, failing_since = ?, status_checked_at = ? \
                 WHERE id = ?",
            )
            .bind(to.as_str())
            .bind(reason.map(domain::StatusReason::as_str))
            .bind(detail.as_deref())
            .bind(failing_since)
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
            let changed = from != to || was_reason != reason;
            let account: String = row.try_get("account_id")?;
            let name: Option<String> = row.try_get("name")?;
            if let crate::Observation::Moved { from: old, to: new } = observation {
                let entry = domain::AuditEntry {
                    account_id: Some(AccountId::parse(&account)?),
                    at: now,
                    actor: "lightbridge".into(),
                    actor_kind: domain::ActorKind::System,
                    action: "connection.instance_moved".into(),
                    target_kind: "connection".into(),
                    target_id: Some(id.as_str().to_string()),
                    target_label: Some(name.clone().unwrap_or_else(|| id.as_str().to_string())),
                    detail: Some(format!("Salesforce moved the org from {old} to {new} (a My Domain change)")),
                    remote_addr: None,
                };
                statements::record(&mut *tx, &entry).await?;
            }
            // Someone may need to hear about it (#18): a failing streak's first failure (a
            // renewal, the keep-alive's included, or a call), and each change of status.
            let streak_starts = matches!(observation, crate::Observation::Failing { .. })
                && was_failing_since.is_none()
                && failing_since.is_some()
                && from == ConnectionStatus::LoggedIn
                && to == from;
            let news = match (from, to) {
                _ if streak_starts => Some(domain::EventType::ConnectionFailing),
                (f, ConnectionStatus::LoggedOut) if f != ConnectionStatus::LoggedOut => Some(domain::EventType::ConnectionLoggedOut),
                (f, ConnectionStatus::NotAvailable) if f != ConnectionStatus::NotAvailable => {
                    Some(domain::EventType::ConnectionUnavailable)
                }
                (ConnectionStatus::LoggedOut | ConnectionStatus::NotAvailable, ConnectionStatus::LoggedIn) => {
                    Some(domain::EventType::ConnectionRecovered)
                }
                _ => None,
            };
            if let Some(kind) = news {
                // A streak's start says why it fails (the status keeps its own reason).
                let why = match observation {
                    crate::Observation::Failing { reason: failing, .. } if streak_starts => Some(*failing),
                    _ => reason,
                };
                statements::connection_event(&mut *tx, id, kind, from, to, why, detail.as_deref(), now).await?;
            }
            if changed {
                let words = match reason {
                    Some(r) => format!("{} → {}: {} ({})", from.label(), to.label(), r.summary(), r.as_str()),
                    None => format!("{} → {}", from.label(), to.label()),
                };
                let entry = domain::AuditEntry {
                    account_id: Some(AccountId::parse(&account)?),
                    at: now,
                    actor: "lightbridge".into(),
                    actor_kind: domain::ActorKind::System,
                    action: "connection.status_changed".into(),
                    target_kind: "connection".into(),
                    target_id: Some(id.as_str().to_string()),
                    target_label: Some(name.unwrap_or_else(|| id.as_str().to_string())),
                    detail: Some(words),
                    remote_addr: None,
                };
                statements::record(&mut *tx, &entry).await?;
            }
            tx.commit().await?;
            Ok(crate::StatusChange { from, to, reason, changed })
        }

        async fn name_taken(
            &self,
            account: &AccountId,
            name: &str,
            except: Option<&ConnectionId>,
        ) -> Result<bool, StoreError> {
            let found: i64 = query_scalar(format!(
                "SELECT COUNT(*) FROM connections WHERE account_id = ? AND {} AND ({} IS NULL OR id != ?)",
                dialect::same_text("name"),
                dialect::NULLABLE_TEXT
            ))
            .bind(account.as_str())
            .bind(name.trim())
            .bind(except.map(ConnectionId::as_str))
            .bind(except.map(ConnectionId::as_str))
            .fetch_one(self.pool())
            .await?;
            Ok(found > 0)
        }

        fn table_chunks<'a>(
            &'a self,
            account: &'a AccountId,
            q: &ListQuery,
        ) -> impl futures_util::Stream<Item = Result<Vec<TableRow>, StoreError>> + Send + 'a {
            use futures_util::StreamExt;
            let Clauses { filter, search, order, .. } = list_clauses(q, &[]);
            let fields = crate::connections::TABLE_COLUMNS;
            let date_column = match q.sort {
                SortKey::CreatedAt => Some("created_at"),
                SortKey::ModifiedAt => Some("modified_at"),
                _ => None,
            };
            let Some(column) = date_column else {
                // By another column: the database numbers the rows in the table's order and folds
                // each 2,000 into one JSON array, so the driver hands over 50 values for 100,000 rows.
                let sql = format!(
                    "SELECT {} AS chunk \
                     FROM (SELECT {fields}, ROW_NUMBER() OVER (ORDER BY {order}) AS rn FROM connections WHERE {filter}) numbered \
                     GROUP BY (rn - 1) / 2000 ORDER BY MIN(rn)",
                    dialect::json_rows(fields, "rn")
                );
                let mut query = query_scalar::<String>(sql).bind(account.as_str());
                for pattern in &search {
                    query = query.bind(pattern.clone());
                }
                return query.fetch(self.pool()).map(|chunk| parse_chunk(&chunk?)).boxed();
            };
            // By a date (the default): 2,000 rows at a time in the index's order, each chunk
            // starting after the last row of the one before (keyset), folded into one JSON array.
            let (cmp, dir) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
            let chunk_sql = move |after: bool| {
                let keyset = if after { format!(" AND ({column}, id) {cmp} (?, ?)") } else { String::new() };
                format!(
                    "SELECT {} FROM \
                     (SELECT {fields} FROM connections WHERE {filter}{keyset} ORDER BY {column} {dir}, id {dir} LIMIT 2000) chunk",
                    dialect::json_rows(fields, &format!("{column} {dir}, id {dir}"))
                )
            };
            let (first, next) = (chunk_sql(false), chunk_sql(true));
            futures_util::stream::unfold((None::<(i64, String)>, false), move |(cursor, done)| {
                let (first, next, search) = (first.clone(), next.clone(), search.clone());
                async move {
                    if done {
                        return None;
                    }
                    let sql = if cursor.is_some() { next } else { first };
                    let mut query = query_scalar::<String>(sql).bind(account.as_str());
                    for pattern in &search {
                        query = query.bind(pattern.clone());
                    }
                    if let Some((value, id)) = &cursor {
                        query = query.bind(*value).bind(id.clone());
                    }
                    let rows =
                        match query.fetch_one(self.pool()).await.map_err(StoreError::from).and_then(|t| parse_chunk(&t)) {
                            Ok(rows) => rows,
                            Err(e) => return Some((Err(e), (None, true))),
                        };
                    let last = rows
                        .last()
                        .map(|r| (if column == "created_at" { r.created_at } else { r.modified_at }, r.id.clone()));
                    match last {
                        None => None,
                        Some(last) => {
                            let done = rows.len() < 2000;
                            Some((Ok(rows), (Some(last), done)))
                        }
                    }
                }
            })
            .boxed()
        }

        async fn list(&self, account: &AccountId, q: &ListQuery) -> Result<Page, StoreError> {
            // A substring search looks up its rarest trigrams, as a sample of the table tells
            // (taken at most once an hour).
            let rare = match q.search_term() {
                Some(term) if !crate::connections::is_short(&term) => {
                    let sample = match self.rarity.fresh() {
                        Some(sample) => sample,
                        None => {
                            let ends = query("SELECT MIN(seq) AS first, MAX(seq) AS last FROM connections")
                                .fetch_one(self.pool())
                                .await?;
                            let (first, last): (Option<i64>, Option<i64>) = (ends.try_get("first")?, ends.try_get("last")?);
                            let mut sample = query_scalar::<String>(crate::search::sample_sql());
                            for place in crate::search::sample_places(first.unwrap_or(0), last.unwrap_or(0)) {
                                sample = sample.bind(place);
                            }
                            self.rarity.keep(&sample.fetch_all(self.pool()).await?)
                        }
                    };
                    sample.rarest(&term)
                }
                _ => Vec::new(),
            };
            let Clauses { mut filter, mut search, sort, order, reversed, capped, prefix_ranges } = list_clauses(q, &rare);
            let limit = i64::from(q.limit.clamp(1, 500));
            // Only constants and the enum-chosen expressions above go into the SQL text; every
            // value the caller gave is bound.
            // A keyset page starts beside a row: compared with it as a pair (sort value, id),
            // read from the row itself so the database compares like with like.
            let anchor = format!("(SELECT {sort}, id FROM connections WHERE account_id = ? AND id = ?)");
            let (after, before) = if q.descending { ("<", ">") } else { (">", "<") };
            // The page's rows, from the query's first matching rows, or beside its cursor.
            let read_rows = |filter: String, search: Vec<String>| {
                let (anchor, order, reversed, sort) = (&anchor, &order, &reversed, &sort);
                async move {
                    let Some(cursor) = &q.cursor else {
                        let sql = format!("SELECT {COLUMNS} FROM connections WHERE {filter} ORDER BY {order} LIMIT ? OFFSET ?");
                        let mut rows_query = query(sql).bind(account.as_str());
                        for pattern in &search {
                            rows_query = rows_query.bind(pattern.clone());
                        }
                        let rows = rows_query.bind(limit).bind(i64::from(q.offset)).fetch_all(self.pool()).await?;
                        return rows.iter().map(row_to_connection).collect::<Result<Vec<_>, _>>();
                    };
                    let (keyset, order, from_end, beside) = match cursor {
                        Cursor::After(id) => (format!(" AND ({sort}, id) {after} {anchor}"), order, false, Some(id)),
                        Cursor::From(id) => (format!(" AND ({sort}, id) {after}= {anchor}"), order, false, Some(id)),
                        Cursor::Before(id) => (format!(" AND ({sort}, id) {before} {anchor}"), reversed, true, Some(id)),
                        Cursor::Last => (String::new(), reversed, true, None),
                    };
                    let sql = format!("SELECT {COLUMNS} FROM connections WHERE {filter}{keyset} ORDER BY {order} LIMIT ?");
                    let mut rows_query = query(sql).bind(account.as_str());
                    for pattern in &search {
                        rows_query = rows_query.bind(pattern.clone());
                    }
                    if let Some(id) = beside {
                        rows_query = rows_query.bind(account.as_str()).bind(id.as_str());
                    }
                    let rows = rows_query.bind(limit).fetch_all(self.pool()).await?;
                    let mut rows = rows.iter().map(row_to_connection).collect::<Result<Vec<_>, _>>()?;
                    if from_end {
                        rows.reverse();
                    }
                    Ok::<Vec<Connection>, StoreError>(rows)
                }
            };
            let (counted, rows) = if capped {
                // A short search counts up to its cap, each prefix column's range on its own index.
                let filters = q.filters.sql(dialect::NOT_LOGGED_IN);
                let branches: Vec<String> = prefix_ranges
                    .iter()
                    // `seq`: in every index, so an index holding the filtered columns answers alone.
                    .map(|r| format!("SELECT seq FROM connections WHERE account_id = ? AND {r}{filters}"))
                    .collect();
                let union = branches.join(" UNION ");
                let bounds = (search.first().cloned().unwrap_or_default(), search.get(1).cloned().unwrap_or_default());
                let union_binds: Vec<String> = prefix_ranges
                    .iter()
                    .flat_map(|_| [account.as_str().to_string(), bounds.0.clone(), bounds.1.clone()])
                    .collect();
                // First each column alone, up to the cap: a prefix most rows share stops there
                // (a union of a million rows would be read whole to drop its duplicates).
                let mut counted = 0;
                for branch in &branches {
                    let sql = format!("SELECT COUNT(*) FROM ({branch} LIMIT {}) capped", SHORT_SEARCH_CAP + 1);
                    let n = query_scalar::<i64>(sql)
                        .bind(account.as_str())
                        .bind(bounds.0.clone())
                        .bind(bounds.1.clone())
                        .fetch_one(self.pool())
                        .await? as u64;
                    counted = counted.max(n);
                    if n > SHORT_SEARCH_CAP {
                        break;
                    }
                }
                // Each under the cap: the union holds at most three thousand rows; counted exactly.
                if counted <= SHORT_SEARCH_CAP {
                    let mut count = query_scalar::<i64>(format!("SELECT COUNT(*) FROM ({union}) matched"));
                    for b in &union_binds {
                        count = count.bind(b.clone());
                    }
                    counted = count.fetch_one(self.pool()).await? as u64;
                }
                // Few matches: the page reads them from the union too (and sorts them), not by
                // walking the sort's index past rows that do not match.
                if counted <= SHORT_SEARCH_CAP {
                    filter = format!("{}account_id = ? AND seq IN ({union}){filters}", dialect::NOT_INDEXED);
                    search = union_binds;
                }
                (counted, read_rows(filter.clone(), search.clone()).await?)
            } else {
                let counting = async {
                    let count_sql = if !search.is_empty() {
                        format!("SELECT COUNT(*) FROM connections WHERE {filter}")
                    } else if !q.filters.is_empty() {
                        // Filters alone: summed from the account's counts per combination of the
                        // filtered columns (at most 36 rows), never by reading the matching rows.
                        format!(
                            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM connection_group_counts WHERE account_id = ?{}",
                            q.filters.sql("")
                        )
                    } else {
                        "SELECT COALESCE((SELECT n FROM account_connection_counts WHERE account_id = ?), 0)".to_string()
                    };
                    let mut count_query = query_scalar::<i64>(count_sql).bind(account.as_str());
                    for pattern in &search {
                        count_query = count_query.bind(pattern.clone());
                    }
                    Ok::<u64, StoreError>(count_query.fetch_one(self.pool()).await? as u64)
                };
                // Neither waits for the other: two of the pool's connections at once.
                futures_util::future::try_join(counting, read_rows(filter.clone(), search.clone())).await?
            };
            let more = capped && counted > SHORT_SEARCH_CAP;
            let total = if more { SHORT_SEARCH_CAP } else { counted };
            let Some(cursor) = &q.cursor else {
                return Ok(Page { rows, total, position: u64::from(q.offset), more });
            };
            let position = match (cursor, rows.first(), q.position) {
                (_, None, _) => 0,
                // The link that led here knew where its page started: no count (a deep page
                // costs what the first does).
                (Cursor::After(_) | Cursor::Before(_), Some(_), Some(known)) => known,
                (Cursor::Last, Some(_), _) if !more => total.saturating_sub(rows.len() as u64),
                (Cursor::Last, Some(_), _) => 0,
                (_, Some(first), _) => {
                    let sql = format!("SELECT COUNT(*) FROM connections WHERE {filter} AND ({sort}, id) {before} {anchor}");
                    let mut count = query_scalar::<i64>(sql).bind(account.as_str());
                    for pattern in &search {
                        count = count.bind(pattern.clone());
                    }
                    count.bind(account.as_str()).bind(first.id.as_str()).fetch_one(self.pool()).await? as u64
                }
            };
            Ok(Page { rows, total, position, more })
        }
    };
}

pub(crate) use shared_connection_methods;

/// Deployment-store methods whose statements are the same on both databases. `$lock` is the
/// statement that makes finishers of one deployment take turns on its row, if the database
/// needs one (PostgreSQL does; SQLite has one writer).
macro_rules! shared_deployment_methods {
    ($lock:expr) => {
        async fn finish_targets(&self, owner: &str, finished: &[Finish]) -> Result<Vec<bool>, StoreError> {
            if finished.is_empty() {
                return Ok(Vec::new());
            }
            let mut deployments: Vec<(&DeploymentId, Millis)> =
                finished.iter().map(|f| (&f.deployment, f.now)).collect();
            deployments.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()).then(b.1.cmp(&a.1)));
            deployments.dedup_by(|a, b| a.0 == b.0);
            let mut tx = self.writer().begin().await?;
            // Each then counts the open targets with every earlier finisher's update committed,
            // so the last one sees none left and finishes the deployment. (Without the turns,
            // two last finishers each see the other's target still running, and the deployment
            // never finishes.) Taken in id order, so two batches never wait on each other.
            let lock: Option<&str> = $lock;
            if let Some(lock) = lock {
                for (id, _) in &deployments {
                    query(lock).bind(id.as_str()).execute(&mut *tx).await?;
                }
            }
            let mut recorded = Vec::with_capacity(finished.len());
            for f in finished {
                let statement = match &f.outcome {
                    TargetOutcome::Done { status, action, resource_id, url, loader, .. } => query(
                        "UPDATE deployment_targets SET status = ?, action = ?, resource_id = ?, url = ?, loader = ?, error = NULL, lease_owner = NULL, \
                         lease_until = NULL, updated_at = ? WHERE deployment_id = ? AND connection_id = ? AND lease_owner = ? AND status = 'running'",
                    )
                    .bind(status.as_str())
                    .bind(action)
                    .bind(resource_id)
                    .bind(url)
                    .bind(loader.as_deref())
                    .bind(f.now),
                    TargetOutcome::Failed { error } => query(
                        "UPDATE deployment_targets SET status = 'failed', error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? \
                         WHERE deployment_id = ? AND connection_id = ? AND lease_owner = ? AND status = 'running'",
                    )
                    .bind(error)
                    .bind(f.now),
                    // Tried again only while its deployment runs: held when it was paused, halted or
                    // waits meanwhile, skipped when it was aborted (#17).
                    TargetOutcome::Retry { error, not_before } => query(
                        "UPDATE deployment_targets SET status = (SELECT CASE d.status WHEN 'running' THEN 'pending' \
                         WHEN 'aborted' THEN 'skipped' ELSE 'held' END FROM deployments d WHERE d.id = deployment_targets.deployment_id), \
                         error = ?, not_before = ?, lease_owner = NULL, lease_until = NULL, \
                         updated_at = ? WHERE deployment_id = ? AND connection_id = ? AND lease_owner = ? AND status = 'running'",
                    )
                    .bind(error)
                    .bind(*not_before)
                    .bind(f.now),
                    TargetOutcome::Defer { reason, not_before } => query(
                        "UPDATE deployment_targets SET status = (SELECT CASE d.status WHEN 'running' THEN 'pending' \
                         WHEN 'aborted' THEN 'skipped' ELSE 'held' END FROM deployments d WHERE d.id = deployment_targets.deployment_id), \
                         error = ?, not_before = ?, attempts = attempts - 1, deferred_since = COALESCE(deferred_since, ?), \
                         lease_owner = NULL, lease_until = NULL, updated_at = ? \
                         WHERE deployment_id = ? AND connection_id = ? AND lease_owner = ? AND status = 'running'",
                    )
                    .bind(reason)
                    .bind(*not_before)
                    .bind(f.now)
                    .bind(f.now),
                    // Waits for a person (overwrite or skip), whatever the rollout does meanwhile;
                    // skipped once it was aborted (#17).
                    TargetOutcome::Drifted { drift } => query(
                        "UPDATE deployment_targets SET status = (SELECT CASE d.status WHEN 'aborted' THEN 'skipped' ELSE 'drifted' END \
                         FROM deployments d WHERE d.id = deployment_targets.deployment_id), \
                         error = ?, drift_by = ?, drift_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? \
                         WHERE deployment_id = ? AND connection_id = ? AND lease_owner = ? AND status = 'running'",
                    )
                    .bind(format!("drifted: {}", drift.describe()))
                    .bind(drift.by.as_deref())
                    .bind(drift.at)
                    .bind(f.now),
                };
                let done = statement
                    .bind(f.deployment.as_str())
                    .bind(f.connection.as_str())
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                let done = done.rows_affected() == 1;
                // What the org now holds is what the next publish and scans compare with (#17).
                if let (true, TargetOutcome::Done { baseline: Some(b), .. }) = (done, &f.outcome) {
                    statements::put_baseline(&mut *tx, b).await?;
                }
                if let (true, TargetOutcome::Drifted { drift }) = (done, &f.outcome) {
                    statements::drift_event_of_target(&mut *tx, &f.deployment, &f.connection, drift).await?;
                }
                recorded.push(done);
            }
            // The last target to finish finishes the deployment.
            for (id, now) in deployments {
                let ended = query(crate::rows::FINISH_WHEN_DONE).bind(now).bind(id.as_str()).bind(id.as_str()).bind(id.as_str()).execute(&mut *tx).await?;
                if ended.rows_affected() == 1 {
                    statements::deployment_event(&mut *tx, id, now).await?;
                }
            }
            tx.commit().await?;
            Ok(recorded)
        }

        async fn save_bundle(&self, b: &BundleInfo, bytes: &[u8]) -> Result<BundleInfo, StoreError> {
            let existing = query(
                "SELECT id, account_id, sha256, size, files, created_at, created_by FROM bundles WHERE account_id = ? AND sha256 = ? LIMIT 1",
            )
            .bind(b.account_id.as_str())
            .bind(&b.sha256)
            .fetch_optional(self.writer())
            .await?;
            if let Some(row) = existing {
                return row_to_bundle(&row);
            }
            query(
                "INSERT INTO bundles (id, account_id, sha256, size, files, bytes, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(b.id.as_str())
            .bind(b.account_id.as_str())
            .bind(&b.sha256)
            .bind(b.size as i64)
            .bind(b.files.join("\n"))
            .bind(bytes)
            .bind(b.created_at)
            .bind(&b.created_by)
            .execute(self.writer())
            .await?;
            Ok(b.clone())
        }

        async fn bundle(&self, account: &AccountId, id: &BundleId) -> Result<BundleInfo, StoreError> {
            let row = query(
                "SELECT id, account_id, sha256, size, files, created_at, created_by FROM bundles WHERE id = ? AND account_id = ?",
            )
            .bind(id.as_str())
            .bind(account.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
            row_to_bundle(&row)
        }

        async fn bundle_bytes(&self, id: &BundleId) -> Result<Vec<u8>, StoreError> {
            query_scalar("SELECT bytes FROM bundles WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)
        }

        async fn unbind(
            &self,
            account: &AccountId,
            connection: &ConnectionId,
            system: &SystemId,
            environment: &EnvironmentId,
        ) -> Result<(), StoreError> {
            let done = query(
                "DELETE FROM bindings WHERE account_id = ? AND connection_id = ? AND system_id = ? AND environment_id = ?",
            )
            .bind(account.as_str())
            .bind(connection.as_str())
            .bind(system.as_str())
            .bind(environment.as_str())
            .execute(self.writer())
            .await?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        }

        async fn deployment(
            &self,
            account: &AccountId,
            id: &DeploymentId,
        ) -> Result<(Deployment, Vec<Target>), StoreError> {
            let row = query(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments d WHERE d.id = ? AND d.account_id = ?"))
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)?;
            let targets = query(format!(
                "SELECT {TARGET_COLUMNS} FROM deployment_targets t LEFT JOIN connections c ON c.id = t.connection_id \
                 WHERE t.deployment_id = ? ORDER BY t.connection_id"
            ))
            .bind(id.as_str())
            .fetch_all(self.pool())
            .await?;
            Ok((row_to_deployment(&row)?, targets.iter().map(row_to_target).collect::<Result<_, _>>()?))
        }

        async fn rollouts_to_advance(&self) -> Result<Vec<(Deployment, Vec<TargetCounts>)>, StoreError> {
            let rows = query(format!(
                "SELECT {DEPLOYMENT_COLUMNS} FROM deployments d WHERE d.rollout IS NOT NULL AND d.finished_at IS NULL AND (d.status = 'waiting' \
                 OR (d.status = 'running' AND NOT EXISTS (SELECT 1 FROM deployment_targets t WHERE t.deployment_id = d.id \
                     AND t.wave <= d.wave AND t.status IN ('pending', 'running')))) ORDER BY d.seq"
            ))
            .fetch_all(self.pool())
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let d = row_to_deployment(row)?;
                let counts = self.wave_counts(&d.id).await?;
                out.push((d, counts));
            }
            Ok(out)
        }

        async fn wave_counts(&self, id: &DeploymentId) -> Result<Vec<TargetCounts>, StoreError> {
            let rows = query(
                "SELECT wave, status, COUNT(*) AS n FROM deployment_targets WHERE deployment_id = ? GROUP BY wave, status ORDER BY wave",
            )
            .bind(id.as_str())
            .fetch_all(self.pool())
            .await?;
            let mut counts: Vec<TargetCounts> = Vec::new();
            for row in &rows {
                let wave = row.try_get::<i64, _>("wave")? as usize;
                let status: String = row.try_get("status")?;
                let status = domain::TargetStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("target status {status}")))?;
                if counts.len() <= wave {
                    counts.resize(wave + 1, TargetCounts::default());
                }
                counts[wave].add(status, row.try_get::<i64, _>("n")? as u32);
            }
            Ok(counts)
        }

        async fn move_rollout(
            &self,
            id: &DeploymentId,
            from: (domain::DeploymentStatus, u32),
            to: (domain::DeploymentStatus, u32),
            note: Option<&str>,
            now: Millis,
        ) -> Result<bool, StoreError> {
            use domain::DeploymentStatus as S;
            let mut tx = self.writer().begin().await?;
            let finished = (to.0 == S::Aborted).then_some(now);
            let moved = query(
                "UPDATE deployments SET status = ?, wave = ?, note = ?, finished_at = COALESCE(?, finished_at) \
                 WHERE id = ? AND status = ? AND wave = ? AND finished_at IS NULL",
            )
            .bind(to.0.as_str())
            .bind(i64::from(to.1))
            .bind(note)
            .bind(finished)
            .bind(id.as_str())
            .bind(from.0.as_str())
            .bind(i64::from(from.1))
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            let targets = match to.0 {
                S::Running => query(
                    "UPDATE deployment_targets SET status = 'pending', updated_at = ? \
                     WHERE deployment_id = ? AND status = 'held' AND wave <= ?",
                )
                .bind(now)
                .bind(id.as_str())
                .bind(i64::from(to.1)),
                S::Waiting | S::Paused | S::Halted => query(
                    "UPDATE deployment_targets SET status = 'held', updated_at = ? WHERE deployment_id = ? AND status = 'pending'",
                )
                .bind(now)
                .bind(id.as_str()),
                S::Aborted => query(
                    "UPDATE deployment_targets SET status = 'skipped', updated_at = ?, lease_owner = NULL, lease_until = NULL \
                     WHERE deployment_id = ? AND (status IN ('pending', 'held', 'drifted') OR (status = 'running' AND lease_until < ?))",
                )
                .bind(now)
                .bind(id.as_str())
                .bind(now),
                S::Succeeded | S::Failed => {
                    return Err(StoreError::Corrupt("a rollout finishes with its last target".into()));
                }
            };
            targets.execute(&mut *tx).await?;
            if to.0 == S::Halted {
                statements::deployment_event(&mut *tx, id, now).await?;
            }
            // A rollout released onto waves with nothing left to run ends now, as the last
            // finished target would have ended it.
            if to.0 == S::Running {
                let ended = query(crate::rows::FINISH_WHEN_DONE).bind(now).bind(id.as_str()).bind(id.as_str()).bind(id.as_str()).execute(&mut *tx).await?;
                if ended.rows_affected() == 1 {
                    statements::deployment_event(&mut *tx, id, now).await?;
                }
            }
            tx.commit().await?;
            Ok(true)
        }

        async fn baseline(&self, account: &AccountId, org_id: &str, resource: &ResourceName) -> Result<Option<Baseline>, StoreError> {
            let row = query(format!(
                "SELECT {} FROM resource_baselines WHERE account_id = ? AND org_id = ? AND resource_name = ?",
                crate::rows::BASELINE_COLUMNS
            ))
            .bind(account.as_str())
            .bind(org_id)
            .bind(resource.as_str().to_ascii_lowercase())
            .fetch_optional(self.pool())
            .await?;
            row.as_ref().map(crate::rows::row_to_baseline).transpose()
        }

        async fn baselines(&self, account: &AccountId) -> Result<Vec<Baseline>, StoreError> {
            let rows = query(format!(
                "SELECT {} FROM resource_baselines WHERE account_id = ? ORDER BY org_id, resource_name",
                crate::rows::BASELINE_COLUMNS
            ))
            .bind(account.as_str())
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(crate::rows::row_to_baseline).collect()
        }

        async fn set_drift(
            &self,
            account: &AccountId,
            org_id: &str,
            resource: &ResourceName,
            drift: Option<&Drift>,
            scanned_at: Option<Millis>,
            published_modstamp: Millis,
        ) -> Result<bool, StoreError> {
            let found = drift;
            let drift = drift.map(serde_json::to_string).transpose().map_err(|e| StoreError::Corrupt(format!("drift: {e}")))?;
            let mut tx = self.writer().begin().await?;
            // First as news (the copy was clean), then as a finding already known.
            let mut moved = false;
            for known in [false, true] {
                let done = query(format!(
                    "UPDATE resource_baselines SET drift = ?, scanned_at = COALESCE(?, scanned_at) \
                     WHERE account_id = ? AND org_id = ? AND resource_name = ? AND modstamp_ms = ? AND drift IS {} NULL \
                     RETURNING connection_id",
                    if known { "NOT" } else { "" }
                ))
                .bind(drift.as_deref())
                .bind(scanned_at)
                .bind(account.as_str())
                .bind(org_id)
                .bind(resource.as_str().to_ascii_lowercase())
                .bind(published_modstamp)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = done {
                    moved = true;
                    // A scan's news; a deployment's finding (no `scanned_at`) is announced with its
                    // target's outcome, in finish_targets.
                    if let (false, Some(found), Some(_)) = (known, found, scanned_at) {
                        let connection = ConnectionId::parse(&row.try_get::<String, _>("connection_id")?)?;
                        statements::drift_event(&mut *tx, account, org_id, resource.as_str(), &connection, None, found).await?;
                    }
                    break;
                }
            }
            tx.commit().await?;
            Ok(moved)
        }

        async fn touch_scanned(&self, account: &AccountId, org_id: &str, now: Millis) -> Result<(), StoreError> {
            query("UPDATE resource_baselines SET scanned_at = ? WHERE account_id = ? AND org_id = ?")
                .bind(now)
                .bind(account.as_str())
                .bind(org_id)
                .execute(self.writer())
                .await?;
            Ok(())
        }

        async fn claim_drift_scans(
            &self,
            owner: &str,
            before: Millis,
            now: Millis,
            until: Millis,
            limit: u32,
        ) -> Result<Vec<AccountId>, StoreError> {
            let due: Vec<String> = query_scalar(
                "SELECT b.account_id FROM resource_baselines b \
                 LEFT JOIN drift_scan_claims c ON c.account_id = b.account_id \
                 WHERE c.claimed_until IS NULL OR c.claimed_until <= ? GROUP BY b.account_id \
                 HAVING MIN(COALESCE(b.scanned_at, b.published_at)) < ? \
                 ORDER BY MIN(COALESCE(b.scanned_at, b.published_at)) LIMIT ?",
            )
            .bind(now)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
            // Each taken by one statement that succeeds for one claimer only: another instance
            // that read the same accounts meanwhile finds them claimed.
            let mut claimed = Vec::with_capacity(due.len());
            for id in due {
                let took: Option<String> = query_scalar(
                    "INSERT INTO drift_scan_claims (account_id, owner, claimed_until) VALUES (?, ?, ?) \
                     ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, claimed_until = excluded.claimed_until \
                     WHERE drift_scan_claims.claimed_until <= ? RETURNING account_id",
                )
                .bind(&id)
                .bind(owner)
                .bind(until)
                .bind(now)
                .fetch_optional(self.writer())
                .await?;
                if took.is_some() {
                    claimed.push(AccountId::parse(&id)?);
                }
            }
            Ok(claimed)
        }

        async fn resolve_drifted(
            &self,
            account: &AccountId,
            id: &DeploymentId,
            connections: Option<&[ConnectionId]>,
            overwrite: bool,
            now: Millis,
        ) -> Result<u64, StoreError> {
            let mut tx = self.writer().begin().await?;
            // Takes turns with the finishers of the same deployment (see `finish_targets`).
            let lock: Option<&str> = $lock;
            if let Some(lock) = lock {
                query(lock).bind(id.as_str()).execute(&mut *tx).await?;
            }
            let open: Option<String> =
                query_scalar("SELECT status FROM deployments WHERE id = ? AND account_id = ? AND finished_at IS NULL")
                    .bind(id.as_str())
                    .bind(account.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(status) = open else {
                tx.rollback().await?;
                return Ok(0);
            };
            // Overwritten: runs again now if the rollout runs, else when it does.
            let to = match (overwrite, status.as_str()) {
                (false, _) => "skipped",
                (true, "running") => "pending",
                (true, _) => "held",
            };
            // Every drifted target (one statement), or the ones named (one each).
            let only: Vec<Option<&str>> = match connections {
                Some(list) => list.iter().map(|c| Some(c.as_str())).collect(),
                None => vec![None],
            };
            let mut moved = 0;
            for connection in only {
                let done = query(format!(
                    "UPDATE deployment_targets SET status = ?, overwrite = ?, attempts = 0, not_before = 0, updated_at = ? \
                     WHERE deployment_id = ? AND status = 'drifted' AND ({} IS NULL OR connection_id = ?)",
                    dialect::NULLABLE_TEXT
                ))
                .bind(to)
                .bind(i64::from(overwrite))
                .bind(now)
                .bind(id.as_str())
                .bind(connection)
                .bind(connection)
                .execute(&mut *tx)
                .await?;
                moved += done.rows_affected();
            }
            let ended = query(crate::rows::FINISH_WHEN_DONE).bind(now).bind(id.as_str()).bind(id.as_str()).bind(id.as_str()).execute(&mut *tx).await?;
                if ended.rows_affected() == 1 {
                    statements::deployment_event(&mut *tx, id, now).await?;
                }
            tx.commit().await?;
            Ok(moved)
        }

        async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
            Ok(query_scalar(
                "SELECT MIN(CASE WHEN status = 'pending' THEN not_before ELSE lease_until END) FROM deployment_targets \
                 WHERE status IN ('pending', 'running')",
            )
            .fetch_one(self.pool())
            .await?)
        }

        async fn bind(
            &self,
            account: &AccountId,
            connection: &ConnectionId,
            system: &SystemId,
            environment: &EnvironmentId,
            now: Millis,
        ) -> Result<(), StoreError> {
            // Every id must be this account's: checked in the statement itself.
            let done = query(
                "INSERT INTO bindings (account_id, connection_id, system_id, environment_id, created_at) \
                 SELECT ?1, c.id, s.id, e.id, ?2 FROM connections c, systems s, environments e \
                 WHERE c.id = ?3 AND c.account_id = ?1 AND c.legacy = 0 AND s.id = ?4 AND s.account_id = ?1 AND e.id = ?5 AND e.account_id = ?1 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(account.as_str())
            .bind(now)
            .bind(connection.as_str())
            .bind(system.as_str())
            .bind(environment.as_str())
            .execute(self.writer())
            .await?;
            if done.rows_affected() == 0 {
                let exists: i64 = query_scalar(
                    "SELECT COUNT(*) FROM bindings WHERE account_id = ? AND connection_id = ? AND system_id = ? AND environment_id = ?",
                )
                .bind(account.as_str())
                .bind(connection.as_str())
                .bind(system.as_str())
                .bind(environment.as_str())
                .fetch_one(self.writer())
                .await?;
                if exists == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            Ok(())
        }

        async fn targets_for(
            &self,
            account: &AccountId,
            system: &SystemId,
            environment: &EnvironmentId,
        ) -> Result<Vec<Connection>, StoreError> {
            let rows = query(format!(
                "SELECT {} FROM connections WHERE account_id = ?1 AND (\
                     id IN (SELECT connection_id FROM bindings WHERE account_id = ?1 AND system_id = ?2 AND environment_id = ?3) \
                     OR (legacy = 1 AND active = 1 AND system_id = ?2 AND environment_id = ?3)) \
                 ORDER BY created_at, id",
                crate::rows::COLUMNS
            ))
            .bind(account.as_str())
            .bind(system.as_str())
            .bind(environment.as_str())
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(crate::rows::row_to_connection).collect()
        }

        async fn deployments(
            &self,
            account: &AccountId,
            system: Option<&SystemId>,
            environment: Option<&EnvironmentId>,
            connection: Option<&ConnectionId>,
            limit: u32,
        ) -> Result<Vec<(Deployment, TargetCounts)>, StoreError> {
            let text = dialect::NULLABLE_TEXT;
            let rows = query(format!(
                "SELECT {DEPLOYMENT_COLUMNS}, \
                 (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'pending') AS n_pending, \
                 (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'running') AS n_running, \
                 (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'succeeded') AS n_succeeded, \
                 (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'unchanged') AS n_unchanged, \
                 (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'failed') AS n_failed, \
                 (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'held') AS n_held, \
                 (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'skipped') AS n_skipped, \
                 (SELECT COUNT(*) FROM deployment_targets t WHERE t.deployment_id = d.id AND t.status = 'drifted') AS n_drifted \
                 FROM deployments d WHERE d.account_id = ? AND ({text} IS NULL OR d.system_id = ?) AND ({text} IS NULL OR d.environment_id = ?) \
                 AND ({text} IS NULL OR EXISTS (SELECT 1 FROM deployment_targets t WHERE t.deployment_id = d.id AND t.connection_id = ?)) \
                 ORDER BY d.seq DESC LIMIT ?"
            ))
            .bind(account.as_str())
            .bind(system.map(SystemId::as_str))
            .bind(system.map(SystemId::as_str))
            .bind(environment.map(EnvironmentId::as_str))
            .bind(environment.map(EnvironmentId::as_str))
            .bind(connection.map(ConnectionId::as_str))
            .bind(connection.map(ConnectionId::as_str))
            .bind(i64::from(limit.clamp(1, 500)))
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|r| {
                    let n = |c: &str| -> Result<u32, StoreError> { Ok(r.try_get::<i64, _>(c)? as u32) };
                    Ok((
                        row_to_deployment(r)?,
                        TargetCounts {
                            pending: n("n_pending")?,
                            running: n("n_running")?,
                            succeeded: n("n_succeeded")?,
                            unchanged: n("n_unchanged")?,
                            failed: n("n_failed")?,
                            held: n("n_held")?,
                            skipped: n("n_skipped")?,
                            drifted: n("n_drifted")?,
                        },
                    ))
                })
                .collect()
        }

        async fn claim_targets(
            &self,
            owner: &str,
            now: Millis,
            lease_ms: i64,
            limit: u32,
        ) -> Result<Vec<Claimed>, StoreError> {
            let mut tx = self.writer().begin().await?;
            // Rows another instance is claiming right now are skipped, not waited for. They are
            // picked and locked once, in a materialized CTE, then updated: as `IN (SELECT … FOR
            // UPDATE SKIP LOCKED)` PostgreSQL may re-run the locking scan for each row another
            // instance changed meanwhile (EvalPlanQual), as it did for the webhook claim.
            let (key, lock) = (dialect::ROW_KEY, dialect::SKIP_LOCKED);
            let claimed = query(format!(
                "WITH picked AS MATERIALIZED (SELECT {key} AS k FROM deployment_targets \
                     WHERE ((status = 'pending' AND not_before <= ?) OR (status = 'running' AND lease_until < ?)) \
                     AND EXISTS (SELECT 1 FROM deployments d WHERE d.id = deployment_targets.deployment_id AND d.status = 'running') \
                     ORDER BY not_before, {key} LIMIT ?{lock}) \
                 UPDATE deployment_targets SET status = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? \
                 WHERE status IN ('pending', 'running') AND {key} IN (SELECT k FROM picked) \
                 RETURNING deployment_id, connection_id"
            ))
            .bind(now)
            .bind(now)
            .bind(i64::from(limit))
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            if claimed.is_empty() {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            // Two more statements for the whole batch: the claimed targets, and their deployments.
            let keys: Vec<(String, String)> = claimed
                .iter()
                .map(|row| Ok((row.try_get("deployment_id")?, row.try_get("connection_id")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            let pairs = vec!["(?, ?)"; keys.len()].join(", ");
            let mut targets = query(format!(
                "SELECT {TARGET_COLUMNS} FROM deployment_targets t LEFT JOIN connections c ON c.id = t.connection_id \
                 WHERE (t.deployment_id, t.connection_id) IN (VALUES {pairs})"
            ));
            for (d, c) in &keys {
                targets = targets.bind(d).bind(c);
            }
            let targets = targets.fetch_all(&mut *tx).await?;
            let mut ids: Vec<&str> = keys.iter().map(|(d, _)| d.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let marks = vec!["?"; ids.len()].join(", ");
            let mut deployments = query(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments d WHERE d.id IN ({marks})"));
            for id in &ids {
                deployments = deployments.bind(*id);
            }
            let deployments =
                deployments.fetch_all(&mut *tx).await?.iter().map(row_to_deployment).collect::<Result<Vec<_>, _>>()?;
            tx.commit().await?;
            targets
                .iter()
                .map(|row| {
                    let target = row_to_target(row)?;
                    let deployment = deployments
                        .iter()
                        .find(|d| d.id == target.deployment_id)
                        .ok_or_else(|| StoreError::Corrupt(format!("deployment {} vanished", target.deployment_id)))?;
                    Ok(Claimed { deployment: deployment.clone(), target })
                })
                .collect()
        }
    };
}

pub(crate) use shared_deployment_methods;

/// Access-store methods whose statements are the same on both databases.
macro_rules! shared_access_methods {
    () => {
        async fn create_user(&self, user: &User, password_hash: Option<&str>, now: Millis) -> Result<(), StoreError> {
            query("INSERT INTO users (id, account_id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(user.id.as_str())
                .bind(user.account_id.as_ref().map(AccountId::as_str))
                .bind(&user.email)
                .bind(&user.name)
                .bind(user.role.as_str())
                .bind(password_hash)
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!("a user with email {} already exists", user.email)),
                    _ => StoreError::Database(e),
                })?;
            if let Some(account) = &user.account_id {
                query("INSERT INTO memberships (user_id, account_id, role, created_at) VALUES (?, ?, ?, ?)")
                    .bind(user.id.as_str())
                    .bind(account.as_str())
                    .bind(user.role.as_str())
                    .bind(now)
                    .execute(self.writer())
                    .await?;
            }
            Ok(())
        }

        async fn create_api_token(
            &self,
            id: &str,
            user: &UserId,
            name: &str,
            token_hash: &str,
            now: Millis,
        ) -> Result<(), StoreError> {
            query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?)")
                .bind(id)
                .bind(user.as_str())
                .bind(name)
                .bind(token_hash)
                .bind(now)
                .execute(self.writer())
                .await?;
            Ok(())
        }

        async fn api_token_owner(&self, token_hash: &str, now: Millis) -> Result<TokenOwner, StoreError> {
            let row = query(
                "SELECT t.id AS token_id, t.last_used_at, u.id, COALESCE(t.account_id, u.account_id) AS account_id, u.email, u.name, \
                 COALESCE(m.role, u.role) AS role, \
                 CASE WHEN a.two_factor_required = 1 AND u.password_hash IS NOT NULL AND NOT EXISTS \
                   (SELECT 1 FROM two_factor f WHERE f.user_id = u.id AND f.confirmed_at IS NOT NULL) \
                 THEN 1 ELSE 0 END AS must_enrol \
                 FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 LEFT JOIN memberships m ON m.user_id = u.id AND m.account_id = COALESCE(t.account_id, u.account_id) \
                 LEFT JOIN accounts a ON a.id = COALESCE(t.account_id, u.account_id) \
                 WHERE t.token_hash = ? AND t.revoked_at IS NULL AND (u.account_id IS NULL OR m.user_id IS NOT NULL)",
            )
            .bind(token_hash)
            .fetch_optional(self.writer())
            .await?
            .ok_or(StoreError::NotFound)?;
            let token_id: String = row.try_get("token_id")?;
            let last_used: Option<i64> = row.try_get("last_used_at")?;
            // Record use at most once a minute (a write per request would serialize the API), and
            // best effort: a busy database must not refuse the request.
            if last_used.is_none_or(|t| now - t > 60_000) {
                let _ = query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
                    .bind(now)
                    .bind(&token_id)
                    .execute(self.writer())
                    .await;
            }
            let must_enrol: i32 = row.try_get("must_enrol")?;
            Ok(TokenOwner { token_id, user: row_to_user(&row)?, must_enrol: must_enrol == 1 })
        }

        async fn user(&self, account: &AccountId, id: &UserId) -> Result<User, StoreError> {
            let row = query(
                "SELECT u.id, m.account_id, u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.user_id = ? AND m.account_id = ?",
            )
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
            row_to_user(&row)
        }

        async fn set_role(&self, account: &AccountId, id: &UserId, role: Role) -> Result<(), StoreError> {
            let done = query("UPDATE memberships SET role = ? WHERE user_id = ? AND account_id = ?")
                .bind(role.as_str())
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(self.writer())
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            // The home membership is mirrored on the person.
            query("UPDATE users SET role = ? WHERE id = ? AND account_id = ?")
                .bind(role.as_str())
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(self.writer())
                .await?;
            Ok(())
        }

        async fn delete_user(&self, account: &AccountId, id: &UserId) -> Result<(), StoreError> {
            // Out of this account: the membership, and the sessions and tokens acting in it.
            let done = query("DELETE FROM memberships WHERE user_id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(self.writer())
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let home: Option<String> = query_scalar("SELECT account_id FROM users WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(self.writer())
                .await?
                .flatten();
            let in_home = home.as_deref() == Some(account.as_str());
            for table in ["sessions", "api_tokens"] {
                query(format!("DELETE FROM {table} WHERE user_id = ? AND (account_id = ? OR (account_id IS NULL AND ?))"))
                    .bind(id.as_str())
                    .bind(account.as_str())
                    .bind(in_home)
                    .execute(self.writer())
                    .await?;
            }
            let next = query("SELECT account_id, role FROM memberships WHERE user_id = ? ORDER BY created_at, account_id LIMIT 1")
                .bind(id.as_str())
                .fetch_optional(self.writer())
                .await?;
            match next {
                // A member nowhere else: the person goes (with their sessions and tokens).
                None => {
                    query("DELETE FROM users WHERE id = ?").bind(id.as_str()).execute(self.writer()).await?;
                }
                // Still a member elsewhere: their home moves there if it was this account.
                Some(row) if in_home => {
                    let (next_account, next_role): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                    query("UPDATE users SET account_id = ?, role = ? WHERE id = ?")
                        .bind(next_account)
                        .bind(next_role)
                        .bind(id.as_str())
                        .execute(self.writer())
                        .await?;
                }
                Some(_) => {}
            }
            Ok(())
        }

        async fn api_tokens(&self, user: &UserId) -> Result<Vec<ApiTokenInfo>, StoreError> {
            let rows = query(
                "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id DESC",
            )
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ApiTokenInfo {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        created_at: r.try_get("created_at")?,
                        last_used_at: r.try_get("last_used_at")?,
                        revoked_at: r.try_get("revoked_at")?,
                    })
                })
                .collect()
        }

        async fn revoke_api_token(&self, user: &UserId, id: &str, now: Millis) -> Result<(), StoreError> {
            let done = query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND user_id = ?")
                .bind(now)
                .bind(id)
                .bind(user.as_str())
                .execute(self.writer())
                .await?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        }

        async fn preference(&self, user: &UserId, key: &str) -> Result<Option<String>, StoreError> {
            Ok(query_scalar("SELECT value FROM user_preferences WHERE user_id = ? AND key = ?")
                .bind(user.as_str())
                .bind(key)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn set_preference(&self, user: &UserId, key: &str, value: &str) -> Result<(), StoreError> {
            query(
                "INSERT INTO user_preferences (user_id, key, value) VALUES (?, ?, ?) \
                 ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(user.as_str())
            .bind(key)
            .bind(value)
            .execute(self.writer())
            .await?;
            Ok(())
        }

        async fn set_password(&self, user: &UserId, password_hash: &str) -> Result<(), StoreError> {
            let done = query("UPDATE users SET password_hash = ? WHERE id = ?")
                .bind(password_hash)
                .bind(user.as_str())
                .execute(self.writer())
                .await?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        }

        async fn session(&self, id_hash: &str, now: Millis) -> Result<LiveSession, StoreError> {
            let row = query(
                "SELECT u.id, COALESCE(s.account_id, u.account_id) AS account_id, u.email, u.name, \
                 COALESCE(m.role, u.role) AS role, s.csrf_token, \
                 CASE WHEN a.two_factor_required = 1 AND u.password_hash IS NOT NULL AND s.via_sso = 0 AND NOT EXISTS \
                   (SELECT 1 FROM two_factor t WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL) \
                 THEN 1 ELSE 0 END AS must_enrol \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 LEFT JOIN memberships m ON m.user_id = u.id AND m.account_id = COALESCE(s.account_id, u.account_id) \
                 LEFT JOIN accounts a ON a.id = COALESCE(s.account_id, u.account_id) \
                 WHERE s.id_hash = ? AND s.expires_at > ? AND (u.account_id IS NULL OR m.user_id IS NOT NULL)",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            let must_enrol: i32 = row.try_get("must_enrol")?;
            Ok(LiveSession { user: row_to_user(&row)?, csrf: row.try_get("csrf_token")?, must_enrol: must_enrol == 1 })
        }

        async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
            query("DELETE FROM sessions WHERE id_hash = ?").bind(id_hash).execute(self.writer()).await?;
            Ok(())
        }

        async fn take_sign_in_attempt(&self, key: &str, now: Millis, throttle: Throttle) -> Result<Attempt, StoreError> {
            // Compare-and-set on the row's (failures, last_at, locked_until): a racing attempt
            // that changed it first makes this one read again.
            for _ in 0..64 {
                let row = query("SELECT failures, last_at, locked_until FROM sign_in_failures WHERE key = ?")
                    .bind(key)
                    .fetch_optional(self.writer())
                    .await?;
                let Some(row) = row else {
                    // Rows that neither count nor lock any more go as new keys arrive.
                    query("DELETE FROM sign_in_failures WHERE last_at < ? AND locked_until < ?")
                        .bind(now - throttle.forget_after_ms)
                        .bind(now)
                        .execute(self.writer())
                        .await?;
                    let locked_until = throttle.lock_ms(1).map_or(0, |ms| now + ms);
                    let inserted = query(
                        "INSERT INTO sign_in_failures (key, failures, last_at, locked_until) VALUES (?, 1, ?, ?) \
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(key)
                    .bind(now)
                    .bind(locked_until)
                    .execute(self.writer())
                    .await?;
                    if inserted.rows_affected() == 1 {
                        return Ok(Attempt::Allowed);
                    }
                    continue;
                };
                let (failures, last_at, locked_until): (i64, i64, i64) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                if locked_until > now {
                    return Ok(Attempt::Locked { until: locked_until });
                }
                let counted = if last_at < now - throttle.forget_after_ms { 0 } else { failures };
                let next = u32::try_from(counted + 1).unwrap_or(u32::MAX);
                let lock = throttle.lock_ms(next).map_or(0, |ms| now + ms);
                let updated = query(
                    "UPDATE sign_in_failures SET failures = ?, last_at = ?, locked_until = ? \
                     WHERE key = ? AND failures = ? AND last_at = ? AND locked_until = ?",
                )
                .bind(i64::from(next))
                .bind(now.max(last_at))
                .bind(lock)
                .bind(key)
                .bind(failures)
                .bind(last_at)
                .bind(locked_until)
                .execute(self.writer())
                .await?;
                if updated.rows_affected() == 1 {
                    return Ok(Attempt::Allowed);
                }
            }
            // Still contended after that many tries: a flood, so refuse for the shortest lock.
            Ok(Attempt::Locked { until: now + throttle.first_lock_ms })
        }

        async fn forgive_sign_in(&self, key: &str, clear: bool) -> Result<(), StoreError> {
            if clear {
                query("DELETE FROM sign_in_failures WHERE key = ?").bind(key).execute(self.writer()).await?;
            } else {
                query(
                    "UPDATE sign_in_failures SET locked_until = 0, \
                     failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END WHERE key = ?",
                )
                .bind(key)
                .execute(self.writer())
                .await?;
            }
            Ok(())
        }

        async fn remember_device(&self, id_hash: &str, user: &UserId, now: Millis) -> Result<(), StoreError> {
            query(
                "INSERT INTO known_devices (id_hash, user_id, created_at, last_seen_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (id_hash) DO UPDATE SET last_seen_at = excluded.last_seen_at",
            )
            .bind(id_hash)
            .bind(user.as_str())
            .bind(now)
            .bind(now)
            .execute(self.writer())
            .await?;
            Ok(())
        }

        async fn device_known(&self, id_hash: &str, user: &UserId, since: Millis) -> Result<bool, StoreError> {
            let found: Option<String> = query_scalar(
                "SELECT user_id FROM known_devices WHERE id_hash = ? AND user_id = ? AND last_seen_at >= ?",
            )
            .bind(id_hash)
            .bind(user.as_str())
            .bind(since)
            .fetch_optional(self.pool())
            .await?;
            Ok(found.is_some())
        }

        async fn forget_devices(&self, user: &UserId) -> Result<(), StoreError> {
            query("DELETE FROM known_devices WHERE user_id = ?").bind(user.as_str()).execute(self.writer()).await?;
            Ok(())
        }

        async fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<u64, StoreError> {
            let done = match keep {
                Some(keep) => {
                    query("DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?")
                        .bind(user.as_str())
                        .bind(keep)
                        .execute(self.writer())
                        .await?
                }
                None => query("DELETE FROM sessions WHERE user_id = ?").bind(user.as_str()).execute(self.writer()).await?,
            };
            Ok(done.rows_affected())
        }

        async fn take_oauth_state(
            &self,
            state_hash: &str,
            account: &AccountId,
            user: &UserId,
            now: Millis,
        ) -> Result<String, StoreError> {
            let _ = query("DELETE FROM oauth_states WHERE expires_at <= ?").bind(now).execute(self.writer()).await;
            let row = query("DELETE FROM oauth_states WHERE state_hash = ? AND account_id = ? AND user_id = ? AND expires_at > ? RETURNING payload")
                .bind(state_hash)
                .bind(account.as_str())
                .bind(user.as_str())
                .bind(now)
                .fetch_optional(self.writer())
                .await?
                .ok_or(StoreError::NotFound)?;
            let sealed: String = row.try_get("payload")?;
            Ok(self
                .keys
                .open_string(&Sealed::from_stored(sealed), Binding::new(state_hash, "oauth_state"))?
                .as_str()
                .to_string())
        }

        async fn two_factor(&self, user: &UserId) -> Result<Option<TwoFactor>, StoreError> {
            let row = query(
                "SELECT secret, created_at, confirmed_at, last_step, \
                 (SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL) AS recovery_left \
                 FROM two_factor t WHERE user_id = ?",
            )
            .bind(user.as_str())
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else { return Ok(None) };
            let sealed: String = row.try_get("secret")?;
            let secret = self.keys.open_string(&Sealed::from_stored(sealed), Binding::new(user.as_str(), "totp_secret"))?;
            let recovery_left: i64 = row.try_get("recovery_left")?;
            Ok(Some(TwoFactor {
                secret: vault::TotpSecret::new(secret.as_str()),
                created_at: row.try_get("created_at")?,
                confirmed_at: row.try_get("confirmed_at")?,
                last_step: row.try_get("last_step")?,
                recovery_left: u32::try_from(recovery_left).unwrap_or(0),
            }))
        }

        async fn begin_two_factor(&self, user: &UserId, secret: &vault::TotpSecret, now: Millis) -> Result<(), StoreError> {
            let sealed = self.keys.seal_str(secret.expose_secret(), Binding::new(user.as_str(), "totp_secret"))?;
            let done = query(
                "INSERT INTO two_factor (user_id, secret, created_at, confirmed_at, last_step) VALUES (?, ?, ?, NULL, 0) \
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at \
                 WHERE two_factor.confirmed_at IS NULL",
            )
            .bind(user.as_str())
            .bind(sealed.as_stored())
            .bind(now)
            .execute(self.writer())
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("two-factor sign-in is already on".into()));
            }
            Ok(())
        }

        async fn confirm_two_factor(&self, user: &UserId, step: i64, recovery_hashes: &[String], now: Millis) -> Result<(), StoreError> {
            let done = query("UPDATE two_factor SET confirmed_at = ?, last_step = ? WHERE user_id = ? AND confirmed_at IS NULL")
                .bind(now)
                .bind(step)
                .bind(user.as_str())
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())?;
            self.replace_recovery_codes(user, recovery_hashes).await
        }

        async fn replace_recovery_codes(&self, user: &UserId, recovery_hashes: &[String]) -> Result<(), StoreError> {
            query("DELETE FROM recovery_codes WHERE user_id = ?").bind(user.as_str()).execute(self.writer()).await?;
            for hash in recovery_hashes {
                // Sealed, bound to the person: without the master key a copy of the database
                // cannot be searched for codes.
                let sealed = self.keys.seal_str(hash, Binding::new(user.as_str(), "recovery_code"))?;
                query("INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, NULL)")
                    .bind(user.as_str())
                    .bind(sealed.as_stored())
                    .execute(self.writer())
                    .await?;
            }
            Ok(())
        }

        async fn use_totp_step(&self, user: &UserId, step: i64) -> Result<bool, StoreError> {
            let done = query("UPDATE two_factor SET last_step = ? WHERE user_id = ? AND last_step < ? AND confirmed_at IS NOT NULL")
                .bind(step)
                .bind(user.as_str())
                .bind(step)
                .execute(self.writer())
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn use_recovery_code(&self, user: &UserId, code_hash: &str, now: Millis) -> Result<bool, StoreError> {
            let stored: Vec<String> = query_scalar("SELECT code_hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL")
                .bind(user.as_str())
                .fetch_all(self.writer())
                .await?;
            for value in stored {
                let opened = self.keys.open_string(&Sealed::from_stored(value.as_str()), Binding::new(user.as_str(), "recovery_code"))?;
                if aws_lc_rs::constant_time::verify_slices_are_equal(opened.as_bytes(), code_hash.as_bytes()).is_ok() {
                    // Once: a racing use of the same code finds it used.
                    let done = query("UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL")
                        .bind(now)
                        .bind(user.as_str())
                        .bind(&value)
                        .execute(self.writer())
                        .await?;
                    return Ok(done.rows_affected() == 1);
                }
            }
            Ok(false)
        }

        async fn remove_two_factor(&self, user: &UserId) -> Result<bool, StoreError> {
            query("DELETE FROM recovery_codes WHERE user_id = ?").bind(user.as_str()).execute(self.writer()).await?;
            let done = query("DELETE FROM two_factor WHERE user_id = ?").bind(user.as_str()).execute(self.writer()).await?;
            Ok(done.rows_affected() == 1)
        }

        async fn set_two_factor_required(&self, account: &AccountId, required: bool) -> Result<(), StoreError> {
            let done = query("UPDATE accounts SET two_factor_required = ? WHERE id = ?")
                .bind(i64::from(required))
                .bind(account.as_str())
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn save_pending_sign_in(&self, id_hash: &str, kind: &str, payload: &str, expires_at: Millis) -> Result<(), StoreError> {
            // Expired rows go as new ones arrive, but for kept test grants: those are revoked first.
            let _ = query("DELETE FROM pending_sign_ins WHERE expires_at <= ? AND kind <> 'tested_grant'")
                .bind(expires_at - 24 * 60 * 60 * 1000)
                .execute(self.writer())
                .await;
            let sealed = self.keys.seal_str(payload, Binding::new(id_hash, "pending_sign_in"))?;
            query("INSERT INTO pending_sign_ins (id_hash, kind, payload, expires_at) VALUES (?, ?, ?, ?)")
                .bind(id_hash)
                .bind(kind)
                .bind(sealed.as_stored())
                .bind(expires_at)
                .execute(self.writer())
                .await?;
            Ok(())
        }

        async fn pending_sign_in(&self, id_hash: &str, kind: &str, now: Millis) -> Result<String, StoreError> {
            let sealed: String = query_scalar("SELECT payload FROM pending_sign_ins WHERE id_hash = ? AND kind = ? AND expires_at > ?")
                .bind(id_hash)
                .bind(kind)
                .bind(now)
                .fetch_optional(self.writer())
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(self.keys.open_string(&Sealed::from_stored(sealed), Binding::new(id_hash, "pending_sign_in"))?.as_str().to_string())
        }

        async fn take_pending_sign_in(&self, id_hash: &str, kind: &str, now: Millis) -> Result<String, StoreError> {
            let _ = query("DELETE FROM pending_sign_ins WHERE expires_at <= ? AND kind <> 'tested_grant'").bind(now).execute(self.writer()).await;
            let sealed: String = query_scalar("DELETE FROM pending_sign_ins WHERE id_hash = ? AND kind = ? AND expires_at > ? RETURNING payload")
                .bind(id_hash)
                .bind(kind)
                .bind(now)
                .fetch_optional(self.writer())
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(self.keys.open_string(&Sealed::from_stored(sealed), Binding::new(id_hash, "pending_sign_in"))?.as_str().to_string())
        }

        async fn take_expired_pending(&self, kind: &str, now: Millis, limit: u32) -> Result<Vec<String>, StoreError> {
            let rows = query(
                "DELETE FROM pending_sign_ins WHERE id_hash IN \
                 (SELECT id_hash FROM pending_sign_ins WHERE kind = ? AND expires_at <= ? LIMIT ?) RETURNING id_hash, payload",
            )
            .bind(kind)
            .bind(now)
            .bind(i64::from(limit.max(1)))
            .fetch_all(self.writer())
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let id_hash: String = row.try_get("id_hash")?;
                let sealed: String = row.try_get("payload")?;
                let opened = self.keys.open_string(&Sealed::from_stored(sealed), Binding::new(&id_hash, "pending_sign_in"))?;
                out.push(opened.as_str().to_string());
            }
            Ok(out)
        }

        async fn memberships_of(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
            let rows = query(
                "SELECT m.account_id, a.name, m.role FROM memberships m JOIN accounts a ON a.id = m.account_id \
                 WHERE m.user_id = ? ORDER BY m.created_at, m.account_id",
            )
            .bind(user.as_str())
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    let role: String = row.try_get(2)?;
                    Ok(Membership {
                        account: AccountId::parse(&row.try_get::<String, _>(0)?)?,
                        account_name: row.try_get(1)?,
                        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
                    })
                })
                .collect()
        }

        async fn add_membership(&self, user: &UserId, account: &AccountId, role: Role, now: Millis) -> Result<(), StoreError> {
            let done = query(
                "INSERT INTO memberships (user_id, account_id, role, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, account_id) DO NOTHING",
            )
            .bind(user.as_str())
            .bind(account.as_str())
            .bind(role.as_str())
            .bind(now)
            .execute(self.writer())
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("already a member of this account".into()));
            }
            Ok(())
        }

        async fn set_session_account(&self, id_hash: &str, account: &AccountId) -> Result<(), StoreError> {
            let done = query(
                "UPDATE sessions SET account_id = ? WHERE id_hash = ? AND EXISTS \
                 (SELECT 1 FROM memberships m WHERE m.user_id = sessions.user_id AND m.account_id = ?)",
            )
            .bind(account.as_str())
            .bind(id_hash)
            .bind(account.as_str())
            .execute(self.writer())
            .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn set_api_token_account(&self, id: &str, account: &AccountId) -> Result<(), StoreError> {
            let done = query("UPDATE api_tokens SET account_id = ? WHERE id = ?").bind(account.as_str()).bind(id).execute(self.writer()).await?;
            one_or_not_found(done.rows_affected())
        }

        async fn create_invitation(&self, invitation: &Invitation, token_hash: &str) -> Result<(), StoreError> {
            query(
                "INSERT INTO invitations (id, token_hash, account_id, email, role, invited_by, created_at, expires_at, accepted_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            )
            .bind(&invitation.id)
            .bind(token_hash)
            .bind(invitation.account.as_str())
            .bind(&invitation.email)
            .bind(invitation.role.as_str())
            .bind(&invitation.invited_by)
            .bind(invitation.created_at)
            .bind(invitation.expires_at)
            .execute(self.writer())
            .await?;
            Ok(())
        }

        async fn invitation(&self, token_hash: &str, now: Millis) -> Result<(Invitation, String), StoreError> {
            let row = query(
                "SELECT i.id, i.account_id, a.name, i.email, i.role, i.invited_by, i.created_at, i.expires_at FROM invitations i \
                 JOIN accounts a ON a.id = i.account_id WHERE i.token_hash = ? AND i.accepted_at IS NULL AND i.expires_at > ?",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(self.writer())
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok((invitation_of(&row)?, row.try_get(2)?))
        }

        async fn accept_invitation(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
            let done = query("UPDATE invitations SET accepted_at = ? WHERE id = ? AND accepted_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(self.writer())
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn invitations(&self, account: &AccountId, now: Millis) -> Result<Vec<Invitation>, StoreError> {
            let rows = query(
                "SELECT i.id, i.account_id, '' AS name, i.email, i.role, i.invited_by, i.created_at, i.expires_at FROM invitations i \
                 WHERE i.account_id = ? AND i.accepted_at IS NULL AND i.expires_at > ? ORDER BY i.created_at DESC, i.id",
            )
            .bind(account.as_str())
            .bind(now)
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(invitation_of).collect()
        }

        async fn withdraw_invitation(&self, account: &AccountId, id: &str) -> Result<(), StoreError> {
            let done = query("DELETE FROM invitations WHERE id = ? AND account_id = ? AND accepted_at IS NULL")
                .bind(id)
                .bind(account.as_str())
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn sso_config(&self, account: &AccountId) -> Result<Option<SsoConfig>, StoreError> {
            let row = query(
                "SELECT issuer, client_id, client_secret, role_claim, default_role, sso_only, break_glass_email \
                 FROM account_sso WHERE account_id = ?",
            )
            .bind(account.as_str())
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else { return Ok(None) };
            let sealed: String = row.try_get("client_secret")?;
            let secret =
                self.keys.open_string(&Sealed::from_stored(sealed), Binding::new(account.as_str(), "sso_client_secret"))?;
            let role: String = row.try_get("default_role")?;
            let sso_only: i64 = row.try_get("sso_only")?;
            Ok(Some(SsoConfig {
                issuer: row.try_get("issuer")?,
                client_id: row.try_get("client_id")?,
                client_secret: vault::SsoClientSecret::new(secret.as_str()),
                role_claim: row.try_get("role_claim")?,
                default_role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
                sso_only: sso_only == 1,
                break_glass_email: row.try_get("break_glass_email")?,
            }))
        }

        async fn set_sso_config(&self, account: &AccountId, c: &SsoConfig, now: Millis) -> Result<(), StoreError> {
            let sealed = self.keys.seal_str(c.client_secret.expose_secret(), Binding::new(account.as_str(), "sso_client_secret"))?;
            query(
                "INSERT INTO account_sso (account_id, issuer, client_id, client_secret, role_claim, default_role, sso_only, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET issuer = excluded.issuer, \
                 client_id = excluded.client_id, client_secret = excluded.client_secret, role_claim = excluded.role_claim, \
                 default_role = excluded.default_role, sso_only = excluded.sso_only, updated_at = excluded.updated_at",
            )
            .bind(account.as_str())
            .bind(&c.issuer)
            .bind(&c.client_id)
            .bind(sealed.as_stored())
            .bind(c.role_claim.as_deref())
            .bind(c.default_role.as_str())
            .bind(i64::from(c.sso_only))
            .bind(now)
            .execute(self.writer())
            .await?;
            Ok(())
        }

        async fn delete_sso_config(&self, account: &AccountId) -> Result<(), StoreError> {
            query("DELETE FROM sso_domains WHERE account_id = ?").bind(account.as_str()).execute(self.writer()).await?;
            let done = query("DELETE FROM account_sso WHERE account_id = ?").bind(account.as_str()).execute(self.writer()).await?;
            one_or_not_found(done.rows_affected())
        }

        async fn set_break_glass(&self, account: &AccountId, email: Option<&str>) -> Result<(), StoreError> {
            let done = query("UPDATE account_sso SET break_glass_email = ? WHERE account_id = ?")
                .bind(email)
                .bind(account.as_str())
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn add_sso_domain(&self, account: &AccountId, domain: &str, now: Millis) -> Result<(), StoreError> {
            let done = query("INSERT INTO sso_domains (domain, account_id, created_at) VALUES (?, ?, ?) ON CONFLICT (domain) DO NOTHING")
                .bind(domain)
                .bind(account.as_str())
                .bind(now)
                .execute(self.writer())
                .await?;
            if done.rows_affected() == 0 {
                let owner: Option<String> = query_scalar("SELECT account_id FROM sso_domains WHERE domain = ?")
                    .bind(domain)
                    .fetch_optional(self.writer())
                    .await?;
                if owner.as_deref() != Some(account.as_str()) {
                    return Err(StoreError::Conflict(format!("the domain {domain} belongs to another account")));
                }
            }
            Ok(())
        }

        async fn remove_sso_domain(&self, account: &AccountId, domain: &str) -> Result<(), StoreError> {
            let done = query("DELETE FROM sso_domains WHERE account_id = ? AND domain = ?")
                .bind(account.as_str())
                .bind(domain)
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn sso_domains(&self, account: &AccountId) -> Result<Vec<String>, StoreError> {
            Ok(query_scalar("SELECT domain FROM sso_domains WHERE account_id = ? ORDER BY domain")
                .bind(account.as_str())
                .fetch_all(self.pool())
                .await?)
        }

        async fn routed_domains(&self, account: &AccountId) -> Result<Vec<RoutedDomain>, StoreError> {
            let rows = query("SELECT domain, verified_by, created_at FROM sso_domains WHERE account_id = ? ORDER BY domain")
                .bind(account.as_str())
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(|row| Ok(<RoutedDomain as sqlx::FromRow<_>>::from_row(row)?)).collect()
        }

        async fn claim_sso_domain(&self, account: &AccountId, domain: &str, token: &str, now: Millis) -> Result<DomainClaim, StoreError> {
            query(
                "INSERT INTO sso_domain_claims (account_id, domain, token, created_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (account_id, domain) DO NOTHING",
            )
            .bind(account.as_str())
            .bind(domain)
            .bind(token)
            .bind(now)
            .execute(self.writer())
            .await?;
            let row = query(
                "SELECT domain, token, created_at, checked_at, last_result FROM sso_domain_claims WHERE account_id = ? AND domain = ?",
            )
            .bind(account.as_str())
            .bind(domain)
            .fetch_one(self.writer())
            .await?;
            Ok(<DomainClaim as sqlx::FromRow<_>>::from_row(&row)?)
        }

        async fn sso_domain_claims(&self, account: &AccountId) -> Result<Vec<DomainClaim>, StoreError> {
            let rows = query(
                "SELECT domain, token, created_at, checked_at, last_result FROM sso_domain_claims WHERE account_id = ? ORDER BY domain",
            )
            .bind(account.as_str())
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(|row| Ok(<DomainClaim as sqlx::FromRow<_>>::from_row(row)?)).collect()
        }

        async fn sso_domain_claim(&self, account: &AccountId, domain: &str) -> Result<DomainClaim, StoreError> {
            let row = query(
                "SELECT domain, token, created_at, checked_at, last_result FROM sso_domain_claims WHERE account_id = ? AND domain = ?",
            )
            .bind(account.as_str())
            .bind(domain)
            .fetch_optional(self.writer())
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(<DomainClaim as sqlx::FromRow<_>>::from_row(&row)?)
        }

        async fn record_domain_check(&self, account: &AccountId, domain: &str, now: Millis, result: &str) -> Result<(), StoreError> {
            let done = query("UPDATE sso_domain_claims SET checked_at = ?, last_result = ? WHERE account_id = ? AND domain = ?")
                .bind(now)
                .bind(result)
                .bind(account.as_str())
                .bind(domain)
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn delete_sso_domain_claim(&self, account: &AccountId, domain: &str) -> Result<(), StoreError> {
            let done = query("DELETE FROM sso_domain_claims WHERE account_id = ? AND domain = ?")
                .bind(account.as_str())
                .bind(domain)
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn prove_sso_domain(&self, account: &AccountId, domain: &str, now: Millis) -> Result<(), StoreError> {
            let mut tx = self.writer().begin().await?;
            let done = query(
                "INSERT INTO sso_domains (domain, account_id, created_at, verified_by) VALUES (?, ?, ?, 'dns') \
                 ON CONFLICT (domain) DO UPDATE SET verified_by = 'dns' WHERE sso_domains.account_id = excluded.account_id",
            )
            .bind(domain)
            .bind(account.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!("the domain {domain} belongs to another account")));
            }
            query("DELETE FROM sso_domain_claims WHERE account_id = ? AND domain = ?")
                .bind(account.as_str())
                .bind(domain)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn account_for_domain(&self, domain: &str) -> Result<Option<AccountId>, StoreError> {
            let found: Option<String> = query_scalar(
                "SELECT d.account_id FROM sso_domains d JOIN account_sso s ON s.account_id = d.account_id WHERE d.domain = ?",
            )
            .bind(domain)
            .fetch_optional(self.pool())
            .await?;
            found.map(|id| AccountId::parse(&id).map_err(StoreError::from)).transpose()
        }

        async fn sso_identity(&self, issuer: &str, subject: &str) -> Result<Option<UserId>, StoreError> {
            let found: Option<String> = query_scalar("SELECT user_id FROM sso_identities WHERE issuer = ? AND subject = ?")
                .bind(issuer)
                .bind(subject)
                .fetch_optional(self.pool())
                .await?;
            found.map(|id| UserId::parse(&id).map_err(StoreError::from)).transpose()
        }

        async fn link_sso_identity(&self, issuer: &str, subject: &str, user: &UserId) -> Result<(), StoreError> {
            query("INSERT INTO sso_identities (issuer, subject, user_id) VALUES (?, ?, ?) ON CONFLICT (issuer, subject) DO NOTHING")
                .bind(issuer)
                .bind(subject)
                .bind(user.as_str())
                .execute(self.writer())
                .await?;
            Ok(())
        }

        async fn user_by_email(&self, email: &str) -> Result<User, StoreError> {
            let row = query(format!("SELECT id, account_id, email, name, role FROM users WHERE {}", dialect::same_text("email")))
                .bind(email)
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)?;
            row_to_user(&row)
        }

        async fn users(&self, account: &AccountId) -> Result<Vec<User>, StoreError> {
            let rows =
                query(format!(
                    "SELECT u.id, m.account_id, u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
                     WHERE m.account_id = ? ORDER BY {}",
                    dialect::text_order("u.email")
                ))
                    .bind(account.as_str())
                    .fetch_all(self.pool())
                    .await?;
            rows.iter().map(row_to_user).collect()
        }

        async fn credentials(&self, email: &str) -> Result<(User, Option<String>), StoreError> {
            let row =
                query(format!(
                    "SELECT id, account_id, email, name, role, password_hash FROM users WHERE {}",
                    dialect::same_text("email")
                ))
                    .bind(email)
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(StoreError::NotFound)?;
            Ok((row_to_user(&row)?, row.try_get("password_hash")?))
        }

        async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
            let _ = query("DELETE FROM sessions WHERE expires_at <= ?").bind(session.created_at).execute(self.writer()).await;
            query(
                "INSERT INTO sessions (id_hash, handle, user_id, csrf_token, created_at, expires_at, remote_addr, user_agent, via_sso, account_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&session.id_hash)
            .bind(&session.handle)
            .bind(session.user.as_str())
            .bind(&session.csrf_token)
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.remote_addr.as_deref())
            .bind(session.user_agent.as_deref())
            .bind(i64::from(session.via_sso))
            .bind(session.account.as_ref().map(AccountId::as_str))
            .execute(self.writer())
            .await?;
            Ok(())
        }

        async fn sessions_of(&self, user: &UserId, now: Millis) -> Result<Vec<SessionInfo>, StoreError> {
            let rows = query(
                "SELECT handle, id_hash, created_at, expires_at, remote_addr, user_agent FROM sessions \
                 WHERE user_id = ? AND expires_at > ? ORDER BY created_at DESC, handle",
            )
            .bind(user.as_str())
            .bind(now)
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(|row| Ok(<SessionInfo as sqlx::FromRow<_>>::from_row(row)?)).collect()
        }

        async fn end_session(&self, user: &UserId, handle: &str) -> Result<(), StoreError> {
            let done = query("DELETE FROM sessions WHERE user_id = ? AND handle = ?")
                .bind(user.as_str())
                .bind(handle)
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn save_oauth_state(
            &self,
            state_hash: &str,
            account: &AccountId,
            user: &UserId,
            payload: &str,
            expires_at: Millis,
        ) -> Result<(), StoreError> {
            let sealed = self.keys.seal_str(payload, Binding::new(state_hash, "oauth_state"))?;
            query("INSERT INTO oauth_states (state_hash, account_id, user_id, payload, expires_at) VALUES (?, ?, ?, ?, ?)")
                .bind(state_hash)
                .bind(account.as_str())
                .bind(user.as_str())
                .bind(sealed.as_stored())
                .bind(expires_at)
                .execute(self.writer())
                .await?;
            Ok(())
        }
    };
}

pub(crate) use shared_access_methods;

/// Audit-store methods whose statements are the same on both databases.
macro_rules! shared_audit_methods {
    () => {
        async fn record(&self, e: &AuditEntry) -> Result<(), StoreError> {
            statements::record(self.writer(), e).await
        }

        async fn audit(&self, account: &AccountId, q: &AuditQuery) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
            let (text, bigint) = (dialect::NULLABLE_TEXT, dialect::NULLABLE_BIGINT);
            let rows = query(format!(
                "SELECT seq, account_id, at, actor, actor_kind, action, target_kind, target_id, target_label, detail, remote_addr \
                 FROM audit_log WHERE account_id = ? AND ({text} IS NULL OR action = ?) AND ({text} IS NULL OR target_id = ?) \
                 AND ({bigint} IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?"
            ))
            .bind(account.as_str())
            .bind(q.action.as_deref())
            .bind(q.action.as_deref())
            .bind(q.target_id.as_deref())
            .bind(q.target_id.as_deref())
            .bind(q.before)
            .bind(q.before)
            .bind(i64::from(q.limit.clamp(1, 500)))
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    let kind: String = row.try_get("actor_kind")?;
                    let account: Option<String> = row.try_get("account_id")?;
                    Ok((
                        row.try_get("seq")?,
                        AuditEntry {
                            account_id: account.as_deref().map(AccountId::parse).transpose()?,
                            at: row.try_get("at")?,
                            actor: row.try_get("actor")?,
                            actor_kind: ActorKind::parse(&kind)
                                .ok_or_else(|| StoreError::Corrupt(format!("unknown actor kind {kind}")))?,
                            action: row.try_get("action")?,
                            target_kind: row.try_get("target_kind")?,
                            target_id: row.try_get("target_id")?,
                            target_label: row.try_get("target_label")?,
                            detail: row.try_get("detail")?,
                            remote_addr: row.try_get("remote_addr")?,
                        },
                    ))
                })
                .collect()
        }
    };
}

pub(crate) use shared_audit_methods;

/// Catalog-store methods whose statements are the same on both databases.
macro_rules! shared_catalog_methods {
    () => {
        async fn create_account(&self, id: &AccountId, name: &str, now: Millis) -> Result<(), StoreError> {
            let mut tx = self.writer().begin().await?;
            query("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)")
                .bind(id.as_str())
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            for (position, name) in BUILT_IN_ENVIRONMENTS.iter().enumerate() {
                query("INSERT INTO environments (id, account_id, name, built_in, position) VALUES (?, ?, ?, 1, ?)")
                    .bind(EnvironmentId::generate().as_str())
                    .bind(id.as_str())
                    .bind(*name)
                    .bind(position as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn account(&self, id: &AccountId) -> Result<Account, StoreError> {
            let row = query("SELECT id, name, connectors_enabled, two_factor_required, created_at FROM accounts WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)?;
            row_to_account(&row)
        }

        async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
            let rows = query("SELECT id, name, connectors_enabled, two_factor_required, created_at FROM accounts ORDER BY created_at, id")
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(row_to_account).collect()
        }

        async fn set_connectors_enabled(&self, id: &AccountId, enabled: bool) -> Result<(), StoreError> {
            let done = query("UPDATE accounts SET connectors_enabled = ? WHERE id = ?")
                .bind(i64::from(enabled))
                .bind(id.as_str())
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn insert_system(&self, s: &System) -> Result<(), StoreError> {
            query("INSERT INTO systems (id, account_id, name, created_at) VALUES (?, ?, ?, ?)")
                .bind(s.id.as_str())
                .bind(s.account_id.as_str())
                .bind(&s.name)
                .bind(s.created_at)
                .execute(self.writer())
                .await
                .map_err(unique("a system"))?;
            Ok(())
        }

        async fn system(&self, account: &AccountId, id: &SystemId) -> Result<System, StoreError> {
            let row = query("SELECT id, account_id, name, created_at FROM systems WHERE id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotFound)?;
            row_to_system(&row)
        }

        async fn rename_system(&self, account: &AccountId, id: &SystemId, name: &str) -> Result<(), StoreError> {
            let done = query("UPDATE systems SET name = ? WHERE id = ? AND account_id = ?")
                .bind(name)
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(self.writer())
                .await
                .map_err(unique("a system"))?;
            one_or_not_found(done.rows_affected())
        }

        async fn insert_environment(
            &self,
            account: &AccountId,
            id: &EnvironmentId,
            name: &str,
        ) -> Result<Environment, StoreError> {
            let row = query(
                "INSERT INTO environments (id, account_id, name, built_in, position) \
                 VALUES (?, ?, ?, 0, (SELECT COALESCE(MAX(position), -1) + 1 FROM environments WHERE account_id = ?)) \
                 RETURNING id, account_id, name, built_in, position",
            )
            .bind(id.as_str())
            .bind(account.as_str())
            .bind(name)
            .bind(account.as_str())
            .fetch_one(self.writer())
            .await
            .map_err(unique("an environment"))?;
            row_to_environment(&row)
        }

        async fn environments(&self, account: &AccountId) -> Result<Vec<Environment>, StoreError> {
            let rows = query(
                "SELECT id, account_id, name, built_in, position FROM environments WHERE account_id = ? ORDER BY position, id",
            )
            .bind(account.as_str())
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(row_to_environment).collect()
        }

        async fn systems(&self, account: &AccountId) -> Result<Vec<System>, StoreError> {
            let rows =
                query(format!(
                    "SELECT id, account_id, name, created_at FROM systems WHERE account_id = ? ORDER BY {}, id",
                    dialect::text_order("name")
                ))
                    .bind(account.as_str())
                    .fetch_all(self.pool())
                    .await?;
            rows.iter().map(row_to_system).collect()
        }

        async fn delete_system(&self, account: &AccountId, id: &SystemId) -> Result<(), StoreError> {
            let mut tx = self.writer().begin().await?;
            let bound: i64 =
                query_scalar("SELECT COUNT(*) FROM connections WHERE account_id = ? AND legacy = 1 AND system_id = ?")
                    .bind(account.as_str())
                    .bind(id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            if bound > 0 {
                return Err(StoreError::Conflict(format!(
                    "this system still has {bound} connector(s): remove them first (that revokes their tokens)"
                )));
            }
            let done = query("DELETE FROM systems WHERE id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            Ok(())
        }

        async fn environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<Environment, StoreError> {
            let row =
                query("SELECT id, account_id, name, built_in, position FROM environments WHERE id = ? AND account_id = ?")
                    .bind(id.as_str())
                    .bind(account.as_str())
                    .fetch_optional(self.pool())
                    .await?
                    .ok_or(StoreError::NotFound)?;
            row_to_environment(&row)
        }

        async fn delete_environment(&self, account: &AccountId, id: &EnvironmentId) -> Result<(), StoreError> {
            let env = self.environment(account, id).await?;
            if env.built_in {
                return Err(StoreError::Conflict(format!("{} is built in and cannot be removed", env.name)));
            }
            let mut tx = self.writer().begin().await?;
            let bound: i64 =
                query_scalar("SELECT COUNT(*) FROM connections WHERE account_id = ? AND legacy = 1 AND environment_id = ?")
                    .bind(account.as_str())
                    .bind(id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            if bound > 0 {
                return Err(StoreError::Conflict(format!(
                    "{} still has {bound} connector(s): remove them first (that revokes their tokens)",
                    env.name
                )));
            }
            let done = query("DELETE FROM environments WHERE id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            Ok(())
        }

        async fn loader_config(&self, account: &AccountId, system: &SystemId) -> Result<Option<LoaderConfig>, StoreError> {
            let row = query(
                "SELECT system_id, scripts, styles, trusted_sites, apps, updated_at, updated_by FROM loader_settings \
                 WHERE system_id = ? AND account_id = ?",
            )
            .bind(system.as_str())
            .bind(account.as_str())
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else { return Ok(None) };
            let list = |column: &str| -> Result<Vec<String>, StoreError> {
                let text: String = sqlx::Row::try_get(&row, column)?;
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("loader_settings.{column}: {e}")))
            };
            let id: String = sqlx::Row::try_get(&row, "system_id")?;
            Ok(Some(LoaderConfig {
                system_id: SystemId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                scripts: list("scripts")?,
                styles: list("styles")?,
                trusted_sites: list("trusted_sites")?,
                apps: list("apps")?,
                updated_at: sqlx::Row::try_get(&row, "updated_at")?,
                updated_by: sqlx::Row::try_get(&row, "updated_by")?,
            }))
        }

        async fn put_loader_config(&self, account: &AccountId, config: &LoaderConfig) -> Result<(), StoreError> {
            let json = |v: &Vec<String>| serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()));
            // Only a system of this account: the insert selects it.
            let done = query(
                "INSERT INTO loader_settings (system_id, account_id, scripts, styles, trusted_sites, apps, updated_at, updated_by) \
                 SELECT id, account_id, ?, ?, ?, ?, ?, ? FROM systems WHERE id = ? AND account_id = ? \
                 ON CONFLICT (system_id) DO UPDATE SET scripts = excluded.scripts, styles = excluded.styles, \
                 trusted_sites = excluded.trusted_sites, apps = excluded.apps, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(json(&config.scripts)?)
            .bind(json(&config.styles)?)
            .bind(json(&config.trusted_sites)?)
            .bind(json(&config.apps)?)
            .bind(config.updated_at)
            .bind(&config.updated_by)
            .bind(config.system_id.as_str())
            .bind(account.as_str())
            .execute(self.writer())
            .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn loader_states(&self, account: &AccountId, system: &SystemId) -> Result<Vec<domain::LoaderState>, StoreError> {
            let rows = query(
                "SELECT l.environment_id, l.connection_id, l.deployment_id, l.resource_name, \
                 CASE WHEN r.removed_at >= l.updated_at THEN 'removed' ELSE l.loader END AS loader, \
                 CASE WHEN r.removed_at >= l.updated_at THEN 'removed' ELSE l.held END AS held, \
                 CASE WHEN r.removed_at >= l.updated_at THEN NULL ELSE l.error END AS error, \
                 CASE WHEN r.removed_at >= l.updated_at THEN r.removed_at ELSE l.updated_at END AS updated_at, \
                 CASE WHEN r.removed_at >= l.updated_at THEN r.removed_by ELSE l.created_by END AS created_by FROM ( \
                 SELECT d.environment_id, t.connection_id, d.id AS deployment_id, d.resource_name, t.loader, t.error, t.updated_at, \
                 d.created_by, ROW_NUMBER() OVER (PARTITION BY d.environment_id, t.connection_id ORDER BY t.updated_at DESC, d.created_at DESC) AS rn, \
                 FIRST_VALUE(t.loader) OVER (PARTITION BY d.environment_id, t.connection_id \
                 ORDER BY CASE WHEN t.loader IS NULL THEN 1 ELSE 0 END, t.updated_at DESC, d.created_at DESC) AS held \
                 FROM deployments d JOIN deployment_targets t ON t.deployment_id = d.id \
                 WHERE d.account_id = ? AND d.system_id = ? AND d.with_loader = 1 AND t.status IN ('succeeded', 'unchanged', 'failed') \
                 ) l LEFT JOIN loader_removals r ON r.system_id = ? AND r.environment_id = l.environment_id AND r.connection_id = l.connection_id \
                 WHERE l.rn = 1 ORDER BY l.environment_id, l.connection_id",
            )
            .bind(account.as_str())
            .bind(system.as_str())
            .bind(system.as_str())
            .fetch_all(self.pool())
            .await?;
            let corrupt = |e: domain::DomainError| StoreError::Corrupt(e.to_string());
            rows.iter()
                .map(|row| {
                    let get = |c: &str| -> Result<String, StoreError> { Ok(sqlx::Row::try_get(row, c)?) };
                    Ok(domain::LoaderState {
                        environment_id: EnvironmentId::parse(&get("environment_id")?).map_err(corrupt)?,
                        connection_id: domain::ConnectionId::parse(&get("connection_id")?).map_err(corrupt)?,
                        deployment_id: domain::DeploymentId::parse(&get("deployment_id")?).map_err(corrupt)?,
                        resource_name: get("resource_name")?,
                        loader: sqlx::Row::try_get(row, "loader")?,
                        held: sqlx::Row::try_get(row, "held")?,
                        error: sqlx::Row::try_get(row, "error")?,
                        updated_at: sqlx::Row::try_get(row, "updated_at")?,
                        by: get("created_by")?,
                    })
                })
                .collect()
        }

        async fn loader_slots(
            &self,
            account: &AccountId,
            connection: &domain::ConnectionId,
        ) -> Result<Vec<(SystemId, EnvironmentId)>, StoreError> {
            let rows = query(
                "SELECT b.system_id, b.environment_id FROM bindings b JOIN loader_settings l ON l.system_id = b.system_id \
                 WHERE b.connection_id = ? AND b.account_id = ? \
                 UNION SELECT c.system_id, c.environment_id FROM connections c JOIN loader_settings l ON l.system_id = c.system_id \
                 WHERE c.id = ? AND c.account_id = ? AND c.legacy = 1 ORDER BY 1, 2",
            )
            .bind(connection.as_str())
            .bind(account.as_str())
            .bind(connection.as_str())
            .bind(account.as_str())
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    let system: String = sqlx::Row::try_get(row, 0usize)?;
                    let env: String = sqlx::Row::try_get(row, 1usize)?;
                    let corrupt = |e: domain::DomainError| StoreError::Corrupt(e.to_string());
                    Ok((SystemId::parse(&system).map_err(corrupt)?, EnvironmentId::parse(&env).map_err(corrupt)?))
                })
                .collect()
        }

        async fn mark_loader_removed(
            &self,
            account: &AccountId,
            system: &SystemId,
            environment: &EnvironmentId,
            connection: &domain::ConnectionId,
            now: Millis,
            by: &str,
        ) -> Result<(), StoreError> {
            // Only a system of this account: the insert selects it.
            let done = query(
                "INSERT INTO loader_removals (account_id, system_id, environment_id, connection_id, removed_at, removed_by) \
                 SELECT account_id, id, ?, ?, ?, ? FROM systems WHERE id = ? AND account_id = ? \
                 ON CONFLICT (system_id, environment_id, connection_id) DO UPDATE SET removed_at = excluded.removed_at, \
                 removed_by = excluded.removed_by",
            )
            .bind(environment.as_str())
            .bind(connection.as_str())
            .bind(now)
            .bind(by)
            .bind(system.as_str())
            .bind(account.as_str())
            .execute(self.writer())
            .await?;
            one_or_not_found(done.rows_affected())
        }

        async fn delete_loader_config(&self, account: &AccountId, system: &SystemId) -> Result<(), StoreError> {
            let done = query("DELETE FROM loader_settings WHERE system_id = ? AND account_id = ?")
                .bind(system.as_str())
                .bind(account.as_str())
                .execute(self.writer())
                .await?;
            one_or_not_found(done.rows_affected())
        }
    };
}

pub(crate) use shared_catalog_methods;

/// Statements written once and run on whatever executes them: the store's pool, or a
/// [`crate::Tx`] so that several commit together. Each dialect's file expands this inside its
/// `statements` module, where `Db`, `query` and the row helpers are its own.
macro_rules! shared_statements {
    () => {
        /// Records what a publish left in an org as the resource's baseline (#17), clearing any
        /// drift noticed before.
        pub(crate) async fn put_baseline<'c, E: sqlx::Executor<'c, Database = Db>>(
            exec: E,
            b: &domain::Baseline,
        ) -> Result<(), StoreError> {
            query(
                "INSERT INTO resource_baselines (account_id, org_id, resource_name, sha256, content_type, cache_control, \
                 body_length, modstamp_ms, resource_id, connection_id, deployment_id, published_at, drift, scanned_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL) \
                 ON CONFLICT (account_id, org_id, resource_name) DO UPDATE SET sha256 = excluded.sha256, \
                 content_type = excluded.content_type, cache_control = excluded.cache_control, body_length = excluded.body_length, \
                 modstamp_ms = excluded.modstamp_ms, resource_id = excluded.resource_id, connection_id = excluded.connection_id, \
                 deployment_id = excluded.deployment_id, published_at = excluded.published_at, drift = NULL",
            )
            .bind(b.account_id.as_str())
            .bind(&b.org_id)
            .bind(b.resource_name.as_str().to_ascii_lowercase())
            .bind(&b.sha256)
            .bind(&b.content_type)
            .bind(&b.cache_control)
            .bind(b.body_length as i64)
            .bind(b.modstamp_ms)
            .bind(&b.resource_id)
            .bind(b.connection_id.as_str())
            .bind(b.deployment_id.as_str())
            .bind(b.published_at)
            .execute(exec)
            .await?;
            Ok(())
        }

        /// Inserts a connection with its sealed secrets.
        pub(crate) async fn insert_connection<'c, E: sqlx::Executor<'c, Database = Db>>(
            exec: E,
            keys: &Keyring,
            c: &Connection,
            secrets: &NewSecrets,
        ) -> Result<(), StoreError> {
            c.validate()?;
            let (legacy, name, system, environment, active) = kind_columns(&c.kind);
            let (method, key, jwt_user) = auth_columns(&c.auth);
            let org = c.org.as_ref();
            let tokens = secrets.tokens.as_ref();
            query(
                "INSERT INTO connections (id, account_id, legacy, name, system_id, environment_id, active, org_type, login_host, auth_method, \
                 consumer_key, jwt_username, org_id, org_name, instance_url, sf_user_id, sf_username, sf_email, status, status_detail, \
                 status_reason, status_checked_at, created_at, created_by, modified_at, modified_by, consumer_secret, private_key, access_token, \
                 refresh_token, search_text, renewed_at, granted_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(c.id.as_str())
            .bind(c.account_id.as_str())
            .bind(legacy)
            .bind(name)
            .bind(system)
            .bind(environment)
            .bind(active)
            .bind(org_type(c.org_type))
            .bind(c.login_host.as_setting())
            .bind(method)
            .bind(key)
            .bind(jwt_user)
            .bind(org.map(|o| o.org_id.as_str()))
            .bind(org.map(|o| o.org_name.as_str()))
            .bind(tokens.map(|t| instance(&t.instance_url)).or(org.map(|o| instance(&o.instance_url))))
            .bind(org.map(|o| o.user_id.as_str()))
            .bind(org.map(|o| o.username.as_str()))
            .bind(org.and_then(|o| o.email.as_deref()))
            .bind(c.status.as_str())
            .bind(c.status_detail.as_deref())
            .bind(c.status_reason.map(domain::StatusReason::as_str))
            .bind(c.status_checked_at)
            .bind(c.created_at)
            .bind(c.created_by.as_deref())
            .bind(c.modified_at)
            .bind(c.modified_by.as_deref())
            .bind(seal_field(keys, &c.id, "consumer_secret", secrets.consumer_secret.as_ref().map(ClientSecret::expose_secret))?)
            .bind(seal_field(keys, &c.id, "private_key", secrets.private_key.as_ref().map(JwtPrivateKey::expose_secret))?)
            .bind(seal_field(keys, &c.id, "access_token", tokens.map(|t| t.access_token.expose_secret()))?)
            .bind(seal_field(keys, &c.id, "refresh_token", tokens.and_then(|t| t.refresh_token.as_ref()).map(RefreshToken::expose_secret))?)
            .bind(search_text(c))
            .bind(tokens.map(|_| c.created_at))
            .bind(tokens.and_then(|t| t.refresh_token.as_ref()).map(|_| c.created_at))
            .execute(exec)
            .await
            .map_err(conflict)?;
            Ok(())
        }

        /// Deletes a connection of `account`; `NotFound` when there is none.
        pub(crate) async fn delete_connection<'c, E: sqlx::Executor<'c, Database = Db>>(
            exec: E,
            account: &AccountId,
            id: &ConnectionId,
        ) -> Result<(), StoreError> {
            let done = query("DELETE FROM connections WHERE id = ? AND account_id = ?")
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(exec)
                .await?;
            if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        }

        /// Appends an entry to the audit log.
        pub(crate) async fn record<'c, E: sqlx::Executor<'c, Database = Db>>(
            exec: E,
            e: &AuditEntry,
        ) -> Result<(), StoreError> {
            query(
                "INSERT INTO audit_log (account_id, at, actor, actor_kind, action, target_kind, target_id, target_label, detail, remote_addr) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.account_id.as_ref().map(AccountId::as_str))
            .bind(e.at)
            .bind(&e.actor)
            .bind(e.actor_kind.as_str())
            .bind(&e.action)
            .bind(&e.target_kind)
            .bind(e.target_id.as_deref())
            .bind(e.target_label.as_deref())
            .bind(e.detail.as_deref())
            .bind(e.remote_addr.as_deref())
            .execute(exec)
            .await?;
            Ok(())
        }

        /// Inserts a deployment (its targets are inserted beside it, per database).
        pub(crate) async fn insert_deployment<'c, E: sqlx::Executor<'c, Database = Db>>(
            exec: E,
            d: &domain::Deployment,
        ) -> Result<(), StoreError> {
            query(
                "INSERT INTO deployments (id, account_id, system_id, environment_id, bundle_id, resource_name, cache_control, status, \
                 created_at, created_by, finished_at, redeploy_of, with_loader, rollout, wave, note, overwrite_drift) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(d.id.as_str())
            .bind(d.account_id.as_str())
            .bind(d.system_id.as_str())
            .bind(d.environment_id.as_str())
            .bind(d.bundle_id.as_str())
            .bind(d.resource_name.as_str())
            .bind(d.cache_control.as_str())
            .bind(d.status.as_str())
            .bind(d.created_at)
            .bind(&d.created_by)
            .bind(d.finished_at)
            .bind(d.redeploy_of.as_ref().map(domain::DeploymentId::as_str))
            .bind(i64::from(d.with_loader))
            .bind(
                d.rollout
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("rollout: {e}")))?,
            )
            .bind(i64::from(d.wave))
            .bind(d.note.as_deref())
            .bind(i64::from(d.overwrite_drift))
            .execute(exec)
            .await?;
            Ok(())
        }
    };
}

pub(crate) use shared_statements;
