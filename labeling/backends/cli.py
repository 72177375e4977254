"""What the two Claude CLI backends share: the argument list, redaction and reading the outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from labeling.backends.base import LabelError, LabelResult, TransientLabelError
from labeling.backends.parsing import is_transient_text, response_parse

# Only the Read tool, so the CLI can open the image and do nothing else.
CLI_OPTIONS = ("--output-format", "json", "--allowedTools", "Read")
STDERR_TAIL_CHARS = 1500
REDACTED = "[redacted]"


def claude_args(prompt: str) -> list[str]:
    """The CLI's arguments; the prompt is one list item, never part of a shell string."""
    return ["--print", prompt, *CLI_OPTIONS]


@dataclass
class ProcessOutput:
    exit_code: int
    stdout: str
    stderr: str


class Redactor:
    """Removes the credentials file's content, and every secret-looking value in it, from text."""

    def __init__(self, credentials_path: Path | None):
        secrets: set[str] = set()
        if credentials_path is not None:
            try:
                content = credentials_path.read_text(errors="replace")
            except OSError:
                content = ""
            if content.strip():
                secrets.add(content)
                secrets.add(content.strip())
                try:
                    secrets.update(_strings(json.loads(content)))
                except ValueError:
                    secrets.update(line.strip() for line in content.splitlines() if len(line.strip()) >= 8)
        # Longest first, so that a value inside the whole content does not leave fragments.
        self.secrets = sorted((s for s in secrets if len(s) >= 8), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
            # The same value as it looks when escaped inside a JSON string.
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                text = text.replace(escaped, REDACTED)
        return text


def _strings(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def output_interpret(
    output: ProcessOutput, *, prompt_type: str, source: str, default_model: str, redact: Redactor
) -> LabelResult:
    stdout, stderr = redact(output.stdout), redact(output.stderr)
    if output.exit_code != 0:
        detail = (stderr.strip() or stdout.strip())[-STDERR_TAIL_CHARS:] or "no output"
        message = f"Claude CLI exited with status {output.exit_code}: {detail}"
        error = TransientLabelError if is_transient_text(detail) else LabelError
        raise error(message, raw_response=stdout)
    try:
        parsed, model = response_parse(stdout, prompt_type)
    except LabelError as exc:
        # The parser keeps the raw response; it is already redacted because stdout is.
        raise type(exc)(exc.message, raw_response=stdout, code=exc.code) from None
    return LabelResult(
        caption=parsed["caption"],
        tags=parsed["tags"],
        nsfw_rating=parsed["nsfw_rating"],
        source=source,
        source_model=model or default_model,
        prompt_type=prompt_type,
        raw_response=stdout,
    )
