"""The project's URLs plus one probe API view, to test authentication apart from any app's API."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from imagineer.permissions import GENERATE


class ProbeView(APIView):
    required_permission = GENERATE

    def get(self, request):
        return Response({"user": request.user.get_username(), "auth": type(request.auth).__name__})

    def post(self, request):
        return Response({"created": True}, status=201)


urlpatterns = [path("probe/", ProbeView.as_view()), path("", include("imagineer.urls"))]
