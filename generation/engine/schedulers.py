"""The schedulers a job may pick: our name -> diffusers class, its options, A1111 sampler label."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SchedulerSpec:
    class_name: str
    sampler_label: str
    options: dict = field(default_factory=dict)


SCHEDULERS: dict[str, SchedulerSpec] = {
    "dpmsolver++": SchedulerSpec("DPMSolverMultistepScheduler", "DPM++ 2M", {"algorithm_type": "dpmsolver++"}),
    "dpmsolver++-karras": SchedulerSpec(
        "DPMSolverMultistepScheduler", "DPM++ 2M Karras", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}
    ),
    "euler": SchedulerSpec("EulerDiscreteScheduler", "Euler"),
    "euler-a": SchedulerSpec("EulerAncestralDiscreteScheduler", "Euler a"),
    "ddim": SchedulerSpec("DDIMScheduler", "DDIM"),
    "pndm": SchedulerSpec("PNDMScheduler", "PLMS"),
    "lms": SchedulerSpec("LMSDiscreteScheduler", "LMS"),
    "heun": SchedulerSpec("HeunDiscreteScheduler", "Heun"),
    "unipc": SchedulerSpec("UniPCMultistepScheduler", "UniPC"),
}
DEFAULT_SCHEDULER = "dpmsolver++"
