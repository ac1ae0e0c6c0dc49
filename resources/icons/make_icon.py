"""Draw the CNNViz application icon: a pixel digit '3' built from lit cubes on a dark input grid.

    python resources/icons/make_icon.py      # writes cnnviz.svg, cnnviz.png (256 px) and cnnviz-48.png

The same geometry feeds the SVG and the PNGs (rendered 4x larger with Pillow, then downsampled), so they match.
The design is chosen to read at 48 px: a 5x7 digit, one cell is about 5 px there, with strong warm-on-dark contrast.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = 256
DIGIT = [  # 5 x 7, a classic dot-matrix '3'
    "####.",
    "....#",
    "....#",
    ".###.",
    "....#",
    "....#",
    "####.",
]
COLS, ROWS = 7, 9  # the grid: the digit plus one empty cell of margin on every side
CELL = 23.0
BG_TOP, BG_BOTTOM = (22, 36, 71), (10, 17, 38)
GRID = (60, 86, 140)
OFF_CELL = (28, 45, 86)
TOP, SIDE, FRONT = (255, 196, 61), (214, 110, 32), (240, 146, 40)  # lit cube: top, right side, bottom side


def geometry():
    """Rounded tile, grid cells and lit cubes in 256-px units."""
    margin, radius = 12, 44
    cell = CELL
    width, height = COLS * cell, ROWS * cell
    x0, y0 = (SIZE - width) / 2 - 4, (SIZE - height) / 2 - 4  # leave room for the cube depth down-right
    depth = 6.0
    cells, cubes = [], []
    for r in range(ROWS):
        for c in range(COLS):
            x, y = x0 + c * cell, y0 + r * cell
            lit = 1 <= r <= 7 and 1 <= c <= 5 and DIGIT[r - 1][c - 1] == "#"
            (cubes if lit else cells).append((x, y, cell))
    return margin, radius, (x0, y0, width, height), cells, cubes, depth


def cube_faces(x, y, cell, depth):
    """Polygons (top face, right side, bottom side) of one lit cell drawn as a raised cube."""
    g = 2.0
    ax, ay, bx, by = x + g, y + g, x + cell - g, y + cell - g
    top = [(ax, ay), (bx, ay), (bx, by), (ax, by)]
    right = [(bx, ay), (bx + depth, ay + depth), (bx + depth, by + depth), (bx, by)]
    bottom = [(ax, by), (bx, by), (bx + depth, by + depth), (ax + depth, by + depth)]
    return top, right, bottom


def render_png(size: int) -> Image.Image:
    scale = 4 * size / SIZE
    big = int(SIZE * scale)
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    margin, radius, (gx, gy, gw, gh), cells, cubes, depth = geometry()
    # vertical gradient inside a rounded tile
    grad = Image.new("RGBA", (big, big))
    gd = ImageDraw.Draw(grad)
    for yy in range(big):
        t = yy / (big - 1)
        gd.line([(0, yy), (big, yy)], fill=tuple(round(a + (b - a) * t) for a, b in zip(BG_TOP, BG_BOTTOM)) + (255,))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        [margin * scale, margin * scale, (SIZE - margin) * scale, (SIZE - margin) * scale], radius * scale, fill=255)
    img.paste(grad, (0, 0), mask)
    d = ImageDraw.Draw(img)

    def s(points):
        return [(px * scale, py * scale) for px, py in points]

    for x, y, cell in cells:
        d.rectangle(s([(x + 2, y + 2), (x + cell - 2, y + cell - 2)]), fill=OFF_CELL + (255,))
    for i in range(COLS + 1):
        d.line(s([(gx + i * CELL, gy), (gx + i * CELL, gy + gh)]), fill=GRID + (255,), width=max(1, round(scale)))
    for j in range(ROWS + 1):
        d.line(s([(gx, gy + j * CELL), (gx + gw, gy + j * CELL)]), fill=GRID + (255,), width=max(1, round(scale)))
    for x, y, cell in cubes:
        top, right, bottom = cube_faces(x, y, cell, depth)
        d.polygon(s(right), fill=SIDE + (255,))
        d.polygon(s(bottom), fill=FRONT + (255,))
        d.polygon(s(top), fill=TOP + (255,))
    return img.resize((size, size), Image.LANCZOS)


def render_svg() -> str:
    margin, radius, (gx, gy, gw, gh), cells, cubes, depth = geometry()

    def hexc(rgb):
        return "#%02x%02x%02x" % rgb

    def poly(points, colour):
        return f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" fill="{hexc(colour)}"/>'

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}">',
        '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{hexc(BG_TOP)}"/><stop offset="1" stop-color="{hexc(BG_BOTTOM)}"/>'
        "</linearGradient></defs>",
        f'<rect x="{margin}" y="{margin}" width="{SIZE - 2 * margin}" height="{SIZE - 2 * margin}" '
        f'rx="{radius}" fill="url(#bg)"/>',
    ]
    for x, y, cell in cells:
        out.append(f'<rect x="{x + 2:.1f}" y="{y + 2:.1f}" width="{cell - 4:.1f}" height="{cell - 4:.1f}" '
                   f'fill="{hexc(OFF_CELL)}"/>')
    lines = [f"M{gx + i * CELL:.1f} {gy:.1f}V{gy + gh:.1f}" for i in range(COLS + 1)]
    lines += [f"M{gx:.1f} {gy + j * CELL:.1f}H{gx + gw:.1f}" for j in range(ROWS + 1)]
    out.append(f'<path d="{" ".join(lines)}" stroke="{hexc(GRID)}" stroke-width="1" fill="none"/>')
    for x, y, cell in cubes:
        top, right, bottom = cube_faces(x, y, cell, depth)
        out += [poly(right, SIDE), poly(bottom, FRONT), poly(top, TOP)]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    (HERE / "cnnviz.svg").write_text(render_svg())
    render_png(256).save(HERE / "cnnviz.png", optimize=True)
    render_png(48).save(HERE / "cnnviz-48.png", optimize=True)


if __name__ == "__main__":
    main()
