//! Reply formatting into a fixed buffer, without `core::fmt`.
//!
//! A reply is `code SP text CRLF`; a multi-line reply is `code-text CRLF`,
//! lines, then `code SP text CRLF` (RFC 959 4.2). [`ReplyBuf`] appends pieces
//! and never panics: when the buffer is full, further bytes are dropped and
//! [`ReplyBuf::overflowed`] says so (callers size buffers so it does not happen).
//! The last two bytes are kept for [`ReplyBuf::end_line`], so even a reply
//! that did not fit ends its line and the client stays in step.

/// A fixed-capacity output buffer for replies, flushed by the caller.
/// `N` is at most 65535 (the positions are 16-bit: a session's buffer is
/// that much smaller).
#[derive(Debug)]
pub struct ReplyBuf<const N: usize> {
    buf: [u8; N],
    start: u16,
    len: u16,
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
        const { assert!(N <= u16::MAX as usize, "ReplyBuf holds at most 65535 bytes") };
        Self {
            buf: [0; N],
            start: 0,
            len: 0,
            overflow: false,
        }
    }
    /// `(start, len)`: pending bytes are `buf[start..len]`.
    fn span(&self) -> (usize, usize) {
        (usize::from(self.start), usize::from(self.len))
    }
    /// Sets the pending span; both are at most `N`, which fits 16 bits.
    fn set_span(&mut self, start: usize, len: usize) {
        self.start = start as u16;
        self.len = len as u16;
    }
    /// Bytes not yet sent.
    pub fn pending(&self) -> &[u8] {
        // Invariant: start <= len <= N, so this never falls back.
        let (start, len) = self.span();
        self.buf.get(start..len).unwrap_or(&[])
    }
    /// Marks `n` pending bytes as sent.
    pub fn advance(&mut self, n: usize) {
        let (start, len) = self.span();
        let start = start.saturating_add(n).min(len);
        // All sent: start over at the front so no compaction is needed.
        if start == len {
            self.set_span(0, 0);
        } else {
            self.set_span(start, len);
        }
    }
    /// True when nothing is waiting to be sent.
    pub fn is_empty(&self) -> bool {
        self.start == self.len
    }
    /// Free bytes left.
    pub fn remaining(&self) -> usize {
        N - usize::from(self.len - self.start)
    }
    /// Drops all pending bytes.
    pub fn clear(&mut self) {
        self.set_span(0, 0);
        self.overflow = false;
    }
    /// True if bytes were dropped because the buffer was full (reset by `clear`).
    pub fn overflowed(&self) -> bool {
        self.overflow
    }
    /// Appends raw bytes (compacting already-sent bytes out first if needed).
    pub fn push(&mut self, bytes: &[u8]) {
        self.append(bytes, 2);
    }
    /// Moves the pending bytes to the front; the end of them.
    fn compact(&mut self) -> usize {
        let (start, len) = self.span();
        if start > 0 {
            super::move_to_front(&mut self.buf, start, len);
            self.set_span(0, len - start);
        }
        len - start
    }
    /// Appends `bytes`, leaving `reserve` bytes of the buffer free.
    fn append(&mut self, bytes: &[u8], reserve: usize) {
        let cap = N.saturating_sub(reserve);
        let mut len = usize::from(self.len);
        if bytes.len() > cap.saturating_sub(len) {
            len = self.compact();
        }
        let spare = self.buf.get_mut(len..cap).unwrap_or(&mut []);
        let n = bytes.len().min(spare.len());
        if let (Some(dst), Some(src)) = (spare.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n as u16;
        }
        if n < bytes.len() {
            self.overflow = true;
        }
    }
    /// Lets `write` format straight into the free space (compacting sent
    /// bytes out first); `write` returns how many bytes it wrote, or `None`
    /// if they did not fit, and then nothing is kept. Returns whether the
    /// bytes were kept. Saves assembling a line in a stack array first.
    pub fn push_with(&mut self, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let len = self.compact();
        let spare = self
            .buf
            .get_mut(len..N.saturating_sub(2))
            .unwrap_or(&mut []);
        let room = spare.len();
        match write(spare) {
            Some(n) if n <= room => {
                self.len += n as u16;
                true
            }
            _ => false,
        }
    }
    /// Appends a decimal number.
    pub fn push_u64(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        let len = super::num::write_u64(n, &mut digits).unwrap_or(0);
        self.push(digits.get(..len).unwrap_or(&[]));
    }
    /// Appends `code SP text CRLF` (a complete single-line reply).
    pub fn reply(&mut self, code: u16, text: &[u8]) {
        self.start(code, false);
        self.push(text);
        self.end_line();
    }
    /// Appends `code SP` (or `code-` if `more`): start of a reply whose text
    /// the caller pushes, ending with [`ReplyBuf::end_line`].
    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    pub fn start(&mut self, code: u16, more: bool) {
        self.push_u64(u64::from(code));
        self.push(if more { b"-" } else { b" " });
    }
    /// Appends CR LF.
    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    pub fn end_line(&mut self) {
        self.append(b"\r\n", 0);
    }
    /// Appends a path in double quotes with each `"` doubled and each CR
    /// followed by NUL (RFC 959 appendix II, as in `257 "/a ""b"""`).
    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    pub fn push_quoted(&mut self, path: &[u8]) {
        self.push(b"\"");
        let mut rest = path;
        while let Some(at) = rest.iter().position(|&b| b == b'"' || b == b'\r') {
            // Up to and including the quote or CR, then the quote again,
            // or NUL after a CR (RFC 959 appendix II: a CR is not the end
            // of the line).
            self.push(rest.get(..=at).unwrap_or(&[]));
            self.push(if rest.get(at) == Some(&b'"') {
                b"\""
            } else {
                b"\0"
            });
            rest = rest.get(at + 1..).unwrap_or(&[]);
        }
        self.push(rest);
        self.push(b"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_reply() {
        let mut r = ReplyBuf::<64>::new();
        assert!(r.is_empty());
        r.reply(220, b"Ferry ready");
        assert_eq!(r.pending(), b"220 Ferry ready\r\n");
        assert!(!r.is_empty());
        assert_eq!(r.remaining(), 64 - 17);
        assert!(!r.overflowed());
    }

    #[test]
    fn multi_line_reply() {
        let mut r = ReplyBuf::<128>::new();
        r.start(211, true);
        r.push(b"Features:");
        r.end_line();
        r.push(b" UTF8\r\n");
        r.push(b" SIZE\r\n");
        r.reply(211, b"End");
        assert_eq!(
            r.pending(),
            b"211-Features:\r\n UTF8\r\n SIZE\r\n211 End\r\n"
        );
    }

    #[test]
    fn quoting_doubles_quotes() {
        let mut r = ReplyBuf::<64>::new();
        r.start(257, false);
        r.push_quoted(b"/a \"b\"");
        r.push(b" created");
        r.end_line();
        assert_eq!(r.pending(), b"257 \"/a \"\"b\"\"\" created\r\n");

        r.clear();
        r.push_quoted(b"/");
        assert_eq!(r.pending(), b"\"/\"");
        r.clear();
        r.push_quoted(b"");
        assert_eq!(r.pending(), b"\"\"");
        r.clear();
        r.push_quoted(b"\"");
        assert_eq!(r.pending(), b"\"\"\"\"");
        r.clear();
        r.push_quoted("/é\"".as_bytes());
        assert_eq!(r.pending(), "\"/é\"\"\"".as_bytes());
        // Issue 15: a CR in a path is sent as CR NUL, never as a line end.
        r.clear();
        r.push_quoted(b"/x\r\n230 y\r");
        assert_eq!(r.pending(), b"\"/x\r\0\n230 y\r\0\"");
    }

    #[test]
    fn numbers() {
        let mut r = ReplyBuf::<32>::new();
        r.push_u64(0);
        r.push(b" ");
        r.push_u64(u64::MAX);
        assert_eq!(r.pending(), b"0 18446744073709551615");
    }

    #[test]
    fn advance_and_compaction() {
        let mut r = ReplyBuf::<10>::new();
        r.push(b"abcdef");
        r.advance(4);
        assert_eq!(r.pending(), b"ef");
        assert_eq!(r.remaining(), 8);
        // Does not fit behind "ef" (the last two bytes are the line end's)
        // without moving it to the front.
        r.push(b"ghijkl");
        assert_eq!(r.pending(), b"efghijkl");
        assert_eq!(r.remaining(), 2);
        assert!(!r.overflowed());
        r.end_line();
        assert_eq!(r.pending(), b"efghijkl\r\n");
        assert!(!r.overflowed());
        r.advance(100);
        assert!(r.is_empty());
        assert_eq!(r.remaining(), 10);
        r.push(b"12345678");
        assert_eq!(r.pending(), b"12345678");
        r.advance(0);
        assert_eq!(r.pending(), b"12345678");
    }

    #[test]
    fn overflow_drops_and_flags_but_ends_the_line() {
        let mut r = ReplyBuf::<8>::new();
        r.push(b"12345");
        r.push(b"6789");
        assert_eq!(r.pending(), b"123456");
        assert!(r.overflowed());
        r.push(b"x");
        assert_eq!(r.pending(), b"123456");
        r.end_line();
        assert_eq!(r.pending(), b"123456\r\n");
        r.end_line();
        assert_eq!(r.pending(), b"123456\r\n");
        r.advance(8);
        assert!(r.overflowed(), "only clear resets the flag");
        r.clear();
        assert!(!r.overflowed());
        assert!(r.is_empty());
        // A reply that does not fit is cut, but still ends its line, so
        // the client reads a complete (if short) reply.
        r.reply(500, b"a text far too long for eight bytes");
        assert_eq!(r.pending(), b"500 a \r\n");
        assert!(r.overflowed());
        r.clear();
        assert!(!r.push_with(|out| Some(out.len() + 1)));
        assert!(r.push_with(|out| {
            out.fill(b'x');
            Some(out.len())
        }));
        r.end_line();
        assert_eq!(r.pending(), b"xxxxxx\r\n");
    }

    #[test]
    fn zero_capacity_never_panics() {
        let mut r = ReplyBuf::<0>::new();
        r.reply(200, b"ok");
        r.push_quoted(b"\"");
        r.advance(3);
        assert!(r.is_empty());
        assert!(r.overflowed());
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.pending(), b"");
    }
}
