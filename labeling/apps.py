from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"

    def ready(self) -> None:
        from imagineer.jobs import kind_register
        from labeling.models import LabelingJob, LabelingJobItem
        from labeling.services import labeling_items_resend, labeling_jobs_resend

        kind_register(LabelingJob, resend=labeling_jobs_resend)
        kind_register(LabelingJobItem, resend=labeling_items_resend)
