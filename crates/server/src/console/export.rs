//! F8 Export: what the table shows — the current search and sort, the user's visible columns
//! in their order, every page — as CSV or XLSX. Rows are streamed from one database query and
//! either file goes out as it is written (the XLSX through [`super::xlsx`]), so a download of a
//! million rows starts at once and holds little memory. Cells that a spreadsheet could run as a formula (starting with
//! `=`, `+`, `-`, `@`, tab or carriage return) are neutralized with a leading `'` in both.

use std::borrow::Cow;
use std::io;
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
use super::{PageResult, SignedIn, xlsx};
use crate::AppState;
use crate::http::ApiError;

/// Bytes of a file gathered before they go out as a chunk of the download.
const CHUNK_BYTES: usize = 64 * 1024;

/// Exports (CSV or XLSX) read straight from the database at once: each holds a database
/// connection (and its snapshot, or SQLite's read mark in the log) for as long as its client
/// downloads. More go through `table_chunks`, which gives its connection back between chunks.
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
    let content_type = if format == "xlsx" {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    } else {
        "text/csv; charset=utf-8"
    };
    let body = download(state.store.clone(), account, rows, columns, format);
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

/// The export as a download: written on a blocking thread as rows come from the database, and
/// sent as it is written, in either format.
fn download(store: Arc<Store>, account: AccountId, rows: Rows, columns: Vec<&'static str>, format: &str) -> Body {
    let (out, body) = Download::new(STALLED);
    // A view is read straight from the database (SQLite's rows, PostgreSQL's `COPY`), each row
    // written as it is read (#17), unless two exports do so already.
    let direct = match &rows {
        Rows::Query(_) if store.reads_directly() => DIRECT_READS.try_acquire().ok(),
        _ => None,
    };
    let xlsx = format == "xlsx";
    let abandon = out.dropped.clone();
    tokio::task::spawn_blocking(move || {
        let written = if xlsx {
            XlsxRows::new(out, columns).and_then(|file| write_all(&store, &account, rows, direct, file, &abandon))
        } else {
            write_all(&store, &account, rows, direct, CsvRows::new(out, columns), &abandon)
        };
        // A failed export sends no end: its download ends with an error, not as a whole file.
        match written {
            Ok(()) | Err(Failure::Gone) => {}
            Err(Failure::Database(e)) => tracing::error!(error = %e, "export stopped: the database failed"),
            Err(Failure::File(e)) => tracing::error!(error = %e, "export stopped: the file could not be written"),
        }
    });
    body
}

/// Why an export stopped before its end.
enum Failure {
    /// The client went away, or took nothing for [`STALLED`].
    Gone,
    Database(store::StoreError),
    File(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe { Failure::Gone } else { Failure::File(e) }
    }
}

/// What goes from the writing thread to the response body.
enum Piece {
    Bytes(Bytes),
    /// The file is whole. A body whose writer stops without it (a failure, a stall, a panic)
    /// ends with an error, so the client never takes a cut file for a whole one.
    End,
}

/// Where an export's bytes go from the blocking thread that writes them: the download, in
/// chunks of [`CHUNK_BYTES`].
struct Download {
    runtime: tokio::runtime::Handle,
    tx: tokio::sync::mpsc::Sender<Piece>,
    buffer: Vec<u8>,
    /// How long a chunk may wait for the client.
    stalled: std::time::Duration,
    /// Set once the download failed or was abandoned: what is written after is dropped at once
    /// (a writer's own clean-up on drop — the ZIP's directory, the CSV's buffer — goes nowhere).
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

impl Download {
    /// A download and the response body it feeds. Call from within the runtime.
    fn new(stalled: std::time::Duration) -> (Download, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(4);
        let body = Body::from_stream(futures_util::stream::unfold(Some(rx), |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(Piece::Bytes(bytes)) => Some((Ok(bytes), Some(rx))),
                Some(Piece::End) => None,
                None => Some((Err(io::Error::other("the export stopped before its end")), None)),
            }
        }));
        let out = Download {
            runtime: tokio::runtime::Handle::current(),
            tx,
            buffer: Vec::with_capacity(CHUNK_BYTES * 2),
            stalled,
            dropped: Arc::default(),
        };
        (out, body)
    }

    fn put(&mut self, piece: Piece) -> io::Result<()> {
        let (tx, stalled) = (&self.tx, self.stalled);
        match self.runtime.block_on(async { tokio::time::timeout(stalled, tx.send(piece)).await }) {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.dropped.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "the download went away or stalled"))
            }
        }
    }

    /// Sends what is buffered. `BrokenPipe` once the client went away or took nothing for
    /// `stalled`.
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES * 2)));
        self.put(Piece::Bytes(chunk))
    }

    /// Sends the rest and says the file is whole.
    fn end(mut self) -> io::Result<()> {
        self.send()?;
        self.put(Piece::End)
    }
}

impl io::Write for Download {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.dropped.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(data.len());
        }
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    /// Chunks go when full, and the last when the file ends ([`Download::end`]).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An export's file, written a row at a time.
trait ExportFile {
    fn row(&mut self, r: TableRowRef<'_>) -> io::Result<()>;
    /// Ends the file; gives back the download, its last chunk not yet sent.
    fn finish(self) -> io::Result<Download>;
}

/// Every row of `rows` into `file`, then the file's end; `abandon` (the download's
/// [`Download::dropped`]) is set before an unfinished file is dropped.
fn write_all(
    store: &Store,
    account: &AccountId,
    rows: Rows,
    direct: Option<tokio::sync::SemaphorePermit<'static>>,
    mut file: impl ExportFile,
    abandon: &std::sync::atomic::AtomicBool,
) -> Result<(), Failure> {
    let mut stopped = None;
    let mut each = |r: TableRowRef<'_>| match file.row(r) {
        Ok(()) => true,
        Err(e) => {
            stopped = Some(e);
            false
        }
    };
    let read = match rows {
        Rows::Query(query) if direct.is_some() => store.read_table_blocking(account, &query, &mut each),
        // Chunk by chunk, the database connection given back between them.
        Rows::Query(query) => {
            let runtime = tokio::runtime::Handle::current();
            let mut chunks = std::pin::pin!(store.table_chunks(account, &query));
            loop {
                match runtime.block_on(chunks.next()) {
                    Some(Ok(rows)) if rows.iter().all(|r| each(r.as_ref())) => {}
                    Some(Ok(_)) | None => break Ok(()),
                    Some(Err(e)) => break Err(e),
                }
            }
        }
        Rows::Selected(rows) => {
            rows.iter().all(|r| each(r.as_ref()));
            Ok(())
        }
    };
    drop(direct);
    let failure = match (read, stopped) {
        (Err(e), _) => Some(Failure::Database(e)),
        (Ok(()), Some(e)) => Some(Failure::from(e)),
        (Ok(()), None) => None,
    };
    if let Some(failure) = failure {
        abandon.store(true, std::sync::atomic::Ordering::Relaxed);
        return Err(failure);
    }
    file.finish()?.end()?;
    Ok(())
}

/// The CSV: RFC 4180 records after a byte-order mark and the header.
struct CsvRows {
    out: csv::Writer<Download>,
    columns: Vec<&'static str>,
    date: [u8; DATE_BYTES],
}

impl CsvRows {
    fn new(mut out: Download, columns: Vec<&'static str>) -> Self {
        out.buffer.extend_from_slice(&csv_head(&columns));
        CsvRows { out: csv::Writer::from_writer(out), columns, date: [0; DATE_BYTES] }
    }
}

/// A CSV writer's error as the I/O error it carries, if it carries one.
fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl ExportFile for CsvRows {
    fn row(&mut self, r: TableRowRef<'_>) -> io::Result<()> {
        write_row(&mut self.out, r, &self.columns, &mut self.date).map_err(csv_io)
    }

    fn finish(self) -> io::Result<Download> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// The XLSX: one sheet, a bold header row with a filter, dates as real dates.
struct XlsxRows {
    sheet: xlsx::Sheet<Download>,
    columns: Vec<&'static str>,
    date: [u8; DATE_BYTES],
}

impl XlsxRows {
    fn new(out: Download, columns: Vec<&'static str>) -> Result<Self, Failure> {
        let heads: Vec<xlsx::Column<'_>> = columns
            .iter()
            .map(|key| xlsx::Column {
                label: header_label(key),
                width: match *key {
                    "connection_id" => 38.0,
                    "created_at" | "last_modified_at" => 18.0,
                    "created_by" | "last_modified_by" | "account_name" => 30.0,
                    _ => 16.0,
                },
            })
            .collect();
        let sheet = xlsx::Sheet::new(out, "Salesforce connections", &heads)?;
        Ok(XlsxRows { sheet, columns, date: [0; DATE_BYTES] })
    }
}

impl ExportFile for XlsxRows {
    fn row(&mut self, r: TableRowRef<'_>) -> io::Result<()> {
        for key in &self.columns {
            match row_cell(r, key) {
                CellRef::Text(t) => self.sheet.text(&neutralize(t)),
                CellRef::Date(ms) => {
                    if !self.sheet.date(ms) {
                        let text = csv_date_in(ms, &mut self.date);
                        self.sheet.text(std::str::from_utf8(text).unwrap_or_default());
                    }
                }
            }
        }
        self.sheet.end_row()
    }

    fn finish(self) -> io::Result<Download> {
        self.sheet.finish()
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

/// One row as a CSV record, each cell written as it is borrowed from the row (no text is built
/// per cell but for the rare one that needs neutralizing).
fn write_row<W: io::Write>(
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
            let mut out = csv::Writer::from_writer(Vec::new());
            let mut date = [0; DATE_BYTES];
            for r in [&legacy, &fresh] {
                write_row(&mut out, r.as_ref(), &columns, &mut date).expect("write");
            }
            let ours = out.into_inner().expect("flush");
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

    /// The writing thread's side of a download whose client reads nothing.
    fn unread(stalled: std::time::Duration) -> (tokio::runtime::Runtime, Download, Body) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (out, body) = runtime.block_on(async { Download::new(stalled) });
        (runtime, out, body)
    }

    fn pieces(runtime: &tokio::runtime::Runtime, body: Body) -> Vec<Result<Bytes, String>> {
        runtime.block_on(body.into_data_stream().map(|r| r.map_err(|e| e.to_string())).collect())
    }

    #[test]
    fn a_stalled_download_is_given_up_and_ends_with_an_error_not_as_a_whole_file() {
        use std::io::Write;
        let stalled = std::time::Duration::from_millis(50);
        let (runtime, mut out, body) = unread(stalled);
        // The channel takes four chunks; the fifth waits for the client, which takes nothing.
        let chunk = vec![b'x'; CHUNK_BYTES];
        for _ in 0..4 {
            out.write_all(&chunk).expect("queued");
        }
        let started = std::time::Instant::now();
        let e = out.write_all(&chunk).expect_err("given up");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(started.elapsed() >= stalled);
        // What a writer puts after (a ZIP's directory on drop) goes nowhere, at once.
        let started = std::time::Instant::now();
        out.write_all(&chunk).expect("dropped");
        assert!(started.elapsed() < stalled);
        drop(out);
        let pieces = pieces(&runtime, body);
        assert_eq!(pieces.len(), 5, "four chunks, then an error");
        assert!(pieces[..4].iter().all(|p| p.as_ref().is_ok_and(|b| b.len() == CHUNK_BYTES)));
        assert!(pieces[4].is_err(), "the body ends with an error");
    }

    #[test]
    fn a_whole_download_ends_cleanly_and_an_unfinished_one_does_not() {
        use std::io::Write;
        for whole in [true, false] {
            let (runtime, mut out, body) = unread(STALLED);
            out.write_all(b"every row").expect("write");
            let reader = std::thread::spawn(move || pieces(&runtime, body));
            if whole {
                out.end().expect("end");
            } else {
                out.send().expect("sent");
                drop(out); // as a writer that failed, or panicked
            }
            let pieces = reader.join().expect("reader");
            assert_eq!(pieces[0].as_deref().ok(), Some(&b"every row"[..]));
            assert_eq!(pieces.len(), if whole { 1 } else { 2 }, "{pieces:?}");
            assert_eq!(pieces.iter().any(Result::is_err), !whole);
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
