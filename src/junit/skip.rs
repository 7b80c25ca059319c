//! Skipping content the reader does not need without buffering it.
//!
//! quick-xml hands out a text or CDATA node as one event, so a 300 MB `system-out` would be
//! held in memory whole. The reader only needs element names and attributes, so it lets
//! quick-xml parse tags and skips everything else here, straight from the input buffer:
//! text between tags, and whole subtrees it does not look into (`system-out`, `system-err`,
//! failure bodies, `properties`, unknown elements). The skipper still tracks nesting,
//! comments, CDATA and quoted attribute values, so a `</system-out>` inside CDATA or an
//! attribute does not end the element, mismatched or missing end tags are errors, and the
//! depth limit holds inside skipped content too. It does not validate skipped text (for
//! example its UTF-8): that text is test output, which the reader never looks at.

use std::io::{self, BufRead};

use quick_xml::reader::Reader;

use super::position::{LineCol, Tracked};

#[derive(Debug)]
pub(super) enum SkipError {
    Io(io::Error),
    /// The input ended inside `open`.
    Eof {
        open: String,
    },
    Mismatch {
        expected: String,
        found: String,
        at: LineCol,
    },
    TooDeep {
        at: LineCol,
    },
    BadMarkup {
        message: String,
        at: LineCol,
    },
    /// Non-whitespace text before or after the root element.
    TextOutsideRoot {
        at: LineCol,
    },
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Consumes text up to the next `<` (or the end of input). Outside the root element the
/// text must be whitespace.
pub(super) fn skip_text<R: BufRead>(
    xml: &mut Reader<Tracked<R>>,
    outside_root: bool,
) -> Result<(), SkipError> {
    let mut stream = xml.stream();
    loop {
        let chunk_at = stream.get_ref().at();
        let chunk = stream.fill_buf().map_err(SkipError::Io)?;
        if chunk.is_empty() {
            return Ok(());
        }
        let end = chunk.iter().position(|&b| b == b'<');
        let text = &chunk[..end.unwrap_or(chunk.len())];
        if outside_root && let Some(bad) = text.iter().position(|&b| !is_ws(b)) {
            let at = chunk_at.advance(&text[..bad]);
            return Err(SkipError::TextOutsideRoot { at });
        }
        let n = text.len();
        stream.consume(n);
        if end.is_some() {
            return Ok(());
        }
    }
}

#[derive(Clone, Copy)]
enum State {
    Text,
    /// After `<`.
    Lt,
    /// After `<!`, `len` bytes of `bang` collected.
    Bang {
        len: usize,
    },
    /// Inside `<!-- -->`; `run` is the number of `-` just seen (at most 2).
    Comment {
        run: usize,
    },
    /// Inside `<![CDATA[ ]]>`; `run` is the number of `]` just seen (at most 2).
    CData {
        run: usize,
    },
    /// Inside `<? ?>`.
    Pi {
        question: bool,
    },
    StartName,
    /// Inside a start tag after its name; `quote` is the open quote byte or 0.
    Tag {
        quote: u8,
        slash: bool,
    },
    EndName,
    /// After an end tag's name, before `>`.
    EndTail,
}

/// Number of `c` bytes ending `bytes`, continuing `carried` when all of `bytes` is `c`.
fn trailing_run(bytes: &[u8], c: u8, carried: usize) -> usize {
    let k = bytes.iter().rev().take_while(|&&b| b == c).count();
    if k == bytes.len() {
        (carried + k).min(2)
    } else {
        k.min(2)
    }
}

/// Consumes everything up to and including the end tag of `outer`, whose start tag was just
/// read. `depth` is the nesting depth of `outer` itself (the root is 1).
pub(super) fn skip_subtree<R: BufRead>(
    xml: &mut Reader<Tracked<R>>,
    outer: &str,
    depth: usize,
    max_depth: usize,
) -> Result<(), SkipError> {
    let mut stream = xml.stream();
    // Elements opened inside `outer` (which is not in the list, to save an allocation per
    // skipped element).
    let mut open: Vec<Vec<u8>> = Vec::new();
    let mut state = State::Text;
    let mut name: Vec<u8> = Vec::new();
    let mut bang = [0u8; 7];
    let mut tag_at = LineCol::START;

    loop {
        let chunk_at = stream.get_ref().at();
        let chunk = stream.fill_buf().map_err(SkipError::Io)?;
        if chunk.is_empty() {
            let open = open.last().map_or(outer.as_bytes(), Vec::as_slice);
            return Err(SkipError::Eof {
                open: String::from_utf8_lossy(open).into_owned(),
            });
        }
        // Position of `chunk[cursor]`, advanced lazily: only tags need one.
        let mut cursor = 0usize;
        let mut cursor_at = chunk_at;
        let mut locate = |i: usize| {
            cursor_at = cursor_at.advance(&chunk[cursor..i]);
            cursor = i;
            cursor_at
        };
        let mut i = 0usize;
        let mut finished_at = None;
        while i < chunk.len() {
            match state {
                State::Text => match chunk[i..].iter().position(|&b| b == b'<') {
                    Some(j) => {
                        i += j;
                        tag_at = locate(i);
                        state = State::Lt;
                        i += 1;
                    }
                    None => i = chunk.len(),
                },
                State::Comment { run } => {
                    let rest = &chunk[i..];
                    match rest.iter().position(|&b| b == b'>') {
                        Some(j) => {
                            if trailing_run(&rest[..j], b'-', run) >= 2 {
                                state = State::Text;
                            } else {
                                state = State::Comment { run: 0 };
                            }
                            i += j + 1;
                        }
                        None => {
                            state = State::Comment {
                                run: trailing_run(rest, b'-', run),
                            };
                            i = chunk.len();
                        }
                    }
                }
                State::CData { run } => {
                    let rest = &chunk[i..];
                    match rest.iter().position(|&b| b == b'>') {
                        Some(j) => {
                            if trailing_run(&rest[..j], b']', run) >= 2 {
                                state = State::Text;
                            } else {
                                state = State::CData { run: 0 };
                            }
                            i += j + 1;
                        }
                        None => {
                            state = State::CData {
                                run: trailing_run(rest, b']', run),
                            };
                            i = chunk.len();
                        }
                    }
                }
                _ => {
                    let b = chunk[i];
                    i += 1;
                    match state {
                        State::Lt => match b {
                            b'!' => state = State::Bang { len: 0 },
                            b'?' => state = State::Pi { question: false },
                            b'/' => {
                                name.clear();
                                state = State::EndName;
                            }
                            b'<' => tag_at = locate(i - 1),
                            // Not the start of any markup: a stray `<` in test output that
                            // its reporter did not escape. Tolerated, since the reader
                            // never looks at that text.
                            _ if !(b.is_ascii_alphabetic()
                                || b == b'_'
                                || b == b':'
                                || b >= 0x80) =>
                            {
                                state = State::Text;
                            }
                            _ => {
                                name.clear();
                                name.push(b);
                                state = State::StartName;
                            }
                        },
                        State::Bang { len } => {
                            bang[len] = b;
                            let seen = &bang[..=len];
                            if seen == b"--" {
                                state = State::Comment { run: 0 };
                            } else if seen == b"[CDATA[" {
                                state = State::CData { run: 0 };
                            } else if b"--".starts_with(seen) || b"[CDATA[".starts_with(seen) {
                                state = State::Bang { len: len + 1 };
                            } else {
                                return Err(SkipError::BadMarkup {
                                    message: "unexpected `<!` markup inside an element".into(),
                                    at: tag_at,
                                });
                            }
                        }
                        State::Pi { question } => {
                            state = if b == b'>' && question {
                                State::Text
                            } else {
                                State::Pi {
                                    question: b == b'?',
                                }
                            };
                        }
                        State::StartName => {
                            if is_ws(b) {
                                state = State::Tag {
                                    quote: 0,
                                    slash: false,
                                };
                            } else if b == b'/' {
                                state = State::Tag {
                                    quote: 0,
                                    slash: true,
                                };
                            } else if b == b'>' {
                                open.push(std::mem::take(&mut name));
                                if depth + open.len() > max_depth {
                                    return Err(SkipError::TooDeep { at: tag_at });
                                }
                                state = State::Text;
                            } else {
                                name.push(b);
                            }
                        }
                        State::Tag { quote, slash } => {
                            if quote != 0 {
                                if b == quote {
                                    state = State::Tag { quote: 0, slash };
                                }
                            } else {
                                match b {
                                    b'"' | b'\'' => {
                                        state = State::Tag {
                                            quote: b,
                                            slash: false,
                                        }
                                    }
                                    b'/' => state = State::Tag { quote, slash: true },
                                    b'>' => {
                                        if !slash {
                                            open.push(std::mem::take(&mut name));
                                            if depth + open.len() > max_depth {
                                                return Err(SkipError::TooDeep { at: tag_at });
                                            }
                                        }
                                        state = State::Text;
                                    }
                                    b'<' => {
                                        return Err(SkipError::BadMarkup {
                                            message: "`<` inside a tag".into(),
                                            at: tag_at,
                                        });
                                    }
                                    _ if is_ws(b) => {}
                                    _ => {
                                        state = State::Tag {
                                            quote,
                                            slash: false,
                                        }
                                    }
                                }
                            }
                        }
                        State::EndName | State::EndTail => {
                            let close = if b == b'>' {
                                true
                            } else if is_ws(b) {
                                state = State::EndTail;
                                false
                            } else if matches!(state, State::EndName) {
                                name.push(b);
                                false
                            } else {
                                return Err(SkipError::BadMarkup {
                                    message: "unexpected text in an end tag".into(),
                                    at: tag_at,
                                });
                            };
                            if close {
                                let popped = open.pop();
                                let closes_outer = popped.is_none();
                                let expected = popped.as_deref().unwrap_or(outer.as_bytes());
                                if expected != name.as_slice() {
                                    return Err(SkipError::Mismatch {
                                        expected: String::from_utf8_lossy(expected).into_owned(),
                                        found: String::from_utf8_lossy(&name).into_owned(),
                                        at: tag_at,
                                    });
                                }
                                if closes_outer {
                                    finished_at = Some(i);
                                    break;
                                }
                                state = State::Text;
                            }
                        }
                        State::Text | State::Comment { .. } | State::CData { .. } => {
                            unreachable!("handled above")
                        }
                    }
                }
            }
        }
        match finished_at {
            Some(n) => {
                stream.consume(n);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                stream.consume(n);
            }
        }
    }
}
