from django.apps import AppConfig


class AlbumsConfig(AppConfig):
    name = "albums"

    def ready(self) -> None:
        from albums.models import ScrapeJob
        from albums.services.scraping import scrape_jobs_resend
        from imagineer.jobs import kind_register

        kind_register(ScrapeJob, resend=scrape_jobs_resend)
