"""The code verifier: run the response's code against the prompt's tests, in the sandbox."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from stillroom.curate._sandbox import SandboxLimits, run_sandboxed
from stillroom.curate._verdict import Verdict, failed, passed

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(answer: str) -> str | None:
    """The last fenced code block (```python ... ```), or the whole answer when none is fenced."""
    blocks = _FENCE.findall(answer)
    if blocks:
        return blocks[-1]
    return answer if answer.strip() else None


_HARNESS = """\
import runpy, sys
sys.path.insert(0, ".")
namespace = runpy.run_path("solution.py", run_name="solution")
exec(compile(open("tests.py").read(), "tests.py", "exec"), namespace)
print("ALL TESTS PASSED")
"""


@dataclass(frozen=True)
class CodeVerifier:
    """Passes when ``tests`` (Python with asserts, the reference) run cleanly after the code."""

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    name: str = "code"
    version: str = "1"

    def verify(self, prompt: str, answer: str, reference: Any) -> Verdict:
        code = extract_code(answer)
        if code is None:
            return failed(self, "no code found")
        files = {"solution.py": code, "tests.py": str(reference), "harness.py": _HARNESS}
        result = run_sandboxed(files, "harness.py", self.limits)
        if result.ok and "ALL TESTS PASSED" in result.stdout:
            return passed(self, code)
        reason = result.reason or "tests did not finish"
        if "AssertionError" in result.stderr and reason.startswith("exit"):
            reason = "a test failed: " + reason.split(": ", 1)[-1]
        return failed(self, reason, code)
