"""XLSX files that unpack to far more than they weigh: a real workbook whose first sheet is rewritten."""

from __future__ import annotations

import io
import zipfile

_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<dimension ref="{dimension}"/><sheetData>'
)
# Rows and cells may leave out their position (r=...): identical rows deflate about a thousand times.
_ROW = '<row><c t="inlineStr"><is><t>question</t></is></c><c><v>1</v></c></row>'


def _workbook() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["q", "n"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_bomb(rows: int, *, dimension: str | None = None) -> bytes:
    """A valid XLSX whose first sheet holds `rows` rows (about 70 bytes of XML each, deflated ~1,000 times)."""
    source = zipfile.ZipFile(io.BytesIO(_workbook()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                target.writestr(info.filename, source.read(info.filename))
                continue
            with target.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
                sheet.write(_HEAD.format(dimension=dimension or f"A1:B{rows + 1}").encode())
                sheet.write(b'<row r="1"><c r="A1" t="inlineStr"><is><t>q</t></is></c>'
                            b'<c r="B1" t="inlineStr"><is><t>n</t></is></c></row>')  # fmt: skip
                block = (_ROW * 10_000).encode()
                for _ in range(rows // 10_000):
                    sheet.write(block)
                sheet.write((_ROW * (rows % 10_000) + "</sheetData></worksheet>").encode())
    return out.getvalue()
