//! FTP command parsing: one line (without CR LF) in, a [`Command`] borrowing
//! from it out.
//!
//! Contract: [`Command::parse`] never panics and never allocates; every input
//! gives either a command or a [`ParseError`] that names the reply code.
use ferry_net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::addr::{parse_ipv4, parse_ipv6};
use super::num::parse_u64;
#[cfg(feature = "mtime")]
use super::time::parse_timeval;

/// `TYPE` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// `TYPE A` (or `A N`): ASCII, line endings converted to/from CR LF.
    Ascii,
    /// `TYPE I` (or `L 8`): bytes as they are.
    Image,
}

/// `EPSV` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: the protocol of the control connection.
    Any,
    /// `EPSV ALL`: from now on only EPSV is accepted for data connections.
    All,
    /// `EPSV 1` (IPv4) or `EPSV 2` (IPv6).
    Proto(u8),
}

/// A parsed FTP command. Path arguments are raw bytes, not yet resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `USER name`
    User(&'a [u8]),
    /// `PASS password` (may be empty)
    Pass(&'a [u8]),
    /// `ACCT account`
    Acct(&'a [u8]),
    /// `QUIT`
    Quit,
    /// `REIN`
    Rein,
    /// `SYST`
    Syst,
    /// `STAT [path]`
    Stat(Option<&'a [u8]>),
    /// `HELP [command]`
    Help(Option<&'a [u8]>),
    /// `NOOP`
    Noop,
    /// `FEAT`
    Feat,
    /// `OPTS args` (raw argument, e.g. `UTF8 ON`)
    Opts(&'a [u8]),
    /// `PWD` / `XPWD`
    Pwd,
    /// `CWD path` / `XCWD path`
    Cwd(&'a [u8]),
    /// `CDUP` / `XCUP`
    Cdup,
    /// `MKD path` / `XMKD path`
    Mkd(&'a [u8]),
    /// `RMD path` / `XRMD path`
    Rmd(&'a [u8]),
    /// `DELE path`
    Dele(&'a [u8]),
    /// `RNFR path`
    Rnfr(&'a [u8]),
    /// `RNTO path`
    Rnto(&'a [u8]),
    /// `SIZE path`
    Size(&'a [u8]),
    /// `MDTM path`
    Mdtm(&'a [u8]),
    /// `MFMT YYYYMMDDHHMMSS path`: time as seconds since 1970 UTC.
    Mfmt {
        /// The new modification time, seconds since 1970-01-01 UTC.
        time: u64,
        /// The file.
        path: &'a [u8],
    },
    /// `TYPE A|I` (with `A N`, `L 8` accepted)
    Type(TransferType),
    /// `MODE S` (other modes are a parse error with 504)
    Mode,
    /// `STRU F` (other structures are a parse error with 504)
    Stru,
    /// `ALLO n [R n]`
    Allo,
    /// `REST offset`
    Rest(u64),
    /// `RETR path`
    Retr(&'a [u8]),
    /// `STOR path`
    Stor(&'a [u8]),
    /// `STOU [path]`
    Stou(Option<&'a [u8]>),
    /// `APPE path`
    Appe(&'a [u8]),
    /// `ABOR`
    Abor,
    /// `LIST [-options] [path]` (leading `-x` option words removed)
    List(Option<&'a [u8]>),
    /// `NLST [-options] [path]` (leading `-x` option words removed)
    Nlst(Option<&'a [u8]>),
    /// `MLSD [path]`
    Mlsd(Option<&'a [u8]>),
    /// `MLST [path]`
    Mlst(Option<&'a [u8]>),
    /// `PORT h1,h2,h3,h4,p1,p2`
    Port(SocketAddrV4),
    /// `PASV`
    Pasv,
    /// `EPRT |proto|addr|port|`
    Eprt(SocketAddr),
    /// `EPSV [1|2|ALL]`
    Epsv(EpsvArg),
    /// `SITE args` (raw argument, e.g. `CHMOD 644 file`)
    Site(&'a [u8]),
    /// `AUTH mechanism` (TLS, SSL)
    Auth(&'a [u8]),
    /// `PBSZ n`
    Pbsz(&'a [u8]),
    /// `PROT level` (C, P, ...)
    Prot(&'a [u8]),
    /// `CCC`
    Ccc,
}

/// Why a line is not a command; each variant maps to one reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Empty line or unknown verb: 500.
    Unknown,
    /// A known verb that Ferry does not implement (e.g. `SMNT`), or that
    /// this build leaves out (its cargo feature is off): 502.
    NotImplemented,
    /// Required argument missing, or an argument that is malformed: 501.
    BadArgument,
    /// A well-formed argument Ferry does not support (e.g. `MODE B`): 504.
    UnsupportedParameter,
    /// `EPRT`/`EPSV` with a network protocol other than 1 or 2: 522.
    UnsupportedProtocol,
}

impl ParseError {
    /// The FTP reply code for this error.
    pub fn reply_code(self) -> u16 {
        match self {
            ParseError::Unknown => 500,
            ParseError::NotImplemented => 502,
            ParseError::BadArgument => 501,
            ParseError::UnsupportedParameter => 504,
            ParseError::UnsupportedProtocol => 522,
        }
    }
}

impl<'a> Command<'a> {
    /// Parses one command line (CR LF already removed). Verbs are
    /// case-insensitive; the argument is everything after the first space.
    ///
    /// Order of checks: an empty line or a verb that is not 1 to 4 ASCII
    /// letters naming a known command is [`ParseError::Unknown`]; then an
    /// argument holding NUL, CR or LF is [`ParseError::BadArgument`]; then
    /// a verb this build does not serve is [`ParseError::NotImplemented`];
    /// then the command's own rules apply. Commands that take no argument ignore
    /// one if given.
    pub fn parse(line: &'a [u8]) -> Result<Command<'a>, ParseError> {
        let (word, arg) = match line.iter().position(|&b| b == b' ') {
            Some(space) => (line.get(..space).unwrap_or(&[]), line.get(space + 1..)),
            None => (line, None),
        };
        let verb = Verb::parse(word).ok_or(ParseError::Unknown)?;
        if arg.is_some_and(|a| a.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))) {
            return Err(ParseError::BadArgument);
        }
        if !verb.enabled() {
            return Err(ParseError::NotImplemented);
        }
        // "VERB " with nothing after the space counts as no argument.
        let opt = arg.filter(|a| !a.is_empty());
        let req = opt.ok_or(ParseError::BadArgument);
        Ok(match verb {
            Verb::User => Command::User(req?),
            Verb::Pass => Command::Pass(opt.unwrap_or(&[])),
            #[cfg(feature = "compat")]
            Verb::Acct => Command::Acct(req?),
            Verb::Quit => Command::Quit,
            #[cfg(feature = "compat")]
            Verb::Rein => Command::Rein,
            Verb::Syst => Command::Syst,
            #[cfg(feature = "status")]
            Verb::Stat => Command::Stat(opt),
            #[cfg(feature = "status")]
            Verb::Help => Command::Help(opt),
            Verb::Noop => Command::Noop,
            Verb::Feat => Command::Feat,
            #[cfg(feature = "compat")]
            Verb::Opts => Command::Opts(req?),
            Verb::Pwd => Command::Pwd,
            Verb::Cwd => Command::Cwd(req?),
            Verb::Cdup => Command::Cdup,
            Verb::Mkd => Command::Mkd(req?),
            Verb::Rmd => Command::Rmd(req?),
            Verb::Dele => Command::Dele(req?),
            Verb::Rnfr => Command::Rnfr(req?),
            Verb::Rnto => Command::Rnto(req?),
            Verb::Size => Command::Size(req?),
            #[cfg(feature = "mtime")]
            Verb::Mdtm => Command::Mdtm(req?),
            #[cfg(feature = "mtime")]
            Verb::Mfmt => parse_mfmt(req?)?,
            Verb::Type => Command::Type(parse_type(req?)?),
            #[cfg(feature = "compat")]
            Verb::Mode => parse_letter(req?, b'S', b"BC", Command::Mode)?,
            #[cfg(feature = "compat")]
            Verb::Stru => parse_letter(req?, b'F', b"RP", Command::Stru)?,
            #[cfg(feature = "compat")]
            Verb::Allo => Command::Allo,
            #[cfg(feature = "resume")]
            Verb::Rest => Command::Rest(parse_u64(req?).ok_or(ParseError::BadArgument)?),
            Verb::Retr => Command::Retr(req?),
            Verb::Stor => Command::Stor(req?),
            #[cfg(feature = "resume")]
            Verb::Stou => Command::Stou(opt),
            #[cfg(feature = "resume")]
            Verb::Appe => Command::Appe(req?),
            #[cfg(feature = "compat")]
            Verb::Abor => Command::Abor,
            Verb::List => Command::List(strip_list_options(opt)),
            Verb::Nlst => Command::Nlst(strip_list_options(opt)),
            Verb::Mlsd => Command::Mlsd(opt),
            Verb::Mlst => Command::Mlst(opt),
            Verb::Port => Command::Port(parse_port(req?).ok_or(ParseError::BadArgument)?),
            Verb::Pasv => Command::Pasv,
            Verb::Eprt => Command::Eprt(parse_eprt(req?)?),
            Verb::Epsv => Command::Epsv(parse_epsv(opt)?),
            #[cfg(feature = "status")]
            Verb::Site => Command::Site(req?),
            #[cfg(feature = "tls")]
            Verb::Auth => Command::Auth(req?),
            #[cfg(feature = "tls")]
            Verb::Pbsz => Command::Pbsz(req?),
            #[cfg(feature = "tls")]
            Verb::Prot => Command::Prot(req?),
            #[cfg(feature = "tls")]
            Verb::Ccc => Command::Ccc,
            // Verbs this build leaves out (`enabled` is false for them).
            #[allow(unreachable_patterns)]
            _ => return Err(ParseError::NotImplemented),
        })
    }
}

/// Whether `word` names a command that `HELP` lists (every verb and alias
/// this build serves except the RFC 2228 security ones), in any case.
/// Reuses [`VERBS`] rather than a second table of names.
#[cfg(feature = "status")]
pub(crate) fn in_help_list(word: &[u8]) -> bool {
    Verb::parse(word).is_some_and(|v| {
        v.enabled() && !matches!(v, Verb::Auth | Verb::Pbsz | Verb::Prot | Verb::Ccc)
    })
}

/// A recognised verb, aliases folded (`XPWD` is [`Verb::Pwd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    User,
    Pass,
    Acct,
    Quit,
    Rein,
    Syst,
    Stat,
    Help,
    Noop,
    Feat,
    Opts,
    Pwd,
    Cwd,
    Cdup,
    Mkd,
    Rmd,
    Dele,
    Rnfr,
    Rnto,
    Size,
    Mdtm,
    Mfmt,
    Type,
    Mode,
    Stru,
    Allo,
    Rest,
    Retr,
    Stor,
    Stou,
    Appe,
    Abor,
    List,
    Nlst,
    Mlsd,
    Mlst,
    Port,
    Pasv,
    Eprt,
    Epsv,
    Site,
    Auth,
    Pbsz,
    Prot,
    Ccc,
    /// A verb from an FTP RFC that Ferry does not implement (502, not 500).
    NotImplemented,
}

impl Verb {
    /// Whether this build serves the verb: verbs of an optional part are
    /// answered 502 when its cargo feature is off.
    // With every feature off the arms fold to one `matches!`; not so with any on.
    #[allow(clippy::match_like_matches_macro)]
    const fn enabled(self) -> bool {
        match self {
            Verb::Acct
            | Verb::Rein
            | Verb::Opts
            | Verb::Mode
            | Verb::Stru
            | Verb::Allo
            | Verb::Abor => cfg!(feature = "compat"),
            Verb::Stat | Verb::Help | Verb::Site => cfg!(feature = "status"),
            Verb::Mdtm | Verb::Mfmt => cfg!(feature = "mtime"),
            Verb::Rest | Verb::Stou | Verb::Appe => cfg!(feature = "resume"),
            Verb::Auth | Verb::Pbsz | Verb::Prot | Verb::Ccc => cfg!(feature = "tls"),
            Verb::NotImplemented => false,
            _ => true,
        }
    }

    /// Recognises a verb of 1 to 4 ASCII letters, in any case.
    fn parse(word: &[u8]) -> Option<Verb> {
        if word.is_empty() || word.len() > 4 || !word.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let mut upper = [0u8; 4];
        for (dst, src) in upper.iter_mut().zip(word) {
            *dst = src.to_ascii_uppercase();
        }
        // A table scan is far smaller on a microcontroller than a match on
        // byte strings (which compiles to a chain of length checks and
        // compares).
        VERBS.iter().find(|(key, _)| *key == upper).map(|(_, v)| *v)
    }
}

/// Every recognised verb, aliases included. RFC 959 SMNT; RFC 1639
/// LPRT/LPSV; RFC 2228 ADAT/CONF/ENC/MIC; RFC 2640 LANG; RFC 7151 HOST;
/// MFCT/MFF (draft-somers-ftp-mfxx) and the RFC 737/743/775 mail and X-
/// commands are known but not implemented (502).
// Byte-array keys (not `u32`) keep an entry at 5 bytes instead of 8.
const VERBS: &[([u8; 4], Verb)] = &[
    (*b"USER", Verb::User),
    (*b"PASS", Verb::Pass),
    (*b"ACCT", Verb::Acct),
    (*b"QUIT", Verb::Quit),
    (*b"REIN", Verb::Rein),
    (*b"SYST", Verb::Syst),
    (*b"STAT", Verb::Stat),
    (*b"HELP", Verb::Help),
    (*b"NOOP", Verb::Noop),
    (*b"FEAT", Verb::Feat),
    (*b"OPTS", Verb::Opts),
    (*b"PWD\0", Verb::Pwd),
    (*b"XPWD", Verb::Pwd),
    (*b"CWD\0", Verb::Cwd),
    // An alias emFTP does not serve.
    (
        *b"XCWD",
        if cfg!(feature = "compat") {
            Verb::Cwd
        } else {
            Verb::NotImplemented
        },
    ),
    (*b"CDUP", Verb::Cdup),
    (*b"XCUP", Verb::Cdup),
    (*b"MKD\0", Verb::Mkd),
    (*b"XMKD", Verb::Mkd),
    (*b"RMD\0", Verb::Rmd),
    (*b"XRMD", Verb::Rmd),
    (*b"DELE", Verb::Dele),
    (*b"RNFR", Verb::Rnfr),
    (*b"RNTO", Verb::Rnto),
    (*b"SIZE", Verb::Size),
    (*b"MDTM", Verb::Mdtm),
    (*b"MFMT", Verb::Mfmt),
    (*b"TYPE", Verb::Type),
    (*b"MODE", Verb::Mode),
    (*b"STRU", Verb::Stru),
    (*b"ALLO", Verb::Allo),
    (*b"REST", Verb::Rest),
    (*b"RETR", Verb::Retr),
    (*b"STOR", Verb::Stor),
    (*b"STOU", Verb::Stou),
    (*b"APPE", Verb::Appe),
    (*b"ABOR", Verb::Abor),
    (*b"LIST", Verb::List),
    (*b"NLST", Verb::Nlst),
    (*b"MLSD", Verb::Mlsd),
    (*b"MLST", Verb::Mlst),
    (*b"PORT", Verb::Port),
    (*b"PASV", Verb::Pasv),
    (*b"EPRT", Verb::Eprt),
    (*b"EPSV", Verb::Epsv),
    (*b"SITE", Verb::Site),
    (*b"AUTH", Verb::Auth),
    (*b"PBSZ", Verb::Pbsz),
    (*b"PROT", Verb::Prot),
    (*b"CCC\0", Verb::Ccc),
    (*b"SMNT", Verb::NotImplemented),
    (*b"LPRT", Verb::NotImplemented),
    (*b"LPSV", Verb::NotImplemented),
    (*b"ADAT", Verb::NotImplemented),
    (*b"CONF", Verb::NotImplemented),
    (*b"ENC\0", Verb::NotImplemented),
    (*b"MIC\0", Verb::NotImplemented),
    (*b"LANG", Verb::NotImplemented),
    (*b"HOST", Verb::NotImplemented),
    (*b"MFCT", Verb::NotImplemented),
    (*b"MFF\0", Verb::NotImplemented),
    (*b"MAIL", Verb::NotImplemented),
    (*b"MLFL", Verb::NotImplemented),
    (*b"MSND", Verb::NotImplemented),
    (*b"MSOM", Verb::NotImplemented),
    (*b"MSAM", Verb::NotImplemented),
    (*b"MRSQ", Verb::NotImplemented),
    (*b"MRCP", Verb::NotImplemented),
    (*b"XRSQ", Verb::NotImplemented),
    (*b"XRCP", Verb::NotImplemented),
    (*b"XSEN", Verb::NotImplemented),
    (*b"XSEM", Verb::NotImplemented),
    (*b"XMAS", Verb::NotImplemented),
];

/// `MFMT YYYYMMDDHHMMSS path`.
#[cfg(feature = "mtime")]
fn parse_mfmt(arg: &[u8]) -> Result<Command<'_>, ParseError> {
    let space = arg
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::BadArgument)?;
    let time = arg
        .get(..space)
        .and_then(parse_timeval)
        .ok_or(ParseError::BadArgument)?;
    let path = arg
        .get(space + 1..)
        .filter(|p| !p.is_empty())
        .ok_or(ParseError::BadArgument)?;
    Ok(Command::Mfmt { time, path })
}

/// `TYPE A [N]`, `TYPE I`, `TYPE L 8`; other RFC 959 types and formats are
/// well-formed but unsupported.
fn parse_type(arg: &[u8]) -> Result<TransferType, ParseError> {
    let (code, rest) = split_word(arg);
    let (param, extra) = split_word(rest);
    let ([code], true) = (code, extra.is_empty()) else {
        return Err(ParseError::BadArgument);
    };
    let param = Some(param).filter(|p| !p.is_empty());
    // The format letter; `?` stands for a word longer than one letter.
    let format = param.map(|p| match p {
        [letter] => letter.to_ascii_uppercase(),
        _ => b'?',
    });
    match (code.to_ascii_uppercase(), format) {
        (b'A', None | Some(b'N')) => Ok(TransferType::Ascii),
        (b'A' | b'E', Some(b'T' | b'C')) | (b'E', None | Some(b'N')) => {
            Err(ParseError::UnsupportedParameter)
        }
        (b'I', None) => Ok(TransferType::Image),
        (b'L', Some(_)) => match param.and_then(parse_u64) {
            Some(8) => Ok(TransferType::Image),
            Some(_) => Err(ParseError::UnsupportedParameter),
            None => Err(ParseError::BadArgument),
        },
        _ => Err(ParseError::BadArgument),
    }
}

/// The first space-separated word of `s` and the rest, leading spaces
/// removed from both.
pub(crate) fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let s = trim_start(s);
    match s.iter().position(|b| *b == b' ') {
        Some(i) => (
            s.get(..i).unwrap_or(b""),
            trim_start(s.get(i + 1..).unwrap_or(b"")),
        ),
        None => (s, b""),
    }
}

// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
fn trim_start(s: &[u8]) -> &[u8] {
    let i = s.iter().position(|b| *b != b' ').unwrap_or(s.len());
    s.get(i..).unwrap_or(b"")
}

#[cfg(feature = "compat")]
/// A one-letter argument: `supported` gives `ok`, a letter of `known` is
/// well-formed but unsupported, anything else is malformed.
fn parse_letter<'a>(
    arg: &[u8],
    supported: u8,
    known: &[u8],
    ok: Command<'a>,
) -> Result<Command<'a>, ParseError> {
    match arg {
        [letter] if letter.to_ascii_uppercase() == supported => Ok(ok),
        [letter] if known.contains(&letter.to_ascii_uppercase()) => {
            Err(ParseError::UnsupportedParameter)
        }
        _ => Err(ParseError::BadArgument),
    }
}

/// Drops leading `ls` option words (`-la`, `-a -l`) that clients send with
/// `LIST`/`NLST`; what remains, if anything, is the path.
fn strip_list_options(arg: Option<&[u8]>) -> Option<&[u8]> {
    let mut rest = arg?;
    while rest.len() > 1 && rest.first() == Some(&b'-') {
        rest = match rest.iter().position(|&b| b == b' ') {
            Some(space) => rest.get(space + 1..)?,
            None => &[],
        };
        // Also skip the spaces between option words.
        let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
        rest = rest.get(start..)?;
    }
    Some(rest).filter(|r| !r.is_empty())
}

/// `PORT h1,h2,h3,h4,p1,p2`, each a decimal number up to 255.
fn parse_port(arg: &[u8]) -> Option<SocketAddrV4> {
    let mut fields = [0u8; 6];
    let mut rest = arg;
    for (i, field) in fields.iter_mut().enumerate() {
        // Five fields end at a comma; the last takes the rest, where a
        // comma is not a digit.
        let end = match rest.iter().position(|&b| b == b',') {
            Some(comma) if i < 5 => comma,
            _ => rest.len(),
        };
        *field = u8::try_from(parse_u64(rest.get(..end)?)?).ok()?;
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    let [a, b, c, d, p1, p2] = fields;
    let port = u16::from_be_bytes([p1, p2]);
    Some(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port))
}

/// `EPRT <d>proto<d>address<d>port<d>` (RFC 2428), `<d>` being the first byte.
fn parse_eprt(arg: &[u8]) -> Result<SocketAddr, ParseError> {
    let (&delim, rest) = arg.split_first().ok_or(ParseError::BadArgument)?;
    if !(33..=126).contains(&delim) {
        return Err(ParseError::BadArgument);
    }
    // Three fields, each ended by the delimiter, and nothing after the last.
    let mut fields: [&[u8]; 3] = [&[]; 3];
    let mut rest = rest;
    for field in fields.iter_mut() {
        let end = rest
            .iter()
            .position(|&b| b == delim)
            .ok_or(ParseError::BadArgument)?;
        *field = rest.get(..end).unwrap_or(&[]);
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    let ([proto, addr, port], []) = (fields, rest) else {
        return Err(ParseError::BadArgument);
    };
    let port = parse_u64(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(ParseError::BadArgument)?;
    // Not UTF-8 is malformed before the protocol number is looked at.
    if !is_utf8(addr) {
        return Err(ParseError::BadArgument);
    }
    let addr = match parse_net_proto(proto)? {
        1 => parse_ipv4(addr).map(|ip| SocketAddr::V4(SocketAddrV4::new(ip, port))),
        _ => parse_ipv6(addr).map(|ip| SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))),
    };
    addr.ok_or(ParseError::BadArgument)
}

/// Whether `bytes` is UTF-8, as `core::str::from_utf8` decides it, in a
/// fraction of its code (it brings a 256-byte table and unrolled loops).
fn is_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some((&lead, tail)) = rest.split_first() {
        // Continuation bytes, and the least code point that needs them
        // (anything less is an overlong form).
        let (len, least) = match lead {
            0x00..=0x7f => (0, 0),
            0xc0..=0xdf => (1, 0x80),
            0xe0..=0xef => (2, 0x800),
            0xf0..=0xf7 => (3, 0x1_0000),
            _ => return false,
        };
        let Some((continuation, after)) = tail.split_at_checked(len) else {
            return false;
        };
        let mut code = u32::from(lead) & (0xff >> (len + 2));
        for &byte in continuation {
            if byte & 0xc0 != 0x80 {
                return false;
            }
            code = code << 6 | u32::from(byte & 0x3f);
        }
        if code < least || code > 0x10_ffff || (0xd800..=0xdfff).contains(&code) {
            return false;
        }
        rest = after;
    }
    true
}

/// An RFC 2428 network protocol number: 1 (IPv4) or 2 (IPv6); another
/// number is unsupported, anything else malformed.
fn parse_net_proto(proto: &[u8]) -> Result<u8, ParseError> {
    match proto {
        b"1" => Ok(1),
        b"2" => Ok(2),
        _ if !proto.is_empty() && proto.iter().all(u8::is_ascii_digit) => {
            Err(ParseError::UnsupportedProtocol)
        }
        _ => Err(ParseError::BadArgument),
    }
}

/// `EPSV`, `EPSV ALL`, `EPSV 1`, `EPSV 2`.
fn parse_epsv(arg: Option<&[u8]>) -> Result<EpsvArg, ParseError> {
    match arg {
        None => Ok(EpsvArg::Any),
        Some(arg) if arg.eq_ignore_ascii_case(b"ALL") => Ok(EpsvArg::All),
        Some(arg) => parse_net_proto(arg).map(EpsvArg::Proto),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_net::Ipv6Addr;
    use ParseError::*;

    fn p(line: &[u8]) -> Result<Command<'_>, ParseError> {
        Command::parse(line)
    }

    /// Whether this build serves `word`; if not, checks that every form of
    /// it is answered 502.
    fn served(word: &[u8]) -> bool {
        let on = Verb::parse(word).is_some_and(Verb::enabled);
        if !on {
            let mut buf = [0u8; 16];
            buf[..word.len()].copy_from_slice(word);
            buf[word.len()..word.len() + 3].copy_from_slice(b" x ");
            for n in [word.len(), word.len() + 1, word.len() + 2, word.len() + 3] {
                assert_eq!(p(&buf[..n]), Err(NotImplemented), "{:?}", &buf[..n]);
            }
        }
        on
    }

    #[test]
    fn left_out_verbs_are_not_implemented() {
        let mut off = 0;
        for (name, verb) in VERBS {
            let word = name.split(|&b| b == 0).next().unwrap_or(&[]);
            if !verb.enabled() {
                off += 1;
                assert!(!served(word));
            }
        }
        // SMNT and its like are never served; the optional parts add to them.
        let all_on = cfg!(all(
            feature = "compat",
            feature = "status",
            feature = "mtime",
            feature = "resume",
            feature = "tls"
        ));
        assert_eq!(
            off == VERBS.iter().filter(|v| v.1 == Verb::NotImplemented).count(),
            all_on
        );
    }

    #[test]
    fn reply_codes() {
        assert_eq!(Unknown.reply_code(), 500);
        assert_eq!(NotImplemented.reply_code(), 502);
        assert_eq!(BadArgument.reply_code(), 501);
        assert_eq!(UnsupportedParameter.reply_code(), 504);
        assert_eq!(UnsupportedProtocol.reply_code(), 522);
    }

    #[test]
    fn no_argument_verbs() {
        let cases: [(&[u8], Command<'_>); 14] = [
            (b"QUIT", Command::Quit),
            (b"REIN", Command::Rein),
            (b"SYST", Command::Syst),
            (b"NOOP", Command::Noop),
            (b"FEAT", Command::Feat),
            (b"PWD", Command::Pwd),
            (b"XPWD", Command::Pwd),
            (b"CDUP", Command::Cdup),
            (b"XCUP", Command::Cdup),
            (b"PASV", Command::Pasv),
            (b"ABOR", Command::Abor),
            (b"CCC", Command::Ccc),
            (b"ALLO", Command::Allo),
            (b"EPSV", Command::Epsv(EpsvArg::Any)),
        ];
        for (line, want) in cases {
            if !served(line) {
                continue;
            }
            assert_eq!(p(line), Ok(want));
            // A trailing space, or an argument, is tolerated.
            let mut buf = [0u8; 16];
            buf[..line.len()].copy_from_slice(line);
            buf[line.len()] = b' ';
            assert_eq!(p(&buf[..=line.len()]), Ok(want));
            if want != Command::Epsv(EpsvArg::Any) {
                buf[line.len() + 1] = b'x';
                assert_eq!(p(&buf[..line.len() + 2]), Ok(want));
            }
        }
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(p(b"quit"), Ok(Command::Quit));
        assert_eq!(p(b"QuIt"), Ok(Command::Quit));
        assert_eq!(p(b"xpwd"), Ok(Command::Pwd));
        assert_eq!(p(b"user Bob"), Ok(Command::User(b"Bob")));
        assert_eq!(p(b"type i"), Ok(Command::Type(TransferType::Image)));
    }

    #[test]
    fn path_verbs() {
        type Make = fn(&'static [u8]) -> Command<'static>;
        let cases: [(&[u8], Make); 19] = [
            (b"USER", Command::User),
            (b"ACCT", Command::Acct),
            (b"CWD", Command::Cwd),
            (b"XCWD", Command::Cwd),
            (b"MKD", Command::Mkd),
            (b"XMKD", Command::Mkd),
            (b"RMD", Command::Rmd),
            (b"XRMD", Command::Rmd),
            (b"DELE", Command::Dele),
            (b"RNFR", Command::Rnfr),
            (b"RNTO", Command::Rnto),
            (b"SIZE", Command::Size),
            (b"MDTM", Command::Mdtm),
            (b"RETR", Command::Retr),
            (b"STOR", Command::Stor),
            (b"APPE", Command::Appe),
            (b"OPTS", Command::Opts),
            (b"SITE", Command::Site),
            (b"AUTH", Command::Auth),
        ];
        for (verb, make) in cases {
            if !served(verb) {
                continue;
            }
            let mut buf = [0u8; 32];
            let n = verb.len();
            buf[..n].copy_from_slice(verb);
            assert_eq!(p(&buf[..n]), Err(BadArgument), "{verb:?} without argument");
            buf[n] = b' ';
            assert_eq!(
                p(&buf[..=n]),
                Err(BadArgument),
                "{verb:?} with empty argument"
            );
            let arg = b"my file  .txt ";
            buf[n + 1..n + 1 + arg.len()].copy_from_slice(arg);
            assert_eq!(p(&buf[..n + 1 + arg.len()]), Ok(make(arg)), "{verb:?}");
        }
        if served(b"PBSZ") {
            assert_eq!(p(b"PBSZ 0"), Ok(Command::Pbsz(b"0")));
            assert_eq!(p(b"PBSZ"), Err(BadArgument));
            assert_eq!(p(b"PROT P"), Ok(Command::Prot(b"P")));
            assert_eq!(p(b"PROT"), Err(BadArgument));
            assert_eq!(p(b"AUTH TLS"), Ok(Command::Auth(b"TLS")));
        }
        if served(b"OPTS") {
            assert_eq!(p(b"OPTS UTF8 ON"), Ok(Command::Opts(b"UTF8 ON")));
        }
        if served(b"SITE") {
            assert_eq!(p(b"SITE CHMOD 644 f"), Ok(Command::Site(b"CHMOD 644 f")));
        }
    }

    #[test]
    fn argument_is_everything_after_the_first_space() {
        assert_eq!(p(b"CWD  leading"), Ok(Command::Cwd(b" leading")));
        assert_eq!(p(b"RETR a b "), Ok(Command::Retr(b"a b ")));
        assert_eq!(
            p("STOR 日本.txt".as_bytes()),
            Ok(Command::Stor("日本.txt".as_bytes()))
        );
        assert_eq!(p(b"DELE \xff\xfe"), Ok(Command::Dele(b"\xff\xfe")));
    }

    #[test]
    fn pass() {
        assert_eq!(p(b"PASS secret"), Ok(Command::Pass(b"secret")));
        assert_eq!(
            p(b"PASS  with spaces "),
            Ok(Command::Pass(b" with spaces "))
        );
        assert_eq!(p(b"PASS"), Ok(Command::Pass(b"")));
        assert_eq!(p(b"PASS "), Ok(Command::Pass(b"")));
    }

    #[test]
    fn optional_argument_verbs() {
        type Make = fn(Option<&'static [u8]>) -> Command<'static>;
        let cases: [(&[u8], Make); 5] = [
            (b"STAT", Command::Stat),
            (b"HELP", Command::Help),
            (b"STOU", Command::Stou),
            (b"MLSD", Command::Mlsd),
            (b"MLST", Command::Mlst),
        ];
        for (verb, make) in cases {
            if !served(verb) {
                continue;
            }
            let mut buf = [0u8; 16];
            let n = verb.len();
            buf[..n].copy_from_slice(verb);
            assert_eq!(p(&buf[..n]), Ok(make(None)));
            buf[n] = b' ';
            assert_eq!(p(&buf[..=n]), Ok(make(None)));
            buf[n + 1..n + 4].copy_from_slice(b"a b");
            assert_eq!(p(&buf[..n + 4]), Ok(make(Some(b"a b"))));
        }
        // MLSx arguments are paths: option-like words stay.
        assert_eq!(p(b"MLSD -a"), Ok(Command::Mlsd(Some(b"-a"))));
    }

    #[test]
    fn list_options_are_stripped() {
        for (make, verb) in [
            (
                Command::List as fn(Option<&'static [u8]>) -> Command<'static>,
                "LIST",
            ),
            (Command::Nlst, "NLST"),
        ] {
            let mut buf = [0u8; 32];
            let mut check = |arg: &str, want: Option<&'static [u8]>| {
                let line = if arg.is_empty() {
                    verb.len()
                } else {
                    buf[..4].copy_from_slice(verb.as_bytes());
                    buf[4] = b' ';
                    buf[5..5 + arg.len()].copy_from_slice(arg.as_bytes());
                    5 + arg.len()
                };
                buf[..4].copy_from_slice(verb.as_bytes());
                assert_eq!(p(&buf[..line]), Ok(make(want)), "{verb} {arg:?}");
            };
            check("", None);
            check(" ", Some(b" "));
            check("-la", None);
            check("-la ", None);
            check("-a -l", None);
            check("-a -l dir", Some(b"dir"));
            check("-la  dir", Some(b"dir"));
            check("-la dir with space", Some(b"dir with space"));
            check("dir", Some(b"dir"));
            check("dir -l", Some(b"dir -l"));
            check("/a/b", Some(b"/a/b"));
            check("-", Some(b"-"));
            check("-l -", Some(b"-"));
        }
    }

    #[test]
    fn type_arguments() {
        use TransferType::*;
        let ok: [(&[u8], TransferType); 10] = [
            (b"A", Ascii),
            (b"a", Ascii),
            (b"A N", Ascii),
            (b"a n", Ascii),
            (b"I", Image),
            (b"i", Image),
            (b"L 8", Image),
            (b"l 8", Image),
            (b"L 08", Image),
            (b"A  N", Ascii),
        ];
        for (arg, want) in ok {
            let mut buf = [0u8; 16];
            buf[..5].copy_from_slice(b"TYPE ");
            buf[5..5 + arg.len()].copy_from_slice(arg);
            assert_eq!(p(&buf[..5 + arg.len()]), Ok(Command::Type(want)), "{arg:?}");
        }
        for (arg, err) in [
            (&b"A T"[..], UnsupportedParameter),
            (b"A C", UnsupportedParameter),
            (b"E", UnsupportedParameter),
            (b"E N", UnsupportedParameter),
            (b"e t", UnsupportedParameter),
            (b"L 7", UnsupportedParameter),
            (b"L 16", UnsupportedParameter),
            (b"L", BadArgument),
            (b"L x", BadArgument),
            (b"I N", BadArgument),
            (b"A X", BadArgument),
            (b"A N X", BadArgument),
            (b"X", BadArgument),
            (b"AN", BadArgument),
            (b"ASCII", BadArgument),
        ] {
            let mut buf = [0u8; 16];
            buf[..5].copy_from_slice(b"TYPE ");
            buf[5..5 + arg.len()].copy_from_slice(arg);
            assert_eq!(p(&buf[..5 + arg.len()]), Err(err), "{arg:?}");
        }
        assert_eq!(p(b"TYPE"), Err(BadArgument));
        assert_eq!(p(b"TYPE "), Err(BadArgument));
    }

    #[test]
    #[cfg(feature = "compat")]
    fn mode_and_stru() {
        assert_eq!(p(b"MODE S"), Ok(Command::Mode));
        assert_eq!(p(b"mode s"), Ok(Command::Mode));
        assert_eq!(p(b"MODE B"), Err(UnsupportedParameter));
        assert_eq!(p(b"MODE C"), Err(UnsupportedParameter));
        assert_eq!(p(b"MODE Z"), Err(BadArgument));
        assert_eq!(p(b"MODE SS"), Err(BadArgument));
        assert_eq!(p(b"MODE"), Err(BadArgument));
        assert_eq!(p(b"STRU F"), Ok(Command::Stru));
        assert_eq!(p(b"stru f"), Ok(Command::Stru));
        assert_eq!(p(b"STRU R"), Err(UnsupportedParameter));
        assert_eq!(p(b"STRU P"), Err(UnsupportedParameter));
        assert_eq!(p(b"STRU X"), Err(BadArgument));
        assert_eq!(p(b"STRU"), Err(BadArgument));
    }

    #[test]
    #[cfg(feature = "compat")]
    fn allo_accepts_anything() {
        assert_eq!(p(b"ALLO 1024"), Ok(Command::Allo));
        assert_eq!(p(b"ALLO 1024 R 128"), Ok(Command::Allo));
        assert_eq!(p(b"ALLO junk"), Ok(Command::Allo));
    }

    #[test]
    #[cfg(feature = "resume")]
    fn rest() {
        assert_eq!(p(b"REST 0"), Ok(Command::Rest(0)));
        assert_eq!(p(b"REST 1048576"), Ok(Command::Rest(1_048_576)));
        assert_eq!(p(b"REST 18446744073709551615"), Ok(Command::Rest(u64::MAX)));
        assert_eq!(p(b"REST 18446744073709551616"), Err(BadArgument));
        assert_eq!(p(b"REST -1"), Err(BadArgument));
        assert_eq!(p(b"REST 1 "), Err(BadArgument));
        assert_eq!(p(b"REST abc"), Err(BadArgument));
        assert_eq!(p(b"REST"), Err(BadArgument));
    }

    #[test]
    #[cfg(feature = "mtime")]
    fn mfmt() {
        assert_eq!(
            p(b"MFMT 20000101000000 a file.txt"),
            Ok(Command::Mfmt {
                time: 946_684_800,
                path: b"a file.txt"
            })
        );
        assert_eq!(
            p(b"MFMT 20000101000000.5 f"),
            Ok(Command::Mfmt {
                time: 946_684_800,
                path: b"f"
            })
        );
        assert_eq!(p(b"MFMT"), Err(BadArgument));
        assert_eq!(p(b"MFMT 20000101000000"), Err(BadArgument));
        assert_eq!(p(b"MFMT 20000101000000 "), Err(BadArgument));
        assert_eq!(p(b"MFMT 2000010100000 f"), Err(BadArgument));
        assert_eq!(p(b"MFMT 20001301000000 f"), Err(BadArgument));
        assert_eq!(p(b"MFMT f 20000101000000"), Err(BadArgument));
    }

    #[test]
    fn port() {
        assert_eq!(
            p(b"PORT 127,0,0,1,4,1"),
            Ok(Command::Port(SocketAddrV4::new(
                Ipv4Addr::new(127, 0, 0, 1),
                1025
            )))
        );
        assert_eq!(
            p(b"PORT 255,255,255,255,255,255"),
            Ok(Command::Port(SocketAddrV4::new(Ipv4Addr::BROADCAST, 65535)))
        );
        assert_eq!(
            p(b"PORT 010,0,0,1,0,21"),
            Ok(Command::Port(SocketAddrV4::new(
                Ipv4Addr::new(10, 0, 0, 1),
                21
            )))
        );
        for bad in [
            &b"PORT"[..],
            b"PORT ",
            b"PORT 127,0,0,1,4",
            b"PORT 127,0,0,1,4,1,",
            b"PORT 127,0,0,1,4,1,0",
            b"PORT 256,0,0,1,4,1",
            b"PORT 127,0,0,1,4,256",
            b"PORT 127,0,0,1,4,-1",
            b"PORT 127,0,0,1,,1",
            b"PORT 127.0.0.1,4,1",
            b"PORT  127,0,0,1,4,1",
            b"PORT 127,0,0,1,4,1 ",
            b"PORT 99999999999999999999999,0,0,1,4,1",
        ] {
            assert_eq!(p(bad), Err(BadArgument), "{:?}", core::str::from_utf8(bad));
        }
    }

    #[test]
    fn eprt() {
        assert_eq!(
            p(b"EPRT |1|132.235.1.2|6275|"),
            Ok(Command::Eprt(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(132, 235, 1, 2),
                6275
            ))))
        );
        assert_eq!(
            p(b"EPRT |2|::1|5000|"),
            Ok(Command::Eprt(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::LOCALHOST,
                5000,
                0,
                0
            ))))
        );
        assert_eq!(
            p(b"EPRT !2!1080::8:800:200C:417A!5282!"),
            Ok(Command::Eprt(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(0x1080, 0, 0, 0, 8, 0x800, 0x200c, 0x417a),
                5282,
                0,
                0
            ))))
        );
        assert_eq!(
            p(b"eprt ~1~10.0.0.1~65535~"),
            Ok(Command::Eprt(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(10, 0, 0, 1),
                65535
            ))))
        );
        assert_eq!(p(b"EPRT |3|1.2.3.4|5|"), Err(UnsupportedProtocol));
        assert_eq!(p(b"EPRT |0|1.2.3.4|5|"), Err(UnsupportedProtocol));
        assert_eq!(p(b"EPRT |22|1.2.3.4|5|"), Err(UnsupportedProtocol));
        for bad in [
            &b"EPRT"[..],
            b"EPRT ",
            b"EPRT |",
            b"EPRT ||||",
            b"EPRT |1|1.2.3.4|5",
            b"EPRT |1|1.2.3.4|5||",
            b"EPRT |1|1.2.3.4|65536|",
            b"EPRT |1|1.2.3.4||",
            b"EPRT |1|1.2.3.4|x|",
            b"EPRT |1|::1|5|",
            b"EPRT |2|1.2.3.4|5|",
            b"EPRT |1|1.2.3|5|",
            b"EPRT |1|1.2.3.256|5|",
            b"EPRT |2|fe80::1%eth0|5|",
            b"EPRT |x|1.2.3.4|5|",
            b"EPRT ||1.2.3.4|5|",
            b"EPRT  |1|1.2.3.4|5|",
            b"EPRT |1|\xff|5|",
            b"EPRT \x7f1\x7f1.2.3.4\x7f5\x7f",
            b"EPRT 1.2.3.4",
        ] {
            assert_eq!(p(bad), Err(BadArgument), "{:?}", bad);
        }
    }

    #[test]
    fn utf8_check_agrees_with_core() {
        let alphabet = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
            0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xf7, 0xf8, 0xff,
        ];
        let mut state = 0x5851_f42d_4c95_7f2du64;
        let mut bytes = [0u8; 9];
        let mut valid = 0;
        for _ in 0..400_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 10) as usize;
            for (i, b) in bytes[..len].iter_mut().enumerate() {
                *b = alphabet[(state >> (6 + i * 6)) as usize % alphabet.len()];
            }
            let want = core::str::from_utf8(&bytes[..len]).is_ok();
            assert_eq!(is_utf8(&bytes[..len]), want, "{:x?}", &bytes[..len]);
            // Count the valid ones that are more than ASCII.
            valid += usize::from(want && !bytes[..len].is_ascii());
        }
        assert!(valid > 1_000, "{valid}");
        for text in [
            "",
            "a",
            "é",
            "日本",
            "\u{10ffff}",
            "\u{d7ff}",
            "\u{e000}",
            "😀x",
        ] {
            assert!(is_utf8(text.as_bytes()), "{text:?}");
        }
    }

    #[test]
    fn epsv() {
        assert_eq!(p(b"EPSV"), Ok(Command::Epsv(EpsvArg::Any)));
        assert_eq!(p(b"EPSV "), Ok(Command::Epsv(EpsvArg::Any)));
        assert_eq!(p(b"EPSV ALL"), Ok(Command::Epsv(EpsvArg::All)));
        assert_eq!(p(b"epsv all"), Ok(Command::Epsv(EpsvArg::All)));
        assert_eq!(p(b"EPSV 1"), Ok(Command::Epsv(EpsvArg::Proto(1))));
        assert_eq!(p(b"EPSV 2"), Ok(Command::Epsv(EpsvArg::Proto(2))));
        assert_eq!(p(b"EPSV 3"), Err(UnsupportedProtocol));
        assert_eq!(p(b"EPSV 300"), Err(UnsupportedProtocol));
        assert_eq!(p(b"EPSV 99999999999999999999999"), Err(UnsupportedProtocol));
        assert_eq!(p(b"EPSV ALLX"), Err(BadArgument));
        assert_eq!(p(b"EPSV -1"), Err(BadArgument));
        assert_eq!(p(b"EPSV 1 "), Err(BadArgument));
    }

    #[test]
    fn not_implemented() {
        assert_eq!(p(b"SMNT /mnt"), Err(NotImplemented));
        assert_eq!(p(b"smnt"), Err(NotImplemented));
        assert_eq!(p(b"LPRT 4,4,1,2,3,4,2,0,21"), Err(NotImplemented));
        assert_eq!(p(b"LPSV"), Err(NotImplemented));
        assert_eq!(p(b"LANG en"), Err(NotImplemented));
        assert_eq!(p(b"HOST ftp.example.com"), Err(NotImplemented));
    }

    #[test]
    fn malformed_lines() {
        for bad in [
            &b""[..],
            b" ",
            b" USER x",
            b"USERS x",
            b"USERNAME x",
            b"FOO",
            b"US3R x",
            b"USER\tx",
            b"NOOP\r",
            b"\x00",
            b"\xff\xf4ABOR",
            b"GET /",
            b"XYZ a\0",
            "ÜSER x".as_bytes(),
        ] {
            assert_eq!(p(bad), Err(Unknown), "{:?}", bad);
        }
    }

    #[test]
    fn control_bytes_in_arguments() {
        for bad in [
            &b"USER a\0b"[..],
            b"PASS \0",
            b"CWD a\rb",
            b"RETR a\n",
            b"NOOP \r",
            b"QUIT \0",
            b"LIST -la\r",
            b"SMNT \0",
        ] {
            assert_eq!(p(bad), Err(BadArgument), "{:?}", bad);
        }
        // Other control bytes are the file system's business.
        assert_eq!(p(b"CWD a\tb"), Ok(Command::Cwd(b"a\tb")));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep; the fuzz targets go further.
        let mut state = 0x1234_5678_9abc_def0u64;
        let alphabet = b"ABCDEFILMNOPRSTUVXYZ |,.:-0123456789\0\r\n\xff";
        let mut line = [0u8; 24];
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 25) as usize;
            for (i, b) in line[..len].iter_mut().enumerate() {
                *b = alphabet[((state >> (i % 8 * 8)) as usize + i) % alphabet.len()];
            }
            let _ = p(&line[..len]);
        }
    }
}
