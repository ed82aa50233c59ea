//! How the process allocates.

/// Lets glibc's allocator keep at most two arenas instead of up to eight per core.
///
/// glibc gives a thread that finds the arenas busy an arena of its own and keeps what is freed
/// in each one for reuse. Lightbridge allocates on tokio's workers, its blocking threads and one
/// thread per SQLite connection, so a fan-out to 10,000 orgs held 340 MB resident for a heap that
/// never passed 120 MB; with two arenas it held 148 MB at the same wall time (issue #17,
/// `docs/benchmarks.md`). An operator's own `MALLOC_ARENA_MAX` (read by glibc before `main`)
/// wins. Call it first thing in `main`, before any thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets a tuning parameter of the allocator; glibc documents
        // M_ARENA_MAX as settable at any time, and nothing else runs yet.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
