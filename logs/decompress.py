"""Gzip inflation for untrusted input, shared by ingest bodies and import files.

Linear in its input and capped in its output:

- The input is walked by offsets over a memoryview, never re-sliced into copies. zlib still
  copies what it did not use (`unused_data` at a member's end, `unconsumed_tail` when the
  output is capped), so each member is fed in pieces that start small and double while the
  member goes on: a member's copies cost at most about twice its own size, and a body of
  many tiny members costs no more than one big one.
- Every member costs a new inflater (~7 µs and 40 KB of zlib state), so the number of
  members is capped too: a body of 200,000 empty members is refused at the cap, not after
  seconds of work.
- Output comes in pieces of at most OUT_CHUNK and stops one byte past `limit`: a bomb costs
  `limit` of output at most, never its full size.
"""

import io
import zlib
from collections.abc import Iterable, Iterator
from functools import partial

OUT_CHUNK = 256 * 1024
READ_SIZE = 1024 * 1024
_FIRST_STEP = 64  # an empty gzip member is 20 bytes
_MAX_STEP = 64 * 1024  # with OUT_CHUNK, re-fed tails cost at most 1/4 of the output


class DecompressError(ValueError):
    """The data cannot be inflated (within the limits); str() says why."""


class TooLarge(DecompressError):
    def __init__(self, limit: int):
        super().__init__(f"larger than {_size(limit)} once decompressed")
        self.limit = limit


class TooManyMembers(DecompressError):
    def __init__(self, max_members: int):
        super().__init__(f"more than {max_members:,} gzip members")
        self.max_members = max_members


class Truncated(DecompressError):
    pass


def _size(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            value = n / scale
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def inflate(blocks: Iterable[bytes], *, limit: int, max_members: int) -> Iterator[bytes]:
    """The decompressed pieces of gzip data arriving in `blocks` (several members allowed).
    Raises TooLarge past `limit` bytes of output, TooManyMembers, Truncated, or
    DecompressError for data that is not gzip."""
    total = members = 0
    inflater = None
    step = _FIRST_STEP
    try:
        for block in blocks:
            view = memoryview(block)
            pos, end = 0, len(view)
            while pos < end:
                if inflater is None:
                    members += 1
                    if members > max_members:
                        raise TooManyMembers(max_members)
                    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
                    step = _FIRST_STEP
                piece = view[pos : pos + step]
                pos += len(piece)
                while True:
                    room = min(OUT_CHUNK, limit + 1 - total)  # always >= 1: 0 means "no limit" to zlib
                    out = inflater.decompress(piece, room)
                    if out:
                        total += len(out)
                        if total > limit:
                            raise TooLarge(limit)
                        yield out
                    if inflater.eof:
                        pos -= len(inflater.unused_data)  # the next member starts there
                        inflater = None
                        break
                    piece = inflater.unconsumed_tail
                    if not piece and len(out) < room:
                        break  # piece used up and zlib had room to spare: it wants more input
                if inflater is not None:
                    step = min(step * 2, _MAX_STEP)
    except zlib.error as exc:
        raise DecompressError(f"not valid gzip ({exc})") from exc
    if inflater is not None:
        raise Truncated("truncated gzip data")


def gunzip(data: bytes, *, limit: int, max_members: int) -> bytes:
    """All of `data` inflated (see `inflate`)."""
    return b"".join(inflate((data,), limit=limit, max_members=max_members))


class _InflatingReader(io.RawIOBase):
    """A binary file's gzip content as a raw stream, through `inflate`."""

    def __init__(self, fileobj, *, limit: int, max_members: int):
        self._file = fileobj
        self._pieces = inflate(iter(partial(fileobj.read, READ_SIZE), b""), limit=limit, max_members=max_members)
        self._piece = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._piece:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._piece = memoryview(piece)
        n = min(len(buffer), len(self._piece))
        buffer[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._pieces.close()
            self._file.close()
        super().close()


def open_gzip(fileobj, *, limit: int, max_members: int) -> io.BufferedReader:
    """A buffered binary stream of the gzip file `fileobj` (closed with it), inflated lazily:
    reading past `limit` decompressed bytes raises TooLarge."""
    return io.BufferedReader(_InflatingReader(fileobj, limit=limit, max_members=max_members), READ_SIZE)
