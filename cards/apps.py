from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "cards"
    verbose_name = "Finished cards"

    def ready(self) -> None:
        from cards.models import FinishingJob
        from cards.services.jobs import finishing_resend
        from imagineer.jobs import kind_register

        kind_register(FinishingJob, resend=finishing_resend)
