"""The clock check: the kernel clock is synchronised (NTP), so that timestamps are right. The
kernel is asked directly, with adjtimex(2) through ctypes, and its answer read as timedatectl's
NTPSynchronized reads it.
"""

from __future__ import annotations

import ctypes
import os

from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status

# adjtimex(2): the clock state TIME_ERROR and the status bit "not synchronised".
TIME_ERROR = 5
STA_UNSYNC = 0x0040


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h> as the `adjtimex` symbol takes it (longs, not time64)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        # The kernel's reserved tail, and then some: the kernel must never write past us.
        ("reserved", ctypes.c_int * 32),
    ]


def read_clock_state() -> tuple[int, int, int]:
    """adjtimex(2) with modes 0 (read only): (return value, status bits, max error in µs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    adjtimex = libc.adjtimex
    adjtimex.argtypes = [ctypes.POINTER(_Timex)]
    adjtimex.restype = ctypes.c_int
    timex = _Timex()
    result = adjtimex(ctypes.byref(timex))
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result, timex.status, timex.maxerror


def clock_result(return_value: int, status: int, maxerror_us: int) -> CheckResult:
    """The clock check from adjtimex's answer: synchronised as timedatectl's NTPSynchronized
    has it, when the state is not TIME_ERROR and STA_UNSYNC is clear."""
    if return_value != TIME_ERROR and not status & STA_UNSYNC:
        return CheckResult(
            "clock",
            Status.PASS,
            f"synchronised (NTP), estimated maximum error {maxerror_us / 1000:.1f} ms",
        )
    return CheckResult(
        "clock",
        Status.FAIL,
        "not synchronised: report and play timestamps may be wrong (a Raspberry Pi 4 has no"
        " battery-backed clock and starts from the last shutdown's time)",
        "sudo timedatectl set-ntp true, and let the display reach NTP servers (UDP port 123,"
        " or the store's own NTP server in /etc/systemd/timesyncd.conf); check with"
        " timedatectl status",
    )


def check_clock(_doctor: DoctorRun) -> CheckResult:
    try:
        return_value, status, maxerror = read_clock_state()
    except Exception as error:  # not Linux, a libc without adjtimex, a seccomp filter...
        return CheckResult(
            "clock",
            Status.WARN,
            f"cannot read the clock status ({type(error).__name__}: {error})",
            "check by hand: timedatectl status should say 'System clock synchronized: yes'",
        )
    return clock_result(return_value, status, maxerror)
