from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"

    def ready(self) -> None:
        from imagineer.jobs import kind_register
        from imagineer.reconcile import parent_register
        from labeling.models import LabelingJob, LabelingJobItem
        from labeling.services import labeling_items_resend, labeling_job_settle, labeling_jobs_resend

        kind_register(LabelingJob, resend=labeling_jobs_resend)
        kind_register(LabelingJobItem, resend=labeling_items_resend)
        # A running labeling job is finished when its items are (imagineer/reconcile.py).
        parent_register(LabelingJob, items="items", settle=lambda job_id: labeling_job_settle(job_id=job_id))
