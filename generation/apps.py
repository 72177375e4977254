from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self) -> None:
        from generation.models import BatchGenerationRun
        from imagineer.reconcile import parent_register

        def run_settle(run_id: int) -> None:
            from generation.services.runs import run_refresh

            run_refresh(run_id=run_id)

        # A run is finished when its jobs are (imagineer/reconcile.py settles it).
        parent_register(BatchGenerationRun, items="jobs", settle=run_settle)
