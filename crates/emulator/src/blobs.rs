//! Static resource bodies shared between orgs: a fan-out uploads the same bundle to every org,
//! and an emulator hosting a thousand orgs would otherwise hold a thousand copies of it (and
//! fault in fresh memory for each). A request body equal to one of the last few distinct large
//! bodies received is kept as that one: compared piece by piece as it arrives, it is never
//! gathered into a buffer of its own. Invisible to clients: the bytes are the same.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::RequestExt;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;

use crate::Shared;

/// How many distinct recent bodies of each kind are remembered.
const RECENT: usize = 4;
/// Bodies smaller than this are cheap to keep and not worth comparing.
const SMALL: usize = 4096;

#[derive(Debug, Default)]
pub struct Blobs {
    /// Whole request bodies (a multipart upload's bytes, the `Body` part among them).
    requests: Recent,
    /// Decoded `Body` values (base64 JSON uploads).
    decoded: Recent,
}

#[derive(Debug, Default)]
struct Recent(Mutex<VecDeque<Bytes>>);

impl Recent {
    fn of_len(&self, len: usize) -> Vec<Bytes> {
        let recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().filter(|b| b.len() == len).cloned().collect()
    }

    fn remember(&self, body: &Bytes) {
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_front(body.clone());
        recent.truncate(RECENT);
    }
}

impl Blobs {
    /// A decoded `body`, or an equal one stored before (sharing its memory).
    pub fn intern(&self, body: Bytes) -> Bytes {
        if body.len() < SMALL {
            return body;
        }
        // Compared outside the lock: concurrent uploads do not wait on each other.
        if let Some(same) = self.decoded.of_len(body.len()).into_iter().find(|b| b[..] == body[..]) {
            return same;
        }
        self.decoded.remember(&body);
        body
    }

    /// Reads a request body of `expected` bytes (its `Content-Length`, when given) from `chunks`,
    /// answering an equal body received before instead of a new buffer.
    pub async fn receive<S, E>(&self, expected: Option<usize>, mut chunks: S) -> Result<Bytes, E>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut candidates = match expected {
            Some(len) if len >= SMALL => self.requests.of_len(len),
            _ => Vec::new(),
        };
        // While some candidate matches everything so far, nothing is copied.
        let mut matched = 0;
        let mut own: Option<BytesMut> = None;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if let Some(buffer) = own.as_mut() {
                buffer.extend_from_slice(&chunk);
                continue;
            }
            let end = matched + chunk.len();
            let before = candidates.first().cloned();
            candidates.retain(|c| c.get(matched..end) == Some(&chunk[..]));
            if candidates.is_empty() {
                // The bytes so far are the prefix of the candidate that matched them.
                let mut buffer = BytesMut::with_capacity(expected.unwrap_or(0).max(end));
                if let Some(prefix) = before {
                    buffer.extend_from_slice(&prefix[..matched]);
                }
                buffer.extend_from_slice(&chunk);
                own = Some(buffer);
            } else {
                matched = end;
            }
        }
        let body = match own {
            Some(buffer) => buffer.freeze(),
            None => match candidates.iter().find(|c| c.len() == matched) {
                Some(same) => return Ok(same.clone()),
                // Shorter than it said: what came is a prefix of a candidate.
                None => candidates.first().map(|c| c.slice(..matched)).unwrap_or_default(),
            },
        };
        if body.len() >= SMALL {
            self.requests.remember(&body);
        }
        Ok(body)
    }
}

/// A create or update body, received through [`Blobs::receive`] under the router's body limit.
pub struct Upload(pub Bytes);

impl FromRequest<Shared> for Upload {
    type Rejection = Response;

    async fn from_request(request: Request, shared: &Shared) -> Result<Self, Response> {
        let expected = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let stream = request.into_limited_body().into_data_stream();
        match shared.blobs.receive(expected, stream).await {
            Ok(body) => Ok(Upload(body)),
            Err(e) => {
                Err((StatusCode::PAYLOAD_TOO_LARGE, format!("cannot read the request body: {e}")).into_response())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(body: &[u8], size: usize) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            body.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        futures_util::stream::iter(pieces)
    }

    #[test]
    fn equal_decoded_bodies_share_memory_and_different_ones_do_not() {
        let blobs = Blobs::default();
        let a = blobs.intern(Bytes::from(vec![7u8; 10_000]));
        let b = blobs.intern(Bytes::from(vec![7u8; 10_000]));
        assert_eq!(a.as_ptr(), b.as_ptr(), "the second upload shares the first one's bytes");
        let mut other = vec![7u8; 10_000];
        other[9_999] = 8;
        let c = blobs.intern(Bytes::from(other.clone()));
        assert_ne!(a.as_ptr(), c.as_ptr());
        assert_eq!(&c[..], &other[..]);
        // Older bodies fall out of the pool but stay intact wherever they are stored.
        for i in 0..RECENT as u8 {
            blobs.intern(Bytes::from(vec![i; 10_000]));
        }
        let d = blobs.intern(Bytes::from(vec![7u8; 10_000]));
        assert_ne!(a.as_ptr(), d.as_ptr());
        assert_eq!(a, d);
    }

    #[tokio::test]
    async fn a_request_body_seen_before_is_answered_without_a_new_buffer() {
        let blobs = Blobs::default();
        let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let first = blobs.receive(Some(body.len()), chunks(&body, 8_192)).await.expect("first");
        assert_eq!(&first[..], &body[..]);
        // The same bytes in other chunk sizes: the first buffer again.
        let again = blobs.receive(Some(body.len()), chunks(&body, 3_000)).await.expect("again");
        assert_eq!(again.as_ptr(), first.as_ptr());
        // Differing at the start, in the middle, at the very end: each gets its own exact bytes.
        for at in [0, 50_000, 99_999] {
            let mut other = body.clone();
            other[at] ^= 0xff;
            let got = blobs.receive(Some(other.len()), chunks(&other, 8_192)).await.expect("other");
            assert_eq!(&got[..], &other[..], "differs at {at}");
            assert_ne!(got.as_ptr(), first.as_ptr());
        }
        // A body longer than its stated length, or without one, is read whole all the same.
        let mut longer = body.clone();
        longer.extend_from_slice(b"tail");
        let got = blobs.receive(Some(body.len()), chunks(&longer, 8_192)).await.expect("longer");
        assert_eq!(&got[..], &longer[..]);
        let got = blobs.receive(None, chunks(&body, 8_192)).await.expect("no length");
        assert_eq!(&got[..], &body[..]);
        let got = blobs.receive(Some(body.len()), chunks(&body[..60_000], 8_192)).await.expect("shorter");
        assert_eq!(&got[..], &body[..60_000]);
        let got = blobs.receive(Some(body.len()), chunks(b"", 1)).await.expect("empty");
        assert!(got.is_empty());
        // Small bodies are read as they are.
        let got = blobs.receive(Some(5), chunks(b"hello", 2)).await.expect("small");
        assert_eq!(&got[..], b"hello");
    }
}
