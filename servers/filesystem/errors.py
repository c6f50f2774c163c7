"""OS errors in the reference server's wording (Node's `ENOENT: no such file or directory, open '/x'`)."""

from __future__ import annotations

import errno
import os

# libuv's uv_strerror() texts, which Node puts in every fs error message; Python's strerror differs
# ("No such file or directory" vs "illegal operation on a directory" for EISDIR, and so on).
_UV_TEXT = {
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "illegal operation on a directory",
    errno.ENOTDIR: "not a directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EEXIST: "file already exists",
    errno.ENOTEMPTY: "directory not empty",
    errno.ELOOP: "too many symbolic links encountered",
    errno.ENAMETOOLONG: "name too long",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EBUSY: "resource busy or locked",
    errno.EINVAL: "invalid argument",
    errno.EMFILE: "too many open files",
    errno.EXDEV: "cross-device link not permitted",
    errno.EIO: "i/o error",
    errno.EFBIG: "file too large",
}


def os_error_text(exc: OSError, syscall: str) -> str:
    """`CODE: description, syscall 'path'` (and ` -> 'path2'`), as the reference server reports it."""
    if exc.errno is None:
        # Not from a system call (e.g. OSError("text")): there is no code to report, only the text.
        return str(exc.strerror or exc)
    code = errno.errorcode.get(exc.errno, f"E{exc.errno}")
    text = _UV_TEXT.get(exc.errno) or os.strerror(exc.errno).lower()
    message = f"{code}: {text}, {syscall}"
    if exc.filename is not None:
        message += f" '{_name(exc.filename)}'"
    if exc.filename2 is not None:
        message += f" -> '{_name(exc.filename2)}'"
    return message


def _name(filename: object) -> str:
    return os.fsdecode(filename) if isinstance(filename, str | bytes) else str(filename)
