//! Loop devices through the kernel's ioctls (LOOP_CTL_GET_FREE, LOOP_CONFIGURE),
//! no losetup. Devices are attached with LO_FLAGS_AUTOCLEAR: the kernel detaches
//! them once unmounted and closed, so a killed process cannot leak one.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::bail;
use crate::error::{Context, Result};

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_CAPACITY: libc::c_ulong = 0x4C07;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// An attached loop device (kept open; detached by the kernel after the last
/// close once unmounted, or explicitly with [`LoopDevice::detach`]).
#[derive(Debug)]
pub struct LoopDevice {
    file: File,
    path: PathBuf,
}

impl LoopDevice {
    /// Attach `backing` to a free loop device.
    pub fn attach(backing: &Path, read_only: bool) -> Result<LoopDevice> {
        let backing_file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .custom_flags(libc::O_CLOEXEC)
            .open(backing)
            .with_context(|| format!("cannot open disk {}", backing.display()))?;
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/loop-control")
            .context("cannot open /dev/loop-control: is the loop module loaded?")?;
        for _ in 0..64 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
            let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
            if n < 0 {
                return Err(std::io::Error::last_os_error())
                    .context("cannot get a free loop device");
            }
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let dev = match OpenOptions::new()
                .read(true)
                .write(!read_only)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    make_node(&path, n as u32)?;
                    OpenOptions::new()
                        .read(true)
                        .write(!read_only)
                        .custom_flags(libc::O_CLOEXEC)
                        .open(&path)
                        .with_context(|| format!("cannot open {}", path.display()))?
                }
                Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
            };
            // SAFETY: LoopConfig is plain old data; zero is a valid value for every field.
            let mut cfg: LoopConfig = unsafe { std::mem::zeroed() };
            cfg.fd = backing_file.as_raw_fd() as u32;
            cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | if read_only { LO_FLAGS_READ_ONLY } else { 0 };
            let name = backing.as_os_str().as_encoded_bytes();
            let k = name.len().min(63);
            cfg.info.lo_file_name[..k].copy_from_slice(&name[..k]);
            // SAFETY: cfg is a valid loop_config that outlives the call.
            let rc = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE as _, &cfg) };
            if rc == 0 {
                return Ok(LoopDevice { file: dev, path });
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EBUSY) {
                continue; // another process took it first
            }
            return Err(e).with_context(|| format!("cannot configure {}", path.display()));
        }
        bail!("no free loop device after 64 attempts: detach unused ones with `losetup -D`")
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `(major, minor)` of the device.
    pub fn major_minor(&self) -> Result<(u64, u64)> {
        let rdev = self
            .file
            .metadata()
            .with_context(|| format!("cannot stat {}", self.path.display()))?
            .rdev();
        Ok((libc::major(rdev) as u64, libc::minor(rdev) as u64))
    }

    /// Detach now (fails with EBUSY while mounted; autoclear then does it at unmount).
    pub fn detach(self) -> Result<()> {
        // SAFETY: LOOP_CLR_FD takes no argument.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), LOOP_CLR_FD as _, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot detach {}", self.path.display()));
        }
        Ok(())
    }
}

fn make_node(path: &Path, n: u32) -> Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: mknod with a valid C string; loop devices are block major 7.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o660, libc::makedev(7, n)) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e).with_context(|| format!("cannot create {}", path.display()));
        }
    }
    Ok(())
}

/// Detach the loop device at `dev` (e.g. one left behind by a killed process).
pub fn detach_path(dev: &Path) -> Result<()> {
    open_device(dev)?.detach()
}

fn open_device(dev: &Path) -> Result<LoopDevice> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(dev)
        .with_context(|| format!("cannot open {}", dev.display()))?;
    Ok(LoopDevice {
        file,
        path: dev.to_path_buf(),
    })
}

/// Wait until the loop device `major:minor` has no backing file any more
/// (released by auto-clear), at most `timeout`. There is no event for this,
/// so it polls every 10 ms. Returns whether it was released.
pub fn wait_released(major: u64, minor: u64, timeout: std::time::Duration) -> bool {
    let p = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/loop/backing_file"));
    let end = std::time::Instant::now() + timeout;
    loop {
        if !p.exists() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Loop devices whose backing file lies under `dir` (for leak checks and repair).
pub fn devices_backed_under(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
            let b = PathBuf::from(b.trim_end());
            if b.starts_with(dir) {
                out.push((PathBuf::from(format!("/dev/{name}")), b));
            }
        }
    }
    out
}

/// Loop devices whose backing file is exactly `file`.
pub fn devices_backed_by(file: &Path) -> Vec<PathBuf> {
    devices_backed_under(file)
        .into_iter()
        .filter(|(_, b)| b == file)
        .map(|(d, _)| d)
        .collect()
}

/// Make the loop device `dev` take its backing file's new length (`losetup -c`).
pub fn set_capacity(dev: &Path) -> Result<()> {
    let lo = open_device(dev)?;
    // SAFETY: LOOP_SET_CAPACITY takes no argument.
    let rc = unsafe { libc::ioctl(lo.file.as_raw_fd(), LOOP_SET_CAPACITY as _, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot resize {}", dev.display()));
    }
    Ok(())
}
