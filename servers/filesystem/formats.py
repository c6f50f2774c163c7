"""Output formats and text logic of the reference filesystem server, reproduced exactly."""

from __future__ import annotations

import difflib
import math
import re
from functools import lru_cache

UNITS = ["B", "KB", "MB", "GB", "TB"]


def format_size(size: int) -> str:
    """`0 B`, `512 B`, `1.50 KB`: the reference server's formatSize."""
    if size == 0:
        return "0 B"
    if size < 1024:
        return f"{size} B"
    i = min(int(math.floor(math.log(size) / math.log(1024))), len(UNITS) - 1)
    return f"{size / 1024**i:.2f} {UNITS[i]}"


def normalize_line_endings(text: str) -> str:
    return text.replace("\r\n", "\n")


def uses_crlf(text: str) -> bool:
    """True when CRLF is the predominant line ending."""
    crlf = text.count("\r\n")
    return crlf > 0 and crlf >= text.count("\n") - crlf


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def unified_diff(path: str, old: str, new: str, context: int = 4) -> str:
    """jsdiff createTwoFilesPatch(path, path, old, new, 'original', 'modified') output."""
    out = [f"Index: {path}", "=" * 67, f"--- {path}\toriginal", f"+++ {path}\tmodified"]
    a, b = _lines(old), _lines(new)
    a_no_eol = bool(old) and not old.endswith("\n")
    b_no_eol = bool(new) and not new.endswith("\n")
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        i1, i2 = group[0][1], group[-1][2]
        j1, j2 = group[0][3], group[-1][4]
        old_start = i1 + 1 if i2 > i1 else i1
        new_start = j1 + 1 if j2 > j1 else j1
        out.append(f"@@ -{old_start},{i2 - i1} +{new_start},{j2 - j1} @@")
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                for k in range(x1, x2):
                    out.append(" " + a[k])
                    if a_no_eol and k == len(a) - 1:
                        out.append("\\ No newline at end of file")
                continue
            for k in range(x1, x2):
                out.append("-" + a[k])
                if a_no_eol and k == len(a) - 1:
                    out.append("\\ No newline at end of file")
            for k in range(y1, y2):
                out.append("+" + b[k])
                if b_no_eol and k == len(b) - 1:
                    out.append("\\ No newline at end of file")
    return "\n".join(out) + "\n"


def fenced_diff(diff: str) -> str:
    """Wrap a diff in a ```diff fence longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", diff)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}diff\n{diff}{fence}\n\n"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def apply_edits(content: str, edits: list[tuple[str, str]]) -> str:
    """Apply edits in order: exact first occurrence, else a whitespace-flexible line match."""
    text = normalize_line_endings(content)
    for old_raw, new_raw in edits:
        old, new = normalize_line_endings(old_raw), normalize_line_endings(new_raw)
        if old in text:
            text = text.replace(old, new, 1)
            continue
        old_lines = old.split("\n")
        lines = text.split("\n")
        found = False
        for i in range(len(lines) - len(old_lines) + 1):
            window = lines[i : i + len(old_lines)]
            if all(w.strip() == o.strip() for w, o in zip(window, old_lines, strict=True)):
                replaced = []
                for j, line in enumerate(new.split("\n")):
                    if not line.strip():
                        replaced.append("")
                        continue
                    # Each new line takes the indentation of the line it replaces, keeping its
                    # own indentation relative to the edit's old text.
                    k = min(j, len(window) - 1)
                    target = _indent(window[k])
                    delta = len(_indent(line)) - len(_indent(old_lines[k]))
                    indent = target + " " * delta if delta >= 0 else target[: max(0, len(target) + delta)]
                    replaced.append(indent + line.lstrip())
                lines[i : i + len(old_lines)] = replaced
                text = "\n".join(lines)
                found = True
                break
        if not found:
            raise ValueError(f"Could not find exact match for edit:\n{old_raw}")
    return text


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """minimatch-style glob ({dot: true}): `**` spans directories, `*`/`?` stay in one, `{a,b}`, `[...]`."""
    return re.compile("(?s:" + _translate(pattern) + r")\Z")


def _translate(pattern: str) -> str:
    i, out = 0, []
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                options = pattern[i + 1 : end].split(",")
                out.append("(?:" + "|".join(_translate(o) for o in options) + ")")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def glob_match(pattern: str, path: str) -> bool:
    """True if the relative path matches the glob."""
    return glob_regex(pattern).match(path) is not None


def tree_excluded(rel: str, patterns: list[str]) -> bool:
    """directory_tree's exclusion: globs match the path; plain names match anywhere."""
    for p in patterns:
        if "*" in p:
            if glob_match(p, rel):
                return True
        elif glob_match(p, rel) or glob_match(f"**/{p}", rel) or glob_match(f"**/{p}/**", rel):
            return True
    return False
