"""Measuring one whole process: wall time, S3 requests, disk reads, queries, peak RSS."""

import ctypes
import json
import os
import struct
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

IN_ACCESS = 0x1  # a read() that returned data
IN_Q_OVERFLOW = 0x4000
EVENT = struct.Struct("iIII")


@dataclass
class Sample:
    wall: float
    cpu: float  # user + system seconds of the process and the children it waited for
    requests: dict[str, int]
    rchar: int  # every byte the process read through read(): files, code and sockets
    photo_files_read: int
    photo_bytes: int  # sizes of the album files it read from
    rss_mib: float
    queries: int | None
    query_kinds: dict[str, int]
    exit_code: int
    notes: list[str] = field(default_factory=list)
    uploaded: dict[str, int] = field(default_factory=dict)  # body bytes by upload operation

    @property
    def request_total(self) -> int:
        return sum(self.requests.values())

    @property
    def uploaded_bytes(self) -> int:
        return sum(self.uploaded.values())


class PhotoReads:
    """Which album files are read from, seen through inotify IN_ACCESS on every folder.

    inotify cannot say how many bytes, nor which process, so the measured process must be
    the only one reading the album during a window; identical queued events coalesce, so
    the set of files read is exact while a count of read() calls would not be.
    """

    def __init__(self, folder: Path, sentinel_dir: Path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.dirs: dict[int, str] = {}
        for directory, subdirs, _ in os.walk(folder):
            subdirs.sort()
            self._watch(directory, os.path.relpath(directory, folder))
        sentinel_dir.mkdir(parents=True, exist_ok=True)
        self.sentinel = sentinel_dir / "sentinel"
        self.sentinel.write_bytes(b"x")
        self.sentinel_wd = self._watch(str(sentinel_dir), None)
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.overflowed = False
        self.flushed = threading.Event()
        threading.Thread(target=self._read_events, daemon=True).start()

    def _watch(self, directory: str, relative: str | None) -> int:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(directory), IN_ACCESS)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch failed on {directory}")
        if relative is not None:
            self.dirs[wd] = "" if relative == "." else relative + "/"
        return wd

    def _read_events(self) -> None:
        while True:
            data = os.read(self.fd, 1 << 20)
            offset = 0
            while offset < len(data):
                wd, mask, _, size = EVENT.unpack_from(data, offset)
                name = data[offset + EVENT.size : offset + EVENT.size + size].rstrip(b"\0")
                offset += EVENT.size + size
                self._event(wd, mask, os.fsdecode(name))

    def _event(self, wd: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            self.overflowed = True
        elif wd == self.sentinel_wd:
            self.flushed.set()
        elif wd in self.dirs:
            with self.lock:
                self.seen.add(self.dirs[wd] + name)

    def start(self) -> None:
        self._drain()
        with self.lock:
            self.seen.clear()
        self.overflowed = False

    def stop(self) -> tuple[set[str], bool]:
        """The files read since start(), once every event queued before now is consumed."""
        self._drain()
        with self.lock:
            return set(self.seen), self.overflowed

    def _drain(self) -> None:
        # inotify's queue is in order: once the sentinel's read shows up, so has all before it.
        self.flushed.clear()
        self.sentinel.read_bytes()
        if not self.flushed.wait(10):
            raise RuntimeError("inotify events did not arrive")


class Server:
    """The counting moto server (bench/s3server.py), in its own process."""

    def __init__(self, python: str, script: Path, log: Path, args: tuple[str, ...] = ()):
        self.log = log.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [python, str(script), *args], stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        first = self.process.stdout.readline()
        if not first:
            self.process.wait(10)
            raise RuntimeError(f"the S3 server stopped (exit {self.process.returncode}): "
                               f"{log.read_text()[-2000:]}")  # fmt: skip
        self.info = json.loads(first)  # its port, and how it serves listings
        self.port = self.info["port"]
        self.url = f"http://127.0.0.1:{self.port}"

    def requests(self, reset: bool = False) -> dict[str, int]:
        url = self.url + "/_bench/requests" + ("?reset=1" if reset else "")
        with urllib.request.urlopen(url) as response:  # noqa: S310 - a local http URL
            return json.loads(response.read())

    def uploaded(self) -> dict[str, int]:
        """Request body bytes of the uploads since the last reset of the counts."""
        with urllib.request.urlopen(self.url + "/_bench/bytes") as response:  # noqa: S310
            return json.loads(response.read())

    def pid(self) -> int:
        """The id of the process that serves (a worker of the one started, or that one)."""
        with urllib.request.urlopen(self.url + "/_bench/pid") as response:  # noqa: S310
            return json.loads(response.read())["pid"]

    def reset_state(self) -> None:
        reset = self.url + "/moto-api/reset"
        request = urllib.request.Request(reset, method="POST")  # noqa: S310 - local http URL
        with urllib.request.urlopen(request) as response:  # noqa: S310
            response.read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


def _io_counters(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/io") as file:
        return {name: int(value) for name, value in (line.split(": ") for line in file)}


class PeakRss:
    """The peak resident memory of a running process, from VmHWM in /proc/<pid>/status.

    Not the child's rusage ru_maxrss: Linux carries the high-water mark of the address space
    a child leaves at exec into it, and a child spawned with vfork (as subprocess does) leaves
    the parent's. ru_maxrss would then report this script's own peak whenever it is the larger,
    as it is with a 200,000-file album. VmHWM belongs to the address space the exec made; it
    is read every 20 ms until the exit, so growth in the last 20 ms could be missed.
    """

    def __init__(self, pid: int):
        self.path = f"/proc/{pid}/status"
        self.peak_kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while True:
            self._read()
            if self._done.wait(0.02):
                return

    def _read(self) -> None:
        try:
            with open(self.path) as file:
                for line in file:
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                        return
        except OSError:
            pass  # gone already; a zombie's status has no VmHWM either

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak_kib / 1024


def run_process(argv, *, env, cwd, log: Path, server: Server, reads: PhotoReads, sizes,
                timeout: float | None = None):  # fmt: skip
    """Run argv to the end and measure it; the process's output goes to `log`.

    With `timeout`, a process still running after that many seconds is killed (SIGKILL): its
    exit code is then -9 and a note says so."""
    query_file = env.get("BENCH_QUERY_COUNT_FILE")
    if query_file and os.path.exists(query_file):
        os.unlink(query_file)
    server.requests(reset=True)
    reads.start()
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=out)  # noqa: S603
        peak_rss = PeakRss(process.pid)
        fired = threading.Event()
        killer = threading.Timer(timeout or 0, _kill, (process, fired))
        if timeout:
            killer.start()
        # Wait for the exit without reaping, so that /proc/<pid>/io still holds its totals.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        killer.cancel()
        io = _io_counters(process.pid)
        rss_mib = peak_rss.stop()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    read, overflowed = reads.stop()
    queries = _read_json(query_file)
    read &= sizes.keys()  # the folders' own listings show up as reads too
    sample = Sample(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        requests=server.requests(),
        rchar=io["rchar"],
        photo_files_read=len(read),
        photo_bytes=sum(sizes.get(path, 0) for path in read),
        rss_mib=rss_mib,
        queries=queries.get("total"),
        query_kinds=queries.get("kinds", {}),
        exit_code=process.returncode,
        uploaded=server.uploaded(),
    )
    if fired.is_set() and process.returncode == -9:
        sample.notes.append(f"stopped after {timeout:.0f} s")
    if overflowed:
        sample.notes.append("inotify queue overflowed: photo reads undercounted")
    return sample


def _kill(process: subprocess.Popen, fired: threading.Event) -> None:
    fired.set()
    process.kill()


def _read_json(path: str | None) -> dict:
    if not path or not os.path.exists(path):
        return {}
    return json.loads(Path(path).read_text())
