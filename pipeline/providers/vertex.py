"""`vertex`: Gemini on Vertex AI through google-genai (Google's supported SDK for Gemini;
`vertexai.generative_models` in google-cloud-aiplatform is deprecated and its 2.7.0 release
caps google-genai below 3). Credentials: a service-account file, or Application Default
Credentials; project and location from po.toml or GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION."""

from __future__ import annotations

import os

from pipeline.providers.chat import chat_messages
from pipeline.providers.limits import Timeout, Transient
from pipeline.providers.remote import Limits, ProviderError, RemoteEngine, Reply

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
DEFAULT_LOCATION = "us-central1"


def vertex_project(configured: str | None) -> str | None:
    return configured or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT")


def vertex_location(configured: str | None) -> str:
    return configured or os.environ.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION


def load_credentials(credentials_file: str | None, name: str, model: str):
    """Service-account file if given, else Application Default Credentials. Never logs contents."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        if credentials_file:
            from google.oauth2 import service_account

            return service_account.Credentials.from_service_account_file(credentials_file, scopes=SCOPES)
        credentials, _ = google.auth.default(scopes=SCOPES)
        return credentials
    except FileNotFoundError:
        raise ProviderError(name, model, f"credentials file {credentials_file} not found",
                            "fix providers.*.credentials_file in po.toml") from None
    except (DefaultCredentialsError, ValueError) as exc:
        raise ProviderError(name, model, f"no usable Google credentials ({type(exc).__name__})",
                            "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS "
                            "or credentials_file to a service-account key") from None


class VertexEngine(RemoteEngine):
    kind = "vertex"

    def __init__(self, name: str, model: str, *, project: str | None, location: str | None,
                 credentials_file: str | None, base_url: str | None, limits: Limits, clock=None, credentials=None):
        super().__init__(name, model, limits, clock)
        from google import genai
        from google.genai import types

        self.project = vertex_project(project)
        self.location = vertex_location(location)
        if not self.project:
            raise self.error("no Google Cloud project", "set providers.*.project in po.toml or GOOGLE_CLOUD_PROJECT")
        credentials = credentials or load_credentials(credentials_file, name, model)
        options = types.HttpOptions(timeout=int(limits.timeout_s * 1000), base_url=base_url,
                                    retry_options=types.HttpRetryOptions(attempts=1))
        self.client = genai.Client(vertexai=True, project=self.project, location=self.location,
                                   credentials=credentials, http_options=options)

    def send(self, request) -> Reply:
        from google.genai import types

        messages = chat_messages(request)
        system = "\n".join(m["content"] for m in messages if m["role"] == "system") or None
        contents = [types.Content(role="model" if m["role"] == "assistant" else "user",
                                  parts=[types.Part(text=m["content"])]) for m in messages if m["role"] != "system"]
        c = request.config
        config = types.GenerateContentConfig(system_instruction=system, temperature=c.temperature,
                                             max_output_tokens=c.max_tokens, top_p=c.top_p,
                                             stop_sequences=list(c.stop) or None)
        response = self.client.models.generate_content(model=self.model, contents=contents, config=config)
        usage = response.usage_metadata
        finish = response.candidates[0].finish_reason if response.candidates else None
        return Reply(response.text or "", usage.prompt_token_count if usage else None,
                     usage.candidates_token_count if usage else None,
                     "length" if str(finish).endswith("MAX_TOKENS") else "stop")

    def classify(self, exc: Exception) -> Exception:
        import httpx
        from google.auth.exceptions import GoogleAuthError
        from google.genai import errors

        # google-genai sends through httpx2 when it is installed, else httpx.
        timeouts, transport = (httpx.TimeoutException,), (httpx.TransportError,)
        try:
            import httpx2

            timeouts, transport = timeouts + (httpx2.TimeoutException,), transport + (httpx2.TransportError,)
        except ImportError:
            pass
        if isinstance(exc, timeouts):
            return Timeout(f"timed out after {self.limits.timeout_s:g} s")
        if isinstance(exc, transport):
            return Transient(f"cannot reach Vertex AI ({type(exc).__name__})")
        if isinstance(exc, GoogleAuthError):
            return self.error(f"credentials could not be used ({type(exc).__name__})",
                              "refresh them: `gcloud auth application-default login`, or check credentials_file")
        if isinstance(exc, errors.APIError):
            return self.http_failure(
                exc.code, exc.message, getattr(getattr(exc, "response", None), "headers", None),
                credentials_fix=f"grant the credentials Vertex AI User on project {self.project}, or refresh them",
                not_found=(f"HTTP 404: model {self.model!r} not found in {self.project}/{self.location}",
                           "check providers.*.model and location (gemini-2.5-pro is in us-central1)"),
            )
        return exc
