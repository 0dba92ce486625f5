"""procstat.py - what /proc says about a stack's processes, for the
benchmarks and the soak (tests/bench/bench_jobs, tests/bench/soak).

    procstat.rss_kb(pid)            VmRSS in kB (None when gone)
    procstat.fd_count(pid)          open file descriptors (None when gone)
    procstat.proc_cpu(pid)          CPU seconds, children that exited included
    procstat.proc_comm(pid)         /proc/PID/comm
    procstat.proc_age(pid)          seconds since it started (None when gone)
    procstat.executor_pids(stack)   the stack's live ig-executor processes
    procstat.kill_executors(stack)  SIGKILLs them (raises if one survives)

Reading another user's fds needs root (the harness runs the pool as
www-data when root) or the same user.
"""

import os
import signal

import harness

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """utime+stime+cutime+cstime of pid in seconds, or 0 when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return 0.0
    rest = data[data.rindex(")") + 2:].split()
    return sum(int(x) for x in rest[11:15]) / TICK


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def proc_age(pid):
    """Seconds since pid started (/proc/PID/stat starttime), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return up - int(rest[19]) / TICK


def status_kb(pid, field):
    """A /proc/PID/status size field (VmRSS, VmHWM, ...) in kB, or None."""
    v = harness.proc_status_field(pid, field)
    if not v:
        return None
    try:
        return int(v.split()[0])
    except (ValueError, IndexError):
        return None


def rss_kb(pid):
    return status_kb(pid, "VmRSS")


def fd_count(pid):
    """How many file descriptors pid has open, or None when it is gone."""
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def executor_pids(stack):
    """Live ig-executor processes (/proc/PID/comm) started out of this
    stack's temp dir (their environment names it)."""
    if not stack.tmp:
        return []
    needle = (stack.tmp + "/").encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or proc_comm(int(d)) != "ig-executor":
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                if needle in f.read() and harness.alive(int(d)):
                    out.append(int(d))
        except OSError:
            pass
    return out


def kill_executors(stack):
    pids = executor_pids(stack)
    for p in pids:
        harness.kill_quiet(p, signal.SIGKILL)
    left = harness.wait_gone(pids, 5)
    if left:
        raise RuntimeError("executors %s survived SIGKILL" % left)
    return len(pids)
