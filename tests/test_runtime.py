"""kdlab.runtime: keeping library warnings off stderr, inside a block and for a whole session
(an assignment's set-up cell), checked in fresh processes that start with the defaults."""

import subprocess
import sys
import textwrap

import pytest


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def test_quiet_silences_warnings_and_noisy_loggers_then_restores_them():
    result = run(
        """
        import logging, warnings
        from kdlab import runtime
        with runtime.quiet():
            warnings.warn("inside")
            logging.getLogger("torch.utils._pytree").warning("pytree notice")
        logging.getLogger("torch.utils._pytree").warning("after the block")
        warnings.warn("after the block too")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "inside" not in result.stderr and "pytree notice" not in result.stderr
    assert "after the block" in result.stderr and "after the block too" in result.stderr


def test_warnings_to_stdout_leaves_stderr_empty():
    pytest.importorskip("transformers")
    result = run(
        """
        import logging, warnings
        import kdlab
        kdlab.warnings_to_stdout()
        kdlab.warnings_to_stdout()  # twice: one handler, each message printed once
        from transformers.utils import logging as transformers_logging
        warnings.warn("a harmless warning")
        logging.getLogger("torch.utils._pytree").warning("pytree notice")
        transformers_logging.get_logger("transformers.test").warning("a transformers message")
        from transformers import BertConfig
        BertConfig(hidden_size=32, num_attention_heads=2)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"stderr must stay empty, got {result.stderr!r}"
    assert result.stdout.count("UserWarning: a harmless warning") == 1
    assert result.stdout.count("a transformers message") == 1
    assert "pytree notice" not in result.stdout
