from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self) -> None:
        from generation.models import BatchGenerationRun, GenerationJob
        from generation.services.jobs import jobs_resend, runs_resend
        from imagineer.jobs import kind_register

        kind_register(GenerationJob, resend=jobs_resend)
        kind_register(BatchGenerationRun, resend=runs_resend)
