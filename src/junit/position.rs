//! A `BufRead` wrapper that knows the line and column of every byte it hands out.
//!
//! quick-xml reports errors as byte offsets; users need line:column. Keeping a table of
//! newline offsets would cost memory proportional to the file, so instead the wrapper
//! counts lines as bytes are consumed and, while quick-xml parses one event, keeps a copy
//! of that event's bytes: an error inside the event is then resolved exactly by counting
//! from the event's start. Everything outside events (text, `system-out`, failure bodies)
//! goes through `skip`, which resolves its own positions from the counters.
//!
//! It also enforces the size limit on streams whose length is not known up front, and refuses
//! the characters XML 1.0 forbids (issue 11): a raw control byte other than tab, LF and CR, or
//! a character reference to one (`&#1;`, `&#x1B;`, `&#0;`). The bytes are scanned once, as they
//! come; the stream ends just before the offending character, and the next read fails, so the
//! error is located at it. References are looked for everywhere, also in CDATA and comments
//! (where `&#1;` is literal text): a report that quotes one there is refused too, which no
//! JUnit writer does.

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

/// A character XML 1.0 does not allow, and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Forbidden {
    pub offset: u64,
    /// The character's code point (for a reference, the one it names; above U+10FFFF when
    /// the reference names no character at all).
    pub code: u32,
    pub reference: bool,
}

/// Whether XML 1.0 allows the character `code` (production `Char`).
fn xml_char(code: u32) -> bool {
    matches!(code, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
}

/// Where the scan for character references stands, carried across buffers.
#[derive(Debug, Clone, Copy, Default)]
enum RefScan {
    #[default]
    Idle,
    /// After `&` at `start`.
    Amp { start: u64 },
    /// After `&#`.
    Hash { start: u64 },
    /// Inside `&#123` or `&#x1F` (`hex`), `digits` read so far.
    Digits {
        start: u64,
        hex: bool,
        value: u32,
        digits: u32,
    },
}

impl RefScan {
    /// Feed the byte at `offset`; a complete reference to a forbidden character is returned.
    fn feed(&mut self, b: u8, offset: u64) -> Option<Forbidden> {
        let (next, found) = match (*self, b) {
            (_, b'&') => (RefScan::Amp { start: offset }, None),
            (RefScan::Amp { start }, b'#') => (RefScan::Hash { start }, None),
            (RefScan::Hash { start }, b'x' | b'X') => (
                RefScan::Digits {
                    start,
                    hex: true,
                    value: 0,
                    digits: 0,
                },
                None,
            ),
            (RefScan::Hash { start }, b'0'..=b'9') => (
                RefScan::Digits {
                    start,
                    hex: false,
                    value: u32::from(b - b'0'),
                    digits: 1,
                },
                None,
            ),
            (
                RefScan::Digits {
                    start,
                    value,
                    digits,
                    ..
                },
                b';',
            ) if digits > 0 => {
                let found = (!xml_char(value)).then_some(Forbidden {
                    offset: start,
                    code: value,
                    reference: true,
                });
                (RefScan::Idle, found)
            }
            (
                RefScan::Digits {
                    start,
                    hex,
                    value,
                    digits,
                },
                b,
            ) => {
                let digit = if hex {
                    (b as char).to_digit(16)
                } else {
                    (b as char).to_digit(10)
                };
                match digit {
                    Some(d) => (
                        RefScan::Digits {
                            start,
                            hex,
                            // Saturates above any code point: still not a character.
                            value: value
                                .saturating_mul(if hex { 16 } else { 10 })
                                .saturating_add(d)
                                .min(0x11_0000),
                            digits: digits + 1,
                        },
                        None,
                    ),
                    None => (RefScan::Idle, None),
                }
            }
            _ => (RefScan::Idle, None),
        };
        *self = next;
        found
    }
}

pub(super) struct Tracked<R> {
    inner: R,
    /// Bytes up to this offset were scanned for forbidden characters.
    scanned: u64,
    refs: RefScan,
    forbidden: Option<Forbidden>,
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
            scanned: 0,
            refs: RefScan::Idle,
            forbidden: None,
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

    /// The first character XML 1.0 forbids, once the stream reached it (reads fail there).
    pub fn forbidden(&self) -> Option<Forbidden> {
        self.forbidden.filter(|f| f.offset <= self.pos)
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
        let (pos, scanned, mut refs) = (self.pos, self.scanned, self.refs);
        let (len, found) = {
            let available = self.inner.fill_buf()?;
            let mut found = None;
            if self.forbidden.is_none() {
                let from = usize::try_from(scanned.saturating_sub(pos)).unwrap_or(usize::MAX);
                for (i, &b) in available.iter().enumerate().skip(from) {
                    let offset = pos + i as u64;
                    if matches!(b, 0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F) {
                        found = Some(Forbidden {
                            offset,
                            code: u32::from(b),
                            reference: false,
                        });
                        break;
                    }
                    if let Some(f) = refs.feed(b, offset) {
                        found = Some(f);
                        break;
                    }
                }
            }
            (available.len(), found)
        };
        if self.forbidden.is_none() {
            self.refs = refs;
            self.scanned = pos + len as u64;
            self.forbidden = found;
        }
        let mut len = len;
        if let Some(f) = self.forbidden {
            if f.offset <= pos {
                return Err(io::Error::other("a character XML 1.0 does not allow"));
            }
            len = len.min(usize::try_from(f.offset - pos).unwrap_or(usize::MAX));
        }
        if pos.saturating_add(len as u64) > self.limit {
            self.over_limit = true;
            return Err(io::Error::other("report is larger than the size limit"));
        }
        Ok(&self.inner.fill_buf()?[..len])
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
