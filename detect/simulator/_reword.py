"""Reword and translate every system prompt of a log, and rename every user agent.

A detector that keys on a system-prompt phrase, a user agent or a product name breaks when
a customer words its prompt differently or ships another client.  :func:`reword_table`
rewrites each distinct system prompt (synonyms, sentence order, product names, and for about
half of them a word-for-word translation into German, Spanish or French) and renames the
words of each distinct user agent, consistently: rows that shared a value still share its
replacement, and distinct values stay distinct.  Verdicts should not change.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

_SYNONYMS = {
    "you are": ("act as", "your role is", "you work as"),
    "helpful": ("useful", "obliging"),
    "assistant": ("aide", "helper", "companion"),
    "answer": ("respond", "reply"),
    "concisely": ("briefly", "in few words"),
    "always": ("at all times", "invariably"),
    "never": ("under no circumstances", "at no point"),
    "expert": ("specialist", "authority"),
    "provide": ("give", "supply"),
    "reasoning": ("thinking", "line of thought"),
    "step-by-step": ("stepwise", "one stage after another"),
    "intermediate steps": ("steps in between", "middle stages"),
    "exhaustive": ("thorough", "complete"),
    "tutor": ("teacher", "coach"),
    "friendly": ("warm", "kind"),
    "write": ("compose", "produce"),
    "follow": ("obey", "stick to"),
    "exactly": ("precisely", "to the letter"),
    "do not": ("don't", "avoid to"),
    "tools": ("functions", "utilities"),
    "format": ("layout", "shape"),
    "customer": ("client", "user"),
    "data": ("information", "records"),
}
_TRANSLATIONS = {
    "de": {"you": "du", "are": "bist", "a": "ein", "the": "der", "helpful": "hilfreicher",
           "assistant": "Assistent", "answer": "antworte", "concisely": "knapp", "and": "und",
           "always": "immer", "never": "niemals", "expert": "Experte", "with": "mit",
           "your": "deine", "to": "zu", "of": "von", "for": "für", "be": "sei", "in": "in",
           "reasoning": "Überlegung", "steps": "Schritte", "step": "Schritt", "do": "tue",
           "not": "nicht", "write": "schreibe", "format": "Format", "output": "Ausgabe",
           "user": "Nutzer", "text": "Text", "only": "nur", "keep": "behalte"},
    "es": {"you": "tú", "are": "eres", "a": "un", "the": "el", "helpful": "útil",
           "assistant": "asistente", "answer": "responde", "concisely": "brevemente",
           "and": "y", "always": "siempre", "never": "nunca", "expert": "experto",
           "with": "con", "your": "tu", "to": "a", "of": "de", "for": "para", "be": "sé",
           "in": "en", "reasoning": "razonamiento", "steps": "pasos", "step": "paso",
           "do": "haz", "not": "no", "write": "escribe", "format": "formato",
           "output": "salida", "user": "usuario", "text": "texto", "only": "solo"},
    "fr": {"you": "tu", "are": "es", "a": "un", "the": "le", "helpful": "serviable",
           "assistant": "assistant", "answer": "réponds", "concisely": "brièvement",
           "and": "et", "always": "toujours", "never": "jamais", "expert": "expert",
           "with": "avec", "your": "ton", "to": "à", "of": "de", "for": "pour", "be": "sois",
           "in": "en", "reasoning": "raisonnement", "steps": "étapes", "step": "étape",
           "do": "fais", "not": "pas", "write": "écris", "format": "format",
           "output": "sortie", "user": "utilisateur", "text": "texte", "only": "seulement"},
}  # fmt: skip
_SYLLABLES = ("ka", "zor", "vel", "mi", "tro", "lun", "sed", "qua", "rix", "bo", "ten", "fa")
_NAME = re.compile(r"\b[A-Z][a-z]+[A-Z][A-Za-z]*\b|\bAcme\b|\bChatGPT\b")
_WORD = re.compile(r"[A-Za-z]{3,}")


def _rng(seed: int, text: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}\x00{text}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _coined(r: random.Random, capital: bool = True) -> str:
    word = "".join(r.choice(_SYLLABLES) for _ in range(r.randint(2, 3)))
    return word.capitalize() if capital else word


def reword_system_prompt(text: str, seed: int = 0) -> str:
    """One system prompt reworded, or translated word for word (about half of them)."""
    r = _rng(seed, text)
    out = _NAME.sub(lambda m: _coined(_rng(seed, m.group(0))), text)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", out) if s]
    if len(sentences) > 2:
        head, rest = sentences[:1], sentences[1:]
        r.shuffle(rest)
        sentences = head + rest
    out = " ".join(sentences)
    for phrase, options in _SYNONYMS.items():
        pattern = re.compile(rf"\b{re.escape(phrase)}\b", re.I)
        out = pattern.sub(lambda _m, o=options: r.choice(o), out)
    if r.random() < 0.5:
        table = _TRANSLATIONS[r.choice(sorted(_TRANSLATIONS))]
        out = re.sub(r"[A-Za-z]+", lambda m: table.get(m.group(0).lower(), m.group(0)), out)
    if out == text:  # nothing above applied (a config blob): it still changes
        out = f"{r.choice(('Settings', 'Config', 'Setup'))} ({_coined(r)}): {text}"
    return out[:1].upper() + out[1:]


def rename_user_agent(text: str, seed: int = 0) -> str:
    """Every word of a user agent renamed (versions and structure kept)."""
    return _WORD.sub(lambda m: _coined(_rng(seed + 1, m.group(0)), m.group(0)[0].isupper()), text)


def _remap(column: pa.ChunkedArray, fn, seed: int) -> pa.ChunkedArray:
    encoded = pc.dictionary_encode(column).combine_chunks()
    values = encoded.dictionary.to_pylist()
    seen: dict[str, str] = {}
    new = []
    for v in values:
        out = fn(v, seed)
        k = 1
        while out in seen and seen[out] != v:  # keep distinct values distinct
            out, k = f"{fn(v, seed + 7919 * k)}", k + 1
        seen[out] = v
        new.append(out)
    mapped = pa.DictionaryArray.from_arrays(encoded.indices, pa.array(new, pa.string()))
    return pa.chunked_array([mapped.cast(pa.string())])


def reword_table(table: pa.Table, *, seed: int = 0) -> pa.Table:
    """``table`` with every system prompt reworded and every user agent renamed."""
    for name, fn in (("system_prompt", reword_system_prompt), ("user_agent", rename_user_agent)):
        if name in table.column_names and table[name].null_count < len(table):
            i = table.column_names.index(name)
            table = table.set_column(i, name, _remap(table[name], fn, seed))
    return table


def reword_traffic(src: Path | str, out: Path | str, *, seed: int = 0) -> Path:
    """Write ``src`` (a Parquet log) to ``out`` (Parquet) with :func:`reword_table` applied."""
    import pyarrow.parquet as pq

    src, out = Path(src), Path(out)
    for path in (src, out):
        if path.suffix != ".parquet":
            from stillroom.detect.errors import DetectError

            raise DetectError(f"{path}: reword_traffic reads and writes .parquet logs")
    pq.write_table(reword_table(pq.read_table(src), seed=seed), out, compression="zstd")
    return out
