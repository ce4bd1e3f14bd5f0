//! The order journal of a job with several sources.
//!
//! With one source, the order of records is the stream's, and a replay after a crash sees
//! the records in the order the crashed run saw them: the operator, being deterministic,
//! gives every output the same id *and the same content*, and the output stream drops the
//! copies (C3). With several sources the interleaving is decided at run time (whichever
//! stream delivers first), so a replay could interleave differently, and an output
//! published before the crash would disagree with the state the replay builds.
//!
//! So the coordinator writes down each decision before acting on it: before routing a
//! chunk, it appends `{"source": name, "to": last position}` to
//! `<state dir>-journal.jsonl`. After a restart, the entries beyond the restored
//! checkpoint's positions are replayed first, in order, chunk boundary for chunk boundary;
//! then the job reads freely again, journaling as before. Each completed checkpoint adds a
//! marker with its positions; the journal is rewritten without what the oldest
//! checkpoint a restart may fall back on already covers.
//!
//! Entries are written (not fsynced) before the chunk is routed: they survive the process
//! dying at any instant, which is what the output stream's own durability (the NATS server
//! syncs its files on an interval) protects too. A torn last line was never acted on and
//! is ignored.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::JobError;
use super::readers::{Next, Readers};
use crate::io::SourceRecord;

/// Size above which the journal is rewritten without what checkpoints cover.
const COMPACT_BYTES: u64 = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Entry {
    /// Records of `source` up to position `to` were routed next.
    Chunk { source: String, to: u64 },
    /// Checkpoint `checkpoint` completed with `positions`; `retained`: a copy was kept.
    Checkpoint {
        checkpoint: u64,
        retained: bool,
        positions: BTreeMap<String, u64>,
    },
}

/// The journal file.
struct Journal {
    path: PathBuf,
    file: std::fs::File,
    /// Retained copies kept (for compaction).
    keep: u32,
}

fn journal_err(path: &Path, e: impl std::fmt::Display) -> JobError {
    JobError::Worker(format!(
        "order journal {}: {e}; check free space and permissions there",
        path.display()
    ))
}

impl Journal {
    /// Opens the journal; returns the chunks to replay after `restored` (the positions
    /// of the checkpoint the job resumes from; `None`: no checkpoint yet).
    fn open(
        path: &Path,
        restored: Option<&BTreeMap<String, u64>>,
        keep: u32,
    ) -> Result<(Journal, VecDeque<(String, u64)>), JobError> {
        // Without a checkpoint (a run that died before its first one), every entry is
        // replayed: that run's outputs may be in the output stream already.
        let none = BTreeMap::new();
        let positions = restored.unwrap_or(&none);
        let mut replay = VecDeque::new();
        let (entries, valid) = read_valid(path)?;
        for e in entries {
            if let Entry::Chunk { source, to } = e
                && positions.get(&source).is_none_or(|p| to > *p)
            {
                replay.push_back((source, to));
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| journal_err(path, e))?;
        // Drop a torn last line, so that what follows is appended after whole lines.
        if file.metadata().map_err(|e| journal_err(path, e))?.len() > valid {
            file.set_len(valid).map_err(|e| journal_err(path, e))?;
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
                keep,
            },
            replay,
        ))
    }

    fn append(&mut self, e: &Entry) -> Result<(), JobError> {
        let mut line = serde_json::to_vec(e).map_err(|e| journal_err(&self.path, e))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| journal_err(&self.path, e))
    }

    /// Rewrites the journal without the chunks the oldest restorable checkpoint covers.
    fn compact(&mut self) -> Result<(), JobError> {
        let entries = read_entries(&self.path)?;
        let marks: Vec<(&BTreeMap<String, u64>, bool)> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Checkpoint {
                    positions,
                    retained,
                    ..
                } => Some((positions, *retained)),
                Entry::Chunk { .. } => None,
            })
            .collect();
        let retained: Vec<&BTreeMap<String, u64>> =
            marks.iter().filter(|m| m.1).map(|m| m.0).collect();
        // The oldest checkpoint a restart may come back to: the oldest retained copy
        // still kept, else the newest checkpoint.
        let floor = if self.keep > 0 && !retained.is_empty() {
            retained[retained.len().saturating_sub(self.keep as usize)]
        } else {
            match marks.last() {
                Some(m) => m.0,
                None => return Ok(()),
            }
        };
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| journal_err(&tmp, e))?);
        for e in &entries {
            let keep = match e {
                Entry::Chunk { source, to } => floor.get(source).is_none_or(|p| to > p),
                Entry::Checkpoint { positions, .. } => positions
                    .iter()
                    .all(|(s, p)| floor.get(s).is_none_or(|f| p >= f)),
            };
            if keep {
                serde_json::to_writer(&mut out, e).map_err(|e| journal_err(&tmp, e))?;
                out.write_all(b"\n").map_err(|e| journal_err(&tmp, e))?;
            }
        }
        out.flush().map_err(|e| journal_err(&tmp, e))?;
        drop(out);
        std::fs::rename(&tmp, &self.path).map_err(|e| journal_err(&self.path, e))?;
        self.file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| journal_err(&self.path, e))?;
        Ok(())
    }
}

fn read_entries(path: &Path) -> Result<Vec<Entry>, JobError> {
    Ok(read_valid(path)?.0)
}

/// The entries, and the length of the file up to the end of the last whole one.
fn read_valid(path: &Path) -> Result<(Vec<Entry>, u64), JobError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(journal_err(path, e)),
    };
    let mut entries = Vec::new();
    let mut valid = 0u64;
    let mut reader = std::io::BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| journal_err(path, e))?;
        // Only the last line can be torn (a write cut short); it was never acted on.
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        match serde_json::from_str(&line) {
            Ok(e) => entries.push(e),
            Err(_) => break,
        }
        valid += n as u64;
    }
    Ok((entries, valid))
}

/// The order in which the coordinator takes the chunks of its sources: as they arrive,
/// journaled, after replaying what a crashed run had decided (see the module docs). With
/// one source there is nothing to decide and no journal.
pub struct Order {
    journal: Option<Journal>,
    names: Vec<String>,
    replay: VecDeque<(usize, u64)>,
    /// Records read but not yet routed, per source (only while replaying).
    pending: Vec<VecDeque<SourceRecord>>,
}

impl Order {
    /// The order for `names` (the sources, by index), resuming from `restored`.
    pub fn new(
        names: &[std::sync::Arc<str>],
        path: &Path,
        restored: Option<&BTreeMap<String, u64>>,
        keep: u32,
    ) -> Result<Order, JobError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let (journal, replay) = if names.len() > 1 {
            let (j, replay) = Journal::open(path, restored, keep)?;
            let replay: VecDeque<(usize, u64)> = replay
                .into_iter()
                .filter_map(|(s, to)| names.iter().position(|n| *n == s).map(|i| (i, to)))
                .collect();
            if !replay.is_empty() {
                tracing::info!(
                    chunks = replay.len(),
                    "replaying the order of the sources' records from the journal"
                );
            }
            (Some(j), replay)
        } else {
            (None, VecDeque::new())
        };
        Ok(Order {
            pending: names.iter().map(|_| VecDeque::new()).collect(),
            journal,
            names,
            replay,
        })
    }

    /// The next records to route, all of one source, in order.
    pub fn next(&mut self, readers: &mut Readers, wait: Duration) -> Result<Next, JobError> {
        loop {
            if let Some(&(s, to)) = self.replay.front() {
                let mut out = Vec::new();
                while let Some(r) = self.pending[s].front() {
                    if r.position > to {
                        break;
                    }
                    if let Some(r) = self.pending[s].pop_front() {
                        out.push(r);
                    }
                }
                if out.last().is_some_and(|r| r.position == to)
                    || self.pending[s].front().is_some_and(|r| r.position > to)
                {
                    self.replay.pop_front();
                }
                if !out.is_empty() {
                    return Ok(Next::Records(s, out));
                }
                if self.replay.front() != Some(&(s, to)) {
                    continue;
                }
                match readers.next(wait)? {
                    Next::Records(from, r) => self.pending[from].extend(r),
                    Next::Idle => return Ok(Next::Idle),
                    Next::Exhausted => {
                        tracing::warn!(
                            source = %self.names[s],
                            position = to,
                            "the journal names records the source no longer gives; reading on in arrival order"
                        );
                        self.replay.clear();
                    }
                }
                continue;
            }
            // Free order: what was buffered during the replay first, then as it arrives.
            let (s, records) = match self.pending.iter().position(|p| !p.is_empty()) {
                Some(s) => (s, self.pending[s].drain(..).collect::<Vec<_>>()),
                None => match readers.next(wait)? {
                    Next::Records(s, r) => (s, r),
                    other => return Ok(other),
                },
            };
            if let (Some(j), Some(last)) = (self.journal.as_mut(), records.last()) {
                j.append(&Entry::Chunk {
                    source: self.names[s].clone(),
                    to: last.position,
                })?;
            }
            return Ok(Next::Records(s, records));
        }
    }

    /// Notes a completed checkpoint, and compacts the journal when it has grown.
    pub fn committed(
        &mut self,
        id: u64,
        retained: bool,
        positions: &BTreeMap<String, u64>,
    ) -> Result<(), JobError> {
        let Some(j) = self.journal.as_mut() else {
            return Ok(());
        };
        j.append(&Entry::Checkpoint {
            checkpoint: id,
            retained,
            positions: positions.clone(),
        })?;
        let size = j.file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > COMPACT_BYTES {
            j.compact()?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chunk(source: &str, to: u64) -> Entry {
        Entry::Chunk {
            source: source.into(),
            to,
        }
    }

    fn mark(id: u64, retained: bool, a: u64, b: u64) -> Entry {
        Entry::Checkpoint {
            checkpoint: id,
            retained,
            positions: [("a".to_string(), a), ("b".to_string(), b)].into(),
        }
    }

    #[test]
    fn replays_what_follows_the_checkpoint_and_compacts_to_the_oldest_kept_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state-journal.jsonl");
        let (mut j, replay) = Journal::open(&path, None, 1).unwrap();
        assert!(replay.is_empty());
        for e in [
            chunk("a", 10),
            chunk("b", 5),
            mark(1, true, 10, 5),
            chunk("a", 20),
            chunk("b", 9),
            mark(2, false, 20, 9),
            chunk("b", 12),
        ] {
            j.append(&e).unwrap();
        }
        // A torn last line was never acted on.
        j.file.write_all(b"{\"source\":\"a\",\"t").unwrap();
        let restored: BTreeMap<String, u64> = [("a".into(), 10), ("b".into(), 5)].into();
        let (_, replay) = Journal::open(&path, Some(&restored), 1).unwrap();
        assert_eq!(
            replay,
            VecDeque::from([("a".into(), 20), ("b".into(), 9), ("b".into(), 12)])
        );
        let (mut j, replay) = Journal::open(&path, None, 1).unwrap();
        assert_eq!(replay.len(), 5, "no checkpoint: everything is replayed");
        j.append(&chunk("a", 25)).unwrap();
        let (_, replay) = Journal::open(&path, Some(&restored), 1).unwrap();
        assert_eq!(replay.len(), 4, "appended after the torn line was dropped");

        // One retained copy kept (checkpoint 1): what it covers goes, the rest stays.
        let (mut j, _) = Journal::open(&path, Some(&restored), 1).unwrap();
        j.compact().unwrap();
        let left = read_entries(&path).unwrap();
        assert!(
            left.iter()
                .all(|e| !matches!(e, Entry::Chunk { to, .. } if *to <= 10 && *to != 9)),
            "{left:?}"
        );
        assert_eq!(left.len(), 6, "{left:?}");
        // No copies kept: the newest checkpoint is the floor.
        let (mut j, _) = Journal::open(&path, Some(&restored), 0).unwrap();
        j.compact().unwrap();
        let left = read_entries(&path).unwrap();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(matches!(&left[1], Entry::Chunk { to: 12, .. }), "{left:?}");
    }
}
