"""Whether an image file is whole, judged by its container structure.

Pillow stops reading once it has every pixel, so on its own it would accept
a PNG cut inside its last checksum or its IEND chunk, or a WebP missing its
tail. Both servicers that decode images (ImagemService, InferenceMethods)
hold files to these checks, as libpng and libwebp would.
"""

import struct
import zlib


def png_is_whole(data):
    """Whether every PNG chunk is present with a valid CRC, up to IEND."""
    view, pos = memoryview(data), 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data) or zlib.crc32(view[pos + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return False
        if kind == b"IEND":
            return True
        pos = end
    return False


def webp_is_whole(data):
    """Whether the RIFF container holds all the bytes its header declares."""
    return len(data) >= 8 + struct.unpack_from("<I", data, 4)[0]
