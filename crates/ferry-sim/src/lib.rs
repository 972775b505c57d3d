//! A deterministic simulation of Ferry's whole engine under faults.
//!
//! One run ([`run`]) draws a scenario from a [`Source`] (a seed, or a
//! fuzzer's bytes): how many clients and what they do, how the network,
//! the storage and the clock misbehave. It then drives the real
//! [`ferry_core::Server::poll`] step by step against:
//! - [`net::SimStack`], byte pipes with partial reads and writes,
//!   `WouldBlock` storms, resets and half-closes, accept floods, data
//!   connections that never come;
//! - storage: [`storage::MemFs`] (with a capacity) or littlefs on a
//!   [`ferry_fs::block::CutOff`] RAM disk whose power fails at a random
//!   write (the run remounts and goes on), either under
//!   [`storage::FaultFs`], which injects errors into any call;
//! - a simulated clock that jumps;
//! - [`client::Client`]s whose actions come from a model of FTP.
//!
//! After every step it checks the invariants listed in docs/ROBUSTNESS.md;
//! the first one broken ends the run with a [`Outcome::failure`] and the
//! trace that `cargo xtask sim --seed S` replays exactly.

pub mod client;
pub mod model;
pub mod net;
pub mod observe;
pub mod reply;
pub mod rng;
pub mod storage;
pub mod trace;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use ferry_core::{AuthError, Authenticator, Config, Permissions, Server, User};
use ferry_fs::block::{BlockDevice, BlockError, CutOff, RamDisk};
use ferry_fs::littlefs::{self, LfsStorage};
use ferry_fs::FileSystem;
use ferry_net::{Clock, Instant};

use client::{Client, Ctx, Kind};
use model::{Expect, Model};
use net::{NetFaults, SimStack, CONTROL_PORT};
use observe::{Seen, TraceObserver};
use rng::{Shared, Source};
use storage::{FaultFs, FsFaults, MemFs};
use trace::{SharedTrace, Trace};

/// Session slots of the server under test: few, so a full table happens.
pub const SESSIONS: usize = 4;
/// The server's transfer buffer: small, so a transfer takes many chunks.
pub const BUF: usize = 512;
/// littlefs geometry: 256 blocks of 512 bytes.
const BLOCK: usize = 512;
const BLOCKS: usize = 256;
/// Most `poll` calls in one step while the server says it is busy.
const POLLS_PER_STEP: usize = 64;

/// Which storage a run serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// [`MemFs`], with a capacity.
    Memory,
    /// littlefs on a RAM disk, with power cuts.
    Littlefs,
}

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Steps a run may take before it counts as hung.
    pub max_steps: u64,
    /// Plant a storage bug (the last chunk written before a close is lost)
    /// to show that the checks catch it.
    pub plant_bug: bool,
    /// Force this backend instead of drawing one.
    pub backend: Option<Backend>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_steps: 40_000,
            plant_bug: false,
            backend: None,
        }
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The first invariant broken, or `None`.
    pub failure: Option<String>,
    /// Everything that happened.
    pub trace: Vec<String>,
    /// Steps taken.
    pub steps: u64,
    /// The scenario, in one line.
    pub scenario: String,
}

/// Runs the scenario of `seed`.
pub fn run_seed(seed: u64, options: &Options) -> Outcome {
    run(Source::seeded(seed), options)
}

/// The simulated clock: monotonic milliseconds, and a wall clock that may
/// jump either way (or be unknown).
#[derive(Debug)]
pub struct SimClock {
    now: Cell<u64>,
    wall: Cell<Option<u64>>,
}

impl SimClock {
    /// A clock at `now_ms`, whose wall clock reads `wall` seconds then.
    pub fn new(now_ms: u64, wall: Option<u64>) -> SimClock {
        SimClock {
            now: Cell::new(now_ms),
            wall: Cell::new(wall),
        }
    }

    /// Moves the monotonic clock forward.
    pub fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        Instant(self.now.get())
    }
    fn unix_time(&self) -> Option<u64> {
        self.wall.get().map(|w| w + self.now.get() / 1000)
    }
}

/// Users: "u"/"p" may do everything, "ro"/"p" only read. With `slow`,
/// every check answers `Pending` and its result comes after 1–40 calls of
/// `poll_login`, as from a host that hashes passwords on a worker thread.
#[derive(Debug, Default)]
pub struct SimAuth {
    /// Checks answer later.
    pub slow: bool,
    /// Pending results by session slot, with the polls they still wait.
    pending: BTreeMap<usize, (Result<User, AuthError>, u32)>,
    /// Checks begun (makes the waits vary, deterministically).
    begun: u32,
}

impl Authenticator for SimAuth {
    fn authenticate(
        &mut self,
        user: &[u8],
        password: &[u8],
        _peer: IpAddr,
    ) -> Result<User, AuthError> {
        match (user, password) {
            (b"u", b"p") => Ok(User {
                id: 0,
                permissions: Permissions::ALL,
            }),
            (b"ro", b"p") => Ok(User {
                id: 1,
                permissions: Permissions::READ_ONLY,
            }),
            _ => Err(AuthError::Invalid),
        }
    }
    fn begin_login(
        &mut self,
        slot: usize,
        user: &[u8],
        password: &[u8],
        peer: IpAddr,
    ) -> Result<User, AuthError> {
        let result = self.authenticate(user, password, peer);
        if !self.slow {
            return result;
        }
        self.begun = self.begun.wrapping_add(1);
        self.pending.insert(slot, (result, self.begun % 40 + 1));
        Err(AuthError::Pending)
    }
    fn poll_login(&mut self, slot: usize) -> Option<Result<User, AuthError>> {
        match self.pending.get_mut(&slot) {
            Some((_, left)) if *left > 1 => {
                *left -= 1;
                None
            }
            Some(_) => self.pending.remove(&slot).map(|(r, _)| r),
            None => Some(Err(AuthError::Invalid)),
        }
    }
    fn home(&self, _user: &User) -> &[u8] {
        b"/"
    }
}

/// What a run is made of, drawn first.
#[derive(Debug, Clone)]
struct Scenario {
    backend: Backend,
    clients: usize,
    floods: usize,
    net: NetFaults,
    fs: FsFaults,
    capacity: usize,
    power_cuts: u32,
    /// Password checks answer `Pending` (see [`SimAuth`]).
    slow_auth: bool,
    config: Config,
}

impl Scenario {
    fn draw(r: &mut Source, options: &Options) -> Scenario {
        let backend = options.backend.unwrap_or(if r.chance(250) {
            Backend::Littlefs
        } else {
            Backend::Memory
        });
        let clients = match backend {
            Backend::Memory => r.range_usize(1, 40),
            Backend::Littlefs => r.range_usize(1, 10),
        };
        let quiet = r.chance(200);
        let net = if quiet {
            NetFaults::default()
        } else {
            NetFaults {
                would_block: r.range(0, 300),
                storm: r.range(0, 100),
                storm_len: r.range(1, 20),
                partial: r.range(0, 500),
                socket_fails: r.range(0, 20),
            }
        };
        let fs = FsFaults {
            error: if quiet || r.chance(400) {
                0
            } else {
                r.range(1, 40)
            },
            partial: r.range(0, 300),
            drop_last_chunk: options.plant_bug,
            fail_on: None,
        };
        let lo = u16::try_from(r.range(50_000, 50_100)).unwrap_or(50_000);
        let span = u16::try_from(r.range(0, 12)).unwrap_or(0);
        let config = Config {
            max_per_ip: u16::try_from(r.below(4)).unwrap_or(0),
            idle_timeout_ms: r.range(3_000, 20_000),
            data_timeout_ms: r.range(1_000, 6_000),
            login_fail_delay_ms: u32::try_from(r.range(0, 1_000)).unwrap_or(0),
            login_timeout_ms: u32::try_from(r.range(2_000, 30_000)).unwrap_or(10_000),
            max_login_failures: u8::try_from(r.range(1, 4)).unwrap_or(3),
            passive_ports: (lo, lo + span),
            ..Config::default()
        };
        Scenario {
            backend,
            clients,
            floods: r.range_usize(0, (clients / 3).min(6)),
            net,
            fs,
            capacity: r.range_usize(2_000, 200_000),
            power_cuts: match backend {
                Backend::Memory => 0,
                Backend::Littlefs => u32::try_from(r.range(0, 2)).unwrap_or(0),
            },
            slow_auth: r.chance(500),
            config,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{:?} storage, {} clients ({} flooding), net {:?}, fs {:?}, capacity {} B, {} power cut(s), idle {} ms, data {} ms, login delay {} ms, login timeout {} ms, max/ip {}, passive ports {:?}, slow password checks: {}",
            self.backend,
            self.clients,
            self.floods,
            self.net,
            self.fs,
            self.capacity,
            self.power_cuts,
            self.config.idle_timeout_ms,
            self.config.data_timeout_ms,
            self.config.login_fail_delay_ms,
            self.config.login_timeout_ms,
            self.config.max_per_ip,
            self.config.passive_ports,
            self.slow_auth
        )
    }
}

/// How an epoch (the server's life between power cuts) ended.
#[derive(Debug, PartialEq, Eq)]
enum EpochEnd {
    /// Every client finished, and the leak checks ran.
    Finished,
    /// The power failed.
    PowerCut,
    /// An invariant broke.
    Failed,
}

type Sim<F> = Server<SimStack, F, SESSIONS, BUF>;

/// A run in progress: everything but the storage.
struct World {
    rng: Shared,
    trace: SharedTrace,
    stack: SimStack,
    clock: SimClock,
    auth: SimAuth,
    clients: Vec<Client>,
    model: Model,
    failure: Option<String>,
    steps: u64,
    options: Options,
    scenario: Scenario,
    /// Raised by the littlefs device when the power fails.
    power_cut: Rc<Cell<bool>>,
    /// What the server reported through its observer.
    seen: Seen,
}

/// Runs one scenario drawn from `source`.
pub fn run(source: Source, options: &Options) -> Outcome {
    let rng: Shared = Rc::new(RefCell::new(source));
    let trace: SharedTrace = Rc::new(RefCell::new(Trace::default()));
    let scenario = Scenario::draw(&mut rng.borrow_mut(), options);
    trace
        .borrow_mut()
        .log(format!("scenario: {}", scenario.describe()));
    let wall = if rng.borrow_mut().chance(200) {
        None
    } else {
        Some(1_700_000_000)
    };
    let mut clients = Vec::new();
    for id in 0..scenario.clients {
        let kind = if id < scenario.floods {
            Kind::Flood
        } else {
            Kind::Normal
        };
        let start = rng.borrow_mut().range(0, 2_000);
        clients.push(Client::new(id, kind, &mut rng.borrow_mut(), start));
    }
    let mut world = World {
        stack: SimStack::new(rng.clone(), trace.clone(), scenario.net),
        rng,
        trace,
        clock: SimClock {
            now: Cell::new(1_000),
            wall: Cell::new(wall),
        },
        auth: SimAuth {
            slow: scenario.slow_auth,
            ..SimAuth::default()
        },
        clients,
        model: Model::default(),
        failure: None,
        steps: 0,
        options: *options,
        scenario,
        power_cut: Rc::new(Cell::new(false)),
        seen: Seen::default(),
    };
    match world.scenario.backend {
        Backend::Memory => {
            let mut mem = MemFs::new(world.scenario.capacity);
            world.setup(&mut mem);
            let mut fs = world.fault_fs(&mut mem);
            world.epoch(&mut fs);
        }
        Backend::Littlefs => world.littlefs(),
    }
    let trace = std::mem::take(&mut world.trace.borrow_mut().lines);
    Outcome {
        failure: world.failure,
        trace,
        steps: world.steps,
        scenario: world.scenario.describe(),
    }
}

impl World {
    fn log(&self, line: impl AsRef<str>) {
        self.trace.borrow_mut().log(line);
    }

    fn fail(&mut self, why: String) {
        self.log(format!("FAILURE: {why}"));
        if self.failure.is_none() {
            self.failure = Some(why);
        }
    }

    fn fault_fs<'a, F: FileSystem>(&self, fs: &'a mut F) -> FaultFs<'a, F> {
        FaultFs::new(fs, self.rng.clone(), self.trace.clone(), self.scenario.fs)
    }

    /// The files every run starts with: `/pub/p*` and each client's
    /// directory with some of its files.
    fn setup<F: FileSystem>(&mut self, fs: &mut F) {
        let mut r = self.rng.borrow_mut();
        let _ = fs.create_dir(b"/pub");
        let _ = fs.create_dir(b"/shared");
        for i in 0..client::PUB_FILES {
            let len = [0, 700, 3000].get(i).copied().unwrap_or(10);
            let data = r.fill(len);
            let path = client::pub_path(i);
            match storage::write_file(fs, path.as_bytes(), &data) {
                Ok(()) => self.model.set(&path, Expect::exactly(Some(data))),
                Err(_) => self.model.set(&path, Expect::Unknown),
            }
        }
        for c in 0..self.scenario.clients {
            let _ = fs.create_dir(format!("/c{c}").as_bytes());
            for i in 0..client::FILES {
                let path = client::file_path(c, i);
                let content = client::initial(&mut r);
                let stored = match &content {
                    None => Ok(()),
                    Some(data) => storage::write_file(fs, path.as_bytes(), data),
                };
                // A full volume at setup: the file is whatever got written.
                let expect = match stored {
                    Ok(()) => Expect::exactly(content),
                    Err(_) => Expect::Unknown,
                };
                self.model.set(&path, expect);
            }
        }
    }

    /// Reads every path of the model straight from storage and checks it.
    /// During a run a read may fail (littlefs may have no free file slot
    /// while sessions hold files open); at a mount and at the end, when no
    /// session holds any, it must not.
    fn check_storage<F: FileSystem>(&mut self, fs: &mut F, paths: &[String], when: &str) {
        let strict = when != "after a reply";
        for path in paths {
            let why = match storage::read_file(fs, path.as_bytes()) {
                Ok(content) => self.model.check(path, &content, 0).err(),
                Err(kind) if strict => Some(format!("{path} cannot be read: {kind:?}")),
                Err(_) => None,
            };
            if let Some(why) = why {
                self.fail(format!("storage check {when}: {why}"));
                return;
            }
        }
    }

    /// Serves littlefs across power cuts.
    fn littlefs(&mut self) {
        let fresh = match RamDisk::new(vec![0u8; BLOCK * BLOCKS], BLOCK) {
            Ok(d) => d,
            Err(e) => return self.fail(format!("RAM disk: {e:?}")),
        };
        let Ok(mut storage) = LfsStorage::<_, BLOCK, BLOCKS>::new(fresh) else {
            return self.fail("littlefs storage geometry".into());
        };
        if littlefs::format(&mut storage).is_err() {
            return self.fail("littlefs format failed".into());
        }
        if littlefs::mount_and_then(&mut storage, |lfs| self.setup(lfs)).is_err() {
            return self.fail("littlefs mount after format failed".into());
        }
        let mut disk = storage.into_inner().into_inner();
        let mut cuts_left = self.scenario.power_cuts;
        loop {
            let budget = (cuts_left > 0).then(|| self.rng.borrow_mut().range(1, 100));
            let Ok(ram) = RamDisk::new(disk, BLOCK) else {
                return self.fail("RAM disk geometry".into());
            };
            self.power_cut.set(false);
            let dev = Watched {
                inner: match budget {
                    Some(b) => CutOff::new(ram, b),
                    None => CutOff::unlimited(ram),
                },
                cut: self.power_cut.clone(),
            };
            let Ok(mut storage) = LfsStorage::<_, BLOCK, BLOCKS>::new(dev) else {
                return self.fail("littlefs storage geometry".into());
            };
            let end = littlefs::mount_and_then(&mut storage, |lfs| {
                // Durability: what the clients were told must have survived.
                let paths = self.model.paths();
                self.check_storage(lfs, &paths, "after mounting");
                if self.failure.is_some() {
                    return EpochEnd::Failed;
                }
                let mut fs = self.fault_fs(lfs);
                self.epoch(&mut fs)
            });
            let device = storage.into_inner();
            self.log(format!(
                "littlefs epoch over: {} block writes (budget {budget:?})",
                device.inner.writes()
            ));
            disk = device.inner.into_inner().into_inner();
            match end {
                Err(e) => {
                    return self.fail(format!(
                        "the littlefs volume does not mount after a power cut: {e:?}"
                    ));
                }
                Ok(EpochEnd::PowerCut) => {
                    cuts_left = cuts_left.saturating_sub(1);
                    self.log("POWER CUT: the device restarts; every connection is gone");
                    self.stack.power_cut();
                    self.each_client(Client::power_cut);
                }
                Ok(_) => return,
            }
        }
    }

    /// Runs a server over `fs` until every client is finished, the power
    /// fails, or an invariant breaks.
    fn epoch<'a, F: FileSystem>(&mut self, fs: &mut FaultFs<'a, F>) -> EpochEnd {
        let mut server: Box<Sim<FaultFs<'a, F>>> = Box::new(Server::new(self.scenario.config));
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), CONTROL_PORT);
        if server.listen(&mut self.stack, any).is_err() {
            // socket() may fail by injection: try again without faults.
            let faults = std::mem::take(&mut self.stack.faults);
            let listened = server.listen(&mut self.stack, any);
            self.stack.faults = faults;
            if listened.is_err() {
                self.fail("cannot listen".into());
                return EpochEnd::Failed;
            }
        }
        loop {
            if self.failure.is_some() {
                return EpochEnd::Failed;
            }
            if self.steps >= self.options.max_steps {
                let waiting: Vec<String> = self
                    .clients
                    .iter()
                    .filter(|c| !c.finished())
                    .map(Client::describe)
                    .take(8)
                    .collect();
                self.fail(format!(
                    "step budget of {} used up; still running: {}",
                    self.options.max_steps,
                    waiting.join("; ")
                ));
                return EpochEnd::Failed;
            }
            self.steps += 1;
            self.trace.borrow_mut().now = self.clock.now.get();
            // Checked before the server runs the commands sent since.
            let checks = self.each_client(Client::step);
            self.check_storage(fs.inner(), &checks, "after a reply");
            if self.failure.is_some() {
                return EpochEnd::Failed;
            }
            let busy = match self.poll(&mut server, fs) {
                Some(busy) => busy,
                None => return EpochEnd::Failed,
            };
            if self.power_cut.get() {
                self.log("the power fails (a block write was refused)");
                return EpochEnd::PowerCut;
            }
            if self.clients.iter().all(Client::finished) {
                return self.wind_down(&mut server, fs);
            }
            self.advance(busy);
        }
    }

    /// Runs `f` on every client in turn (until an invariant breaks);
    /// returns the paths they ask to check in storage.
    fn each_client(&mut self, mut f: impl FnMut(&mut Client, &mut Ctx<'_>)) -> Vec<String> {
        let mut checks = Vec::new();
        let now = self.clock.now.get();
        for c in &mut self.clients {
            let mut cx = Ctx {
                stack: &mut self.stack,
                rng: &self.rng,
                trace: &self.trace,
                model: &mut self.model,
                now,
                seen: &self.seen,
                config: &self.scenario.config,
                checks: &mut checks,
                failure: &mut self.failure,
            };
            f(c, &mut cx);
            if self.failure.is_some() {
                break;
            }
        }
        checks
    }

    /// Polls until the server is not busy (at most [`POLLS_PER_STEP`]
    /// times); `None` if it panicked.
    fn poll<'a, F: FileSystem>(
        &mut self,
        server: &mut Sim<FaultFs<'a, F>>,
        fs: &mut FaultFs<'a, F>,
    ) -> Option<bool> {
        let mut busy = false;
        for _ in 0..POLLS_PER_STEP {
            let mut observer = TraceObserver {
                trace: &self.trace,
                seen: &mut self.seen,
                now: self.clock.now.get(),
            };
            let polled = catch_unwind(AssertUnwindSafe(|| {
                server.poll(
                    &mut self.stack,
                    fs,
                    &mut self.auth,
                    &self.clock,
                    &mut observer,
                )
            }));
            match polled {
                Ok(p) if p.busy => busy = true,
                Ok(_) => break,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    self.fail(format!("Server::poll panicked: {what}"));
                    return None;
                }
            }
        }
        Some(busy)
    }

    /// Moves the clock: mostly a little, sometimes a lot; the wall clock
    /// jumps now and then.
    fn advance(&mut self, busy: bool) {
        let mut r = self.rng.borrow_mut();
        let dt = match r.weighted(&[300, 500, 197, 3]) {
            0 if busy => 0,
            0 | 1 => r.range(1, 20),
            2 => r.range(50, 1_500),
            _ => r.range(2_000, 25_000),
        };
        let jump_wall = r.chance(3);
        let wall = r.range(0, 4_000_000_000);
        drop(r);
        if dt >= 2_000 {
            self.log(format!("clock jumps forward {dt} ms"));
        }
        self.clock.now.set(self.clock.now.get() + dt);
        if jump_wall && self.clock.wall.get().is_some() {
            self.log(format!("wall clock jumps to {wall}"));
            self.clock.wall.set(Some(wall));
        }
    }

    /// Every client is finished: lets every timeout pass, then checks that
    /// nothing is left behind.
    fn wind_down<'a, F: FileSystem>(
        &mut self,
        server: &mut Sim<FaultFs<'a, F>>,
        fs: &mut FaultFs<'a, F>,
    ) -> EpochEnd {
        self.log("every client is finished: waiting out the timeouts");
        let c = self.scenario.config;
        let wait = c.idle_timeout_ms
            + c.data_timeout_ms
            + u64::from(c.login_fail_delay_ms)
            + u64::from(c.login_timeout_ms)
            + 10_000;
        let mut waited = 0;
        while waited <= wait {
            self.trace.borrow_mut().now = self.clock.now.get();
            if self.poll(server, fs).is_none() {
                return EpochEnd::Failed;
            }
            if self.power_cut.get() {
                return EpochEnd::PowerCut;
            }
            self.clock.now.set(self.clock.now.get() + 500);
            waited += 500;
        }
        let sessions = server.session_count();
        let sockets = self.stack.open_sockets();
        let listeners = self.stack.listeners();
        let files = fs.open_files();
        self.log(format!(
            "left behind: {sessions} sessions, {sockets} sockets ({listeners} listening), {files} open files"
        ));
        if sessions != 0 {
            self.fail(format!(
                "{sessions} session slot(s) still taken after every client left"
            ));
        } else if listeners != 1 || sockets != 1 {
            self.fail(format!(
                "{sockets} socket(s) open ({listeners} listening) after every client left; expected only the control listener"
            ));
        } else if files != 0 {
            self.fail(format!(
                "{files} file(s) still open after every client left"
            ));
        }
        for client in &self.clients {
            if let Some(c) = client.ctrl() {
                if !self.stack.server_closed(c) {
                    let id = client.id;
                    self.fail(format!("c{id}'s control connection is still open"));
                    break;
                }
            }
        }
        let paths = self.model.paths();
        self.check_storage(fs.inner(), &paths, "at the end");
        if self.failure.is_some() {
            EpochEnd::Failed
        } else {
            EpochEnd::Finished
        }
    }
}

/// The power-cut device under littlefs: a [`CutOff`] RAM disk that
/// raises a flag when it refuses a write, so the run knows the power failed.
struct Watched {
    inner: CutOff<RamDisk<Vec<u8>>>,
    cut: Rc<Cell<bool>>,
}

impl Watched {
    fn watch(&self, r: Result<(), BlockError>) -> Result<(), BlockError> {
        if r == Err(BlockError::PowerCut) {
            self.cut.set(true);
        }
        r
    }
}

impl BlockDevice for Watched {
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }
    fn block_count(&self) -> usize {
        self.inner.block_count()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.inner.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), BlockError> {
        let r = self.inner.program(offset, data);
        self.watch(r)
    }
    fn erase(&mut self, offset: u64, len: u64) -> Result<(), BlockError> {
        let r = self.inner.erase(offset, len);
        self.watch(r)
    }
    fn sync(&mut self) -> Result<(), BlockError> {
        let r = self.inner.sync();
        self.watch(r)
    }
}
