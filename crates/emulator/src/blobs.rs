//! Static resource bodies shared between orgs: a fan-out uploads the same bundle to every org,
//! and an emulator hosting a thousand orgs would otherwise hold a thousand copies of it (and
//! fault in fresh memory for each). A body equal to one of the last few distinct bodies stored is
//! kept as that one; the request buffer it came in is freed at once. Invisible to clients: the
//! bytes are the same.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::body::Bytes;

/// How many distinct recent bodies are remembered.
const RECENT: usize = 4;

#[derive(Debug, Default)]
pub struct Blobs {
    recent: Mutex<VecDeque<Bytes>>,
}

impl Blobs {
    /// `body`, or an equal body stored before (sharing its memory).
    pub fn intern(&self, body: Bytes) -> Bytes {
        if body.len() < 4096 {
            return body; // small bodies cost nothing to keep
        }
        let candidates: Vec<Bytes> = {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.iter().filter(|b| b.len() == body.len()).cloned().collect()
        };
        // Compared outside the lock: concurrent uploads do not wait on each other.
        if let Some(same) = candidates.into_iter().find(|b| b[..] == body[..]) {
            return same;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_front(body.clone());
        recent.truncate(RECENT);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bodies_share_memory_and_different_ones_do_not() {
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
}
