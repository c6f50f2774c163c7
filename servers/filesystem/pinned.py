"""File operations anchored to directory file descriptors, so a symlink planted after validation
cannot redirect them: every directory from the root down is opened with O_NOFOLLOW, files are
created with O_EXCL|O_NOFOLLOW, and overwrites happen in place after an identity check."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import stat
from collections.abc import Iterator

from servers.filesystem.paths import AccessDenied, Root, root_of

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_RACE = "Access denied - the path changed while it was being used (a symlink appeared)"


@contextlib.contextmanager
def reported_as(path: str, path2: str | None = None) -> Iterator[None]:
    """Re-raise an OSError against the validated path(s): a dir_fd call only knows one bare component."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None:
            raise  # not from a system call: no path to report
        raise OSError(exc.errno, exc.strerror, path, None, path2) from exc


@contextlib.contextmanager
def open_dir(real_dir: str, roots: list[Root]) -> Iterator[int]:
    """A descriptor for `real_dir`, reached from its root one component at a time without following links."""
    root = root_of(real_dir, roots)
    if root is None:
        raise AccessDenied(f"Access denied - {real_dir} is outside the allowed directories")
    fd = os.open(root.path, _DIR_FLAGS)
    try:
        rel = os.path.relpath(real_dir, root.path)
        for part in [] if rel == "." else rel.split(os.sep):
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise AccessDenied(_RACE) from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _open_nofollow(name: str, flags: int, dfd: int) -> int:
    """Open a file in a pinned directory; a symlink there (planted after validation) is refused."""
    try:
        return os.open(name, flags | _NOFOLLOW | _CLOEXEC, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AccessDenied(_RACE) from None
        raise


def split(real: str) -> tuple[str, str]:
    """(parent directory, final name) of a validated real path."""
    parent, name = os.path.split(real)
    if not name:
        raise AccessDenied("Access denied - the path has no file name")
    return parent, name


def read_bytes(real: str, roots: list[Root], limit: int) -> bytes:
    """Read a regular file without following a link in any component; refuse files over `limit`."""
    parent, name = split(real)
    with reported_as(real), open_dir(parent, roots) as dfd:
        fd = _open_nofollow(name, os.O_RDONLY, dfd)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", real)
            if st.st_size > limit:
                raise ValueError(f"File is too large to read ({st.st_size} bytes; the limit is {limit})")
            data = fh.read(limit + 1)
            if len(data) > limit:
                raise ValueError(f"File is too large to read (over {limit} bytes)")
            return data


def write_bytes(real: str, roots: list[Root], data: bytes) -> None:
    """Create the file, or overwrite an existing regular file in place (never through a link)."""
    parent, name = split(real)
    with reported_as(real), open_dir(parent, roots) as dfd:
        for _ in range(3):
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644, dir_fd=dfd)
            except FileExistsError:
                if _overwrite_in_place(dfd, name, data):
                    return
                continue
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return
        raise AccessDenied(_RACE)


def _overwrite_in_place(dfd: int, name: str, data: bytes) -> bool:
    try:
        before = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False  # it vanished: try creating again
    if stat.S_ISLNK(before.st_mode):
        raise AccessDenied("Access denied - refusing to write through a symbolic link")
    if not stat.S_ISREG(before.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Not a regular file", name)
    fd = _open_nofollow(name, os.O_RDWR, dfd)
    with os.fdopen(fd, "r+b") as fh:
        now = os.fstat(fh.fileno())
        if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
            raise AccessDenied(_RACE)
        fh.truncate(0)
        fh.write(data)
    return True


def make_dirs(real: str, roots: list[Root]) -> None:
    """mkdir -p, one component at a time from the root, never through a link."""
    root = root_of(real, roots)
    if root is None:
        raise AccessDenied(f"Access denied - {real} is outside the allowed directories")
    with reported_as(real):
        fd = os.open(root.path, _DIR_FLAGS)
        try:
            rel = os.path.relpath(real, root.path)
            for part in [] if rel == "." else rel.split(os.sep):
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise AccessDenied(
                            f"Access denied - {part} exists and is not a directory (or is a link)"
                        ) from None
                    raise
                os.close(fd)
                fd = nxt
        finally:
            os.close(fd)


def _renameat2_noreplace() -> object | None:
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_RENAME_NOREPLACE = 1
_renameat2 = _renameat2_noreplace()


def move(src_real: str, dst_real: str, roots: list[Root]) -> None:
    """Rename inside pinned directories; an existing destination is refused (atomically on Linux)."""
    src_parent, src_name = split(src_real)
    dst_parent, dst_name = split(dst_real)
    with reported_as(src_real, dst_real), open_dir(src_parent, roots) as sfd, open_dir(dst_parent, roots) as dfd:
        try:
            os.stat(dst_name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            raise FileExistsError(errno.EEXIST, "Destination already exists", src_real, None, dst_real)
        if _renameat2 is not None:
            rc = _renameat2(sfd, os.fsencode(src_name), dfd, os.fsencode(dst_name), _RENAME_NOREPLACE)  # type: ignore[operator]
            if rc == 0:
                return
            err = ctypes.get_errno()
            if err not in (errno.ENOSYS, errno.EINVAL):
                raise OSError(err, os.strerror(err), dst_real)
        os.rename(src_name, dst_name, src_dir_fd=sfd, dst_dir_fd=dfd)
