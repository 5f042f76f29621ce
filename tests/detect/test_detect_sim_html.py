"""The HTML report is one self-contained file that renders in real headless Chromium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from stillroom.detect._html import render_html, write_html_report
from stillroom.detect._layout import spring_layout

XSS = [
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 2">',
    '"><svg onload="window.__xss = 3">',
    "</style><script>window.__xss = 4</script>",
]
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def hand_report() -> dict:
    """A report of the contract's shape, with attacker-controlled strings everywhere."""
    c1 = [f"acct_{i:04d}" for i in range(12)] + [XSS[2]]
    c2 = [f"acct_{i:04d}" for i in range(100, 106)]
    nodes = [{"id": a, "campaign": "C001", "flagged": True, "score": 0.9} for a in c1]
    nodes += [{"id": a, "campaign": "C002", "flagged": True, "score": 0.7} for a in c2]
    nodes += [{"id": "acct_benign", "campaign": None, "flagged": False, "score": 0.1}]
    edges = [
        {"source": c1[i], "target": c1[i + 1], "weight": 0.8, "via": ["subnet", "payment"]}
        for i in range(len(c1) - 1)
    ]
    edges += [
        {"source": c2[i], "target": c2[0], "weight": 0.5, "via": [XSS[1]]}
        for i in range(1, len(c2))
    ]
    edges.append({"source": c2[0], "target": "acct_benign", "weight": 0.1, "via": ["ip"]})
    accounts = [
        {
            "account_id": a,
            "score": 0.9,
            "flagged": True,
            "campaign": "C001",
            "reasons": [
                "shares 14 proxy /24 subnets with 12 other accounts",
                f"prompt sample: {XSS[0]}",
            ],
        }
        for a in c1
    ]
    accounts += [
        {
            "account_id": a,
            "score": 0.7,
            "flagged": True,
            "campaign": "C002",
            "reasons": ["91% of prompts demand step-by-step reasoning", XSS[3]],
        }
        for a in c2
    ]
    accounts.append(
        {
            "account_id": "acct_benign",
            "score": 0.1,
            "flagged": False,
            "campaign": None,
            "reasons": [],
        }
    )
    hours = [f"2026-01-0{5 + d}T{h:02d}:00:00Z" for d in range(3) for h in range(24)]
    timeline = [
        {"campaign": "C001", "bucket": b, "requests": 10 + i % 7} for i, b in enumerate(hours)
    ]
    timeline += [{"campaign": "C002", "bucket": b, "requests": 3} for b in hours[20:]]
    return {
        "accounts": accounts,
        "campaigns": [
            {
                "id": "C001",
                "accounts": c1,
                "requests": 900,
                "score": 0.93,
                "first_seen": hours[0],
                "flagged_at": hours[5],
                "evidence": {
                    "signal": "reasoning",
                    "requests_before_flag": 57,
                    "shared": {"subnet": {"accounts": 13}},
                    "note": XSS[0],
                },
            },
            {
                "id": "C002",
                "accounts": c2,
                "requests": 150,
                "score": 0.71,
                "first_seen": hours[20],
                "flagged_at": hours[30],
                "evidence": {"signal": XSS[1], "rates": {"grading": 0.8}},
            },
        ],
        "summary": {
            "rows": 12345,
            "rows_skipped": 3,
            "accounts": 20,
            "flagged": 19,
            "campaigns": 2,
        },
        "graph": {"nodes": nodes, "edges": edges},
        "timeline": timeline,
        "features": {
            "reasoning_rate": {
                "bins": [i / 10 for i in range(11)],
                "flagged": [0] * 8 + [5, 14],
                "unflagged": [900, 40] + [1] * 8,
            },
            "log10_requests": {
                "bins": [0, 1, 2, 3],
                "flagged": [0, 10, 9],
                "unflagged": [500, 300, 20],
            },
        },
    }


def test_markup_escapes_every_user_string_and_references_nothing_external():
    page = render_html(hand_report())
    for payload in XSS:
        assert payload not in page
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the report's own script
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert "script-src 'sha256-" in page


def test_spring_layout_keeps_linked_nodes_closer_and_inside_the_canvas():
    ids = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)]
    edges = [(f"a{i}", f"a{i + 1}", 1.0) for i in range(9)] + [
        (f"b{i}", f"b{i + 1}", 1.0) for i in range(9)
    ]
    pos, height = spring_layout([*ids, "lonely"], edges)
    assert all(0 <= x <= 1000 and 0 <= y <= height for x, y in pos.values())

    def d(p, q):
        return ((pos[p][0] - pos[q][0]) ** 2 + (pos[p][1] - pos[q][1]) ** 2) ** 0.5

    linked = sum(d(f"a{i}", f"a{i + 1}") for i in range(9)) / 9
    across = sum(d(f"a{i}", f"b{i}") for i in range(10)) / 10
    assert linked < across


def test_empty_report_renders_placeholders(tmp_path):
    out = tmp_path / "empty.html"
    write_html_report(
        {
            "accounts": [],
            "campaigns": [],
            "summary": {"rows": 0, "rows_skipped": 0, "accounts": 0, "flagged": 0},
        },
        out,
    )
    text = out.read_text()
    assert "No campaign crossed the threshold" in text and "No links" in text


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium executable found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, path: Path):
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on(
        "request",
        lambda r: (
            problems.append(f"request: {r.url}")
            if not r.url.startswith(("file:", "data:"))
            else None
        ),
    )
    page.goto(path.as_uri())
    page.wait_for_selector(
        "html[data-report-ready='1']", timeout=5000
    )  # our script ran under the CSP
    return page, problems


@pytest.mark.browser
def test_hand_built_report_renders_in_chromium(browser, tmp_path):
    report = hand_report()
    out = tmp_path / "report.html"
    write_html_report(report, out)
    page, problems = _open(browser, out)
    assert page.evaluate("window.__xss") is None
    assert page.locator("details.campaign").count() == 2
    assert page.locator("#graph svg circle").count() == len(report["graph"]["nodes"])
    assert page.locator("#graph svg line").count() == len(report["graph"]["edges"])
    assert page.locator("#timeline polyline").count() == 2
    assert page.locator("#timeline line.flag").count() == 2
    assert page.locator(".hist svg").count() == 2
    assert page.locator("#accounts tbody tr").count() == 19
    assert "57 exchanges served before detection" in page.inner_text("#campaigns")
    assert XSS[0] in page.inner_text("#accounts")  # shown as text, inert
    box = page.locator("#graph svg").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 150
    page.click("[data-focus-campaign='C002']")
    assert page.locator("#graph circle.hl").count() == 6
    page.fill("#account-filter", "acct_010")
    assert page.locator("#accounts tbody tr:not([hidden])").count() == 6
    assert problems == []


@pytest.mark.browser
def test_report_from_a_real_scan_renders_in_chromium(browser, tmp_path):
    from stillroom import detect

    if not hasattr(detect, "scan"):
        pytest.skip("stillroom.detect.scan is not available yet")
    from stillroom.detect.simulator import simulate

    sim = simulate(tmp_path / "traffic.parquet", seed=11, scale=0.05)
    report = detect.scan([sim.traffic_path]).report
    out = tmp_path / "scan.html"
    write_html_report(report, out)
    page, problems = _open(browser, out)
    assert page.locator("details.campaign").count() == len(report["campaigns"]) > 0
    assert page.locator("#graph svg circle").count() == min(len(report["graph"]["nodes"]), 600) > 0
    assert page.locator(".hist svg").count() == len(report["features"])
    text = page.inner_text("#campaigns")
    assert "Multi-account campaigns" in text and "Lone accounts" in text
    assert "decided by" in text  # each card names its deciding evidence
    page.locator("details.campaign").first.evaluate("d => d.open = true")
    shot = page.locator("#campaigns").screenshot()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    from matplotlib import image

    pixels = image.imread(io.BytesIO(shot), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert pixels[..., :3].std() > 0.02  # text and pills drawn, not a blank box
    assert problems == []
