from django.apps import AppConfig


class ImagineerConfig(AppConfig):
    name = "imagineer"
    verbose_name = "Imagineer"
