"""Small, valid PDF files written by hand, so tests need no PDF library to make one.

Each page holds lines of text in Helvetica (a font every reader knows without embedding it); a
page with no lines has no text layer, like a scan.
"""

from __future__ import annotations

import zlib


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def minimal_pdf(pages: list[list[str]], *, title: str = "", glyphs: dict[int, str] | None = None) -> bytes:
    """A PDF with one page per item of `pages`, each showing its lines of text (Latin-1, each
    character one byte of the font's encoding). `glyphs` renames the glyphs of some of those bytes
    (`{0x80: "fi"}`: byte 0x80 shows the ligature ﬁ), as the encodings of embedded fonts do."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * index for index in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{page_id} 0 R" for page_id in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    encoding = "/WinAnsiEncoding"
    if glyphs:
        differences = " ".join(f"{code} /{name}" for code, name in sorted(glyphs.items()))
        encoding = f"<< /BaseEncoding /WinAnsiEncoding /Differences [{differences}] >>"
    objects.append(f"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding {encoding} >>".encode())
    for page_id, lines in zip(page_ids, pages, strict=True):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {page_id + 1} 0 R >>".encode()
        )
        commands = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            commands += [f"({_escape(line)}) Tj", "T*"]
        commands.append("ET")
        stream = "\n".join(commands).encode("latin-1") if lines else b""
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = None
    if title:
        objects.append(f"<< /Title ({_escape(title)}) >>".encode("latin-1"))
        info_id = len(objects)

    return _assemble(objects, f" /Info {info_id} 0 R" if info_id else "")


def _assemble(objects: list[bytes], trailer_extra: str = "") -> bytes:
    """The file: the objects numbered from 1 (the catalog first), the cross-reference table, the trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def shared_stream_bomb(pages: int, *, inflated_bytes: int, first_page: str = "") -> bytes:
    """A PDF whose pages all show one Flate stream of text operators inflating to `inflated_bytes`
    (a few KB on disk): each page costs a reader that inflation and its text extraction. With
    `first_page`, a small ordinary page comes first."""
    line = b"BT /F1 12 Tf 72 720 Td (Bomb) Tj ET\n"
    bomb = zlib.compress(line * (inflated_bytes // len(line)), 9)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream")  # 4
    resources = "/Resources << /Font << /F1 3 0 R >> >> /MediaBox [0 0 612 792]"
    kids = []
    if first_page:
        text = f"BT /F1 12 Tf 72 720 Td ({_escape(first_page)}) Tj ET".encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R {resources} /Contents {len(objects)} 0 R >>".encode())
        kids.append(len(objects))
    for _ in range(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R {resources} /Contents 4 0 R >>".encode())
        kids.append(len(objects))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode()

    return _assemble(objects)
