"""POST /api/auth/token/: DRF's token view, which says so when sign-in is locked out.

django-axes refuses a locked-out IP address or username inside authenticate(); DRF's view would
then answer "Unable to log in with provided credentials", which hides why. Here the lockout is a
429 that names the wait, as /login/ shows it in a page.
"""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response


class TokenView(ObtainAuthToken):
    @extend_schema(
        responses={
            200: OpenApiResponse(description="The user's API token."),
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Sign-in locked after repeated failures."),
        }
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            if getattr(request, "axes_locked_out", False):
                minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
                return Response(
                    {
                        "code": "locked_out",
                        "detail": f"Too many failed sign-ins: locked for {minutes} minutes.",
                    },
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                )
            raise ValidationError(serializer.errors)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})


token_view = TokenView.as_view()
