//! A `BufRead` wrapper that knows the line and column of every byte it hands out.
//!
//! quick-xml reports errors as byte offsets; users need line:column. Keeping a table of
//! newline offsets would cost memory proportional to the file, so instead the wrapper
//! counts lines as bytes are consumed and, while quick-xml parses one event, keeps a copy
//! of that event's bytes: an error inside the event is then resolved exactly by counting
//! from the event's start. Everything outside events (text, `system-out`, failure bodies)
//! goes through `skip`, which resolves its own positions from the counters.
//!
//! It also enforces the size limit on streams whose length is not known up front.

use std::io::{self, BufRead, Read};

/// 1-based line and column (in characters) of a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LineCol {
    pub line: u64,
    pub column: u64,
}

impl LineCol {
    pub const START: LineCol = LineCol { line: 1, column: 1 };

    /// The position just after `bytes`, when they start at `self`.
    pub fn advance(mut self, bytes: &[u8]) -> LineCol {
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                self.line += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                self.column = 1 + count_chars(&bytes[last + 1..]);
            }
            None => self.column += count_chars(bytes),
        }
        self
    }
}

/// UTF-8 characters that start in `bytes` (continuation bytes are not counted, so a
/// character split across two buffers is counted once).
fn count_chars(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count() as u64
}

pub(super) struct Tracked<R> {
    inner: R,
    /// Bytes consumed so far.
    pos: u64,
    at: LineCol,
    limit: u64,
    over_limit: bool,
    recording: bool,
    record: Vec<u8>,
    record_pos: u64,
    record_at: LineCol,
}

impl<R: BufRead> Tracked<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        Tracked {
            inner,
            pos: 0,
            at: LineCol::START,
            limit,
            over_limit: false,
            recording: false,
            record: Vec::new(),
            record_pos: 0,
            record_at: LineCol::START,
        }
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn at(&self) -> LineCol {
        self.at
    }

    /// Whether a read failed because the stream went past the size limit.
    pub fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// Start keeping the bytes of the next event (drops the previous event's bytes).
    pub fn start_recording(&mut self) {
        if self.record.capacity() > 1 << 20 {
            self.record = Vec::new();
        } else {
            self.record.clear();
        }
        self.recording = true;
        self.record_pos = self.pos;
        self.record_at = self.at;
    }

    pub fn stop_recording(&mut self) {
        self.recording = false;
    }

    /// Offset and position where the recorded event starts.
    pub fn record_start(&self) -> (u64, LineCol) {
        (self.record_pos, self.record_at)
    }

    pub fn record(&self) -> &[u8] {
        &self.record
    }

    /// Line and column of byte offset `offset`. Exact inside the recorded event and at the
    /// current position; offsets before the event resolve to the event's start.
    pub fn locate(&self, offset: u64) -> LineCol {
        if offset >= self.pos {
            return self.at;
        }
        if offset <= self.record_pos {
            return self.record_at;
        }
        let upto = usize::try_from(offset - self.record_pos)
            .unwrap_or(usize::MAX)
            .min(self.record.len());
        self.record_at.advance(&self.record[..upto])
    }
}

impl<R: BufRead> Read for Tracked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tracked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let available = self.inner.fill_buf()?;
        if self.pos.saturating_add(available.len() as u64) > self.limit {
            self.over_limit = true;
            return Err(io::Error::other("report is larger than the size limit"));
        }
        Ok(available)
    }

    fn consume(&mut self, amt: usize) {
        if amt == 0 {
            return;
        }
        // `consume` is only called for bytes a previous `fill_buf` returned, so they are
        // still in the inner buffer and this does no I/O.
        if let Ok(available) = self.inner.fill_buf() {
            let bytes = &available[..amt.min(available.len())];
            self.at = self.at.advance(bytes);
            if self.recording {
                self.record.extend_from_slice(bytes);
            }
        }
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}
