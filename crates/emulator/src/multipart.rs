//! The multipart bodies Salesforce accepts for blob fields: a JSON part with the record's
//! fields, then the blob itself as raw bytes (REST API guide, "Insert or Update Blob Data").
//! Parts are slices of the request body; nothing is copied.

use axum::body::Bytes;
use memchr::memmem;

#[derive(Debug)]
pub struct Part {
    /// The `name` of its `Content-Disposition`.
    pub name: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// The boundary of a `multipart/…; boundary=…` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    content_type
        .split(';')
        .skip(1)
        .find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"'))
        })
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

/// Splits a body into its parts, or says what is wrong with it.
pub fn parts(body: &Bytes, boundary: &str) -> Result<Vec<Part>, &'static str> {
    let opening = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let next = memmem::Finder::new(delimiter.as_bytes());
    // A preamble may come before the first delimiter.
    let first = if body.starts_with(opening.as_bytes()) {
        0
    } else {
        next.find(body).ok_or("the body does not contain its boundary")? + 2
    };
    let mut at = first + opening.len();
    let mut parts = Vec::new();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let line_end = memmem::find(rest, b"\r\n").ok_or("the body ends inside a delimiter")?;
        let headers_start = at + line_end + 2;
        let (headers, data_start) = if body[headers_start..].starts_with(b"\r\n") {
            ("", headers_start + 2)
        } else {
            let end = memmem::find(&body[headers_start..], b"\r\n\r\n").ok_or("a part's headers do not end")?;
            let text = std::str::from_utf8(&body[headers_start..headers_start + end])
                .map_err(|_| "a part's headers are not text")?;
            (text, headers_start + end + 4)
        };
        let len = next.find(&body[data_start..]).ok_or("a part is not closed by the boundary")?;
        let mut part = Part { name: None, content_type: None, data: body.slice(data_start..data_start + len) };
        for line in headers.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else { continue };
            if key.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(value.trim().to_string());
            } else if key.trim().eq_ignore_ascii_case("content-disposition") {
                part.name = value.split(';').skip(1).find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("name").then(|| v.trim().trim_matches('"').to_string())
                });
            }
        }
        parts.push(part);
        at = data_start + len + delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_salesforce_blob_body() {
        let body = Bytes::from_static(
            b"--b1\r\nContent-Disposition: form-data; name=\"entity_staticresource\";\r\nContent-Type: application/json\r\n\r\n{\"Name\":\"A\"}\r\n--b1\r\nContent-Type: application/zip\r\nContent-Disposition: form-data; name=\"Body\"; filename=\"a.zip\"\r\n\r\nPK\x03\x04\r\n--b\r\n\x00\r\n--b1--\r\n",
        );
        let parts = parts(&body, boundary("multipart/form-data; boundary=\"b1\"").expect("boundary")).expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name.as_deref(), Some("entity_staticresource"));
        assert_eq!(parts[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(&parts[0].data[..], b"{\"Name\":\"A\"}");
        assert_eq!(parts[1].name.as_deref(), Some("Body"));
        // A near-boundary inside the data stays data.
        assert_eq!(&parts[1].data[..], b"PK\x03\x04\r\n--b\r\n\x00");
    }

    #[test]
    fn refuses_what_is_not_multipart() {
        let body = Bytes::from_static(b"--b1\r\nContent-Type: text/plain\r\n\r\nno end");
        assert!(parts(&body, "b1").is_err());
        assert!(parts(&Bytes::from_static(b"{}"), "b1").is_err());
        assert_eq!(boundary("multipart/form-data"), None);
    }
}
