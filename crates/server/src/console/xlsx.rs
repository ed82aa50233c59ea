//! XLSX written as it goes (#17): one sheet of text and dates under a bold header row with a
//! filter, frozen below the header. The package is a ZIP streamed with data descriptors (the
//! `zip` crate's stream writer), so a download starts with its first rows, and a sheet of a
//! million rows needs neither a temporary file nor the whole file in memory.
//!
//! What is written is the part of SpreadsheetML (ECMA-376 Part 1, §18) an export needs: inline
//! strings (`t="inlineStr"`), dates as serial numbers under a date format, column widths, a frozen
//! pane, and an autofilter with the hidden `_xlnm._FilterDatabase` name Excel keeps beside one.
//! Text is escaped for XML and for the `_xHHHH_` notation of ST_Xstring (§22.9.2.19): characters
//! XML 1.0 cannot carry are written `_xHHHH_`, and a literal `_x0041_` is written `_x005F_x0041_`
//! so that it is not read as one.

use std::io::{self, Write};

use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipWriter};

/// Rows a sheet holds, the header among them (Excel's limit).
pub const MAX_ROWS: u32 = 1_048_576;

/// Deflate level of every part. A large export's sheet is hundreds of megabytes of repetitive
/// XML; on 46 MB of it (100,000 rows) zlib-rs's levels measured: 1, 10.2 MB at 616 MB/s; 2,
/// 7.4 MB at 374 MB/s; 6 (zlib's default), 6.8 MB at 110 MB/s. Level 2 keeps the file within
/// a tenth of level 6's size at a third of its time (docs/benchmarks.md).
const LEVEL: i64 = 2;

/// Sheet XML gathered before it is handed to the compressor.
const BATCH: usize = 128 * 1024;

/// A column: its header and its width in characters.
pub struct Column<'a> {
    pub label: &'a str,
    pub width: f64,
}

/// One sheet being written to `W`, row by row: [`Sheet::text`] and [`Sheet::date`] fill the
/// current row's next cell, [`Sheet::end_row`] closes it, [`Sheet::finish`] the file.
pub struct Sheet<W: Write> {
    zip: ZipWriter<StreamWriter<W>>,
    name: String,
    xml: Vec<u8>,
    letters: Vec<String>,
    /// Rows written, the header included; the current row is `rows + 1`.
    rows: u32,
    /// The current row's number, as written in its cells' references.
    number: ([u8; 10], usize),
    /// The current row's next cell.
    cell: usize,
    /// Whether the current row's `<row>` is written.
    open: bool,
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(LEVEL))
        .last_modified_time(zip::DateTime::default())
}

fn zip_error(e: zip::result::ZipError) -> io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        other => io::Error::other(other),
    }
}

const XML_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const RELATIONSHIPS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

const CONTENT_TYPES: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
    r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#,
    r#"<Default Extension="xml" ContentType="application/xml"/>"#,
    r#"<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>"#,
    r#"<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#,
    r#"<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>"#,
    r#"</Types>"#
);

const ROOT_RELS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>"#,
    r#"</Relationships>"#
);

const WORKBOOK_RELS: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>"#,
    r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>"#,
    r#"</Relationships>"#
);

/// Cell formats: 0 plain, [`BOLD`] the header's, [`DATE`] dates as `yyyy-mm-dd hh:mm`.
const STYLES: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
    r#"<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#,
    r#"<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy\-mm\-dd\ hh:mm"/></numFmts>"#,
    r#"<fonts count="2">"#,
    r#"<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>"#,
    r#"<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>"#,
    r#"</fonts>"#,
    r#"<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>"#,
    r#"<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>"#,
    r#"<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>"#,
    r#"<cellXfs count="3">"#,
    r#"<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>"#,
    r#"<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>"#,
    r#"<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>"#,
    r#"</cellXfs>"#,
    r#"<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>"#,
    r#"<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>"#,
    r#"</styleSheet>"#
);

/// The header's cell format in [`STYLES`].
const BOLD: &str = "1";
/// Dates' cell format in [`STYLES`].
const DATE: &str = "2";

/// The sheet up to its columns: the header row frozen at the top.
const SHEET_VIEW: &str = concat!(
    r#"<sheetViews><sheetView tabSelected="1" workbookViewId="0">"#,
    r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#,
    r#"<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>"#,
    r#"</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>"#
);

const PAGE_MARGINS: &str =
    r#"<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>"#;

impl<W: Write> Sheet<W> {
    /// Starts the file with its header row. `name` must be a valid sheet name (at most 31
    /// characters, none of `[]:*?/\`); at most 16,384 columns.
    pub fn new(out: W, name: &str, columns: &[Column<'_>]) -> io::Result<Self> {
        debug_assert!(name.chars().count() <= 31 && !name.contains(['[', ']', ':', '*', '?', '/', '\\']));
        if columns.len() > 16_384 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a sheet holds at most 16,384 columns"));
        }
        let mut zip = ZipWriter::new_stream(out);
        for (part, text) in [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", ROOT_RELS),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
            ("xl/styles.xml", STYLES),
        ] {
            zip.start_file(part, options()).map_err(zip_error)?;
            zip.write_all(text.as_bytes())?;
        }
        // The workbook part names the filter's range, known at the end: it is written last.
        zip.start_file("xl/worksheets/sheet1.xml", options()).map_err(zip_error)?;
        let mut xml = Vec::with_capacity(BATCH + 64 * 1024);
        write!(xml, r#"{XML_HEAD}<worksheet xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}">{SHEET_VIEW}"#)?;
        if !columns.is_empty() {
            xml.extend_from_slice(b"<cols>");
            for (i, column) in columns.iter().enumerate() {
                let n = i + 1;
                write!(xml, r#"<col min="{n}" max="{n}" width="{}" customWidth="1"/>"#, stored_width(column.width))?;
            }
            xml.extend_from_slice(b"</cols>");
        }
        xml.extend_from_slice(b"<sheetData>");
        let mut sheet = Sheet {
            zip,
            name: name.to_string(),
            xml,
            letters: (0..columns.len()).map(column_letters).collect(),
            rows: 0,
            number: ([0; 10], 0),
            cell: 0,
            open: false,
        };
        for column in columns {
            sheet.cell(column.label, Some(BOLD));
        }
        sheet.end_row()?;
        Ok(sheet)
    }

    /// Opens the current row if this is its first cell; false past the last column.
    fn next_cell(&mut self) -> bool {
        if !self.open {
            self.open = true;
            let row = self.rows + 1;
            let mut digits = [0; 10];
            let len = decimal(u64::from(row), &mut digits);
            digits.copy_within(10 - len.., 0);
            self.number = (digits, len);
            self.xml.extend_from_slice(b"<row r=\"");
            self.xml.extend_from_slice(&digits[..len]);
            self.xml.extend_from_slice(b"\">");
        }
        self.cell < self.letters.len()
    }

    /// `<c r="B7"` for the current cell.
    fn reference(&mut self) {
        self.xml.extend_from_slice(b"<c r=\"");
        self.xml.extend_from_slice(self.letters[self.cell].as_bytes());
        let (digits, len) = self.number;
        self.xml.extend_from_slice(&digits[..len]);
        self.xml.push(b'"');
    }

    fn cell(&mut self, text: &str, style: Option<&str>) {
        if !self.next_cell() {
            return;
        }
        let text = within_cell(text);
        if !text.is_empty() {
            self.reference();
            if let Some(style) = style {
                self.xml.extend_from_slice(b" s=\"");
                self.xml.extend_from_slice(style.as_bytes());
                self.xml.push(b'"');
            }
            // Excel drops a string's leading and trailing spaces unless told to keep them.
            let edges = [text.as_bytes()[0], text.as_bytes()[text.len() - 1]];
            if edges.iter().any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
                self.xml.extend_from_slice(br#" t="inlineStr"><is><t xml:space="preserve">"#);
            } else {
                self.xml.extend_from_slice(br#" t="inlineStr"><is><t>"#);
            }
            escape(&mut self.xml, text);
            self.xml.extend_from_slice(b"</t></is></c>");
        }
        self.cell += 1;
    }

    /// The current row's next cell holds `text` (nothing, when it is empty).
    pub fn text(&mut self, text: &str) {
        self.cell(text, None);
    }

    /// The current row's next cell holds the date and time `ms` (milliseconds since 1970, UTC),
    /// to the second. False, and the cell left for [`Sheet::text`], for a date Excel does not
    /// have (before 1 March 1900, after 9999).
    #[must_use]
    pub fn date(&mut self, ms: i64) -> bool {
        if !self.next_cell() {
            return true;
        }
        let start = self.xml.len();
        self.reference();
        self.xml.extend_from_slice(b" s=\"");
        self.xml.extend_from_slice(DATE.as_bytes());
        self.xml.extend_from_slice(b"\"><v>");
        if serial(&mut self.xml, ms) {
            self.xml.extend_from_slice(b"</v></c>");
            self.cell += 1;
            true
        } else {
            self.xml.truncate(start);
            false
        }
    }

    /// Closes the current row (empty cells to its end need nothing).
    pub fn end_row(&mut self) -> io::Result<()> {
        if self.rows == MAX_ROWS {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an XLSX sheet holds at most 1,048,576 rows"));
        }
        self.next_cell();
        self.xml.extend_from_slice(b"</row>");
        self.rows += 1;
        self.cell = 0;
        self.open = false;
        if self.xml.len() >= BATCH {
            self.zip.write_all(&self.xml)?;
            self.xml.clear();
        }
        Ok(())
    }

    /// Ends the sheet and the file; gives back where it was written.
    pub fn finish(mut self) -> io::Result<W> {
        if self.open {
            self.end_row()?;
        }
        // The filter covers the header and every row.
        let last = self.letters.last().map(|column| (column.clone(), self.rows));
        self.xml.extend_from_slice(b"</sheetData>");
        if let Some((column, row)) = &last {
            write!(self.xml, r#"<autoFilter ref="A1:{column}{row}"/>"#)?;
        }
        self.xml.extend_from_slice(PAGE_MARGINS.as_bytes());
        self.xml.extend_from_slice(b"</worksheet>");
        self.zip.write_all(&self.xml)?;
        self.xml.clear();

        let mut name = Vec::new();
        escape(&mut name, &self.name);
        let name = String::from_utf8(name).map_err(io::Error::other)?;
        write!(
            self.xml,
            r#"{XML_HEAD}<workbook xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}"><workbookPr/><bookViews><workbookView xWindow="240" yWindow="15" windowWidth="16095" windowHeight="9660"/></bookViews><sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets>"#
        )?;
        if let Some((column, row)) = &last {
            // `'Sheet name'!$A$1:$J$1001`, a quote in the name doubled.
            let quoted = name.replace('\'', "''");
            write!(
                self.xml,
                r#"<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'{quoted}'!$A$1:${column}${row}</definedName></definedNames>"#
            )?;
        }
        self.xml.extend_from_slice(br#"<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>"#);
        self.zip.start_file("xl/workbook.xml", options()).map_err(zip_error)?;
        self.zip.write_all(&self.xml)?;
        Ok(self.zip.finish().map_err(zip_error)?.into_inner())
    }
}

/// Characters (UTF-16 code units) a cell holds: Excel's limit.
const CELL_CHARACTERS: usize = 32_767;

/// `text`, cut to what a cell holds (at a character boundary).
fn within_cell(text: &str) -> &str {
    // A UTF-8 string has at least as many bytes as UTF-16 units: most need no counting.
    if text.len() <= CELL_CHARACTERS {
        return text;
    }
    let mut units = 0;
    for (at, c) in text.char_indices() {
        units += c.len_utf16();
        if units > CELL_CHARACTERS {
            return &text[..at];
        }
    }
    text
}

/// The width Excel stores for a column `width` characters wide (Calibri 11: 7-pixel digits
/// and 5 pixels of padding), as Excel itself writes it.
fn stored_width(width: f64) -> f64 {
    if width <= 0.0 {
        return 0.0;
    }
    ((width * 7.0 + 5.0) / 7.0 * 256.0).floor() / 256.0
}

/// `A`, `B`, … `Z`, `AA`, … for the zero-based column `index`.
fn column_letters(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        let rest = (n - 1) % 26;
        letters.push(b'A' + rest as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// Writes `n` right-aligned into `digits`; returns how many digits it took.
fn decimal(mut n: u64, digits: &mut [u8; 10]) -> usize {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            return digits.len() - at;
        }
    }
}

/// Excel's serial number of the second `ms` falls in: days since 30 December 1899 (right for
/// every date from 1 March 1900), the time as the fraction of the day to ten decimals. False,
/// with nothing written, for a date Excel does not have.
fn serial(xml: &mut Vec<u8>, ms: i64) -> bool {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400) + 25_569;
    // 61 is 1 March 1900; 2,958,465 is 31 December 9999.
    if !(61..=2_958_465).contains(&days) {
        return false;
    }
    let mut digits = [0; 10];
    let len = decimal(days as u64, &mut digits);
    xml.extend_from_slice(&digits[10 - len..]);
    let second = seconds.rem_euclid(86_400) as u64;
    if second > 0 {
        // Rounded to ten places (8.64 µs), so every second reads back as itself.
        let fraction = (second * 10_000_000_000 + 43_200) / 86_400;
        let mut places = [b'0'; 10];
        decimal(fraction, &mut places);
        let end = places.len() - places.iter().rev().take_while(|d| **d == b'0').count();
        xml.push(b'.');
        xml.extend_from_slice(&places[..end]);
    }
    true
}

/// Bytes that need more than copying: XML's `&<>"`, control characters, `_` (which may start
/// what reads as `_xHHHH_`) and 0xEF (which starts U+FFFE and U+FFFF, not allowed in XML).
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b != b'\t' as usize && b != b'\n' as usize;
        b += 1;
    }
    table[b'&' as usize] = true;
    table[b'"' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'_' as usize] = true;
    table[0xEF] = true;
    table
};

/// Appends `text` as the content of an XML element or attribute in an ST_Xstring.
fn escape(xml: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if !SPECIAL[b as usize] {
            at += 1;
            continue;
        }
        let (replacement, skip): (&[u8], usize) = match b {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            b'"' => (b"&quot;", 1),
            b'_' if reads_as_escape(&bytes[at..]) => (b"_x005F_", 1),
            0xEF if bytes[at..].starts_with(&[0xEF, 0xBF, 0xBE]) => (b"_xFFFE_", 3),
            0xEF if bytes[at..].starts_with(&[0xEF, 0xBF, 0xBF]) => (b"_xFFFF_", 3),
            0..0x20 => {
                xml.extend_from_slice(&bytes[copied..at]);
                write!(xml, "_x{b:04X}_").ok();
                at += 1;
                copied = at;
                continue;
            }
            _ => {
                at += 1;
                continue;
            }
        };
        xml.extend_from_slice(&bytes[copied..at]);
        xml.extend_from_slice(replacement);
        at += skip;
        copied = at;
    }
    xml.extend_from_slice(&bytes[copied..]);
}

/// Whether `text` starts with `_xHHHH_`.
fn reads_as_escape(text: &[u8]) -> bool {
    text.len() >= 7 && text[1] == b'x' && text[2..6].iter().all(u8::is_ascii_hexdigit) && text[6] == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut xml = Vec::new();
        escape(&mut xml, text);
        String::from_utf8(xml).expect("UTF-8")
    }

    #[test]
    fn text_is_escaped_for_xml_and_for_the_xhhhh_notation() {
        assert_eq!(escaped("Acme & <Sons> café"), "Acme &amp; &lt;Sons&gt; café");
        assert_eq!(escaped("a_x0041_b"), "a_x005F_x0041_b", "a literal escape is not read as one");
        assert_eq!(escaped("snake_case_x12"), "snake_case_x12");
        assert_eq!(escaped("bell\u{7}tab\tline\ncr\r"), "bell_x0007_tab\tline\ncr_x000D_");
        assert_eq!(escaped("\u{fffe}\u{ffff}\u{feff}"), "_xFFFE__xFFFF_\u{feff}");
    }

    #[test]
    fn columns_are_lettered_as_excel_letters_them() {
        let letters: Vec<String> =
            [0, 1, 25, 26, 27, 51, 52, 701, 702, 16_383].into_iter().map(column_letters).collect();
        assert_eq!(letters, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA", "XFD"]);
    }

    fn serial_of(ms: i64) -> Option<String> {
        let mut xml = Vec::new();
        serial(&mut xml, ms).then(|| String::from_utf8(xml).expect("UTF-8"))
    }

    #[test]
    fn dates_are_excel_serials_to_the_second() {
        assert_eq!(serial_of(0).as_deref(), Some("25569"), "1970-01-01 00:00");
        // 2024-02-29 12:00:00 UTC, 18:00:00 and 00:00:01.
        assert_eq!(serial_of(1_709_208_000_000).as_deref(), Some("45351.5"));
        assert_eq!(serial_of(1_709_229_600_000).as_deref(), Some("45351.75"));
        assert_eq!(serial_of(1_709_164_801_999).as_deref(), Some("45351.0000115741"));
        // 1900-03-01 is the first date Excel counts right; 9999-12-31 23:59:59 its last.
        assert_eq!(serial_of(-2_203_891_200_000).as_deref(), Some("61"));
        assert_eq!(serial_of(-2_203_891_200_001), None);
        assert_eq!(serial_of(253_402_300_799_000).as_deref(), Some("2958465.9999884259"));
        assert_eq!(serial_of(253_402_300_800_000), None);
    }

    #[test]
    fn a_cell_holds_what_excel_holds() {
        let fits = "a".repeat(CELL_CHARACTERS);
        assert_eq!(within_cell(&fits), fits);
        assert_eq!(within_cell(&format!("{fits}b")), fits);
        // 🚀 is two UTF-16 units: 16,383 of them and an `a` fit, the next one does not.
        let rockets = format!("{}a🚀", "🚀".repeat(16_383));
        assert_eq!(within_cell(&rockets).chars().count(), 16_384);
        assert!(within_cell(&rockets).ends_with('a'));
    }

    #[test]
    fn a_sheet_reads_back_from_its_zip() {
        let columns = [Column { label: "Name", width: 10.0 }, Column { label: "When", width: 18.0 }];
        let mut sheet = Sheet::new(Vec::new(), "It's a sheet", &columns).expect("start");
        sheet.text("Acme & Co");
        assert!(sheet.date(1_709_208_000_000));
        sheet.end_row().expect("row");
        sheet.text("");
        assert!(!sheet.date(-2_208_988_800_000), "1900-01-01 is not an Excel date we write");
        sheet.text("1900-01-01 00:00:00");
        // A row left open is closed by the end of the file.
        let bytes = sheet.finish().expect("finish");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
        let mut part = |name: &str| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut zip.by_name(name).expect(name), &mut text).expect("read");
            text
        };
        let sheet = part("xl/worksheets/sheet1.xml");
        assert!(sheet.contains(r#"<row r="2"><c r="A2" t="inlineStr"><is><t>Acme &amp; Co</t></is></c><c r="B2" s="2"><v>45351.5</v></c></row>"#), "{sheet}");
        assert!(sheet.contains(r#"<row r="3"><c r="B3" t="inlineStr"><is><t>1900-01-01 00:00:00</t></is></c></row></sheetData><autoFilter ref="A1:B3"/>"#), "{sheet}");
        let workbook = part("xl/workbook.xml");
        assert!(workbook.contains(r#"<sheet name="It's a sheet" sheetId="1" r:id="rId1"/>"#), "{workbook}");
        assert!(workbook.contains("'It''s a sheet'!$A$1:$B$3</definedName>"), "{workbook}");
        for part_name in ["[Content_Types].xml", "_rels/.rels", "xl/_rels/workbook.xml.rels", "xl/styles.xml"] {
            assert!(part(part_name).starts_with(XML_HEAD), "{part_name}");
        }
    }

    #[test]
    fn widths_are_stored_as_excel_stores_them() {
        assert_eq!(stored_width(16.0), 16.7109375);
        assert_eq!(stored_width(38.0), 38.7109375);
    }
}
