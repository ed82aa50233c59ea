//! F8 Export: what the table shows — the current search and sort, the user's visible columns
//! in their order, every page — as CSV or XLSX. Rows are streamed from one database query;
//! CSV goes out as it is written, XLSX is built in constant-memory mode (rows go to a temporary
//! file) and sent when complete. Cells that a spreadsheet could run as a formula (starting with
//! `=`, `+`, `-`, `@`, tab or carriage return) are neutralized with a leading `'` in both.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use domain::AccountId;
use futures_util::StreamExt;
use serde::Deserialize;
use store::{AuditStore, ConnectionStore, ListQuery, Store, TableRow, TableRowRef};

use super::connections::{COLUMNS, CellRef, TableParams, row_cell, visible_columns};
use super::{PageResult, SignedIn};
use crate::AppState;
use crate::http::ApiError;

/// Rows buffered before a CSV chunk goes out.
const CSV_CHUNK_BYTES: usize = 64 * 1024;

/// CSV exports read straight from the database at once: each holds a database connection (and
/// its snapshot, or SQLite's read mark in the log) for as long as its client downloads. More go
/// through `table_chunks`, which gives its connection back between chunks.
static DIRECT_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A download that takes nothing for this long is given up, and the read with it.
const STALLED: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    format: Option<String>,
    #[serde(flatten)]
    table: TableParams,
}

/// Text a spreadsheet would not run: a leading `'` before `=`, `+`, `-`, `@`, tab, CR.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn header_label(key: &str) -> &'static str {
    COLUMNS.iter().find(|(k, _)| *k == key).map(|(_, label)| *label).unwrap_or("")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC): what both Excel and LibreOffice read as a date in CSV.
#[cfg(test)]
fn csv_date(ms: i64) -> String {
    let mut buffer = [0; DATE_BYTES];
    String::from_utf8_lossy(csv_date_in(ms, &mut buffer)).into_owned()
}

/// Room for a date as [`csv_date_in`] writes it (a year past 9999 included).
const DATE_BYTES: usize = 32;

/// `YYYY-MM-DD HH:MM:SS` (UTC), written into `buffer`, without allocating.
fn csv_date_in(ms: i64, buffer: &mut [u8; DATE_BYTES]) -> &[u8] {
    use std::io::Write;
    let (year, month, day, hour, minute, second) = domain::civil_utc(ms);
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    let _ = write!(cursor, "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
    let written = cursor.position() as usize;
    &buffer[..written]
}

pub async fn connections(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(params): Query<ExportParams>,
) -> PageResult {
    let account = signed_in.caller.account()?.clone();
    let columns = visible_columns(&state, &signed_in.caller.user.id).await?;
    // The table's view: its search, filters and sort (#16), every matching row.
    let query = ListQuery { limit: 0, ..params.table.view().query(None) };
    let format = match params.format.as_deref() {
        Some("xlsx") => "xlsx",
        Some("csv") | None => "csv",
        Some(other) => return Err(ApiError::invalid("format", format!("{other:?} is not csv or xlsx")).into()),
    };
    if format == "xlsx" {
        // One indexed count (the table's own) before building a sheet Excel could not open.
        let counted = state.store.list(&account, &ListQuery { limit: 1, ..query.clone() }).await?;
        if let Some(why) = xlsx_refusal(counted.total) {
            return Err(ApiError::invalid("format", why).into());
        }
    }
    Ok(send(&state, &signed_in, account, Rows::Query(query), columns, format, "").await?)
}

/// The rows an XLSX sheet holds: Excel's 1,048,576, the header row among them.
pub const XLSX_MAX_ROWS: u64 = 1_048_576;

/// Why an export of `rows` connections cannot be an XLSX file, if it cannot.
pub fn xlsx_refusal(rows: u64) -> Option<String> {
    (rows >= XLSX_MAX_ROWS).then(|| {
        format!(
            "An XLSX sheet holds at most {} rows (Excel's limit, the header row included) and this view has {} connections: export it as CSV, which has no such limit, or narrow it with a search or filters.",
            domain::thousands(XLSX_MAX_ROWS),
            domain::thousands(rows)
        )
    })
}

/// Where an export's rows come from: the table's query, or rows already read (a selection).
pub enum Rows {
    Query(ListQuery),
    Selected(Vec<TableRow>),
}

impl Rows {
    fn chunks<'a>(
        self,
        store: &'a Store,
        account: &'a AccountId,
    ) -> futures_util::stream::BoxStream<'a, Result<Vec<TableRow>, store::StoreError>> {
        match self {
            Rows::Query(query) => store.table_chunks(account, &query).boxed(),
            Rows::Selected(rows) => futures_util::stream::once(async move { Ok(rows) }).boxed(),
        }
    }
}

/// Sends an export as a download (and records it in the audit log); `what` says which rows,
/// when not the whole view.
pub async fn send(
    state: &AppState,
    signed_in: &SignedIn,
    account: AccountId,
    rows: Rows,
    columns: Vec<&'static str>,
    format: &str,
    what: &str,
) -> Result<axum::response::Response, ApiError> {
    let entry = signed_in.caller.audit(
        state.clock.now_ms(),
        "connections.exported",
        "connection",
        None,
        None,
        Some(format!("{format}{what}, columns {}", columns.join(", "))),
    );
    if let Err(e) = state.store.record(&entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
    let day = super::date(state.clock.now_ms()).chars().take(10).collect::<String>();
    let (content_type, body) = if format == "xlsx" {
        let bytes = xlsx(state.store.clone(), account, rows, columns).await?;
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Body::from(bytes))
    } else {
        ("text/csv; charset=utf-8", csv_stream(state.store.clone(), account, rows, columns))
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"salesforce-connections-{day}.{format}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// A byte-order mark, so Excel reads the file as UTF-8, then the header row.
fn csv_head(columns: &[&'static str]) -> Vec<u8> {
    let mut buffer: Vec<u8> = "\u{feff}".as_bytes().to_vec();
    write_records(&mut buffer, std::iter::once(columns.iter().map(|k| header_label(k).to_string()).collect()));
    buffer
}

/// The CSV, written chunk by chunk as rows arrive from the database.
pub fn csv_stream(store: Arc<Store>, account: AccountId, rows: Rows, columns: Vec<&'static str>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body =
        Body::from_stream(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        ));
    // A view: read straight from the database on a blocking thread (SQLite's rows, PostgreSQL's
    // `COPY`), each row written as it is read (#17).
    let rows = match rows {
        Rows::Query(query) if store.reads_directly() => match DIRECT_READS.try_acquire() {
            Ok(permit) => {
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    csv_read_directly(&store, &account, &query, &columns, &tx)
                });
                return body;
            }
            Err(_) => Rows::Query(query),
        },
        rows => rows,
    };
    tokio::spawn(async move {
        let mut buffer = csv_head(&columns);
        let mut chunks = std::pin::pin!(rows.chunks(&store, &account));
        loop {
            let next = chunks.next().await;
            match &next {
                Some(Ok(rows)) => write_rows(&mut buffer, rows, &columns),
                Some(Err(e)) => {
                    tracing::error!(error = %e, "export stopped: the database failed");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
                None => {}
            }
            if buffer.len() >= CSV_CHUNK_BYTES || (next.is_none() && !buffer.is_empty()) {
                let chunk = std::mem::replace(&mut buffer, Vec::with_capacity(CSV_CHUNK_BYTES * 2));
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return; // the client went away
                }
            }
            if next.is_none() {
                return;
            }
        }
    });
    body
}

/// [`csv_stream`] from the database's own rows, on a blocking thread.
fn csv_read_directly(
    store: &Store,
    account: &AccountId,
    query: &ListQuery,
    columns: &[&'static str],
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    // Sent unless the client went away, or took nothing for `STALLED`.
    let runtime = tokio::runtime::Handle::current();
    let send = |chunk: Result<Bytes, std::io::Error>| {
        runtime.block_on(async { matches!(tokio::time::timeout(STALLED, tx.send(chunk)).await, Ok(Ok(()))) })
    };
    let mut out = csv::Writer::from_writer(csv_head(columns));
    let mut date = [0; DATE_BYTES];
    let mut written = 0usize;
    let mut gone = false;
    let mut each = |r: TableRowRef<'_>| -> bool {
        if let Err(e) = write_row(&mut out, r, columns, &mut date) {
            tracing::error!(error = %e, "could not write a CSV record");
        }
        written += 1;
        // The writer keeps a few kilobytes itself; look at what it handed over now and then.
        if written.is_multiple_of(256) && out.flush().is_ok() && out.get_ref().len() >= CSV_CHUNK_BYTES {
            let full = std::mem::replace(&mut out, csv::Writer::from_writer(Vec::with_capacity(CSV_CHUNK_BYTES * 2)));
            let chunk = full.into_inner().unwrap_or_default();
            gone = !send(Ok(Bytes::from(chunk)));
        }
        !gone
    };
    match store.read_table_blocking(account, query, &mut each) {
        Ok(()) if !gone => {
            let rest = out.into_inner().unwrap_or_default();
            if !rest.is_empty() {
                send(Ok(Bytes::from(rest)));
            }
        }
        Ok(()) => {}
        Err(e) => {
            tracing::error!(error = %e, "export stopped: the database failed");
            send(Err(std::io::Error::other("export failed")));
        }
    }
}

/// Appends CSV records (RFC 4180 quoting) to `buffer`.
fn write_records(buffer: &mut Vec<u8>, records: impl Iterator<Item = Vec<String>>) {
    let mut out = csv::Writer::from_writer(buffer);
    for record in records {
        if let Err(e) = out.write_record(&record) {
            tracing::error!(error = %e, "could not write a CSV record");
        }
    }
    let _ = out.flush();
}

/// Appends table rows as CSV records.
fn write_rows(buffer: &mut Vec<u8>, rows: &[TableRow], columns: &[&'static str]) {
    let mut out = csv::Writer::from_writer(buffer);
    let mut date = [0; DATE_BYTES];
    let mut write = || -> csv::Result<()> {
        for r in rows {
            write_row(&mut out, r.as_ref(), columns, &mut date)?;
        }
        out.flush()?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::error!(error = %e, "could not write a CSV record");
    }
}

/// One row as a CSV record, each cell written as it is borrowed from the row (no text is built
/// per cell but for the rare one that needs neutralizing).
fn write_row<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    r: TableRowRef<'_>,
    columns: &[&'static str],
    date: &mut [u8; DATE_BYTES],
) -> csv::Result<()> {
    // A record of one empty field is written `""`, or readers would take it for no record.
    if let [key] = columns
        && row_cell(r, key) == CellRef::Text("")
    {
        return out.write_record([""]);
    }
    for key in columns {
        match row_cell(r, key) {
            CellRef::Text(t) => out.write_field(neutralize(t).as_bytes())?,
            CellRef::Date(ms) => out.write_field(csv_date_in(ms, date))?,
        }
    }
    out.write_record(None::<&[u8]>)
}

/// The XLSX: one sheet, a bold header row with a filter, dates as real dates.
pub async fn xlsx(
    store: Arc<Store>,
    account: AccountId,
    rows: Rows,
    columns: Vec<&'static str>,
) -> Result<Vec<u8>, ApiError> {
    let runtime = tokio::runtime::Handle::current();
    let built = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
        let mut workbook = Workbook::new();
        let bold = Format::new().set_bold();
        let date_format = Format::new().set_num_format("yyyy-mm-dd hh:mm");
        let sheet = workbook.add_worksheet_with_constant_memory().map_err(|e| e.to_string())?;
        sheet.set_name("Salesforce connections").map_err(|e| e.to_string())?;
        for (col, key) in columns.iter().enumerate() {
            let col = col as u16;
            sheet.write_string_with_format(0, col, header_label(key), &bold).map_err(|e| e.to_string())?;
            let width = match *key {
                "connection_id" => 38.0,
                "created_at" | "last_modified_at" => 18.0,
                "created_by" | "last_modified_by" | "account_name" => 30.0,
                _ => 16.0,
            };
            sheet.set_column_width(col, width).map_err(|e| e.to_string())?;
        }
        let mut chunks = std::pin::pin!(rows.chunks(&store, &account));
        let mut row_no: u32 = 0;
        while let Some(chunk) = runtime.block_on(chunks.next()) {
            for row in chunk.map_err(|e| e.to_string())? {
                row_no += 1;
                for (col, key) in columns.iter().enumerate() {
                    let col = col as u16;
                    match row_cell(row.as_ref(), key) {
                        CellRef::Text("") => {}
                        CellRef::Text(t) => {
                            sheet.write_string(row_no, col, neutralize(t).as_ref()).map_err(|e| e.to_string())?;
                        }
                        CellRef::Date(ms) => {
                            let when = ExcelDateTime::from_timestamp(ms / 1000).map_err(|e| e.to_string())?;
                            sheet
                                .write_datetime_with_format(row_no, col, &when, &date_format)
                                .map_err(|e| e.to_string())?;
                        }
                    }
                }
            }
        }
        if !columns.is_empty() {
            sheet.autofilter(0, 0, row_no, columns.len() as u16 - 1).map_err(|e| e.to_string())?;
        }
        sheet.set_freeze_panes(1, 0).map_err(|e| e.to_string())?;
        workbook.save_to_buffer().map_err(|e| e.to_string())
    })
    .await;
    match built {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the XLSX export failed");
            Err(ApiError::Internal)
        }
        Err(e) => {
            tracing::error!(error = %e, "the XLSX export task failed");
            Err(ApiError::Internal)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_xlsx_past_excel_s_rows_is_refused_and_points_to_csv() {
        assert_eq!(super::xlsx_refusal(1_048_575), None, "the header and 1,048,575 rows fit");
        let why = super::xlsx_refusal(1_048_576).expect("one more does not");
        assert!(
            why.contains("1,048,576 rows") && why.contains("this view has 1,048,576") && why.contains("CSV"),
            "{why}"
        );
    }

    use super::*;

    #[test]
    fn csv_dates_match_the_calendar() {
        for ms in [0_i64, 951_782_400_000, 1_795_455_338_807, 4_102_444_799_000, -86_400_000] {
            let expected = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
                .expect("date")
                .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"))
                .expect("format");
            assert_eq!(csv_date(ms), expected, "{ms}");
        }
    }

    #[test]
    fn rows_are_written_as_the_csv_crate_writes_records() {
        let legacy = TableRow {
            id: "conn_1".into(),
            legacy: true,
            org_type: "sandbox".into(),
            org_name: Some("=HYPERLINK(\"x\")".into()),
            created_at: 951_782_400_000,
            created_by: None,
            modified_at: 951_782_400_000,
            modified_by: Some("a,b@example.com".into()),
            status: "logged_out".into(),
            active: false,
        };
        let fresh = TableRow { legacy: false, status: "logged_in".into(), active: true, ..legacy.clone() };
        for columns in [COLUMNS.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec!["created_at"], vec!["created_by"]] {
            let mut ours = Vec::new();
            write_rows(&mut ours, &[legacy.clone(), fresh.clone()], &columns);
            let mut theirs = Vec::new();
            write_records(
                &mut theirs,
                [&legacy, &fresh].iter().map(|r| {
                    columns
                        .iter()
                        .map(|k| match row_cell(r.as_ref(), k) {
                            CellRef::Text(t) => neutralize(t).into_owned(),
                            CellRef::Date(ms) => csv_date(ms),
                        })
                        .collect()
                }),
            );
            assert_eq!(
                String::from_utf8(ours).expect("utf-8"),
                String::from_utf8(theirs).expect("utf-8"),
                "{columns:?}"
            );
        }
    }

    #[test]
    fn formula_like_cells_are_neutralized_and_others_are_not() {
        for bad in ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx"] {
            assert_eq!(neutralize(bad), format!("'{bad}"), "{bad:?}");
        }
        for fine in ["Acme", "a=b", "", "1-2"] {
            assert_eq!(neutralize(fine), fine);
        }
    }
}
