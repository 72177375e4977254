from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self) -> None:
        from generation.models import BatchGenerationRun, GenerationJob
        from generation.services.jobs import jobs_resend, run_refresh, runs_resend
        from imagineer.jobs import kind_register
        from imagineer.reconcile import parent_register

        kind_register(GenerationJob, resend=jobs_resend)
        kind_register(BatchGenerationRun, resend=runs_resend)
        # A run is finished when its jobs are (imagineer/reconcile.py settles it).
        parent_register(BatchGenerationRun, items="jobs", settle=lambda run_id: run_refresh(run_id=run_id))
