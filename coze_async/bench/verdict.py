"""Whether a load run passed: what the report's last line says and the command's exit code.

A run passes when no request failed and the server rejected none, or, with
``BenchConfig.max_error_rate``, when the failed share stays within it. With the client-side
limiter on, any server rejection fails the run whatever the allowance: preventing them is
what the limiter is for, so one is a finding, not noise.
"""

from __future__ import annotations

import attrs

from .runner import BenchResult

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_PASSED", "Verdict", "exit_code", "judge"]

#: Exit code of a run that passed.
EXIT_PASSED = 0
#: Exit code of a run that failed (errors over the allowance, or rejections with the limiter).
EXIT_FAILED = 1
#: Exit code of a run stopped by Ctrl-C (SIGINT) or SIGTERM.
EXIT_INTERRUPTED = 130


@attrs.frozen
class Verdict:
    """The judgement of one run.

    ``errors`` counts failed requests plus rejections the SDK retried away (the server still
    refused those calls); ``attempts`` is the requests sent plus those retried rejections.
    ``clean`` is true only when both ``errors`` and the server's rejections are zero: the
    report shows ✓ for that case alone.
    """

    passed: bool
    clean: bool
    errors: int
    attempts: int
    reason: str

    @property
    def error_rate(self) -> float:
        """``errors / attempts`` (0 when nothing was sent)."""
        return self.errors / self.attempts if self.attempts else 0.0


def judge(result: BenchResult) -> Verdict:
    """Decide whether ``result`` passed, and say why in one phrase."""
    c, s = result.config, result.summary
    rejections = result.server_rejections
    # Rejections the SDK retried (retries > 0) fail no request but were still refused.
    retried = max(0, rejections - s.client_rejections)
    errors, attempts = s.failed + retried, s.requests + retried
    rate = errors / attempts if attempts else 0.0
    allowed = f"--max-error-rate {c.max_error_rate:g}"
    what = f"{s.failed:,} of {s.requests:,} requests failed"
    if s.errors:
        what += " (" + ", ".join(f"{name} {n:,}" for name, n in s.errors.items()) + ")"
    if retried:
        what += f", {retried:,} rejections retried"
    if attempts == 0:
        return Verdict(False, False, 0, 0, "no request was sent")
    if c.limit and rejections:
        return Verdict(
            False,
            False,
            errors,
            attempts,
            f"the server rejected {rejections:,} calls with the client-side limiter on "
            f"(expected 0); {what}",
        )
    if errors == 0:
        return Verdict(True, True, 0, attempts, f"{what}, 0 rejected")
    if rate <= c.max_error_rate:
        return Verdict(True, False, errors, attempts, f"{what}: {rate:.1%}, within {allowed}")
    return Verdict(False, False, errors, attempts, f"{what}: {rate:.1%}, over {allowed}")


def exit_code(result: BenchResult) -> int:
    """The command's exit status for ``result``: 130 if interrupted, else 0 passed, 1 failed."""
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_PASSED if judge(result).passed else EXIT_FAILED
