//! What Linux and macOS share: `sysconf`, `getrlimit(RLIMIT_NOFILE)` and
//! `kill(pid, 0)`, as raw answers and their decoding.

use super::Limit;

/// `EPERM` and `ESRCH` (the same on Linux, macOS and the BSDs).
const EPERM: i32 = 1;
const ESRCH: i32 = 3;
#[cfg(unix)]
const _: () = assert!(EPERM == libc::EPERM && ESRCH == libc::ESRCH);

/// The text of an OS error code (`strerror` on the OS that produced it).
pub(super) fn os_error(code: i32) -> String {
    std::io::Error::from_raw_os_error(code).to_string()
}

/// `RLIMIT_NOFILE` as `(soft, hard)` from `getrlimit`'s answer, `infinity`
/// being the OS's `RLIM_INFINITY`.
pub(super) fn nofile(
    raw: Result<(u64, u64), i32>,
    infinity: u64,
) -> Result<(Limit, Limit), String> {
    let (soft, hard) = raw.map_err(os_error)?;
    let limit = |v: u64| {
        if v == infinity {
            Limit::Unlimited
        } else {
            Limit::Finite(v)
        }
    };
    Ok((limit(soft), limit(hard)))
}

/// psutil's `pid_exists` on POSIX from `kill(pid, 0)`'s answer: a process
/// that could be signalled, or that refused with `EPERM`, exists; `ESRCH`
/// says it does not. Any other error is raised (as psutil does).
pub(super) fn kill_says_exists(raw: Result<(), i32>) -> Result<bool, String> {
    match raw {
        Ok(()) | Err(EPERM) => Ok(true),
        Err(ESRCH) => Ok(false),
        Err(code) => Err(os_error(code)),
    }
}

/// `sysconf(_SC_NPROCESSORS_ONLN)`.
#[cfg(unix)]
pub(super) fn online_cpus() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    #[allow(
        clippy::useless_conversion,
        reason = "c_long is 32 bits on some targets"
    )]
    let n = i64::from(n);
    n
}

/// `getrlimit(RLIMIT_NOFILE)` as `(soft, hard)`, or the errno.
#[cfg(unix)]
pub(super) fn getrlimit_nofile() -> Result<(u64, u64), i32> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(errno());
    }
    Ok((rl.rlim_cur, rl.rlim_max))
}

/// `kill(pid, 0)`: `Ok` when the signal could be sent, else the errno.
#[cfg(unix)]
pub(super) fn kill0(pid: libc::pid_t) -> Result<(), i32> {
    // SAFETY: signal 0 only checks for existence and permission.
    if unsafe { libc::kill(pid, 0) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// The calling thread's `errno`.
#[cfg(unix)]
pub(super) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofile_maps_the_os_infinity_to_unlimited() {
        let inf = u64::MAX;
        assert_eq!(
            nofile(Ok((1024, inf)), inf).unwrap(),
            (Limit::Finite(1024), Limit::Unlimited)
        );
        // macOS's RLIM_INFINITY is 2^63 - 1: u64::MAX is then a plain number.
        let mac_inf = i64::MAX as u64;
        assert_eq!(
            nofile(Ok((mac_inf, u64::MAX)), mac_inf).unwrap(),
            (Limit::Unlimited, Limit::Finite(u64::MAX))
        );
        assert!(nofile(Err(22), inf).is_err());
    }

    #[test]
    fn kill_answers_follow_psutil() {
        assert_eq!(kill_says_exists(Ok(())), Ok(true));
        assert_eq!(kill_says_exists(Err(EPERM)), Ok(true));
        assert_eq!(kill_says_exists(Err(ESRCH)), Ok(false));
        assert!(kill_says_exists(Err(22)).is_err());
    }
}
