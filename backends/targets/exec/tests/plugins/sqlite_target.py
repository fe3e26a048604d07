#!/usr/bin/env python3
"""A plumb plugin target (spec/plugin-protocol.md, protocol 1) that keeps its
files in a SQLite database: path -> kind, content, executable bit, link target,
and, for files and directories, mode, uid and gid (the `attrs` capability).

Python 3 standard library only. Every change is committed before it is
answered `ok`, so a confirmed change survives a crash of this process.

    sqlite_target.py DB [--misbehave MODE]

MODE makes it break the protocol on purpose, for plumb's error tests:

    crash-apply:N   answer N applies, then exit abruptly inside the next
                    (after reading its message and content)
    hang-observe    never answer an observe
    slow-observe:S  create DB.observing, then wait S seconds, at each observe
    hang-hello      never answer the hello
    garbage         answer an observe with a line that is not JSON
    long-line       answer an observe with a 2 MiB line
    unknown-type    answer an observe with a message of an unknown type
    version         choose protocol 99 in the hello
    refuse          answer the hello with an error (no common version)
    no-symlinks     announce no capabilities but `dir`
    stderr          write two lines to standard error at the start
    read-fails:PATH answer a read of PATH with an error (observing it works)
"""

import base64
import hashlib
import json
import os
import sqlite3
import sys
import time

MAX_LINE = 1 << 20
CHUNK = 64 << 10

stdin = sys.stdin.buffer
stdout = sys.stdout.buffer


class ProtocolError(Exception):
    pass


class PathError(Exception):
    """A failure for one path, answered as an `error` with that path."""


# --- framing ---------------------------------------------------------------


def send(message):
    # ensure_ascii keeps the line ASCII; separators keep it compact.
    line = json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"
    stdout.write(line)
    stdout.flush()


def read_message():
    line = stdin.readline(MAX_LINE + 2)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise ProtocolError("line too long or cut short")
    if len(line) - 1 > MAX_LINE:
        raise ProtocolError("line longer than 1 MiB")
    message = json.loads(line.decode("utf-8"))
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("not a message")
    return message


def read_exactly(size):
    """Reads `size` raw bytes in chunks, returning them and their SHA-256."""
    parts = []
    digest = hashlib.sha256()
    left = size
    while left > 0:
        chunk = stdin.read(min(left, CHUNK))
        if not chunk:
            raise ProtocolError("input ended inside content")
        digest.update(chunk)
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts), digest.hexdigest()


def enc(raw):
    """A byte string as the protocol sends it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def dec(value):
    if isinstance(value, str):
        return value.encode("utf-8")  # a lone surrogate raises: a violation
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        return base64.b64decode(value["b64"], validate=True)
    raise ProtocolError("not a byte string: %r" % (value,))


def check_path(raw):
    for name in raw.split(b"/"):
        if name in (b"", b".", b"..") or b"\0" in name:
            raise ProtocolError("invalid path %r" % (raw,))
    return raw


def parent_of(path):
    cut = path.rfind(b"/")
    return b"" if cut < 0 else path[:cut]


def ancestors(path):
    """The proper ancestors of `path`, outermost first."""
    parts = path.split(b"/")
    return [b"/".join(parts[:i]) for i in range(1, len(parts))]


# --- state -----------------------------------------------------------------


class Store:
    def __init__(self, filename):
        self.db = sqlite3.connect(filename, isolation_level=None)
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS entries ("
            " path BLOB PRIMARY KEY, parent BLOB NOT NULL,"
            " kind TEXT NOT NULL CHECK (kind IN ('file', 'symlink', 'dir')),"
            " content BLOB, executable INTEGER NOT NULL DEFAULT 0,"
            " target BLOB, sha256 TEXT, generation INTEGER,"
            " mode INTEGER, uid INTEGER, gid INTEGER)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS by_parent ON entries (parent)")
        self.db.execute("CREATE TABLE IF NOT EXISTS counter (n INTEGER NOT NULL)")
        if self.db.execute("SELECT count(*) FROM counter").fetchone()[0] == 0:
            self.db.execute("INSERT INTO counter VALUES (0)")

    def get(self, path):
        return self.db.execute(
            "SELECT kind, length(content), executable, target, sha256, generation,"
            " mode, uid, gid FROM entries WHERE path = ?",
            (path,),
        ).fetchone()

    def blocker(self, path):
        """(at, what) for the first ancestor that is not a directory,
        ('missing', None) when one is missing, None when all are dirs."""
        for a in ancestors(path):
            row = self.get(a)
            if row is None:
                return ("missing", None)
            if row[0] != "dir":
                return (a, row[0])
        return None

    def observe(self, path, digest, list_):
        blocked = self.blocker(path)
        if blocked is not None:
            at, what = blocked
            if at == "missing":
                return {"kind": "missing"}
            return {"kind": "blocked", "at": enc(at), "what": what}
        row = self.get(path)
        if row is None:
            return {"kind": "missing"}
        kind, size, executable, target, sha256, generation, mode, uid, gid = row
        attrs = {k: v for k, v in (("mode", mode), ("uid", uid), ("gid", gid)) if v is not None}
        if kind == "file":
            out = {
                "kind": "file",
                "size": size,
                "executable": bool(executable),
                "token": "g%d" % generation,
                **attrs,
            }
            if digest:
                out["sha256"] = sha256
            return out
        if kind == "symlink":
            return {"kind": "symlink", "target": enc(target)}
        out = {"kind": "dir", **attrs}
        if list_:
            names = self.db.execute(
                "SELECT path FROM entries WHERE parent = ?", (path,)
            ).fetchall()
            out["children"] = [enc(p[len(path) + 1 :]) for (p,) in names]
        return out

    def read(self, path):
        self.writable_parent(path)
        row = self.db.execute(
            "SELECT kind, content FROM entries WHERE path = ?", (path,)
        ).fetchone()
        if row is None:
            raise PathError("no such file")
        if row[0] != "file":
            raise PathError("is a %s, not a file" % row[0])
        return row[1]

    def writable_parent(self, path):
        blocked = self.blocker(path)
        if blocked is None:
            return
        at, what = blocked
        if at == "missing":
            raise PathError("parent directory %s is missing" % enc(parent_of(path)))
        raise PathError("%s above it is a %s" % (enc(at), what))

    def next_generation(self):
        self.db.execute("UPDATE counter SET n = n + 1")
        return self.db.execute("SELECT n FROM counter").fetchone()[0]

    def replace(self, path, kind, attrs=None, **fields):
        """Puts a file or symlink at `path`, replacing a file or symlink.
        A file gets the mode, uid and gid in `attrs`; for those missing,
        the replaced file's (its mode with the execute bits set where
        reading is allowed, or cleared), else 0755 or 0644 and this
        process's ids."""
        self.writable_parent(path)
        row = self.get(path)
        if row is not None and row[0] == "dir":
            raise PathError("is a directory")
        mode = uid = gid = None
        if kind == "file":
            attrs = attrs or {}
            old = row if row is not None and row[0] == "file" else None
            executable = bool(fields.get("executable", False))
            mode = attrs.get("mode")
            if mode is None and old is not None and old[6] is not None:
                m = old[6] & 0o777
                mode = (m | 0o100 | (m & 0o444) >> 2) if executable else m & 0o666
            if mode is None:
                mode = 0o755 if executable else 0o644
            uid = attrs.get("uid", old[7] if old is not None else os.getuid())
            gid = attrs.get("gid", old[8] if old is not None else os.getgid())
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO entries"
                " (path, parent, kind, content, executable, target, sha256, generation,"
                " mode, uid, gid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    path,
                    parent_of(path),
                    kind,
                    fields.get("content"),
                    int(fields.get("executable", False)),
                    fields.get("target"),
                    fields.get("sha256"),
                    self.next_generation(),
                    mode,
                    uid,
                    gid,
                ),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def mkdir(self, path, attrs=None):
        """Makes a directory (0755 and this process's ids unless `attrs`
        says otherwise), or gives an existing one the `attrs` given."""
        attrs = attrs or {}
        self.writable_parent(path)
        row = self.get(path)
        if row is not None:
            if row[0] != "dir":
                raise PathError("a %s is in the way" % row[0])
            for name in ("mode", "uid", "gid"):
                if name in attrs:
                    self.db.execute(
                        "UPDATE entries SET %s = ? WHERE path = ?" % name,
                        (attrs[name], path),
                    )
            return
        self.db.execute(
            "INSERT INTO entries (path, parent, kind, mode, uid, gid)"
            " VALUES (?, ?, 'dir', ?, ?, ?)",
            (
                path,
                parent_of(path),
                attrs.get("mode", 0o755),
                attrs.get("uid", os.getuid()),
                attrs.get("gid", os.getgid()),
            ),
        )  # autocommit: durable when execute returns

    def remove(self, path, want_dir):
        blocked = self.blocker(path)
        if blocked is not None:
            at, what = blocked
            if at == "missing":
                return  # nothing there
            raise PathError("%s above it is a %s" % (enc(at), what))
        row = self.get(path)
        if row is None:
            return
        if want_dir:
            if row[0] != "dir":
                raise PathError("is a %s, not a directory" % row[0])
            child = self.db.execute(
                "SELECT 1 FROM entries WHERE parent = ? LIMIT 1", (path,)
            ).fetchone()
            if child is not None:
                raise PathError("directory not empty")
        elif row[0] == "dir":
            raise PathError("is a directory")
        self.db.execute("DELETE FROM entries WHERE path = ?", (path,))


# --- the conversation ------------------------------------------------------


def main(argv):
    args = argv[1:]
    mode = None
    if "--misbehave" in args:
        i = args.index("--misbehave")
        mode = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1:
        sys.stderr.write("usage: sqlite_target.py DB [--misbehave MODE]\n")
        return 2
    store = Store(args[0])
    crash_after = None
    if mode and mode.startswith("crash-apply:"):
        crash_after = int(mode.split(":", 1)[1])
    if mode == "stderr":
        sys.stderr.write("starting up\nstate in %s\n" % args[0])
        sys.stderr.flush()

    applies = 0
    while True:
        message = read_message()
        if message is None:
            return 0
        kind = message["type"]
        if kind == "hello":
            if mode == "hang-hello":
                time.sleep(3600)
            if mode == "refuse":
                send({"type": "error", "message": "this plugin speaks protocol 7 only"})
                return 1
            if 1 not in message.get("protocols", []):
                send({"type": "error", "message": "no common protocol version"})
                return 1
            caps = (
                ["dir"] if mode == "no-symlinks" else ["symlink", "executable", "dir", "attrs"]
            )
            send({
                "type": "hello",
                "protocol": 99 if mode == "version" else 1,
                "name": "sqlite",
                "capabilities": caps,
            })
        elif kind == "observe":
            if mode == "hang-observe":
                time.sleep(3600)
            if mode and mode.startswith("slow-observe:"):
                open(args[0] + ".observing", "w").close()
                time.sleep(float(mode.split(":", 1)[1]))
            if mode == "garbage":
                stdout.write(b"this is not JSON\n")
                stdout.flush()
                continue
            if mode == "long-line":
                stdout.write(b" " * (2 << 20) + b"\n")
                stdout.flush()
                continue
            if mode == "unknown-type":
                send({"type": "observed-ish", "path": "x"})
                continue
            for request in message["requests"]:
                path = check_path(dec(request["path"]))
                try:
                    answer = store.observe(
                        path, bool(request.get("digest")), bool(request.get("list"))
                    )
                except PathError as e:
                    send({"type": "error", "path": enc(path), "message": str(e)})
                    continue
                answer["type"] = "observed"
                answer["path"] = enc(path)
                send(answer)
        elif kind == "read":
            path = check_path(dec(message["path"]))
            if mode and mode == "read-fails:" + path.decode("utf-8", "replace"):
                send({"type": "error", "path": enc(path), "message": "the disk is on fire"})
                continue
            try:
                data = store.read(path)
            except PathError as e:
                send({"type": "error", "path": enc(path), "message": str(e)})
                continue
            send({"type": "content", "path": enc(path), "size": len(data)})
            view = memoryview(data)
            for at in range(0, len(data), CHUNK):
                stdout.write(view[at : at + CHUNK])
            stdout.flush()
        elif kind == "apply":
            path = check_path(dec(message["path"]))
            op = message["op"]
            content = sha256 = None
            if op == "write":
                content, sha256 = read_exactly(int(message["size"]))
            if crash_after is not None and applies >= crash_after:
                sys.stderr.write("crashing on purpose\n")
                sys.stderr.flush()
                os._exit(3)
            applies += 1
            attrs = {k: int(message[k]) for k in ("mode", "uid", "gid") if k in message}
            try:
                if op == "write":
                    store.replace(
                        path,
                        "file",
                        attrs=attrs,
                        content=content,
                        executable=bool(message.get("executable")),
                        sha256=sha256,
                    )
                elif op == "symlink":
                    store.replace(path, "symlink", target=dec(message["target"]))
                elif op == "mkdir":
                    store.mkdir(path, attrs)
                elif op == "remove":
                    store.remove(path, want_dir=False)
                elif op == "rmdir":
                    store.remove(path, want_dir=True)
                else:
                    raise ProtocolError("unknown op %r" % (op,))
            except PathError as e:
                send({"type": "error", "path": enc(path), "message": str(e)})
                continue
            send({"type": "ok", "path": enc(path)})
        elif kind == "recover":
            for p in message["paths"]:
                check_path(dec(p))
            # Each change is one SQLite transaction: nothing is ever left
            # half made, so there is nothing to clean up.
            send({"type": "ok"})
        elif kind == "bye":
            return 0
        else:
            raise ProtocolError("unknown message type %r" % (kind,))


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (ProtocolError, ValueError, KeyError, TypeError) as e:
        try:
            send({"type": "error", "message": "protocol violation: %s" % e})
        except OSError:
            pass
        sys.stderr.write("protocol violation: %s\n" % e)
        sys.exit(1)
