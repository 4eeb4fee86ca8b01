"""A superbill (domain/superbill.py) as a PDF, rendered with ReportLab: pure, Superbill in, bytes out.

- Letter pages: the provider (name, address, NPI, TIN) and the period at the top, the patient, the diagnoses, a
  table of services (its header repeated on every page it runs over), the totals, the statement that the patient
  paid and is seeking reimbursement, and the provider's signature line; every page is numbered "Page N of M".
- The text is in Bitstream Vera Sans, which ReportLab ships, embedded as a subset with its Unicode map, so the
  text reads back (copy, search, a plan's scanner). Vera has Western and Central European letters (Latin-1,
  Ł, Š, Č, Ğ...); a letter it lacks is printed without its accent (Nguyễn as Nguyen), and anything else as "?",
  never silently dropped. The JSON superbill carries the exact text.
- Deterministic: ReportLab's invariant mode (fixed document id, no timestamps in the file) with the creation date
  set to the day the superbill was prepared, so two renders of one superbill are the same bytes.
"""

from __future__ import annotations

import io
import threading
import unicodedata
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from services.billing.domain.estimates import Address
from services.billing.domain.superbill import Superbill

FONT, BOLD = "KapnetSans", "KapnetSans-Bold"
PRODUCER = "kapnet billing (ReportLab)"
MARGIN = 0.7 * inch
GRID = colors.HexColor("#9aa3ad")
SHADE = colors.HexColor("#e8ecf0")
# ReportLab keeps module-level state (its font registry and caches): one render at a time, so a route may render in
# a worker thread without blocking the event loop.
_RENDERING = threading.Lock()


@cache
def _font_map() -> frozenset[int]:
    """Register the embedded fonts once; the characters they can draw."""
    fonts = Path(reportlab.__file__).parent / "fonts"
    regular = TTFont(FONT, str(fonts / "Vera.ttf"))
    pdfmetrics.registerFont(regular)
    pdfmetrics.registerFont(TTFont(BOLD, str(fonts / "VeraBd.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)
    return frozenset(regular.face.charToGlyph)


def printable(text: str) -> str:
    """``text`` in the characters the font has: a missing letter without its accent, else "?"."""
    drawable = _font_map()
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        if ord(char) in drawable or char in "\n\t":
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        out.append(base if base and all(ord(c) in drawable for c in base) else "?")
    return "".join(out)


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(printable(text)), style)


def _styles() -> dict[str, ParagraphStyle]:
    _font_map()
    body = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=11.5)
    return {
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=8, leading=10),
        "cell": ParagraphStyle("cell", parent=body, fontSize=8, leading=9.5),
        "head": ParagraphStyle("head", parent=body, fontName=BOLD, fontSize=8, leading=9.5),
        "money": ParagraphStyle("money", parent=body, fontSize=8, leading=9.5, alignment=TA_RIGHT),
        "title": ParagraphStyle("title", parent=body, fontName=BOLD, fontSize=16, leading=20),
        "provider": ParagraphStyle("provider", parent=body, fontName=BOLD, fontSize=11, leading=14),
        "section": ParagraphStyle("section", parent=body, fontName=BOLD, fontSize=10, leading=13, spaceBefore=8),
        "right": ParagraphStyle("right", parent=body, alignment=TA_RIGHT),
    }


def _address(location: Address) -> list[str]:
    lines = [location.line1]
    if location.line2:
        lines.append(location.line2)
    lines.append(f"{location.city}, {location.state} {location.postal_code}")
    return lines


def _boxed(rows: list[list[Any]], widths: list[float], header: bool = True, repeat: bool = False) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if repeat else 0, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.4, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), SHADE))
    table.setStyle(TableStyle(commands))
    return table


def _story(bill: Superbill, width: float) -> list[Any]:
    s = _styles()
    provider = bill.provider
    provider_block = [
        _p(provider.name, s["provider"]),
        *(_p(line, s["body"]) for line in _address(provider.location)),
        _p(f"NPI {provider.npi}    TIN {provider.tin}", s["body"]),
    ]
    period_block = [
        _p("SUPERBILL", s["title"]),
        _p("Itemised statement for insurance reimbursement", s["body"]),
        _p(f"Dates of service: {bill.period_start.isoformat()} to {bill.period_end.isoformat()}", s["body"]),
        _p(f"Prepared on: {bill.prepared_on.isoformat()}", s["body"]),
    ]
    head = Table([[provider_block, period_block]], colWidths=[width * 0.55, width * 0.45], hAlign="LEFT")
    head.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("LINEBELOW", (0, 0), (-1, 0), 1, colors.black),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )

    patient = _boxed(
        [
            [_p("Name", s["head"]), _p("Date of birth", s["head"])],
            [_p(bill.patient.name, s["body"]), _p(bill.patient.date_of_birth.isoformat(), s["body"])],
        ],
        [width * 0.7, width * 0.3],
    )

    diagnoses = _boxed(
        [[_p("ICD-10-CM", s["head"]), _p("Diagnosis", s["head"])]]
        + [[_p(d.code, s["cell"]), _p(d.description or "", s["cell"])] for d in bill.diagnoses],
        [width * 0.18, width * 0.82],
    )

    columns = [
        ("Date of service", 0.12),
        ("POS", 0.05),
        ("CPT/HCPCS", 0.12),
        ("Modifiers", 0.1),
        ("Description", 0.32),
        ("Diagnoses", 0.11),
        ("Units", 0.06),
        ("Charge", 0.12),
    ]
    rows: list[list[Any]] = [[_p(name, s["head"]) for name, _ in columns]]
    for visit in bill.visits:
        for line in visit.lines:
            rows.append(
                [
                    _p(visit.service_on.isoformat(), s["cell"]),
                    _p(visit.place_of_service, s["cell"]),
                    _p(line.code, s["cell"]),
                    _p(" ".join(line.modifiers), s["cell"]),
                    _p(line.description, s["cell"]),
                    _p(", ".join(visit.diagnoses), s["cell"]),
                    _p(str(line.units), s["cell"]),
                    _p(str(line.charge), s["money"]),
                ]
            )
    services = _boxed(rows, [width * share for _, share in columns], repeat=True)

    totals_rows = [[_p("Total charges", s["head"]), _p(str(bill.total_charges), s["money"])]]
    totals_rows.append(
        [_p("Amount paid by the patient for these services", s["head"]), _p(str(bill.amount_paid), s["money"])]
    )
    totals = _boxed(totals_rows, [width * 0.32, width * 0.16], header=False)
    totals.hAlign = "RIGHT"

    signature = [Spacer(1, 22), _p(bill.signature_line, s["body"])]
    return [
        head,
        Spacer(1, 8),
        _p("Patient", s["section"]),
        patient,
        _p("Diagnoses", s["section"]),
        diagnoses,
        _p("Services (place of service 11: office)", s["section"]),
        services,
        Spacer(1, 6),
        totals,
        KeepTogether([_p("Statement", s["section"]), _p(bill.statement, s["body"]), *signature]),
    ]


def _canvas_for(bill: Superbill) -> type[Canvas]:
    """A canvas that numbers pages "N of M" (drawn once every page is known) and dates the file on the day the
    superbill was prepared."""
    prepared: date = bill.prepared_on
    footer = printable(
        f"Superbill, {bill.provider.name}, {bill.period_start.isoformat()} to {bill.period_end.isoformat()}"
    )

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []
            self.setDateFormatter(lambda *_: f"D:{prepared:%Y%m%d}000000+00'00'")

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            count = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont(FONT, 7.5)
                self.setFillColor(colors.HexColor("#4a525a"))
                self.drawString(MARGIN, MARGIN / 2, footer)
                self.drawRightString(LETTER[0] - MARGIN, MARGIN / 2, f"Page {self._pageNumber} of {count}")
                super().showPage()
            super().save()

    return NumberedCanvas


def render_superbill_pdf(bill: Superbill) -> bytes:
    """The superbill as PDF bytes: the same superbill gives the same bytes."""
    with _RENDERING:
        return _render(bill)


def _render(bill: Superbill) -> bytes:
    _font_map()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"Superbill {bill.period_start.isoformat()} to {bill.period_end.isoformat()}",
        author=printable(bill.provider.name),
        subject="Itemised statement for insurance reimbursement",
        creator=PRODUCER,
        producer=PRODUCER,
        invariant=1,
        lang="en-US",
    )
    document.build(_story(bill, LETTER[0] - 2 * MARGIN), canvasmaker=_canvas_for(bill))
    return buffer.getvalue()
