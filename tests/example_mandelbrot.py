#!/usr/bin/env python3
"""mandelbrot: the same PNG, byte for byte, for 1, 2 and 3 workers and in one process, and a
picture of the set.

Usage: example_mandelbrot.py MANDELBROT

Renders a small picture of the whole set four ways and compares the files. Then decodes the
PNG (here, with zlib alone) and checks it: its size, a palette whose entry 0 is black, a
pixel in the main cardioid black, the corners not, and the share of black pixels near the
set's area (about 1.5066) over the picture's (3.5 x 2.625).
"""
import os
import re
import struct
import sys
import tempfile
import zlib

from example_checks import fail, run

WIDTH, HEIGHT, ITERATIONS = 160, 120, 200
SPAN, LEFT = 3.5, -2.5  # the default view: centre -0.75, 0
SET_AREA = 1.5066


def decode_png(data):
    """(width, height, palette, rows of palette indices) of an 8-bit colour-mapped PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("not a PNG file")
    at, chunks, idat = 8, {}, b""
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0]:
            fail(f"bad CRC in the {kind!r} chunk")
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        at += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    if (depth, colour_type) != (8, 3):
        fail(f"bit depth {depth}, colour type {colour_type}: not 8-bit colour-mapped")
    palette = [tuple(chunks[b"PLTE"][i:i + 3]) for i in range(0, len(chunks[b"PLTE"]), 3)]
    raw, rows, previous = zlib.decompress(idat), [], bytes(width)
    for y in range(height):
        line = raw[y * (width + 1):(y + 1) * (width + 1)]
        kind, row = line[0], bytearray(line[1:])
        for x in range(width):  # undo the row's filter; one byte a pixel
            a = row[x - 1] if x else 0
            b, c = previous[x], previous[x - 1] if x else 0
            if kind == 1:
                row[x] = (row[x] + a) & 255
            elif kind == 2:
                row[x] = (row[x] + b) & 255
            elif kind == 3:
                row[x] = (row[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            elif kind != 0:
                fail(f"row {y}: unknown filter {kind}")
        rows.append(bytes(row))
        previous = row
    return width, height, palette, rows


def pixel_at(re_, im):
    """The column and row of the pixel whose centre is nearest re_ + im i."""
    step = SPAN / WIDTH
    return round((re_ - LEFT) / step - 0.5), round((step * HEIGHT / 2 - im) / step - 0.5)


def main():
    program = sys.argv[1]
    with tempfile.TemporaryDirectory() as directory:
        picture = os.path.join(directory, "mandelbrot.png")
        size = [program, "--width", str(WIDTH), "--height", str(HEIGHT), "--iterations",
                str(ITERATIONS), "--rows", "4", "--output", picture]
        outputs, pictures = [], []
        for way in (["--workers", "1"], ["--workers", "2"], ["--workers", "3"], ["--serial"]):
            outputs.append(run(size + way))
            with open(picture, "rb") as file:
                pictures.append(file.read())
            os.remove(picture)
    output = outputs[0]
    if any(other != output for other in outputs[1:]):
        fail(f"the output differs between worker counts: {outputs}")
    if any(picture != pictures[0] for picture in pictures[1:]):
        fail("the PNG files differ between worker counts")
    print(f"the same {len(pictures[0])} bytes for 1, 2, 3 workers and serial")

    width, height, palette, rows = decode_png(pictures[0])
    if (width, height) != (WIDTH, HEIGHT):
        fail(f"{width}x{height} pixels, not {WIDTH}x{HEIGHT}")
    if palette[0] != (0, 0, 0) or len(palette) != 256:
        fail(f"a palette of {len(palette)} entries, the first {palette[0]}")
    column, row = pixel_at(-0.25, 0.0)
    if rows[row][column] != 0:
        fail(f"pixel ({column}, {row}), at -0.25 in the main cardioid, is not black")
    for column, row in ((0, 0), (WIDTH - 1, 0), (0, HEIGHT - 1), (WIDTH - 1, HEIGHT - 1)):
        if rows[row][column] == 0:
            fail(f"the corner ({column}, {row}), far outside the set, is black")
    inside = sum(row.count(0) for row in rows) / (WIDTH * HEIGHT)
    expected = SET_AREA / (SPAN * SPAN * HEIGHT / WIDTH)
    if abs(inside - expected) > 0.02:
        fail(f"{inside:.3f} of the pixels are black; the set covers {expected:.3f} of the view")
    said = re.search(r"([0-9.]+)% of them in the set", output)
    if not said or abs(float(said[1]) - 100 * inside) > 0.01:
        fail(f"the example says {output!r}; the file has {100 * inside:.2f}% black")
    print(f"{100 * inside:.2f}% of the pixels in the set, which covers {100 * expected:.2f}% "
          f"of the view: a picture of the Mandelbrot set")


if __name__ == "__main__":
    main()
