from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "cards"
    verbose_name = "Finished cards"

    def ready(self) -> None:
        from cards.models import FinishingJob
        from cards.services.jobs import finishing_resend
        from cards.services.steering import run_jobs_guide
        from generation.steering import steer_register
        from imagineer.jobs import kind_register

        kind_register(FinishingJob, resend=finishing_resend)
        steer_register(run_jobs_guide)
