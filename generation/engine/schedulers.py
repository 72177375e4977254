"""The schedulers a job may pick: our name -> diffusers class, its options, A1111's names for it.

A1111 (1.9 and later) names a sampler and a schedule type apart: ``Sampler: DPM++ 2M,
Schedule type: Karras``. Its ``Automatic`` schedule means the sampler's default, which for
DPM++ 2M is Karras, so the plain (non-Karras) DPM++ 2M must say ``Uniform``. The timestep
samplers (DDIM, PLMS, UniPC) ignore the schedule type; A1111 writes ``Automatic`` for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SchedulerSpec:
    class_name: str
    sampler_label: str  # A1111's sampler name
    schedule_type: str  # A1111's schedule type
    options: dict = field(default_factory=dict)


SCHEDULERS: dict[str, SchedulerSpec] = {
    "dpmsolver++": SchedulerSpec(
        "DPMSolverMultistepScheduler", "DPM++ 2M", "Uniform", {"algorithm_type": "dpmsolver++"}
    ),
    "dpmsolver++-karras": SchedulerSpec(
        "DPMSolverMultistepScheduler",
        "DPM++ 2M",
        "Karras",
        {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
    ),
    "euler": SchedulerSpec("EulerDiscreteScheduler", "Euler", "Uniform"),
    "euler-a": SchedulerSpec("EulerAncestralDiscreteScheduler", "Euler a", "Uniform"),
    "ddim": SchedulerSpec("DDIMScheduler", "DDIM", "Automatic"),
    "pndm": SchedulerSpec("PNDMScheduler", "PLMS", "Automatic"),
    "lms": SchedulerSpec("LMSDiscreteScheduler", "LMS", "Uniform"),
    "heun": SchedulerSpec("HeunDiscreteScheduler", "Heun", "Uniform"),
    "unipc": SchedulerSpec("UniPCMultistepScheduler", "UniPC", "Automatic"),
}
DEFAULT_SCHEDULER = "dpmsolver++"

# Other tools' sampler names (lower case, '_' and '-' as spaces) -> ours; "+karras" picks the Karras variant.
_FOREIGN_SAMPLERS = {
    # A1111 before 1.9 put the schedule into the sampler name.
    "dpm++ 2m karras": "dpmsolver++-karras",
    # ComfyUI (KSampler sampler_name), InvokeAI (scheduler), NovelAI (sampler).
    "dpmpp 2m k": "dpmsolver++-karras",
    "euler ancestral": "euler-a",
    "euler a": "euler-a",
    "k euler ancestral": "euler-a",
    "k euler": "euler",
    "k lms": "lms",
    "k heun": "heun",
    "uni pc": "unipc",
    "unipc": "unipc",
    "plms": "pndm",
    "pndm": "pndm",
}


def scheduler_names() -> list[str]:
    return list(SCHEDULERS)


def scheduler_from_sampler(sampler: str, schedule_type: str = "") -> str | None:
    """Our scheduler for another tool's sampler (+ schedule type) name, or None when we have none like it.

    A1111's ``DPM++ 2M`` with ``Automatic`` or no schedule type is Karras (A1111 reads it so).
    """
    key = re.sub(r"[\s_\-]+", " ", (sampler or "").strip().lower())
    schedule = (schedule_type or "").strip().lower()
    if key in ("dpm++ 2m", "dpmpp 2m", "k dpmpp 2m"):
        karras = schedule == "karras" or (key == "dpm++ 2m" and schedule in ("", "automatic"))
        return "dpmsolver++-karras" if karras else "dpmsolver++"
    for name, spec in SCHEDULERS.items():
        if key == spec.sampler_label.lower():
            return name
    return _FOREIGN_SAMPLERS.get(key) or (key if key in SCHEDULERS else None)
