//! FTP command parsing: one line (without CR LF) in, a [`Command`] borrowing
//! from it out.
//!
//! Contract: [`Command::parse`] never panics and never allocates; every input
//! gives either a command or a [`ParseError`] that names the reply code.
use ferry_net::{SocketAddr, SocketAddrV4};

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
    /// A known verb that Ferry does not implement (e.g. `SMNT`): 502.
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
    pub fn parse(line: &'a [u8]) -> Result<Command<'a>, ParseError> {
        let _ = line;
        todo!("parser")
    }
}
