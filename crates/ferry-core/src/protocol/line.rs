//! Assembles command lines from control-connection bytes: strips Telnet
//! commands (IAC sequences, e.g. the IP/Synch before `ABOR`), ends a line at
//! LF (a preceding CR is dropped) and refuses over-long lines without losing
//! track of where the next line starts.
//!
//! Bytes are received straight into [`LineBuffer::spare`], so pipelined
//! commands that arrive in one segment are kept for the next line.

/// What [`LineBuffer::poll_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line is available from [`LineBuffer::line`]; call
    /// [`LineBuffer::consume_line`] after using it.
    Line,
    /// The buffer filled up without a line end: its content was dropped and
    /// the rest of that line will be dropped up to and including its LF.
    /// Reported once per over-long line (reply 500).
    TooLong,
}

/// Telnet "Interpret As Command" (RFC 854).
const IAC: u8 = 255;
/// Telnet WILL, WONT, DO and DONT take one option byte after them.
const NEGOTIATION: core::ops::RangeInclusive<u8> = 251..=254;

/// Where the Telnet parser is between two received bytes.
const TELNET_DATA: u8 = 0;
/// After an IAC.
const TELNET_IAC: u8 = 1;
/// After IAC WILL/WONT/DO/DONT, waiting for the option byte.
const TELNET_OPTION: u8 = 2;

/// A fixed-capacity line assembler.
///
/// Call order: receive into [`LineBuffer::spare`], account with
/// [`LineBuffer::filled`], then call [`LineBuffer::poll_line`] until it
/// returns `None`, calling [`LineBuffer::consume_line`] after each
/// [`LineEvent::Line`]. A line holds at most `N - 1` bytes before its LF.
#[derive(Debug)]
pub struct LineBuffer<const N: usize> {
    /// `buf[..len]` holds received bytes with Telnet commands already removed.
    buf: [u8; N],
    len: usize,
    /// Bytes the current line occupies including its CR LF, once one was
    /// found; 0: none yet (a line takes at least its LF).
    line_total: usize,
    /// Dropping the rest of an over-long line, up to and including its LF.
    discarding: bool,
    /// Telnet parser state (`TELNET_*`), kept across `filled` calls.
    telnet: u8,
}

impl<const N: usize> Default for LineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            line_total: 0,
            discarding: false,
            telnet: TELNET_DATA,
        }
    }
    /// Free space to receive bytes into; empty when the buffer is full.
    pub fn spare(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.len..).unwrap_or(&mut [])
    }
    /// Accounts `n` bytes just received into [`LineBuffer::spare`]:
    /// Telnet IAC sequences are removed in place (IAC IAC stays one 0xFF).
    pub fn filled(&mut self, n: usize) {
        let end = self.len.saturating_add(n).min(N);
        // The write position never passes the read position, so filtering
        // in place is safe.
        let mut write = self.len;
        for read in self.len..end {
            let Some(&byte) = self.buf.get(read) else {
                break;
            };
            let keep = match self.telnet {
                TELNET_IAC => {
                    self.telnet = if NEGOTIATION.contains(&byte) {
                        TELNET_OPTION
                    } else {
                        TELNET_DATA
                    };
                    // IAC IAC is a data byte 255; any other command is dropped.
                    byte == IAC
                }
                TELNET_OPTION => {
                    self.telnet = TELNET_DATA;
                    false
                }
                _ if byte == IAC => {
                    self.telnet = TELNET_IAC;
                    false
                }
                _ => true,
            };
            if keep {
                if let Some(slot) = self.buf.get_mut(write) {
                    *slot = byte;
                    write += 1;
                }
            }
        }
        self.len = write;
    }
    /// Whether a complete line is waiting (without consuming anything).
    pub fn has_line(&self) -> bool {
        self.line_total > 0 || (!self.discarding && self.find_lf().is_some())
    }

    /// Whether nothing is buffered and no Telnet sequence or over-long
    /// line is half-read: a new buffer would do as well.
    pub fn is_clear(&self) -> bool {
        self.len == 0 && !self.discarding && self.telnet == TELNET_DATA
    }

    /// Looks for the next complete line in what was received.
    pub fn poll_line(&mut self) -> Option<LineEvent> {
        if self.line_total > 0 {
            return Some(LineEvent::Line);
        }
        if self.discarding {
            match self.find_lf() {
                Some(lf) => {
                    self.discarding = false;
                    self.drop_front(lf + 1);
                }
                None => {
                    self.len = 0;
                    return None;
                }
            }
        }
        match self.find_lf() {
            Some(lf) => {
                self.line_total = lf + 1;
                Some(LineEvent::Line)
            }
            None if self.len >= N => {
                self.len = 0;
                self.discarding = true;
                Some(LineEvent::TooLong)
            }
            None => None,
        }
    }
    /// The complete line (without CR LF) after [`LineEvent::Line`]; empty otherwise.
    pub fn line(&self) -> &[u8] {
        // Without its LF, and the CR before it if there is one.
        let line = self
            .buf
            .get(..self.line_total.saturating_sub(1))
            .unwrap_or(&[]);
        line.strip_suffix(b"\r").unwrap_or(line)
    }
    /// Forgets the current line, keeping any bytes received after it.
    pub fn consume_line(&mut self) {
        if self.line_total > 0 {
            self.drop_front(self.line_total);
            self.line_total = 0;
        }
    }
    /// Drops everything (e.g. for a new connection).
    pub fn clear(&mut self) {
        self.len = 0;
        self.line_total = 0;
        self.discarding = false;
        self.telnet = TELNET_DATA;
    }

    /// Index of the first LF in the received bytes.
    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn find_lf(&self) -> Option<usize> {
        self.buf.get(..self.len)?.iter().position(|&b| b == b'\n')
    }

    /// Removes the first `n` received bytes, moving the rest to the front.
    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len);
        super::move_to_front(&mut self.buf, n, self.len);
        self.len -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push<const N: usize>(lb: &mut LineBuffer<N>, bytes: &[u8]) {
        let spare = lb.spare();
        assert!(spare.len() >= bytes.len(), "test pushes more than fits");
        spare[..bytes.len()].copy_from_slice(bytes);
        lb.filled(bytes.len());
    }

    /// Pushes `bytes` in pieces as space allows and collects the events
    /// and lines, as a session would.
    fn feed<const N: usize>(lb: &mut LineBuffer<N>, bytes: &[u8], out: &mut [u8; 256]) -> usize {
        let mut used = 0;
        let mut rest = bytes;
        loop {
            while let Some(ev) = lb.poll_line() {
                match ev {
                    LineEvent::Line => {
                        let line = lb.line();
                        out[used..used + line.len()].copy_from_slice(line);
                        used += line.len();
                        out[used] = b'|';
                        used += 1;
                        lb.consume_line();
                    }
                    LineEvent::TooLong => {
                        out[used] = b'!';
                        used += 1;
                    }
                }
            }
            if rest.is_empty() {
                return used;
            }
            let spare = lb.spare();
            let n = spare.len().min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            lb.filled(n);
            rest = &rest[n..];
        }
    }

    fn lines<const N: usize>(bytes: &[u8]) -> ([u8; 256], usize) {
        let mut lb = LineBuffer::<N>::new();
        let mut out = [0u8; 256];
        let used = feed(&mut lb, bytes, &mut out);
        (out, used)
    }

    #[test]
    fn one_line() {
        let mut lb = LineBuffer::<32>::new();
        assert_eq!(lb.poll_line(), None);
        assert_eq!(lb.line(), b"");
        push(&mut lb, b"USER ferry\r\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"USER ferry");
        // Polling again without consuming reports the same line.
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        lb.consume_line();
        assert_eq!(lb.line(), b"");
        assert_eq!(lb.poll_line(), None);
        assert_eq!(lb.spare().len(), 32);
    }

    #[test]
    fn partial_then_complete() {
        let mut lb = LineBuffer::<32>::new();
        push(&mut lb, b"NO");
        assert_eq!(lb.poll_line(), None);
        push(&mut lb, b"OP\r");
        assert_eq!(lb.poll_line(), None);
        push(&mut lb, b"\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"NOOP");
    }

    #[test]
    fn pipelined_lines_are_kept() {
        let (out, n) = lines::<64>(b"USER a\r\nPASS b\r\nSYST\r\nPWD");
        assert_eq!(&out[..n], b"USER a|PASS b|SYST|");
        let mut lb = LineBuffer::<64>::new();
        push(&mut lb, b"USER a\r\nPASS b\r\nPW");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"USER a");
        lb.consume_line();
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"PASS b");
        lb.consume_line();
        assert_eq!(lb.poll_line(), None);
        push(&mut lb, b"D\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"PWD");
    }

    #[test]
    fn bare_lf_and_stray_cr() {
        let (out, n) = lines::<64>(b"NOOP\nA\rB\r\n\r\n\n\r\r\n");
        // Only the CR right before LF is dropped.
        assert_eq!(&out[..n], b"NOOP|A\rB|||\r|");
    }

    #[test]
    fn telnet_commands_are_removed() {
        // IP, then Synch (IAC DM), then ABOR: what clients send to abort.
        let (out, n) = lines::<64>(b"\xff\xf4\xff\xf2ABOR\r\n");
        assert_eq!(&out[..n], b"ABOR|");
        // Negotiations carry one option byte.
        let (out, n) = lines::<64>(b"\xff\xfb\x01NO\xff\xfd\x03OP\xff\xfc\xff\xff\xfe\x22\r\n");
        assert_eq!(&out[..n], b"NOOP|");
        // IAC IAC is a literal 0xFF.
        let (out, n) = lines::<64>(b"CWD a\xff\xffb\r\n");
        assert_eq!(&out[..n], b"CWD a\xffb|");
        // The option byte of a negotiation can be anything, even IAC or LF.
        let (out, n) = lines::<64>(b"A\xff\xfb\xffB\xff\xfe\nC\r\n");
        assert_eq!(&out[..n], b"ABC|");
    }

    #[test]
    fn telnet_split_across_segments() {
        let mut lb = LineBuffer::<32>::new();
        push(&mut lb, b"AB\xff");
        push(&mut lb, b"\xff");
        push(&mut lb, b"C\xff");
        push(&mut lb, b"\xfb");
        push(&mut lb, b"\x18");
        push(&mut lb, b"D\xff");
        push(&mut lb, b"\xf4E\r");
        assert_eq!(lb.poll_line(), None);
        push(&mut lb, b"\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"AB\xffCDE");
        // Byte by byte gives the same.
        let mut lb = LineBuffer::<32>::new();
        for b in b"\xff\xf4\xff\xf2AB\xff\xff\xff\xfd\x01C\r\n" {
            push(&mut lb, core::slice::from_ref(b));
        }
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"AB\xffC");
    }

    #[test]
    fn telnet_state_survives_a_line_end() {
        let mut lb = LineBuffer::<32>::new();
        push(&mut lb, b"NOOP\r\n\xff");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        lb.consume_line();
        push(&mut lb, b"\xf4PWD\r\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"PWD");
    }

    #[test]
    fn too_long_then_good_line() {
        let mut lb = LineBuffer::<8>::new();
        push(&mut lb, b"12345678");
        assert_eq!(lb.spare().len(), 0);
        assert_eq!(lb.poll_line(), Some(LineEvent::TooLong));
        assert_eq!(lb.line(), b"");
        assert_eq!(lb.poll_line(), None);
        push(&mut lb, b"9abcdefg");
        assert_eq!(lb.poll_line(), None, "TooLong is reported once");
        push(&mut lb, b"hi\r\nNOOP");
        assert_eq!(lb.poll_line(), None);
        push(&mut lb, b"\r\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"NOOP");
        lb.consume_line();
        assert_eq!(lb.poll_line(), None);
    }

    #[test]
    fn too_long_in_pieces() {
        let (out, n) = lines::<8>(b"A\r\nAAAAAAAAAAAAAAAAAAAAAAA\r\nB\r\nCCCCCCCC\nDDDDDDD\nE\n");
        assert_eq!(&out[..n], b"A|!B|!DDDDDDD|E|");
        // A line that just fits: N - 1 bytes and its LF.
        let (out, n) = lines::<8>(b"1234567\n");
        assert_eq!(&out[..n], b"1234567|");
        // With CR LF, the CR needs room too.
        let (out, n) = lines::<8>(b"1234567\r\nX\r\n");
        assert_eq!(&out[..n], b"!X|");
    }

    #[test]
    fn too_long_with_lf_in_the_same_segment() {
        let mut lb = LineBuffer::<8>::new();
        push(&mut lb, b"12345678");
        assert_eq!(lb.poll_line(), Some(LineEvent::TooLong));
        push(&mut lb, b"9\nPWD\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"PWD");
    }

    #[test]
    fn over_filled_is_clamped() {
        let mut lb = LineBuffer::<4>::new();
        lb.filled(1000);
        assert_eq!(lb.spare().len(), 0);
        assert_eq!(lb.poll_line(), Some(LineEvent::TooLong));
        assert_eq!(lb.spare().len(), 4);
    }

    #[test]
    fn clear_resets_everything() {
        let mut lb = LineBuffer::<8>::new();
        push(&mut lb, b"AB\r\nC\xff");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        lb.clear();
        assert_eq!(lb.line(), b"");
        assert_eq!(lb.poll_line(), None);
        push(&mut lb, b"\xf4X\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"\xf4X", "no IAC pending after clear");
        lb.consume_line();
        push(&mut lb, b"1234567");
        push(&mut lb, b"8");
        assert_eq!(lb.poll_line(), Some(LineEvent::TooLong));
        lb.clear();
        push(&mut lb, b"OK\n");
        assert_eq!(
            lb.poll_line(),
            Some(LineEvent::Line),
            "not discarding after clear"
        );
    }

    #[test]
    fn consume_without_line_is_harmless() {
        let mut lb = LineBuffer::<8>::new();
        push(&mut lb, b"AB");
        lb.consume_line();
        push(&mut lb, b"\n");
        assert_eq!(lb.poll_line(), Some(LineEvent::Line));
        assert_eq!(lb.line(), b"AB");
    }

    #[test]
    fn zero_capacity_never_panics() {
        let mut lb = LineBuffer::<0>::new();
        assert_eq!(lb.spare().len(), 0);
        lb.filled(5);
        assert_eq!(lb.poll_line(), Some(LineEvent::TooLong));
        assert_eq!(lb.poll_line(), None);
        lb.consume_line();
        assert_eq!(lb.line(), b"");
    }
}
