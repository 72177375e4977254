"""Claude Code CLI run on this host as a subprocess, for hosts without Docker."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from django.conf import settings

from labeling.backends.base import LabelerHealth, LabelError, LabelResult, TransientLabelError, prompt_build
from labeling.backends.cli import ProcessOutput, Redactor, claude_args, output_interpret

NAME = "claude-cli"


class ClaudeCliLabeler:
    name = NAME

    def __init__(self, *, executable: str | None = None, timeout: int | None = None):
        self.executable = executable or settings.IMAGINEER_CLAUDE_BIN
        self.timeout = timeout or settings.IMAGINEER_LABEL_TIMEOUT
        self.credentials_path = Path(settings.IMAGINEER_CLAUDE_CREDENTIALS)

    def _resolve(self) -> str:
        found = shutil.which(self.executable)
        if found is None:
            raise LabelError(
                f"Claude CLI {self.executable!r} not found: install it (npm install -g @anthropic-ai/claude-code) "
                "or set IMAGINEER_CLAUDE_BIN.",
                code="cli_missing",
            )
        return found

    def label(self, image_path: Path, prompt_type: str = "default") -> LabelResult:
        image_path = Path(image_path).resolve()
        if not image_path.is_file():
            raise LabelError(f"Image file {image_path.name} is missing from the media folder.", code="file_missing")
        output = self.run(image_path, claude_args(prompt_build(prompt_type, str(image_path))))
        return output_interpret(
            output,
            prompt_type=prompt_type,
            source=NAME,
            default_model="claude (model not reported)",
            redact=Redactor(self.credentials_path),
        )

    def run(self, image_path: Path, args: list[str]) -> ProcessOutput:
        """Run the CLI with an argument list (no shell) in the image's folder; kill its group on timeout."""
        process = subprocess.Popen(
            [self._resolve(), *args],
            cwd=Path(image_path).parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=10)
            raise TransientLabelError(
                f"Claude CLI did not finish within {self.timeout}s; it was killed.", code="timeout"
            ) from None
        return ProcessOutput(
            exit_code=process.returncode,
            stdout=stdout.decode("utf-8", errors="replace"),
            stderr=stderr.decode("utf-8", errors="replace"),
        )

    def health(self) -> LabelerHealth:
        report: LabelerHealth = {
            "backend": NAME,
            "engine_answers": False,
            "image_exists": None,
            "ok": False,
            "executable": self.executable,
        }
        try:
            completed = subprocess.run(
                [self._resolve(), "--version"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL, check=False
            )
            report["engine_answers"] = completed.returncode == 0
            report["version"] = completed.stdout.decode(errors="replace").strip()[:200]
        except (LabelError, OSError, subprocess.TimeoutExpired) as exc:
            report["detail"] = str(exc)
        report["ok"] = report["engine_answers"]
        return report
