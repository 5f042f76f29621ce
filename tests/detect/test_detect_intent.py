"""Evidence of intent (issue 26): what is asked decides, not how traffic arrives.

A simulated world with its campaigns removed (benign users and every hard negative kept) gets
three populations written here, so each test knows exactly what it adds:

* a person who pulls worked reasoning on dataset questions between ordinary chat;
* a vendor's machine-paced, output-heavy backend answering documents its users paste;
* five slow accounts that split one source of questions between them, each with its own
  IP, user agent, card and rhythm.

And the current simulated world scanned twice, as written and with every system prompt
reworded or translated and every user agent renamed: the verdicts must not move.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stillroom.detect import scan
from stillroom.detect._intent import supplied_content
from stillroom.detect.simulator import reword_traffic, simulate

START = pd.Timestamp("2026-01-05", tz="UTC")
_OBJECTS = (
    "a red dwarf", "a neutron star", "a white dwarf", "a brown dwarf", "a blue supergiant",
    "a Cepheid variable", "a magnetar", "a pulsar", "a quasar", "a protostar",
    "a red giant", "an eclipsing binary", "a planetary nebula", "a globular cluster",
    "a Wolf-Rayet star", "a T Tauri star",
)  # fmt: skip
_FRAMES = (
    "How does the luminosity of {o} change over its lifetime, and what sets its final fate?",
    "Which nuclear reactions power {o}, and at what core temperature do they switch on?",
    "Estimate the surface gravity of {o} and compare it with the Sun's, showing the scaling.",
    "What observations would let an astronomer measure the mass of {o} in a binary system?",
)
_ASK = "Lay out your complete chain of thought, every intermediate step, before the answer."
_DOCUMENT = (
    "Quarterly operations memo. Freight volumes through the northern depot rose by {n} "
    "percent while staffing stayed flat, which stretched the night shift. Two forklifts were "
    "out of service for most of the month and the replacement parts arrived late. The team "
    "rerouted {n} pallets through the southern yard, which added a day to average delivery "
    "times. Customer complaints about late arrivals rose, mostly from the retail accounts. "
    "Management proposes hiring four seasonal workers and renting two forklifts until spring. "
)


def _rows(account, ts, prompts, *, ip, ua, card, max_tokens, completion, org=None, system=None):
    n = len(prompts)
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(ts, unit="s", utc=True),
            "account_id": account,
            "prompt": prompts,
            "request_id": [f"req_{account}_{i}" for i in range(n)],
            "ip": ip,
            "user_agent": ua,
            "model": "atlas-large",
            "system_prompt": system,
            "max_tokens": float(max_tokens),
            "temperature": 0.7,
            "top_logprobs": 0.0,
            "prompt_tokens": [max(1, len(p) // 4) for p in prompts],
            "completion_tokens": completion,
            "org_id": org,
            "payment_id": card,
        }
    )


def _person_times(rng, n, tz_hours, days=12):
    """Sessions in the person's afternoon and evening, minutes apart."""
    day = rng.integers(0, days, n)
    hour = rng.uniform(13, 22, n) - tz_hours
    return np.sort(START.timestamp() + day * 86400 + hour * 3600 + rng.uniform(0, 60, n))


def _questions():
    return [f.format(o=o) for o in _OBJECTS for f in _FRAMES]


def _person(rng, account: str, prompts: list[str], tz_hours: float, ip: str, os: str):
    """One person's rows: the prompts shuffled, in afternoon and evening sessions."""
    rng.shuffle(prompts)
    return _rows(
        account,
        _person_times(rng, len(prompts), tz_hours),
        prompts,
        ip=ip,
        ua=f"Mozilla/5.0 ({os})",
        card=f"pm_{account}",
        max_tokens=4096,
        completion=rng.integers(600, 1400, len(prompts)),
    )


def _added(base: pd.DataFrame, rng) -> pd.DataFrame:
    chat = base["prompt"].drop_duplicates().sample(200, random_state=1).tolist()
    frames = []
    # 1. a person: chat, and reasoning pulls on dataset questions
    asks = [f"{q}\n\n{_ASK}" for q in _questions()[:30]]
    frames.append(
        _person(rng, "acct_person_puller", asks + chat[:30], 1, "81.12.40.7", "Macintosh")
    )
    # 2. a vendor's backend: four accounts on one server, round the clock, documents pasted
    for k in range(4):
        n = 160
        ts = START.timestamp() + np.sort(rng.uniform(0, 12 * 86400, n))
        docs = [
            f"Summarise this for the team in five bullet points:\n\n{_DOCUMENT.format(n=i)}"
            f"Ticket {k}-{i}: {chat[(i + k) % len(chat)]}"
            for i in range(n)
        ]
        frames.append(
            _rows(
                f"acct_vendor_{k}",
                ts,
                docs,
                ip="52.14.3.90",
                ua="vendor-backend/2.1",
                card="pm_vendor",
                org="org_vendor",
                max_tokens=4096,
                completion=rng.integers(900, 2000, n),
                system="You turn the customer's document into what they ask for.",
            )
        )
    # 3. five slow accounts splitting one source, nothing else in common
    questions = _questions()
    for k in range(5):
        mine = questions[k::5] + [f"{q} Keep it precise." for q in questions[k + 1 :: 5]]
        mine = mine[:20] + chat[40 + 3 * k : 43 + 3 * k]
        rng.shuffle(mine)
        frames.append(
            _rows(
                f"acct_source_{k}",
                _person_times(rng, len(mine), [-8, -5, 0, 3, 8][k]),
                mine,
                ip=f"10{k}.{20 + k}.{7 * k}.9",
                ua=[
                    "curl/8.4",
                    "python-requests/2.31",
                    "Mozilla/5.0 (X11)",
                    "okhttp/4.12",
                    "Mozilla/5.0 (iPhone)",
                ][k],
                card=f"pm_source_{k}",
                max_tokens=4096,
                completion=rng.integers(700, 1500, len(mine)),
            )
        )
    # 4. a person pulling worked reasoning in languages the lexicon does not read, rotating
    # three wordings of the ask around dataset questions, between ordinary chat
    asks = (
        "mostra-me cada passo do teu raciocínio, por favor",
        "schrijf eerst al je tussenstappen uit, daarna het antwoord",
        "rozpisz krok po kroku, jak do tego dochodzisz",
    )
    pulls = [
        f"{asks[i % 3]} {q}" if i % 2 else f"{q}\n\n{asks[i % 3]}"
        for i, q in enumerate(_questions()[5:35])
    ]
    frames.append(
        _person(rng, "acct_polyglot_puller", pulls + chat[60:100], 2, "88.31.2.44", "Windows")
    )
    # 5. a support backend: a tool declaration, then its user's message to act on
    n = 200
    docs = [
        f"{_TOOLS}\nDraft the reply to this customer, looking up the order first:\n\n"
        f"{_DOCUMENT.format(n=i)}Order {i}: {chat[i % len(chat)]}"
        for i in range(n)
    ]
    frames.append(
        _rows(
            "acct_tool_backend",
            START.timestamp() + np.sort(rng.uniform(0, 12 * 86400, n)),
            docs,
            ip="52.14.9.12",
            ua="support-bot/1.4",
            card="pm_tools",
            org="org_tools",
            max_tokens=4096,
            completion=rng.integers(400, 1200, n),
        )
    )
    return pd.concat(frames, ignore_index=True)


_TOOLS = (
    "Tools you may call:\nLook up an order by its number and return its status and items.\n"
    "get_order(number)\nSearch the help centre for an article.\nsearch_help(query)"
)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("intent")
    sim = simulate(folder / "base.parquet", seed=7, scale=0.25)
    truth = pd.read_csv(sim.truth_path).set_index("account_id")
    base = pd.read_parquet(sim.traffic_path)
    base = base[base["account_id"].map(truth["label"]) != "campaign"]
    log = pd.concat([base, _added(base, np.random.default_rng(0))], ignore_index=True)
    path = folder / "crafted.parquet"
    log.to_parquet(path)
    result = scan(path)
    accounts = {a["account_id"]: a for a in result.report["accounts"]}
    return result, accounts, truth


def test_supplied_content_reads_structure_not_words():
    doc = _DOCUMENT.format(n=3) * 2
    shares = supplied_content(
        [f"Summarise this:\n\n{doc}", f"Resume esto:\n\n{doc}", _questions()[0], "hi"]
    )
    assert shares[0] > 0.8 and shares[1] > 0.8  # any language: a short ask, a long body
    assert shares[2] == 0.0 and shares[3] == 0.0


def test_a_person_pulling_reasoning_between_chat_is_flagged(crafted):
    _, accounts, _ = crafted
    person = accounts["acct_person_puller"]
    assert person["flagged"], person
    assert any("reasoning" in r for r in person["reasons"])


def test_a_person_pulling_reasoning_in_unread_languages_is_flagged(crafted):
    # no ask is in the lexicon; the rotating asks recur at prompts' openings and endings
    _, accounts, _ = crafted
    person = accounts["acct_polyglot_puller"]
    assert person["flagged"], person


def test_a_tool_declaration_is_not_supplied_content_but_user_text_after_it_is():
    task = "Give the current temperature and weather condition for a given city\n\nLima"
    shares = supplied_content(
        [f"{_TOOLS}\n{task}", f"{_TOOLS}\nReply to this:\n\n{_DOCUMENT.format(n=1) * 2}"]
    )
    assert shares[0] == 0.0 and shares[1] > 0.8


def test_a_machine_backend_answering_supplied_documents_is_not_flagged(crafted):
    _, accounts, truth = crafted
    assert not accounts["acct_tool_backend"]["flagged"], accounts["acct_tool_backend"]
    for k in range(4):
        assert not accounts[f"acct_vendor_{k}"]["flagged"], accounts[f"acct_vendor_{k}"]
    benign = [a for i, a in accounts.items() if i in truth.index]
    assert sum(a["flagged"] for a in benign) <= 0.005 * len(benign)


def test_slow_accounts_linked_only_by_what_they_ask_form_one_campaign(crafted):
    result, accounts, _ = crafted
    members = [accounts[f"acct_source_{k}"] for k in range(5)]
    assert all(m["flagged"] for m in members), [m["reasons"] for m in members]
    campaigns = {m["campaign"] for m in members}
    assert len(campaigns) == 1
    (campaign,) = [c for c in result.report["campaigns"] if c["id"] in campaigns]
    shared = campaign["evidence"]["shared"]
    assert not {"ip", "payment", "org", "sync"} & set(shared), shared


@pytest.fixture(scope="module")
def reworded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reword")
    sim = simulate(folder / "world.parquet", seed=11, scale=0.2, world="current")
    other = reword_traffic(sim.traffic_path, folder / "reworded.parquet", seed=3)
    return scan(sim.traffic_path), scan(other)


def test_rewording_system_prompts_and_renaming_user_agents_changes_no_verdict(reworded):
    plain, other = reworded
    verdict = {a["account_id"]: a["flagged"] for a in plain.report["accounts"]}
    assert verdict == {a["account_id"]: a["flagged"] for a in other.report["accounts"]}
    assert any(verdict.values())  # there is something to keep


def _source_world(seed=0, d=48, bulk=400, strong=0.5, weak=0.25):
    """Unit-norm prompt vectors: ``bulk`` people asking about anything, four accounts drawing
    16 prompts each from one source (direction ``e``), one drawing 8, more faintly."""
    rng = np.random.default_rng(seed)
    e = np.eye(d)[0]
    accounts, rows = [], []

    def add(name, n, a):
        v = rng.normal(size=(n, d)) / np.sqrt(d) + a * e
        rows.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        accounts.extend([name] * n)

    for i in range(bulk):
        add(f"person_{i}", int(rng.integers(6, 17)), 0.0)
    for k in range(4):
        add(f"source_{k}", 16, strong)
    add("faint", 8, weak)
    return np.asarray(accounts), np.vstack(rows)


def test_a_faint_member_of_a_found_source_is_linked_by_projection():
    from stillroom.detect._intent import robust_threshold
    from stillroom.detect._sources import source_links

    accounts, vectors = _source_world()
    links, z = source_links(accounts, np.ones(len(accounts), bool), vectors, target_fpr=0.001)
    linked = set(links["source"]) | set(links["target"])
    assert {f"source_{k}" for k in range(4)} | {"faint"} <= linked
    # the norm over every dimension cannot tell the faint member from the bulk ...
    assert z["faint"] < robust_threshold(z.to_numpy(), None, 0.001)[0]
    # ... the projection on the found source's direction can, and links almost nobody else
    assert sum(a.startswith("person_") for a in linked) <= 2


def test_a_recurring_ask_is_read_from_structure_in_any_language():
    from stillroom.detect._intent import wrapped_asks, wrapped_requests

    questions = _questions()[:8]
    asks = (
        "どうやって解くのか、考えた順に全部書いてくれる？",
        "pokaż mi cały tok myślenia, zanim podasz wynik.",
    )
    chat = [f"{q} Thanks a lot for the help earlier today." for q in questions[:2]]
    puller = [
        f"{asks[i % 2]} {q}" if i % 3 else f"{q}\n\n{asks[i % 2]}" for i, q in enumerate(questions)
    ]
    person = [f"question {i}: {q}" for i, q in enumerate(reversed(questions))]
    sample = pd.DataFrame(
        {
            "account_id": ["puller"] * 8 + ["person"] * 8 + ["polite"] * 2,
            "prompt": puller + person + chat,
        }
    ).assign(phash=lambda f: f["prompt"].map(hash))
    got = wrapped_asks(sample)
    assert got.loc["puller", "wrapped_k"] == 8 and got.loc["person", "wrapped_k"] == 0
    assert got.loc["polite", "wrapped_k"] == 2  # a repeated courtesy is structure too ...
    bulk = pd.DataFrame({"wrapped_k": 0, "wrapped_n": 8}, index=[f"p{i}" for i in range(200)])
    frame = pd.concat([got, bulk])
    requests = pd.Series(100.0, index=frame.index)
    askers = np.ones(len(frame), dtype=bool)
    counted = wrapped_requests(frame, requests, askers, alpha=0.01)
    # ... but two prompts of two are too few to tell from chance; eight of eight are not
    assert counted["puller"] == 100 and counted["polite"] == 0 and counted["person"] == 0
    not_asking = askers & (frame.index != "puller")  # a product's template recurs too
    assert wrapped_requests(frame, requests, not_asking, alpha=0.01)["puller"] == 0


def test_a_recurring_ask_is_read_over_every_row_not_only_the_sample():
    from stillroom.detect._intent import wrapped_requests

    bulk = pd.DataFrame(
        {"wrapped_k": 0, "wrapped_n": 12, "template_rate": 0.02, "duplicate_rate": 0.0},
        index=[f"p{i}" for i in range(300)],
    )
    accounts = pd.DataFrame(
        {  # rotating asks: one wrapped prompt in a sample of 12, a third of openings recur
            "rotating": (1, 12, 0.3, 0.0),
            # the same prompts sent again: their openings recur, no ask wraps them
            "repeater": (0, 12, 0.6, 0.3),
            "habit": (0, 12, 0.05, 0.0),  # a person's habitual opener now and then
            # openings recur, but no sampled prompt holds them as a segment of their own
            "opener": (0, 12, 0.3, 0.0),
        },
        index=["wrapped_k", "wrapped_n", "template_rate", "duplicate_rate"],
    ).T
    frame = pd.concat([accounts, bulk])
    requests = pd.Series(120.0, index=frame.index)
    askers = np.ones(len(frame), dtype=bool)
    counted = wrapped_requests(frame, requests, askers, alpha=0.01)
    assert counted["rotating"] == 72 and counted["repeater"] == 0 and counted["habit"] == 0
    assert counted["opener"] == 0
    sample_only = wrapped_requests(frame[["wrapped_k", "wrapped_n"]], requests, askers, alpha=0.01)
    assert sample_only["rotating"] == 0


def test_a_rotating_ask_is_confirmed_by_every_rows_sentences_when_the_sample_misses_it(tmp_path):
    """Every row's first and last sentence (ingest's ``seg_head`` / ``seg_tail``, merged to
    ``segment_rate``) confirm a recurring opening or ending the sample never saw twice; an
    opener that runs into the question (no sentence end) is no segment of its own."""
    import json

    import duckdb

    from stillroom.detect._engine import DuckDBEngine
    from stillroom.detect._features import account_features
    from stillroom.detect._intent import wrapped_requests
    from stillroom.detect._partials import build_partials, merge_window

    questions = _questions()[:12]
    asks = ("kun je laten zien hoe je erop komt, stap voor stap?", "pokaż mi cały tok myślenia.")
    rows = []
    for i, q in enumerate(questions):
        day = f"2026-01-{1 + i % 3:02d}T1{i % 10}:00:00Z"
        ask = asks[i % 2]
        rows.append({"timestamp": day, "account_id": "rotating", "prompt": f"{ask} {q}"})
        rows.append({"timestamp": day, "account_id": "opener", "prompt": f"so tell me now {q}"})
        rows.append({"timestamp": day, "account_id": "ending", "prompt": f"{q}\n\n{ask}"})
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    engine = DuckDBEngine(con)
    engine.ingest([path], None)
    build_partials(engine, sample_cap=4, bucket_s=60)
    merge_window(engine)
    seg = account_features(engine, columns_present={"prompt"})["segment_rate"]
    assert seg["rotating"] == pytest.approx(0.5) and seg["ending"] == pytest.approx(0.5)
    assert seg["opener"] == 0.0  # its 40-character openings recur, as a habit's would

    bulk = pd.DataFrame(
        {"wrapped_k": 0, "wrapped_n": 12, "template_rate": 0.02, "duplicate_rate": 0.0},
        index=[f"p{i}" for i in range(300)],
    ).assign(segment_rate=0.0)
    seen = pd.DataFrame(  # no wrapped prompt in the sample; a third of openings recur
        {"wrapped_k": 0, "wrapped_n": 12, "template_rate": 0.3, "duplicate_rate": 0.0},
        index=["rotating", "opener"],
    ).assign(segment_rate=[0.15, 0.0])
    frame = pd.concat([seen, bulk])
    requests = pd.Series(120.0, index=frame.index)
    askers = np.ones(len(frame), dtype=bool)
    counted = wrapped_requests(frame, requests, askers, alpha=0.01)
    assert counted["rotating"] == 72 and counted["opener"] == 0
    sample_only = frame.drop(columns="segment_rate")  # the sample alone cannot confirm it
    assert wrapped_requests(sample_only, requests, askers, alpha=0.01)["rotating"] == 0


def test_a_recurring_ask_counts_where_its_rows_want_long_answers_whatever_the_chat_between():
    """A person's short chat between the pulls keeps the ratio over every row under the
    log's median; over the rows holding a sentence beside a task it is not."""
    from stillroom.detect._askers import task_askers, wrap_askers

    X = pd.DataFrame(
        {  # token_ratio, segment_token_ratio, supplied_share
            "puller": (12.0, 15.0, 0.0),
            "product": (12.0, 15.0, 0.9),  # a user's pasted text: not the asker's task
            "short": (12.0, 3.0, 0.0),
            **{f"p{i}": (14.0 + i % 3, 6.0 + i % 3, 0.0) for i in range(30)},
        },
        index=["token_ratio", "segment_token_ratio", "supplied_share"],
    ).T.assign(fresh_share=0.8, template_rate=0.2, duplicate_rate=0.0)
    wrap, tasks = pd.Series(wrap_askers(X), X.index), pd.Series(task_askers(X), X.index)
    assert wrap["puller"] and not tasks["puller"]
    assert not wrap["product"] and not wrap["short"]
    assert (wrap_askers(X.drop(columns="segment_token_ratio")) == tasks.to_numpy()).all()
