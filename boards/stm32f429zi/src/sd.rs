//! `storage-sd`: FAT16/32 on an SD card over SPI, through ferry-fs's
//! `embedded-sdmmc` adapter (`SdFat`): no allocator, 8.3 names.
//!
//! The card sits on SPI3 at the pins of the Nucleo-144's CN8 "SDMMC" block
//! (README.md, "SD card"): SCK PC10, MISO PC11, MOSI PC12, CS PC8; none of
//! them is used by the Ethernet (RMII) or the W5500 (SPI1, PD14/PD15). The
//! card must hold an MBR with a FAT16 or FAT32 first partition (as cards
//! come, or `mkfs.fat`); nothing is formatted at boot.
//!
//! The bus runs at 400 kHz, the speed every card accepts while it
//! initialises, and stays there: `embedded-sdmmc`'s `SdCard` owns the bus
//! and this HAL cannot change an SPI's clock after `Spi::new` (a faster bus
//! is future work; README.md says what it costs).
//!
//! The board has no wall clock: files are stamped 1980-01-01.
#[cfg(any(feature = "storage-flash", feature = "storage-ram"))]
compile_error!(
    "choose one storage feature: storage-sd or storage-flash or storage-ram \
     (with --no-default-features)"
);

use core::mem::size_of;

use embedded_hal_bus::spi::ExclusiveDevice;
use ferry_fs::sdmmc::embedded_sdmmc::{SdCard, SdCardError};
use ferry_fs::sdmmc::{SdError, SdFat, UnixClock, VolumeManager};
use static_cell::StaticCell;
use stm32f4xx_hal::gpio::{gpioc, Output, PinState, PushPull, Speed};
use stm32f4xx_hal::pac::{SPI3, TIM2};
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Clocks;
use stm32f4xx_hal::spi::{Mode, Phase, Polarity, Spi};
use stm32f4xx_hal::timer::DelayUs;

use crate::stack::SESSIONS;

/// SPI clock: the 400 kHz of card initialisation.
const SPI_HZ: u32 = 400_000;
/// Directories open at once: a listing per session and two for a path walk.
const DIRS: usize = SESSIONS + 2;

type Bus = Spi<SPI3>;
type ChipSelect = gpioc::PC8<Output<PushPull>>;
type Card = SdCard<ExclusiveDevice<Bus, ChipSelect, embedded_hal_bus::spi::NoDelay>, DelayUs<TIM2>>;
type Manager = VolumeManager<Card, UnixClock, DIRS, SESSIONS, 1>;
/// The volume the server serves: one open file per session.
pub type Fs = SdFat<'static, Card, UnixClock, DIRS, SESSIONS>;

/// RAM one more open file takes: one more file and directory slot in the
/// volume manager (`FIRMWARE_RAM`).
pub const PER_FILE_RAM: u32 = (size_of::<
    VolumeManager<Card, UnixClock, { DIRS + 1 }, { SESSIONS + 1 }, 1>,
>() - size_of::<Manager>()) as u32;

static MANAGER: StaticCell<Manager> = StaticCell::new();

/// What the SD card takes from the chip.
pub struct Peripherals {
    /// SPI3 SCK (CN8, the SDIO D2 pin).
    pub sck: gpioc::PC10,
    /// SPI3 MISO (CN8, the SDIO D3 pin).
    pub miso: gpioc::PC11,
    /// SPI3 MOSI (CN8, the SDIO CK pin).
    pub mosi: gpioc::PC12,
    /// The card's chip select (CN8, the SDIO D0 pin).
    pub cs: gpioc::PC8,
    /// The SPI peripheral.
    pub spi: SPI3,
    /// A 32-bit timer for the card driver's delays.
    pub timer: TIM2,
}

/// Why the card did not mount (the log shows it with `Debug`).
#[derive(Debug)]
#[allow(dead_code)] // the fields are read through `Debug` only
pub enum StorageError {
    /// The card did not answer or initialise.
    Card(SdCardError),
    /// No FAT16/32 first partition, or it did not open.
    Volume(SdError),
}

/// Sets SPI3 up, initialises the card and opens its first partition for
/// the whole run; the card's size in bytes.
pub fn mount(p: Peripherals, clocks: &Clocks) -> Result<(Fs, u64), StorageError> {
    let sck = p.sck.into_alternate().speed(Speed::High);
    let miso = p.miso.into_alternate().speed(Speed::High);
    let mosi = p.mosi.into_alternate().speed(Speed::High);
    let mode = Mode {
        polarity: Polarity::IdleLow,
        phase: Phase::CaptureOnFirstTransition,
    };
    let bus: Bus = Spi::new(p.spi, (sck, miso, mosi), mode, SPI_HZ.Hz(), clocks);
    let cs: ChipSelect = p.cs.into_push_pull_output_in_state(PinState::High);
    let Ok(device) = ExclusiveDevice::new_no_delay(bus, cs);
    let card = SdCard::new(device, p.timer.delay_us(clocks));
    // The first access initialises the card.
    let bytes = card.num_bytes().map_err(StorageError::Card)?;
    let manager: &'static Manager =
        MANAGER.init(VolumeManager::new_with_limits(card, UnixClock(|| 0), 1));
    let fs = SdFat::open(manager).map_err(StorageError::Volume)?;
    Ok((fs, bytes))
}
