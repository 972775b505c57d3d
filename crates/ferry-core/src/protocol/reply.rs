//! Reply formatting into a fixed buffer, without `core::fmt`.
//!
//! A reply is `code SP text CRLF`; a multi-line reply is `code-text CRLF`,
//! lines, then `code SP text CRLF` (RFC 959 4.2). [`ReplyBuf`] appends pieces
//! and never panics: when the buffer is full, further bytes are dropped and
//! [`ReplyBuf::overflowed`] says so (callers size buffers so it does not happen).

/// A fixed-capacity output buffer for replies, flushed by the caller.
#[derive(Debug)]
pub struct ReplyBuf<const N: usize> {
    buf: [u8; N],
    start: usize,
    len: usize,
    overflow: bool,
}

impl<const N: usize> Default for ReplyBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ReplyBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self { buf: [0; N], start: 0, len: 0, overflow: false }
    }
    /// Bytes not yet sent.
    pub fn pending(&self) -> &[u8] {
        todo!()
    }
    /// Marks `n` pending bytes as sent.
    pub fn advance(&mut self, n: usize) {
        let _ = n;
        todo!()
    }
    /// True when nothing is waiting to be sent.
    pub fn is_empty(&self) -> bool {
        todo!()
    }
    /// Free bytes left.
    pub fn remaining(&self) -> usize {
        todo!()
    }
    /// Drops all pending bytes.
    pub fn clear(&mut self) {
        todo!()
    }
    /// True if bytes were dropped because the buffer was full (reset by `clear`).
    pub fn overflowed(&self) -> bool {
        todo!()
    }
    /// Appends raw bytes (compacting already-sent bytes out first if needed).
    pub fn push(&mut self, bytes: &[u8]) {
        let _ = bytes;
        todo!()
    }
    /// Appends a decimal number.
    pub fn push_u64(&mut self, n: u64) {
        let _ = n;
        todo!()
    }
    /// Appends `code SP text CRLF` (a complete single-line reply).
    pub fn reply(&mut self, code: u16, text: &[u8]) {
        let _ = (code, text);
        todo!()
    }
    /// Appends `code SP` (or `code-` if `more`): start of a reply whose text
    /// the caller pushes, ending with [`ReplyBuf::end_line`].
    pub fn start(&mut self, code: u16, more: bool) {
        let _ = (code, more);
        todo!()
    }
    /// Appends CR LF.
    pub fn end_line(&mut self) {
        todo!()
    }
    /// Appends a path in double quotes with each `"` doubled (RFC 959
    /// appendix II, as in `257 "/a ""b"""`).
    pub fn push_quoted(&mut self, path: &[u8]) {
        let _ = path;
        todo!()
    }
}
