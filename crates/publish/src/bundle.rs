//! Deterministic bundles: entries sorted by path, fixed timestamps and permissions, one
//! compression level, and content that does not compress stored as it is (decided from the
//! content alone) — the same files always give the same bytes and the same SHA-256.

use std::io::{Read, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;

/// Limits a bundle must keep (product.md §4, salesforce-api.md §5.4).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A static resource is at most 5 MB (5,242,880 bytes).
    pub max_bundle_bytes: u64,
    /// Uncompressed content of an uploaded ZIP, all entries together.
    pub max_expanded_bytes: u64,
    /// Expanded size over compressed size of one uploaded entry (zip bombs compress ~1000:1).
    pub max_ratio: u64,
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bundle_bytes: 5 * 1024 * 1024,
            max_expanded_bytes: 100 * 1024 * 1024,
            max_ratio: 200,
            max_files: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("the bundle is {size} bytes; a static resource holds at most {limit} bytes (5 MB)")]
    TooLarge { size: u64, limit: u64 },
    #[error("{path:?} leaves the bundle's folder (absolute paths and `..` are refused)")]
    Escapes { path: String },
    #[error("{path:?} is a link; bundles hold plain files only")]
    Link { path: String },
    #[error("{path:?} appears twice in the ZIP")]
    Duplicate { path: String },
    #[error(
        "the ZIP expands past {limit} bytes (or {ratio}:1 for one entry, {path:?}): refused as a possible zip bomb"
    )]
    Bomb { path: String, limit: u64, ratio: u64 },
    #[error("the bundle has more than {limit} files")]
    TooManyFiles { limit: usize },
    #[error("the bundle is empty: there are no files to publish")]
    Empty,
    #[error("not a ZIP file: {0}")]
    NotZip(String),
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
}

/// One ZIP, ready to be a static resource's body.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    bytes: Vec<u8>,
    sha256: String,
    files: Vec<String>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("bytes", &self.bytes.len())
            .field("sha256", &self.sha256)
            .field("files", &self.files.len())
            .finish()
    }
}

/// A relative path with `/` separators, or why it is refused.
fn clean_path(raw: &str) -> Result<String, BundleError> {
    let escapes = || BundleError::Escapes { path: raw.to_string() };
    let unified = raw.replace('\\', "/");
    if unified.starts_with('/') || unified.contains(':') {
        return Err(escapes());
    }
    let mut parts = Vec::new();
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(escapes()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(escapes());
    }
    Ok(parts.join("/"))
}

impl Bundle {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Lower-case hex SHA-256 of the bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// The paths inside, sorted.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// A bundle Lightbridge built and stored earlier (its bytes are trusted; the hash is
    /// computed again).
    pub fn stored(bytes: Vec<u8>) -> Bundle {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Bundle { bytes, sha256, files: Vec::new() }
    }

    /// Builds the bundle from every file under `dir` (links refused).
    pub fn from_dir(dir: &Path, limits: Limits) -> Result<Bundle, BundleError> {
        let mut files = Vec::new();
        collect(dir, dir, &mut files, limits)?;
        Self::build(files, limits)
    }

    /// Rebuilds an uploaded ZIP deterministically, refusing escaping paths, links, duplicate
    /// entries and zip bombs.
    pub fn from_zip(bytes: &[u8], limits: Limits) -> Result<Bundle, BundleError> {
        let mut archive =
            zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| BundleError::NotZip(e.to_string()))?;
        if archive.len() > limits.max_files {
            return Err(BundleError::TooManyFiles { limit: limits.max_files });
        }
        // The zip crate keeps one entry per name, so a second entry of a name would vanish
        // silently: read the names from the central directory itself.
        let mut seen = std::collections::HashSet::new();
        for raw in central_directory_names(bytes) {
            if !raw.ends_with('/') && !seen.insert(clean_path(&raw)?) {
                return Err(BundleError::Duplicate { path: clean_path(&raw)? });
            }
        }
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut expanded: u64 = 0;
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).map_err(|e| BundleError::NotZip(e.to_string()))?;
            let raw = entry.name().map_err(|e| BundleError::NotZip(e.to_string()))?.to_string();
            if entry.is_dir() {
                continue;
            }
            if entry.is_symlink() {
                return Err(BundleError::Link { path: raw });
            }
            let path = clean_path(&raw)?;
            if files.iter().any(|(p, _)| *p == path) {
                return Err(BundleError::Duplicate { path });
            }
            let bomb =
                || BundleError::Bomb { path: path.clone(), limit: limits.max_expanded_bytes, ratio: limits.max_ratio };
            // Never trust the declared size: read at most what the limits allow, plus one byte.
            let allowed = limits
                .max_expanded_bytes
                .saturating_sub(expanded)
                .min(entry.compressed_size().max(1).saturating_mul(limits.max_ratio).max(64 * 1024));
            let mut content = Vec::new();
            (&mut entry).take(allowed + 1).read_to_end(&mut content).map_err(|e| BundleError::NotZip(e.to_string()))?;
            if content.len() as u64 > allowed {
                return Err(bomb());
            }
            expanded += content.len() as u64;
            files.push((path, content));
        }
        Self::build(files, limits)
    }

    fn build(mut files: Vec<(String, Vec<u8>)>, limits: Limits) -> Result<Bundle, BundleError> {
        if files.is_empty() {
            return Err(BundleError::Empty);
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let deflated = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        let stored = deflated.compression_method(zip::CompressionMethod::Stored).compression_level(None);
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let io = |e: &dyn std::fmt::Display| BundleError::Io { path: "bundle".into(), message: e.to_string() };
        for (path, content) in &files {
            let options = if compresses(content) { deflated } else { stored };
            writer.start_file(path.as_str(), options).map_err(|e| io(&e))?;
            writer.write_all(content).map_err(|e| io(&e))?;
        }
        let bytes = writer.finish().map_err(|e| io(&e))?.into_inner();
        if bytes.len() as u64 > limits.max_bundle_bytes {
            return Err(BundleError::TooLarge { size: bytes.len() as u64, limit: limits.max_bundle_bytes });
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Bundle { bytes, sha256, files: files.into_iter().map(|(p, _)| p).collect() })
    }
}

/// Whether deflating `content` is worth it: images, fonts, media and archives are compressed
/// already, and deflating them costs time for nothing. Decided by deflating a sample quickly, so
/// the same content always gets the same choice (and the bundle the same bytes).
fn compresses(content: &[u8]) -> bool {
    const SAMPLE: usize = 64 * 1024;
    if content.len() < 1024 {
        return true;
    }
    let sample = &content[..content.len().min(SAMPLE)];
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::with_capacity(sample.len()), flate2::Compression::fast());
    let compressed = encoder.write_all(sample).and_then(|()| encoder.finish()).map(|v| v.len()).unwrap_or(0);
    compressed < sample.len() - sample.len() / 32
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>, limits: Limits) -> Result<(), BundleError> {
    let io =
        |path: &Path, e: std::io::Error| BundleError::Io { path: path.display().to_string(), message: e.to_string() };
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(|e| io(dir, e))?.collect::<Result<_, _>>().map_err(|e| io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
        if meta.file_type().is_symlink() {
            return Err(BundleError::Link { path: relative });
        }
        if meta.is_dir() {
            collect(root, &path, out, limits)?;
        } else if meta.is_file() {
            if out.len() >= limits.max_files {
                return Err(BundleError::TooManyFiles { limit: limits.max_files });
            }
            if meta.len() > limits.max_expanded_bytes {
                return Err(BundleError::TooLarge { size: meta.len(), limit: limits.max_bundle_bytes });
            }
            out.push((clean_path(&relative)?, std::fs::read(&path).map_err(|e| io(&path, e))?));
        }
    }
    Ok(())
}

/// The entry names in a ZIP's central directory, in order, duplicates included (empty when the
/// directory cannot be read this simply, e.g. ZIP64; the zip crate has checked the archive).
fn central_directory_names(bytes: &[u8]) -> Vec<String> {
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    // The end-of-central-directory record: within the last 22 + 65,535 bytes.
    let tail = bytes.len().saturating_sub(22 + 65_535);
    let Some(end) = (tail..bytes.len().saturating_sub(21)).rev().find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
    else {
        return Vec::new();
    };
    let (Some(count), Some(mut at)) = (u16_at(end + 10), u32_at(end + 16)) else { return Vec::new() };
    let mut names = Vec::new();
    for _ in 0..count {
        if !bytes.get(at..).is_some_and(|b| b.starts_with(b"PK\x01\x02")) {
            return Vec::new();
        }
        let (Some(name_len), Some(extra), Some(comment)) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32)) else {
            return Vec::new();
        };
        let Some(name) = bytes.get(at + 46..at + 46 + name_len) else { return Vec::new() };
        names.push(String::from_utf8_lossy(name).into_owned());
        at += 46 + name_len + extra + comment;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_and_escapes_refused() {
        assert_eq!(clean_path("js/./player.js"), Ok("js/player.js".into()));
        assert_eq!(clean_path("css\\site.css"), Ok("css/site.css".into()));
        for bad in ["../etc/passwd", "/abs", "a/../../b", "C:/x", ""] {
            assert!(clean_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn compressed_content_is_stored_and_text_deflated() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let text = "function play() { return 42; }\n".repeat(5_000).into_bytes();
        assert!(!compresses(&noise));
        assert!(compresses(&text));
        let bundle = Bundle::build(
            vec![("media/clip.bin".into(), noise.clone()), ("player.js".into(), text.clone())],
            Limits::default(),
        )
        .expect("bundle");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bundle.bytes().to_vec())).expect("zip");
        let clip = archive.by_name("media/clip.bin").expect("clip");
        assert_eq!(clip.compression(), zip::CompressionMethod::Stored);
        assert_eq!(clip.size(), noise.len() as u64);
        drop(clip);
        let player = archive.by_name("player.js").expect("player");
        assert_eq!(player.compression(), zip::CompressionMethod::Deflated);
        assert!(player.compressed_size() < text.len() as u64 / 10);
    }
}
