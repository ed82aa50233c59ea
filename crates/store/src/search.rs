//! Which parts of a substring search the trigram index should look up (#17).
//!
//! Both databases find a search's rows through a trigram index (SQLite's FTS5 `trigram`
//! tokenizer, PostgreSQL's `pg_trgm`), and both look up every trigram of the term: for
//! `org4242.example` that is thirteen lists, seven of which (`org`, `exa`, `ple` …) hold nearly
//! every row — reading them cost 56 ms at 1,000,000 connections on PostgreSQL while the two
//! rarest alone find the 760 candidates in under a millisecond. Neither database keeps how many
//! rows hold a trigram, so Lightbridge samples the table (2,000 rows from fifty evenly spaced
//! places, at most once an hour), counts which trigrams each sampled row holds, and looks up
//! only the term's rarest two; the whole term is then matched exactly on those candidates.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Places the sample is read from, and rows read at each.
pub(crate) const SAMPLE_PLACES: usize = 50;
pub(crate) const SAMPLE_ROWS_AT_EACH: usize = 40;
/// How long a sample stands before the next search takes a new one.
const SAMPLE_LIFE: Duration = Duration::from_secs(3600);
/// Trigrams a search looks up.
const LOOKED_UP: usize = 2;

/// The latest sample of the table's search texts, shared by a store's clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rarity(Arc<Mutex<Option<Arc<Sample>>>>);

#[derive(Debug)]
pub(crate) struct Sample {
    taken_at: Instant,
    /// In how many sampled rows each trigram (three characters) occurs.
    rows_with: HashMap<String, u32>,
}

impl Rarity {
    /// The sample, if one was taken within the hour.
    pub(crate) fn fresh(&self) -> Option<Arc<Sample>> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref().filter(|s| s.taken_at.elapsed() < SAMPLE_LIFE).cloned()
    }

    /// Keeps a new sample from the sampled rows' search texts.
    pub(crate) fn keep(&self, texts: &[String]) -> Arc<Sample> {
        let mut rows_with: HashMap<String, u32> = HashMap::new();
        for text in texts {
            let chars: Vec<char> = text.chars().collect();
            let held: HashSet<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
            for trigram in held {
                *rows_with.entry(trigram).or_default() += 1;
            }
        }
        let sample = Arc::new(Sample { taken_at: Instant::now(), rows_with });
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(sample.clone());
        sample
    }
}

impl Sample {
    /// The term's rarest trigrams to look up (at most two), rarest first; none when the term
    /// has no three letters or digits in a row (the whole term is looked up then). Only
    /// trigrams of letters and digits are offered: `pg_trgm` splits words at anything else.
    pub(crate) fn rarest(&self, term: &str) -> Vec<String> {
        let mut candidates: Vec<(u32, usize, String)> = Vec::new();
        let chars: Vec<char> = term.chars().collect();
        for (at, w) in chars.windows(3).enumerate() {
            if !w.iter().all(|c| c.is_alphanumeric()) {
                continue;
            }
            let trigram: String = w.iter().collect();
            if candidates.iter().any(|(_, _, t)| *t == trigram) {
                continue;
            }
            candidates.push((self.rows_with.get(&trigram).copied().unwrap_or(0), at, trigram));
        }
        candidates.sort();
        candidates.into_iter().take(LOOKED_UP).map(|(_, _, t)| t).collect()
    }
}

/// The statement reading the sample: `SAMPLE_ROWS_AT_EACH` rows from each of the
/// `SAMPLE_PLACES` places (their first `seq` bound in order), the same SQL on both databases.
pub(crate) fn sample_sql() -> String {
    (0..SAMPLE_PLACES)
        .map(|i| {
            format!(
                "SELECT search_text FROM (SELECT search_text FROM connections WHERE seq >= ? ORDER BY seq LIMIT {SAMPLE_ROWS_AT_EACH}) s{i}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Where the sample is read, evenly spaced over the table's `seq` range.
pub(crate) fn sample_places(first: i64, last: i64) -> Vec<i64> {
    let span = (last - first).max(0);
    (0..SAMPLE_PLACES as i64).map(|i| first + span * i / SAMPLE_PLACES as i64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rarest_trigrams_of_letters_and_digits_are_looked_up() {
        let texts: Vec<String> = (0..100).map(|i| format!("org {i:06} inc admin{i}@org{}.example", i % 50)).collect();
        let sample = Rarity::default().keep(&texts);
        // `org`, `exa` … are in every row, `g42` in two; `424` and `242` in none.
        assert_eq!(sample.rarest("org4242.example"), vec!["424".to_string(), "242".to_string()]);
        // No three letters or digits in a row: nothing to choose.
        assert!(sample.rarest("a.b-c").is_empty());
        // Repeated trigrams are offered once.
        assert_eq!(sample.rarest("aaaa"), vec!["aaa".to_string()]);
    }

    #[test]
    fn the_sample_is_read_from_evenly_spaced_places() {
        let places = sample_places(1, 1_000_001);
        assert_eq!((places.len(), places[0], places[1], places[49]), (50, 1, 20_001, 980_001));
        assert_eq!(sample_places(5, 5), vec![5; 50]);
        assert_eq!(sample_sql().matches('?').count(), SAMPLE_PLACES);
    }
}
