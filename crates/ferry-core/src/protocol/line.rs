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

/// A fixed-capacity line assembler.
#[derive(Debug)]
pub struct LineBuffer<const N: usize> {
    buf: [u8; N],
    len: usize,
    line_len: Option<usize>,
    discarding: bool,
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
        Self { buf: [0; N], len: 0, line_len: None, discarding: false, telnet: 0 }
    }
    /// Free space to receive bytes into; empty when the buffer is full.
    pub fn spare(&mut self) -> &mut [u8] {
        todo!()
    }
    /// Accounts `n` bytes just received into [`LineBuffer::spare`]:
    /// Telnet IAC sequences are removed in place (IAC IAC stays one 0xFF).
    pub fn filled(&mut self, n: usize) {
        let _ = n;
        todo!()
    }
    /// Looks for the next complete line in what was received.
    pub fn poll_line(&mut self) -> Option<LineEvent> {
        todo!()
    }
    /// The complete line (without CR LF) after [`LineEvent::Line`]; empty otherwise.
    pub fn line(&self) -> &[u8] {
        todo!()
    }
    /// Forgets the current line, keeping any bytes received after it.
    pub fn consume_line(&mut self) {
        todo!()
    }
    /// Drops everything (e.g. for a new connection).
    pub fn clear(&mut self) {
        todo!()
    }
}
