from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self) -> None:
        from imagineer.jobs import kind_register
        from training.models import TrainingRun
        from training.services.runs import training_runs_resend

        kind_register(TrainingRun, resend=training_runs_resend)
