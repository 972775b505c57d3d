//! Replies as a client reads them: the RFC 959 framing check, and the model
//! of which reply codes each command may get.

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code.
    pub code: u16,
    /// The whole reply, CR LF included.
    pub text: Vec<u8>,
}

/// Takes the first complete reply off the front of `inbox`: `Ok(None)` if
/// it is not complete yet, `Err` if it breaks RFC 959's framing (three
/// digits, then a space or a hyphen; a multi-line reply ends with a line
/// that starts with the same code and a space; every line ends in CR LF,
/// and holds no other CR or LF).
pub fn take(inbox: &mut Vec<u8>) -> Result<Option<Reply>, String> {
    let mut start = 0;
    let mut code = None;
    loop {
        let rest = inbox.get(start..).unwrap_or(&[]);
        let Some(lf) = rest.iter().position(|b| *b == b'\n') else {
            if rest.len() > 4096 {
                return Err("a reply line longer than 4096 bytes".into());
            }
            if let Some(cr) = rest.iter().position(|b| *b == b'\r') {
                if cr + 1 < rest.len() {
                    return Err("a CR inside a reply line".into());
                }
            }
            return Ok(None);
        };
        let line = rest.get(..lf).unwrap_or(&[]);
        let Some(body) = line.strip_suffix(b"\r") else {
            return Err("a reply line ends in LF without CR".into());
        };
        if body.contains(&b'\r') {
            return Err("a CR inside a reply line".into());
        }
        let head = parse_head(body);
        match (code, head) {
            (None, Some((c, false))) => {
                let reply = inbox.drain(..start + lf + 1).collect();
                return Ok(Some(Reply {
                    code: c,
                    text: reply,
                }));
            }
            (None, Some((c, true))) => code = Some(c),
            (None, None) => return Err("a reply line that does not start with a code".into()),
            (Some(c), Some((d, false))) if c == d => {
                let reply = inbox.drain(..start + lf + 1).collect();
                return Ok(Some(Reply {
                    code: c,
                    text: reply,
                }));
            }
            (Some(_), _) => {}
        }
        start += lf + 1;
    }
}

/// `Some((code, continued))` if `line` starts with a reply code and a
/// space (`false`) or a hyphen (`true`).
fn parse_head(line: &[u8]) -> Option<(u16, bool)> {
    let [a, b, c, sep, ..] = *line else {
        let [a, b, c] = *line else { return None };
        return code(a, b, c).map(|n| (n, false));
    };
    let n = code(a, b, c)?;
    match sep {
        b' ' => Some((n, false)),
        b'-' => Some((n, true)),
        _ => None,
    }
}

fn code(a: u8, b: u8, c: u8) -> Option<u16> {
    let ok = (b'1'..=b'5').contains(&a) && (b'0'..=b'5').contains(&b) && c.is_ascii_digit();
    ok.then(|| u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
}

/// The commands the simulated clients send, for the reply model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// USER
    User,
    /// PASS
    Pass,
    /// CWD or CDUP
    Cwd,
    /// PWD
    Pwd,
    /// TYPE
    Type,
    /// NOOP
    Noop,
    /// SYST
    Syst,
    /// PASV
    Pasv,
    /// EPSV
    Epsv,
    /// LIST, NLST or MLSD
    List,
    /// RETR
    Retr,
    /// STOR or APPE
    Stor,
    /// REST
    Rest,
    /// RNFR
    Rnfr,
    /// RNTO
    Rnto,
    /// DELE
    Dele,
    /// MKD
    Mkd,
    /// RMD
    Rmd,
    /// ABOR
    Abor,
    /// QUIT
    Quit,
    /// A malformed line: garbage, too long, or with CR/LF inside.
    Malformed,
    /// SIZE
    Size,
    /// MDTM
    Mdtm,
    /// STAT without an argument
    Stat,
    /// FEAT
    Feat,
    /// HELP
    Help,
    /// OPTS
    Opts,
    /// MLST
    Mlst,
    /// SITE
    Site,
    /// PORT or EPRT
    Port,
    /// REIN
    Rein,
}

/// Codes that end a transfer's command after its `150` (or refuse it).
pub const TRANSFER_END: &[u16] = &[226, 425, 426, 450, 451, 452, 504, 550, 552, 553, 554];

impl Cmd {
    /// Whether the command needs a login (else 530).
    fn needs_login(self) -> bool {
        !matches!(
            self,
            Cmd::User
                | Cmd::Pass
                | Cmd::Noop
                | Cmd::Syst
                | Cmd::Quit
                | Cmd::Malformed
                | Cmd::Feat
                | Cmd::Help
                | Cmd::Opts
                | Cmd::Stat
        )
    }

    /// Whether `150` (a transfer starting) may come before the final reply.
    pub fn is_transfer(self) -> bool {
        matches!(self, Cmd::List | Cmd::Retr | Cmd::Stor)
    }

    /// The final reply codes this command may get (besides `421`, which
    /// any command may get when the server closes the connection).
    pub fn allowed(self, logged_in: bool) -> &'static [u16] {
        // A line that does not parse gets 501 before any login check.
        if !logged_in && self.needs_login() {
            return &[501, 530];
        }
        match self {
            Cmd::User => &[331, 230, 530, 501],
            Cmd::Pass => &[230, 530, 503],
            Cmd::Cwd => &[250, 451, 452, 501, 504, 550, 553],
            Cmd::Pwd => &[257],
            Cmd::Type => &[200, 501, 504],
            Cmd::Noop => &[200],
            Cmd::Syst => &[215],
            Cmd::Pasv => &[227, 425],
            Cmd::Epsv => &[229, 425],
            Cmd::List | Cmd::Retr | Cmd::Stor => TRANSFER_END,
            Cmd::Rest => &[350, 501, 554],
            // Any storage error maps to 451, 452, 504, 550 or 553.
            Cmd::Rnfr => &[350, 450, 451, 452, 504, 550, 553],
            Cmd::Rnto => &[250, 451, 452, 503, 504, 550, 553],
            Cmd::Dele => &[250, 450, 451, 452, 504, 550, 553],
            Cmd::Mkd => &[257, 451, 452, 504, 550, 553],
            Cmd::Rmd => &[250, 451, 452, 504, 550, 553],
            Cmd::Abor => &[225, 226],
            Cmd::Quit => &[221],
            Cmd::Malformed => &[200, 250, 500, 501, 502, 503, 530, 550, 553],
            Cmd::Size | Cmd::Mdtm | Cmd::Mlst => &[213, 250, 451, 452, 501, 504, 550, 553],
            Cmd::Stat => &[211, 212, 213],
            Cmd::Feat => &[211],
            Cmd::Help => &[214],
            Cmd::Opts => &[200, 501, 504],
            Cmd::Site => &[200, 451, 452, 500, 501, 504, 550, 553],
            Cmd::Port => &[200, 501, 504, 522],
            Cmd::Rein => &[220],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        let mut inbox = b"220 hi\r\n211-a\r\n x\r\n211 end\r\n150 x".to_vec();
        assert_eq!(take(&mut inbox).ok().flatten().map(|r| r.code), Some(220));
        assert_eq!(take(&mut inbox).ok().flatten().map(|r| r.code), Some(211));
        assert_eq!(take(&mut inbox), Ok(None));
        let mut bad = b"22 x\r\n".to_vec();
        assert!(take(&mut bad).is_err());
        let mut bare_lf = b"200 x\n".to_vec();
        assert!(take(&mut bare_lf).is_err());
    }
}
