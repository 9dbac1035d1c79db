"""What ffmpeg's messages say went wrong, sorted into failure kinds: the video is gone
(permanent), its source could not be read (transient), it did not decode (permanent).

ffmpeg names its input in its messages, and deployed the input is a signed URL whose query
string is a credential: no message that is stored or logged may keep a URL or a query.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from framesift.errors import PermanentError, SamplingFailed, SourceUnavailable

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*")
_QUERY = re.compile(r"\?[^\s'\"]*")

# What ffmpeg says when the network or the video's server failed, not the video: a later
# attempt can read it. An object that is gone (404, 410) is not among these.
_RECONNECTING = re.compile(r"Will reconnect", re.IGNORECASE)
_SOURCE_TROUBLE = re.compile(
    r"HTTP error|Server returned|Connection to \S+ failed|Connection (?:refused|reset|timed out)"
    r"|Failed to resolve|name resolution|Network is unreachable|Stream ends prematurely|"
    + _RECONNECTING.pattern,
    re.IGNORECASE,
)
_GONE = re.compile(r"\b(?:404 Not Found|410 Gone)\b")
# ffmpeg's "[https @ 0x55d...] [warning] " before a message: the component names the scheme.
_LOG_TAGS = re.compile(r"\[[\w-]+ @ 0x[0-9a-f]+\] |\[(?:info|warning|error|fatal|panic)\] ")
# -loglevel level+info tags each line with its level, e.g. "[h264 @ 0x..] [error] ...".
_ERROR_LEVEL = re.compile(r"\[(error|fatal|panic)\] ")
GONE = "the video is gone"  # a failure's reason when its version of the object no longer is


def scrub(text: str) -> str:
    """``text`` with every URL and query string replaced by a placeholder."""
    return _QUERY.sub("?<query>", _URL.sub("<input>", text))


def last_lines(text: str, count: int = 3) -> str:
    """The last ``count`` non-blank lines of ``text``, scrubbed, on one line."""
    lines = [line.strip() for line in scrub(text).splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"


def source_failure(
    lines: list[str], gone: type[PermanentError]
) -> PermanentError | SourceUnavailable | None:
    """The error for a run that failed reading its source, from ffmpeg's lines: ``gone`` when
    the video is, else transient when any line is about the source (None: none is)."""
    lines = [_LOG_TAGS.sub("", line) for line in lines]
    if found := [line for line in lines if _GONE.search(line)]:
        return gone(f"{GONE}: {last_lines(found[0], 1)}")
    if found := [line for line in lines if _SOURCE_TROUBLE.search(line)]:
        said = list(dict.fromkeys(line for line in found if not _RECONNECTING.search(line)))
        said = said or found
        return SourceUnavailable(f"could not read the video: {last_lines(chr(10).join(said))}")
    return None


@dataclass
class Diagnostics:
    """What ffmpeg said on stderr besides the timestamps: its last lines, its errors, and what
    it said about reading its source (a reconnect that worked is not an error)."""

    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    errors: list[str] = field(default_factory=list)
    source: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def hear(self, line: str) -> None:
        """Sort one of ffmpeg's lines: about the source, an error, or neither."""
        self.tail.append(line)
        if _SOURCE_TROUBLE.search(line) or _GONE.search(line):
            self.source.append(line)
        elif (level := _ERROR_LEVEL.search(line)) and len(self.errors) < 20:
            self.errors.append(
                re.sub(r" @ 0x[0-9a-f]+", "", line[: level.start()]).strip()
                + " "
                + line[level.end() :]
            )

    def failure(self, returncode: int) -> PermanentError | SourceUnavailable | None:
        """The error of a run that ended with ``returncode`` (None: it did not fail)."""
        failed = returncode != 0 or bool(self.errors)
        if failed and (failure := source_failure(list(self.source), SamplingFailed)):
            return failure  # frames read before it stand; a redelivery reads them again
        if returncode != 0:
            return SamplingFailed(f"ffmpeg exited with {returncode}: {self.summary()}")
        if self.errors:
            # ffmpeg decodes on past a corrupt or truncated part; the frames it gave are kept,
            # and the video is reported, not passed as whole.
            return SamplingFailed(f"decode errors: {self.summary()}")
        return None

    def summary(self) -> str:
        errors = " | ".join(dict.fromkeys(self.errors[:3]))
        return scrub(errors) if errors else last_lines("\n".join(self.tail))
