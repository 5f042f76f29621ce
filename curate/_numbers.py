"""Reading a number out of a short span of text: commas, currency, units, fractions, negatives.

The one parser of numeric answers in curate. It returns an exact :class:`~fractions.Fraction`
(``"1,250.50"`` -> 2501/2, ``"\\frac{3}{4}"`` -> 3/4, ``"2 1/2"`` -> 5/2, ``"−7"`` -> -7)
so that comparison with a reference can be exact, with a tolerance only where asked.
"""

from __future__ import annotations

import re
from fractions import Fraction

_MINUS = "\u2212\u2013"  # unicode minus and en dash, as models and LaTeX renderers write them
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}")
_LATEX_FRAC_SHORT = re.compile(r"\\[dt]?frac\s*(\d)(\d)")
_TEXT_MACRO = re.compile(r"\\(?:text|mathrm|textbf|mbox|operatorname)\s*\{([^{}]*)\}")
# One numeric token: an optional sign, then a mixed number, a fraction, or a decimal with
# optional thousands separators (only well-formed ones: 1,250 but not 12,50).
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>-)?\s*\$?\s*(?:"
    r"(?P<whole>\d+)\s+(?P<mnum>\d+)/(?P<mden>\d+)"
    r"|(?P<num>\d+(?:\.\d+)?)\s*/\s*(?P<den>\d+(?:\.\d+)?)"
    r"|(?P<dec>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r")(?![\d/])"
)


def normalise_span(text: str) -> str:
    """LaTeX and typography to plain text: ``\\frac{a}{b}`` -> ``a/b``, ``\\$`` -> ``$``, ``−`` -> ``-``."""
    out = text
    for ch in _MINUS:
        out = out.replace(ch, "-")
    out = _TEXT_MACRO.sub(r" \1 ", out)
    out = _LATEX_FRAC.sub(r"\1/\2", out)
    out = _LATEX_FRAC_SHORT.sub(r"\1/\2", out)
    out = out.replace("\\$", "$").replace("\\%", "%").replace("\\,", "").replace("\\!", "")
    out = out.replace("{,}", ",").replace("\\left", "").replace("\\right", "")
    return out.replace("$-", "-$").replace("- $", "-$")


def _to_fraction(match: re.Match[str]) -> Fraction | None:
    sign = -1 if match.group("sign") else 1
    try:
        if match.group("whole") is not None:
            den = Fraction(match.group("mden"))
            if den == 0:
                return None
            value = Fraction(match.group("whole")) + Fraction(match.group("mnum")) / den
        elif match.group("num") is not None:
            den = Fraction(match.group("den"))
            if den == 0:
                return None
            value = Fraction(match.group("num")) / den
        else:
            value = Fraction(match.group("dec").replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return sign * value


def numbers_in(text: str) -> list[Fraction]:
    """Every number in ``text``, in order, after :func:`normalise_span`."""
    found = []
    for match in _NUMBER.finditer(normalise_span(text)):
        value = _to_fraction(match)
        if value is not None:
            found.append(value)
    return found


_SYMBOLIC = re.compile(r"\\[a-zA-Z]+|\^|\bsqrt\b|\bpi\b")


def parse_number(text: str) -> Fraction | None:
    """The number ``text`` states, or None when it states none, several different ones, or an
    expression (``\\sqrt{2}/2``, ``2^{10}``): those are for a symbolic checker, not this one."""
    if _SYMBOLIC.search(normalise_span(text)):
        return None
    distinct = list(dict.fromkeys(numbers_in(text)))
    return distinct[0] if len(distinct) == 1 else None


def format_number(value: Fraction) -> str:
    """``72``, ``2.5`` or ``1/3``: the shortest exact form of a parsed number."""
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    if Fraction(repr(as_float)) == value:
        return repr(as_float)
    return f"{value.numerator}/{value.denominator}"
