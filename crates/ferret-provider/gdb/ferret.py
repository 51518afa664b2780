# Ferret's gdb commands, the analog of ETW's !wmitrace: control the trace
# sessions of the daemon the program being debugged writes to, from the
# debugger, while the program stays stopped.
#
#   ferret sessions                        the daemon's sessions (ferret list)
#   ferret stop {LoggerID|LoggerName}      stop a session now
#   ferret flush|query {LoggerID|LoggerName}
#   ferret start NAME ARGS...              as 'ferret start'
#   ferret info                            the program's daemon socket and region
#   ferret rings                           its providers, and the rings holding
#                                          events no log file has yet
#   ferret dump FILE                       write those events to a Ferret log
#                                          (ETW's !wmitrace.logsave); works on a
#                                          core file too
#   ferret break-stop LOCATION {LoggerID|LoggerName}
#                                          a breakpoint that stops a session and
#                                          lets the program run on
#
# The commands ask the daemon through the `ferret` program (FERRET_GDB_FERRET,
# else `ferret` on PATH), never through the stopped program: the daemon drains
# the program's rings from shared memory, so a stop completes while it stays
# stopped. The program says which daemon it talks to in FERRET_DEBUG_INFO, a
# static of ferret-provider (docs/ABI.md, "Debugger info").
#
# Loaded automatically from a program's .debug_gdb_scripts section where
# gdb's auto-load safe-path allows, or by hand: `source ferret.py`.

import os
import re
import shutil
import struct
import subprocess

import gdb

DEBUG_INFO = "FERRET_DEBUG_INFO"
MAGIC = b"FERRETDB"
HEAD = struct.Struct("<8sIIQQQII")
SOCKET_BYTES = 256
TIMEOUT_S = 30


class FerretError(Exception):
    """One line for the user."""


def read_debug_info():
    """The fields of FERRET_DEBUG_INFO in the inferior, as a dict."""
    try:
        where = gdb.execute("info address " + DEBUG_INFO, to_string=True)
    except gdb.error:
        raise FerretError(
            "this program does not link ferret-provider (no symbol %s)" % DEBUG_INFO
        )
    found = re.search(r"0x[0-9a-fA-F]+", where)
    if not found:
        raise FerretError("cannot find the address of %s: %s" % (DEBUG_INFO, where.strip()))
    addr = int(found.group(0), 16)
    try:
        raw = bytes(gdb.selected_inferior().read_memory(addr, HEAD.size + SOCKET_BYTES))
    except gdb.MemoryError as e:
        raise FerretError("cannot read %s: %s (is the program running?)" % (DEBUG_INFO, e))
    magic, version, socket_len, region_addr, region_len, prov_addr, prov_len, _ = HEAD.unpack_from(raw)
    if magic != MAGIC or version != 1:
        raise FerretError("%s is not a layout this script knows (version %d)" % (DEBUG_INFO, version))
    socket = raw[HEAD.size:HEAD.size + min(socket_len, SOCKET_BYTES)].decode("utf-8", "replace")
    return {
        "socket": socket,
        "region_addr": region_addr,
        "region_len": region_len,
        "providers_addr": prov_addr,
        "providers_len": prov_len,
    }


def debug_info():
    """(socket path, region address, region length) from the inferior."""
    info = read_debug_info()
    if not info["socket"]:
        raise FerretError(
            "this program has registered no Ferret provider yet, so it names no daemon"
        )
    return info["socket"], info["region_addr"], info["region_len"]


# Region header fields (docs/ABI.md, "Header"): name -> (offset, format).
HEADER_FIELDS = {
    "region_size": (16, "<Q"),
    "meta_offset": (56, "<Q"),
    "meta_capacity": (64, "<Q"),
    "ring_desc_offset": (72, "<Q"),
    "ring_count": (80, "<I"),
    "ring_desc_size": (84, "<I"),
    "ring_offset": (88, "<Q"),
    "ring_capacity": (96, "<Q"),
    "meta_head": (192, "<Q"),
}
HEADER_BYTES = 4096
# A chunk gdb reads at once.
CHUNK = 1 << 20


def copy_region(directory):
    """Copies the region's header, tables, metadata and the unwritten part
    of each ring into DIRECTORY/region.img (the region's layout, holes
    elsewhere) and the providers into DIRECTORY/providers.bin. Only what
    recovery reads is copied: a live process's untouched pages stay so."""
    info = read_debug_info()
    addr, length = info["region_addr"], info["region_len"]
    if not addr:
        raise FerretError("this program is not attached to a daemon, so it has no region")
    inf = gdb.selected_inferior()

    def read(offset, n):
        out = bytearray()
        while n > 0:
            take = min(n, CHUNK)
            out += bytes(inf.read_memory(addr + offset, take))
            offset += take
            n -= take
        return bytes(out)

    try:
        head = read(0, HEADER_BYTES)
    except gdb.MemoryError as e:
        raise FerretError("cannot read the region at 0x%x: %s" % (addr, e))
    h = {k: struct.unpack_from(f, head, o)[0] for k, (o, f) in HEADER_FIELDS.items()}
    if head[:8] != b"FERRETSH" or h["region_size"] != length:
        raise FerretError("the memory at 0x%x is not the region FERRET_DEBUG_INFO names" % addr)
    cap = h["ring_capacity"]
    image = os.path.join(directory, "region.img")
    with open(image, "wb") as f:
        f.truncate(length)
        # Header, enable table, lost counters and ring descriptors.
        f.seek(0)
        f.write(read(0, h["meta_offset"]))
        f.seek(h["meta_offset"])
        f.write(read(h["meta_offset"], min(h["meta_head"], h["meta_capacity"])))
        descs = read(h["ring_desc_offset"], h["ring_count"] * h["ring_desc_size"])
        for i in range(h["ring_count"]):
            d = i * h["ring_desc_size"]
            ring_head = struct.unpack_from("<Q", descs, d)[0]
            tail, _, keep = struct.unpack_from("<QQQ", descs, d + 64)
            kept = keep <= tail <= ring_head and ring_head - keep <= cap
            start = keep if kept else tail
            if ring_head <= start or ring_head - start > cap:
                continue
            base = h["ring_offset"] + i * cap
            at, left = start % cap, ring_head - start
            while left > 0:
                n = min(left, cap - at)
                f.seek(base + at)
                f.write(read(base + at, n))
                at, left = 0, left - n
    providers = os.path.join(directory, "providers.bin")
    with open(providers, "wb") as f:
        if info["providers_addr"] and info["providers_len"]:
            f.write(bytes(inf.read_memory(info["providers_addr"], info["providers_len"])))
    return image, providers


def process_args():
    pid = gdb.selected_inferior().pid
    name = os.path.basename(gdb.current_progspace().filename or "")
    return ["--pid", str(pid), "--process", name]


def run_image(args):
    """Copies the region and runs `ferret dump-image` on the copy."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ferret-gdb-") as d:
        image, providers = copy_region(d)
        show_run(
            [ferret_program(), "dump-image", image, "--providers", providers]
            + process_args()
            + list(args),
            "ferret dump-image did not finish within %d s" % TIMEOUT_S,
        )


def ferret_program():
    prog = os.environ.get("FERRET_GDB_FERRET") or shutil.which("ferret")
    if not prog:
        raise FerretError("no ferret program: put it on PATH or set FERRET_GDB_FERRET")
    return prog


def show_run(cmd, timed_out):
    """Runs CMD and shows what it printed; TIMED_OUT is the line for a run
    that takes longer than TIMEOUT_S."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FerretError(timed_out)
    except OSError as e:
        raise FerretError("cannot run %s: %s" % (cmd[0], e))
    if done.stdout:
        gdb.write(done.stdout)
    if done.stderr:
        gdb.write(done.stderr, gdb.STDERR)
    return done.returncode == 0


def run_cli(args):
    """Runs `ferret --socket SOCKET ARGS...` and shows what it printed."""
    socket, _, _ = debug_info()
    return show_run(
        [ferret_program(), "--socket", socket] + list(args),
        "the daemon on %s did not answer within %d s; if the program being "
        "debugged is the daemon itself, it cannot answer while stopped" % (socket, TIMEOUT_S),
    )


def guarded(fn):
    """Turns a FerretError into one line, as a gdb error."""

    def call(*args):
        try:
            return fn(*args)
        except FerretError as e:
            raise gdb.GdbError("ferret: %s" % e)

    return call


class FerretPrefix(gdb.Command):
    """Ferret trace sessions of the program being debugged (see 'help ferret')."""

    def __init__(self):
        super().__init__("ferret", gdb.COMMAND_USER, prefix=True)


class Passthrough(gdb.Command):
    def __init__(self, name, verb, doc, fixed=()):
        self.__doc__ = doc
        super().__init__("ferret " + name, gdb.COMMAND_USER)
        self.verb = verb
        self.fixed = list(fixed)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        guarded(lambda: run_cli([self.verb] + self.fixed + args))()


class Info(gdb.Command):
    """The daemon socket the program writes to, and where its region is mapped."""

    def __init__(self):
        super().__init__("ferret info", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        def show():
            socket, addr, length = debug_info()
            gdb.write("socket %s\n" % socket)
            if addr:
                gdb.write("region 0x%x, %d bytes\n" % (addr, length))
            else:
                gdb.write("region none (not attached to a daemon)\n")

        guarded(show)()


class Rings(gdb.Command):
    """The program's providers, and its rings holding events no log file has."""

    def __init__(self):
        super().__init__("ferret rings", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        guarded(lambda: run_image(["--rings"] + gdb.string_to_argv(arg)))()


class Dump(gdb.Command):
    """ferret dump FILE [--overwrite]: write the events the program's rings
hold that no log file has yet into a Ferret log, from a live program or a
core file (ETW's !wmitrace.logsave)."""

    def __init__(self):
        super().__init__("ferret dump", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if not args:
            raise gdb.GdbError("ferret: usage: ferret dump FILE [--overwrite]")
        guarded(lambda: run_image(["-o"] + args))()


class StopBreakpoint(gdb.Breakpoint):
    """Stops a session when reached, then lets the program run on."""

    def __init__(self, spec, target):
        super().__init__(spec)
        self.target = target

    def stop(self):
        # Only the debugger talks to the daemon here: the inferior is not
        # touched, which a stop() method must not do.
        gdb.write("ferret: breakpoint %d reached: stopping session %s\n" % (self.number, self.target))
        try:
            run_cli(["stop", self.target])
        except FerretError as e:
            gdb.write("ferret: %s\n" % e, gdb.STDERR)
        return False


class BreakStop(gdb.Command):
    """ferret break-stop LOCATION {LoggerID|LoggerName}: a breakpoint that
stops the session when the program reaches LOCATION, and lets it run on."""

    def __init__(self):
        super().__init__("ferret break-stop", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if len(args) != 2:
            raise gdb.GdbError("ferret: usage: ferret break-stop LOCATION {LoggerID|LoggerName}")
        bp = StopBreakpoint(args[0], args[1])
        gdb.write("ferret: breakpoint %d stops session %s at %s\n" % (bp.number, args[1], args[0]))


FerretPrefix()
Passthrough("sessions", "list", "The sessions of the program's daemon (ferret list).")
Passthrough("stop", "stop", "ferret stop {LoggerID|LoggerName}: stop a session now.")
Passthrough("flush", "flush", "ferret flush {LoggerID|LoggerName}: write its buffered events.")
Passthrough("query", "query", "ferret query {LoggerID|LoggerName}: every property and counter.")
Passthrough("start", "start", "ferret start NAME ARGS...: start a session, as 'ferret start'.")
Info()
Rings()
Dump()
BreakStop()
