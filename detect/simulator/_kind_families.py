"""Families of the kinds added for issue 26, each tagged ``training`` or ``held_out``.

A family is a whole way of doing a kind (its wording, its pacing, its question pool, its
language), not a seed.  ``detect`` and any tuning may only see ``training`` families; a
simulation with ``phrasing="held_out"`` draws every axis of these kinds from the held-out
families, and kinds listed in :data:`HELD_OUT_KINDS` appear only there.  Each table maps a
family name to ``(split, value)``.
"""

from __future__ import annotations

import numpy as np

from stillroom.detect.simulator._timing import HUMAN_PROFILE, OFFICE_PROFILE

# --- benign content products --------------------------------------------------------------

# kind -> (split of the kind itself, documents it is sent, output tokens per input token)
PRODUCT_KINDS = {
    "summary_backend": ("training", ("email", "report", "ticket"), 0.18),
    "translation_backend": ("training", ("email", "report", "ticket"), 1.25),
    "extraction_backend": ("training", ("invoice", "ticket"), 0.12),
    "document_qa_backend": ("training", ("contract",), 0.1),
    "expansion_backend": ("training", ("notes",), 6.0),
    "code_review_backend": ("held_out", ("diff",), 1.1),
}
_LANGS = ("German", "French", "Spanish", "Japanese", "Portuguese", "Italian", "Korean")
PRODUCT_WORDING = {
    "summary_backend": {
        "plain_en": (
            "training",
            (
                "Summarise the following in {k} bullet points:\n\n{doc}",
                "TL;DR for a busy reader:\n{doc}",
                "{doc}\n\nWrite a short summary of the above.",
                "Condense this into one paragraph, keeping names and dates:\n\n{doc}",
            ),
        ),
        "other_languages": (
            "held_out",
            (
                "Fasse den folgenden Text in {k} Sätzen zusammen:\n\n{doc}",
                "Resume el siguiente hilo en pocas líneas:\n\n{doc}",
                "<document>\n{doc}\n</document>\nKey points and action items, please.",
            ),
        ),
    },
    "translation_backend": {
        "plain_en": (
            "training",
            (
                "Translate the following into {lang}. Keep the formatting.\n\n{doc}",
                "{lang} version of this text:\n{doc}",
                'Translate to {lang}:\n"""\n{doc}\n"""',
            ),
        ),
        "other_languages": (
            "held_out",
            (
                "Traduis ce texte en {lang} :\n\n{doc}",
                "target={lang}\n---\n{doc}",
                "Übersetze bitte ins {lang}:\n\n{doc}",
            ),
        ),
    },
    "extraction_backend": {
        "plain_en": (
            "training",
            (
                "Extract the document number, date, line items and total as JSON.\n\n{doc}",
                "Return a JSON object with vendor, date, total and currency for:\n{doc}",
                "Fill these fields from the text (customer, amount due, due date):\n{doc}",
            ),
        ),
        "schema_first": (
            "held_out",
            (
                'schema: {{"vendor": str, "total": float, "items": list}}\ninput:\n{doc}',
                "Extrae en JSON: proveedor, fecha, total.\n\n{doc}",
            ),
        ),
    },
    "document_qa_backend": {
        "plain_en": (
            "training",
            (
                "Using only the agreement below, answer: {q}\n\n{doc}",
                "{doc}\n\nQuestion: {q}",
                "Context:\n{doc}\n\nQ: {q}\nA:",
            ),
        ),
        "other_languages": (
            "held_out",
            (
                "Responde usando solo el documento: {q}\n\n{doc}",
                "{doc}\n\nDomanda sul contratto: {q}",
            ),
        ),
    },
    "expansion_backend": {
        "plain_en": (
            "training",
            (
                "Turn these notes into a complete, well-structured report:\n\n{doc}",
                "Draft a detailed email to the client covering these points:\n{doc}",
                "Write a full blog post from my notes below.\n\n{doc}",
            ),
        ),
        "other_languages": (
            "held_out",
            (
                "Schreibe aus diesen Stichpunkten einen ausführlichen Bericht:\n\n{doc}",
                "Redacta un correo completo a partir de estas notas:\n{doc}",
            ),
        ),
    },
    "code_review_backend": {
        "review_en": (
            "held_out",
            (
                "Review this change and point out bugs or risky lines:\n\n{doc}",
                "{doc}\n\nAny problems with this patch?",
                "PR diff below. Comment on correctness, naming and tests.\n{doc}",
            ),
        ),
    },
}
CONTRACT_QUESTIONS = (
    "What is the notice period for termination?",
    "Who is the Supplier?",
    "Which law governs the agreement?",
    "What is the cap on liability?",
    "How many days does the Customer have to pay an invoice?",
    "Can the Customer assign the agreement?",
)
# System prompts: composed per account, so no phrase is shared by a whole kind.
_OPENERS_EN = ("You are", "Act as", "You work as", "Your role:", "You serve as")
_ROLES_EN = ("the assistant", "a helper", "the text engine", "the back office tool", "a service")
_RULES_EN = (
    "Keep the user's formatting.",
    "Never add facts that are not in the input.",
    "Answer in the requested format only.",
    "Be brief.",
    "Do not mention that you are an AI.",
    "Preserve names, numbers and dates exactly.",
    "If something is unclear, say so in one line.",
    "Use plain language.",
)
# one language per account: (openers, roles, rules)
_PERSONAS_OTHER = (
    (
        ("Du bist", "Du arbeitest als"),
        ("der Assistent", "das Textwerkzeug"),
        ("Antworte knapp.", "Erfinde nichts.", "Behalte die Formatierung bei."),
    ),
    (
        ("Eres", "Actúas como"),
        ("el asistente", "la herramienta interna"),
        ("No inventes datos.", "Responde solo en el formato pedido.", "Conserva nombres y cifras."),
    ),
    (
        ("Tu es", "Tu agis comme"),
        ("l'outil interne", "l'assistant"),
        ("Respecte la mise en forme.", "Sois bref.", "N'ajoute aucun fait."),
    ),
    (
        ("Sei", "Lavori come"),
        ("lo strumento", "l'assistente"),
        ("Rispondi solo nel formato richiesto.", "Non inventare nulla.", "Sii breve."),
    ),
)
PRODUCT_SYSTEM = {
    "persona_en": ("training", (_OPENERS_EN, _ROLES_EN, _RULES_EN)),
    "absent": ("training", None),
    "persona_other_languages": ("held_out", _PERSONAS_OTHER),
    "config_blob": ("held_out", "config"),
}
# Pacing of a product backend: all of it machine-paced and around the clock.
PRODUCT_PACING = {
    "flat_queue": ("training", "flat"),
    "global_users": ("training", "diurnal"),
    "hourly_sync": ("held_out", "hourly"),
    "backlog_bursts": ("held_out", "backlog"),
}

# --- human-paced extraction ---------------------------------------------------------------

# (diurnal profile, weekdays only, requests per session, seconds between asks)
HUMAN_PACING = {
    "evening_sessions": ("training", (HUMAN_PROFILE, False, 6.0, 110.0)),
    "scattered_day": ("training", (HUMAN_PROFILE, False, 3.0, 240.0)),
    "office_hours": ("held_out", (OFFICE_PROFILE, True, 8.0, 70.0)),
    "night_owl": ("held_out", (np.roll(HUMAN_PROFILE, 7), False, 5.0, 160.0)),
}
# which dataset pools (bank capabilities) an account asks from
HUMAN_POOLS = {
    "math": ("training", ("math",)),
    "code": ("training", ("code",)),
    "math_code": ("training", ("math", "code")),
    "roleplay": ("held_out", ("roleplay",)),
    "tools": ("held_out", ("tools",)),
    "general_roleplay": ("held_out", ("general", "roleplay")),
}
# how a person asks for the worked reasoning; None: the simulation's campaign phrasing
HUMAN_WORDING = {
    "casual_en": (
        "training",
        (
            "can you show me how you'd work this out? every step pls",
            "Show all your working, I want to follow it.",
            "walk me through your thinking on this one, don't skip anything",
            "Explain how you get there, step by step, then the answer.",
            "please think it through out loud before answering",
        ),
    ),
    "campaign_phrasing": ("training", None),
    "casual_other_languages": (
        "held_out",
        (
            "consegue mostrar como chegou lá? todos os passos por favor",
            "puoi ragionarci sopra ad alta voce prima di rispondere?",
            "kun je laten zien hoe je erop komt, stap voor stap?",
            "どうやって解くのか、考えた順に全部書いてくれる？",
            "pokaż mi cały tok myślenia, zanim podasz wynik",
        ),
    ),
    "indirect_en": (
        "held_out",
        (
            "I'm checking my own attempt, so write out how you would get there first, in full.",
            "my teacher wants the method, not just the result. do it the way you'd think it",
            "I learn best from seeing every move, false starts too.",
        ),
    ),
    "held_out_campaign_phrasing": ("held_out", None),
}
# how accounts linked only by content share their question pool
LINK_CONSTRUCTIONS = {
    "partitioned": ("training", "partitioned"),  # each question asked once, by one account
    "overlapping": ("training", "overlapping"),  # all draw from one small pool: repeats
    "skewed": ("training", "skewed"),  # one big account, a tail of small ones
    "relay": ("held_out", "relay"),  # accounts take over from each other, own framing
}
RELAY_FRAMES = ("Next: {x}", "{x}\n(another one)", "Q{j}. {x}", "ok now this: {x}", "{x} ?")

NEW_CAMPAIGN_KINDS = ("chat_cover_extraction", "content_linked", "slow_skill_sweep")


def held_out_kinds() -> tuple[str, ...]:
    """Kinds that only held-out generation writes (kept out of all tuning)."""
    return tuple(k for k, (s, _, _) in PRODUCT_KINDS.items() if s == "held_out")


def split_for(phrasing_split: str) -> str:
    """The family split a simulation uses for these kinds (external asks: held-out)."""
    return "training" if phrasing_split == "training" else "held_out"


def choose(rng: np.random.Generator, table: dict, split: str) -> tuple[str, object]:
    """One family of ``table`` in ``split``: ``(name, value)``."""
    names = [name for name, (s, _) in table.items() if s == split]
    if not names:
        from stillroom.detect.errors import DetectError

        raise DetectError(f"no {split} family in {sorted(table)}")
    name = names[int(rng.integers(0, len(names)))]
    return name, table[name][1]
